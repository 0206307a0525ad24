//! Rootless: the runtime run by a real unprivileged user that each test creates (and removes
//! again, with its /etc/subuid and /etc/subgid entries, also when the test fails).
//!
//! The user gets a work directory it owns, a busybox bundle there with the config that
//! `spec --rootless` writes, and runs the runtime through `setpriv` with its own uid, gid and
//! groups and no capabilities. Checked: a single-id mapping (root inside, the user outside), a
//! range mapping through newuidmap/newgidmap, a memory limit refused where the user has no
//! cgroup (this host's v1 controllers belong to root), and the state under
//! `$XDG_RUNTIME_DIR/berth` gone after `delete`.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use berth_tests::runtime::default_binary;
use berth_tests::{busybox_rootfs, unique_name, wait, Flavor, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// useradd, usermod and userdel lock /etc/passwd and fail rather than wait: one at a time.
static USERS: Mutex<()> = Mutex::new(());
static NEXT_USER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A user made for one test; removed (with its subordinate ids) when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    subuid: (u64, u64),
    subgid: (u64, u64),
}

fn must(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn subid_range(file: &str, name: &str) -> Option<(u64, u64)> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// The first 65536 ids after every range the file already gives out.
fn free_range(file: &str) -> u64 {
    let end = fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
        })
        .max()
        .unwrap_or(100_000);
    end.max(100_000) + 65_536
}

impl TestUser {
    fn create() -> TestUser {
        let n = NEXT_USER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("berthrl{}x{n}", std::process::id());
        let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        must(
            Command::new("useradd").args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ]),
            "useradd (the rootless tests need a user of their own)",
        );
        let mut user = TestUser {
            uid: 0,
            gid: 0,
            subuid: (0, 0),
            subgid: (0, 0),
            name,
        };
        user.uid = must(Command::new("id").args(["-u", &user.name]), "id -u")
            .parse()
            .expect("a uid");
        user.gid = must(Command::new("id").args(["-g", &user.name]), "id -g")
            .parse()
            .expect("a gid");
        // Debian's useradd may have given subordinate ids already; else add a free range.
        for (file, flag) in [
            ("/etc/subuid", "--add-subuids"),
            ("/etc/subgid", "--add-subgids"),
        ] {
            if subid_range(file, &user.name).is_some() {
                continue;
            }
            let start = free_range(file);
            let range = format!("{start}-{}", start + 65_535);
            let added = Command::new("usermod")
                .args([flag, &range, &user.name])
                .status()
                .is_ok_and(|s| s.success());
            if !added {
                let mut text = fs::read_to_string(file).unwrap_or_default();
                text.push_str(&format!("{}:{start}:65536\n", user.name));
                fs::write(file, text).unwrap_or_else(|e| panic!("append to {file}: {e}"));
            }
        }
        user.subuid = subid_range("/etc/subuid", &user.name).expect("a subuid range");
        user.subgid = subid_range("/etc/subgid", &user.name).expect("a subgid range");
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let status = Command::new("userdel").arg(&self.name).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("rootless test: userdel {} failed", self.name);
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            let Ok(text) = fs::read_to_string(file) else {
                continue;
            };
            let prefix = format!("{}:", self.name);
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .map(|l| format!("{l}\n"))
                .collect();
            if kept != text {
                let _ = fs::write(file, kept);
            }
        }
    }
}

