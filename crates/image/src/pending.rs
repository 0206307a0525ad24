//! Names given before the data under them is known to be on disk, and what
//! the store does with them after a crash.
//!
//! A pull or a load names its blobs and snapshots as soon as they are
//! verified, without waiting for the disk: the pages are in the page cache,
//! so every process sees the whole image at once, and a kill -9 anywhere
//! loses nothing. What the page cache does not survive is a power cut or a
//! kernel crash, so before the first name appears a *marker* is written
//! (durably, in `pending/`): the boot it was written in (the kernel's
//! `boot_id`) and the blobs and snapshots about to be named. Then:
//!
//! - [`Pending::settle`] (berthd runs it right after each pull or load, in
//!   the background; every store open runs it too) flushes the filesystem
//!   (`syncfs`) and the directories holding the names, and only then
//!   removes the markers whose names were all given before that flush began;
//! - a store opened in a later boot that still finds a marker cannot know
//!   how much of those files reached the disk: it hashes each listed blob
//!   again (kept if whole, removed if not) and makes each listed snapshot
//!   again from its layer's blob (checked against the diff ID); what cannot
//!   be made whole is removed with every image using it (pull it again). So
//!   a torn layer is never shown, and after a clean reboot nothing is lost.
//!
//! Why: waiting for the disk at the end of every pull (one `syncfs`, with
//! the writeback of each blob and large file started early) cost a pull
//! about 15 % of its wall time on the bench, for a guarantee that only a
//! crash in the moment after the pull needs, and that this gives at a
//! settle instead: a torn image never appears, then or now.
//! Where `boot_id` cannot be read, the store flushes before naming, as
//! before ([`Pending::record`] returns `None`).

use crate::digest::Digest;
use crate::durable;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The directory under the store root holding the markers.
const DIR: &str = "pending";

/// One marker: what a pull or load was about to name, in which boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Marker {
    /// `/proc/sys/kernel/random/boot_id` when the names were given.
    pub boot_id: String,
    /// Blobs named under it.
    pub blobs: Vec<Digest>,
    /// Snapshots (chain IDs) named under it.
    pub snapshots: Vec<Digest>,
}

/// The markers of one store, and those whose names are all given (ready to
/// be removed by the next settle).
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    dir: PathBuf,
    boot_id: Option<Arc<str>>,
    named: Arc<Mutex<Vec<PathBuf>>>,
}

/// The running kernel's boot ID, or `None` where it cannot be read.
fn current_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

