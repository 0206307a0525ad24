//! AppArmor and SELinux fields on a host without either module: `process.apparmorProfile`,
//! `process.selinuxLabel`, `linux.mountLabel` and `exec --apparmor`/`--process-label` are refused
//! with the field's name (runc runs such containers unconfined without a word; berth does not),
//! the profile "unconfined" runs, and `features` reports neither module.

use std::path::Path;

use berth_tests::{Bundle, Runtime};

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// The checks hold for berth on a host without AppArmor and SELinux; anything else says why it
/// skips.
fn applicable(rt: &Runtime) -> bool {
    if !rt.is_berth() {
        eprintln!("skipped: runc ignores these fields on a host without the module; berth refuses");
        return false;
    }
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.starts_with('Y'));
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor || selinux {
        eprintln!("skipped: this host has AppArmor or SELinux; these tests are for a host without");
        return false;
    }
    true
}

#[test]
fn labels_are_refused_by_field_on_a_host_without_the_module() {
    let rt = runtime();
    if !applicable(&rt) {
        return;
    }
    let cases: Vec<(Bundle, &str)> = vec![
        (
            {
                let mut b = bundle();
                b.spec_mut()["process"]["apparmorProfile"] = "docker-default".into();
                b
            },
            "process.apparmorProfile \"docker-default\": this host has no AppArmor",
        ),
        (
            {
                let mut b = bundle();
                b.spec_mut()["process"]["selinuxLabel"] =
                    "system_u:system_r:container_t:s0:c1,c2".into();
                b
            },
            "process.selinuxLabel \"system_u:system_r:container_t:s0:c1,c2\": this host has no SELinux",
        ),
        (
            {
                let mut b = bundle();
                b.spec_mut()["linux"]["mountLabel"] =
                    "system_u:object_r:container_file_t:s0:c1,c2".into();
                b
            },
            "linux.mountLabel \"system_u:object_r:container_file_t:s0:c1,c2\": this host has no SELinux",
        ),
    ];
    for (b, want) in cases {
        let out = rt
            .run(&rt.new_id("lsm"), &b.shell("echo ran"))
            .expect("run");
        assert!(!out.success(), "refused: {out:?}");
        assert!(
            !out.stdout.contains("ran"),
            "the program never ran: {out:?}"
        );
        assert!(out.stderr.contains(want), "{want:?} in {:?}", out.stderr);
    }
}

#[test]
fn the_unconfined_profile_runs_without_apparmor() {
    let rt = runtime();
    if !applicable(&rt) {
        return;
    }
    let mut b = bundle().shell("echo ran");
    b.spec_mut()["process"]["apparmorProfile"] = "unconfined".into();
    let out = rt.run_ok("unconfined", &b).expect("run");
    assert_eq!(out.stdout, "ran\n");
}

#[test]
fn exec_label_flags_are_refused_by_name() {
    let rt = runtime();
    if !applicable(&rt) {
        return;
    }
    let id = rt.new_id("lsmexec");
    // Kept until the end: the container's root lives in the bundle.
    let b = bundle().args(&["sleep", "1000"]);
    rt.create_and_start(&id, &b).expect("create and start");
    for (flag, value, want) in [
        (
            "--apparmor",
            "docker-default",
            "process.apparmorProfile \"docker-default\": this host has no AppArmor",
        ),
        (
            "--process-label",
            "a:b:c:s0",
            "process.selinuxLabel \"a:b:c:s0\": this host has no SELinux",
        ),
    ] {
        let out = rt
            .exec_with(&id, &[flag, value], &["echo", "ran"])
            .expect("exec");
        assert!(!out.success(), "{flag} refused: {out:?}");
        assert!(out.stderr.contains(want), "{want:?} in {:?}", out.stderr);
    }
    let out = rt
        .exec_with(&id, &["--apparmor", "unconfined"], &["echo", "ran"])
        .expect("exec")
        .ok()
        .expect("unconfined execs");
    assert_eq!(out.stdout, "ran\n");
}

#[test]
fn features_report_neither_module() {
    let rt = runtime();
    if !applicable(&rt) {
        return;
    }
    let features = rt
        .invoke(&["features"])
        .expect("features")
        .ok()
        .expect("features succeeds")
        .json()
        .expect("features JSON");
    assert_eq!(features["linux"]["apparmor"]["enabled"], false);
    assert_eq!(features["linux"]["selinux"]["enabled"], false);
}
