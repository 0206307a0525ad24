//! The rest of config.json as a user checks it: sysctls, domainname, oomScoreAdj, devices and
//! the devices cgroup, cpu quota and cpuset, memory swap and reservation, blkio throttles,
//! hugetlb on this hybrid host, the inheritable capability set, `spec --rootless`, `exec -t`
//! through a console socket, and a cwd that would escape the rootfs.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use berth_tests::console::read_until_closed;
use berth_tests::runtime::Invocation;
use berth_tests::{Bundle, ConsoleSocket, Flavor, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    let path = PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join(id)
        .join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn sysctl_domainname_and_oom_score_adj_are_applied() {
    let rt = runtime();
    let mut b = bundle();
    b.spec_mut()["linux"]["sysctl"] =
        json!({ "net.ipv4.ip_forward": "1", "kernel.shmmni": "1234" });
    b.spec_mut()["domainname"] = json!("berth.test");
    // Positive: this VM's bounding set lacks CAP_SYS_RESOURCE, which a negative value needs.
    b.spec_mut()["process"]["oomScoreAdj"] = json!(500);
    let b = b.shell(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/kernel/domainname /proc/self/oom_score_adj",
    );
    let out = rt.run_ok("sysctl", &b).expect("run");
    // runc 1.1.5 predates the spec's domainname (runtime-spec 1.1, runc 1.2): it leaves it unset.
    let domain = if rt.flavor() == Flavor::Runc {
        "(none)"
    } else {
        "berth.test"
    };
    assert_eq!(out.stdout, format!("1\n1234\n{domain}\n500\n"));
    let host = fs::read_to_string("/proc/sys/kernel/shmmni").expect("host shmmni");
    assert_ne!(
        host.trim(),
        "1234",
        "the sysctl stayed in the container's ipc namespace"
    );
}

#[test]
fn configured_devices_exist_and_the_devices_cgroup_allows_only_them() {
    let b = bundle().args(&["sleep", "1000"]);
    let mut b = b;
    b.spec_mut()["linux"]["devices"] = json!([
        { "path": "/dev/berth-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0 }
    ]);
    let b = b.resources(json!({ "devices": [
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw" }
    ]}));
    let rt = runtime();
    let id = rt.new_id("devices");
    rt.create_and_start(&id, &b).expect("create and start");
    let out = rt
        .exec(
            &id,
            &[
                "sh",
                "-c",
                "stat -c '%F %t:%T %a' /dev/berth-null; echo x > /dev/berth-null && echo wrote",
            ],
        )
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    assert_eq!(out.stdout, "character special file 1:3 666\nwrote\n");
    let list = cgroup_file("devices", &id, "devices.list");
    assert!(
        list.lines().any(|l| l == "c 1:3 rw" || l == "c 1:3 rwm"),
        "c 1:3 allowed: {list}"
    );
    assert!(
        !list.lines().any(|l| l.starts_with("a ")),
        "not everything allowed: {list}"
    );
}

/// A fifo in linux.devices is made and needs no device rule (the devices cgroup governs only
/// character and block devices); an unbuffered character device (`u`) is allowed as a `c`.
#[test]
fn fifo_and_unbuffered_devices_are_made_and_allowed() {
    let mut b = bundle().args(&["sleep", "1000"]);
    b.spec_mut()["linux"]["devices"] = json!([
        { "path": "/dev/berth-fifo", "type": "p", "major": 0, "minor": 0, "fileMode": 420 },
        { "path": "/dev/berth-kmsg", "type": "u", "major": 1, "minor": 11, "fileMode": 384 }
    ]);
    let rt = runtime();
    let id = rt.new_id("fifo");
    rt.create_and_start(&id, &b).expect("create and start");
    let out = rt
        .exec(
            &id,
            &[
                "sh",
                "-c",
                "stat -c '%F' /dev/berth-fifo; stat -c '%F %t:%T' /dev/berth-kmsg",
            ],
        )
        .expect("exec")
        .ok()
        .expect("exec succeeds");
    assert_eq!(out.stdout, "fifo\ncharacter special file 1:b\n");
    let list = cgroup_file("devices", &id, "devices.list");
    // runc 1.1.5 adds no device rule for the nodes of linux.devices (only for its default
    // devices); berth allows each node it makes, as the spec's default devices are allowed.
    let allowed = list.lines().any(|l| l == "c 1:11 rwm");
    assert_eq!(
        allowed,
        rt.flavor() != Flavor::Runc,
        "the unbuffered device is allowed as c 1:11: {list}"
    );
}

#[test]
fn cpu_quota_and_cpuset_are_in_the_cgroup_files() {
    let b = bundle().args(&["sleep", "1000"]).resources(
        json!({ "cpu": { "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" } }),
    );
    let rt = runtime();
    let id = rt.new_id("cpuq");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_file("cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(cgroup_file("cpuset", &id, "cpuset.mems"), "0");
}

#[test]
fn memory_swap_and_reservation_are_in_the_cgroup_files() {
    let b = bundle()
        .args(&["sleep", "1000"])
        .resources(json!({ "memory": {
            "limit": 64 * 1024 * 1024, "swap": 96 * 1024 * 1024, "reservation": 32 * 1024 * 1024
        }}));
    let rt = runtime();
    let id = rt.new_id("swap");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "67108864"
    );
    // The spec's swap is memory plus swap, as memory.memsw.limit_in_bytes is.
    assert_eq!(
        cgroup_file("memory", &id, "memory.memsw.limit_in_bytes"),
        "100663296"
    );
    assert_eq!(
        cgroup_file("memory", &id, "memory.soft_limit_in_bytes"),
        "33554432"
    );
}

#[test]
fn blkio_throttle_is_in_the_cgroup_file() {
    // The host's first virtio disk; its major:minor from sysfs.
    let dev = fs::read_to_string("/sys/block/vda/dev").expect("this VM has /dev/vda");
    let (major, minor) = dev.trim().split_once(':').expect("major:minor");
    let (major, minor): (u64, u64) = (major.parse().expect("major"), minor.parse().expect("minor"));
    let b = bundle()
        .args(&["sleep", "1000"])
        .resources(json!({ "blockIO": {
            "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }],
            "throttleWriteIOPSDevice": [{ "major": major, "minor": minor, "rate": 300 }]
        }}));
    let rt = runtime();
    let id = rt.new_id("blkio");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let want = |rate: u32| format!("{major}:{minor} {rate}");
    assert_eq!(
        cgroup_file("blkio", &id, "blkio.throttle.read_bps_device"),
        want(1048576)
    );
    assert_eq!(
        cgroup_file("blkio", &id, "blkio.throttle.write_iops_device"),
        want(300)
    );
}

#[test]
fn hugetlb_limit_lands_in_the_hybrid_hosts_cgroup2_mount() {
    // On this hybrid host hugetlb is only in the cgroup2 mount at /sys/fs/cgroup/unified.
    let b = bundle()
        .args(&["sleep", "1000"])
        .resources(json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4194304 }] }));
    let rt = runtime();
    let id = rt.new_id("hugetlb");
    let out = rt.create(&id, &b).expect("create");
    let file = PathBuf::from("/sys/fs/cgroup/unified")
        .join(&id)
        .join("hugetlb.2MB.max");
    if rt.flavor() == Flavor::Runc {
        // runc 1.1.5's v1 manager looks for hugetlb in a v1 hierarchy, which this host lacks,
        // and refuses the create ("cannot set hugetlb limit"). The issue asks berth to set it in
        // the cgroup2 mount; the test holds berth to that and checks runc's gap is still there.
        assert!(
            !out.success() && out.stderr.contains("hugetlb"),
            "runc's known refusal: {out:?}"
        );
        return;
    }
    out.ok().expect("create succeeds");
    let value =
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    assert_eq!(value.trim(), "4194304");
}

