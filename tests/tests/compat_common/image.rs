//! A one-layer busybox image made here from Debian's `busybox-static`, packed as the two
//! archive formats the engines load: an OCI image layout tarball (`ctr images import`) and a
//! docker-archive (`docker load`, `podman load`). Nothing is pulled.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

/// Where Debian's `busybox-static` puts its binary (`/bin` is `/usr/bin` on merged-/usr).
pub const BUSYBOX: &str = "/bin/busybox";

/// A fixed modification time (2024-01-01) so the layer, and so its digest, is reproducible.
const MTIME: u64 = 1_704_067_200;

/// The image's blobs, built once and then packed in either format.
#[derive(Debug)]
pub struct BusyboxImage {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

/// `sha256:<hex>` of `data`.
fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:<hex>` digest.
fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// The OCI/Go name of the architecture this test runs on.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// True when the ELF file has no program interpreter, that is, it is statically linked: a
/// dynamic busybox (Debian's `busybox` package) would not run in a rootfs without libc.
fn is_static_elf(data: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        data.get(at..at + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    // 64-bit little-endian ELF only; anything else is not what busybox-static ships here.
    if data.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum))
        .all(|i| u32_at(phoff + i * usize::from(phentsize)).is_some_and(|t| t != PT_INTERP))
}

/// A tar header for an entry owned by root with the fixed mtime.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

/// Appends a regular file.
fn add_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    tar.append_data(&mut h, path, data)
        .unwrap_or_else(|e| panic!("appending {path} to an in-memory tar: {e}"));
}

/// Appends a directory.
fn add_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    tar.append_data(&mut h, path, std::io::empty())
        .unwrap_or_else(|e| panic!("appending directory {path} to an in-memory tar: {e}"));
}

/// Appends a symbolic link.
fn add_symlink(tar: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut h, path, target)
        .unwrap_or_else(|e| panic!("appending symlink {path} -> {target} to a tar: {e}"));
}

/// Finishes an in-memory tar.
fn finish(tar: tar::Builder<Vec<u8>>) -> Vec<u8> {
    tar.into_inner()
        .unwrap_or_else(|e| panic!("finishing an in-memory tar: {e}"))
}

impl BusyboxImage {
    /// Builds the layer (bin/busybox, a symlink per applet, a minimal /etc) and the image
    /// config and manifest around it. Panics, naming the package, when busybox-static is
    /// missing or the busybox found is not static.
    pub fn build() -> BusyboxImage {
        let busybox = fs::read(BUSYBOX).unwrap_or_else(|e| {
            panic!("reading {BUSYBOX}: {e}; install the Debian package busybox-static")
        });
        assert!(
            is_static_elf(&busybox),
            "{BUSYBOX} is dynamically linked; install the Debian package busybox-static \
             (not busybox) so the image's rootfs needs no libc"
        );
        let list = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("running {BUSYBOX} --list: {e}"));
        assert!(list.status.success(), "{BUSYBOX} --list failed: {list:?}");
        let applets = String::from_utf8_lossy(&list.stdout).into_owned();

        let mut tar = tar::Builder::new(Vec::new());
        for (dir, mode) in [
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("var", 0o755),
        ] {
            add_dir(&mut tar, dir, mode);
        }
        add_file(&mut tar, "bin/busybox", 0o755, &busybox);
        for applet in applets.lines().map(str::trim) {
            if !applet.is_empty() && applet != "busybox" && !applet.contains('/') {
                add_symlink(&mut tar, &format!("bin/{applet}"), "busybox");
            }
        }
        add_file(
            &mut tar,
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        );
        add_file(
            &mut tar,
            "etc/group",
            0o644,
            b"root:x:0:\nnogroup:x:65534:\n",
        );
        let layer = finish(tar);

        let created = "2024-01-01T00:00:00Z";
        let config = serde_json::to_vec(&json!({
            "created": created,
            "architecture": oci_arch(),
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
                "WorkingDir": "/"
            },
            "rootfs": { "type": "layers", "diff_ids": [digest(&layer)] },
            "history": [{ "created": created, "created_by": "berth compat tests: busybox-static" }]
        }))
        .expect("serialising a JSON literal cannot fail");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(&config),
                "size": config.len()
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest(&layer),
                "size": layer.len()
            }]
        }))
        .expect("serialising a JSON literal cannot fail");
        BusyboxImage {
            layer,
            config,
            manifest,
        }
    }

    /// Writes an OCI image layout tarball (oci-layout, index.json, blobs/sha256/...) to
    /// `dir/busybox-oci.tar`. `name` (e.g. `docker.io/library/busybox-test:latest`) goes into
    /// the annotation containerd names imported images by; its tag into the OCI ref name.
    pub fn write_oci_archive(&self, dir: &Path, name: &str) -> PathBuf {
        let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(&self.manifest),
                "size": self.manifest.len(),
                "platform": { "architecture": oci_arch(), "os": "linux" },
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": tag
                }
            }]
        }))
        .expect("serialising a JSON literal cannot fail");
        let mut tar = tar::Builder::new(Vec::new());
        add_file(
            &mut tar,
            "oci-layout",
            0o644,
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        add_file(&mut tar, "index.json", 0o644, &index);
        add_dir(&mut tar, "blobs", 0o755);
        add_dir(&mut tar, "blobs/sha256", 0o755);
        for blob in [&self.layer, &self.config, &self.manifest] {
            let path = format!("blobs/sha256/{}", hex_of(&digest(blob)));
            add_file(&mut tar, &path, 0o644, blob);
        }
        let path = dir.join("busybox-oci.tar");
        fs::write(&path, finish(tar))
            .unwrap_or_else(|e| panic!("writing the OCI archive {}: {e}", path.display()));
        path
    }

    /// Writes a docker-archive (manifest.json, the config, `<id>/layer.tar`, repositories)
    /// to `dir/busybox-docker.tar`, tagged `repo_tag` (e.g. `busybox-test:latest`).
    pub fn write_docker_archive(&self, dir: &Path, repo_tag: &str) -> PathBuf {
        let config_digest = digest(&self.config);
        let layer_id = hex_of(&digest(&self.layer)).to_owned();
        let config_name = format!("{}.json", hex_of(&config_digest));
        let layer_name = format!("{layer_id}/layer.tar");
        let manifest = serde_json::to_vec(&json!([{
            "Config": config_name,
            "RepoTags": [repo_tag],
            "Layers": [layer_name]
        }]))
        .expect("serialising a JSON literal cannot fail");
        let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
        let repositories = serde_json::to_vec(&json!({ repo: { tag: layer_id } }))
            .expect("serialising a JSON literal cannot fail");
        let mut tar = tar::Builder::new(Vec::new());
        add_file(&mut tar, &config_name, 0o644, &self.config);
        add_dir(&mut tar, &layer_id, 0o755);
        add_file(&mut tar, &layer_name, 0o644, &self.layer);
        add_file(&mut tar, "manifest.json", 0o644, &manifest);
        add_file(&mut tar, "repositories", 0o644, &repositories);
        let path = dir.join("busybox-docker.tar");
        fs::write(&path, finish(tar))
            .unwrap_or_else(|e| panic!("writing the docker archive {}: {e}", path.display()));
        path
    }
}
