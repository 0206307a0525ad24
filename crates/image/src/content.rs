//! The content store: immutable blobs addressed by digest, under
//! `<root>/content/blobs/sha256/<hex>`.
//!
//! A blob is written to a temporary file in the same directory, fsynced,
//! verified against the expected digest and size, and only then renamed into
//! place; so a blob that exists under a digest always has that digest, and a
//! mismatch (or a crash) leaves no blob and, once the store reopens, no
//! temporary file either.
//!
//! A caller writing many blobs at once (a pull) can instead verify each
//! ([`BlobWriter::verify`]), sync the filesystem once
//! ([`ContentStore::sync_filesystem`]), and only then name them
//! ([`VerifiedBlob::publish`], then [`ContentStore::sync_names`]): the same
//! rule (no name before the data is durable) for one flush instead of two
//! per blob.

use crate::digest::{Digest, Hasher};
use crate::durable;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Errors from the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A filesystem operation on the store failed.
    #[error("content store: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading the incoming data failed.
    #[error("content store: reading blob data for {what}: {source}")]
    Read {
        /// The expected digest, or "blob of unknown digest".
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The data hashed to another digest than expected; nothing was stored.
    #[error(
        "content store: blob expected to be {expected} hashed to {actual}; nothing was stored"
    )]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of the data received.
        actual: Digest,
    },
    /// The data had another length than expected; nothing was stored.
    #[error("content store: blob {what} expected to be {expected} bytes but {actual} bytes arrived; nothing was stored")]
    SizeMismatch {
        /// The expected digest, or "of unknown digest".
        what: String,
        /// The expected size.
        expected: u64,
        /// At least this many bytes arrived.
        actual: u64,
    },
    /// The blob is not in the store.
    #[error("content store: blob {0} is not present")]
    NotFound(Digest),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What the caller knows of a blob before it arrives.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The digest the data must hash to, when known.
    pub digest: Option<Digest>,
    /// The exact length, when known.
    pub size: Option<u64>,
}

/// A blob written or found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its digest.
    pub digest: Digest,
    /// Its length in bytes.
    pub size: u64,
}

/// A blob being written; see [`ContentStore::writer`].
#[derive(Debug)]
pub struct BlobWriter {
    store: ContentStore,
    file: File,
    tmp: Option<PathBuf>,
    hasher: Hasher,
    expected: Expected,
    what: String,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Opens the bytes written so far for reading while writing goes on,
    /// so a layer can be unpacked while it downloads. The reader sees
    /// unverified data: whatever it produces must be discarded if
    /// [`BlobWriter::commit`] fails.
    pub fn reopen(&self) -> Result<File, ContentError> {
        let tmp = self.tmp_path();
        File::open(&tmp).map_err(io_err("reopen", &tmp))
    }

    fn tmp_path(&self) -> PathBuf {
        self.tmp.clone().unwrap_or_default()
    }

    fn push(&mut self, data: &[u8]) -> Result<(), ContentError> {
        self.hasher.update(data);
        if let Some(size) = self.expected.size {
            if self.hasher.len() > size {
                return Err(ContentError::SizeMismatch {
                    what: self.what.clone(),
                    expected: size,
                    actual: self.hasher.len(),
                });
            }
        }
        let tmp = self.tmp_path();
        self.file.write_all(data).map_err(io_err("write", &tmp))
    }

    /// Verifies size and digest, syncs, and gives the blob its name.
    pub fn commit(self) -> Result<BlobInfo, ContentError> {
        let tmp = self.tmp_path();
        self.file.sync_all().map_err(io_err("fsync", &tmp))?;
        let store = self.store.clone();
        let info = self.verify()?.publish()?;
        store.sync_names()?;
        Ok(info)
    }

    /// Verifies size and digest without syncing or naming: the blob stays
    /// under its temporary name (removed if the [`VerifiedBlob`] is dropped)
    /// until [`VerifiedBlob::publish`]. A pull verifies every blob this way,
    /// syncs the filesystem once, and only then publishes them, so no name
    /// ever refers to data that a power loss could take back.
    pub fn verify(mut self) -> Result<VerifiedBlob, ContentError> {
        let size = self.hasher.len();
        if let Some(expected_size) = self.expected.size {
            if size != expected_size {
                return Err(ContentError::SizeMismatch {
                    what: self.what.clone(),
                    expected: expected_size,
                    actual: size,
                });
            }
        }
        let digest = std::mem::take(&mut self.hasher).finish();
        if let Some(exp) = &self.expected.digest {
            if *exp != digest {
                return Err(ContentError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                });
            }
        }
        Ok(VerifiedBlob {
            store: self.store.clone(),
            tmp: self.tmp.take(),
            digest,
            size,
        })
    }
}

/// A blob whose digest and size are verified, still under its temporary
/// name; see [`BlobWriter::verify`]. Dropped unpublished, it is removed.
#[derive(Debug)]
pub struct VerifiedBlob {
    store: ContentStore,
    tmp: Option<PathBuf>,
    digest: Digest,
    size: u64,
}

