//! ID-mapped bind mounts (`idmap`, `ridmap`, `mounts[].uidMappings`) as a user sees them: the
//! owner a file shows inside the container, and the owner a file made inside gets on the host,
//! with and without a container user namespace; and the refusals the runtime-spec asks for.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_tests::{Bundle, Runtime};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

/// A busybox bundle with `/data` made in its rootfs: the image's root belongs to host root,
/// so container root in a user namespace could not make the mount point itself.
fn bundle() -> Bundle {
    let b = Bundle::new().expect("a busybox bundle");
    fs::create_dir(b.rootfs().join("data")).expect("mkdir /data in the rootfs");
    b
}

/// Berth-only: runc 1.1 (the reference here) predates idmapped mounts. Says so when skipping.
fn berth(rt: &Runtime) -> bool {
    if !rt.is_berth() {
        eprintln!(
            "skipped: idmapped mounts are tested against berth-runtime only (runc 1.1 has none)"
        );
    }
    rt.is_berth()
}

/// A host directory owned by `uid:gid` holding `file` with the same owner.
fn owned_dir(rt: &Runtime, name: &str, uid: u32, gid: u32) -> PathBuf {
    let dir = rt.scratch().join(name);
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("file"), "x").expect("write");
    for p in [&dir, &dir.join("file")] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    }
    dir
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::metadata(path).expect("stat on the host");
    (m.uid(), m.gid())
}

fn idmapped(source: &Path, options: &[&str], maps: Option<(u32, u32, u32)>) -> serde_json::Value {
    let mut m = json!({
        "destination": "/data", "type": "bind", "source": source, "options": options
    });
    if let Some((container_id, host_id, size)) = maps {
        let map = json!([{ "containerID": container_id, "hostID": host_id, "size": size }]);
        m["uidMappings"] = map.clone();
        m["gidMappings"] = map;
    }
    m
}

const SCRIPT: &str =
    "stat -c %u:%g /data /data/file; touch /data/made-inside && stat -c %u:%g /data/made-inside";

#[test]
fn a_uid_1000_directory_is_root_inside_a_user_namespace() {
    let rt = runtime();
    if !berth(&rt) {
        return;
    }
    let dir = owned_dir(&rt, "userns", 1000, 1000);
    // Container root is host 100000; the mount shows on-disk 1000 as host 100000.
    let b = bundle()
        .user_namespace(0, 100_000, 65_536)
        .mount(idmapped(&dir, &["bind", "idmap"], Some((1000, 100_000, 1))))
        .shell(SCRIPT);
    let out = rt.run_ok("idmap-userns", &b).expect("run");
    assert_eq!(out.stdout, "0:0\n0:0\n0:0\n", "{out:?}");
    assert_eq!(
        owner(&dir.join("made-inside")),
        (1000, 1000),
        "a file root made inside is owned by 1000 on the host"
    );
}

#[test]
fn a_uid_1000_directory_is_root_without_a_user_namespace() {
    let rt = runtime();
    if !berth(&rt) {
        return;
    }
    let dir = owned_dir(&rt, "nouserns", 1000, 1000);
    let b = bundle()
        .mount(idmapped(&dir, &["bind"], Some((1000, 0, 1))))
        .shell(SCRIPT);
    let out = rt.run_ok("idmap-host", &b).expect("run");
    assert_eq!(out.stdout, "0:0\n0:0\n0:0\n", "{out:?}");
    assert_eq!(owner(&dir.join("made-inside")), (1000, 1000));
}

#[test]
fn ridmap_without_mappings_takes_the_containers_and_reaches_submounts() {
    let rt = runtime();
    if !berth(&rt) {
        return;
    }
    let dir = owned_dir(&rt, "ridmap", 0, 0);
    let sub = dir.join("sub");
    fs::create_dir(&sub).expect("mkdir sub");
    // A submount (a tmpfs), so rbind copies two mounts and ridmap maps both.
    let tmpfs = Mounted::tmpfs(&sub);
    let b = bundle()
        .user_namespace(0, 100_000, 65_536)
        .mount(idmapped(&dir, &["rbind", "ridmap"], None))
        .shell("stat -c %u:%g /data /data/sub; touch /data/sub/x && stat -c %u:%g /data/sub/x");
    let out = rt.run_ok("ridmap", &b).expect("run");
    drop(tmpfs);
    assert_eq!(
        out.stdout, "0:0\n0:0\n0:0\n",
        "host root's files are root's inside through the container's own mapping: {out:?}"
    );
}

#[test]
fn idmap_refusals_name_the_field() {
    let rt = runtime();
    if !berth(&rt) {
        return;
    }
    let dir = owned_dir(&rt, "refuse", 0, 0);
    let cases: Vec<(Bundle, &str)> = vec![
        (
            bundle().mount(idmapped(&dir, &["bind", "idmap"], None)),
            "has no user namespace",
        ),
        (
            bundle().user_namespace(0, 100_000, 65_536).mount(json!({
                "destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]
            })),
            "anything but a bind mount",
        ),
        (
            bundle().user_namespace(0, 100_000, 65_536).mount(json!({
                "destination": "/data", "type": "bind", "source": dir, "options": ["bind"],
                "uidMappings": [{ "containerID": 0, "hostID": 1, "size": 1 }]
            })),
            "mounts[",
        ),
        (
            // sysfs has no idmapping support: the kernel's EINVAL, explained.
            bundle().user_namespace(0, 100_000, 65_536).mount(idmapped(
                Path::new("/sys/kernel/mm"),
                &["bind", "idmap"],
                None,
            )),
            "(sysfs) does not support idmapped mounts",
        ),
    ];
    for (b, want) in cases {
        let out = rt
            .run(&rt.new_id("idmap-bad"), &b.shell("true"))
            .expect("run");
        assert!(!out.success(), "refused: {out:?}");
        assert!(out.stderr.contains(want), "{want:?} in {:?}", out.stderr);
    }
}

/// A tmpfs mounted on the host for a test, unmounted on drop (also when the test fails).
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Mounted {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=755", "berth-idmap-test"])
            .arg(at)
            .status()
            .expect("run mount(8)");
        assert!(status.success(), "mount a tmpfs on {}", at.display());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
