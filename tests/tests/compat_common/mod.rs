//! What the engine compatibility tests (compat_containerd, compat_podman, compat_dockerd)
//! share: the runtime under test, checks for the Debian packages the engines come from, a
//! private sandbox per test (temp root, cgroup parent) with a teardown that also works after
//! a failure, daemons started by hand, and commands run with a time bound.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod berthd;
pub mod image;
pub mod registry;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The environment variable naming the runtime binary the engines are given.
pub const RUNTIME_ENV: &str = "BERTH_TEST_RUNTIME";

/// The image every compat test runs, made by [`image::BusyboxImage`].
pub const IMAGE_REPO: &str = "busybox-test";

/// The cgroup v1 and v2 hierarchies of this host (hybrid: v1 controllers plus the unified
/// mount), each the directory an engine's cgroup parent is created in.
fn cgroup_roots() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut roots: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    // A pure cgroup v2 host has the unified hierarchy at /sys/fs/cgroup itself.
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        roots.push(PathBuf::from("/sys/fs/cgroup"));
    }
    roots.sort();
    roots
}

/// The runtime binary under test: `$BERTH_TEST_RUNTIME`, or the workspace's built
/// `berth-runtime` next to this test's profile directory (target/<profile>/berth-runtime).
/// Panics with what to do when neither exists: a compat test never passes without a runtime.
pub fn runtime_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(RUNTIME_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{RUNTIME_ENV}={} is not a file; point it at a runc-compatible runtime binary",
            path.display()
        );
        return fs::canonicalize(&path)
            .unwrap_or_else(|e| panic!("resolving {RUNTIME_ENV}={}: {e}", path.display()));
    }
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/<test binary> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} has no grandparent directory", exe.display()));
    let path = profile_dir.join("berth-runtime");
    assert!(
        path.is_file(),
        "no runtime to test: {} does not exist. Build it (`cargo build -p berth-runtime`) or set \
         {RUNTIME_ENV}=/path/to/runtime (the reference: {RUNTIME_ENV}=$(which runc))",
        path.display()
    );
    path
}

/// Panics unless the test runs as root: every engine here needs it (CI runs as root).
pub fn require_root(engine: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the {engine} compat test starts a real {engine} and must run as root (CI does)"
    );
}

/// The full path of `command`, searched on PATH and in the sbin directories; panics naming
/// the Debian `package` that provides it when it is missing.
pub fn require_tool(command: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{command}` is not installed; install the Debian package {package} \
                 (`apt-get install {package}`; .ci/packages-compat lists them all)"
        )
    })
}

/// Shell-like rendering of a command line for messages.
fn render(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to its end, for at most `timeout`; a command still running then is killed.
/// The wait is on the child's exit, through a thread that owns it. Never panics, so cleanup
/// code (which may run while a test is already failing) can use it.
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let line = render(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting `{line}`: {e}"))?;
    let pid = i32::try_from(child.id()).map_err(|e| format!("pid of `{line}`: {e}"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver may have given up already; nothing to do then.
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| format!("waiting for `{line}`: {e}")),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let partial = rx.recv_timeout(Duration::from_secs(5));
            Err(format!(
                "`{line}` did not finish within {timeout:?}; killed it. What it said: {partial:?}"
            ))
        }
    }
}

/// [`try_run`], failing the test when the command cannot be started or times out.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cmd` (see [`run`]) and returns its stdout; fails the test, with the command's
/// status and both streams, unless it exits 0.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let line = render(cmd);
    let out = run(cmd, timeout);
    assert!(
        out.status.success(),
        "`{line}` failed ({}).\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Probes until `probe` answers `Some`, for at most `timeout`. Used only where no event
/// exists to wait on (a daemon's API coming up, a task's state changing in an engine's
/// database): between probes it pauses 50 ms, and it gives up at the bound.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} for {what}, in vain"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits, for at most `timeout`, until every process in `pids` has exited; returns those
/// still alive. Waits on each process's pidfd, so on the event itself.
pub fn wait_gone(pids: &[i32], timeout: Duration) -> Vec<i32> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::process::{pidfd_open, PidfdFlags};
    let deadline = Instant::now() + timeout;
    let mut alive = Vec::new();
    for &raw in pids {
        let Some(pid) = rustix::process::Pid::from_raw(raw) else {
            continue;
        };
        // ESRCH: it is gone already.
        let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
            continue;
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => {
                    alive.push(raw);
                    break;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Ok(_) | Err(_) => break,
            }
        }
    }
    alive
}