/// A work directory the user owns, its bundle, and the containers made there (force-deleted
/// as the user when dropped).
struct Work {
    dir: tempfile::TempDir,
    binary: PathBuf,
    uid: u32,
    gid: u32,
    ids: Mutex<Vec<String>>,
    calls: std::sync::atomic::AtomicU32,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Work {
    fn new(user: &TestUser) -> Work {
        let dir = tempfile::Builder::new()
            .prefix("berth-rootless-")
            .tempdir()
            .expect("a work directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown the work directory");
        let bundle = dir.path().join("bundle");
        fs::create_dir(&bundle).expect("the bundle directory");
        chown(&bundle, Some(user.uid), Some(user.gid)).expect("chown the bundle");
        busybox_rootfs(&bundle).expect("a busybox rootfs");
        Work {
            dir,
            binary: default_binary(),
            uid: user.uid,
            gid: user.gid,
            ids: Mutex::new(Vec::new()),
            calls: Default::default(),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs the runtime as the user in the bundle directory, with `--root` in the work
    /// directory unless `xdg` is given (then `XDG_RUNTIME_DIR=xdg` and no `--root`).
    fn run(&self, args: &[&str], xdg: Option<&Path>) -> Out {
        self.run_in(None, args, xdg)
    }

    /// As [`Work::run`], first moving the process into the cgroup2 directory whose
    /// `cgroup.procs` is `procs` (as root, before it becomes the user).
    fn run_in(&self, procs: Option<&Path>, args: &[&str], xdg: Option<&Path>) -> Out {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("out-{n}"));
        let err_path = self.dir.path().join(format!("err-{n}"));
        let mut cmd = match procs {
            Some(procs) => {
                let mut c = Command::new("sh");
                c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
                    .arg(procs)
                    .arg("setpriv");
                c
            }
            None => Command::new("setpriv"),
        };
        cmd.args([
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.gid),
            "--init-groups",
            "--",
        ])
        .arg(&self.binary)
        .current_dir(self.bundle())
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"));
        match xdg {
            Some(dir) => {
                cmd.env("XDG_RUNTIME_DIR", dir);
            }
            None => {
                cmd.arg("--root").arg(self.state_root());
            }
        }
        cmd.args(args);
        let mut child = cmd.spawn().expect("spawn setpriv");
        let pid = i32::try_from(child.id()).expect("a pid");
        if let Err(e) = wait::process_exit(pid, WAIT) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth-runtime {args:?} as the user did not finish: {e}");
        }
        let status = child.wait().expect("wait for setpriv");
        Out {
            code: status.code(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str], xdg: Option<&Path>) -> Out {
        let out = self.run(args, xdg);
        assert_eq!(
            out.code,
            Some(0),
            "berth-runtime {args:?} as the user failed: {}",
            out.stderr
        );
        out
    }

    /// `spec --rootless` as the user, then `edit` on the JSON (as root).
    fn rootless_config(&self, edit: impl FnOnce(&mut Value)) {
        let _ = fs::remove_file(self.bundle().join("config.json"));
        self.ok(&["spec", "--rootless"], None);
        let path = self.bundle().join("config.json");
        let mut spec: Value =
            serde_json::from_slice(&fs::read(&path).expect("config.json")).expect("JSON");
        spec["process"]["terminal"] = json!(false);
        edit(&mut spec);
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("JSON")).expect("config.json");
    }

    fn remember(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.to_string());
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            let _ = self.run(&["delete", "--force", &id], None);
        }
    }
}

fn host_uid_of(pid: i32) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid line")
        .split_whitespace()
        .map(|n| n.parse().expect("a uid"))
        .collect()
}

fn is_berth() -> bool {
    Runtime::flavor_under_test().expect("the runtime under test") == Flavor::Berth
}

fn need_root() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: the rootless tests create a user and need root to do it");
        return false;
    }
    true
}

