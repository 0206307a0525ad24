//! Tests of the whole module: v2 logic against a fake cgroup tree in a temporary
//! directory, and the real kernel (as root) on this hybrid host, on its v1
//! hierarchies and on its cgroup2 mount seen as a pure-v2 host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::unistd::Pid;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder,
};

use super::*;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn deny_all_allow_null() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .expect("rule"),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .expect("rule"),
    ]
}

// ---------- cgroup v2 against a fake tree ----------

/// A temporary directory laid out as a cgroup2 mount with `/berth` already made.
struct FakeV2 {
    tmp: tempfile::TempDir,
}

const FAKE_V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids";

impl FakeV2 {
    fn new() -> FakeV2 {
        let tmp = tempfile::tempdir().expect("tempdir");
        for dir in [tmp.path().to_path_buf(), tmp.path().join("berth")] {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("cgroup.subtree_control"), "").expect("write");
        }
        FakeV2 { tmp }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn cgroup(&self, id: &str) -> Cgroup {
        let mountinfo = format!(
            "30 25 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            self.root().display()
        );
        let mounts = parse_mountinfo(&mountinfo).expect("mountinfo");
        let layout = Layout::from_mounts(&mounts, Some(FAKE_V2_CONTROLLERS)).expect("layout");
        assert_eq!(layout.kind, LayoutKind::V2);
        let path = resolve_cgroups_path(None, id).expect("path");
        layout.resolve(None, &path).expect("resolve")
    }

    /// Makes the interface files the kernel would show in a new cgroup.
    fn populate(&self, dir: &Path, files: &[(&str, &str)]) {
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("fake file");
        }
    }
}

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "cpu.weight",
    "cpu.max",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "memory.high",
];

#[test]
fn v2_create_enables_controllers_in_every_ancestor() {
    let fake = FakeV2::new();
    let cg = fake.cgroup("c1");
    cg.create().expect("create");
    let leaf = fake.root().join("berth/c1");
    assert!(leaf.is_dir());
    assert_eq!(cg.paths()["unified"], leaf);
    assert_eq!(cg.paths()["memory"], leaf);
    assert_eq!(cg.paths()["io"], leaf);
    let want = "+cpuset +cpu +io +memory +hugetlb +pids";
    assert_eq!(read(&fake.root().join("cgroup.subtree_control")), want);
    assert_eq!(
        read(&fake.root().join("berth/cgroup.subtree_control")),
        want
    );
    // Already enabled (as the kernel prints it): nothing is written again.
    std::fs::write(
        fake.root().join("cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .expect("write");
    cg.create().expect("create is idempotent");
    assert_eq!(
        read(&fake.root().join("cgroup.subtree_control")),
        "cpuset cpu io memory hugetlb pids"
    );
}

#[test]
fn v2_apply_converts_v1_values() {
    let fake = FakeV2::new();
    let cg = fake.cgroup("c2");
    cg.create().expect("create");
    let leaf = fake.root().join("berth/c2");
    let files: Vec<(&str, &str)> = V2_FILES.iter().map(|f| (*f, "")).collect();
    fake.populate(&leaf, &files);
    let mut unified = HashMap::new();
    unified.insert("memory.high".to_string(), "50000000".to_string());
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100_i64 << 20)
                .swap(300_i64 << 20)
                .reservation(50_i64 << 20)
                .build()
                .expect("memory"),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024_u64)
                .quota(50_000_i64)
                .period(100_000_u64)
                .cpus("0")
                .mems("0")
                .build()
                .expect("cpu"),
        )
        .pids(LinuxPidsBuilder::default().limit(10).build().expect("pids"))
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500_u16)
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .rate(1_048_576_u64)
                    .build()
                    .expect("throttle")])
                .build()
                .expect("blkio"),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4_i64 << 20)
            .build()
            .expect("hugetlb")])
        .unified(unified)
        .build()
        .expect("resources");
    cg.apply(&r).expect("apply");
    assert_eq!(read(&leaf.join("memory.max")), (100_u64 << 20).to_string());
    assert_eq!(
        read(&leaf.join("memory.swap.max")),
        (200_u64 << 20).to_string()
    );
    assert_eq!(read(&leaf.join("memory.low")), (50_u64 << 20).to_string());
    assert_eq!(read(&leaf.join("cpu.weight")), "100");
    assert_eq!(read(&leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(&leaf.join("cpuset.cpus")), "0");
    assert_eq!(read(&leaf.join("pids.max")), "10");
    assert_eq!(read(&leaf.join("io.weight")), "default 4950");
    assert_eq!(read(&leaf.join("io.max")), "8:0 rbps=1048576");
    assert_eq!(
        read(&leaf.join("hugetlb.2MB.max")),
        (4_u64 << 20).to_string()
    );
    assert_eq!(read(&leaf.join("memory.high")), "50000000");

    // checkBeforeUpdate refuses a limit below the current usage.
    std::fs::write(leaf.join("memory.current"), "4096\n").expect("write");
    let below_usage = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1024_i64)
                .check_before_update(true)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    assert!(matches!(
        cg.update(&below_usage),
        Err(Error::InvalidResources { .. })
    ));
    assert_eq!(read(&leaf.join("memory.max")), (100_u64 << 20).to_string());

    // Only a new period: the current quota is kept.
    std::fs::write(leaf.join("cpu.max"), "20000 100000\n").expect("write");
    let period_only = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .period(50_000_u64)
                .build()
                .expect("cpu"),
        )
        .build()
        .expect("resources");
    cg.update(&period_only).expect("update");
    assert_eq!(read(&leaf.join("cpu.max")), "20000 50000");
}

