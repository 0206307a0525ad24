//! Image records and tags, kept crash-safe.
//!
//! Choice: one JSON document (`<root>/metadata/images.json`) holding every
//! image record and every tag, replaced atomically on each change (write to
//! a temporary file in the same directory, fsync it, rename it over the old
//! one, fsync the directory), rather than redb. Why:
//! - a change that touches an image and its tags together (load, remove,
//!   retag) is one rename, so it is a transaction without a transaction
//!   engine; after a kill -9 the file is the old state or the new one;
//! - the data is small (a few KB per image, rarely changed: on load, pull,
//!   tag, remove), so rewriting it whole costs microseconds next to the
//!   layer I/O that precedes every change;
//! - it is readable with `jq` when someone debugs a store, and needs no
//!   dependency or file-format migration policy of its own.
//!
//! Records are only written after every blob and snapshot they name is
//! durable, so a visible image is always a complete one.
//!
//! Exclusive access between processes is the [`crate::store::Store`]'s job
//! (it holds a lock file); this module assumes one writer.

use crate::digest::Digest;
use crate::durable;
use crate::manifest::Platform;
use crate::reference::Reference;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Errors from the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Reading or writing the metadata file failed.
    #[error("image metadata: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The metadata file does not parse (it is only ever replaced whole, so
    /// this means outside interference, not a crash).
    #[error("image metadata {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
}

/// An image's ID: the digest of its config blob, as Docker defines it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ImageId(pub Digest);

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ImageId {
    /// The first 12 hex characters, as `docker images` shows.
    pub fn short(&self) -> &str {
        self.0.short()
    }
}

/// One layer of an image as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as stored (compressed or not).
    pub blob: Digest,
    /// Media type of the blob.
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Chain ID of the stack up to this layer (the snapshot's name).
    pub chain_id: Digest,
    /// Bytes of regular-file content in this layer unpacked, recorded at
    /// load so sizes and disk usage need no walk of the disk.
    #[serde(default)]
    pub unpacked_size: u64,
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image ID (config digest).
    pub id: ImageId,
    /// Digest of the manifest blob stored for it.
    pub manifest: Digest,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// Media type of the config blob.
    pub config_media_type: String,
    /// Size of the config blob.
    pub config_size: u64,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The platform the config declares.
    pub platform: Platform,
    /// The config's `created` timestamp, if any.
    pub created: Option<String>,
    /// `repo@digest` references this image is known by in registries.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    /// The chain ID of the whole layer stack (None without layers).
    pub fn chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

/// The whole metadata state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Format version of this document.
    pub version: u32,
    /// Images by ID.
    pub images: BTreeMap<ImageId, ImageRecord>,
    /// Tags (`domain/path:tag`) to image IDs.
    pub tags: BTreeMap<Reference, ImageId>,
}

impl State {
    /// Tags pointing at an image.
    pub fn tags_of(&self, id: &ImageId) -> Vec<Reference> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The metadata file and an in-memory copy of its state.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    state: State,
}

const VERSION: u32 = 1;

impl MetadataStore {
    /// Opens (creating if needed) `<root>/metadata/images.json`.
    pub fn open(root: &Path) -> Result<Self, MetadataError> {
        let dir = root.join("metadata");
        fs::create_dir_all(&dir).map_err(|source| MetadataError::Io {
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        durable::remove_debris(&dir).map_err(|source| MetadataError::Io {
            op: "remove temporary files in",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join("images.json");
        let state = match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| MetadataError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State {
                version: VERSION,
                ..State::default()
            },
            Err(source) => {
                return Err(MetadataError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        Ok(MetadataStore { path, state })
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies `change` to a copy of the state and makes it durable; the
    /// in-memory state changes only if the write succeeded. An error from
    /// `change` leaves everything as it was.
    pub fn update<T, E: From<MetadataError>>(
        &mut self,
        change: impl FnOnce(&mut State) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut next = self.state.clone();
        let out = change(&mut next)?;
        next.version = VERSION;
        let data = serde_json::to_vec_pretty(&next).map_err(|e| MetadataError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        durable::write_atomic(&self.path, &data).map_err(|source| MetadataError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })?;
        self.state = next;
        Ok(out)
    }
}
