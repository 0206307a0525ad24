//! The image store facade: one data root holding the content store, the
//! snapshots and the metadata, and the operations Docker users know (load,
//! save, import, export, tag, untag, remove, inspect, history, list, prune,
//! disk usage) plus the container-facing ones (prepare a writable layer,
//! export or diff it, remove it).
//!
//! The store knows nothing of containers: callers that must refuse to
//! remove an image a container uses pass an `in_use` predicate.
//!
//! Order of writes on load, which is what makes a kill -9 harmless: each
//! layer's blob and snapshot (each verified, then renamed into place; a
//! layer is unpacked while its blob is written, in one pass over the
//! archive), then the image record and its tags in one atomic metadata
//! write. A crash before the last step leaves blobs and snapshots no record
//! names; `gc` reclaims them, and a retried load reuses them.

use crate::archive::{self, ArchiveError, ArchiveSource, DirSink, ImagePlan, SaveItem, TarSink};
use crate::content::{BlobWriter, ContentError, ContentStore, Expected, VerifiedBlob};
use crate::digest::{Digest, HashingReader};
use crate::durable;
use crate::export::{self, ExportError, ExportStats};
use crate::manifest::{self, ManifestError, Platform};
use crate::metadata::{ImageId, ImageRecord, LayerRecord, MetadataError, MetadataStore};
use crate::pending::{Marker, Pending};
use crate::progress::Progress;
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{MountSpec, SnapshotError, Snapshotter, SnapshotterKind, StagedSnapshot};
use crate::unpack::{self, detect_compression};
use oci_spec::image::{History, ImageConfiguration};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Errors from store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store.
    #[error("image store {0}: in use by another process (lock file is held)")]
    Locked(PathBuf),
    /// A filesystem operation on the store failed.
    #[error("image store: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// From the content store.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// From the snapshotter.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// From the metadata store.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// From archive reading or writing.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// From exporting a filesystem as a tar.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// From manifest or config parsing.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// An image name that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No image by that name or ID.
    #[error("no such image: {0}")]
    NotFound(String),
    /// A short ID matching several images.
    #[error("image ID prefix {0:?} is ambiguous: it matches several images")]
    Ambiguous(String),
    /// Removal refused: a container uses the image.
    #[error("unable to remove image {name} ({id}): it is being used by a container (use force to remove anyway)")]
    InUse {
        /// The name given.
        name: String,
        /// The image.
        id: ImageId,
    },
    /// Removal by ID refused: several tags point at the image.
    #[error("unable to remove image {id}: it is referenced in multiple repositories ({tags}); remove the tags or use force")]
    MultipleTags {
        /// The image.
        id: ImageId,
        /// The tags, comma-separated.
        tags: String,
    },
    /// An image in an archive is inconsistent.
    #[error("image {id} in {archive}: {reason}")]
    BadImage {
        /// The config digest.
        id: Digest,
        /// The archive.
        archive: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing an archive failed.
    #[error("saving images: {0}")]
    Save(io::Error),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Force a snapshotter instead of probing for overlay.
    pub snapshotter: Option<SnapshotterKind>,
    /// The platform chosen from multi-platform indexes.
    pub platform: Platform,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            snapshotter: None,
            platform: Platform::linux_amd64(),
        }
    }
}

/// One line of `docker images`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// The image ID.
    pub id: ImageId,
    /// Its tags.
    pub tags: Vec<Reference>,
    /// The config's creation time.
    pub created: Option<String>,
    /// Unpacked size of all its layers.
    pub size: u64,
}

/// What `docker image inspect` needs.
#[derive(Debug, Clone)]
pub struct ImageInspect {
    /// The stored record.
    pub record: ImageRecord,
    /// Its tags.
    pub tags: Vec<Reference>,
    /// The config, parsed.
    pub config: ImageConfiguration,
    /// The config exactly as stored (keeps fields oci-spec does not model).
    pub config_json: serde_json::Value,
    /// The rootfs diff IDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Unpacked size of all layers.
    pub size: u64,
}

/// One result of a remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// A tag was removed.
    Untagged(Reference),
    /// The image was deleted.
    Deleted(ImageId),
}

/// What garbage collection reclaimed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: Vec<Digest>,
    /// Snapshots (chain IDs) deleted.
    pub snapshots_removed: Vec<Digest>,
    /// Bytes freed (blob sizes plus unpacked layer sizes).
    pub bytes_reclaimed: u64,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Images deleted.
    pub images_deleted: Vec<ImageId>,
    /// Tags removed with them.
    pub untagged: Vec<Reference>,
    /// The garbage collection that followed.
    pub gc: GcReport,
}

/// Disk usage of one image, as `docker system df -v` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageUsage {
    /// The image.
    pub id: ImageId,
    /// Its tags.
    pub tags: Vec<Reference>,
    /// Unpacked size of all its layers.
    pub size: u64,
    /// The part of `size` in layers other images also use.
    pub shared_size: u64,
    /// The part of `size` in layers only this image uses.
    pub unique_size: u64,
    /// Bytes of its blobs in the content store (config, manifest, layers).
    pub content_size: u64,
}

/// The image store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    snapshots: Snapshotter,
    metadata: MetadataStore,
    pending: Pending,
    platform: Platform,
    _lock: File,
}

/// Makes what pulls and loads named durable, and forgets their markers
/// (see the `pending` module); cheap to clone, usable without the store's
/// lock (berthd runs it in the background after each pull or load).
#[derive(Debug, Clone)]
pub struct Settler {
    content: ContentStore,
    snapshots: Snapshotter,
    pending: Pending,
}

