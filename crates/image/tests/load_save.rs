//! Loading test images made from busybox-static (docker-archive and OCI
//! layout), checking the unpacked layers, the container rootfs they make,
//! sharing of snapshots, saving and reloading, and the image lifecycle.

mod common;

use common::{image_a, image_b, tree, write_docker_archive, write_oci_layout};
use image::digest::Digest;
use image::metadata::ImageId;
use image::progress::Progress;
use image::snapshot::{chain_ids, SnapshotterKind};
use image::store::{RemoveOutcome, Store, StoreError, StoreOptions};
use std::fs;
use std::os::linux::fs::MetadataExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

fn no_container(_: &ImageId) -> bool {
    false
}

fn load(store: &mut Store, path: &Path) -> (Vec<image::metadata::ImageRecord>, Vec<Progress>) {
    let mut events = Vec::new();
    let recs = store
        .load_archive(path, &mut |p| events.push(p))
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    (recs, events)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

/// Checks the per-layer directories of image A.
fn check_layers_of_a(store: &Store, diff_ids: &[Digest]) {
    let chains = chain_ids(diff_ids);
    let snaps = store.snapshotter();
    let base = snaps.fs_path(&chains[0]);
    let bb = fs::symlink_metadata(base.join("bin/busybox")).expect("busybox");
    assert_eq!(bb.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        bb.len(),
        fs::metadata(common::BUSYBOX).expect("host busybox").len()
    );
    let hl = fs::symlink_metadata(base.join("bin/busybox-hardlink")).expect("hard link");
    assert_eq!(hl.st_ino(), bb.st_ino(), "hard link shares the inode");
    assert_eq!(
        fs::read_link(base.join("bin/sh")).expect("sh").to_str(),
        Some("busybox")
    );
    let suid = fs::metadata(base.join("bin/setuid-tool")).expect("setuid");
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    let tmp = fs::metadata(base.join("tmp")).expect("tmp");
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "sticky kept");
    let null = fs::symlink_metadata(base.join("dev/null")).expect("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.st_rdev(), rustix::fs::makedev(1, 3));
    assert!(fs::symlink_metadata(base.join("dev/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    assert_eq!(
        xattr(&base.join("etc/passwd"), "user.berth-test").as_deref(),
        Some(&b"kept"[..])
    );

    let top2 = snaps.fs_path(&chains[1]);
    let wh = fs::symlink_metadata(top2.join("etc/remove-me")).expect("whiteout");
    assert!(wh.file_type().is_char_device(), "whiteout is a char device");
    assert_eq!(wh.st_rdev(), 0, "whiteout is 0:0");
    assert_eq!(
        xattr(&top2.join("etc/conf.d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!top2.join("etc/conf.d/.wh..wh..opq").exists());

    let top3 = snaps.fs_path(&chains[2]);
    let hello = fs::metadata(top3.join("hello.txt")).expect("hello");
    assert_eq!((hello.st_uid(), hello.st_gid()), (1000, 1000));
    assert_eq!(hello.permissions().mode() & 0o7777, 0o640);
    assert_eq!(hello.st_mtime(), 12345);
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mounted(std::path::PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Builds image A's container rootfs the way the runtime would and looks
/// at it from inside with busybox.
fn check_rootfs_of_a(store: &Store, id: &ImageId, scratch: &Path) {
    let spec = store
        .prepare_container(id, "ctr-a")
        .expect("prepare container");
    let merged = scratch.join("merged");
    fs::create_dir_all(&merged).expect("mkdir merged");
    let _guard = match store.snapshotter().kind() {
        SnapshotterKind::Overlay => {
            assert_eq!(spec.typ, "overlay");
            assert!(
                spec.options[0].starts_with("lowerdir="),
                "{:?}",
                spec.options
            );
            let data = std::ffi::CString::new(spec.options.join(",")).expect("options");
            rustix::mount::mount(
                "overlay",
                &merged,
                "overlay",
                rustix::mount::MountFlags::empty(),
                Some(data.as_c_str()),
            )
            .expect("mount the overlay the snapshotter described");
            Mounted(merged.clone())
        }
        SnapshotterKind::Copy => {
            eprintln!(
                "overlay unavailable here ({:?}); checking the copying snapshotter's rootfs",
                store.snapshotter().fallback_reason()
            );
            assert_eq!(spec.typ, "bind");
            rustix::mount::mount_bind(&spec.source, &merged).expect("bind mount");
            Mounted(merged.clone())
        }
    };
    assert!(
        !merged.join("etc/remove-me").exists(),
        "whiteout hides the file"
    );
    let mut conf: Vec<String> = fs::read_dir(merged.join("etc/conf.d"))
        .expect("conf.d")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    conf.sort();
    assert_eq!(conf, ["c.conf"], "opaque directory hides the lower entries");
    let out = std::process::Command::new("/usr/sbin/chroot")
        .arg(&merged)
        .args(["/bin/sh", "-c", "cat /etc/motd /hello.txt; ls /etc/conf.d"])
        .env_clear()
        .output()
        .expect("run busybox sh in the rootfs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "welcome to berth\nhello\nc.conf\n"
    );
}

#[test]
fn load_inspect_share_save_reload_remove() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = image_a();
    let b = image_b();
    let docker_tar = tmp.path().join("a.tar");
    write_docker_archive(&docker_tar, &[&a]);
    let oci_dir = tmp.path().join("b-oci");
    write_oci_layout(&oci_dir, &[&b]);

    let root = tmp.path().join("store");
    let mut store = Store::open(&root).expect("open store");
    eprintln!(
        "snapshotter: {:?} ({:?})",
        store.snapshotter().kind(),
        store.snapshotter().fallback_reason()
    );

    let (recs, events) = load(&mut store, &docker_tar);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].id.0, a.id());
    assert!(events
        .iter()
        .any(|e| e.status == "Loading layer" && e.total.is_some()));
    assert!(
        events
            .iter()
            .any(|e| e.status == "Loaded image: berth-test/a:latest"),
        "{events:?}"
    );
    let (id_a, _) = store.resolve("berth-test/a").expect("resolve by tag");
    assert_eq!(store.resolve(&id_a.0.hex()[..8]).expect("short id").0, id_a);

    let diff_a: Vec<Digest> = a.tars.iter().map(|t| Digest::of_bytes(t)).collect();
    check_layers_of_a(&store, &diff_a);
    check_rootfs_of_a(&store, &id_a, tmp.path());

    let inspect = store.inspect("berth-test/a:latest").expect("inspect");
    assert_eq!(inspect.diff_ids, diff_a);
    assert_eq!(
        inspect.config_json["config"]["Labels"]["fixture"],
        "berth-test/a:latest"
    );
    assert!(inspect.size > 1_000_000, "busybox counts in the size");
    let history = store.history("berth-test/a").expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(
        history[0].created_by().as_deref(),
        Some("layer 2"),
        "newest first"
    );

    // Image B shares the base layer: its snapshot is reused, not unpacked again.
    let base_chain = chain_ids(&diff_a)[0].clone();
    let base_ino = fs::metadata(store.snapshotter().fs_path(&base_chain))
        .expect("base")
        .st_ino();
    let (recs_b, events_b) = load(&mut store, &oci_dir);
    assert_eq!(recs_b[0].id.0, b.id());
    assert_eq!(recs_b[0].layers[0].chain_id, base_chain);
    assert!(
        events_b.iter().any(|e| e.status == "Already exists"),
        "{events_b:?}"
    );
    assert_eq!(
        fs::metadata(store.snapshotter().fs_path(&base_chain))
            .expect("base")
            .st_ino(),
        base_ino
    );
    assert_eq!(
        store.snapshotter().list().expect("list").len(),
        4,
        "3 layers of A + 1 of B"
    );

    let usage = store.disk_usage().expect("disk usage");
    for u in &usage {
        let base_size = store.snapshotter().info(&base_chain).expect("info").size;
        assert_eq!(u.shared_size, base_size, "{u:?}");
        assert_eq!(u.unique_size, u.size - base_size);
    }

    // Save both, reload into a new store: same IDs, same manifests.
    let saved = tmp.path().join("saved.tar");
    let f = fs::File::create(&saved).expect("create");
    store
        .save(&["berth-test/a:latest", "berth-test/b:1.0"], f, &mut |_| {})
        .expect("save");
    let oci_out = tmp.path().join("saved-oci");
    store
        .save_oci_dir(&["berth-test/b:1.0"], &oci_out, &mut |_| {})
        .expect("save oci dir");
    store
        .save_oci_dir(&["berth-test/a:latest"], &oci_out, &mut |_| {})
        .expect("add to the oci dir");
    {
        let mut other =
            Store::open_with(&tmp.path().join("store2"), StoreOptions::default()).expect("store2");
        let (recs2, _) = load(&mut other, &saved);
        let ids: Vec<_> = recs2.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [id_a.clone(), recs_b[0].id.clone()]);
        assert_eq!(
            recs2[0].manifest,
            store.get(&id_a).expect("a").manifest,
            "manifest digest is stable"
        );
        assert!(
            other.resolve("berth-test/b:1.0").is_ok(),
            "names survive a save/load"
        );
        let mut third = Store::open(&tmp.path().join("store3")).expect("store3");
        let (recs3, _) = load(&mut third, &oci_out);
        assert_eq!(recs3.len(), 2, "a second save adds to the layout");
        assert_eq!(recs3[0].id, recs_b[0].id);
        assert!(third.resolve("berth-test/b:1.0").is_ok());
        assert!(third.resolve("berth-test/a:latest").is_ok());
    }

    // Lifecycle: tag, untag, refuse while in use, remove, prune, gc.
    store
        .tag("berth-test/a", "berth-test/a:extra")
        .expect("tag");
    let out = store
        .remove("berth-test/a:extra", false, &no_container)
        .expect("untag");
    assert!(matches!(&out[..], [RemoveOutcome::Untagged(_)]));
    let err = store
        .remove("berth-test/a", false, &|id| *id == id_a)
        .expect_err("in use");
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    store
        .snapshotter()
        .remove_container("ctr-a")
        .expect("remove container layer");
    let out = store
        .remove("berth-test/a", false, &no_container)
        .expect("remove");
    assert!(out.contains(&RemoveOutcome::Deleted(id_a.clone())));
    assert!(
        store.snapshotter().exists(&base_chain),
        "B still needs the base layer"
    );
    assert_eq!(store.snapshotter().list().expect("list").len(), 2);
    store.untag("berth-test/b:1.0").expect("untag b");
    let report = store.prune(false, &no_container).expect("prune dangling");
    assert_eq!(report.images_deleted.len(), 1);
    assert!(store.list().is_empty());
    assert!(
        store.content().list().expect("blobs").is_empty(),
        "gc removed every blob"
    );
    assert!(store.snapshotter().list().expect("snapshots").is_empty());
    drop(store);
    let left = tree(&root);
    assert!(
        left.iter().all(|p| !p.contains(".tmp-")),
        "no temporary files remain: {left:?}"
    );
}

#[test]
fn corrupt_layer_stores_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = image_b();
    let oci_dir = tmp.path().join("b-oci");
    write_oci_layout(&oci_dir, &[&b]);
    // Flip a byte of the top layer blob: its digest no longer matches.
    let top = Digest::of_bytes(&b.blobs[1].0);
    let path = oci_dir.join("blobs/sha256").join(top.hex());
    let mut data = fs::read(&path).expect("blob");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&path, &data).expect("corrupt blob");

    let root = tmp.path().join("store");
    let mut store = Store::open_with(
        &root,
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open");
    let err = store
        .load_archive(&oci_dir, &mut |_| {})
        .expect_err("digest mismatch");
    let text = err.to_string();
    assert!(text.contains(&top.to_string()), "{text}");
    assert!(!store.content().contains(&top));
    assert!(store.list().is_empty(), "no image record");
    let blobs = tree(&root.join("content"));
    assert!(blobs.iter().all(|p| !p.contains(".tmp-")), "{blobs:?}");
    // A load names nothing before its one sync: neither the config, nor
    // the base layer's blob and snapshot, staged before the failure.
    assert!(
        store.snapshotter().list().expect("list").is_empty(),
        "a snapshot of the failed load is named"
    );
    assert!(
        store.content().list().expect("blobs").is_empty(),
        "a blob of the failed load is named"
    );
    let snapshots = tree(&root.join("snapshots"));
    assert!(
        snapshots.iter().all(|p| !p.contains(".tmp-")),
        "{snapshots:?}"
    );
}

#[test]
fn second_open_of_a_store_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _first = Store::open_with(
        tmp.path(),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open");
    let err = Store::open_with(
        tmp.path(),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect_err("locked");
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
}

#[test]
fn copying_snapshotter_builds_the_same_rootfs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = image_a();
    let docker_tar = tmp.path().join("a.tar");
    write_docker_archive(&docker_tar, &[&a]);
    let mut store = Store::open_with(
        &tmp.path().join("store"),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open");
    let (recs, _) = load(&mut store, &docker_tar);
    check_rootfs_of_a(&store, &recs[0].id, tmp.path());
    store
        .snapshotter()
        .remove_container("ctr-a")
        .expect("remove");
}

#[test]
fn platform_is_chosen_from_a_nested_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = image_b();
    let dir = tmp.path().join("multi");
    write_oci_layout(&dir, &[&b]);
    // Wrap B's manifest in a multi-platform index; the arm64 entry's blob is
    // absent, so choosing it (or reading it) would fail the load.
    let manifest = b.manifest();
    let md = Digest::of_bytes(&manifest);
    let absent = Digest::of_bytes(b"arm64 manifest not in this layout");
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::manifest::OCI_INDEX,
        "manifests": [
            {"mediaType": image::manifest::OCI_MANIFEST, "digest": absent.to_string(), "size": 10,
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": image::manifest::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }))
    .expect("json");
    let nd = Digest::of_bytes(&nested);
    fs::write(dir.join("blobs/sha256").join(nd.hex()), &nested).expect("write nested index");
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": image::manifest::OCI_INDEX, "digest": nd.to_string(), "size": nested.len(),
             "annotations": {"io.containerd.image.name": "localhost:5000/multi:v1"}}
        ]}))
        .expect("json"),
    )
    .expect("write index.json");

    let copy = || StoreOptions {
        snapshotter: Some(SnapshotterKind::Copy),
        ..Default::default()
    };
    let mut store = Store::open_with(&tmp.path().join("s1"), copy()).expect("open");
    let (recs, _) = load(&mut store, &dir);
    assert_eq!(recs[0].id.0, b.id());
    assert_eq!(
        store.resolve("localhost:5000/multi:v1").expect("named").0,
        recs[0].id
    );

    let mut s390 = Store::open_with(
        &tmp.path().join("s2"),
        StoreOptions {
            platform: "linux/s390x".parse().expect("platform"),
            ..copy()
        },
    )
    .expect("open");
    let err = s390
        .load_archive(&dir, &mut |_| {})
        .expect_err("no s390x manifest");
    assert!(
        err.to_string()
            .contains("no manifest for platform linux/s390x"),
        "{err}"
    );
}