#[test]
fn v2_device_rules_are_never_dropped_silently() {
    // A fake cgroup2 directory is a plain directory: the device program cannot
    // be attached there (or, without root, not even loaded), and apply must say so.
    let fake = FakeV2::new();
    let cg = fake.cgroup("c3");
    cg.create().expect("create");
    let r = LinuxResourcesBuilder::default()
        .devices(deny_all_allow_null())
        .build()
        .expect("resources");
    let err = cg
        .apply(&r)
        .expect_err("v2 device rules cannot be attached to a plain directory");
    assert!(
        matches!(
            err,
            Error::DeviceRulesNeedEbpf { rules: 2, .. } | Error::DeviceProgram { .. }
        ),
        "{err}"
    );
}

#[test]
fn v2_refuses_bad_values_and_unknown_keys() {
    let fake = FakeV2::new();
    let cg = fake.cgroup("c4");
    cg.create().expect("create");
    let swap_without_limit = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swap(1_i64 << 30)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    assert!(matches!(
        cg.apply(&swap_without_limit),
        Err(Error::InvalidResources { .. })
    ));
    let mut unified = HashMap::new();
    unified.insert("../../etc/passwd".to_string(), "x".to_string());
    let escape = LinuxResourcesBuilder::default()
        .unified(unified)
        .build()
        .expect("resources");
    assert!(matches!(
        cg.apply(&escape),
        Err(Error::InvalidResources { .. })
    ));
    let missing_file = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().expect("pids"))
        .build()
        .expect("resources");
    let err = cg
        .apply(&missing_file)
        .expect_err("no pids.max in the fake");
    let msg = err.to_string();
    assert!(msg.contains("pids.max") && msg.contains("\"5\""), "{msg}");
}

#[test]
fn v2_stats_oom_and_frozen_from_files() {
    let fake = FakeV2::new();
    let cg = fake.cgroup("c5");
    cg.create().expect("create");
    let leaf = fake.root().join("berth/c5");
    fake.populate(
        &leaf,
        &[
            (
                "cpu.stat",
                "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 7\nnr_throttled 2\nthrottled_usec 50\n",
            ),
            ("cpuset.cpus.effective", "0-1\n"),
            ("cpuset.mems.effective", "0\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.peak", "8192\n"),
            ("memory.swap.current", "1024\n"),
            ("memory.swap.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 1000\nfile 2000\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
            ("io.stat", "254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
        ],
    );
    let s = cg.stats().expect("stats");
    assert_eq!(s.cpu.usage.total, 300_000);
    assert_eq!(s.cpu.usage.user, 200_000);
    assert_eq!(s.cpu.usage.kernel, 100_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.cpu.throttling.throttled_time, 50_000);
    assert_eq!(s.cpuset.cpus, vec![0, 1]);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 3);
    assert_eq!(s.memory.swap.usage, 5120);
    assert_eq!(s.memory.cache, 2000);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.blkio.io_service_bytes_recursive[1].value, 20);
    assert_eq!(cg.oom_kill_count().expect("oom"), 1);
    assert!(cg.is_frozen().expect("frozen"));
}

