//! Namespaces as a user sees them from inside: the hostname, `/proc/self/ns` links that differ
//! from the host's for each new namespace and equal the target's for a joined one, and a user
//! namespace's uid and gid maps. A container without a mount namespace (contest's `ns_itype`,
//! runtime-tools' `linux_ns_itype`) shares the host's, and leaves no mount behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::{Bundle, Flavor, Runtime};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// The host's namespace link of `kind` (as `readlink /proc/self/ns/<kind>` prints it).
fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("the host's namespace link")
        .to_string_lossy()
        .into_owned()
}

/// A script printing `kind=<link>` for each namespace kind.
fn ns_script(kinds: &[&str]) -> String {
    kinds
        .iter()
        .map(|k| format!("echo {k}=$(readlink /proc/self/ns/{k})"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse_ns(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn hostname_is_set() {
    let rt = runtime();
    let name = format!("berth-h-{}", std::process::id());
    let out = rt
        .run_ok("host", &bundle().hostname(&name).args(&["hostname"]))
        .expect("run");
    assert_eq!(out.stdout.trim(), name);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("the host's hostname");
    assert_ne!(host.trim(), name, "the host's hostname is untouched");
}

#[test]
fn each_new_namespace_differs_from_the_hosts() {
    let rt = runtime();
    // "cgroup" is not in runc spec's default set: ask for it so that it is checked too.
    let b = bundle().namespace("cgroup", None);
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let out = rt.run_ok("ns", &b.shell(&ns_script(&kinds))).expect("run");
    let seen = parse_ns(&out.stdout);
    assert_eq!(seen.len(), kinds.len(), "{out:?}");
    for (kind, link) in seen {
        assert!(link.starts_with(&format!("{kind}:[")), "{kind}: {link}");
        assert_ne!(
            link,
            host_ns(&kind),
            "the container has its own {kind} namespace"
        );
    }
}

#[test]
fn an_omitted_namespace_is_the_hosts() {
    let rt = runtime();
    let b = bundle()
        .without_namespace("network")
        .without_namespace("ipc");
    let out = rt
        .run_ok("nons", &b.shell(&ns_script(&["net", "ipc", "uts"])))
        .expect("run");
    let seen = parse_ns(&out.stdout);
    assert_eq!(
        seen[0].1,
        host_ns("net"),
        "no network namespace asked: the host's is shared"
    );
    assert_eq!(seen[1].1, host_ns("ipc"));
    assert_ne!(seen[2].1, host_ns("uts"));
}

#[test]
fn a_namespace_given_by_path_is_joined() {
    // The bundles outlive the runtime, whose drop kills what a failed test left.
    let holder_bundle = bundle().args(&["sleep", "1000"]);
    let joiner = bundle();
    let rt = runtime();
    let holder = rt.new_id("nsholder");
    let pid = rt
        .create_and_start(&holder, &holder_bundle)
        .expect("the namespace holder runs");
    let net = format!("/proc/{pid}/ns/net");
    let uts = format!("/proc/{pid}/ns/uts");
    let mut joiner = joiner
        .namespace("network", Some(net.as_ref()))
        .namespace("uts", Some(uts.as_ref()))
        .shell(&ns_script(&["net", "uts", "ipc"]));
    // Setting a hostname would change the holder's joined uts namespace: leave it out.
    joiner
        .spec_mut()
        .as_object_mut()
        .expect("the spec is an object")
        .remove("hostname");
    let out = rt.run_ok("nsjoin", &joiner).expect("run the joiner");
    let seen = parse_ns(&out.stdout);
    let target = |p: &str| {
        fs::read_link(p)
            .expect("the holder's namespace")
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        seen[0].1,
        target(&net),
        "joined the holder's network namespace"
    );
    assert_eq!(seen[1].1, target(&uts), "joined the holder's uts namespace");
    assert_ne!(
        seen[2].1,
        target(&format!("/proc/{pid}/ns/ipc")),
        "a new ipc namespace of its own"
    );
    assert_ne!(seen[0].1, host_ns("net"));
    rt.kill(&holder, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the holder exits");
    rt.delete(&holder)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

#[test]
fn user_namespace_maps_ids_as_configured() {
    let rt = runtime();
    let b = bundle()
        .user_namespace(0, 100_000, 65_536)
        .shell("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let out = rt.run_ok("userns", &b).expect("run");
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0 100000 65536", "uid_map: {out:?}");
    assert_eq!(lines[1], "0 100000 65536", "gid_map: {out:?}");
    assert_eq!(lines[2], "0", "root inside the user namespace");
    assert_ne!(lines[3], host_ns("user"));
}

#[test]
fn time_namespace_is_new() {
    let rt = runtime();
    let b = bundle()
        .namespace("time", None)
        .shell("readlink /proc/self/ns/time");
    let id = rt.new_id("timens");
    let out = rt.run(&id, &b).expect("run");
    if rt.flavor() == Flavor::Runc {
        // runc 1.1.5 has no time namespace support (the test holds for berth; runc refuses).
        assert!(
            !out.success(),
            "runc 1.1.5 refuses the time namespace: {out:?}"
        );
        return;
    }
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("time:["), "{out:?}");
    assert_ne!(out.stdout.trim(), host_ns("time"));
}

/// The mount points at `dir` or below it in this process's (the host's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // The kernel escapes a space as \040; the tests' paths have none.
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The mount points and propagation fields (`shared:N`, `master:N`, ...) of the host's
/// mounts, in /proc/self/mountinfo's order.
fn propagation_table() -> Vec<(PathBuf, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let point = PathBuf::from(fields.get(4)?);
            let end = fields.iter().position(|f| *f == "-")?;
            Some((point, fields.get(6..end)?.join(" ")))
        })
        .collect()
}

/// The propagation of the host's `/` and of the mount holding `dir` (its mount point found
/// now, its first entry read again by [`propagation_at`]).
fn propagation_around(dir: &Path) -> Vec<(PathBuf, String)> {
    let table = propagation_table();
    let holder = table
        .iter()
        .filter(|(p, _)| dir.starts_with(p))
        .map(|(p, _)| p.clone())
        .max_by_key(|p| p.as_os_str().len())
        .expect("some mount holds the bundle");
    propagation_at(&[PathBuf::from("/"), holder])
}

/// The propagation of the first (lowest) mount at each of `points`.
fn propagation_at(points: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let table = propagation_table();
    points
        .iter()
        .filter_map(|want| table.iter().find(|(p, _)| p == want).cloned())
        .collect()
}

/// Detaches, when dropped, whatever is still mounted under a bundle (a failed test, or a
/// runtime such as runc that leaves the mounts of a container without a mount namespace):
/// the bundle's temporary directory is removed after it, and must not recurse into a proc,
/// sys or cgroup mount of the host. Declare it after the bundle and before the runtime, so it
/// drops after the runtime's own clean-up and before the bundle.
struct DetachLeftovers(PathBuf);

impl Drop for DetachLeftovers {
    fn drop(&mut self) {
        let mut left = mounts_under(&self.0);
        left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in left {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A bundle without the namespaces in `drop`, its canonical rootfs, and the guard for it.
fn bundle_without(drop: &[&str]) -> (Bundle, PathBuf, DetachLeftovers) {
    let mut b = bundle();
    for kind in drop {
        b = b.without_namespace(kind);
    }
    let rootfs = fs::canonicalize(b.rootfs()).expect("the bundle's rootfs");
    let guard = DetachLeftovers(rootfs.clone());
    (b, rootfs, guard)
}

/// Whether the runtime under test is expected to clean up the host's mounts (runc leaves them).
fn cleans_host_mounts(rt: &Runtime) -> bool {
    if rt.is_berth() {
        return true;
    }
    eprintln!(
        "{:?} leaves the mounts of a container without a mount namespace: not checked",
        rt.flavor()
    );
    false
}

#[test]
fn without_a_mount_namespace_the_hosts_is_shared_and_no_mount_is_left() {
    let (mut b, rootfs, _guard) = bundle_without(&["mount"]);
    let rt = runtime();
    if !rt.is_berth() {
        // runc refuses masked and read-only paths without a mount namespace; berth applies
        // them (on its own bind of the rootfs).
        b.spec_mut()["linux"]["maskedPaths"] = serde_json::json!([]);
        b.spec_mut()["linux"]["readonlyPaths"] = serde_json::json!([]);
    }
    let before = mounts_under(&rootfs);
    assert!(before.is_empty(), "a fresh bundle has no mount: {before:?}");
    let propagation = propagation_around(&rootfs);
    let b = b.shell(&format!(
        "{}; test -r /proc/self/status && echo proc=yes; test -e /bin/busybox && echo root=yes; \
         touch /rootro-probe 2>/dev/null || echo rootro=yes; echo timers=$(wc -c < /proc/timer_list)",
        ns_script(&["mnt", "pid", "net"])
    ));
    let out = rt.run_ok("nomnt", &b).expect("run");
    let seen = parse_ns(&out.stdout);
    let get = |k: &str| {
        seen.iter()
            .find(|(kind, _)| kind == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing from {out:?}"))
    };
    assert_eq!(get("mnt"), host_ns("mnt"), "no mount namespace: the host's");
    assert_ne!(get("pid"), host_ns("pid"), "a pid namespace of its own");
    assert_ne!(get("net"), host_ns("net"), "a network namespace of its own");
    assert_eq!(
        get("proc"),
        "yes",
        "the container's /proc is mounted: {out:?}"
    );
    assert_eq!(
        get("root"),
        "yes",
        "the process is chrooted in its rootfs: {out:?}"
    );
    if rt.is_berth() {
        // runc 1.1 leaves the root writable without a mount namespace.
        assert_eq!(get("rootro"), "yes", "root.readonly holds: {out:?}");
        assert_eq!(get("timers"), "0", "/proc/timer_list is masked: {out:?}");
    }
    // The read-only root is the runtime's own bind: the host's filesystem under the bundle
    // stays writable.
    fs::write(b.path().join("still-writable"), b"x").expect("the bundle is still writable");
    let points: Vec<PathBuf> = propagation.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        propagation_at(&points),
        propagation,
        "the propagation of the host's / and of the bundle's mount is unchanged"
    );
    if cleans_host_mounts(&rt) {
        assert_eq!(
            mounts_under(&rootfs),
            Vec::<PathBuf>::new(),
            "nothing left mounted"
        );
    }
}

#[test]
fn ns_itype_no_namespaces_at_all_inherits_every_one_and_delete_unmounts() {
    // contest's ns_itype and runtime-tools' linux_ns_itype: every namespace inherited, no
    // hostname (it needs a uts namespace), and no masked or read-only paths (runc refuses
    // them without a mount namespace).
    let (mut b, rootfs, _guard) = bundle_without(&["pid", "network", "ipc", "uts", "mount"]);
    b.spec_mut()
        .as_object_mut()
        .expect("the spec is an object")
        .remove("hostname");
    b.spec_mut()["linux"]["maskedPaths"] = serde_json::json!([]);
    b.spec_mut()["linux"]["readonlyPaths"] = serde_json::json!([]);
    let b = b.args(&["sleep", "1000"]);
    // Before create: the container's read-only root is a bind at the rootfs, on the host too.
    fs::write(rootfs.join("berth-marker"), b"inside\n").expect("write a marker in the rootfs");
    let rt = runtime();
    let id = rt.new_id("nsitype");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("the init's pid");
    // Made in the host's namespace, where they can be seen.
    let during = mounts_under(&rootfs);
    assert!(
        during.contains(&rootfs.join("proc")),
        "the container's /proc is mounted under its rootfs on the host: {during:?}"
    );
    for entry in fs::read_dir("/proc/self/ns").expect("list /proc/self/ns") {
        let kind = entry.expect("a namespace link").file_name();
        let kind = kind.to_string_lossy();
        let theirs = fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .expect("the init's namespace link")
            .to_string_lossy()
            .into_owned();
        assert_eq!(theirs, host_ns(&kind), "{kind} is inherited from the host");
    }
    rt.start(&id).expect("start").ok().expect("start succeeds");
    if rt.is_berth() {
        // An exec'd process joins the container's root too, not the host's (runc 1.1 fails to
        // exec into a container with no namespace to join).
        let out = rt
            .exec(&id, &["cat", "/berth-marker"])
            .expect("exec")
            .ok()
            .expect("exec succeeds");
        assert_eq!(
            out.stdout.trim(),
            "inside",
            "exec runs in the container's root"
        );
    }
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the init exits");
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
    if cleans_host_mounts(&rt) {
        assert_eq!(
            mounts_under(&rootfs),
            Vec::<PathBuf>::new(),
            "delete left nothing mounted"
        );
    }
}

#[test]
fn a_create_failing_midway_without_a_mount_namespace_leaves_no_mount() {
    let (b, rootfs, _guard) = bundle_without(&["mount"]);
    // Last, after proc, dev, sys and the rest are mounted: a filesystem no kernel has.
    let b = b.mount(serde_json::json!({
        "destination": "/mnt", "type": "berthnosuchfs", "source": "none"
    }));
    let rt = runtime();
    let id = rt.new_id("nomntfail");
    let out = rt.create(&id, &b).expect("create");
    assert!(
        !out.success(),
        "a mount of an unknown filesystem fails: {out:?}"
    );
    if rt.is_berth() {
        assert!(
            out.stderr.contains("mounts[7]"),
            "the error names the mount: {out:?}"
        );
    }
    if cleans_host_mounts(&rt) {
        assert_eq!(
            mounts_under(&rootfs),
            Vec::<PathBuf>::new(),
            "the failed create left nothing mounted"
        );
    }
}

#[test]
fn a_user_namespace_without_a_mount_namespace_is_refused() {
    let (b, rootfs, _guard) = bundle_without(&["mount"]);
    let b = b.user_namespace(0, 100_000, 65_536);
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("berth's own refusal: not checked for {:?}", rt.flavor());
        return;
    }
    let out = rt.create(&rt.new_id("nomntuser"), &b).expect("create");
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("a user namespace needs a mount namespace"),
        "{out:?}"
    );
    assert_eq!(mounts_under(&rootfs), Vec::<PathBuf>::new());
}

#[test]
fn a_second_container_without_a_mount_namespace_on_the_same_rootfs_is_refused() {
    let (b, rootfs, _guard) = bundle_without(&["mount"]);
    let b = b.args(&["sleep", "1000"]);
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("berth's own refusal: not checked for {:?}", rt.flavor());
        return;
    }
    let first = rt.new_id("nomnt1");
    rt.create(&first, &b)
        .expect("create")
        .ok()
        .expect("the first container is made");
    let second = rt.new_id("nomnt2");
    let out = rt.create(&second, &b).expect("create");
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("container {first} already uses this rootfs")),
        "{out:?}"
    );
    assert!(
        mounts_under(&rootfs).contains(&rootfs.join("proc")),
        "the refusal left the first container's mounts alone"
    );
    rt.delete_force(&first)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
    assert_eq!(mounts_under(&rootfs), Vec::<PathBuf>::new());
}

/// A tmpfs made shared at a fresh directory, with a peer bind of it at another: what a host
/// whose `/` is shared (systemd's default) looks like, in miniature. Unmounted when dropped.
struct SharedMount {
    top: tempfile::TempDir,
    peer: tempfile::TempDir,
}

impl SharedMount {
    fn new() -> SharedMount {
        use nix::mount::{mount, MsFlags};
        let top = tempfile::Builder::new()
            .prefix("berth-shared-")
            .tempdir()
            .expect("a directory for the shared mount");
        let peer = tempfile::Builder::new()
            .prefix("berth-peer-")
            .tempdir()
            .expect("a directory for its peer");
        let this = SharedMount { top, peer };
        mount(
            Some("tmpfs"),
            this.top.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )
        .expect("mount a tmpfs");
        mount(
            None::<&str>,
            this.top.path(),
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .expect("make it shared");
        mount(
            Some(this.top.path()),
            this.peer.path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind it at its peer");
        this
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        for dir in [self.peer.path(), self.top.path()] {
            let mut left = mounts_under(dir);
            left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for p in left {
                let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

#[test]
fn without_a_mount_namespace_nothing_propagates_to_the_hosts_peers() {
    let shared = SharedMount::new();
    let top = fs::canonicalize(shared.top.path()).expect("the shared mount");
    let peer = fs::canonicalize(shared.peer.path()).expect("its peer");
    let b = Bundle::new_in(&top)
        .expect("a bundle on the shared mount")
        .without_namespace("mount")
        .args(&["sleep", "1000"]);
    let rootfs = fs::canonicalize(b.rootfs()).expect("the bundle's rootfs");
    let _guard = DetachLeftovers(rootfs.clone());
    let rt = runtime();
    let propagation = propagation_at(&[top.clone(), peer.clone()]);
    assert_eq!(propagation.len(), 2, "{propagation:?}");
    let id = rt.new_id("nomntshared");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let peer_rootfs = peer.join(rootfs.strip_prefix(&top).expect("the rootfs is on top"));
    let at_peer = mounts_under(&peer_rootfs);
    assert!(
        !at_peer.iter().any(|p| p != &peer_rootfs),
        "the peer gets a copy of the rootfs's bind (made under a shared mount) and none of the \
         container's mounts on it: {at_peer:?}"
    );
    assert_eq!(
        propagation_at(&[top.clone(), peer.clone()]),
        propagation,
        "the host's mounts keep their propagation"
    );
    rt.delete_force(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
    if cleans_host_mounts(&rt) {
        assert_eq!(mounts_under(&rootfs), Vec::<PathBuf>::new());
        assert_eq!(
            mounts_under(&peer_rootfs),
            Vec::<PathBuf>::new(),
            "nothing left at the peer either"
        );
    }
    assert_eq!(propagation_at(&[top, peer]), propagation);
}