#[test]
fn import_a_rootfs_tarball() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = common::base_layer();
    let mut store = Store::open_with(
        &tmp.path().join("store"),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open");
    let mut events = Vec::new();
    let rec = store
        .import_rootfs(
            &common::gzip(&base)[..],
            Some("imported:1"),
            Some(serde_json::json!({"Cmd": ["/bin/sh"]})),
            &mut |p| events.push(p),
        )
        .expect("import");
    assert!(
        events
            .iter()
            .any(|e| e.status == "Imported image: imported:1"),
        "{events:?}"
    );
    let inspect = store.inspect("imported:1").expect("inspect");
    assert_eq!(inspect.diff_ids, [Digest::of_bytes(&base)]);
    assert_eq!(inspect.config_json["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(rec.layers[0].media_type, image::manifest::OCI_LAYER_GZIP);
    let spec = store.prepare_container(&rec.id, "imp").expect("prepare");
    assert!(Path::new(&spec.source).join("bin/busybox").is_file());
    store.snapshotter().remove_container("imp").expect("remove");
}

#[test]
fn compressed_and_streamed_archives_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = image_b();
    let plain = tmp.path().join("b.tar");
    write_docker_archive(&plain, &[&b]);
    let bytes = fs::read(&plain).expect("read archive");
    let gz = tmp.path().join("b.tar.gz");
    fs::write(&gz, common::gzip(&bytes)).expect("write gz");
    let zst = common::zstd(&bytes);

    let root = tmp.path().join("store");
    let copy = || StoreOptions {
        snapshotter: Some(SnapshotterKind::Copy),
        ..Default::default()
    };
    let mut store = Store::open_with(&root, copy()).expect("open");
    let (recs, _) = load(&mut store, &gz);
    assert_eq!(recs[0].id.0, b.id());
    let recs = store
        .load_reader(&zst[..], &mut |_| {})
        .expect("load a zstd stream");
    assert_eq!(recs[0].id.0, b.id());
    assert!(
        tree(&root.join("tmp")).is_empty(),
        "scratch files are removed"
    );
}

#[test]
fn a_probe_mount_left_by_a_killed_process_is_cleaned_at_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let probe = tmp.path().join("snapshots/.tmp-overlay-probe-999999-0");
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(probe.join(d)).expect("mkdir");
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        probe.join("lower").display(),
        probe.join("upper").display(),
        probe.join("work").display()
    );
    let data = std::ffi::CString::new(data).expect("options");
    if let Err(e) = rustix::mount::mount(
        "overlay",
        probe.join("merged"),
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    ) {
        eprintln!("SKIPPED: cannot mount overlay here ({e}); the leftover-probe case needs it");
        return;
    }
    let _guard = Mounted(probe.join("merged"));
    let store = Store::open(tmp.path()).expect("the store opens despite the leftover probe");
    assert!(!probe.exists(), "the leftover probe is removed");
    drop(store);
}

