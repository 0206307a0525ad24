//! The container's process as a user sees it from inside: pid 1, environment, cwd, user and
//! groups, umask, no_new_privs, rlimits, capabilities, the console, inherited fds, and `exec`.
//!
//! Run against runc: `BERTH_TEST_RUNTIME=$(which runc) cargo test -p berth-tests`.

use std::fs;
use std::time::Duration;

use berth_tests::console::read_until_closed;
use berth_tests::runtime::Invocation;
use berth_tests::{Bundle, ConsoleSocket, Flavor, Runtime};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// The value of `field` in a /proc/<pid>/status text, tabs folded to spaces.
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status:\n{status}"))
}

#[test]
fn init_is_pid_one() {
    let rt = runtime();
    let out = rt
        .run_ok(
            "pid1",
            &bundle().shell("echo $$; readlink /proc/self; true"),
        )
        .expect("run");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"1"),
        "the shell is pid 1 in its pid namespace: {out:?}"
    );
    assert_ne!(
        lines.get(1),
        Some(&"1"),
        "readlink, a child of pid 1, is not pid 1: {out:?}"
    );
}

#[test]
fn env_and_cwd_are_as_configured() {
    let rt = runtime();
    let b = bundle()
        .env("GREETING", "hello berth")
        .cwd("/etc")
        .shell("echo \"$GREETING\"; pwd");
    let out = rt.run_ok("env", &b).expect("run");
    assert_eq!(out.stdout, "hello berth\n/etc\n");
}

#[test]
fn user_and_additional_gids_are_as_configured() {
    let rt = runtime();
    let b = bundle()
        .user(65534, 65534, &[10, 20])
        .shell("cat /proc/self/status; id -un");
    let out = rt.run_ok("user", &b).expect("run");
    assert_eq!(status_field(&out.stdout, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status_field(&out.stdout, "Gid"), "65534 65534 65534 65534");
    assert_eq!(status_field(&out.stdout, "Groups"), "10 20");
    assert!(
        out.stdout.ends_with("nobody\n"),
        "the rootfs's /etc/passwd names uid 65534: {out:?}"
    );
}

#[test]
fn umask_is_as_configured() {
    let rt = runtime();
    let out = rt
        .run_ok("umask", &bundle().umask(0o027).shell("umask"))
        .expect("run");
    assert_eq!(out.stdout.trim(), "0027");
}

#[test]
fn no_new_privileges_is_set_and_unset() {
    let rt = runtime();
    for (on, want) in [(true, "1"), (false, "0")] {
        let b = bundle()
            .no_new_privileges(on)
            .args(&["cat", "/proc/self/status"]);
        let out = rt.run_ok("nnp", &b).expect("run");
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs"),
            want,
            "noNewPrivileges {on}"
        );
    }
}

#[test]
fn rlimit_is_visible_in_proc_limits() {
    let rt = runtime();
    // Below the host's hard limits: this VM's bounding set lacks CAP_SYS_RESOURCE.
    let b = bundle()
        .rlimit("RLIMIT_NOFILE", 512, 768)
        .rlimit("RLIMIT_CORE", 0, 0)
        .args(&["cat", "/proc/self/limits"]);
    let out = rt.run_ok("rlimit", &b).expect("run");
    let row = |name: &str| -> Vec<String> {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}: {out:?}"));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(&row("Max open files")[..2], ["512", "768"]);
    assert_eq!(&row("Max core file size")[..2], ["0", "0"]);
}

#[test]
fn dropped_capability_is_absent() {
    let rt = runtime();
    let b = bundle()
        .drop_capability("CAP_KILL")
        .args(&["cat", "/proc/self/status"]);
    let out = rt.run_ok("caps", &b).expect("run");
    const CAP_KILL: u64 = 1 << 5;
    const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
    const CAP_AUDIT_WRITE: u64 = 1 << 29;
    for set in ["CapEff", "CapBnd", "CapPrm"] {
        let mask = u64::from_str_radix(&status_field(&out.stdout, set), 16)
            .expect("a hex capability mask");
        assert_eq!(
            mask & CAP_KILL,
            0,
            "{set} {mask:#x} lacks the dropped CAP_KILL"
        );
        assert_eq!(
            mask,
            CAP_NET_BIND_SERVICE | CAP_AUDIT_WRITE,
            "{set} holds exactly the configured capabilities"
        );
    }
}