#[test]
fn inheritable_capabilities_are_set() {
    let rt = runtime();
    let mut b = bundle();
    b.spec_mut()["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    let out = rt
        .run_ok("capinh", &b.args(&["grep", "CapInh", "/proc/self/status"]))
        .expect("run");
    let mask = out.stdout.split_whitespace().nth(1).expect("a mask");
    assert_eq!(
        u64::from_str_radix(mask, 16).expect("hex"),
        1 << 5,
        "CAP_KILL alone: {out:?}"
    );
}

#[test]
fn spec_rootless_maps_the_user() {
    let rt = runtime();
    let dir = rt.scratch().join("rootless");
    fs::create_dir(&dir).expect("mkdir");
    let options = Invocation {
        cwd: Some(dir.clone()),
        ..Invocation::default()
    };
    rt.invoke_with(&["spec", "--rootless"], &options)
        .expect("spec --rootless")
        .ok()
        .expect("spec --rootless succeeds");
    let spec: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).expect("config.json"))
            .expect("JSON");
    let ns = spec["linux"]["namespaces"].as_array().expect("namespaces");
    assert!(
        ns.iter().any(|n| n["type"] == "user"),
        "a user namespace: {spec}"
    );
    assert_eq!(spec["linux"]["uidMappings"][0]["containerID"], 0, "{spec}");
    assert_eq!(
        spec["linux"]["uidMappings"][0]["hostID"], 0,
        "the caller (root here) is mapped: {spec}"
    );
}

#[test]
fn exec_with_a_terminal_sends_its_pty() {
    let b = bundle().args(&["sleep", "1000"]);
    let rt = runtime();
    let id = rt.new_id("exect");
    rt.create_and_start(&id, &b).expect("create and start");
    let sock = ConsoleSocket::bind(rt.scratch(), "exec.sock").expect("console socket");
    // runc takes a console socket only with -d: the caller, not the runtime, holds the pty.
    let path = sock.path().to_string_lossy().into_owned();
    let (master, out) = std::thread::scope(|s| {
        let exec = s.spawn(|| {
            rt.exec_with(
                &id,
                &["-t", "-d", "--console-socket", &path],
                &["sh", "-c", "tty; echo exec-tty"],
            )
        });
        let master = sock.receive_master(WAIT);
        (master, exec.join().expect("exec thread"))
    });
    let mut master = master
        .unwrap_or_else(|e| panic!("the exec's pty master over SCM_RIGHTS: {e}; exec: {out:?}"));
    let text = read_until_closed(&mut master, WAIT).expect("read the pty");
    assert!(
        text.contains("/dev/pts/") && text.contains("exec-tty\r\n"),
        "{text:?}"
    );
    out.expect("exec").ok().expect("exec succeeds");
}

#[test]
fn cwd_cannot_escape_the_rootfs_through_a_leaked_fd() {
    // The class of CVE-2024-21626: a cwd of /proc/self/fd/N resolved against an fd the runtime
    // leaked into the container would leave the process outside its root. Whatever N, the
    // runtime must refuse, or the process's cwd must lie inside the rootfs.
    let rt = runtime();
    for fd in 3..10 {
        let b = bundle()
            .cwd(&format!("/proc/self/fd/{fd}"))
            .args(&["readlink", "/proc/self/cwd"]);
        let id = rt.new_id("cwdfd");
        let out = rt.run(&id, &b).expect("run");
        assert!(
            !out.success() || !out.stdout.starts_with("(unreachable)"),
            "fd {fd}: the process's cwd is outside its root: {out:?}"
        );
        if out.success() {
            assert!(out.stdout.starts_with('/'), "fd {fd}: {out:?}");
        }
    }
}