impl Settler {
    /// Flushes the store's filesystem(s) and the directories holding the
    /// names, then removes the markers of every pull or load that finished
    /// naming before the flush began. Returns how many markers it removed
    /// (0, without a flush, when none waited).
    pub fn settle(&self) -> Result<usize, StoreError> {
        let dir = self.pending.dir().to_path_buf();
        self.pending.settle(
            || flush_all(&self.content, &self.snapshots),
            |source| StoreError::Io {
                op: "remove settled markers in",
                path: dir,
                source,
            },
        )
    }
}

/// Makes every blob, snapshot and name written so far durable: one
/// `syncfs` (two if content and snapshots are on different filesystems),
/// then an fsync of each directory holding names.
fn flush_all(content: &ContentStore, snapshots: &Snapshotter) -> Result<(), StoreError> {
    flush_data(content, snapshots)?;
    content.sync_names()?;
    snapshots.sync_names()?;
    Ok(())
}

fn flush_data(content: &ContentStore, snapshots: &Snapshotter) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    content.sync_filesystem()?;
    let dev = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let content_dev = dev(content.dir());
    let snapshot_dev = dev(snapshots.root());
    if content_dev.is_none() || content_dev != snapshot_dev {
        snapshots.sync_filesystem()?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `root`, probing for overlay.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        Self::open_with(root, StoreOptions::default())
    }

    /// Opens the store with options.
    pub fn open_with(root: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        fs::create_dir_all(root).map_err(io_err("create directory", root))?;
        let lock_path = root.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| StoreError::Locked(root.to_path_buf()))?;
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err("create directory", &tmp))?;
        durable::remove_debris(&tmp).map_err(io_err("clean", &tmp))?;
        let content = ContentStore::open(root)?;
        let snapshots = match options.snapshotter {
            Some(kind) => Snapshotter::open_with(root, kind)?,
            None => Snapshotter::open(root)?,
        };
        let metadata = MetadataStore::open(root)?;
        let pending_dir = root.join("pending");
        let (pending, earlier) = Pending::open(root)
            .map_err(io_err("open the pending-names markers in", &pending_dir))?;
        let mut store = Store {
            root: root.to_path_buf(),
            content,
            snapshots,
            metadata,
            pending,
            platform: options.platform,
            _lock: lock,
        };
        if !earlier.is_empty() {
            store.recover(earlier)?;
        }
        // What earlier processes of this boot named is on disk or in the
        // page cache; make it durable now rather than leave it to a crash.
        store.settler().settle()?;
        Ok(store)
    }

    /// After a crash (markers from an earlier boot), or a reboot before a
    /// settle: the blobs and snapshots the markers list may be torn. Each
    /// listed blob is hashed again and kept only if it still matches its
    /// digest; each listed snapshot is made again from its layer's blob
    /// (verified against its diff ID), bottom up, where an image record says
    /// how. What cannot be made whole goes, with every image using it; then
    /// the markers go. A crash during this leaves the markers, and the next
    /// open does it again.
    fn recover(&mut self, earlier: Vec<(PathBuf, Marker)>) -> Result<(), StoreError> {
        let mut listed_blobs = HashSet::new();
        let mut listed_chains = HashSet::new();
        for (_, m) in &earlier {
            listed_blobs.extend(m.blobs.iter().cloned());
            listed_chains.extend(m.snapshots.iter().cloned());
        }
        let mut lost: HashSet<Digest> = HashSet::new();
        for blob in &listed_blobs {
            if !self.blob_is_whole(blob) {
                tracing::warn!(%blob, "a blob named just before a crash is not whole; removing it");
                self.content.delete(blob)?;
                lost.insert(blob.clone());
            }
        }
        let mut remade: HashSet<Digest> = HashSet::new();
        let mut broken: HashSet<Digest> = HashSet::new();
        let records: Vec<ImageRecord> = self.metadata.state().images.values().cloned().collect();
        for r in &records {
            let mut parent: Option<&Digest> = None;
            for l in &r.layers {
                let chain = &l.chain_id;
                if listed_chains.contains(chain)
                    && !remade.contains(chain)
                    && !broken.contains(chain)
                {
                    let parent_ok = parent.is_none_or(|p| !broken.contains(p));
                    let result = if !parent_ok {
                        Err("its parent layer could not be made again".to_string())
                    } else if lost.contains(&l.blob) {
                        Err(format!("its blob {} is not whole", l.blob))
                    } else {
                        self.remake_snapshot(parent, l).map_err(|e| e.to_string())
                    };
                    match result {
                        Ok(()) => {
                            tracing::info!(%chain, blob = %l.blob, "made a layer named just before a crash again from its blob");
                            remade.insert(chain.clone());
                        }
                        Err(why) => {
                            tracing::warn!(%chain, reason = %why, "cannot make a layer named just before a crash again; removing it");
                            self.snapshots.remove(chain)?;
                            broken.insert(chain.clone());
                        }
                    }
                }
                parent = Some(chain);
            }
        }
        // Listed snapshots that no image uses: garbage, and possibly torn.
        for chain in &listed_chains {
            if !remade.contains(chain) && !broken.contains(chain) {
                self.snapshots.remove(chain)?;
                broken.insert(chain.clone());
            }
        }
        let damaged = |r: &ImageRecord| {
            lost.contains(&r.id.0)
                || lost.contains(&r.manifest)
                || r.layers
                    .iter()
                    .any(|l| lost.contains(&l.blob) || broken.contains(&l.chain_id))
        };
        let gone: Vec<ImageId> = records
            .iter()
            .filter(|r| damaged(r))
            .map(|r| r.id.clone())
            .collect();
        for id in &gone {
            tracing::warn!(image = %id, "removing an image whose data did not reach the disk before a crash (pull or load it again)");
        }
        if !gone.is_empty() {
            self.metadata.update(|s| -> Result<(), StoreError> {
                for id in &gone {
                    s.images.remove(id);
                }
                s.tags.retain(|_, id| !gone.contains(id));
                Ok(())
            })?;
        }
        flush_all(&self.content, &self.snapshots)?;
        let dir = self.pending.dir().to_path_buf();
        self.pending
            .forget(earlier.iter().map(|(p, _)| p.as_path()))
            .map_err(io_err("remove recovered markers in", &dir))
    }

    /// Whether a blob's bytes still hash to its digest.
    fn blob_is_whole(&self, digest: &Digest) -> bool {
        let Ok(file) = self.content.open_blob(digest) else {
            return false;
        };
        let reader = HashingReader::new(BufReader::with_capacity(1 << 20, file));
        matches!(reader.finish(), Ok((actual, _)) if actual == *digest)
    }

    /// Replaces a layer's snapshot with one unpacked again from its blob.
    fn remake_snapshot(
        &self,
        parent: Option<&Digest>,
        layer: &LayerRecord,
    ) -> Result<(), StoreError> {
        self.snapshots.remove(&layer.chain_id)?;
        let blob = self.content.open_blob(&layer.blob)?;
        let staged = self.snapshots.stage_unsynced(
            parent,
            &layer.diff_id,
            BufReader::with_capacity(1 << 20, blob),
            &mut |_| {},
        )?;
        if let Some(staged) = staged {
            self.snapshots.name_staged(staged)?;
        }
        Ok(())
    }

    /// A handle that makes what pulls and loads named durable
    /// ([`Settler::settle`]); berthd runs it after each, off the request.
    pub fn settler(&self) -> Settler {
        Settler {
            content: self.content.clone(),
            snapshots: self.snapshots.clone(),
            pending: self.pending.clone(),
        }
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The platform chosen from multi-platform indexes by default.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The markers of names given before their data is durable.
    pub(crate) fn pending(&self) -> &Pending {
        &self.pending
    }

    /// The snapshotter (its kind and fallback reason tell which one runs).
    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// An image record by ID.
    pub fn get(&self, id: &ImageId) -> Option<&ImageRecord> {
        self.metadata.state().images.get(id)
    }

    /// Loads every image of a docker-archive or OCI layout (directory or
    /// tarball, possibly gzip- or zstd-compressed).
    pub fn load_archive(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let src = ArchiveSource::open(path, &self.root.join("tmp"))?;
        let plans = archive::plan(&src, &self.platform)?;
        let mut out = Vec::new();
        for plan in plans {
            out.push(self.load_plan(&src, plan, progress)?);
        }
        Ok(out)
    }

    /// Loads an archive streamed from `reader` (as `docker load` receives
    /// it), spooling it to the store's scratch directory first.
    pub fn load_reader(
        &mut self,
        mut reader: impl Read,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let tmp_dir = self.root.join("tmp");
        let (mut f, path) = durable::create_temp(&tmp_dir, "load")
            .map_err(io_err("create scratch file in", &tmp_dir))?;
        let res = io::copy(&mut reader, &mut f)
            .map_err(io_err("spool archive to", &path))
            .and_then(|_| self.load_archive(&path, progress));
        let _ = fs::remove_file(&path);
        res
    }

    fn load_plan(
        &mut self,
        src: &ArchiveSource,
        plan: ImagePlan,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageRecord, StoreError> {
        let bad = |reason: String| StoreError::BadImage {
            id: plan.config_digest.clone(),
            archive: src.label().to_string(),
            reason,
        };
        // As a pull does: every blob verified under a temporary name and
        // every layer unpacked into a temporary directory, then a
        // pending-names marker and the names ([`publish_staged`]); a failure
        // or a kill before that leaves only temporary files, removed at the
        // next open.
        let mut blobs: Vec<VerifiedBlob> = Vec::new();
        let config_size = plan.config.len() as u64;
        if !self.content.contains(&plan.config_digest) {
            let mut w = self.content.writer(Expected {
                digest: Some(plan.config_digest.clone()),
                size: Some(config_size),
            })?;
            w.write_all(&plan.config)
                .map_err(io_err("write the config of", Path::new(src.label())))?;
            blobs.push(w.verify()?);
        }
        let config = manifest::parse_config(&plan.config, &plan.config_digest)?;
        let diff_ids = manifest::diff_ids(&config, &plan.config_digest)?;
        if diff_ids.len() != plan.layers.len() {
            return Err(bad(format!(
                "the config lists {} layers but the archive has {}",
                diff_ids.len(),
                plan.layers.len()
            )));
        }
        let mut layers: Vec<StagedLayer> = Vec::new();
        let mut parent: Option<Digest> = None;
        for (ls, diff_id) in plan.layers.iter().zip(&diff_ids) {
            let short = ls.digest.as_ref().unwrap_or(diff_id).short().to_string();
            let (reader, len) = src.open_file(&ls.name)?;
            if let Some(size) = ls.size {
                if size != len {
                    return Err(bad(format!(
                        "layer {} is {len} bytes, the manifest says {size}",
                        ls.name
                    )));
                }
            }
            let chain = match &parent {
                None => diff_id.clone(),
                Some(p) => Digest::of_bytes(format!("{p} {diff_id}").as_bytes()),
            };
            let expected = Expected {
                digest: ls.digest.clone(),
                size: Some(len),
            };
            let mut last_report = 0u64;
            let mut report = |n: u64| {
                if n - last_report >= 1 << 20 || n == len {
                    last_report = n;
                    progress(Progress {
                        id: short.clone(),
                        status: "Loading layer".into(),
                        current: n,
                        total: Some(len),
                    });
                }
            };
            let read_err = |source| ArchiveError::Io {
                archive: src.label().to_string(),
                op: format!("read {}", ls.name),
                source,
            };
            let stored = ls
                .digest
                .as_ref()
                .filter(|d| self.content.contains(d))
                .map(|d| self.content.path(d));
            let blob_present = stored.is_some();
            let snapshot_present = self.snapshots.exists(&chain);
            // The blob as stored (`None`) or as written for this load, and
            // the layer's snapshot staged for this load (`None` when it
            // exists already).
            let (written, staged): (Option<VerifiedBlob>, Option<StagedSnapshot>) = if !blob_present
                && !snapshot_present
            {
                // One pass over the archive: the layer is unpacked as
                // it is read, and the same bytes go to the content store.
                let mut writer = self.content.writer(expected)?;
                let mut tee = Tee::new(reader, &mut writer, &mut report);
                let staged = self.snapshots.stage_unsynced(
                    parent.as_ref(),
                    diff_id,
                    &mut tee,
                    &mut |_| {},
                )?;
                // The decompressor may stop before the blob's last bytes.
                io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
                // A blob that does not verify drops `staged` with it:
                // nothing made from those bytes is kept.
                (Some(writer.verify()?), staged)
            } else {
                let verified = if blob_present {
                    None
                } else {
                    let mut writer = self.content.writer(expected)?;
                    let mut tee = Tee::new(reader, &mut writer, &mut report);
                    io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
                    Some(writer.verify()?)
                };
                let Some(blob_path) = verified
                    .as_ref()
                    .map(|v| v.path().to_path_buf())
                    .or_else(|| stored.clone())
                else {
                    return Err(bad(format!("layer {} has no blob", ls.name)));
                };
                let open = || File::open(&blob_path).map_err(io_err("open", &blob_path));
                let staged = if snapshot_present {
                    // The snapshot is shared; still prove this blob is that layer.
                    let (_, tar) = unpack::decompress_hashed(open()?)
                        .map_err(io_err("decompress", &blob_path))?;
                    let (actual, _) = HashingReader::new(tar)
                        .finish()
                        .map_err(io_err("decompress", &blob_path))?;
                    if actual != *diff_id {
                        return Err(SnapshotError::DiffIdMismatch {
                            expected: diff_id.clone(),
                            actual,
                        }
                        .into());
                    }
                    progress(Progress::message(short.clone(), "Already exists"));
                    None
                } else {
                    self.snapshots
                        .stage_unsynced(parent.as_ref(), diff_id, open()?, &mut |_| {})?
                };
                (verified, staged)
            };
            let (digest, blob_path) = match (&written, &ls.digest, stored) {
                (Some(v), _, _) => (v.digest().clone(), v.path().to_path_buf()),
                (None, Some(d), Some(path)) => (d.clone(), path),
                _ => return Err(bad(format!("layer {} has no blob", ls.name))),
            };
            let mut head =
                BufReader::new(File::open(&blob_path).map_err(io_err("open", &blob_path))?);
            let compression = detect_compression(&mut head).map_err(io_err("read", &blob_path))?;
            let media_type = ls
                .media_type
                .clone()
                .unwrap_or_else(|| compression.oci_media_type().to_string());
            let unpacked_size = match &staged {
                Some(st) => st.size(),
                None => self.snapshots.info(&chain)?.size,
            };
            layers.push((
                LayerRecord {
                    blob: digest,
                    media_type,
                    size: len,
                    diff_id: diff_id.clone(),
                    chain_id: chain.clone(),
                    unpacked_size,
                },
                staged,
            ));
            blobs.extend(written);
            parent = Some(chain);
        }
        let layers = publish_staged(&self.content, &self.snapshots, &self.pending, blobs, layers)?;
        self.commit_image(
            &plan.config_digest,
            config_size,
            &config,
            &plan.config_media_type,
            plan.manifest.as_ref(),
            layers,
            &plan.tags,
            "Loaded",
            progress,
        )
    }

    /// Stores (or synthesises) the manifest, then makes the image and its
    /// tags visible in one metadata write. Everything the record names must
    /// be durable already, or covered by a pending-names marker.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_image(
        &mut self,
        config_digest: &Digest,
        config_size: u64,
        config: &ImageConfiguration,
        config_media_type: &str,
        manifest: Option<&(Vec<u8>, Digest, String)>,
        layers: Vec<LayerRecord>,
        tags: &[Reference],
        verb: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageRecord, StoreError> {
        self.commit_image_with(
            config_digest,
            config_size,
            config,
            config_media_type,
            manifest,
            layers,
            tags,
            &[],
            Some(verb),
            progress,
        )
    }

    /// [`Self::commit_image`] that also records `repo_digests` (merged with
    /// those the image had) and announces nothing when `verb` is `None`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_image_with(
        &mut self,
        config_digest: &Digest,
        config_size: u64,
        config: &ImageConfiguration,
        config_media_type: &str,
        manifest: Option<&(Vec<u8>, Digest, String)>,
        layers: Vec<LayerRecord>,
        tags: &[Reference],
        repo_digests: &[String],
        verb: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageRecord, StoreError> {
        let (manifest_digest, manifest_media_type, config_media_type) = match manifest {
            Some((bytes, digest, mt)) => {
                self.content.write_bytes(
                    bytes,
                    Expected {
                        digest: Some(digest.clone()),
                        size: None,
                    },
                )?;
                (digest.clone(), mt.clone(), config_media_type.to_string())
            }
            None => {
                let m = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": manifest::OCI_MANIFEST,
                    "config": {
                        "mediaType": manifest::OCI_CONFIG,
                        "digest": config_digest.to_string(),
                        "size": config_size,
                    },
                    "layers": layers.iter().map(|l| serde_json::json!({
                        "mediaType": l.media_type,
                        "digest": l.blob.to_string(),
                        "size": l.size,
                    })).collect::<Vec<_>>(),
                });
                let bytes = serde_json::to_vec(&m).map_err(|e| ManifestError::Parse {
                    what: "manifest",
                    digest: "(synthesised)".into(),
                    source: e,
                })?;
                let info = self.content.write_bytes(&bytes, Expected::default())?;
                (
                    info.digest,
                    manifest::OCI_MANIFEST.to_string(),
                    manifest::OCI_CONFIG.to_string(),
                )
            }
        };
        let mut all_repo_digests = self
            .get(&ImageId(config_digest.clone()))
            .map(|r| r.repo_digests.clone())
            .unwrap_or_default();
        for rd in repo_digests {
            // One digest per repository, as docker keeps them.
            let repo = rd.split('@').next().unwrap_or(rd);
            all_repo_digests.retain(|x| x.split('@').next() != Some(repo));
            all_repo_digests.push(rd.clone());
        }
        let record = ImageRecord {
            id: ImageId(config_digest.clone()),
            manifest: manifest_digest,
            manifest_media_type,
            config_media_type,
            config_size,
            layers,
            platform: Platform {
                os: config.os().to_string(),
                architecture: config.architecture().to_string(),
                variant: config.variant().clone(),
            },
            created: config.created().clone(),
            repo_digests: all_repo_digests,
        };
        let rec = record.clone();
        self.metadata.update(|s| -> Result<(), StoreError> {
            s.images.insert(rec.id.clone(), rec.clone());
            for t in tags {
                s.tags.insert(t.clone(), rec.id.clone());
            }
            Ok(())
        })?;
        let Some(verb) = verb else {
            return Ok(record);
        };
        if tags.is_empty() {
            progress(Progress::message(
                "",
                format!("{verb} image ID: {}", record.id),
            ));
        }
        for t in tags {
            progress(Progress::message(
                "",
                format!("{verb} image: {}", t.familiar()),
            ));
        }
        Ok(record)
    }

    /// Imports a filesystem tarball (plain, gzip or zstd) as a one-layer
    /// image, as `docker import` does, optionally tagged `name`. The config
    /// names this host's platform and carries `changes` (an OCI image config
    /// `config` object, e.g. `{"Cmd": ["/bin/sh"]}`), when given.
    pub fn import_rootfs(
        &mut self,
        reader: impl Read,
        name: Option<&str>,
        changes: Option<serde_json::Value>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageRecord, StoreError> {
        let tags: Vec<Reference> = name
            .map(Reference::parse_with_default_tag)
            .transpose()?
            .into_iter()
            .collect();
        let info = self.content.ingest(reader, Expected::default(), &mut |n| {
            progress(Progress {
                id: String::new(),
                status: "Importing".into(),
                current: n,
                total: None,
            })
        })?;
        let blob_path = self.content.path(&info.digest);
        let mut head = BufReader::new(self.content.open_blob(&info.digest)?);
        let compression = detect_compression(&mut head).map_err(io_err("read", &blob_path))?;
        let (_, tar) = unpack::decompress(head).map_err(io_err("decompress", &blob_path))?;
        let (diff_id, _) = HashingReader::new(tar)
            .finish()
            .map_err(io_err("decompress", &blob_path))?;
        let chain = self.snapshots.unpack(
            None,
            &diff_id,
            self.content.open_blob(&info.digest)?,
            &mut |_| {},
        )?;
        let now = rfc3339_now();
        let host = Platform::host();
        let mut config_json = serde_json::json!({
            "architecture": host.architecture,
            "os": "linux",
            "created": now,
            "config": changes.unwrap_or_else(|| serde_json::json!({})),
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": "berth import", "comment": "Imported from tarball"}],
        });
        if let Some(v) = host.variant {
            config_json["variant"] = v.into();
        }
        let bytes = serde_json::to_vec(&config_json).map_err(|e| ManifestError::Parse {
            what: "image config",
            digest: "(imported)".into(),
            source: e,
        })?;
        let config_info = self.content.write_bytes(&bytes, Expected::default())?;
        let config = manifest::parse_config(&bytes, &config_info.digest)?;
        let unpacked_size = self.snapshots.info(&chain)?.size;
        let layers = vec![LayerRecord {
            blob: info.digest,
            media_type: compression.oci_media_type().to_string(),
            size: info.size,
            diff_id,
            chain_id: chain,
            unpacked_size,
        }];
        self.commit_image(
            &config_info.digest,
            config_info.size,
            &config,
            manifest::OCI_CONFIG,
            None,
            layers,
            &tags,
            "Imported",
            progress,
        )
    }

    /// Finds an image by full ID, tag or digest reference, or short ID prefix
    /// (Docker's order). Returns the ID and the reference if a tag matched.
    pub fn resolve(&self, name: &str) -> Result<(ImageId, Option<Reference>), StoreError> {
        let state = self.metadata.state();
        if let Ok(d) = Digest::parse(name) {
            let id = ImageId(d);
            if state.images.contains_key(&id) {
                return Ok((id, None));
            }
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(d) = r.digest() {
                if let Some(rec) = state.images.values().find(|rec| {
                    rec.manifest == *d
                        || rec
                            .repo_digests
                            .iter()
                            .any(|rd| rd.ends_with(&format!("@{d}")))
                }) {
                    return Ok((rec.id.clone(), None));
                }
            } else {
                let r = r.with_default_tag();
                if let Some(id) = state.tags.get(&r) {
                    return Ok((id.clone(), Some(r)));
                }
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let mut matches = state
                .images
                .keys()
                .filter(|id| id.0.hex().starts_with(prefix));
            if let Some(first) = matches.next() {
                if matches.next().is_some() {
                    return Err(StoreError::Ambiguous(name.to_string()));
                }
                return Ok((first.clone(), None));
            }
        }
        Err(StoreError::NotFound(name.to_string()))
    }

    /// Every image, with tags and sizes.
    pub fn list(&self) -> Vec<ImageSummary> {
        let state = self.metadata.state();
        state
            .images
            .values()
            .map(|rec| ImageSummary {
                id: rec.id.clone(),
                tags: state.tags_of(&rec.id),
                created: rec.created.clone(),
                size: self.unpacked_size(rec),
            })
            .collect()
    }

    fn unpacked_size(&self, rec: &ImageRecord) -> u64 {
        rec.layers.iter().map(|l| l.unpacked_size).sum()
    }

    /// Records that the image is known as `repo@digest` in a registry
    /// (after a push), replacing the entry for the same repository.
    pub(crate) fn add_repo_digest(
        &mut self,
        id: &ImageId,
        repo_digest: String,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.metadata.update(|s| -> Result<(), StoreError> {
            if let Some(rec) = s.images.get_mut(&id) {
                let repo = repo_digest
                    .split('@')
                    .next()
                    .unwrap_or(&repo_digest)
                    .to_string();
                rec.repo_digests
                    .retain(|x| x.split('@').next() != Some(repo.as_str()));
                rec.repo_digests.push(repo_digest);
            }
            Ok(())
        })
    }

    /// Adds tag `target` to the image `source` names (moving it if it named another).
    pub fn tag(&mut self, source: &str, target: &str) -> Result<Reference, StoreError> {
        let (id, _) = self.resolve(source)?;
        let r = Reference::parse_with_default_tag(target)?;
        if r.digest().is_some() {
            return Err(StoreError::Reference(ReferenceError::BadDigest {
                reference: target.to_string(),
                reason: "a tag cannot contain a digest".into(),
            }));
        }
        let r2 = r.clone();
        self.metadata.update(|s| -> Result<(), StoreError> {
            s.tags.insert(r2, id);
            Ok(())
        })?;
        Ok(r)
    }

    /// Removes a tag; the image stays (possibly untagged).
    pub fn untag(&mut self, name: &str) -> Result<ImageId, StoreError> {
        let r = Reference::parse_with_default_tag(name)?;
        let id = self
            .metadata
            .state()
            .tags
            .get(&r)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        self.metadata.update(|s| -> Result<(), StoreError> {
            s.tags.remove(&r);
            Ok(())
        })?;
        Ok(id)
    }

    /// Removes an image the way `docker rmi` does: a tag that is not the
    /// image's last is only untagged; the last tag or an ID deletes the image,
    /// refused while `in_use` says a container uses it (or, by ID, while
    /// several tags name it) unless `force`. Unreferenced blobs and snapshots
    /// are collected afterwards.
    pub fn remove(
        &mut self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&ImageId) -> bool,
    ) -> Result<Vec<RemoveOutcome>, StoreError> {
        let (id, by_ref) = self.resolve(name)?;
        let tags = self.metadata.state().tags_of(&id);
        let used = in_use(&id);
        let mut out = Vec::new();
        if let Some(r) = by_ref {
            if tags.len() > 1 {
                self.untag(&r.to_string())?;
                return Ok(vec![RemoveOutcome::Untagged(r)]);
            }
            if used && !force {
                return Err(StoreError::InUse {
                    name: name.to_string(),
                    id,
                });
            }
            if used {
                self.untag(&r.to_string())?;
                return Ok(vec![RemoveOutcome::Untagged(r)]);
            }
        } else {
            if tags.len() > 1 && !force {
                return Err(StoreError::MultipleTags {
                    id,
                    tags: tags
                        .iter()
                        .map(Reference::familiar)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            if used && !force {
                return Err(StoreError::InUse {
                    name: name.to_string(),
                    id,
                });
            }
        }
        let id2 = id.clone();
        self.metadata.update(|s| -> Result<(), StoreError> {
            s.tags.retain(|_, v| *v != id2);
            s.images.remove(&id2);
            Ok(())
        })?;
        out.extend(tags.into_iter().map(RemoveOutcome::Untagged));
        out.push(RemoveOutcome::Deleted(id));
        self.gc()?;
        Ok(out)
    }

    /// The image's config, layers and size.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, StoreError> {
        let (id, _) = self.resolve(name)?;
        let record = self
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        let raw = self.content.read(&id.0)?;
        let config = manifest::parse_config(&raw, &id.0)?;
        let config_json = serde_json::from_slice(&raw).map_err(|source| ManifestError::Parse {
            what: "image config",
            digest: id.to_string(),
            source,
        })?;
        Ok(ImageInspect {
            tags: self.metadata.state().tags_of(&id),
            diff_ids: record.layers.iter().map(|l| l.diff_id.clone()).collect(),
            size: self.unpacked_size(&record),
            record,
            config,
            config_json,
        })
    }

    /// The config's history, newest first as `docker history` prints it.
    pub fn history(&self, name: &str) -> Result<Vec<History>, StoreError> {
        let inspect = self.inspect(name)?;
        let mut h = inspect.config.history().clone().unwrap_or_default();
        h.reverse();
        Ok(h)
    }

    /// Deletes unused images: untagged ones, or with `all` every image
    /// `in_use` does not protect; then collects garbage.
    pub fn prune(
        &mut self,
        all: bool,
        in_use: &dyn Fn(&ImageId) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let state = self.metadata.state();
        let doomed: Vec<ImageId> = state
            .images
            .keys()
            .filter(|id| !in_use(id) && (all || state.tags_of(id).is_empty()))
            .cloned()
            .collect();
        let untagged: Vec<Reference> = doomed.iter().flat_map(|id| state.tags_of(id)).collect();
        let d2 = doomed.clone();
        self.metadata.update(|s| -> Result<(), StoreError> {
            for id in &d2 {
                s.tags.retain(|_, v| v != id);
                s.images.remove(id);
            }
            Ok(())
        })?;
        let gc = self.gc()?;
        Ok(PruneReport {
            images_deleted: doomed,
            untagged,
            gc,
        })
    }

    /// Deletes blobs and snapshots no image record (and, for snapshots, no
    /// container's writable layer) refers to, and scratch debris.
    pub fn gc(&mut self) -> Result<GcReport, StoreError> {
        let state = self.metadata.state();
        let mut blobs = BTreeSet::new();
        let mut chains = BTreeSet::new();
        for rec in state.images.values() {
            blobs.insert(rec.id.0.clone());
            blobs.insert(rec.manifest.clone());
            for l in &rec.layers {
                blobs.insert(l.blob.clone());
                chains.insert(l.chain_id.clone());
            }
        }
        chains.extend(self.snapshots.chains_in_use()?);
        let mut report = GcReport::default();
        for b in self.content.list()? {
            if !blobs.contains(&b.digest) {
                self.content.delete(&b.digest)?;
                report.bytes_reclaimed += b.size;
                report.blobs_removed.push(b.digest);
            }
        }
        // Downloads kept for resuming a pull that never completed.
        report.bytes_reclaimed += self.content.remove_ingests()?;
        for s in self.snapshots.list()? {
            if !chains.contains(&s.chain_id) {
                self.snapshots.remove(&s.chain_id)?;
                report.bytes_reclaimed += s.size;
                report.snapshots_removed.push(s.chain_id);
            }
        }
        Ok(report)
    }

    /// Per-image disk usage with shared and unique sizes.
    pub fn disk_usage(&self) -> Result<Vec<ImageUsage>, StoreError> {
        let state = self.metadata.state();
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        for rec in state.images.values() {
            for l in &rec.layers {
                *users.entry(&l.chain_id).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for rec in state.images.values() {
            let mut size = 0;
            let mut shared = 0;
            for l in &rec.layers {
                let s = l.unpacked_size;
                size += s;
                if users.get(&l.chain_id).copied().unwrap_or(0) > 1 {
                    shared += s;
                }
            }
            let content_size = rec.layers.iter().map(|l| l.size).sum::<u64>()
                + rec.config_size
                + self.content.size(&rec.manifest).unwrap_or(0);
            out.push(ImageUsage {
                id: rec.id.clone(),
                tags: state.tags_of(&rec.id),
                size,
                shared_size: shared,
                unique_size: size - shared,
                content_size,
            });
        }
        Ok(out)
    }

    fn save_items(&self, names: &[&str]) -> Result<Vec<(ImageId, Vec<Reference>)>, StoreError> {
        let mut items: Vec<(ImageId, Vec<Reference>)> = Vec::new();
        for n in names {
            let (id, r) = self.resolve(n)?;
            // A tag saves the image under that name (`busybox` means
            // `busybox:latest`); an ID or digest saves it without names.
            let refs: Vec<Reference> = match r {
                Some(r) => vec![r],
                None => Vec::new(),
            };
            match items.iter_mut().find(|(i, _)| *i == id) {
                Some((_, v)) => v.extend(refs),
                None => items.push((id, refs)),
            }
        }
        Ok(items)
    }

    fn write(
        &self,
        names: &[&str],
        sink: &mut dyn archive::LayoutSink,
        docker_files: bool,
        existing_index: &[serde_json::Value],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), StoreError> {
        let items = self.save_items(names)?;
        let mut save = Vec::new();
        for (id, refs) in &items {
            let record = self
                .get(id)
                .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            save.push(SaveItem {
                record,
                names: refs.clone(),
            });
        }
        let content = &self.content;
        let open = |d: &Digest| -> io::Result<(Box<dyn Read>, u64)> {
            let f = content.open_blob(d).map_err(io::Error::other)?;
            let len = f.metadata()?.len();
            Ok((Box::new(f), len))
        };
        archive::write_layout(
            sink,
            &save,
            &open,
            docker_files,
            existing_index,
            &mut |d, cur, total| {
                progress(Progress {
                    id: d.short().to_string(),
                    status: "Saving".into(),
                    current: cur,
                    total: Some(total),
                })
            },
        )
        .map_err(StoreError::Save)
    }

    /// Writes the named images (tags, digests or IDs) to `writer` as a
    /// tarball that is both a docker-archive and an OCI layout.
    pub fn save<W: Write>(
        &self,
        names: &[&str],
        writer: W,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<W, StoreError> {
        let mut sink = TarSink::new(writer);
        self.write(names, &mut sink, true, &[], progress)?;
        sink.finish().map_err(StoreError::Save)
    }

    /// Writes the named images into an OCI layout directory (created if
    /// needed). Images already in the layout stay, unless a saved image
    /// takes their name.
    pub fn save_oci_dir(
        &self,
        names: &[&str],
        dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), StoreError> {
        let index_path = dir.join("index.json");
        let existing: Vec<serde_json::Value> = match fs::read(&index_path) {
            Ok(data) => serde_json::from_slice::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
                .ok_or_else(|| {
                    StoreError::Archive(ArchiveError::BadJson {
                        archive: dir.display().to_string(),
                        name: "index.json".into(),
                        reason: "not an OCI index with a manifests list".into(),
                    })
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("read", &index_path)(e)),
        };
        let mut sink = DirSink::new(dir).map_err(io_err("create directory", dir))?;
        self.write(names, &mut sink, false, &existing, progress)?;
        sink.finish()
            .map_err(io_err("sync and name the files of", dir))
    }

    /// Writes an image's merged filesystem as one tar (its layers flattened
    /// with overlay's rules; no mount is made).
    pub fn export_image(&self, name: &str, writer: impl Write) -> Result<ExportStats, StoreError> {
        let (id, _) = self.resolve(name)?;
        let rec = self
            .get(&id)
            .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        let layers: Vec<PathBuf> = rec
            .layers
            .iter()
            .rev()
            .map(|l| self.snapshots.fs_path(&l.chain_id))
            .collect();
        Ok(export::write_flattened(&layers, writer)?)
    }

    /// Writes a container's filesystem (`docker export`) as one tar, read
    /// from its layers without mounting.
    pub fn export_container(
        &self,
        container_id: &str,
        writer: impl Write,
    ) -> Result<ExportStats, StoreError> {
        let layers = self.snapshots.container_layers(container_id)?;
        Ok(export::write_flattened(&layers, writer)?)
    }

    /// Writes a container's changes as a layer tar (whiteouts included), the
    /// layer `docker commit` and the builder add to an image.
    pub fn container_diff(
        &self,
        container_id: &str,
        writer: impl Write,
    ) -> Result<ExportStats, StoreError> {
        let upper = self.snapshots.container_upper(container_id)?;
        Ok(export::write_layer_diff(&upper, writer)?)
    }

    /// Removes a container's writable layer (absent is fine).
    pub fn remove_container(&self, container_id: &str) -> Result<(), StoreError> {
        Ok(self.snapshots.remove_container(container_id)?)
    }

    /// Creates a container's writable layer over an image and describes its
    /// rootfs mount (the snapshotter never mounts).
    pub fn prepare_container(
        &self,
        image: &ImageId,
        container_id: &str,
    ) -> Result<MountSpec, StoreError> {
        let rec = self
            .get(image)
            .ok_or_else(|| StoreError::NotFound(image.to_string()))?;
        Ok(self
            .snapshots
            .prepare_container(rec.chain_id(), container_id)?)
    }
}

/// Passes a stream through while copying it into a blob writer and
/// reporting the bytes read.
/// A layer staged for an image being pulled or loaded: its record, and its
/// snapshot staged (to be named after the filesystem sync) or `None` when
/// it existed already.
pub(crate) type StagedLayer = (LayerRecord, Option<StagedSnapshot>);

/// Gives the blobs and snapshots of a pull or a load their names
/// (snapshots bottom up, so a visible snapshot's parent is always visible)
/// without waiting for the disk: a marker listing them is written durably
/// first, and a later settle (or, after a crash, the next open) deals with
/// it (the `pending` module). Where no marker can be kept (no boot ID), the
/// data is flushed before the names and the names after, as before.
pub(crate) fn publish_staged(
    content: &ContentStore,
    snapshots: &Snapshotter,
    pending: &Pending,
    blobs: Vec<VerifiedBlob>,
    unpacked: Vec<StagedLayer>,
) -> Result<Vec<LayerRecord>, StoreError> {
    let named_blobs: Vec<Digest> = blobs.iter().map(|b| b.digest().clone()).collect();
    let named_chains: Vec<Digest> = unpacked
        .iter()
        .filter_map(|(_, staged)| staged.as_ref().map(|s| s.chain_id().clone()))
        .collect();
    if named_blobs.is_empty() && named_chains.is_empty() {
        // Everything was in the store already (a pull of an image that is
        // up to date): nothing to name, nothing to flush.
        return Ok(unpacked.into_iter().map(|(record, _)| record).collect());
    }
    let marker = pending
        .record(named_blobs, named_chains)
        .map_err(io_err("write a pending-names marker in", pending.dir()))?;
    if marker.is_none() {
        flush_data(content, snapshots)?;
    }
    let named = (|| {
        for b in blobs {
            b.publish()?;
        }
        let mut records = Vec::with_capacity(unpacked.len());
        for (record, staged) in unpacked {
            if let Some(staged) = staged {
                snapshots.name_staged(staged)?;
            }
            records.push(record);
        }
        Ok::<_, StoreError>(records)
    })();
    match marker {
        // Queued even when the naming stopped part-way: a settle makes
        // whatever was named durable.
        Some(m) => pending.named(m),
        None => {
            content.sync_names()?;
            snapshots.sync_names()?;
        }
    }
    named
}

struct Tee<'a, R> {
    inner: R,
    out: &'a mut BlobWriter,
    report: &'a mut dyn FnMut(u64),
    count: u64,
}

impl<'a, R> Tee<'a, R> {
    fn new(inner: R, out: &'a mut BlobWriter, report: &'a mut dyn FnMut(u64)) -> Self {
        Tee {
            inner,
            out,
            report,
            count: 0,
        }
    }
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.count += n as u64;
        (self.report)(self.count);
        Ok(n)
    }
}

/// The current UTC time as RFC 3339 (`2026-01-02T03:04:05Z`), as image
/// configs write `created`.
fn rfc3339_now() -> String {
    rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