impl VerifiedBlob {
    /// Where its bytes are until published (readable).
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(Path::new(""))
    }

    /// Its digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Starts writing its data to disk without waiting, so that the
    /// `syncfs` that must precede [`VerifiedBlob::publish`] finds little
    /// left to write. Only an optimisation: nothing is durable until then.
    pub fn start_writeback(&self) {
        if let Ok(f) = File::open(self.path()) {
            durable::start_writeback(&f);
        }
    }

    /// Gives the blob its name, without any sync: the caller must have made
    /// its data durable ([`ContentStore::sync_filesystem`]) before, and
    /// syncs the name ([`ContentStore::sync_names`]) before anything that
    /// must survive a crash refers to it.
    pub fn publish(mut self) -> Result<BlobInfo, ContentError> {
        let dest = self.store.path(&self.digest);
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = fs::rename(&tmp, &dest) {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("rename into place", &dest)(e));
            }
        }
        Ok(BlobInfo {
            digest: self.digest.clone(),
            size: self.size,
        })
    }
}

impl Drop for VerifiedBlob {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The blob store rooted at `<root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the content store under `root` and removes
    /// temporary files left by interrupted writes.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        let dir = root.join("content").join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        durable::remove_debris(&dir).map_err(io_err("remove temporary files in", &dir))?;
        Ok(ContentStore { dir })
    }

    /// The directory holding the blobs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path a blob has (whether or not it is present).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The size of a present blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io {
                op: "stat",
                path,
                source: e,
            }),
        }
    }

    /// Opens a present blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io {
                op: "open",
                path,
                source: e,
            }),
        }
    }

    /// Reads a whole present blob into memory (for manifests and configs).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut buf = Vec::new();
        let path = self.path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        Ok(buf)
    }

    /// Stores a blob held in memory, verifying it against `expected`.
    pub fn write_bytes(&self, data: &[u8], expected: Expected) -> Result<BlobInfo, ContentError> {
        self.ingest(data, expected, &mut |_| {})
    }

    /// Stores a blob read from `reader`, verifying digest and size against
    /// `expected`. `progress` is called with the running byte count. If the
    /// blob is already present and its digest was known, the reader is not
    /// consumed.
    pub fn ingest(
        &self,
        mut reader: impl Read,
        expected: Expected,
        progress: &mut dyn FnMut(u64),
    ) -> Result<BlobInfo, ContentError> {
        if let Some(d) = &expected.digest {
            if let Ok(size) = self.size(d) {
                return Ok(BlobInfo {
                    digest: d.clone(),
                    size,
                });
            }
        }
        let mut writer = self.writer(expected)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ContentError::Read {
                        what: writer.what.clone(),
                        source,
                    })
                }
            };
            writer.push(&buf[..n])?;
            progress(writer.hasher.len());
        }
        writer.commit()
    }

    /// Starts writing a blob whose bytes arrive piecemeal (through `Write`,
    /// e.g. teed off a stream that is being unpacked at the same time).
    /// Nothing is visible until [`BlobWriter::commit`] has verified it; a
    /// writer dropped uncommitted removes its temporary file.
    pub fn writer(&self, expected: Expected) -> Result<BlobWriter, ContentError> {
        let what = expected
            .digest
            .as_ref()
            .map_or_else(|| "of unknown digest".to_string(), |d| d.to_string());
        let (file, tmp) = durable::create_temp(&self.dir, "blob")
            .map_err(io_err("create temporary blob in", &self.dir))?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            tmp: Some(tmp),
            hasher: Hasher::new(),
            expected,
            what,
        })
    }

    /// Flushes everything written to the store's filesystem (`syncfs`):
    /// one flush for all the blobs of a pull instead of one per blob.
    pub fn sync_filesystem(&self) -> Result<(), ContentError> {
        durable::syncfs(&self.dir).map_err(io_err("syncfs", &self.dir))
    }

    /// Makes the names given by [`VerifiedBlob::publish`] durable (an fsync
    /// of the blob directory).
    pub fn sync_names(&self) -> Result<(), ContentError> {
        durable::sync_dir(&self.dir).map_err(io_err("fsync", &self.dir))
    }

    /// Deletes a blob; absent blobs are not an error.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io {
                op: "remove",
                path,
                source: e,
            }),
        }
    }

    /// Every blob present, with its size.
    pub fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(digest) = Digest::from_hex(name) else {
                continue;
            };
            let size = entry
                .metadata()
                .map_err(io_err("stat", &entry.path()))?
                .len();
            out.push(BlobInfo { digest, size });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_stores_nothing() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(root.path()).expect("open");
        let wrong = Digest::of_bytes(b"something else");
        let err = store
            .write_bytes(
                b"hello",
                Expected {
                    digest: Some(wrong.clone()),
                    size: None,
                },
            )
            .expect_err("mismatch must fail");
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert!(!store.contains(&wrong));
        let left: Vec<_> = fs::read_dir(root.path().join("content/blobs/sha256"))
            .expect("readdir")
            .collect();
        assert!(left.is_empty(), "nothing may remain: {left:?}");

        let err = store
            .write_bytes(
                b"hello",
                Expected {
                    digest: None,
                    size: Some(3),
                },
            )
            .expect_err("size mismatch must fail");
        assert!(matches!(err, ContentError::SizeMismatch { .. }), "{err}");
        assert!(store.list().expect("list").is_empty());

        let ok = store
            .write_bytes(
                b"hello",
                Expected {
                    digest: Some(Digest::of_bytes(b"hello")),
                    size: Some(5),
                },
            )
            .expect("store");
        assert_eq!(store.read(&ok.digest).expect("read"), b"hello");
    }
}