/// A daemon started by hand (containerd, dockerd), its output in a log file in the sandbox.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Daemon {
        let file = fs::File::create(log)
            .unwrap_or_else(|e| panic!("creating {name}'s log {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("duplicating {name}'s log fd: {e}"));
        let line = render(cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} (`{line}`): {e}"));
        Daemon {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Fails the test, with the log, when the daemon has exited.
    pub fn assert_running(&mut self) {
        let name = self.name.clone();
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "{name} exited ({status}) early; its log:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Stops the daemon: SIGTERM, then its exit awaited for at most `timeout`, then SIGKILL.
    /// Returns how it ended, or why it had to be killed.
    pub fn stop(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err(format!("{} was not running", self.name));
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));
        let _ = kill(pid, Signal::SIGTERM);
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        let graceful = rx.recv_timeout(timeout).is_ok();
        if !graceful {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let status = waiter
            .join()
            .map_err(|_| format!("the thread waiting for {} panicked", self.name))?
            .map_err(|e| format!("waiting for {}: {e}", self.name))?;
        if graceful {
            Ok(status)
        } else {
            Err(format!(
                "{} did not exit within {timeout:?} of SIGTERM; killed it",
                self.name
            ))
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop(Duration::from_secs(20)) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

static SANDBOXES: AtomicU32 = AtomicU32::new(0);

/// A test's private corner of the host: a temp root for every data, state and exec dir and
/// socket, and a cgroup parent name, both carrying the engine, the pid and a counter. Its
/// teardown (also run on drop) removes everything found under them.
#[derive(Debug)]
pub struct Sandbox {
    /// The temp root, `/tmp/berth-compat-<engine>-<pid>-<n>`.
    pub root: PathBuf,
    /// `berth-compat-<engine>-<pid>-<n>`: the cgroup parent's name, and a namespace name.
    pub tag: String,
    host_paths: Vec<PathBuf>,
    torn_down: bool,
}

impl Sandbox {
    /// Makes the temp root (mode 0711, as engines expect of their roots).
    pub fn new(engine: &str) -> Sandbox {
        let n = SANDBOXES.fetch_add(1, Ordering::Relaxed);
        let tag = format!("berth-compat-{engine}-{}-{n}", std::process::id());
        let root = std::env::temp_dir().join(&tag);
        let sandbox = Sandbox {
            root,
            tag,
            host_paths: Vec::new(),
            torn_down: false,
        };
        // A root left by a crashed run of the same pid is not ours to keep.
        if sandbox.root.exists() {
            let problems = sandbox.clean();
            assert!(
                problems.is_empty(),
                "cleaning a stale sandbox: {problems:?}"
            );
        }
        fs::create_dir_all(&sandbox.root)
            .unwrap_or_else(|e| panic!("creating {}: {e}", sandbox.root.display()));
        sandbox
    }

    /// Notes host paths the engine is known to create outside every root it is given
    /// (hard-coded paths), deepest first: those absent now are removed at teardown, a file
    /// always, a directory only when empty (a non-empty one is in use by someone else).
    pub fn host_paths(&mut self, dirs: &[&str]) {
        for dir in dirs.iter().map(PathBuf::from) {
            if !dir.exists() && !self.host_paths.contains(&dir) {
                self.host_paths.push(dir);
            }
        }
    }

    /// `root/<rel>`, created as a directory.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        path
    }

    /// The cgroup parent path given to the engine, `/<tag>`.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.tag)
    }

    /// Every directory of the cgroup subtree `/<tag>` in every hierarchy, deepest first.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
            out.push(dir.to_path_buf());
        }
        let mut out = Vec::new();
        for root in cgroup_roots() {
            let top = root.join(&self.tag);
            if top.is_dir() {
                walk(&top, &mut out);
            }
        }
        out
    }

    /// The processes in the cgroup subtree `/<tag>`.
    pub fn cgroup_pids(&self) -> BTreeSet<i32> {
        self.cgroup_dirs()
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }

    /// The mount points at or under the temp root, deepest first.
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(&self.root)
    }

    /// Processes other than this one whose command line names the temp root: the daemons,
    /// shims and monitors started for this test.
    pub fn processes_naming_root(&self) -> Vec<i32> {
        let me = i32::try_from(std::process::id()).expect("a pid fits in i32");
        let needle = self.root.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&needle)
                })
            })
            .collect()
    }

    /// Removes what the test left: kills the processes in its cgroups and those naming its
    /// root, unmounts everything under the root, removes its cgroups and the root. Runs every
    /// step and returns what failed, one line each.
    pub fn clean(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for dir in self.cgroup_dirs() {
            // A frozen process cannot die: thaw the freezer cgroups first.
            let state = dir.join("freezer.state");
            if fs::read_to_string(&state).is_ok_and(|s| s.trim() != "THAWED") {
                let _ = fs::write(&state, "THAWED");
            }
        }
        let mut pids: Vec<i32> = self.cgroup_pids().into_iter().collect();
        pids.extend(self.processes_naming_root());
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for pid in wait_gone(&pids, Duration::from_secs(10)) {
            problems.push(format!("process {pid} survived SIGKILL for 10s"));
        }
        for mount in self.mounts() {
            if let Err(e) = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
                problems.push(format!("unmounting {}: {e}", mount.display()));
            }
        }
        for dir in self.cgroup_dirs() {
            if let Err(e) = fs::remove_dir(&dir) {
                problems.push(format!("removing cgroup {}: {e}", dir.display()));
            }
        }
        if self.root.exists() {
            if let Err(e) = fs::remove_dir_all(&self.root) {
                problems.push(format!("removing {}: {e}", self.root.display()));
            }
        }
        for path in &self.host_paths {
            if path.is_dir() {
                // Only an empty directory is ours to remove; anything else is someone else's.
                let _ = fs::remove_dir(path);
            } else if path.exists() {
                if let Err(e) = fs::remove_file(path) {
                    problems.push(format!("removing {}: {e}", path.display()));
                }
            }
        }
        problems
    }

    /// [`Sandbox::clean`], once; later calls (and the drop) do nothing.
    pub fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        self.clean()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for problem in self.teardown() {
            eprintln!("cleanup of {}: {problem}", self.root.display());
        }
    }
}

