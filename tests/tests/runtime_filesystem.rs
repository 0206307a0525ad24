//! The container's filesystem as a user sees it: masked paths empty, read-only paths and a
//! read-only root refusing writes with EROFS, bind and tmpfs mounts where configured.

use std::fs;

use berth_tests::{Bundle, Runtime};

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

#[test]
fn masked_paths_are_empty() {
    let rt = runtime();
    let b = bundle();
    fs::write(b.rootfs().join("etc/secret"), "secret file\n").expect("write");
    fs::create_dir(b.rootfs().join("vault")).expect("mkdir");
    fs::write(b.rootfs().join("vault/key"), "secret key\n").expect("write");
    let b = b.masked_paths(&["/etc/secret", "/vault"]).shell(
        "echo file=$(cat /etc/secret | wc -c); echo dir=$(ls -A /vault | wc -l); echo kcore=$(head -c 16 /proc/kcore | wc -c)",
    );
    let out = rt.run_ok("mask", &b).expect("run");
    assert_eq!(
        out.stdout, "file=0\ndir=0\nkcore=0\n",
        "masked file, directory and the default /proc/kcore read empty"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let rt = runtime();
    let data = rt.scratch().join("data");
    fs::create_dir(&data).expect("mkdir");
    let b = bundle()
        .bind(&data, "/data", false)
        .readonly_paths(&["/data"])
        .shell(
            "touch /data/x 2>&1; echo $?; { echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1; true",
        );
    let out = rt.run_ok("ropath", &b).expect("run");
    assert!(
        out.stdout.contains("Read-only file system"),
        "EROFS on /data: {out:?}"
    );
    assert_eq!(
        out.stdout.matches("Read-only file system").count(),
        2,
        "and on the default /proc/sys: {out:?}"
    );
    assert!(
        !data.join("x").exists(),
        "nothing reached the host directory"
    );
}

#[test]
fn readonly_root_refuses_writes_and_writable_root_accepts_them() {
    let rt = runtime();
    let out = rt
        .run_ok(
            "roroot",
            &bundle().readonly_root(true).shell("touch /x 2>&1; true"),
        )
        .expect("run");
    assert!(
        out.stdout.contains("Read-only file system"),
        "EROFS on a read-only root: {out:?}"
    );
    let b = bundle()
        .readonly_root(false)
        .shell("touch /made-inside && echo ok");
    let out = rt.run_ok("rwroot", &b).expect("run");
    assert_eq!(out.stdout, "ok\n");
    assert!(
        b.rootfs().join("made-inside").exists(),
        "the write landed in the bundle's rootfs"
    );
}

#[test]
fn bind_and_tmpfs_mounts_are_where_configured() {
    let rt = runtime();
    let shared = rt.scratch().join("shared");
    fs::create_dir(&shared).expect("mkdir");
    fs::write(shared.join("hello"), "from the host\n").expect("write");
    let b = bundle()
        .bind(&shared, "/shared", true)
        .tmpfs("/scratch")
        .shell("cat /shared/hello; grep -E ' /(shared|scratch) ' /proc/self/mounts | cut -d' ' -f2,3,4 | cut -d, -f1; touch /scratch/x && echo tmpfs-writable; touch /shared/y 2>&1; true");
    let out = rt.run_ok("mounts", &b).expect("run");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "from the host");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/shared ") && l.ends_with(" ro")),
        "/shared is a read-only bind: {out:?}"
    );
    assert!(
        lines.contains(&"/scratch tmpfs rw"),
        "/scratch is a tmpfs: {out:?}"
    );
    assert!(lines.contains(&"tmpfs-writable"), "{out:?}");
    assert!(
        out.stdout.contains("Read-only file system"),
        "the ro bind refuses writes: {out:?}"
    );
    assert!(!shared.join("y").exists());
}