// ---------- the real kernel ----------

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A cgroup path no other test or user has: `/berth-test-<pid>-<n>`.
fn unique_path(tag: &str) -> String {
    format!(
        "/berth-test-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Prints why a kernel test cannot run here, or returns true when it can.
fn can_touch_kernel(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root to make cgroups (CI runs as root)");
        return false;
    }
    true
}

/// Kills the child and removes the cgroup even when an assertion fails.
struct Guard {
    cgroup: Cgroup,
    child: Option<Child>,
}

impl Guard {
    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // A frozen task cannot die; thaw first (ignore errors: maybe never frozen).
        let _ = self.cgroup.thaw();
        self.kill_child();
        let _ = self.cgroup.destroy();
    }
}

fn spawn_sleep() -> Child {
    Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep 30")
}

fn block_device() -> Option<(i64, i64)> {
    let entries = std::fs::read_dir("/sys/block").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let dev = std::fs::read_to_string(entry.path().join("dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        return Some((major.parse().ok()?, minor.parse().ok()?));
    }
    None
}

fn assert_all_gone(cg: &Cgroup) {
    for h in cg.hierarchies() {
        assert!(!h.dir.exists(), "{} was left behind", h.dir.display());
    }
}

#[test]
fn real_host_full_lifecycle() {
    if !can_touch_kernel("real_host_full_lifecycle") {
        return;
    }
    let path = unique_path("life");
    let cg = Cgroup::new(Some(&path), "unused").expect("new");
    eprintln!("layout {:?}, paths {:#?}", cg.layout_kind(), cg.paths());
    let mut guard = Guard {
        cgroup: cg.clone(),
        child: None,
    };
    cg.create().expect("create");
    for h in cg.hierarchies() {
        assert!(h.dir.is_dir(), "{} was not made", h.dir.display());
    }
    cg.create().expect("create again is a no-op");

    let paths = cg.paths();
    let (major, minor) = block_device().expect("a block device for blkio throttling");
    let has_blkio_weight = paths
        .get("blkio")
        .is_some_and(|d| d.join("blkio.weight").exists() || d.join("blkio.bfq.weight").exists());
    let mut blkio = LinuxBlockIoBuilder::default().throttle_read_bps_device(vec![
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(1_048_576_u64)
            .build()
            .expect("throttle"),
    ]);
    if has_blkio_weight {
        blkio = blkio.weight(300_u16);
    } else {
        eprintln!(
            "NOTE real_host_full_lifecycle: no blkio weight file (device scheduler is not bfq); \
             checking that a weight is refused with a clear error instead"
        );
    }
    let hugetlb = cg.hierarchy_of(Controller::Hugetlb).is_some();
    let mut r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64_i64 << 20)
                .swap(128_i64 << 20)
                .reservation(32_i64 << 20)
                .swappiness(10_u64)
                .build()
                .expect("memory"),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512_u64)
                .quota(50_000_i64)
                .period(100_000_u64)
                .cpus("0")
                .mems("0")
                .build()
                .expect("cpu"),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().expect("pids"))
        .block_io(blkio.build().expect("blkio"))
        .devices(deny_all_allow_null())
        .build()
        .expect("resources");
    if hugetlb {
        r.set_hugepage_limits(Some(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4_i64 << 20)
            .build()
            .expect("hugetlb")]));
    }
    cg.apply(&r).expect("apply");

    let mem = &paths["memory"];
    if cg.hierarchy_of(Controller::Memory).map(|h| h.version) == Some(Version::V1) {
        assert_eq!(
            read(&mem.join("memory.limit_in_bytes")),
            (64_u64 << 20).to_string()
        );
        assert_eq!(
            read(&mem.join("memory.memsw.limit_in_bytes")),
            (128_u64 << 20).to_string()
        );
        assert_eq!(
            read(&mem.join("memory.soft_limit_in_bytes")),
            (32_u64 << 20).to_string()
        );
        assert_eq!(read(&mem.join("memory.swappiness")), "10");
        assert_eq!(read(&paths["cpu"].join("cpu.shares")), "512");
        assert_eq!(read(&paths["cpu"].join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&paths["cpu"].join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&paths["cpuset"].join("cpuset.cpus")), "0");
        assert_eq!(read(&paths["cpuset"].join("cpuset.mems")), "0");
        assert_eq!(read(&paths["pids"].join("pids.max")), "64");
        assert_eq!(read(&paths["devices"].join("devices.list")), "c 1:3 rwm");
        if has_blkio_weight {
            let dir = &paths["blkio"];
            let file = if dir.join("blkio.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            // BFQ prints "default 300".
            let weight = read(&dir.join(file));
            assert!(weight.ends_with("300"), "{file}: {weight}");
        }
        let throttle = read(&paths["blkio"].join("blkio.throttle.read_bps_device"));
        assert_eq!(throttle, format!("{major}:{minor} 1048576"));
    } else {
        eprintln!("NOTE: memory is not on v1 here; the v1 file checks were not run");
    }
    if hugetlb {
        let h = cg.hierarchy_of(Controller::Hugetlb).expect("hugetlb");
        let file = match h.version {
            Version::V1 => "hugetlb.2MB.limit_in_bytes",
            Version::V2 => "hugetlb.2MB.max",
        };
        assert_eq!(read(&h.dir.join(file)), (4_u64 << 20).to_string());
    }
    if !has_blkio_weight && paths.contains_key("blkio") {
        let weight = LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(300_u16)
                    .build()
                    .expect("blkio"),
            )
            .build()
            .expect("resources");
        let err = cg.apply(&weight).expect_err("no weight file");
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("blkio.weight"), "{err}");
    }

    // A process joins every hierarchy.
    guard.child = Some(spawn_sleep());
    let pid = Pid::from_raw(guard.child.as_ref().expect("child").id() as i32);
    cg.add_process(pid).expect("add_process");
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let own = parse_proc_cgroup(&proc_cgroup).expect("parse");
    assert!(own.v1.iter().all(|(_, p)| p == &path), "{proc_cgroup}");
    if cg.hierarchies().iter().any(|h| h.version == Version::V2) {
        assert_eq!(own.v2.as_deref(), Some(path.as_str()), "{proc_cgroup}");
    }
    assert_eq!(cg.pids().expect("pids"), vec![pid]);

    let s = cg.stats().expect("stats");
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 64);
    assert_eq!(s.memory.usage.limit, 64 << 20);
    assert_eq!(s.memory.swap.limit, 128 << 20);
    assert!(!s.memory.raw.is_empty());
    assert_eq!(s.cpu.usage.percpu.len(), num_cpus_possible(), "{s:?}");
    if cg.hierarchy_of(Controller::Cpuset).is_some() {
        assert_eq!(s.cpuset.cpus, vec![0], "{:?}", s.cpuset);
        assert_eq!(s.cpuset.mems, vec![0], "{:?}", s.cpuset);
    }
    if hugetlb {
        assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
    }
    let json = serde_json::to_value(&s).expect("json");
    assert!(json["memory"]["usage"]["limit"].is_u64());
    assert_eq!(cg.oom_kill_count().expect("oom"), 0);

    // Freeze and thaw.
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("is_frozen"));
    let state = read(Path::new(&format!("/proc/{pid}/stat")));
    assert!(state.contains(") S ") || state.contains(") D "), "{state}");
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("is_frozen"));

    // Update: raising memory above the old memory+swap limit needs memsw written first.
    let update = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(192_i64 << 20)
                .swap(256_i64 << 20)
                .build()
                .expect("memory"),
        )
        .pids(LinuxPidsBuilder::default().limit(32).build().expect("pids"))
        .build()
        .expect("resources");
    cg.update(&update).expect("update");
    assert_eq!(read(&paths["pids"].join("pids.max")), "32");
    if cg.hierarchy_of(Controller::Memory).map(|h| h.version) == Some(Version::V1) {
        assert_eq!(
            read(&mem.join("memory.limit_in_bytes")),
            (192_u64 << 20).to_string()
        );
        assert_eq!(
            read(&mem.join("memory.memsw.limit_in_bytes")),
            (256_u64 << 20).to_string()
        );
        // And back down: now the limit must go first.
        let down = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(48_i64 << 20)
                    .swap(64_i64 << 20)
                    .build()
                    .expect("memory"),
            )
            .build()
            .expect("resources");
        cg.update(&down).expect("update down");
        assert_eq!(
            read(&mem.join("memory.limit_in_bytes")),
            (48_u64 << 20).to_string()
        );
    }
    // A value the kernel refuses names the file and the value.
    let bad = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .cpus("99999")
                .build()
                .expect("cpu"),
        )
        .build()
        .expect("resources");
    let err = cg.update(&bad).expect_err("no such cpu");
    assert!(
        err.to_string().contains("cpuset.cpus") && err.to_string().contains("99999"),
        "{err}"
    );

    // Destroy refuses while the process lives and names it.
    let err = cg.destroy().expect_err("a process is still inside");
    assert!(
        err.to_string().contains(&pid.to_string()),
        "the error should name pid {pid}: {err}"
    );
    guard.kill_child();
    cg.destroy().expect("destroy");
    assert_all_gone(&cg);
    cg.destroy().expect("destroy of a gone cgroup is fine");
}

