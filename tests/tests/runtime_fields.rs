//! runtime-spec fields berth does not apply are refused with the field's name, never ignored
//! (the table in docs/RUNTIME.md lists them all); `process.execCPUAffinity` and
//! `linux.memoryPolicy`, which it applies, as seen from inside; `features` says exactly that.

use std::time::Duration;

use berth_tests::{Bundle, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

fn with(path: &[&str], value: Value) -> Bundle {
    let mut b = bundle().shell("echo ran");
    let mut at = b.spec_mut();
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    b
}

#[test]
fn unapplied_fields_are_refused_by_name() {
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("skipped: runc 1.1 ignores several of these fields; the rule is berth's");
        return;
    }
    let cases: Vec<(Bundle, &str)> = vec![
        (
            with(&["linux", "netDevices"], json!({ "dummy0": {} })),
            "linux.netDevices",
        ),
        (
            with(&["linux", "memoryPolicy"], json!({ "mode": "MPOL_BIND" })),
            "linux.memoryPolicy.nodes: mode MpolBind needs at least one node",
        ),
        (
            with(
                &["linux", "timeOffsets"],
                json!({ "boottime": { "secs": 5 } }),
            ),
            "linux.timeOffsets: needs a new time namespace",
        ),
        (
            with(&["linux", "intelRdt"], json!({ "closID": "berth" })),
            "linux.intelRdt",
        ),
        (
            with(
                &["linux", "resources", "rdma"],
                json!({ "mlx5_0": { "hcaHandles": 3 } }),
            ),
            "linux.resources.rdma",
        ),
        (
            with(
                &["linux", "resources", "memory"],
                json!({ "kernel": 67_108_864 }),
            ),
            "linux.resources.memory.kernel",
        ),
        (
            with(
                &["linux", "resources", "memory"],
                json!({ "useHierarchy": false }),
            ),
            "linux.resources.memory.useHierarchy",
        ),
        (
            with(&["windows"], json!({ "layerFolders": [] })),
            "windows: berth runs Linux containers",
        ),
        (
            with(&["process", "commandLine"], json!("cmd /c dir")),
            "process.commandLine",
        ),
        (
            with(&["process", "user", "username"], json!("admin")),
            "process.user.username",
        ),
        (
            with(
                &["mounts"],
                json!([{ "destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"] }]),
            ),
            "tmpcopyup",
        ),
        (
            with(&["process", "execCPUAffinity"], json!({ "final": "3-1" })),
            "process.execCPUAffinity.final",
        ),
    ];
    // net_cls is a v1 controller; where its hierarchy is missing (this host) classID is refused.
    let mut cases = cases;
    if !std::path::Path::new("/sys/fs/cgroup/net_cls").exists() {
        cases.push((
            with(
                &["linux", "resources", "network"],
                json!({ "classID": 1_048_577 }),
            ),
            "linux.resources.network.classID",
        ));
    }
    for (b, want) in cases {
        let out = rt.run(&rt.new_id("field"), &b).expect("run");
        assert!(!out.success(), "{want} refused: {out:?}");
        assert!(
            !out.stdout.contains("ran"),
            "the program never ran: {out:?}"
        );
        assert!(out.stderr.contains(want), "{want:?} in {:?}", out.stderr);
    }
}

#[test]
fn exec_cpu_affinity_sets_the_exec_process_cpus() {
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("skipped: runc 1.1 has no execCPUAffinity");
        return;
    }
    let mut b = bundle().args(&["sleep", "1000"]);
    b.spec_mut()["process"]["execCPUAffinity"] = json!({ "initial": "0", "final": "0" });
    let id = rt.new_id("affinity");
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    let script = "grep Cpus_allowed_list /proc/self/status; grep Cpus_allowed_list /proc/1/status";
    let out = rt
        .exec(&id, &["sh", "-c", script])
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().map(|l| l.split_whitespace().last()),
        Some(Some("0")),
        "the exec'd process runs on CPU 0: {out:?}"
    );
    let host = std::fs::read_to_string("/proc/self/status").expect("our status");
    let ours = host
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .expect("Cpus_allowed_list");
    assert_eq!(
        lines.get(1).map(|l| l.split_whitespace().last()),
        Some(ours.split_whitespace().last()),
        "the init keeps its affinity (execCPUAffinity is for exec only): {out:?}"
    );
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the init exits");
}

#[test]
fn memory_policy_binds_the_container_to_its_nodes() {
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("skipped: runc 1.1 has no linux.memoryPolicy");
        return;
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("skipped: this kernel has no NUMA support (/proc/self/numa_maps)");
        return;
    }
    // Node 0 exists on every NUMA kernel; what numa_maps shows for the shell's stack is the
    // task policy it inherited from the init.
    let b = with(
        &["linux", "memoryPolicy"],
        json!({ "mode": "MPOL_BIND", "nodes": "0" }),
    )
    .shell("grep -m1 stack /proc/self/numa_maps");
    let out = rt.run_ok("mempolicy", &b).expect("run");
    assert!(out.stdout.contains(" bind:0 "), "{out:?}");
    let b = bundle().shell("grep -m1 stack /proc/self/numa_maps");
    let out = rt.run_ok("mempolicy-default", &b).expect("run");
    assert!(out.stdout.contains(" default "), "{out:?}");
}

#[test]
fn features_report_what_is_applied() {
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!("skipped: the document checked is berth's");
        return;
    }
    let f = rt
        .invoke(&["features"])
        .expect("features")
        .ok()
        .expect("features succeeds")
        .json()
        .expect("JSON");
    let linux = &f["linux"];
    assert_eq!(linux["intelRdt"]["enabled"], false);
    assert_eq!(linux["netDevices"]["enabled"], false);
    assert!(
        linux["memoryPolicy"]["modes"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("MPOL_BIND"))),
        "{linux}"
    );
    assert_eq!(linux["cgroup"]["rdma"], false);
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
    let options: Vec<&str> = f["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for o in ["rro", "idmap", "ridmap", "nosymfollow", "rbind"] {
        assert!(options.contains(&o), "{o} in {options:?}");
    }
    assert!(
        !options.contains(&"tmpcopyup"),
        "tmpcopyup is refused, not supported"
    );
}