/// Undoes the octal escapes (`\040` for a space) of a mountinfo path.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points of this mount namespace at or under `root`, deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|f| PathBuf::from(unescape_mountinfo(f)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// The host's name, as a container in a fresh UTS namespace without a hostname inherits it.
pub fn host_hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname cannot fail")
        .to_string_lossy()
        .into_owned()
}

/// Fails the test unless `/proc/self/cgroup` text from inside a container shows, for the
/// memory and pids controllers, a path under `parent` that names the container (`id`): the
/// engine's cgroup parent and the container's own leaf, as the runtime was asked to make.
pub fn assert_cgroup_path(proc_self_cgroup: &str, parent: &str, id: &str) {
    let lines: Vec<&str> = proc_self_cgroup
        .lines()
        .filter(|l| {
            let controllers = l.split(':').nth(1).unwrap_or("");
            controllers.split(',').any(|c| c == "memory" || c == "pids")
        })
        .collect();
    assert!(
        !lines.is_empty(),
        "no memory or pids line in the container's /proc/self/cgroup:\n{proc_self_cgroup}"
    );
    for line in lines {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        assert!(
            path.starts_with(&format!("{parent}/")) && path.contains(id),
            "the container's cgroup line `{line}` is not under `{parent}` or does not name \
             `{id}`; all of /proc/self/cgroup:\n{proc_self_cgroup}"
        );
    }
}
