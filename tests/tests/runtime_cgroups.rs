//! cgroups as a user checks them on this hybrid host: the limits set in the v1 controller
//! files under the configured cgroupsPath, the init inside that cgroup, and the cgroup gone
//! after delete.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use berth_tests::{Bundle, HostSnapshot, Runtime};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// The v1 controller directory for `cgroups_path` (absolute, as the tests set it).
fn controller_dir(controller: &str, cgroups_path: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join(cgroups_path.trim_start_matches('/'))
}

fn read_trimmed(path: &PathBuf) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Creates a container with `bundle` under cgroupsPath `/<id>`, checks `file` of `controller`
/// holds `want` and lists the init, then kills and deletes it and checks the host is clean.
fn check_limit(tag: &str, bundle: Bundle, controller: &str, file: &str, want: &str) {
    let rt = runtime();
    let id = rt.new_id(tag);
    let cgroups_path = format!("/{id}");
    let bundle = bundle.cgroups_path(&cgroups_path);
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[bundle.path()]);
    rt.create(&id, &bundle)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("state pid");
    let dir = controller_dir(controller, &cgroups_path);
    assert_eq!(
        read_trimmed(&dir.join(file)),
        want,
        "{}",
        dir.join(file).display()
    );
    let procs = read_trimmed(&dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "init {pid} is in {}: {procs}",
        dir.display()
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
    assert!(!dir.exists(), "delete removed {}", dir.display());
    snapshot.assert_clean();
}

#[test]
fn memory_limit_is_in_the_cgroup_file() {
    let b = bundle()
        .memory_limit(64 * 1024 * 1024)
        .args(&["sleep", "1000"]);
    check_limit("mem", b, "memory", "memory.limit_in_bytes", "67108864");
}

#[test]
fn pids_limit_is_in_the_cgroup_file() {
    let b = bundle().pids_limit(42).args(&["sleep", "1000"]);
    check_limit("pids", b, "pids", "pids.max", "42");
}

#[test]
fn cpu_shares_are_in_the_cgroup_file() {
    let b = bundle().cpu_shares(512).args(&["sleep", "1000"]);
    check_limit("cpu", b, "cpu", "cpu.shares", "512");
}

#[test]
fn kernel_tcp_memory_limit_is_in_the_v1_cgroup_file() {
    // cgroup v1 still enforces memory.kmem.tcp.limit_in_bytes (deprecated); v2 has no such
    // limit and refuses the field.
    if !PathBuf::from("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes").exists() {
        eprintln!("skipped: no cgroup v1 memory.kmem.tcp.limit_in_bytes on this host");
        return;
    }
    let b = bundle()
        .resources(serde_json::json!({ "memory": { "kernelTCP": 16_777_216 } }))
        .args(&["sleep", "1000"]);
    check_limit(
        "kmemtcp",
        b,
        "memory",
        "memory.kmem.tcp.limit_in_bytes",
        "16777216",
    );
}

#[test]
fn pids_limit_is_enforced_inside() {
    let rt = runtime();
    // The shell and one child fit under 2; a third process cannot fork.
    let b = bundle()
        .pids_limit(2)
        .shell("sleep 100 & if sleep 0; then echo forked; else echo refused; fi; kill %1");
    let id = rt.new_id("pidsmax");
    let out = rt.run(&id, &b).expect("run");
    assert!(
        out.stdout.contains("refused") || out.stderr.contains("fork"),
        "the third process is refused: {out:?}"
    );
}

#[test]
fn an_oom_kill_is_recorded_in_the_memory_cgroup() {
    // swap == limit: no swap to escape to. `tail /dev/zero` holds an ever longer "line".
    let b = bundle()
        .resources(serde_json::json!({ "memory": { "limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024 } }))
        .args(&["tail", "/dev/zero"]);
    let rt = runtime();
    let id = rt.new_id("oom");
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    rt.wait_exit(pid, WAIT)
        .expect("the kernel kills the process");
    assert_eq!(rt.status(&id).expect("state"), "stopped");
    let oom = read_trimmed(&controller_dir("memory", &format!("/{id}")).join("memory.oom_control"));
    assert!(
        oom.lines().any(|l| l == "oom_kill 1"),
        "one OOM kill recorded: {oom}"
    );
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}
