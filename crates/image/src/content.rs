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
//!
//! Downloads resume across processes: [`ContentStore::resumable_writer`]
//! writes a blob of known digest to `<root>/content/ingest/<hex>`, a name
//! the next open keeps (unlike temporary files). A pull killed part-way
//! leaves there what it had fetched; the next one re-hashes that prefix
//! (nothing on disk is trusted without it), asks only for the rest, and
//! uses a complete one without a request. Ingest files are never blobs: they
//! become one only through [`BlobWriter::verify`] and
//! [`VerifiedBlob::publish`] like any other, and
//! [`ContentStore::remove_ingests`] (garbage collection) removes them.

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
    /// An ingest file (see [`ContentStore::resumable_writer`]): kept when
    /// the writer is dropped, so that a later pull resumes it.
    resumable: bool,
    /// Bytes found in the ingest file and re-hashed when it was opened.
    resumed: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Bytes that were already in the ingest file when this writer opened
    /// it (re-hashed, not downloaded again); 0 for a fresh writer.
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// Removes what was written (an ingest file too) and drops the writer.
    pub fn discard(mut self) {
        self.resumable = false;
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
        // Bytes that fail verification are not worth resuming.
        let resumable = std::mem::replace(&mut self.resumable, false);
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
            resumable,
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
    /// An ingest file: kept when dropped unpublished, for the next pull.
    resumable: bool,
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

    /// Gives the blob its name, without any sync: the caller must either
    /// have made its data durable ([`ContentStore::sync_filesystem`]) before
    /// and sync the name ([`ContentStore::sync_names`]) before anything that
    /// must survive a crash refers to it, or have recorded it in a
    /// pending-names marker first (see `pending`).
    pub fn publish(mut self) -> Result<BlobInfo, ContentError> {
        let dest = self.store.path(&self.digest);
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = fs::rename(&tmp, &dest) {
                // Another pull of this host published the same ingest file
                // first: the blob is in place.
                if self.resumable && e.kind() == io::ErrorKind::NotFound && dest.is_file() {
                    return Ok(BlobInfo {
                        digest: self.digest.clone(),
                        size: self.size,
                    });
                }
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
            if !self.resumable {
                let _ = fs::remove_file(tmp);
            }
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
            if !self.resumable {
                let _ = fs::remove_file(tmp);
            }
        }
    }
}

/// The blob store rooted at `<root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the content store under `root` and removes
    /// temporary files left by interrupted writes.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        let dir = root.join("content").join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        durable::remove_debris(&dir).map_err(io_err("remove temporary files in", &dir))?;
        let ingest = root.join("content").join("ingest");
        fs::create_dir_all(&ingest).map_err(io_err("create directory", &ingest))?;
        Ok(ContentStore { dir, ingest })
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
            resumable: false,
            resumed: 0,
        })
    }

    /// A writer for a blob of known digest and size that survives the
    /// process: its bytes go to `ingest/<hex>`, kept when the writer is
    /// dropped (or the process killed), and a later call finds them,
    /// re-hashes them, and goes on from their end
    /// ([`BlobWriter::resumed`], [`BlobWriter::written`]). A complete
    /// ingest file that does not hash to `digest`, or one longer than
    /// `size`, is emptied first. The file is locked (`flock`) while a
    /// writer holds it; when another writer of this host holds it, this
    /// one is an ordinary temporary writer instead.
    pub fn resumable_writer(&self, digest: &Digest, size: u64) -> Result<BlobWriter, ContentError> {
        let expected = Expected {
            digest: Some(digest.clone()),
            size: Some(size),
        };
        let path = self.ingest.join(digest.hex());
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open ingest file", &path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return self.writer(expected),
            Err(e) => return Err(io_err("lock ingest file", &path)(e.into())),
        }
        let mut hasher = Hasher::new();
        let on_disk = file
            .metadata()
            .map_err(io_err("stat ingest file", &path))?
            .len();
        if on_disk > 0 && on_disk <= size {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("re-hash ingest file", &path)(e)),
                };
                hasher.update(&buf[..n]);
            }
        }
        let complete_but_wrong = hasher.len() == size && hasher.clone().finish() != *digest;
        if on_disk > size || complete_but_wrong || hasher.len() != on_disk {
            tracing::info!(blob = %digest, on_disk, "discarding an ingest file that cannot be resumed");
            file.set_len(0)
                .map_err(io_err("truncate ingest file", &path))?;
            hasher = Hasher::new();
        }
        let resumed = hasher.len();
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(resumed))
            .map_err(io_err("seek ingest file", &path))?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            tmp: Some(path),
            hasher,
            expected,
            what: digest.to_string(),
            resumable: true,
            resumed,
        })
    }

    /// Removes the ingest files (partial or verified downloads kept for
    /// resuming) that no writer holds, returning the bytes freed.
    pub fn remove_ingests(&self) -> Result<u64, ContentError> {
        let mut freed = 0;
        let entries = match fs::read_dir(&self.ingest) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("list", &self.ingest)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.ingest))?;
            let path = entry.path();
            let Ok(f) = File::open(&path) else { continue };
            // A download in progress holds the lock: leave its file.
            if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
            {
                continue;
            }
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => freed += len,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(freed)
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
    fn ingest_files_outlive_their_writer_and_are_rehashed() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(root.path()).expect("open");
        let data = b"the bytes of a layer, downloaded in two goes";
        let digest = Digest::of_bytes(data);
        let size = data.len() as u64;
        let mut w = store.resumable_writer(&digest, size).expect("writer");
        assert_eq!(w.resumed(), 0);
        w.write_all(&data[..10]).expect("write");
        // Another writer of the same blob meanwhile: an ordinary one.
        let other = store
            .resumable_writer(&digest, size)
            .expect("second writer");
        assert_eq!(other.resumed(), 0);
        drop(other);
        drop(w);
        // Reopening the store (a new process) keeps the ingest file.
        let store = ContentStore::open(root.path()).expect("reopen");
        let mut w = store.resumable_writer(&digest, size).expect("resume");
        assert_eq!(w.resumed(), 10);
        assert_eq!(w.written(), 10);
        w.write_all(&data[10..]).expect("write the rest");
        let verified = w.verify().expect("verify");
        drop(verified);
        // Verified but unpublished: kept, and complete on the next try.
        let w = store.resumable_writer(&digest, size).expect("complete");
        assert_eq!(w.resumed(), size);
        w.verify().expect("verify").publish().expect("publish");
        assert_eq!(store.read(&digest).expect("read"), data);
        assert!(!store.ingest.join(digest.hex()).exists());

        // A complete ingest file with other bytes is emptied, not trusted.
        let wrong = store.ingest.join(digest.hex());
        fs::write(&wrong, vec![b'x'; data.len()]).expect("forge");
        let w = store.resumable_writer(&digest, size).expect("writer");
        assert_eq!(w.resumed(), 0);
        drop(w);
        fs::write(&wrong, b"12345").expect("partial");
        assert_eq!(store.remove_ingests().expect("remove"), 5);
        assert!(!wrong.exists());
    }

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
