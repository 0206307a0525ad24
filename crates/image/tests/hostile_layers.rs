//! Hostile layer tars: every escape is an error that names the entry,
//! writes nothing outside the layer directory and leaves no snapshot.

mod common;

use common::{layer_tar, raw_header, tree, Item};
use image::digest::Digest;
use image::snapshot::{SnapshotError, Snapshotter, SnapshotterKind};
use image::unpack::UnpackError;
use std::fs;

/// Unpacks `tar` as a snapshot in a fresh store inside a fresh directory
/// and checks the refusal. Returns the error text.
fn refused(tar: Vec<u8>, entry: &str) -> String {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("store");
    let snaps = Snapshotter::open_with(&root, SnapshotterKind::Copy).expect("open snapshotter");
    let before = tree(outer.path());
    let passwd = fs::read("/etc/passwd").expect("read /etc/passwd");
    let diff_id = Digest::of_bytes(&tar);
    let err = snaps
        .unpack(None, &diff_id, &tar[..], &mut |_| {})
        .expect_err("a hostile layer must be refused");
    let text = err.to_string();
    eprintln!("refused as expected: {text}");
    match &err {
        SnapshotError::Unpack {
            source: UnpackError::Unsafe { entry: e, .. },
            ..
        } => assert_eq!(e, entry, "the error names the entry: {text}"),
        other => panic!("expected an unsafe-entry refusal for {entry:?}, got: {other}"),
    }
    assert!(text.contains(entry), "message {text:?} names {entry:?}");
    assert_eq!(
        tree(outer.path()),
        before,
        "nothing may be left behind: {text}"
    );
    assert!(!snaps.exists(&diff_id), "no snapshot may exist");
    assert_eq!(fs::read("/etc/passwd").expect("read /etc/passwd"), passwd);
    text
}

#[test]
fn dotdot_escape_is_refused() {
    let t = refused(
        layer_tar(&[Item::File("../escape", 0o644, b"x".to_vec())]),
        "../escape",
    );
    assert!(t.contains(".."), "{t}");
    let t = refused(
        layer_tar(&[
            Item::Dir("a/", 0o755),
            Item::File("a/../../escape", 0o644, b"x".to_vec()),
        ]),
        "a/../../escape",
    );
    assert!(t.contains("climbs"), "{t}");
}

#[test]
fn absolute_path_is_refused() {
    let t = refused(
        layer_tar(&[Item::File("/abs", 0o644, b"x".to_vec())]),
        "/abs",
    );
    assert!(t.contains("absolute"), "{t}");
}

#[test]
fn symlink_to_root_then_write_through_it_is_refused() {
    let t = refused(
        layer_tar(&[
            Item::Symlink("evil", "/"),
            Item::File("evil/etc/passwd", 0o644, b"owned\n".to_vec()),
        ]),
        "evil/etc/passwd",
    );
    assert!(t.contains("symlink"), "{t}");
}

#[test]
fn symlink_chain_leading_out_is_refused() {
    refused(
        layer_tar(&[
            Item::Dir("d/", 0o755),
            Item::Symlink("d/b", "../../.."),
            Item::Symlink("a", "d/b"),
            Item::File("a/escape", 0o644, b"x".to_vec()),
        ]),
        "a/escape",
    );
}

#[test]
fn relative_symlink_dir_to_parent_of_root_is_refused() {
    refused(
        layer_tar(&[Item::Symlink("up", ".."), Item::Dir("up/x/", 0o755)]),
        "up/x/",
    );
}

#[test]
fn hardlink_to_host_file_is_refused() {
    let t = refused(
        layer_tar(&[Item::Hardlink("shadow", "/etc/shadow")]),
        "shadow",
    );
    assert!(t.contains("outside the layer"), "{t}");
}

#[test]
fn hardlink_climbing_out_is_refused() {
    refused(layer_tar(&[Item::Hardlink("x", "../x")]), "x");
}

#[test]
fn hardlink_through_outward_symlink_is_refused() {
    refused(
        layer_tar(&[
            Item::Symlink("etc", "/etc"),
            Item::Hardlink("pw", "etc/passwd"),
        ]),
        "pw",
    );
}

#[test]
fn whiteouts_with_dotdot_are_refused() {
    refused(
        layer_tar(&[Item::File(".wh...", 0o644, Vec::new())]),
        ".wh...",
    );
    refused(
        layer_tar(&[Item::File("../.wh.x", 0o644, Vec::new())]),
        "../.wh.x",
    );
    refused(
        layer_tar(&[
            Item::Symlink("s", "/tmp"),
            Item::File("s/.wh.x", 0o644, Vec::new()),
        ]),
        "s/.wh.x",
    );
}

#[test]
fn overlay_xattrs_in_a_layer_are_refused() {
    refused(
        layer_tar(&[Item::Xattr(
            "f",
            "trusted.overlay.redirect",
            b"/etc",
            b"x".to_vec(),
        )]),
        "f",
    );
}

#[test]
fn symlink_inside_the_layer_is_followed() {
    // Not everything with a symlink is hostile: a relative link that stays
    // inside the layer is resolved beneath its root.
    let tar = layer_tar(&[
        Item::Dir("usr/", 0o755),
        Item::Dir("usr/lib/", 0o755),
        Item::Symlink("lib", "usr/lib"),
        Item::File("lib/x", 0o644, b"x".to_vec()),
    ]);
    let outer = tempfile::tempdir().expect("tempdir");
    let snaps = Snapshotter::open_with(outer.path(), SnapshotterKind::Copy).expect("open");
    let diff_id = Digest::of_bytes(&tar);
    let chain = snaps
        .unpack(None, &diff_id, &tar[..], &mut |_| {})
        .expect("unpack");
    assert_eq!(
        fs::read(snaps.fs_path(&chain).join("usr/lib/x")).expect("x"),
        b"x"
    );
}

#[test]
fn diff_id_mismatch_leaves_no_snapshot() {
    let tar = layer_tar(&[Item::File("f", 0o644, b"x".to_vec())]);
    let outer = tempfile::tempdir().expect("tempdir");
    let snaps = Snapshotter::open_with(outer.path(), SnapshotterKind::Copy).expect("open");
    let before = tree(outer.path());
    let wrong = Digest::of_bytes(b"not this layer");
    let err = snaps
        .unpack(None, &wrong, &tar[..], &mut |_| {})
        .expect_err("wrong diff id");
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    assert_eq!(tree(outer.path()), before);
}

#[test]
fn raw_header_helper_really_writes_dotdot() {
    // Guards the fixtures themselves: the names must reach the tar as written.
    let h = raw_header(tar::EntryType::Regular, "../escape", None, 0, 0o644);
    assert_eq!(&*h.path_bytes(), b"../escape");
}

#[test]
fn directory_replaced_by_outward_symlink_is_not_written_through() {
    // The applier keeps the last parent directory open; replacing a
    // directory on that path with a symlink must not let a later entry
    // land in the old directory or follow the new link.
    refused(
        layer_tar(&[
            Item::Dir("a/", 0o755),
            Item::Dir("a/b/", 0o755),
            Item::File("a/b/f1", 0o644, b"1".to_vec()),
            Item::Symlink("a", "/"),
            Item::File("a/b/f2", 0o644, b"2".to_vec()),
        ]),
        "a/b/f2",
    );
}
