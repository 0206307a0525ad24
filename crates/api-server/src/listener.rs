//! The API socket: where it may live and who may connect.
//!
//! The API gives whoever can connect root on the host, so the socket is created with mode 0660,
//! owned by root and a group that defaults to root: root-only unless the operator names a group.
//! It is bound under a private temporary name, given its mode and owner, and only then renamed to
//! its path, so there is no moment when it is reachable with looser permissions. A socket file
//! left by a daemon that died is replaced only if nothing accepts connections on it.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::ServeError;

/// Who may use the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// The socket's mode bits.
    pub mode: u32,
    /// The owning group (the owner is always root, uid 0).
    pub gid: u32,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            mode: 0o660,
            gid: 0,
        }
    }
}

/// Where to listen, from a `-H` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix socket path.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Reads `unix:///path` or a bare absolute path; `tcp://` is refused (TLS is not served yet),
    /// as is any other scheme.
    pub fn parse(addr: &str) -> Result<Self, ServeError> {
        if let Some(path) = addr.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Self::Unix(PathBuf::from(path)));
            }
        } else if addr.starts_with("tcp://") {
            return Err(ServeError::PlainTcpRefused(addr.to_string()));
        } else if addr.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(addr)));
        }
        Err(ServeError::UnsupportedAddress(addr.to_string()))
    }
}

/// A bound API socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ApiListener {
    pub(crate) listener: UnixListener,
    path: PathBuf,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl ApiListener {
    /// Binds the address with the given permissions (needs a tokio runtime).
    pub fn bind(addr: &ListenAddr, options: SocketOptions) -> Result<Self, ServeError> {
        let ListenAddr::Unix(path) = addr;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| ServeError::UnsupportedAddress(path.display().to_string()))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(io_err("create the socket's directory", parent))?;
        remove_stale(path)?;

        static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = parent.join(format!(".api-sock-{}-{n}", std::process::id()));
        // A leftover staging directory of a process that had our pid cannot be in use by us.
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(io_err(
                "create a private directory for the socket",
                &staging,
            ))?;
        let result = Self::bind_staged(path, &staging, options);
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn bind_staged(
        path: &Path,
        staging: &Path,
        options: SocketOptions,
    ) -> Result<Self, ServeError> {
        let tmp = staging.join("api.sock");
        let listener = UnixListener::bind(&tmp).map_err(io_err("bind the unix socket", &tmp))?;
        std::os::unix::fs::chown(&tmp, Some(0), Some(options.gid))
            .map_err(io_err("give the socket to root", &tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(options.mode))
            .map_err(io_err("set the socket's mode", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("move the socket into place", path))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ApiListener {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the API socket");
            }
        }
    }
}

/// Removes a socket file nobody listens on; refuses a live socket or a file of another kind.
fn remove_stale(path: &Path) -> Result<(), ServeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("look at the existing socket path", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServeError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale API socket");
            std::fs::remove_file(path).map_err(io_err("remove the stale socket", path))
        }
        Err(e) => Err(io_err("probe the existing socket", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            ListenAddr::parse("unix:///run/berth/berth.sock").expect("unix"),
            ListenAddr::Unix(PathBuf::from("/run/berth/berth.sock"))
        );
        assert!(matches!(
            ListenAddr::parse("tcp://0.0.0.0:2375"),
            Err(ServeError::PlainTcpRefused(_))
        ));
        assert!(matches!(
            ListenAddr::parse("unix://relative.sock"),
            Err(ServeError::UnsupportedAddress(_))
        ));
        assert!(matches!(
            ListenAddr::parse("fd://"),
            Err(ServeError::UnsupportedAddress(_))
        ));
    }
}
