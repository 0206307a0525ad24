//! kill -9 at arbitrary points of loads, removals and garbage collection
//! (a child process, this test binary re-executed) leaves a store that
//! opens, shows only complete images, and completes a retried load.

mod common;

use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ROOT_VAR: &str = "BERTH_IMAGE_CRASH_ROOT";
const ARCHIVE_VAR: &str = "BERTH_IMAGE_CRASH_ARCHIVE";

fn options() -> StoreOptions {
    // The copying snapshotter: a child killed during the overlay probe
    // would leave a mount behind.
    StoreOptions {
        snapshotter: Some(SnapshotterKind::Copy),
        ..Default::default()
    }
}

/// The child: loads, removes and collects garbage in a loop, printing a
/// line per progress event so the parent can kill it at varying points.
#[test]
#[ignore = "helper: re-executed by crash_at_any_point_leaves_a_loadable_store"]
fn crash_child() {
    let root = PathBuf::from(std::env::var_os(ROOT_VAR).expect("run only by the crash test"));
    let archive = PathBuf::from(std::env::var_os(ARCHIVE_VAR).expect("archive path"));
    let mut store = Store::open_with(&root, options()).expect("child opens the store");
    loop {
        store
            .load_archive(&archive, &mut |p| {
                println!("EVENT {} {} {}", p.id, p.status, p.current)
            })
            .expect("child load");
        println!("EVENT loaded");
        store
            .remove("berth-test/a:latest", true, &|_| false)
            .expect("child remove");
        println!("EVENT removed");
    }
}

fn verify(root: &Path) -> Store {
    let store = Store::open_with(root, options()).expect("the store opens after a kill -9");
    for dir in [
        root.join("content/blobs/sha256"),
        root.join("snapshots"),
        root.join("metadata"),
    ] {
        for e in std::fs::read_dir(&dir).expect("list") {
            let name = e.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().starts_with(".tmp-"),
                "debris {name:?} in {} survived reopening",
                dir.display()
            );
        }
    }
    for summary in store.list() {
        let inspect = store
            .inspect(&summary.id.to_string())
            .expect("a visible image is complete");
        for l in &inspect.record.layers {
            assert!(
                store.content().contains(&l.blob),
                "blob {} of a visible image",
                l.blob
            );
            assert!(
                store.snapshotter().exists(&l.chain_id),
                "snapshot {} of a visible image",
                l.chain_id
            );
        }
        assert!(store.content().contains(&inspect.record.manifest));
    }
    store
}

#[test]
fn crash_at_any_point_leaves_a_loadable_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let archive = tmp.path().join("a.tar");
    common::write_docker_archive(&archive, &[&a]);
    let root = tmp.path().join("store");
    let exe = std::env::current_exe().expect("test binary path");

    for kill_after in [1usize, 2, 3, 5, 8, 11, 14, 17, 23, 31] {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROOT_VAR, &root)
            .env(ARCHIVE_VAR, &archive)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("EVENT") && tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut last = String::new();
        for _ in 0..kill_after {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => last = l,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("child stopped reporting before event {kill_after}: {e}");
                }
            }
        }
        child.kill().expect("kill -9 the child");
        child.wait().expect("reap the child");
        drop(rx);
        let _ = reader.join();
        eprintln!("killed after event {kill_after} ({last})");
        drop(verify(&root));
    }

    // A retried load completes and the image is whole.
    let mut store = verify(&root);
    store.gc().expect("gc after crashes");
    let recs = store
        .load_archive(&archive, &mut |_| {})
        .expect("retried load");
    assert_eq!(recs[0].id.0, a.id());
    drop(store);
    let store = verify(&root);
    assert!(store.resolve("berth-test/a:latest").is_ok());
}

/// Rewrites every pending-names marker as if written in an earlier boot:
/// what a power cut right after a load leaves for the next start.
fn pretend_reboot(root: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(root.join("pending")).expect("list markers") {
        let path = e.expect("entry").path();
        let mut marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read marker")).expect("json");
        marker["boot_id"] = serde_json::Value::from("a-boot-before-the-power-cut");
        std::fs::write(&path, serde_json::to_vec(&marker).expect("json")).expect("rewrite");
        n += 1;
    }
    n
}

