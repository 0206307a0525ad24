//! Test fixtures built in code: busybox-static layers (with whiteouts, an
//! opaque directory, devices, setuid, hard links, xattrs), written as a
//! docker-archive and as an OCI layout with real configs and manifests, and
//! raw tar entries for hostile layers.
#![allow(dead_code)]

use image::digest::Digest;
use std::fs;
use std::io::Write;
use std::path::Path;

pub const BUSYBOX: &str = "/usr/bin/busybox";
pub const APPLETS: &[&str] = &["sh", "ls", "cat", "echo", "true", "mount"];

/// One tar entry of a fixture layer.
#[derive(Clone)]
pub enum Item {
    Dir(&'static str, u32),
    File(&'static str, u32, Vec<u8>),
    Owned(&'static str, u32, u32, u32, u64, Vec<u8>),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Char(&'static str, u32, u32),
    Fifo(&'static str),
    Xattr(&'static str, &'static str, &'static [u8], Vec<u8>),
}

fn put_raw(field: &mut [u8], value: &[u8]) {
    assert!(value.len() < field.len(), "name too long for a fixture");
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// A header whose name and link name are written raw, so hostile names
/// (`..`, absolute) get through the tar crate's checks.
pub fn raw_header(
    kind: tar::EntryType,
    name: &str,
    link: Option<&str>,
    size: u64,
    mode: u32,
) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    put_raw(&mut h.as_old_mut().name, name.as_bytes());
    if let Some(l) = link {
        put_raw(&mut h.as_old_mut().linkname, l.as_bytes());
    }
    h.set_cksum();
    h
}

/// Builds an uncompressed layer tar from items.
pub fn layer_tar(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        match it {
            Item::Dir(n, mode) => {
                let h = raw_header(tar::EntryType::Directory, n, None, 0, *mode);
                b.append(&h, &[][..]).expect("append dir");
            }
            Item::File(n, mode, data) => {
                let h = raw_header(tar::EntryType::Regular, n, None, data.len() as u64, *mode);
                b.append(&h, &data[..]).expect("append file");
            }
            Item::Owned(n, mode, uid, gid, mtime, data) => {
                let mut h = raw_header(tar::EntryType::Regular, n, None, data.len() as u64, *mode);
                h.set_uid(*uid as u64);
                h.set_gid(*gid as u64);
                h.set_mtime(*mtime);
                h.set_cksum();
                b.append(&h, &data[..]).expect("append file");
            }
            Item::Symlink(n, t) => {
                let h = raw_header(tar::EntryType::Symlink, n, Some(t), 0, 0o777);
                b.append(&h, &[][..]).expect("append symlink");
            }
            Item::Hardlink(n, t) => {
                let h = raw_header(tar::EntryType::Link, n, Some(t), 0, 0o644);
                b.append(&h, &[][..]).expect("append link");
            }
            Item::Char(n, maj, min) => {
                let mut h = raw_header(tar::EntryType::Char, n, None, 0, 0o666);
                h.set_device_major(*maj).expect("major");
                h.set_device_minor(*min).expect("minor");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append char");
            }
            Item::Fifo(n) => {
                let h = raw_header(tar::EntryType::Fifo, n, None, 0, 0o600);
                b.append(&h, &[][..]).expect("append fifo");
            }
            Item::Xattr(n, key, value, data) => {
                let k = format!("SCHILY.xattr.{key}");
                b.append_pax_extensions([(k.as_str(), *value)])
                    .expect("pax");
                let h = raw_header(tar::EntryType::Regular, n, None, data.len() as u64, 0o644);
                b.append(&h, &data[..]).expect("append xattr file");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip finish")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).expect("zstd")
}

/// The base layer: busybox, applet symlinks, devices, setuid, hard link, xattr.
pub fn base_layer() -> Vec<u8> {
    let bb = fs::read(BUSYBOX)
        .expect("/usr/bin/busybox (Debian's busybox-static) is needed by these tests");
    let mut items = vec![
        Item::Dir("bin/", 0o755),
        Item::File("bin/busybox", 0o755, bb),
    ];
    for a in APPLETS {
        let name: &'static str = Box::leak(format!("bin/{a}").into_boxed_str());
        items.push(Item::Symlink(name, "busybox"));
    }
    items.extend([
        Item::Hardlink("bin/busybox-hardlink", "bin/busybox"),
        Item::File("bin/setuid-tool", 0o4755, b"#!/bin/sh\n".to_vec()),
        Item::Dir("tmp/", 0o1777),
        Item::Dir("dev/", 0o755),
        Item::Char("dev/null", 1, 3),
        Item::Fifo("dev/fifo"),
        Item::Dir("etc/", 0o755),
        Item::Xattr(
            "etc/passwd",
            "user.berth-test",
            b"kept",
            b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        ),
        Item::File("etc/group", 0o644, b"root:x:0:\n".to_vec()),
        Item::File("etc/remove-me", 0o644, b"gone in layer 2\n".to_vec()),
        Item::Dir("etc/conf.d/", 0o755),
        Item::File("etc/conf.d/a.conf", 0o644, b"a\n".to_vec()),
        Item::File("etc/conf.d/b.conf", 0o644, b"b\n".to_vec()),
    ]);
    layer_tar(&items)
}

/// Layer 2: a whiteout and an opaque directory.
pub fn whiteout_layer() -> Vec<u8> {
    layer_tar(&[
        Item::Dir("etc/", 0o755),
        Item::File("etc/.wh.remove-me", 0o644, Vec::new()),
        Item::Dir("etc/conf.d/", 0o755),
        Item::File("etc/conf.d/.wh..wh..opq", 0o644, Vec::new()),
        Item::File("etc/conf.d/c.conf", 0o644, b"c\n".to_vec()),
        Item::File("etc/motd", 0o644, b"welcome to berth\n".to_vec()),
    ])
}

/// Layer 3: ownership and mtime.
pub fn owned_layer() -> Vec<u8> {
    layer_tar(&[Item::Owned(
        "hello.txt",
        0o640,
        1000,
        1000,
        12345,
        b"hello\n".to_vec(),
    )])
}

/// Another top layer for a second image over the same base.
pub fn other_layer() -> Vec<u8> {
    layer_tar(&[Item::File("b.txt", 0o644, b"image b\n".to_vec())])
}

/// A fixture image: its layer blobs (as stored in the archive) and the
/// uncompressed tars (for diff IDs).
pub struct FixtureImage {
    pub tag: &'static str,
    pub tars: Vec<Vec<u8>>,
    pub blobs: Vec<(Vec<u8>, &'static str)>,
    pub config: Vec<u8>,
}

impl FixtureImage {
    pub fn new(tag: &'static str, tars: Vec<Vec<u8>>, compress: &[&str]) -> Self {
        let diff_ids: Vec<String> = tars
            .iter()
            .map(|t| Digest::of_bytes(t).to_string())
            .collect();
        let history: Vec<serde_json::Value> = (0..tars.len())
            .map(|i| serde_json::json!({"created": "2026-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
            .collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Labels": {"fixture": tag}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .expect("config json");
        let blobs = tars
            .iter()
            .zip(compress)
            .map(|(t, c)| match *c {
                "gzip" => (gzip(t), image::manifest::OCI_LAYER_GZIP),
                "zstd" => (zstd(t), image::manifest::OCI_LAYER_ZSTD),
                _ => (t.clone(), image::manifest::OCI_LAYER_TAR),
            })
            .collect();
        FixtureImage {
            tag,
            tars,
            blobs,
            config,
        }
    }

    pub fn id(&self) -> Digest {
        Digest::of_bytes(&self.config)
    }

    pub fn manifest(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image::manifest::OCI_MANIFEST,
            "config": {"mediaType": image::manifest::OCI_CONFIG, "digest": self.id().to_string(), "size": self.config.len()},
            "layers": self.blobs.iter().map(|(b, mt)| serde_json::json!({
                "mediaType": mt, "digest": Digest::of_bytes(b).to_string(), "size": b.len()
            })).collect::<Vec<_>>(),
        }))
        .expect("manifest json")
    }
}

fn append_file(b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
        .expect("append archive file");
}

/// Writes images as a docker-archive in the old layout (`<id>/layer.tar`,
/// `<config-hex>.json`, `manifest.json`, `repositories`). Layers are
/// written as stored in the fixture (docker writes them uncompressed; the
/// loader takes either).
pub fn write_docker_archive(path: &Path, images: &[&FixtureImage]) {
    let f = fs::File::create(path).expect("create archive");
    let mut b = tar::Builder::new(f);
    let mut manifest = Vec::new();
    let mut repos = serde_json::Map::new();
    for img in images {
        let mut layers = Vec::new();
        for (blob, _) in &img.blobs {
            let dir = Digest::of_bytes(blob).hex().to_string();
            let name = format!("{dir}/layer.tar");
            append_file(&mut b, &format!("{dir}/VERSION"), b"1.0");
            append_file(&mut b, &name, blob);
            layers.push(name);
        }
        let cfg = format!("{}.json", img.id().hex());
        append_file(&mut b, &cfg, &img.config);
        manifest.push(serde_json::json!({"Config": cfg, "RepoTags": [img.tag], "Layers": layers}));
        let (repo, tag) = img.tag.rsplit_once(':').expect("fixture tags have a tag");
        repos.insert(
            repo.into(),
            serde_json::json!({ tag: layers.last().map(|l| &l[..64]) }),
        );
    }
    append_file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append_file(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repos).expect("json"),
    );
    b.into_inner().expect("finish").sync_all().expect("sync");
}

/// Writes images as an OCI layout directory, named with ref.name annotations.
pub fn write_oci_layout(dir: &Path, images: &[&FixtureImage]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |data: &[u8]| {
        let d = Digest::of_bytes(data);
        fs::write(blobs.join(d.hex()), data).expect("write blob");
        d
    };
    let mut manifests = Vec::new();
    for img in images {
        for (b, _) in &img.blobs {
            put(b);
        }
        put(&img.config);
        let m = img.manifest();
        let md = put(&m);
        manifests.push(serde_json::json!({
            "mediaType": image::manifest::OCI_MANIFEST,
            "digest": md.to_string(),
            "size": m.len(),
            "annotations": {"org.opencontainers.image.ref.name": img.tag},
        }));
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .expect("json"),
    )
    .expect("index.json");
}

/// Image A: base (plain) + whiteouts (zstd) + owned file (gzip).
pub fn image_a() -> FixtureImage {
    FixtureImage::new(
        "berth-test/a:latest",
        vec![base_layer(), whiteout_layer(), owned_layer()],
        &["plain", "zstd", "gzip"],
    )
}

/// Image B: the same base layer (gzip this time) + its own layer.
pub fn image_b() -> FixtureImage {
    FixtureImage::new(
        "berth-test/b:1.0",
        vec![base_layer(), other_layer()],
        &["gzip", "plain"],
    )
}

/// Every file under `dir` (relative paths), for "nothing was left" checks.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string(),
            );
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
