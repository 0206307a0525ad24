//! `linux.seccomp` seen from inside a container: berth's default profile blocks what it
//! promises, each action does what the spec says, argument comparisons select by value,
//! unknown syscall names are skipped, a notify listener reaches the agent's socket, and a
//! config without the section is not filtered.
//!
//! The default profile is taken from `berth-runtime spec` (build berth-runtime first) and run
//! by the runtime under test, so the same profile is proven under runc:
//! `BERTH_TEST_RUNTIME=$(which runc) cargo test -p berth-tests --test runtime_seccomp`.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::{json, Value};

use berth_tests::{Bundle, Flavor, Runtime};

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// `target/<profile>/berth-runtime`, whatever runtime is under test.
fn berth_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe
        .parent()
        .expect("the test lives in target/<profile>/deps");
    let profile = if deps.ends_with("deps") {
        deps.parent().expect("target/<profile>")
    } else {
        deps
    };
    profile.join("berth-runtime")
}

/// The `linux.seccomp` section that `berth-runtime spec` writes.
fn default_profile() -> Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let binary = berth_binary();
    let out = Command::new(&binary)
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} spec (build it first: cargo build -p berth-runtime): {e}",
                binary.display()
            )
        });
    assert!(out.status.success(), "berth-runtime spec: {out:?}");
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let spec: Value = serde_json::from_str(&text).expect("config.json is JSON");
    let profile = spec["linux"]["seccomp"].clone();
    assert!(profile.is_object(), "spec writes linux.seccomp: {spec}");
    profile
}

/// A profile that allows everything but `rules`.
fn allow_all_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules })
}

fn with_seccomp(b: Bundle, profile: Value) -> Bundle {
    let mut b = b;
    b.spec_mut()["linux"]["seccomp"] = profile;
    b
}

/// Runs the bundle to completion and returns (exit code, stdout + stderr).
fn run(rt: &Runtime, tag: &str, b: &Bundle) -> (Option<i32>, String) {
    let out = rt.run(&rt.new_id(tag), b).expect("run");
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn default_profile_blocks_mount_unshare_and_swapon_even_with_cap_sys_admin() {
    let rt = runtime();
    // CAP_SYS_ADMIN is added to the process, but the profile is the one for the default
    // capability set: the kernel would allow these calls, the filter must not.
    let b = with_seccomp(
        bundle()
            .add_capability("CAP_SYS_ADMIN")
            .tmpfs("/mnt")
            .shell(
                "grep '^Seccomp:' /proc/self/status; \
                 mount -t tmpfs none /mnt 2>&1; echo mount=$?; \
                 unshare -U true 2>&1; echo unshare=$?; \
                 swapon /dev/null 2>&1; echo swapon=$?; \
                 umount /mnt 2>&1; echo umount=$?; \
                 echo ok",
            ),
        default_profile(),
    );
    let (code, out) = run(&rt, "default", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Seccomp:\t2"),
        "the process is filtered: {out}"
    );
    for call in ["mount", "unshare", "swapon", "umount"] {
        assert!(
            !out.contains(&format!("{call}=0")),
            "{call} must fail under the default profile: {out}"
        );
    }
    // busybox mount words EPERM as "permission denied (are you root?)".
    assert!(
        out.matches("Operation not permitted").count() >= 3 && out.contains("permission denied"),
        "each fails with EPERM: {out}"
    );

    // The same container without the filter may mount: the capability is real.
    let b = bundle()
        .add_capability("CAP_SYS_ADMIN")
        .tmpfs("/mnt")
        .shell("mount -t tmpfs none /mnt && echo mounted");
    let (code, out) = run(&rt, "nofilter", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("mounted"), "{out}");
}

#[test]
fn default_profile_lets_an_ordinary_shell_work() {
    let rt = runtime();
    let b = with_seccomp(
        bundle().tmpfs("/work").shell(
            "cd /work && mkdir d && echo hi > d/f && cat d/f && ls d && ps >/dev/null && \
             sleep 0 && (true &) && wait && date >/dev/null && echo done",
        ),
        default_profile(),
    );
    let (code, out) = run(&rt, "ordinary", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("hi\nf\n") && out.ends_with("done\n"), "{out}");
}

#[test]
fn errno_action_returns_errno_ret() {
    let rt = runtime();
    let b = with_seccomp(
        bundle().tmpfs("/work").shell("mkdir /work/x; echo rc=$?"),
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
        ])),
    );
    let (code, out) = run(&rt, "errno", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Permission denied") && out.contains("rc=1"),
        "{out}"
    );
}

