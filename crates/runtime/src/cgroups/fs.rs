//! Reads and writes of cgroup files whose errors name the file and the value.

use std::fs::{self as stdfs, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// Writes `value` to `dir/file` in one write; the file must exist (cgroupfs files cannot be created).
///
/// O_TRUNC is what a shell's `>` does: cgroupfs ignores it, and a plain file used
/// as a stand-in in tests then holds the last value written.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let fail = |path: PathBuf, source| Error::Write {
        path,
        value: value.to_string(),
        source,
    };
    let mut f = match OpenOptions::new().write(true).truncate(true).open(&path) {
        Ok(f) => f,
        Err(e) => return Err(fail(path, e)),
    };
    match f.write_all(value.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) => Err(fail(path, e)),
    }
}

/// Reads `dir/file` as text.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    stdfs::read_to_string(&path).map_err(|source| Error::Read { path, source })
}

/// Reads `dir/file`, or `None` when the file does not exist (an optional kernel feature).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match stdfs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

fn parse_u64(dir: &Path, file: &str, text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| Error::Parse {
        path: dir.join(file),
        reason: format!("expected an unsigned number, found {:?}", text.trim()),
    })
}

/// Reads a file holding one unsigned number.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let text = read(dir, file)?;
    parse_u64(dir, file, &text)
}

/// Reads an optional file holding one unsigned number (0 when absent).
pub(crate) fn read_u64_optional(dir: &Path, file: &str) -> Result<u64> {
    match read_optional(dir, file)? {
        Some(text) => parse_u64(dir, file, &text),
        None => Ok(0),
    }
}

/// Reads a v2-style limit: a number, or `max` (returned as `None`).
pub(crate) fn read_u64_or_max(dir: &Path, file: &str) -> Result<Option<u64>> {
    let text = read(dir, file)?;
    if text.trim() == "max" {
        return Ok(None);
    }
    parse_u64(dir, file, &text).map(Some)
}

/// Makes `path` and its missing parents, recording each directory it made, parents first.
pub(crate) fn mkdir_all(path: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    // One mkdir in the common case (the parent exists); parents only on ENOENT.
    match stdfs::create_dir(path) {
        Ok(()) => {
            made.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let Some(parent) = path.parent() else {
                return Err(Error::Mkdir {
                    path: path.to_path_buf(),
                    source: e,
                });
            };
            mkdir_all(parent, made)?;
            match stdfs::create_dir(path) {
                Ok(()) => {
                    made.push(path.to_path_buf());
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(source) => Err(Error::Mkdir {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Err(source) => Err(Error::Mkdir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses a `cgroup.procs` file: one pid per line.
pub(crate) fn parse_procs(path: &Path, text: &str) -> Result<Vec<i32>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                reason: format!("expected a pid, found {l:?}"),
            })
        })
        .collect()
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = stdfs::read_dir(dir).map_err(|source| Error::Rmdir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Rmdir {
            path: dir.to_path_buf(),
            source,
        })?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Appends the pids in `dir` and every cgroup below it.
pub(crate) fn collect_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let Some(text) = read_optional(dir, "cgroup.procs")? else {
        return Ok(());
    };
    out.extend(parse_procs(&dir.join("cgroup.procs"), &text)?);
    for sub in subdirs(dir)? {
        collect_procs(&sub, out)?;
    }
    Ok(())
}

/// How many times an rmdir that fails with EBUSY while `cgroup.procs` is empty is retried:
/// the kernel frees a cgroup's last task a moment after the task is reaped.
const RMDIR_RETRIES: u32 = 50;

/// Removes `dir` and the cgroups below it, deepest first; a missing `dir` is success.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    let subs = match subdirs(dir) {
        Ok(s) => s,
        Err(Error::Rmdir { source, .. }) if source.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for sub in subs {
        remove_tree(&sub)?;
    }
    let mut attempt = 0;
    loop {
        match stdfs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let procs_path = dir.join("cgroup.procs");
                let pids = match stdfs::read_to_string(&procs_path) {
                    Ok(text) => parse_procs(&procs_path, &text)?,
                    Err(_) => Vec::new(),
                };
                if !pids.is_empty() {
                    return Err(Error::Busy {
                        dir: dir.to_path_buf(),
                        pids,
                    });
                }
                attempt += 1;
                if attempt > RMDIR_RETRIES {
                    return Err(Error::Rmdir {
                        path: dir.to_path_buf(),
                        source: e,
                    });
                }
                // Bounded: at most RMDIR_RETRIES ms in all, only while a dying task lingers.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkdir_all_records_what_it_made_parents_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let leaf = tmp.path().join("a/b/c");
        let mut made = Vec::new();
        mkdir_all(&leaf, &mut made).expect("mkdir");
        assert_eq!(
            made,
            vec![tmp.path().join("a"), tmp.path().join("a/b"), leaf.clone()]
        );
        let mut again = Vec::new();
        mkdir_all(&leaf, &mut again).expect("mkdir again");
        assert!(again.is_empty());
    }

    #[test]
    fn write_names_file_and_value() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = write(tmp.path(), "memory.max", "42").expect_err("missing file");
        let msg = err.to_string();
        assert!(
            msg.contains("memory.max") && msg.contains("\"42\""),
            "{msg}"
        );
    }

    #[test]
    fn parse_procs_reads_lines() {
        assert_eq!(
            parse_procs(Path::new("x"), "1\n22\n\n").expect("parse"),
            vec![1, 22]
        );
        assert!(parse_procs(Path::new("x"), "abc\n").is_err());
    }
}
