//! Image archives: `docker save` tarballs (docker-archive: `manifest.json`,
//! `repositories`, configs and layers, in both the old `<id>/layer.tar`
//! layout and the OCI-blobs layout Docker 25+ writes) and OCI image layouts
//! (`oci-layout`, `index.json`, `blobs/`), as directories or tarballs.
//!
//! Reading never unpacks an archive to disk: a tarball is indexed once
//! (entry name → offset and length, seeking over the data) and each file is
//! then read in place; a gzip- or zstd-compressed archive is first
//! decompressed into a scratch file, because tar entries cannot be found
//! without reading through a compressed stream.
//!
//! Writing produces one format that is both: an OCI layout (for skopeo and
//! podman's `oci-archive:`) that also carries Docker's `manifest.json` and
//! `repositories` (for `docker load` of any version), as Docker 25+ does.

use crate::digest::Digest;
use crate::manifest::{self, ManifestDocument, ManifestError, Platform};
use crate::metadata::ImageRecord;
use crate::reference::Reference;
use crate::unpack::{self, Compression};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Annotation naming an image in an OCI index (a tag, or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker 25+ use for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Largest JSON document (manifest, index, config) read into memory.
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// Errors reading or writing archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A filesystem operation failed.
    #[error("archive {archive}: {op}: {source}")]
    Io {
        /// The archive path.
        archive: String,
        /// What was being done.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// A file the archive's index names is not in it.
    #[error("archive {archive}: {name} is missing")]
    Missing {
        /// The archive path.
        archive: String,
        /// The file name inside the archive.
        name: String,
    },
    /// A JSON file inside the archive does not parse.
    #[error("archive {archive}: {name} is not valid: {reason}")]
    BadJson {
        /// The archive path.
        archive: String,
        /// The file name inside the archive.
        name: String,
        /// The parse error.
        reason: String,
    },
    /// Neither manifest.json nor index.json is present.
    #[error("archive {0}: neither a docker-archive (manifest.json) nor an OCI layout (oci-layout and index.json)")]
    UnknownFormat(String),
    /// A manifest, index or config problem.
    #[error("archive {archive}: {source}")]
    Manifest {
        /// The archive path.
        archive: String,
        /// The manifest error.
        source: ManifestError,
    },
    /// Anything else the archive gets wrong, described.
    #[error("archive {archive}: {reason}")]
    Invalid {
        /// The archive path.
        archive: String,
        /// What is wrong.
        reason: String,
    },
}

/// The files of an archive: a directory, or a tarball indexed by offset.
pub(crate) struct ArchiveSource {
    label: String,
    kind: SourceKind,
    scratch: Option<PathBuf>,
}

enum SourceKind {
    Dir(PathBuf),
    Tar {
        file: File,
        entries: HashMap<String, (u64, u64)>,
        links: HashMap<String, String>,
    },
}

impl Drop for ArchiveSource {
    fn drop(&mut self) {
        if let Some(p) = &self.scratch {
            let _ = fs::remove_file(p);
        }
    }
}

/// Cleans a name inside an archive: no leading `./` or `/`, no `.` parts.
fn clean_name(name: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// A byte range of a file, read with pread so several can coexist.
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ArchiveSource {
    /// Opens a directory or a tarball (decompressing a compressed one into
    /// a file in `scratch_dir`).
    pub(crate) fn open(path: &Path, scratch_dir: &Path) -> Result<Self, ArchiveError> {
        let label = path.display().to_string();
        let ioe = |op: &str| {
            let archive = label.clone();
            let op = op.to_string();
            move |source| ArchiveError::Io {
                archive,
                op,
                source,
            }
        };
        if path.is_dir() {
            return Ok(ArchiveSource {
                label,
                kind: SourceKind::Dir(path.to_path_buf()),
                scratch: None,
            });
        }
        let file = File::open(path).map_err(ioe("open"))?;
        let mut buffered = BufReader::new(file);
        let compression = unpack::detect_compression(&mut buffered).map_err(ioe("read"))?;
        let (file, scratch) = if compression == Compression::None {
            // The peek above moved the file offset; the tar index starts at 0.
            let mut f = buffered.into_inner();
            f.seek(io::SeekFrom::Start(0)).map_err(ioe("seek"))?;
            (f, None)
        } else {
            let (mut tmp, tmp_path) = crate::durable::create_temp(scratch_dir, "archive")
                .map_err(ioe("create scratch file"))?;
            let copy = (|| {
                let (_, mut dec) = unpack::decompress(buffered)?;
                io::copy(&mut dec, &mut tmp)?;
                File::open(&tmp_path)
            })();
            match copy {
                Ok(f) => (f, Some(tmp_path)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp_path);
                    return Err(ioe("decompress")(e));
                }
            }
        };
        let mut src = ArchiveSource {
            label: label.clone(),
            kind: SourceKind::Dir(PathBuf::new()),
            scratch,
        };
        let mut entries = HashMap::new();
        let mut links = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            for entry in archive.entries_with_seek().map_err(ioe("read tar"))? {
                let entry = entry.map_err(ioe("read tar"))?;
                let name = clean_name(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).into_owned();
                        let resolved = if kind.is_symlink() && !target.starts_with('/') {
                            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                            clean_name(&format!("{dir}/{target}"))
                        } else {
                            clean_name(&target)
                        };
                        links.insert(name, resolved);
                    }
                }
            }
        }
        src.kind = SourceKind::Tar {
            file,
            entries,
            links,
        };
        Ok(src)
    }

    /// The archive's path, for messages.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    fn missing(&self, name: &str) -> ArchiveError {
        ArchiveError::Missing {
            archive: self.label.clone(),
            name: name.to_string(),
        }
    }

    /// Whether a file exists in the archive.
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.open_file(name).is_ok()
    }

    /// Opens a file of the archive, returning a reader and its length.
    pub(crate) fn open_file(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), ArchiveError> {
        let name = clean_name(name);
        match &self.kind {
            SourceKind::Dir(root) => {
                let path = root.join(&name);
                // The names come from the archive's own JSON: keep them inside it.
                let canon_root = root.canonicalize().map_err(|source| ArchiveError::Io {
                    archive: self.label.clone(),
                    op: "resolve directory".into(),
                    source,
                })?;
                let canon = path.canonicalize().map_err(|_| self.missing(&name))?;
                if !canon.starts_with(&canon_root) {
                    return Err(ArchiveError::Invalid {
                        archive: self.label.clone(),
                        reason: format!("{name} resolves outside the layout directory"),
                    });
                }
                let f = File::open(&canon).map_err(|_| self.missing(&name))?;
                let len = f
                    .metadata()
                    .map_err(|source| ArchiveError::Io {
                        archive: self.label.clone(),
                        op: format!("stat {name}"),
                        source,
                    })?
                    .len();
                Ok((Box::new(f), len))
            }
            SourceKind::Tar {
                file,
                entries,
                links,
            } => {
                let mut cur = name.clone();
                for _ in 0..16 {
                    if let Some(&(pos, len)) = entries.get(&cur) {
                        return Ok((
                            Box::new(Section {
                                file,
                                pos,
                                end: pos + len,
                            }),
                            len,
                        ));
                    }
                    match links.get(&cur) {
                        Some(next) => cur = next.clone(),
                        None => break,
                    }
                }
                Err(self.missing(&name))
            }
        }
    }

    /// Reads a (small) file of the archive whole.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let (r, len) = self.open_file(name)?;
        if len > MAX_JSON {
            return Err(ArchiveError::Invalid {
                archive: self.label.clone(),
                reason: format!("{name} is {len} bytes, too large for a JSON document"),
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        r.take(MAX_JSON)
            .read_to_end(&mut buf)
            .map_err(|source| ArchiveError::Io {
                archive: self.label.clone(),
                op: format!("read {name}"),
                source,
            })?;
        Ok(buf)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ArchiveError> {
        let data = self.read(name)?;
        serde_json::from_slice(&data).map_err(|e| ArchiveError::BadJson {
            archive: self.label.clone(),
            name: name.to_string(),
            reason: e.to_string(),
        })
    }
}

/// Where one layer of an image to load is found in an archive.
#[derive(Debug, Clone)]
pub(crate) struct LayerSource {
    /// File name inside the archive.
    pub name: String,
    /// The blob's digest, when the archive states it.
    pub digest: Option<Digest>,
    /// The blob's size, when the archive states it.
    pub size: Option<u64>,
    /// The blob's media type, when the archive states it.
    pub media_type: Option<String>,
}

/// One image found in an archive, ready to be loaded.
#[derive(Debug, Clone)]
pub(crate) struct ImagePlan {
    /// The config blob.
    pub config: Vec<u8>,
    /// Its digest (the image ID).
    pub config_digest: Digest,
    /// Its media type.
    pub config_media_type: String,
    /// The layers, bottom first.
    pub layers: Vec<LayerSource>,
    /// The manifest as found (OCI layouts), to keep its digest stable.
    pub manifest: Option<(Vec<u8>, Digest, String)>,
    /// The names the archive gives the image.
    pub tags: Vec<Reference>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The digest a path like `blobs/sha256/<hex>` names, if it has that shape.
fn digest_from_blob_path(name: &str) -> Option<Digest> {
    let name = clean_name(name);
    let hex = name.strip_prefix("blobs/sha256/")?;
    Digest::from_hex(hex).ok()
}

/// Lists the images of an archive, choosing `platform` from OCI indexes.
pub(crate) fn plan(
    src: &ArchiveSource,
    platform: &Platform,
) -> Result<Vec<ImagePlan>, ArchiveError> {
    if src.exists("manifest.json") {
        plan_docker(src)
    } else if src.exists("index.json") {
        plan_oci(src, platform)
    } else {
        Err(ArchiveError::UnknownFormat(src.label().to_string()))
    }
}

fn plan_docker(src: &ArchiveSource) -> Result<Vec<ImagePlan>, ArchiveError> {
    let entries: Vec<DockerManifestEntry> = src.json("manifest.json")?;
    let mut plans = Vec::new();
    for e in entries {
        let config = src.read(&e.config)?;
        let config_digest = Digest::of_bytes(&config);
        if let Some(d) = digest_from_blob_path(&e.config) {
            if d != config_digest {
                return Err(ArchiveError::Invalid {
                    archive: src.label().to_string(),
                    reason: format!("config {} hashes to {config_digest}", e.config),
                });
            }
        }
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t).map_err(|err| ArchiveError::Invalid {
                archive: src.label().to_string(),
                reason: format!("manifest.json names the image {t:?}: {err}"),
            })?;
            tags.push(r.with_default_tag());
        }
        let layers = e
            .layers
            .iter()
            .map(|l| LayerSource {
                name: l.clone(),
                digest: digest_from_blob_path(l),
                size: None,
                media_type: None,
            })
            .collect();
        plans.push(ImagePlan {
            config,
            config_digest,
            config_media_type: manifest::DOCKER_CONFIG.to_string(),
            layers,
            manifest: None,
            tags,
        });
    }
    Ok(plans)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The name an OCI index entry gives its image, if it gives a full one.
fn name_from_annotations(desc: &oci_spec::image::Descriptor) -> Option<Reference> {
    let ann = desc.annotations().as_ref()?;
    // A name pinned by digest is not a tag; the store keeps tags only.
    let tag_ref = |n: &str| {
        Reference::parse(n)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(Reference::with_default_tag)
    };
    if let Some(r) = ann.get(ANNOTATION_CONTAINERD_NAME).and_then(|n| tag_ref(n)) {
        return Some(r);
    }
    let n = ann.get(ANNOTATION_REF_NAME)?;
    // A bare tag ("latest") names no repository, so the image loads untagged.
    if n.contains('/') || n.contains(':') {
        tag_ref(n)
    } else {
        None
    }
}

fn plan_oci(src: &ArchiveSource, platform: &Platform) -> Result<Vec<ImagePlan>, ArchiveError> {
    let label = src.label().to_string();
    let mf = |source| ArchiveError::Manifest {
        archive: label.clone(),
        source,
    };
    if let Ok(layout) = src.json::<serde_json::Value>("oci-layout") {
        let v = layout.get("imageLayoutVersion").and_then(|v| v.as_str());
        if v != Some("1.0.0") {
            return Err(ArchiveError::Invalid {
                archive: label.clone(),
                reason: format!("oci-layout has imageLayoutVersion {v:?}, expected \"1.0.0\""),
            });
        }
    } else {
        return Err(ArchiveError::Missing {
            archive: label.clone(),
            name: "oci-layout".into(),
        });
    }
    let index_bytes = src.read("index.json")?;
    let index =
        match ManifestDocument::parse(&index_bytes, Some(manifest::OCI_INDEX), None).map_err(mf)? {
            ManifestDocument::Index(i) => i,
            ManifestDocument::Image(_) => {
                return Err(ArchiveError::Invalid {
                    archive: label.clone(),
                    reason: "index.json is a manifest, not an index".into(),
                })
            }
        };
    // Images by manifest digest, so two names of one manifest load it once.
    let mut by_manifest: BTreeMap<Digest, ImagePlan> = BTreeMap::new();
    let mut order = Vec::new();
    for desc in index.manifests() {
        let name = name_from_annotations(desc);
        let mut desc = desc.clone();
        let mut depth = 0;
        let (mbytes, mdigest, mtype, image) = loop {
            depth += 1;
            if depth > 4 {
                return Err(ArchiveError::Invalid {
                    archive: label.clone(),
                    reason: "indexes nested more than 4 deep".into(),
                });
            }
            let d = manifest::digest_of(desc.digest(), "index.json").map_err(mf)?;
            let bytes = src.read(&blob_name(&d))?;
            if !d.verify_bytes(&bytes) {
                return Err(ArchiveError::Invalid {
                    archive: label.clone(),
                    reason: format!("blob {d} does not match its digest"),
                });
            }
            let mt = desc.media_type().to_string();
            match ManifestDocument::parse(&bytes, Some(&mt), Some(&d)).map_err(mf)? {
                ManifestDocument::Index(i) => {
                    desc = manifest::select_platform(&i, platform, Some(&d)).map_err(mf)?;
                }
                ManifestDocument::Image(m) => break (bytes, d, mt, m),
            }
        };
        if let Some(plan) = by_manifest.get_mut(&mdigest) {
            plan.tags.extend(name);
            continue;
        }
        let cdigest =
            manifest::digest_of(image.config().digest(), "manifest config").map_err(mf)?;
        let config = src.read(&blob_name(&cdigest))?;
        if !cdigest.verify_bytes(&config) {
            return Err(ArchiveError::Invalid {
                archive: label.clone(),
                reason: format!("config blob {cdigest} does not match its digest"),
            });
        }
        let mut layers = Vec::new();
        for l in image.layers() {
            let d = manifest::digest_of(l.digest(), "manifest layer").map_err(mf)?;
            layers.push(LayerSource {
                name: blob_name(&d),
                digest: Some(d),
                size: Some(l.size()),
                media_type: Some(l.media_type().to_string()),
            });
        }
        order.push(mdigest.clone());
        by_manifest.insert(
            mdigest.clone(),
            ImagePlan {
                config,
                config_digest: cdigest,
                config_media_type: image.config().media_type().to_string(),
                layers,
                manifest: Some((mbytes, mdigest, mtype)),
                tags: name.into_iter().collect(),
            },
        );
    }
    Ok(order
        .into_iter()
        .filter_map(|d| by_manifest.remove(&d))
        .collect())
}

/// Where saved files go: a tarball or a directory.
pub(crate) trait LayoutSink {
    /// Writes one file of `size` bytes from `data`, unless already written.
    fn put(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()>;
    /// Whether `name` was written already.
    fn has(&self, name: &str) -> bool;
}

/// Writes a tarball with deterministic headers (mtime 0, root-owned, 0644).
pub(crate) struct TarSink<W: Write> {
    builder: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> TarSink<W> {
    pub(crate) fn new(w: W) -> Self {
        TarSink {
            builder: tar::Builder::new(w),
            written: HashSet::new(),
        }
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn dir(&mut self, name: &str) -> io::Result<()> {
        if !self.written.insert(name.to_string()) {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        self.builder.append_data(&mut h, name, io::empty())
    }
}

impl<W: Write> LayoutSink for TarSink<W> {
    fn put(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        if self.written.contains(name) {
            return Ok(());
        }
        let mut dir = String::new();
        let parts: Vec<&str> = name.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            dir.push_str(p);
            dir.push('/');
            self.dir(&dir.clone())?;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        self.builder.append_data(&mut h, name, data.take(size))?;
        self.written.insert(name.to_string());
        Ok(())
    }

    fn has(&self, name: &str) -> bool {
        self.written.contains(name)
    }
}

/// Writes into a directory (an OCI layout directory). Files are written
/// under temporary names without a flush each; [`DirSink::finish`] syncs
/// the filesystem once, then names the blobs, then the top-level files in
/// the order written (`oci-layout`, then `index.json`, which names the
/// rest), so that a crash leaves either the old layout or the new one, and
/// never a name on data that is not on disk.
pub(crate) struct DirSink {
    root: PathBuf,
    written: HashSet<String>,
    /// Written files waiting for their names: (temporary path, final path,
    /// whether it lives under `blobs/`).
    pending: Vec<(PathBuf, PathBuf, bool)>,
}

impl DirSink {
    pub(crate) fn new(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(DirSink {
            root: root.to_path_buf(),
            written: HashSet::new(),
            pending: Vec::new(),
        })
    }

    /// Makes everything written durable and gives it its name: one
    /// `syncfs`, the blobs renamed and their directories fsynced, then the
    /// top-level files renamed in the order written and the root fsynced.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        crate::durable::syncfs(&self.root)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, path, _) in pending.iter().filter(|p| p.2) {
            fs::rename(tmp, path)?;
            if let Some(d) = path.parent() {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        for d in &dirs {
            crate::durable::sync_dir(d)?;
        }
        for (tmp, path, _) in pending.iter().filter(|p| !p.2) {
            fs::rename(tmp, path)?;
        }
        crate::durable::sync_dir(&self.root)
    }
}

impl Drop for DirSink {
    fn drop(&mut self) {
        // Not finished (an error): what was written is not named.
        for (tmp, _, _) in self.pending.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl LayoutSink for DirSink {
    fn put(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        if self.written.contains(name) {
            return Ok(());
        }
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // Blobs already present in a layout directory are immutable by
        // digest; everything else (index.json) is replaced atomically.
        let is_blob = name.starts_with("blobs/");
        if is_blob && path.is_file() {
            self.written.insert(name.to_string());
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let (mut f, tmp) = crate::durable::create_temp(&dir, "save")?;
        let res = io::copy(&mut data.take(size), &mut f);
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        crate::durable::start_writeback(&f);
        self.pending.push((tmp, path, is_blob));
        self.written.insert(name.to_string());
        Ok(())
    }

    fn has(&self, name: &str) -> bool {
        self.written.contains(name)
    }
}

/// Opens a stored blob, returning a reader and its length.
pub(crate) type BlobOpener<'a> = dyn Fn(&Digest) -> io::Result<(Box<dyn Read>, u64)> + 'a;

/// One image to save and the names to save it under.
pub(crate) struct SaveItem<'a> {
    pub record: &'a ImageRecord,
    pub names: Vec<Reference>,
}

/// Writes images as an OCI layout that also carries Docker's
/// `manifest.json` and `repositories`. `open_blob` reads a stored blob.
pub(crate) fn write_layout(
    sink: &mut dyn LayoutSink,
    items: &[SaveItem<'_>],
    open_blob: &BlobOpener<'_>,
    docker_files: bool,
    existing_index: &[serde_json::Value],
    progress: &mut dyn FnMut(&Digest, u64, u64),
) -> io::Result<()> {
    let mut put_blob = |sink: &mut dyn LayoutSink, d: &Digest| -> io::Result<()> {
        let name = blob_name(d);
        if sink.has(&name) {
            return Ok(());
        }
        let (mut r, size) = open_blob(d)?;
        progress(d, 0, size);
        sink.put(&name, size, &mut r)?;
        progress(d, size, size);
        Ok(())
    };
    let mut index_entries = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let rec = item.record;
        for l in &rec.layers {
            put_blob(sink, &l.blob)?;
        }
        put_blob(sink, &rec.id.0)?;
        put_blob(sink, &rec.manifest)?;
        let (_, msize) = open_blob(&rec.manifest)?;
        let base = serde_json::json!({
            "mediaType": rec.manifest_media_type,
            "digest": rec.manifest.to_string(),
            "size": msize,
        });
        if item.names.is_empty() {
            index_entries.push(base.clone());
        }
        for n in &item.names {
            let mut e = base.clone();
            let mut ann = serde_json::Map::new();
            ann.insert(ANNOTATION_CONTAINERD_NAME.into(), n.to_string().into());
            if let Some(t) = n.tag() {
                ann.insert(ANNOTATION_REF_NAME.into(), t.into());
            }
            e["annotations"] = serde_json::Value::Object(ann);
            index_entries.push(e);
            if let (Some(tag), Some(top)) = (n.tag(), rec.layers.last()) {
                let repo = n.familiar();
                let repo = repo
                    .rsplit_once(':')
                    .map_or(repo.as_str(), |(r, _)| r)
                    .to_string();
                repositories
                    .entry(repo)
                    .or_default()
                    .insert(tag.to_string(), top.blob.hex().to_string());
            }
        }
        docker_manifest.push(serde_json::json!({
            "Config": blob_name(&rec.id.0),
            "RepoTags": item.names.iter().filter(|n| n.tag().is_some()).map(Reference::familiar).collect::<Vec<_>>(),
            "Layers": rec.layers.iter().map(|l| blob_name(&l.blob)).collect::<Vec<_>>(),
        }));
    }
    // Entries of an existing layout index stay unless a saved image takes
    // their name (a layout directory can collect several saves).
    let name_of = |e: &serde_json::Value| {
        let ann = e.get("annotations")?;
        ann.get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| ann.get(ANNOTATION_REF_NAME))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let new_names: HashSet<String> = index_entries.iter().filter_map(name_of).collect();
    let kept: Vec<serde_json::Value> = existing_index
        .iter()
        .filter(|e| name_of(e).is_some_and(|n| !new_names.contains(&n)))
        .cloned()
        .collect();
    index_entries.splice(0..0, kept);
    let to_bytes = |v: &serde_json::Value| serde_json::to_vec(v).map_err(io::Error::other);
    let layout = to_bytes(&serde_json::json!({"imageLayoutVersion": "1.0.0"}))?;
    sink.put("oci-layout", layout.len() as u64, &mut &layout[..])?;
    let index = to_bytes(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": index_entries,
    }))?;
    sink.put("index.json", index.len() as u64, &mut &index[..])?;
    if docker_files {
        let m = to_bytes(&serde_json::Value::Array(docker_manifest))?;
        sink.put("manifest.json", m.len() as u64, &mut &m[..])?;
        let r = to_bytes(&serde_json::to_value(&repositories).map_err(io::Error::other)?)?;
        sink.put("repositories", r.len() as u64, &mut &r[..])?;
    }
    Ok(())
}