#[test]
fn errno_without_errno_ret_is_eperm_and_default_errno_ret_applies() {
    let rt = runtime();
    let b = with_seccomp(
        bundle().tmpfs("/work").shell("mkdir /work/x; echo rc=$?"),
        allow_all_but(json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }])),
    );
    let (_, out) = run(&rt, "eperm", &b);
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn kill_process_action_kills_with_sigsys() {
    let rt = runtime();
    let b = with_seccomp(
        bundle().args(&["uname"]),
        allow_all_but(json!([{ "names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS" }])),
    );
    let (code, out) = run(&rt, "kill", &b);
    assert_eq!(code, Some(128 + 31), "killed by SIGSYS (31): {out}");
}

#[test]
fn kill_thread_and_trap_end_a_single_threaded_program_with_sigsys() {
    let rt = runtime();
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"] {
        let b = with_seccomp(
            bundle().args(&["uname"]),
            allow_all_but(json!([{ "names": ["uname"], "action": action }])),
        );
        let (code, out) = run(&rt, "sigsys", &b);
        assert_eq!(code, Some(128 + 31), "{action}: SIGSYS: {out}");
    }
}

#[test]
fn trace_without_a_tracer_fails_with_enosys_and_log_allows() {
    let rt = runtime();
    let b = with_seccomp(
        bundle()
            .tmpfs("/work")
            .shell("mkdir /work/x; echo mkdir=$?; rmdir /work/x 2>&1 || echo fail; echo rmdir=$?"),
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG" },
            { "names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 1 }
        ])),
    );
    let (code, out) = run(&rt, "trace", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("mkdir=0"), "SCMP_ACT_LOG allows: {out}");
    assert!(
        out.contains("Function not implemented"),
        "SCMP_ACT_TRACE with no tracer: ENOSYS: {out}"
    );
}

#[test]
fn argument_comparison_selects_by_value() {
    let rt = runtime();
    // socket(AF_INET, …) fails with EAFNOSUPPORT; AF_INET6 is untouched.
    let b = with_seccomp(
        bundle().shell("nc -w 1 127.0.0.1 1 2>&1; nc -w 1 ::1 1 2>&1; echo end"),
        allow_all_but(json!([{
            "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
            "args": [{ "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }]
        }])),
    );
    let (_, out) = run(&rt, "args", &b);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("Address family not supported")),
        "AF_INET is refused: {out}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| !l.contains("Address family not supported")),
        "AF_INET6 is not: {out}"
    );
}

