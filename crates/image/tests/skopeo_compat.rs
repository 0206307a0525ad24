//! What berth saves, skopeo reads; what skopeo writes, berth loads.
//! Needs Debian's skopeo; without it the test says so and is skipped loudly.

mod common;

use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::path::Path;
use std::process::Command;

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn open(root: &Path) -> Store {
    Store::open_with(
        root,
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open store")
}

/// skopeo re-serialises configs when it converts between Docker and OCI
/// manifests (other key order, so another image ID); the content is the same.
fn same_config(store: &Store, rec: &image::metadata::ImageRecord, fixture: &common::FixtureImage) {
    let inspect = store.inspect(&rec.id.to_string()).expect("inspect");
    let ours: serde_json::Value = serde_json::from_slice(&fixture.config).expect("fixture config");
    assert_eq!(inspect.config_json, ours);
    let diff_ids: Vec<_> = fixture
        .tars
        .iter()
        .map(|t| image::digest::Digest::of_bytes(t))
        .collect();
    assert_eq!(inspect.diff_ids, diff_ids);
}

#[test]
fn skopeo_round_trips() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("SKIPPED skopeo_round_trips: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = |p: &str| tmp.path().join(p).display().to_string();
    let a = common::image_a();
    let b = common::image_b();
    common::write_docker_archive(&tmp.path().join("a.tar"), &[&a]);
    common::write_oci_layout(&tmp.path().join("b-oci"), &[&b]);

    let mut store = open(&tmp.path().join("store"));
    store
        .load_archive(&tmp.path().join("a.tar"), &mut |_| {})
        .expect("load a");
    store
        .load_archive(&tmp.path().join("b-oci"), &mut |_| {})
        .expect("load b");
    let saved = std::fs::File::create(t("saved.tar")).expect("create");
    store
        .save(
            &["berth-test/a:latest", "berth-test/b:1.0"],
            saved,
            &mut |_| {},
        )
        .expect("save");
    store
        .save_oci_dir(
            &["berth-test/a:latest"],
            &tmp.path().join("saved-oci"),
            &mut |_| {},
        )
        .expect("save oci dir");

    // berth -> skopeo, as docker-archive, OCI archive and OCI directory.
    skopeo(&[
        "copy",
        &format!("docker-archive:{}:berth-test/b:1.0", t("saved.tar")),
        &format!("oci:{}:b", t("sk1")),
    ]);
    skopeo(&[
        "copy",
        &format!("oci-archive:{}:latest", t("saved.tar")),
        &format!("oci:{}:a", t("sk2")),
    ]);
    skopeo(&[
        "copy",
        &format!("oci:{}:latest", t("saved-oci")),
        &format!("oci:{}:a", t("sk3")),
    ]);

    // skopeo -> berth, as an OCI directory and a docker-archive.
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", t("a.tar")),
        &format!("oci:{}:berth-test/a:latest", t("sk-oci")),
    ]);
    skopeo(&[
        "copy",
        &format!("oci:{}", t("b-oci")),
        &format!("docker-archive:{}:berth-test/b:1.0", t("sk-docker.tar")),
    ]);
    let mut fresh = open(&tmp.path().join("store2"));
    let recs = fresh
        .load_archive(&tmp.path().join("sk-oci"), &mut |_| {})
        .expect("load skopeo's OCI layout");
    same_config(&fresh, &recs[0], &a);
    assert!(
        fresh.resolve("berth-test/a:latest").is_ok(),
        "ref.name with a repository names the image"
    );
    let recs = fresh
        .load_archive(&tmp.path().join("sk-docker.tar"), &mut |_| {})
        .expect("load skopeo's docker-archive");
    same_config(&fresh, &recs[0], &b);
    assert!(fresh.resolve("berth-test/b:1.0").is_ok());
    let recs = fresh
        .load_archive(&tmp.path().join("sk1"), &mut |_| {})
        .expect("reload sk1");
    same_config(&fresh, &recs[0], &b);
    // An OCI-to-OCI copy keeps the bytes, so the image ID too.
    let recs = fresh
        .load_archive(&tmp.path().join("sk3"), &mut |_| {})
        .expect("reload sk3");
    assert_eq!(recs[0].id.0, a.id());
}
