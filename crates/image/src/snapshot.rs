//! Snapshots: each layer unpacked once into `<root>/snapshots/<chainid-hex>/fs`,
//! shared by every image and container whose chain contains it, plus the
//! per-container writable layer (`<root>/snapshots/active/<container-id>/`).
//!
//! A snapshot is unpacked into a temporary directory, its diff ID checked,
//! the filesystem synced (`syncfs`), and then renamed into place, so a
//! snapshot directory that exists under its chain ID is complete. Removal
//! renames first and deletes after, for the same reason.
//!
//! The snapshotter describes mounts and never performs them (the runtime
//! mounts inside the container's mount namespace). The only mount it makes is
//! one probe at open, in a throwaway directory, to learn whether overlay
//! works here (it does not on overlay-on-overlay, for instance, or without
//! CAP_SYS_ADMIN); where it does not, a copying snapshotter builds each
//! container's rootfs as a full copy with whiteouts applied, and the choice
//! with its reason is reported by [`Snapshotter::fallback_reason`].

use crate::digest::Digest;
use crate::durable;
use crate::unpack::{self, remove_tree_at, UnpackError, UnpackStats, OVERLAY_OPAQUE_XATTR};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Errors from the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation failed.
    #[error("snapshots: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Applying the layer failed; no snapshot was created.
    #[error("snapshot of layer {diff_id}: {source}")]
    Unpack {
        /// The layer's diff ID.
        diff_id: Digest,
        /// The unpack error, naming the entry.
        source: UnpackError,
    },
    /// The unpacked tar hashed to another diff ID than the image config says.
    #[error(
        "layer expected to have diff ID {expected} unpacked to {actual}; no snapshot was created"
    )]
    DiffIdMismatch {
        /// The diff ID from the image config.
        expected: Digest,
        /// The digest of the tar stream received.
        actual: Digest,
    },
    /// The snapshot is not present.
    #[error("snapshot {0} does not exist")]
    NotFound(Digest),
    /// The container ID cannot be used as a directory name.
    #[error("container id {0:?} is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    BadContainerId(String),
    /// The container has no writable layer here.
    #[error("container {0}: no writable layer exists")]
    NoContainer(String),
    /// The copying snapshotter cannot tell a container's changes apart.
    #[error("container {0}: the copying snapshotter keeps a full copy, not a separate layer of changes, so its diff is not available")]
    NoUpperDir(String),
    /// The container already has a writable layer.
    #[error("container {0}: a writable layer already exists")]
    ContainerExists(String),
    /// A snapshot's metadata file is unreadable.
    #[error("snapshot {chain}: unreadable info.json: {reason}")]
    BadInfo {
        /// The chain ID.
        chain: String,
        /// Why.
        reason: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn errno_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> SnapshotError + 'a {
    move |e| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The chain ID of each prefix of a layer stack, as the OCI image spec
/// defines it: `ChainID(L0) = DiffID(L0)`, `ChainID(L0..Ln) =
/// sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of_bytes(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The chain ID of the whole stack, or `None` for an image without layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

fn chain_of(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A layer unpacked into a temporary directory, not yet named; removed if
/// dropped uncommitted. See [`Snapshotter::stage`].
#[derive(Debug)]
pub struct StagedSnapshot {
    tmp: Option<PathBuf>,
    chain: Digest,
    parent: Option<Digest>,
    size: u64,
}

impl StagedSnapshot {
    /// The unpacked size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The chain ID it will be named by.
    pub fn chain_id(&self) -> &Digest {
        &self.chain
    }
}

impl Drop for StagedSnapshot {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_dir_all(tmp);
        }
    }
}

/// Which snapshotter this store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SnapshotterKind {
    /// Containers get an overlay mount over the shared layer directories.
    Overlay,
    /// Containers get a private full copy of their image's layers.
    Copy,
}

/// What is recorded about a snapshot next to its `fs` directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// The chain ID (the directory's name).
    pub chain_id: Digest,
    /// The chain ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// This layer's diff ID.
    pub diff_id: Digest,
    /// Bytes of regular-file content in this layer alone.
    pub size: u64,
}

