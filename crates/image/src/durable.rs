//! Durable file writes: a temporary file in the target's directory, fsync,
//! rename over the target, fsync of the directory. After a crash at any point
//! the target holds either its old content or its new content, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every temporary name berth creates inside its store; anything
/// with it is debris from an interrupted write and is removed at open.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path in `dir`, unique within this process and across processes.
pub(crate) fn temp_path(dir: &Path, what: &str) -> PathBuf {
    dir.join(format!("{TEMP_PREFIX}{}", unique_name(what)))
}

/// `what-<pid>-<n>`: unique among the names this process makes, and among
/// those of the processes running beside it.
pub(crate) fn unique_name(what: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{what}-{}-{n}", std::process::id())
}

/// Creates a new temporary file in `dir`, returning it and its path.
pub(crate) fn create_temp(dir: &Path, what: &str) -> io::Result<(File, PathBuf)> {
    let path = temp_path(dir, what);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((file, path))
}

/// fsyncs a directory so that a rename or creation inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes the whole filesystem holding `dir` (`syncfs(2)`): every file
/// and directory written there so far is durable when it returns.
pub(crate) fn syncfs(dir: &Path) -> io::Result<()> {
    let fd = File::open(dir)?;
    rustix::fs::syncfs(&fd).map_err(io::Error::from)
}

/// Starts writing a file's dirty pages to disk without waiting for them:
/// `POSIX_FADV_DONTNEED` makes Linux start writeback of the range (and drop
/// only the pages already clean), so a later `syncfs` finds most of the
/// data written instead of all of it. Only an optimisation: durability
/// still comes from that sync, so a failure here is ignored.
pub(crate) fn start_writeback(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Writes `data` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (mut file, tmp) = create_temp(dir, "write")?;
    let result = (|| {
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temporary debris (names starting with [`TEMP_PREFIX`]) directly
/// inside `dir`, returning how many were removed. An entry that cannot be
/// removed is logged and left for the next open: debris must never stop a
/// store from opening.
pub(crate) fn remove_debris(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove temporary debris; leaving it")
            }
        }
    }
    Ok(removed)
}