#[test]
fn console_socket_receives_the_pty_master() {
    let b = bundle()
        .terminal(true)
        .shell("echo hello-tty; tty; stty size 2>/dev/null; exit 0");
    let rt = runtime();
    let sock = ConsoleSocket::bind(rt.scratch(), "console.sock").expect("console socket");
    let id = rt.new_id("tty");
    let path = sock.path().to_string_lossy().into_owned();
    // The runtime blocks in create until the fd is received: receive while it runs.
    let created = std::thread::scope(|s| {
        let create = s.spawn(|| {
            rt.create_with(
                &id,
                &b,
                &["--console-socket", &path],
                &Invocation::default(),
            )
        });
        let master = sock.receive_master(WAIT);
        let created = create.join().expect("create thread");
        (master, created)
    });
    let mut master = created.0.expect("the pty master over SCM_RIGHTS");
    created.1.expect("create").ok().expect("create succeeds");
    rt.start(&id).expect("start").ok().expect("start succeeds");
    let text = read_until_closed(&mut master, WAIT).expect("read the pty");
    assert!(
        text.contains("hello-tty\r\n"),
        "the container wrote through the pty (onlcr adds \\r): {text:?}"
    );
    assert!(text.contains("/dev/pts/"), "its stdio is a pty: {text:?}");
    rt.delete_force(&id).expect("delete");
}

#[test]
fn preserve_fds_passes_fd_three_and_closes_the_rest() {
    let rt = runtime();
    let passed = rt.scratch().join("passed");
    let leaked = rt.scratch().join("leaked");
    fs::write(&passed, "through fd 3\n").expect("write");
    fs::write(&leaked, "must not reach the container\n").expect("write");
    // No pipeline: while the shell (pid 1) runs one, it holds the pipes' fds itself.
    let b = bundle().shell("cat <&3; ls /proc/1/fd; true");
    let id = rt.new_id("fds");
    // fd 3 is preserved; fd 4 is open in the runtime too and must be closed.
    let options = Invocation {
        open_fds: vec![(3, passed), (4, leaked)],
        ..Invocation::default()
    };
    let out = rt
        .run_with(&id, &b, &["--preserve-fds", "1"], &options)
        .expect("run")
        .ok()
        .expect("run succeeds");
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("through fd 3"));
    let mut fds: Vec<u32> = lines
        .map(|l| l.trim().parse().expect("an fd number"))
        .collect();
    fds.sort_unstable();
    assert_eq!(
        fds,
        [0, 1, 2, 3],
        "pid 1 holds stdio and fd 3 only: {out:?}"
    );
}

/// `--preserve-fds` larger than what the caller opened: the numbers that are not open are
/// skipped, and none of the runtime's own descriptors (which may sit on those numbers) leaks.
#[test]
fn preserve_fds_beyond_the_open_ones_passes_only_those() {
    let rt = runtime();
    let passed = rt.scratch().join("passed");
    fs::write(&passed, "through fd 3\n").expect("write");
    let b = bundle().shell("cat <&3; ls /proc/1/fd; true");
    let id = rt.new_id("fds-gap");
    let options = Invocation {
        open_fds: vec![(3, passed)],
        ..Invocation::default()
    };
    let out = rt
        .run_with(&id, &b, &["--preserve-fds", "40"], &options)
        .expect("run");
    if rt.flavor() == Flavor::Runc {
        // runc 1.1.5 hands every number in the range to Go's exec, which fails on a closed one.
        assert!(
            !out.success(),
            "runc refuses a range with closed fds: {out:?}"
        );
        return;
    }
    assert!(out.success(), "run succeeds: {out:?}");
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("through fd 3"));
    let mut fds: Vec<u32> = lines
        .map(|l| l.trim().parse().expect("an fd number"))
        .collect();
    fds.sort_unstable();
    // Whatever this test process inherited without close-on-exec (a shell or CI wrapper may
    // leave a descriptor open) reaches the runtime too and is rightly passed on.
    let mut want = vec![0, 1, 2, 3];
    want.extend((4..43).filter(|fd| inherited_by_children(*fd)));
    assert_eq!(
        fds, want,
        "pid 1 holds stdio, fd 3 and what the caller itself passed on: {out:?}"
    );
}

/// Whether this process holds descriptor `fd` without close-on-exec, from /proc/self/fdinfo.
fn inherited_by_children(fd: u32) -> bool {
    const O_CLOEXEC: u32 = 0o2000000;
    let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return false;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & O_CLOEXEC == 0)
}