/// A mount the runtime should perform for a container's rootfs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    /// Filesystem type: `overlay`, or `bind` for the copying snapshotter.
    #[serde(rename = "type")]
    pub typ: String,
    /// Mount source: `overlay`, or the directory to bind.
    pub source: String,
    /// Mount options (`lowerdir=…`, `upperdir=…`, `workdir=…`, or `rbind`).
    pub options: Vec<String>,
}

/// The snapshot store under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    kind: SnapshotterKind,
    fallback_reason: Option<String>,
}

const ACTIVE: &str = "active";
const INFO: &str = "info.json";

fn valid_container_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Snapshotter {
    /// Opens the snapshot store, removes debris of interrupted unpacks and
    /// removals, and probes once whether overlay can be mounted here.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let mut s = Self::open_with(root, SnapshotterKind::Overlay)?;
        if let Err(reason) = s.probe_overlay() {
            tracing::warn!(%reason, "overlay cannot be used here; using the copying snapshotter");
            s.kind = SnapshotterKind::Copy;
            s.fallback_reason = Some(reason);
        } else {
            tracing::info!("overlay snapshotter selected");
        }
        Ok(s)
    }

    /// Opens the store with a given snapshotter kind, without probing.
    pub fn open_with(root: &Path, kind: SnapshotterKind) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        fs::create_dir_all(dir.join(ACTIVE)).map_err(io_err("create directory", &dir))?;
        // A process killed during the overlay probe leaves it mounted; only
        // berth's own probe directories are unmounted here.
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name
                    .to_string_lossy()
                    .starts_with(&format!("{}overlay-probe-", durable::TEMP_PREFIX))
                {
                    let _ = rustix::mount::unmount(
                        e.path().join("merged"),
                        rustix::mount::UnmountFlags::DETACH,
                    );
                }
            }
        }
        durable::remove_debris(&dir).map_err(io_err("remove temporary directories in", &dir))?;
        let active = dir.join(ACTIVE);
        durable::remove_debris(&active)
            .map_err(io_err("remove temporary directories in", &active))?;
        Ok(Snapshotter {
            dir,
            kind,
            fallback_reason: None,
        })
    }

    /// The snapshotter in use.
    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// Why overlay was not chosen, when the copying snapshotter is in use
    /// because the probe failed.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    fn probe_overlay(&self) -> Result<(), String> {
        let probe = durable::temp_path(&self.dir, "overlay-probe");
        let result = (|| {
            for d in ["lower", "upper", "work", "merged"] {
                fs::create_dir_all(probe.join(d))
                    .map_err(|e| format!("creating probe directory: {e}"))?;
            }
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                probe.join("lower").display(),
                probe.join("upper").display(),
                probe.join("work").display()
            );
            let merged = probe.join("merged");
            let data =
                std::ffi::CString::new(data).map_err(|e| format!("probe mount options: {e}"))?;
            rustix::mount::mount(
                "overlay",
                &merged,
                "overlay",
                rustix::mount::MountFlags::empty(),
                Some(data.as_c_str()),
            )
            .map_err(|e| format!("probe mount of overlay on {} failed: {e}", merged.display()))?;
            rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH)
                .map_err(|e| format!("unmounting the overlay probe {}: {e}", merged.display()))
        })();
        let _ = fs::remove_dir_all(&probe);
        result
    }

    /// The directory holding the snapshots.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// The directory of a snapshot (holding `fs/` and `info.json`).
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    /// The unpacked layer tree of a snapshot.
    pub fn fs_path(&self, chain: &Digest) -> PathBuf {
        self.snapshot_dir(chain).join("fs")
    }

    /// Whether a snapshot exists.
    pub fn exists(&self, chain: &Digest) -> bool {
        self.snapshot_dir(chain).join(INFO).is_file()
    }

    /// Reads a snapshot's record.
    pub fn info(&self, chain: &Digest) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.snapshot_dir(chain).join(INFO);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound(chain.clone()))
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|e| SnapshotError::BadInfo {
            chain: chain.to_string(),
            reason: e.to_string(),
        })
    }

    /// Unpacks a layer on top of `parent` unless its snapshot exists already
    /// (then `blob` is not read). Returns the chain ID. `progress` receives
    /// the compressed bytes consumed.
    pub fn unpack(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Digest, SnapshotError> {
        match self.stage(parent, diff_id, blob, progress)? {
            Some(staged) => self.commit_staged(staged),
            None => Ok(chain_of(parent, diff_id)),
        }
    }

    /// Unpacks a layer into a temporary directory, verified and durable,
    /// without giving it its name: `None` if the snapshot exists already.
    /// Unpacking reads nothing of the parent's tree (whiteouts are stored
    /// as overlay expects them, inside the layer), so layers of one image
    /// can be staged in parallel; [`Snapshotter::commit_staged`] then names
    /// them bottom up, so a visible snapshot's parent is always visible.
    pub fn stage(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Option<StagedSnapshot>, SnapshotError> {
        self.stage_with(parent, diff_id, blob, progress, true)
    }

    /// [`Snapshotter::stage`] without any sync: for a caller that stages
    /// many layers, syncs the filesystem once
    /// ([`Snapshotter::sync_filesystem`]) and only then names them
    /// ([`Snapshotter::name_staged`], then [`Snapshotter::sync_names`]).
    pub fn stage_unsynced(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Option<StagedSnapshot>, SnapshotError> {
        self.stage_with(parent, diff_id, blob, progress, false)
    }

    fn stage_with(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read,
        progress: &mut dyn FnMut(u64),
        sync: bool,
    ) -> Result<Option<StagedSnapshot>, SnapshotError> {
        let chain = chain_of(parent, diff_id);
        if self.exists(&chain) {
            return Ok(None);
        }
        let tmp = durable::temp_path(&self.dir, "unpack");
        let mut staged = StagedSnapshot {
            tmp: Some(tmp.clone()),
            chain: chain.clone(),
            parent: parent.cloned(),
            size: 0,
        };
        let fs_dir = tmp.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err("create directory", &fs_dir))?;
        // A staged snapshot is flushed by a later settle, off the pull's path.
        let writeback = if sync {
            unpack::Writeback::Early
        } else {
            unpack::Writeback::Lazy
        };
        let stats: UnpackStats = unpack::apply_layer_with(blob, &fs_dir, progress, writeback)
            .map_err(|source| SnapshotError::Unpack {
                diff_id: diff_id.clone(),
                source,
            })?;
        if stats.diff_id != *diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                expected: diff_id.clone(),
                actual: stats.diff_id,
            });
        }
        let info = SnapshotInfo {
            chain_id: chain.clone(),
            parent: parent.cloned(),
            diff_id: diff_id.clone(),
            size: stats.size,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| SnapshotError::BadInfo {
            chain: chain.to_string(),
            reason: e.to_string(),
        })?;
        staged.size = stats.size;
        if !sync {
            // The whole directory gets its name only after the caller's
            // syncfs, so a plain write is as safe as an atomic one here.
            let info_path = tmp.join(INFO);
            fs::write(&info_path, &json).map_err(io_err("write", &info_path))?;
            return Ok(Some(staged));
        }
        durable::write_atomic(&tmp.join(INFO), &json).map_err(io_err("write", &tmp))?;
        // Everything unpacked must be on disk before the name appears.
        let fd = rfs::open(
            &tmp,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err("open", &tmp))?;
        rfs::syncfs(&fd).map_err(errno_err("syncfs", &tmp))?;
        Ok(Some(staged))
    }

    /// Gives a staged snapshot its name (its parent must be named already).
    pub fn commit_staged(&self, staged: StagedSnapshot) -> Result<Digest, SnapshotError> {
        let chain = self.name_staged(staged)?;
        self.sync_names()?;
        Ok(chain)
    }

    /// Flushes everything written to the snapshots' filesystem (`syncfs`).
    pub fn sync_filesystem(&self) -> Result<(), SnapshotError> {
        durable::syncfs(&self.dir).map_err(io_err("syncfs", &self.dir))
    }

    /// Makes the names given by [`Snapshotter::name_staged`] durable.
    pub fn sync_names(&self) -> Result<(), SnapshotError> {
        durable::sync_dir(&self.dir).map_err(io_err("fsync", &self.dir))
    }

    /// Gives a staged snapshot its name (its parent must be named already)
    /// without syncing the name; see [`Snapshotter::sync_names`].
    pub fn name_staged(&self, mut staged: StagedSnapshot) -> Result<Digest, SnapshotError> {
        if let Some(p) = &staged.parent {
            if !self.exists(p) {
                return Err(SnapshotError::NotFound(p.clone()));
            }
        }
        let Some(tmp) = staged.tmp.take() else {
            return Ok(staged.chain.clone());
        };
        let dest = self.snapshot_dir(&staged.chain);
        match fs::rename(&tmp, &dest) {
            Ok(()) => {}
            // Another unpack of the same chain won the race; keep theirs.
            Err(e)
                if e.raw_os_error() == Some(Errno::NOTEMPTY.raw_os_error())
                    || e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) =>
            {
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err("rename into place", &dest)(e));
            }
        }
        Ok(staged.chain.clone())
    }

    /// Every snapshot present.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(chain) = Digest::from_hex(&name) else {
                continue;
            };
            match self.info(&chain) {
                Ok(info) => out.push(info),
                Err(SnapshotError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Removes a snapshot: renamed away first, so no half-deleted snapshot
    /// keeps its name after a crash.
    pub fn remove(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let dir = self.snapshot_dir(chain);
        if !dir.exists() {
            return Ok(());
        }
        let doomed = durable::temp_path(&self.dir, "remove");
        fs::rename(&dir, &doomed).map_err(io_err("rename for removal", &dir))?;
        durable::sync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// The chain from the bottom layer up to `top`, following parents.
    pub fn lineage(&self, top: &Digest) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = vec![top.clone()];
        let mut cur = self.info(top)?;
        while let Some(p) = cur.parent.clone() {
            cur = self.info(&p)?;
            out.push(p);
        }
        out.reverse();
        Ok(out)
    }

    fn active_dir(&self, container_id: &str) -> Result<PathBuf, SnapshotError> {
        if !valid_container_id(container_id) {
            return Err(SnapshotError::BadContainerId(container_id.to_string()));
        }
        Ok(self.dir.join(ACTIVE).join(container_id))
    }

    /// Creates a container's writable layer over the snapshot `top` (None for
    /// an image without layers) and describes the mount of its rootfs. With
    /// overlay, it creates `upper/` and `work/`; with the copying
    /// snapshotter, a full copy in `rootfs/`. It never mounts.
    pub fn prepare_container(
        &self,
        top: Option<&Digest>,
        container_id: &str,
    ) -> Result<MountSpec, SnapshotError> {
        let dir = self.active_dir(container_id)?;
        let lineage = match top {
            Some(t) => self.lineage(t)?,
            None => Vec::new(),
        };
        let tmp = durable::temp_path(&self.dir.join(ACTIVE), "prepare");
        let result = (|| {
            fs::create_dir_all(&tmp).map_err(io_err("create directory", &tmp))?;
            let chain_file = serde_json::to_vec(&lineage).map_err(|e| SnapshotError::BadInfo {
                chain: container_id.to_string(),
                reason: e.to_string(),
            })?;
            fs::write(tmp.join("chain.json"), chain_file).map_err(io_err("write", &tmp))?;
            match self.kind {
                SnapshotterKind::Overlay => {
                    for d in ["upper", "work"] {
                        fs::create_dir(tmp.join(d)).map_err(io_err("create directory", &tmp))?;
                    }
                    if lineage.is_empty() {
                        fs::create_dir(tmp.join("empty"))
                            .map_err(io_err("create directory", &tmp))?;
                    }
                }
                SnapshotterKind::Copy => {
                    let rootfs = tmp.join("rootfs");
                    fs::create_dir(&rootfs).map_err(io_err("create directory", &rootfs))?;
                    for chain in &lineage {
                        let src = self.fs_path(chain);
                        copy_layer(&src, &rootfs).map_err(|e| SnapshotError::Io {
                            op: "copy layer into container rootfs",
                            path: src.clone(),
                            source: e.into(),
                        })?;
                    }
                }
            }
            match fs::rename(&tmp, &dir) {
                Ok(()) => Ok(()),
                Err(e) if dir.exists() => {
                    let _ = e;
                    Err(SnapshotError::ContainerExists(container_id.to_string()))
                }
                Err(e) => Err(io_err("rename into place", &dir)(e)),
            }
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(self.mount_spec(&dir, &lineage))
    }

    fn mount_spec(&self, dir: &Path, lineage: &[Digest]) -> MountSpec {
        match self.kind {
            SnapshotterKind::Overlay => {
                let lower: Vec<String> = if lineage.is_empty() {
                    vec![dir.join("empty").display().to_string()]
                } else {
                    // overlay lists the topmost lower directory first.
                    lineage
                        .iter()
                        .rev()
                        .map(|c| self.fs_path(c).display().to_string())
                        .collect()
                };
                MountSpec {
                    typ: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![
                        format!("lowerdir={}", lower.join(":")),
                        format!("upperdir={}", dir.join("upper").display()),
                        format!("workdir={}", dir.join("work").display()),
                    ],
                }
            }
            SnapshotterKind::Copy => MountSpec {
                typ: "bind".into(),
                source: dir.join("rootfs").display().to_string(),
                options: vec!["rbind".into()],
            },
        }
    }

    /// Removes a container's writable layer (absent is fine).
    pub fn remove_container(&self, container_id: &str) -> Result<(), SnapshotError> {
        let dir = self.active_dir(container_id)?;
        if !dir.exists() {
            return Ok(());
        }
        let doomed = durable::temp_path(&self.dir.join(ACTIVE), "remove");
        fs::rename(&dir, &doomed).map_err(io_err("rename for removal", &dir))?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// The directories that make a container's rootfs, top first: with
    /// overlay its upper directory then its image's layers; with the
    /// copying snapshotter its one full copy.
    pub fn container_layers(&self, container_id: &str) -> Result<Vec<PathBuf>, SnapshotError> {
        let dir = self.active_dir(container_id)?;
        let chain_file = dir.join("chain.json");
        let data = match fs::read(&chain_file) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NoContainer(container_id.to_string()))
            }
            Err(e) => return Err(io_err("read", &chain_file)(e)),
        };
        if dir.join("rootfs").is_dir() {
            return Ok(vec![dir.join("rootfs")]);
        }
        let lineage: Vec<Digest> =
            serde_json::from_slice(&data).map_err(|e| SnapshotError::BadInfo {
                chain: chain_file.display().to_string(),
                reason: e.to_string(),
            })?;
        let mut out = vec![dir.join("upper")];
        out.extend(lineage.iter().rev().map(|c| self.fs_path(c)));
        Ok(out)
    }

    /// A container's overlay upper directory (its changes alone). The
    /// copying snapshotter keeps no such directory, so this is refused there.
    pub fn container_upper(&self, container_id: &str) -> Result<PathBuf, SnapshotError> {
        let layers = self.container_layers(container_id)?;
        let dir = self.active_dir(container_id)?;
        if layers.first() == Some(&dir.join("rootfs")) {
            return Err(SnapshotError::NoUpperDir(container_id.to_string()));
        }
        Ok(dir.join("upper"))
    }

    /// The snapshot chains that containers' writable layers stand on; GC keeps them.
    pub fn chains_in_use(&self) -> Result<Vec<Digest>, SnapshotError> {
        let active = self.dir.join(ACTIVE);
        let mut out = Vec::new();
        for entry in fs::read_dir(&active).map_err(io_err("list", &active))? {
            let entry = entry.map_err(io_err("list", &active))?;
            let path = entry.path().join("chain.json");
            let Ok(data) = fs::read(&path) else { continue };
            let chain: Vec<Digest> =
                serde_json::from_slice(&data).map_err(|e| SnapshotError::BadInfo {
                    chain: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            out.extend(chain);
        }
        Ok(out)
    }
}

/// Applies one unpacked layer tree onto a container rootfs the way overlay
/// would show it: whiteout devices delete, opaque directories hide what is
/// below. Every step works on directory fds and single names opened with
/// O_NOFOLLOW, so a symlink from a lower layer never redirects a write.
fn copy_layer(src: &Path, dst: &Path) -> Result<(), Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let s = rfs::open(src, flags, Mode::empty())?;
    let d = rfs::open(dst, flags, Mode::empty())?;
    let mut links = HashMap::new();
    copy_dir(s.as_fd(), d.as_fd(), &mut links)
}

type LinkMap = HashMap<(u64, u64), (OwnedFd, Vec<u8>)>;

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, links: &mut LinkMap) -> Result<(), Errno> {
    let mut dir = rfs::Dir::read_from(src)?;
    let mut dirs = Vec::new();
    while let Some(ent) = dir.read() {
        let ent = ent?;
        let name = ent.file_name().to_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        let n = OsStr::from_bytes(&name);
        let st = rfs::statat(src, n, AtFlags::SYMLINK_NOFOLLOW)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let existing = rfs::statat(dst, n, AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing
            .as_ref()
            .is_some_and(|e| FileType::from_raw_mode(e.st_mode) == FileType::Directory);
        let remove_existing = |dst: BorrowedFd<'_>| -> Result<(), Errno> {
            match &existing {
                None => Ok(()),
                Some(_) if existing_dir => remove_tree_at(dst, n),
                Some(_) => rfs::unlinkat(dst, n, AtFlags::empty()),
            }
        };
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            // A whiteout: what is below disappears.
            remove_existing(dst)?;
            continue;
        }
        let perm = Mode::from_raw_mode(st.st_mode & 0o7777);
        let owner = (
            Some(rfs::Uid::from_raw(st.st_uid)),
            Some(rfs::Gid::from_raw(st.st_gid)),
        );
        let times = rfs::Timestamps {
            last_access: rfs::Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: rfs::Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        match ft {
            FileType::Directory => {
                let sfd = rfs::openat(
                    src,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let opaque = rfs::fgetxattr(&sfd, OVERLAY_OPAQUE_XATTR, &mut [0u8; 4][..])
                    .is_ok_and(|n| n == 1);
                if existing.is_some() && (!existing_dir || opaque) {
                    remove_existing(dst)?;
                }
                if !existing_dir || opaque {
                    rfs::mkdirat(dst, n, Mode::from_raw_mode(0o700))?;
                }
                let dfd = rfs::openat(
                    dst,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                rfs::fchown(&dfd, owner.0, owner.1)?;
                rfs::fchmod(&dfd, perm)?;
                copy_xattrs(&sfd, &dfd)?;
                copy_dir(sfd.as_fd(), dfd.as_fd(), links)?;
                dirs.push((dfd, times));
            }
            FileType::RegularFile => {
                remove_existing(dst)?;
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some((first_dir, first_name)) = links.get(&key) {
                        rfs::linkat(
                            first_dir,
                            OsStr::from_bytes(first_name),
                            dst,
                            n,
                            AtFlags::empty(),
                        )?;
                        continue;
                    }
                }
                let sfd = rfs::openat(
                    src,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let dfd = rfs::openat(
                    dst,
                    n,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut sf = fs::File::from(sfd);
                let mut df = fs::File::from(dfd);
                io::copy(&mut sf, &mut df)
                    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
                rfs::fchown(&df, owner.0, owner.1)?;
                rfs::fchmod(&df, perm)?;
                copy_xattrs(&sf, &df)?;
                rfs::futimens(&df, &times)?;
                if st.st_nlink > 1 {
                    links.insert(key, (rustix::io::dup(dst)?, name.clone()));
                }
            }
            FileType::Symlink => {
                remove_existing(dst)?;
                let target = rfs::readlinkat(src, n, Vec::new())?;
                rfs::symlinkat(target.as_c_str(), dst, n)?;
                rfs::chownat(dst, n, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
                rfs::utimensat(dst, n, &times, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            other => {
                remove_existing(dst)?;
                rfs::mknodat(dst, n, other, perm, st.st_rdev)?;
                rfs::chownat(dst, n, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
                rfs::chmodat(dst, n, perm, AtFlags::empty())?;
                rfs::utimensat(dst, n, &times, AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
    }
    for (fd, times) in dirs {
        rfs::futimens(&fd, &times)?;
    }
    Ok(())
}

/// Copies xattrs between open files, except overlay's own (the copy is
/// not an overlay layer).
fn copy_xattrs(src: &impl AsFd, dst: &impl AsFd) -> Result<(), Errno> {
    let mut names = vec![0u8; 64 * 1024];
    let len = match rfs::flistxattr(src, &mut names[..]) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let n = OsStr::from_bytes(name);
        let vlen = rfs::fgetxattr(src, n, &mut value[..])?;
        rfs::fsetxattr(dst, n, &value[..vlen], XattrFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let c = Digest::of_bytes(b"c");
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        let ab = Digest::of_bytes(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], ab);
        assert_eq!(ids[2], Digest::of_bytes(format!("{ab} {c}").as_bytes()));
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a));
    }

    #[test]
    fn container_ids_are_checked() {
        assert!(valid_container_id("abc-1.2_x"));
        assert!(!valid_container_id("../x"));
        assert!(!valid_container_id(".hidden"));
        assert!(!valid_container_id(""));
    }
}