fn num_cpus_possible() -> usize {
    // cpuacct.usage_percpu has one entry per possible CPU.
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible cpus");
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().expect("cpu") - a.parse::<usize>().expect("cpu") + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn real_host_nested_path_removes_only_the_leaf_and_sub_cgroups() {
    if !can_touch_kernel("real_host_nested_path_removes_only_the_leaf_and_sub_cgroups") {
        return;
    }
    let parent = unique_path("nest");
    let cg = Cgroup::new(Some(&format!("{parent}/leaf")), "unused").expect("new");
    let parent_cg = Cgroup::new(Some(&parent), "unused").expect("parent");
    let _parent_guard = Guard {
        cgroup: parent_cg.clone(),
        child: None,
    };
    let _guard = Guard {
        cgroup: cg.clone(),
        child: None,
    };
    cg.create().expect("create");
    // The cpuset parent made on the way got cpus and mems too, or the leaf could not hold tasks.
    if let Some(h) = cg.hierarchy_of(Controller::Cpuset) {
        let parent_dir = h.dir.parent().expect("parent");
        assert!(!read(&parent_dir.join("cpuset.cpus")).is_empty());
        assert!(!read(&h.dir.join("cpuset.mems")).is_empty());
    }
    // A sub-cgroup the container made itself.
    for h in cg.hierarchies() {
        std::fs::create_dir(h.dir.join("inner")).expect("inner cgroup");
    }
    cg.destroy().expect("destroy");
    assert_all_gone(&cg);
    for h in parent_cg.hierarchies() {
        assert!(
            h.dir.is_dir(),
            "the shared parent {} must stay",
            h.dir.display()
        );
    }
    parent_cg.destroy().expect("destroy parent");
    assert_all_gone(&parent_cg);
}

#[test]
fn real_host_failed_create_removes_what_it_made() {
    if !can_touch_kernel("real_host_failed_create_removes_what_it_made") {
        return;
    }
    let layout = Layout::detect().expect("layout");
    let Some(memory) = layout
        .v1
        .iter()
        .find(|h| h.controllers.contains(&Controller::Memory))
    else {
        eprintln!("SKIP real_host_failed_create_removes_what_it_made: no v1 memory hierarchy");
        return;
    };
    // A real hierarchy, then one whose mount point cannot hold directories.
    let mountinfo = format!(
        "35 31 0:32 / {} rw - cgroup cgroup rw,memory\n36 31 0:99 / /proc/berth-no-such-mount rw - cgroup cgroup rw,pids\n",
        memory.mount_point.display()
    );
    let mounts = parse_mountinfo(&mountinfo).expect("mountinfo");
    let layout = Layout::from_mounts(&mounts, None).expect("layout");
    let path = unique_path("fail");
    let cg = layout
        .resolve(None, &CgroupsPath::Absolute(format!("{path}/leaf")))
        .expect("resolve");
    let _guard = Guard {
        cgroup: cg.clone(),
        child: None,
    };
    let err = cg
        .create()
        .expect_err("the second hierarchy cannot be made");
    assert!(matches!(err, Error::Mkdir { .. }), "{err}");
    let made_parent = memory.mount_point.join(path.trim_start_matches('/'));
    assert!(
        !made_parent.exists(),
        "{} was left behind",
        made_parent.display()
    );
}

/// The host's cgroup2 mount seen as a pure-v2 host: the v2 code path on the real kernel.
fn unified_only() -> Option<Layout> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let line = text.lines().find(|l| {
        l.split(" - ")
            .nth(1)
            .is_some_and(|t| t.starts_with("cgroup2 "))
    })?;
    let mounts = parse_mountinfo(line).expect("parse");
    let controllers =
        std::fs::read_to_string(mounts[0].mount_point.join("cgroup.controllers")).ok()?;
    Layout::from_mounts(&mounts, Some(&controllers)).ok()
}