#[test]
fn blob_under_a_wrong_digest_leaves_no_blob_and_no_snapshot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = image_b();
    let dir = tmp.path().join("b-oci");
    write_oci_layout(&dir, &[&b]);
    let blobs = dir.join("blobs/sha256");
    // Move the top layer under a name that is not its digest, and make the
    // manifest claim that name: the bytes still match the config's diff ID,
    // so only the blob digest check can catch it.
    let real = Digest::of_bytes(&b.blobs[1].0);
    let wrong = Digest::of_bytes(b"not the layer");
    fs::rename(blobs.join(real.hex()), blobs.join(wrong.hex())).expect("rename blob");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&b.manifest()).expect("manifest json");
    manifest["layers"][1]["digest"] = wrong.to_string().into();
    let mbytes = serde_json::to_vec(&manifest).expect("json");
    let md = Digest::of_bytes(&mbytes);
    fs::write(blobs.join(md.hex()), &mbytes).expect("manifest blob");
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": image::manifest::OCI_MANIFEST, "digest": md.to_string(), "size": mbytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "berth-test/b:1.0"}}]});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");

    let root = tmp.path().join("store");
    let mut store = Store::open_with(
        &root,
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open");
    let err = store
        .load_archive(&dir, &mut |_| {})
        .expect_err("digest mismatch");
    assert!(
        err.to_string().contains(&wrong.to_string()),
        "the error names the expected digest: {err}"
    );
    assert!(!store.content().contains(&wrong) && !store.content().contains(&real));
    let chains = chain_ids(
        &b.tars
            .iter()
            .map(|t| Digest::of_bytes(t))
            .collect::<Vec<_>>(),
    );
    assert!(
        !store.snapshotter().exists(&chains[1]),
        "no snapshot from the bad blob"
    );
    assert!(store.list().is_empty());
    assert!(tree(&root.join("content"))
        .iter()
        .all(|p| !p.contains(".tmp-")));
}
