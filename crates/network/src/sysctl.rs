//! Kernel parameters under `/proc/sys`, written only when they differ from what is wanted.
//!
//! Reading first keeps a value that is already right untouched (no write, no change event
//! for whoever watches it) and tells the caller whether berth changed the host. The
//! `/proc/sys/net` tree shows the network namespace of the thread that opens the file, so
//! these act in the caller's namespace.

use std::path::{Path, PathBuf};

/// A `/proc/sys` file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Reading the current value failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the wanted value failed.
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value that was to be written.
        value: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The current value of `path`, without the trailing newline.
pub fn read(path: &Path) -> Result<String, SysctlError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(|source| SysctlError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Makes `path` hold `value`; writes only when it holds something else. Returns whether it
/// wrote.
pub fn ensure(path: &Path, value: &str) -> Result<bool, SysctlError> {
    if read(path)? == value {
        return Ok(false);
    }
    std::fs::write(path, format!("{value}\n")).map_err(|source| SysctlError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })?;
    Ok(true)
}

/// [`ensure`] for a value the kernel may lack (IPv6 files on a kernel booted without IPv6):
/// a missing file counts as nothing to do.
pub fn ensure_if_present(path: &Path, value: &str) -> Result<bool, SysctlError> {
    match ensure(path, value) {
        Err(SysctlError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(false)
        }
        other => other,
    }
}

/// `/proc/sys/net/ipv4/conf/<iface>/<key>` (`iface` may be `all` or `default`).
pub fn ipv4_conf(iface: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf").join(iface).join(key)
}

/// `/proc/sys/net/ipv6/conf/<iface>/<key>` (`iface` may be `all` or `default`).
pub fn ipv6_conf(iface: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv6/conf").join(iface).join(key)
}

/// `/proc/sys/net/ipv4/ip_forward`.
pub fn ipv4_forward() -> PathBuf {
    PathBuf::from("/proc/sys/net/ipv4/ip_forward")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_what_differs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("forwarding");
        std::fs::write(&path, "0\n").expect("write");
        assert!(ensure(&path, "1").expect("ensure"));
        assert_eq!(read(&path).expect("read"), "1");
        assert!(!ensure(&path, "1").expect("ensure again"));
        let missing = dir.path().join("absent");
        assert!(!ensure_if_present(&missing, "1").expect("missing is fine"));
        let err = ensure(&missing, "1").expect_err("missing");
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