#[test]
fn several_arguments_are_anded_and_several_rules_ored() {
    let rt = runtime();
    // Rule 1: socket(AF_INET6, SOCK_STREAM) refused (both must hold, so ping6's AF_INET6
    // datagram or raw socket is not). Rule 2: socket(AF_INET, …) refused.
    let b = with_seccomp(
        bundle().shell(
            "nc -w 1 ::1 1 2>&1; echo; ping6 -c 1 -W 1 ::1 2>&1; echo; \
             nc -w 1 127.0.0.1 1 2>&1; echo",
        ),
        allow_all_but(json!([
            { "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
              "args": [{ "index": 0, "value": 10, "op": "SCMP_CMP_EQ" },
                       { "index": 1, "value": 0xf, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
              "args": [{ "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }] }
        ])),
    );
    let (_, out) = run(&rt, "andor", &b);
    let refused = out.matches("Address family not supported").count();
    assert_eq!(
        refused, 2,
        "TCP over IPv6 and IPv4 refused, ping over IPv6 not: {out}"
    );
    assert!(out.contains("ping"), "{out}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let rt = runtime();
    let b = with_seccomp(
        bundle().tmpfs("/work").shell("mkdir /work/x; echo rc=$?"),
        allow_all_but(json!([{
            "names": ["berth_no_such_syscall", "mkdir", "mkdirat"],
            "action": "SCMP_ACT_ERRNO", "errnoRet": 13
        }])),
    );
    let (code, out) = run(&rt, "unknown", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn the_filter_is_loaded_without_no_new_privileges_for_a_non_root_user() {
    let rt = runtime();
    // Without no_new_privs loading a filter needs CAP_SYS_ADMIN, so the runtime must load it
    // before it drops the capabilities and switches to uid 1000.
    let b = with_seccomp(
        bundle()
            .no_new_privileges(false)
            .user(1000, 1000, &[])
            .tmpfs("/work")
            .shell("grep '^NoNewPrivs' /proc/self/status; mkdir /work/x; echo rc=$?"),
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
        ])),
    );
    let (code, out) = run(&rt, "nonnp", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn exec_gets_the_containers_filter() {
    let rt = runtime();
    let id = rt.new_id("exec");
    let b = with_seccomp(
        bundle().tmpfs("/work").shell("echo ready; exec sleep 60"),
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
        ])),
    );
    rt.start_until(&id, &b, "ready")
        .expect("the container starts");
    let out = rt
        .exec(&id, &["sh", "-c", "mkdir /work/y; echo rc=$?"])
        .expect("exec");
    rt.destroy(&id);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("Permission denied"), "{text}");
}

#[test]
fn without_a_seccomp_section_nothing_is_filtered() {
    let rt = runtime();
    let b = bundle().shell("grep '^Seccomp:' /proc/self/status");
    let (code, out) = run(&rt, "none", &b);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
}

#[test]
fn notify_sends_the_listener_and_state_to_the_agent() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a directory for the agent's socket");
    let socket = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&socket).expect("bind the agent's socket");
    let id = rt.new_id("notify");
    let b = with_seccomp(
        bundle().tmpfs("/work").shell("mkdir /work/x; echo rc=$?"),
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "listenerMetadata": "berth-test-metadata",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
        }),
    );
    // The runtime connects and sends during create; the message waits in the backlog.
    let created = rt.create(&id, &b).expect("create");
    assert!(created.success(), "create with a notify rule: {created:?}");
    let pid = rt.pid(&id).expect("the init's pid");
    let (conn, _) = agent.accept().expect("the runtime connected to the agent");

    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let got = recvmsg(&conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .expect("recvmsg from the runtime");
    let mut listener = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            listener = fds.next();
        }
    }
    let state: Value = serde_json::from_slice(&buf[..got.bytes]).expect("the message is JSON");
    assert!(
        listener.is_some(),
        "a descriptor came with the state: {state}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["pid"], json!(pid), "{state}");
    assert_eq!(state["metadata"], "berth-test-metadata", "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert_eq!(state["state"]["pid"], json!(pid), "{state}");
    assert_eq!(state["state"]["status"], "creating", "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");

    // With the listener closed, a notified syscall fails with ENOSYS.
    drop(listener);
    drop(conn);
    rt.start(&id).expect("start").ok().expect("start succeeds");
    let pid_exit = rt.wait_exit(pid, Duration::from_secs(30));
    let out = std::fs::read_to_string(&created.stdout_path).unwrap_or_default();
    rt.destroy(&id);
    pid_exit.expect("the container exits");
    assert!(out.contains("rc=1"), "mkdir failed: {out}");
}

#[test]
fn invalid_sections_are_refused_naming_the_field() {
    let rt = runtime();
    let cases = [
        (
            allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_ALLOW" },
                                 { "names": ["rmdir"], "action": "SCMP_ACT_FOO" }])),
            "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_FOO\"",
        ),
        (
            allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                   "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_FOO" }] }])),
            "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_FOO\"",
        ),
        (
            allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                   "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }])),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"] }),
            "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FOO\"",
        ),
        (
            allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }])),
            "linux.seccomp.listenerPath",
        ),
    ];
    for (profile, want) in cases {
        let b = with_seccomp(bundle().args(&["true"]), profile);
        let id = rt.new_id("invalid");
        let out = rt.create(&id, &b).expect("create");
        rt.destroy(&id);
        assert!(!out.success(), "{want}: must be refused: {out:?}");
        if rt.flavor() != Flavor::Runc {
            assert!(out.stderr.contains(want), "{want:?} in {out:?}");
        }
    }
}

/// An allowlist written before Linux 5.8/5.11 (runtime-tools' and old Docker profiles) names
/// neither faccessat2 nor close_range: the runtime's own steps after the filter is loaded must
/// not need them, or every container under such a profile fails to start.
#[test]
fn a_profile_without_faccessat2_and_close_range_still_runs_the_program() {
    let rt = runtime();
    let profile = allow_all_but(json!([
        { "names": ["faccessat2", "close_range"], "action": "SCMP_ACT_ERRNO" }
    ]));
    let b = with_seccomp(bundle().shell("echo started"), profile);
    let (code, out) = run(&rt, "oldlist", &b);
    assert_eq!(code, Some(0), "the program ran: {out}");
    assert_eq!(out, "started\n");
}