impl Pending {
    /// Opens `<root>/pending`, returning the store's markers and, apart,
    /// those written in an earlier boot (with their paths), which the caller
    /// must recover from ([`Pending::forget`] once it has). Markers of this
    /// boot are queued for the next settle.
    pub(crate) fn open(root: &Path) -> io::Result<(Self, Vec<(PathBuf, Marker)>)> {
        let dir = root.join(DIR);
        fs::create_dir_all(&dir)?;
        durable::remove_debris(&dir)?;
        let boot_id = current_boot_id();
        let mut ours = Vec::new();
        let mut earlier = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let marker = fs::read(&path)
                .ok()
                .and_then(|data| serde_json::from_slice::<Marker>(&data).ok());
            match marker {
                Some(m) if boot_id.as_deref() == Some(m.boot_id.as_str()) => ours.push(path),
                Some(m) => earlier.push((path, m)),
                None => {
                    // Written atomically, so never torn: unreadable means
                    // not ours (a newer format, or a stray file). Leave it.
                    tracing::warn!(path = %path.display(), "unreadable pending-names marker; leaving it");
                }
            }
        }
        Ok((
            Pending {
                dir,
                boot_id: boot_id.map(Arc::from),
                named: Arc::new(Mutex::new(ours)),
            },
            earlier,
        ))
    }

    /// Writes, durably, a marker for names about to be given; `None` when
    /// the boot ID cannot be read, in which case the caller must make the
    /// data durable before naming it.
    pub(crate) fn record(
        &self,
        blobs: Vec<Digest>,
        snapshots: Vec<Digest>,
    ) -> io::Result<Option<PathBuf>> {
        let Some(boot_id) = &self.boot_id else {
            return Ok(None);
        };
        let marker = Marker {
            boot_id: boot_id.to_string(),
            blobs,
            snapshots,
        };
        let json = serde_json::to_vec(&marker).map_err(io::Error::other)?;
        // A unique name: several pulls may be naming at once, and a marker
        // of an earlier process (same pid) may still wait for its settle.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .dir
            .join(format!("{}-{nanos}.json", durable::unique_name("marker")));
        durable::write_atomic(&path, &json)?;
        Ok(Some(path))
    }

    /// The names under `marker` are all given (or the naming stopped): the
    /// next settle may remove it.
    pub(crate) fn named(&self, marker: PathBuf) {
        self.lock().push(marker);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        // A poisoned lock only means a thread panicked while pushing a path.
        self.named.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directory holding the markers.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether markers wait for a settle.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Flushes with `flush` (which must make every name and byte written so
    /// far durable), then removes the markers queued before it began
    /// (`io_err` wraps a failure to remove them). Returns how many were
    /// removed.
    pub(crate) fn settle<E>(
        &self,
        flush: impl FnOnce() -> Result<(), E>,
        io_err: impl FnOnce(io::Error) -> E,
    ) -> Result<usize, E> {
        let taken: Vec<PathBuf> = std::mem::take(&mut *self.lock());
        if taken.is_empty() {
            return Ok(0);
        }
        if let Err(e) = flush() {
            // Not settled: they stay queued for the next attempt.
            self.lock().extend(taken);
            return Err(e);
        }
        self.forget(taken.iter().map(PathBuf::as_path))
            .map_err(io_err)?;
        Ok(taken.len())
    }

    /// Removes markers (whose names are durable, or were removed), and makes
    /// their removal durable.
    pub(crate) fn forget<'a>(&self, markers: impl IntoIterator<Item = &'a Path>) -> io::Result<()> {
        for m in markers {
            match fs::remove_file(m) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        durable::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of_bytes(&[n])
    }

    #[test]
    fn markers_of_this_boot_are_settled_and_earlier_ones_returned() {
        let root = tempfile::tempdir().expect("tempdir");
        let (p, earlier) = Pending::open(root.path()).expect("open");
        assert!(earlier.is_empty());
        if p.boot_id.is_none() {
            return; // no /proc here: nothing is deferred
        }
        let m = p
            .record(vec![digest(1)], vec![digest(2)])
            .expect("record")
            .expect("a marker");
        assert!(m.exists());
        // Not yet named: a settle leaves it.
        assert_eq!(
            p.settle(|| Ok::<(), io::Error>(()), |e| e).expect("settle"),
            0
        );
        assert!(m.exists());
        p.named(m.clone());
        // A failed flush keeps it queued.
        let failed = p.settle(|| Err(io::Error::other("disk gone")), |e| e);
        assert!(failed.is_err());
        assert!(m.exists() && !p.is_empty());
        assert_eq!(
            p.settle(|| Ok::<(), io::Error>(()), |e| e).expect("settle"),
            1
        );
        assert!(!m.exists() && p.is_empty());

        // A marker from another boot comes back from open; one of this boot
        // is queued.
        let other = Marker {
            boot_id: "an-earlier-boot".into(),
            blobs: vec![digest(3)],
            snapshots: vec![],
        };
        let other_path = root.path().join(DIR).join("old.json");
        fs::write(&other_path, serde_json::to_vec(&other).expect("json")).expect("write");
        let ours = p
            .record(vec![digest(4)], vec![])
            .expect("record")
            .expect("marker");
        drop(p);
        let (p, earlier) = Pending::open(root.path()).expect("reopen");
        assert_eq!(earlier, vec![(other_path.clone(), other)]);
        assert!(!p.is_empty(), "this boot's marker is queued for a settle");
        assert_eq!(
            p.settle(|| Ok::<(), io::Error>(()), |e| e).expect("settle"),
            1
        );
        assert!(!ours.exists());
        p.forget([other_path.as_path()]).expect("forget");
        assert!(!other_path.exists());
    }
}
