//! Exports without mounting: an image's flattened filesystem, a container's
//! filesystem and its diff (whiteouts back to `.wh.` entries), checked by
//! reading the tars and applying them again.

mod common;

use common::{image_a, write_docker_archive};
use image::digest::Digest;
use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;

fn names(tar: &[u8]) -> BTreeSet<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            String::from_utf8_lossy(&e.path_bytes())
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

fn file_of(tar: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(tar);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if &*e.path_bytes() == name.as_bytes() {
            let mut v = Vec::new();
            e.read_to_end(&mut v).expect("read");
            return Some(v);
        }
    }
    None
}

fn store(kind: SnapshotterKind) -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = image_a();
    write_docker_archive(&tmp.path().join("a.tar"), &[&a]);
    let mut s = Store::open_with(
        &tmp.path().join("store"),
        StoreOptions {
            snapshotter: Some(kind),
            ..Default::default()
        },
    )
    .expect("open");
    s.load_archive(&tmp.path().join("a.tar"), &mut |_| {})
        .expect("load");
    (tmp, s)
}

#[test]
fn export_image_flattens_with_overlay_rules() {
    let (_tmp, s) = store(SnapshotterKind::Copy);
    let mut out = Vec::new();
    let stats = s.export_image("berth-test/a", &mut out).expect("export");
    assert_eq!(stats.diff_id, Digest::of_bytes(&out));
    let n = names(&out);
    for want in [
        "bin/busybox",
        "bin/sh",
        "etc/conf.d/c.conf",
        "etc/motd",
        "hello.txt",
        "dev/null",
    ] {
        assert!(n.contains(want), "{want} missing from {n:?}");
    }
    for gone in ["etc/remove-me", "etc/conf.d/a.conf", "etc/conf.d/b.conf"] {
        assert!(!n.contains(gone), "{gone} must be hidden");
    }
    assert!(
        n.iter().all(|p| !p.contains(".wh.")),
        "no whiteouts in an export"
    );
    assert_eq!(file_of(&out, "hello.txt").as_deref(), Some(&b"hello\n"[..]));
    // The export is deterministic.
    let mut again = Vec::new();
    assert_eq!(
        s.export_image("berth-test/a", &mut again)
            .expect("export")
            .diff_id,
        stats.diff_id
    );
}

#[test]
fn container_diff_round_trips_through_a_layer() {
    let (tmp, s) = store(SnapshotterKind::Overlay);
    let (id, _) = s.resolve("berth-test/a").expect("resolve");
    s.prepare_container(&id, "c1").expect("prepare");
    let layers = s.snapshotter().container_layers("c1").expect("layers");
    let upper = s.snapshotter().container_upper("c1").expect("upper");
    assert_eq!(layers[0], upper);
    // What a container would leave in overlay's upper directory.
    fs::write(upper.join("new.txt"), b"new\n").expect("new file");
    fs::create_dir(upper.join("etc")).expect("etc");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("etc/motd"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .expect("whiteout");
    fs::create_dir(upper.join("bin")).expect("bin");
    rustix::fs::lsetxattr(
        upper.join("bin"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("opaque");
    fs::write(upper.join("bin/only"), b"x").expect("only");

    let mut diff = Vec::new();
    let stats = s.container_diff("c1", &mut diff).expect("diff");
    let n = names(&diff);
    for want in ["new.txt", "etc/.wh.motd", "bin/.wh..wh..opq", "bin/only"] {
        assert!(n.contains(want), "{want} missing from {n:?}");
    }

    // Apply the diff as a new layer on the image and flatten the result.
    let top = s
        .get(&id)
        .expect("record")
        .chain_id()
        .expect("chain")
        .clone();
    let chain = s
        .snapshotter()
        .unpack(Some(&top), &stats.diff_id, &diff[..], &mut |_| {})
        .expect("apply diff as a layer");
    let mut dirs = vec![s.snapshotter().fs_path(&chain)];
    dirs.extend(
        s.snapshotter()
            .lineage(&top)
            .expect("lineage")
            .iter()
            .rev()
            .map(|c| s.snapshotter().fs_path(c)),
    );
    let mut flat = Vec::new();
    image::export::write_flattened(&dirs, &mut flat).expect("flatten");
    let mut direct = Vec::new();
    s.export_container("c1", &mut direct)
        .expect("export container");
    for tar in [&flat, &direct] {
        let n = names(tar);
        assert!(n.contains("new.txt"));
        assert!(!n.contains("etc/motd"), "whiteout hides motd");
        let bins: Vec<_> = n.iter().filter(|p| p.starts_with("bin/")).collect();
        assert_eq!(bins, ["bin/only"], "opaque bin hides busybox");
        assert!(n.contains("hello.txt"));
    }
    assert_eq!(names(&flat), names(&direct));
    s.remove_container("c1").expect("remove");
    drop(tmp);
}

#[test]
fn copying_snapshotter_has_no_diff() {
    let (_tmp, s) = store(SnapshotterKind::Copy);
    let (id, _) = s.resolve("berth-test/a").expect("resolve");
    s.prepare_container(&id, "c2").expect("prepare");
    let err = s
        .container_diff("c2", &mut Vec::new())
        .expect_err("no diff");
    assert!(err.to_string().contains("copying snapshotter"), "{err}");
    let mut out = Vec::new();
    s.export_container("c2", &mut out).expect("export a copy");
    assert!(names(&out).contains("bin/busybox"));
    s.remove_container("c2").expect("remove");
}