#[test]
fn real_unified_hierarchy_as_pure_v2() {
    if !can_touch_kernel("real_unified_hierarchy_as_pure_v2") {
        return;
    }
    let Some(layout) = unified_only() else {
        eprintln!("SKIP real_unified_hierarchy_as_pure_v2: no cgroup2 mount on this host");
        return;
    };
    assert_eq!(layout.kind, LayoutKind::V2);
    let path = unique_path("v2");
    let cg = layout
        .resolve(None, &CgroupsPath::Absolute(path.clone()))
        .expect("resolve");
    let mut guard = Guard {
        cgroup: cg.clone(),
        child: None,
    };
    cg.create().expect("create");
    let dir = cg.paths()["unified"].clone();
    assert!(dir.is_dir());

    let hugetlb = cg.hierarchy_of(Controller::Hugetlb).is_some();
    if hugetlb {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(2_i64 << 20)
                .build()
                .expect("hugetlb")])
            .build()
            .expect("resources");
        cg.apply(&r).expect("apply hugetlb");
        assert_eq!(
            read(&dir.join("hugetlb.2MB.max")),
            (2_u64 << 20).to_string()
        );
    } else {
        eprintln!("NOTE real_unified_hierarchy_as_pure_v2: hugetlb is not on cgroup2 here");
    }
    // No devices controller on v2: restricting rules become an eBPF program, and
    // applying them again (update) replaces it rather than adding a second one.
    let rules = LinuxResourcesBuilder::default()
        .devices(deny_all_allow_null())
        .build()
        .expect("resources");
    cg.apply(&rules)
        .expect("apply device rules as an eBPF program");
    cg.update(&rules).expect("update device rules");
    let attached = || {
        let fd = std::fs::File::open(&dir).expect("open the cgroup2 dir");
        berth_sys::bpf::prog_query(
            std::os::fd::AsFd::as_fd(&fd),
            berth_sys::bpf::BPF_CGROUP_DEVICE,
        )
        .expect("query device programs")
        .len()
    };
    assert_eq!(attached(), 1);

    guard.child = Some(spawn_sleep());
    let pid = Pid::from_raw(guard.child.as_ref().expect("child").id() as i32);
    cg.add_process(pid).expect("add_process");
    assert_eq!(cg.pids().expect("pids"), vec![pid]);
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("is_frozen"));
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("is_frozen"));
    let s = cg.stats().expect("stats");
    if hugetlb {
        assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
    }
    assert!(cg.destroy().is_err(), "the sleeping child is still inside");
    guard.kill_child();
    cg.destroy().expect("destroy");
    assert!(!dir.exists());
    drop(guard);
    assert!(!PathBuf::from(&dir).exists());
}