#[test]
fn default_devices_exist_and_others_do_not() {
    let rt = runtime();
    let b = bundle().shell("for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done; [ -e /dev/sda ] || echo no-sda; readlink /dev/fd");
    let out = rt.run_ok("devs", &b).expect("run");
    assert_eq!(
        out.stdout,
        "null\nzero\nfull\nrandom\nurandom\ntty\nno-sda\n/proc/self/fd\n"
    );
}

/// A rootfs whose `/proc` or `/sys` is a symlink is refused (as runc refuses it): proc and sysfs
/// must be mounted on an ordinary directory, not wherever the image's link points.
#[test]
fn proc_and_sys_on_a_symlink_are_refused() {
    for dir in ["proc", "sys"] {
        let rt = runtime();
        let b = bundle().shell("true");
        let path = b.rootfs().join(dir);
        if path.is_dir() {
            fs::remove_dir(&path).expect("remove the rootfs's empty mount point");
        }
        fs::create_dir(b.rootfs().join("elsewhere")).expect("mkdir");
        std::os::unix::fs::symlink("elsewhere", &path).expect("symlink");
        let id = rt.new_id(&format!("{dir}-link"));
        let out = rt.run(&id, &b).expect("run");
        assert!(
            !out.success() && out.stderr.contains("must be mounted on ordinary directory"),
            "/{dir} as a symlink is refused: {out:?}"
        );
        assert!(
            fs::read_dir(b.rootfs().join("elsewhere"))
                .expect("read elsewhere")
                .next()
                .is_none(),
            "nothing was mounted through the link"
        );
    }
}

/// Relative masked and read-only paths (the spec asks for absolute ones; runc takes relative
/// ones from the container's root) are applied from the root, and a missing one is skipped.
#[test]
fn relative_masked_and_readonly_paths_are_taken_from_the_root() {
    let rt = runtime();
    let b = bundle();
    fs::create_dir(b.rootfs().join("vault")).expect("mkdir");
    fs::write(b.rootfs().join("vault/key"), "secret key\n").expect("write");
    fs::create_dir(b.rootfs().join("frozen")).expect("mkdir");
    let b = b
        .masked_paths(&["vault"])
        .readonly_paths(&["frozen", "not-there"])
        .shell("echo dir=$(ls -A /vault | wc -l); touch /frozen/x 2>&1; true");
    let out = rt.run_ok("relpaths", &b).expect("run");
    assert!(
        out.stdout.starts_with("dir=0\n") && out.stdout.contains("Read-only file system"),
        "/vault masked and /frozen read-only: {out:?}"
    );
    assert!(!b.rootfs().join("frozen/x").exists());
}

/// Filesystem data on a bind mount (`mode=755`, `size=1k`, which a tool may append to every
/// mount) is ignored, as the kernel and runc ignore it; a bare unknown word is refused as the
/// misspelt flag it most likely is.
#[test]
fn filesystem_data_on_a_bind_is_ignored_and_a_misspelt_flag_refused() {
    let rt = runtime();
    let data = rt.scratch().join("bound");
    fs::create_dir(&data).expect("mkdir");
    fs::write(data.join("file"), "bound\n").expect("write");
    let mount = |options: &[&str]| {
        serde_json::json!({
            "destination": "/bound", "type": "bind", "source": data, "options": options
        })
    };
    let b = bundle()
        .mount(mount(&["rbind", "nosuid", "mode=755", "size=1k"]))
        .shell("cat /bound/file");
    let out = rt.run_ok("binddata", &b).expect("run");
    assert_eq!(out.stdout, "bound\n");
    let b = bundle().mount(mount(&["rbind", "nosiud"])).shell("true");
    let out = rt.run(&rt.new_id("bindtypo"), &b).expect("run");
    if rt.flavor() == berth_tests::Flavor::Runc {
        // runc 1.1.5 passes the unknown word on as filesystem data, which a bind ignores.
        return;
    }
    assert!(
        !out.success() && out.stderr.contains("\"nosiud\""),
        "the misspelt flag is refused by name: {out:?}"
    );
}