/// Loads A (then settles) and B (no settle, as if the machine went down
/// before berthd's settle ran), and returns the store root and B's top
/// layer (its own, `b.txt`).
fn a_settled_and_b_unsettled(tmp: &Path) -> (PathBuf, image::metadata::LayerRecord) {
    let (a, b) = (common::image_a(), common::image_b());
    let (archive_a, archive_b) = (tmp.join("a.tar"), tmp.join("b.tar"));
    common::write_docker_archive(&archive_a, &[&a]);
    common::write_docker_archive(&archive_b, &[&b]);
    let root = tmp.join("store");
    let mut store = Store::open_with(&root, options()).expect("open");
    store.load_archive(&archive_a, &mut |_| {}).expect("load a");
    assert!(store.settler().settle().expect("settle") >= 1);
    store.load_archive(&archive_b, &mut |_| {}).expect("load b");
    let top = store
        .inspect("berth-test/b:1.0")
        .expect("b")
        .record
        .layers
        .last()
        .cloned()
        .expect("b has layers");
    drop(store);
    assert_eq!(pretend_reboot(&root), 1, "one marker: b's load");
    (root, top)
}

fn markers_left(root: &Path) -> usize {
    std::fs::read_dir(root.join("pending"))
        .expect("list")
        .count()
}

#[test]
fn after_a_reboot_before_the_settle_whole_data_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, _) = a_settled_and_b_unsettled(tmp.path());
    // A clean reboot (the kernel wrote everything back): B's blobs hash to
    // their digests and its layers are made again from them; both images stay.
    let store = verify(&root);
    assert!(store.resolve("berth-test/a:latest").is_ok());
    assert!(store.resolve("berth-test/b:1.0").is_ok());
    assert_eq!(markers_left(&root), 0, "the recovered marker is gone");
}

#[test]
fn a_torn_layer_is_made_again_from_its_blob() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, top) = a_settled_and_b_unsettled(tmp.path());
    // What a power cut can leave: the file's name, not its data.
    let file = root
        .join("snapshots")
        .join(top.chain_id.hex())
        .join("fs/b.txt");
    std::fs::write(&file, b"").expect("truncate b.txt");
    let store = verify(&root);
    assert!(store.resolve("berth-test/b:1.0").is_ok(), "b stays");
    assert_eq!(
        std::fs::read(&file).expect("b.txt"),
        b"image b\n",
        "the layer was unpacked again from its blob"
    );
    assert_eq!(markers_left(&root), 0);
}

#[test]
fn a_torn_blob_drops_only_the_unsettled_image() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, top) = a_settled_and_b_unsettled(tmp.path());
    let blob = root.join("content/blobs/sha256").join(top.blob.hex());
    let mut bytes = std::fs::read(&blob).expect("read b's top blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("tear b's top blob");

    // B cannot be made whole: it goes, with its torn blob and its own layer;
    // A, settled before, stays whole (and shares B's base layer).
    let store = verify(&root);
    assert!(
        store.resolve("berth-test/a:latest").is_ok(),
        "the settled image stays"
    );
    assert!(
        store.resolve("berth-test/b:1.0").is_err(),
        "the torn image is dropped"
    );
    assert!(
        !store.content().contains(&top.blob),
        "the torn blob is removed"
    );
    assert!(
        !store.snapshotter().exists(&top.chain_id),
        "its layer is removed"
    );
    let a_layers = store
        .inspect("berth-test/a:latest")
        .expect("a")
        .record
        .layers;
    assert_eq!(
        store.snapshotter().list().expect("snapshots").len(),
        a_layers.len(),
        "only a's snapshots are left"
    );
    assert_eq!(markers_left(&root), 0, "the recovered marker is gone");
    drop(store);

    // Loading B again works, and a reopen in the same boot settles it.
    let archive_b = tmp.path().join("b.tar");
    let mut store = Store::open_with(&root, options()).expect("reopen");
    store
        .load_archive(&archive_b, &mut |_| {})
        .expect("load b again");
    drop(store);
    let store = verify(&root);
    assert!(store.resolve("berth-test/b:1.0").is_ok());
    assert_eq!(
        markers_left(&root),
        0,
        "an open in the same boot settles what the last process left"
    );
}
