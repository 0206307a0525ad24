//! Legitimate layers with awkward shapes: entries repeated or replaced,
//! the root entry, long names, compressed streams with trailing data.

mod common;

use common::{gzip, layer_tar, zstd, Item};
use image::digest::Digest;
use image::unpack::{apply_layer, Compression};
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = layer_tar(&[
        Item::Dir("./", 0o750),
        Item::File("x", 0o644, b"first".to_vec()),
        Item::File("x", 0o600, b"second".to_vec()),
        Item::Dir("d/", 0o755),
        Item::File("d/inner", 0o644, b"i".to_vec()),
        Item::File("d", 0o644, b"now a file".to_vec()),
        Item::File("s", 0o644, b"file".to_vec()),
        Item::Symlink("s", "/etc/passwd"),
        Item::Symlink("t", "/etc/shadow"),
        Item::File("t", 0o644, b"replaced the symlink, not its target".to_vec()),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = apply_layer(&tar[..], dir.path(), &mut |_| {}).expect("apply");
    assert_eq!(stats.diff_id, Digest::of_bytes(&tar));
    assert_eq!(stats.compression, Compression::None);
    let p = dir.path();
    assert_eq!(fs::read(p.join("x")).expect("x"), b"second");
    assert_eq!(
        fs::metadata(p.join("x")).expect("x").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read(p.join("d")).expect("d"), b"now a file");
    assert_eq!(
        fs::read_link(p.join("s")).expect("s").to_str(),
        Some("/etc/passwd")
    );
    assert!(fs::symlink_metadata(p.join("t")).expect("t").is_file());
    assert_eq!(
        fs::metadata(p).expect("root").permissions().mode() & 0o777,
        0o750
    );
}

#[test]
fn long_names_and_compressions() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"long"[..])
        .expect("append long name");
    let tar = b.into_inner().expect("tar");
    for (blob, kind) in [
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = apply_layer(&blob[..], dir.path(), &mut |_| {}).expect("apply");
        assert_eq!(stats.compression, kind);
        assert_eq!(
            stats.diff_id,
            Digest::of_bytes(&tar),
            "diff id covers the whole tar stream"
        );
        assert_eq!(
            fs::read(dir.path().join(&long)).expect("long file"),
            b"long"
        );
        // Parents created implicitly are 0755.
        let parent = fs::metadata(dir.path().join("d".repeat(120))).expect("parent");
        assert_eq!(parent.permissions().mode() & 0o7777, 0o755);
    }
}

#[test]
fn pax_ids_and_times_override_the_header() {
    use std::os::linux::fs::MetadataExt;
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("uid", &b"3000000"[..]),
        ("gid", &b"3000001"[..]),
        ("mtime", &b"1700000000.25"[..]),
    ])
    .expect("pax");
    let h = common::raw_header(tar::EntryType::Regular, "big-ids", None, 0, 0o644);
    b.append(&h, &[][..]).expect("append");
    let tar = b.into_inner().expect("tar");
    let dir = tempfile::tempdir().expect("tempdir");
    apply_layer(&tar[..], dir.path(), &mut |_| {}).expect("apply");
    let m = fs::metadata(dir.path().join("big-ids")).expect("stat");
    assert_eq!((m.st_uid(), m.st_gid()), (3_000_000, 3_000_001));
    assert_eq!(m.st_mtime(), 1_700_000_000);
}