#[test]
fn exec_sees_the_same_namespaces_as_init() {
    // The bundle outlives the runtime, whose drop kills what a failed test left.
    let b = bundle().args(&["sleep", "1000"]);
    let rt = runtime();
    let id = rt.new_id("exec");
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    let kinds = ["pid", "net", "ipc", "uts", "mnt"];
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = rt
        .exec(&id, &["sh", "-c", &script])
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    let inside: Vec<&str> = out.stdout.lines().collect();
    for (kind, seen) in kinds.iter().zip(&inside) {
        let init =
            fs::read_link(format!("/proc/{pid}/ns/{kind}")).expect("the init's namespace link");
        assert_eq!(
            *seen,
            init.to_string_lossy(),
            "exec joins the init's {kind} namespace"
        );
    }
    assert_eq!(inside.len(), kinds.len(), "{out:?}");
    let env = rt
        .exec(&id, &["sh", "-c", "echo $$; hostname"])
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    assert_ne!(
        env.stdout.lines().next(),
        Some("1"),
        "an exec'd process is not pid 1"
    );
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the init exits");
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

/// `process.scheduler`, `process.ioPriority` and `linux.personality` reach the container's
/// process (and an exec'd one gets the container's personality). runc 1.1.5 predates all three
/// (runtime-spec 1.2, runc 1.2) and leaves the defaults.
#[test]
fn scheduler_io_priority_and_personality_are_applied() {
    let rt = runtime();
    let with_attributes = |b: Bundle| {
        let mut b = b;
        b.spec_mut()["process"]["scheduler"] =
            serde_json::json!({ "policy": "SCHED_BATCH", "nice": 5 });
        b.spec_mut()["process"]["ioPriority"] =
            serde_json::json!({ "class": "IOPRIO_CLASS_IDLE", "priority": 0 });
        b.spec_mut()["linux"]["personality"] = serde_json::json!({ "domain": "LINUX32" });
        b
    };
    let b = with_attributes(bundle().shell(
        "set -- $(cat /proc/$$/stat); echo nice=${19} policy=${41}; ionice -p $$; uname -m",
    ));
    let out = rt.run_ok("sched", &b).expect("run");
    let sleeper = with_attributes(bundle().args(&["sleep", "1000"]));
    let id = rt.new_id("sched-exec");
    rt.create_and_start(&id, &sleeper)
        .expect("create and start");
    let exec = rt
        .exec(&id, &["uname", "-m"])
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    let native = std::env::consts::ARCH;
    if rt.flavor() == Flavor::Runc {
        assert_eq!(
            out.stdout,
            format!("nice=0 policy=0\nnone: prio 0\n{native}\n")
        );
        return;
    }
    // What uname(2) reports for a 32-bit personality on this machine's architecture.
    let compat = match native {
        "x86_64" => "i686",
        "aarch64" => "armv8l",
        other => panic!("no known 32-bit machine name for {other}"),
    };
    assert_eq!(out.stdout, format!("nice=5 policy=3\nidle\n{compat}\n"));
    assert_eq!(exec.stdout, format!("{compat}\n"));
}

/// Values the kernel or the spec refuse fail `create` with the field's name.
#[test]
fn bad_scheduler_io_priority_and_personality_are_refused() {
    let rt = runtime();
    let cases: [(&str, serde_json::Value, &str); 3] = [
        (
            "process",
            serde_json::json!({ "scheduler": { "policy": "SCHED_FIFO", "priority": 500 } }),
            "process.scheduler",
        ),
        (
            "process",
            serde_json::json!({ "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 9 } }),
            "process.ioPriority",
        ),
        (
            "linux",
            serde_json::json!({ "personality": { "domain": "LINUX", "flags": ["SHORT_INODE"] } }),
            "linux.personality",
        ),
    ];
    for (section, patch, field) in cases {
        let mut b = bundle().shell("true");
        for (k, v) in patch.as_object().expect("an object") {
            b.spec_mut()[section][k] = v.clone();
        }
        let id = rt.new_id("badsched");
        let out = rt.run(&id, &b).expect("run");
        if rt.flavor() == Flavor::Runc {
            // runc 1.1.5 ignores all three.
            continue;
        }
        assert!(
            !out.success() && out.stderr.contains(field),
            "{field} refused by name: {out:?}"
        );
    }
}