#[test]
fn single_id_mapping_is_root_inside_and_the_user_outside() {
    if !need_root() {
        return;
    }
    let user = TestUser::create();
    let work = Work::new(&user);
    work.rootless_config(|spec| {
        spec["process"]["args"] = json!(["sh", "-c", "id -u; id -g"]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let created = work.ok(&["create", &id], None);
    if is_berth() {
        // This host's v1 controllers belong to root: exactly one warning says so.
        let warnings: Vec<&str> = created
            .stderr
            .lines()
            .filter(|l| l.contains("without a cgroup"))
            .collect();
        assert_eq!(warnings.len(), 1, "stderr: {}", created.stderr);
        assert!(warnings[0].contains("not delegated"), "{}", warnings[0]);
    }
    let state: Value =
        serde_json::from_str(&work.ok(&["state", &id], None).stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("a pid") as i32;
    assert_eq!(
        host_uid_of(pid),
        vec![user.uid; 4],
        "the host sees the container's init as the user"
    );
    work.ok(&["start", &id], None);
    wait::process_exit(pid, WAIT).expect("the container exits");
    work.ok(&["delete", &id], None);
    let out = fs::read_to_string(work.dir.path().join("out-1")).expect("create's stdout");
    assert_eq!(out, "0\n0\n", "id -u and id -g inside the container");
}

#[test]
fn exec_into_a_created_container_is_refused_until_it_starts() {
    if !need_root() {
        return;
    }
    let user = TestUser::create();
    let work = Work::new(&user);
    work.rootless_config(|spec| {
        spec["process"]["args"] = json!(["sleep", "1000"]);
    });
    let id = unique_name("rootless-exec");
    work.remember(&id);
    work.ok(&["create", &id], None);
    let script = ["sh", "-c", "id -u"];
    let exec: Vec<&str> = ["exec", id.as_str()].into_iter().chain(script).collect();
    let out = work.run(&exec, None);
    if is_berth() {
        // The init is not dumpable until it starts (CVE-2019-5736): only root may open its
        // namespaces, and berth says so instead of failing with EACCES.
        assert_ne!(out.code, Some(0), "refused: {}", out.stdout);
        assert!(
            out.stderr.contains("is created") && out.stderr.contains("only once it is started"),
            "{}",
            out.stderr
        );
    } else {
        assert_eq!(out.code, Some(0), "runc execs: {}", out.stderr);
    }
    let state: Value =
        serde_json::from_str(&work.ok(&["state", &id], None).stdout).expect("state JSON");
    assert_eq!(
        state["status"], "created",
        "the exec did not start the container"
    );
    work.ok(&["start", &id], None);
    let out = work.ok(&exec, None);
    assert_eq!(out.stdout, "0\n", "root inside once started");
    work.ok(&["delete", "--force", &id], None);
}

#[test]
fn an_idmapped_mount_is_refused_with_the_reason() {
    if !need_root() || !is_berth() {
        eprintln!("SKIP: berth's refusal is checked (runc 1.1 has no idmapped mounts)");
        return;
    }
    let user = TestUser::create();
    let work = Work::new(&user);
    let data = work.dir.path().join("data");
    fs::create_dir(&data).expect("mkdir data");
    work.rootless_config(|spec| {
        spec["process"]["args"] = json!(["true"]);
        spec["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/mnt", "type": "bind", "source": data,
            "options": ["rbind", "ridmap"]
        }));
    });
    let id = unique_name("rootless-idmap");
    work.remember(&id);
    let out = work.run(&["create", &id], None);
    assert_ne!(out.code, Some(0), "refused");
    assert!(
        out.stderr.contains("mounts[")
            && out.stderr.contains("ID-mapped mount")
            && out.stderr.contains("only for root on the host"),
        "{}",
        out.stderr
    );
}

#[test]
fn range_mapping_goes_through_newuidmap() {
    if !need_root() {
        return;
    }
    assert!(
        Path::new("/usr/bin/newuidmap").exists(),
        "newuidmap is missing: install Debian's uidmap package (.ci/run does)"
    );
    let user = TestUser::create();
    let work = Work::new(&user);
    let (uid, gid) = (user.uid, user.gid);
    let (su, sg) = (user.subuid.0, user.subgid.0);
    work.rootless_config(|spec| {
        spec["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": su, "size": 65536},
        ]);
        spec["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": gid, "size": 1},
            {"containerID": 1, "hostID": sg, "size": 65536},
        ]);
        spec["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let out = work.ok(&["run", &id], None);
    let lines: Vec<Vec<u64>> = out
        .stdout
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|n| n.parse().expect("a number"))
                .collect()
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![0, u64::from(uid), 1],
            vec![1, su, 65536],
            vec![0, u64::from(gid), 1],
            vec![1, sg, 65536],
        ],
        "uid_map and gid_map inside: {}",
        out.stdout
    );

    // Root inside mapped to a subordinate id, not the user: the runtime cannot give its exec
    // fifos to that id, yet the container must start.
    work.rootless_config(|spec| {
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": su, "size": 65536}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": sg, "size": 65536}]);
        spec["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let out = work.ok(&["run", &id], None);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        vec!["0", "0", &su.to_string(), "65536"],
        "root inside is subordinate id {su}: {}",
        out.stdout
    );

    // A range outside the user's subordinate ids: newuidmap refuses, and berth says why.
    work.rootless_config(|spec| {
        spec["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": 4_000_000_000u64, "size": 10},
        ]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let out = work.run(&["run", &id], None);
    assert_ne!(out.code, Some(0), "a range outside /etc/subuid was mapped");
    if is_berth() {
        assert!(
            out.stderr.contains("newuidmap") && out.stderr.contains("/etc/subuid"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn memory_limit_without_a_cgroup_is_refused() {
    if !need_root() {
        return;
    }
    let user = TestUser::create();
    let work = Work::new(&user);
    if rustix::fs::access("/sys/fs/cgroup/memory", rustix::fs::Access::WRITE_OK).is_ok() {
        eprintln!("SKIP: the memory cgroup is writable here; this test needs a root-owned one");
        return;
    }
    work.rootless_config(|spec| {
        spec["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
        spec["process"]["args"] = json!(["true"]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let out = work.run(&["run", &id], None);
    assert_ne!(
        out.code,
        Some(0),
        "a memory limit was accepted with no cgroup"
    );
    if is_berth() {
        assert!(
            out.stderr.contains("linux.resources.memory")
                && out.stderr.contains("no cgroup can enforce"),
            "{}",
            out.stderr
        );
    }
    assert!(
        !work.state_root().join(&id).exists(),
        "a refused create left state"
    );
}

#[test]
fn state_lives_under_xdg_runtime_dir_and_delete_removes_it() {
    if !need_root() {
        return;
    }
    let user = TestUser::create();
    let work = Work::new(&user);
    let xdg = work.dir.path().join("xdg");
    fs::create_dir(&xdg).expect("xdg dir");
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod");
    chown(&xdg, Some(user.uid), Some(user.gid)).expect("chown xdg");
    work.rootless_config(|spec| {
        spec["process"]["args"] = json!(["true"]);
    });
    let id = unique_name("rootless");
    let created = work.run(&["create", &id], Some(&xdg));
    // Cleaned up through the same root if the test fails below.
    let cleanup = Cleanup {
        work: &work,
        xdg: &xdg,
        id: &id,
    };
    assert_eq!(created.code, Some(0), "create: {}", created.stderr);
    let dir = xdg.join("berth").join(&id);
    if is_berth() {
        assert!(
            dir.join("state.json").exists(),
            "no state in {}",
            dir.display()
        );
    }
    let state: Value =
        serde_json::from_str(&work.ok(&["state", &id], Some(&xdg)).stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("a pid") as i32;
    work.ok(&["start", &id], Some(&xdg));
    wait::process_exit(pid, WAIT).expect("the container exits");
    work.ok(&["delete", &id], Some(&xdg));
    assert!(!dir.exists(), "delete left {}", dir.display());
    let list = work.ok(&["list", "-q"], Some(&xdg));
    assert!(!list.stdout.contains(&id), "list: {}", list.stdout);
    std::mem::forget(cleanup);
}

struct Cleanup<'a> {
    work: &'a Work,
    xdg: &'a Path,
    id: &'a str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self
            .work
            .run(&["delete", "--force", self.id], Some(self.xdg));
    }
}

/// A cgroup delegated to the user in every hierarchy of this hybrid host: a directory it owns
/// in each v1 hierarchy, and in the cgroup2 one a directory it owns with the controllers
/// enabled below it and a leaf (`runtime`) for the runtime's own process, so the common
/// ancestor of where the runtime is and where the container goes is the user's (the kernel's
/// rule for moving a process on cgroup v2). Removed when dropped.
struct Delegated {
    dirs: Vec<PathBuf>,
    name: String,
}

impl Delegated {
    fn new(user: &TestUser) -> Option<Delegated> {
        let base = Path::new("/sys/fs/cgroup");
        if !base.join("unified").is_dir() || !base.join("memory").is_dir() {
            eprintln!("SKIP: the delegated-cgroup test is written for this hybrid host's layout");
            return None;
        }
        let name = unique_name("rl-deleg");
        let mut d = Delegated {
            dirs: Vec::new(),
            name: name.clone(),
        };
        let mut entries: Vec<PathBuf> = fs::read_dir(base)
            .expect("/sys/fs/cgroup")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        entries.sort();
        for h in entries {
            let dir = h.join(&name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            d.dirs.push(dir.clone());
            if h.ends_with("cpuset") {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = fs::read_to_string(h.join(f)).expect("the root cpuset");
                    fs::write(dir.join(f), v.trim()).expect("the delegated cpuset");
                }
            }
            let own = |p: &Path| {
                chown(p, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()))
            };
            if h.ends_with("unified") {
                let controllers =
                    fs::read_to_string(dir.join("cgroup.controllers")).expect("cgroup.controllers");
                let enable: Vec<String> = controllers
                    .split_whitespace()
                    .map(|c| format!("+{c}"))
                    .collect();
                if !enable.is_empty() {
                    fs::write(dir.join("cgroup.subtree_control"), enable.join(" "))
                        .expect("enable the controllers below the delegated cgroup");
                }
                let leaf = dir.join("runtime");
                fs::create_dir(&leaf).expect("the runtime's leaf cgroup");
                d.dirs.push(leaf.clone());
                for p in [
                    &dir,
                    &dir.join("cgroup.procs"),
                    &leaf,
                    &leaf.join("cgroup.procs"),
                ] {
                    own(p);
                }
            } else {
                own(&dir);
                for f in fs::read_dir(&dir).expect("the delegated cgroup").flatten() {
                    own(&f.path());
                }
            }
        }
        Some(d)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            // A container's cgroup the runtime failed to remove goes first.
            if let Ok(children) = fs::read_dir(dir) {
                for c in children.flatten() {
                    if c.file_type().is_ok_and(|t| t.is_dir()) && !c.path().ends_with("runtime") {
                        let _ = fs::remove_dir(c.path());
                    }
                }
            }
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("rootless test: rmdir {}: {e}", dir.display());
            }
        }
    }
}

#[test]
fn delegated_cgroup_enforces_limits() {
    if !need_root() {
        return;
    }
    let user = TestUser::create();
    // Dropped after `work`, which force-deletes the container first.
    let Some(deleg) = Delegated::new(&user) else {
        return;
    };
    let work = Work::new(&user);
    let path = format!("/{}/c", deleg.name);
    work.rootless_config(|spec| {
        spec["linux"]["cgroupsPath"] = json!(path);
        spec["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 50}});
        spec["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
        ]);
    });
    let id = unique_name("rootless");
    work.remember(&id);
    let leaf = Path::new("/sys/fs/cgroup/unified")
        .join(&deleg.name)
        .join("runtime/cgroup.procs");
    let out = work.run_in(Some(&leaf), &["run", &id], None);
    assert_eq!(
        out.code,
        Some(0),
        "run in a delegated cgroup: {}",
        out.stderr
    );
    assert_eq!(out.stdout, format!("{}\n50\n", 64 << 20), "limits inside");
    assert!(
        !out.stderr.contains("without a cgroup"),
        "warned although the cgroup is delegated: {}",
        out.stderr
    );
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(&deleg.name)
            .join("c")
            .exists(),
        "the container's cgroup was left behind"
    );
}
