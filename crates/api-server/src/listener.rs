//! The API socket: where it may live and who may connect.
//!
//! The API gives whoever can connect root on the host, so the socket is created with mode 0660,
//! owned by root and a group that defaults to root: root-only unless the operator names a group.
//! It is bound under a private temporary name, given its mode and owner, and only then renamed to
//! its path, so there is no moment when it is reachable with looser permissions. A socket file
//! left by a daemon that died is replaced only if nothing accepts connections on it.
//!
//! A TCP listener exists only with mutual TLS ([`ServerTls`]): every client proves who it is
//! with a certificate from the operator's CA before it can send a request.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::tls::ServerTls;
use crate::ServeError;

/// dockerd's port for the API over TLS, used when `tcp://HOST` names none.
pub const DEFAULT_TLS_PORT: u16 = 2376;

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
    /// A TCP address; served only with mutual TLS.
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// Reads `unix:///path`, a bare absolute path, or `tcp://HOST[:PORT]` (HOST an IP address,
    /// `[v6]`, or a name resolved now; empty means 127.0.0.1, as dockerd's default host is
    /// local; PORT defaults to 2376). Any other scheme is refused.
    pub fn parse(addr: &str) -> Result<Self, ServeError> {
        if let Some(path) = addr.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Self::Unix(PathBuf::from(path)));
            }
        } else if let Some(rest) = addr.strip_prefix("tcp://") {
            return parse_tcp(rest)
                .map(Self::Tcp)
                .ok_or_else(|| ServeError::BadTcpAddress(addr.to_string()));
        } else if addr.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(addr)));
        }
        Err(ServeError::UnsupportedAddress(addr.to_string()))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// `HOST[:PORT]` with an optional trailing `/`; None when it is not an address.
fn parse_tcp(rest: &str) -> Option<SocketAddr> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return None;
    }
    if let Ok(a) = rest.parse::<SocketAddr>() {
        return Some(a);
    }
    // "[v6]" or a bare IP without a port.
    let bare = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rest);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DEFAULT_TLS_PORT));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().ok()?),
        Some(_) => return None,
        None => (rest, DEFAULT_TLS_PORT),
    };
    if host.is_empty() {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

enum Bound {
    Unix(UnixListener),
    Tcp(TcpListener, ServerTls),
}

/// A bound API listener: a unix socket (its file is removed when it is dropped) or a TCP port
/// with mutual TLS.
pub struct ApiListener {
    bound: Bound,
    addr: ListenAddr,
}

impl std::fmt::Debug for ApiListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiListener")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A connection accepted by an [`ApiListener`], before any TLS handshake.
pub(crate) enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, ServerTls),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl ApiListener {
    /// Binds a unix socket with the given permissions (needs a tokio runtime). A TCP address
    /// is refused here: it needs [`ApiListener::bind_tls`].
    pub fn bind(addr: &ListenAddr, options: SocketOptions) -> Result<Self, ServeError> {
        let path = match addr {
            ListenAddr::Unix(path) => path,
            ListenAddr::Tcp(_) => return Err(ServeError::PlainTcpRefused(addr.to_string())),
        };
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
            bound: Bound::Unix(listener),
            addr: ListenAddr::Unix(path.to_path_buf()),
        })
    }

    /// Binds a TCP address whose clients must complete a mutual-TLS handshake with `tls`
    /// before their first request (needs a tokio runtime).
    pub fn bind_tls(addr: SocketAddr, tls: ServerTls) -> Result<Self, ServeError> {
        let tcp_err = |error: std::io::Error| {
            if error.kind() == ErrorKind::AddrInUse {
                ServeError::TcpInUse(addr)
            } else {
                ServeError::Tcp {
                    op: "bind",
                    addr,
                    error,
                }
            }
        };
        let std_listener = std::net::TcpListener::bind(addr).map_err(tcp_err)?;
        std_listener.set_nonblocking(true).map_err(tcp_err)?;
        let listener = TcpListener::from_std(std_listener).map_err(tcp_err)?;
        // Port 0 asks the kernel for one; report the port it gave.
        let local = listener.local_addr().map_err(tcp_err)?;
        Ok(Self {
            bound: Bound::Tcp(listener, tls),
            addr: ListenAddr::Tcp(local),
        })
    }

    /// The socket's path; None for a TCP listener.
    pub fn path(&self) -> Option<&Path> {
        match &self.addr {
            ListenAddr::Unix(p) => Some(p),
            ListenAddr::Tcp(_) => None,
        }
    }

    /// Where it listens (the port the kernel chose when bound to port 0).
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        match &self.bound {
            Bound::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
            Bound::Tcp(l, tls) => {
                let (s, _) = l.accept().await?;
                // The API's requests are small and interactive (attach): no Nagle delay.
                let _ = s.set_nodelay(true);
                Ok(Accepted::Tcp(s, tls.clone()))
            }
        }
    }
}

impl Drop for ApiListener {
    fn drop(&mut self) {
        let Some(path) = self.path() else { return };
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the API socket");
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
        assert_eq!(
            ListenAddr::parse("tcp://0.0.0.0:2375").expect("tcp"),
            ListenAddr::Tcp("0.0.0.0:2375".parse().expect("addr"))
        );
        assert_eq!(
            ListenAddr::parse("tcp://127.0.0.1").expect("tcp without a port"),
            ListenAddr::Tcp("127.0.0.1:2376".parse().expect("addr"))
        );
        assert_eq!(
            ListenAddr::parse("tcp://[::1]/").expect("v6"),
            ListenAddr::Tcp("[::1]:2376".parse().expect("addr"))
        );
        assert_eq!(
            ListenAddr::parse("tcp://:2377").expect("empty host"),
            ListenAddr::Tcp("127.0.0.1:2377".parse().expect("addr"))
        );
        assert!(matches!(
            ListenAddr::parse("tcp://127.0.0.1:notaport"),
            Err(ServeError::BadTcpAddress(_))
        ));
        assert!(matches!(
            ApiListener::bind(
                &ListenAddr::parse("tcp://127.0.0.1:2376").expect("tcp"),
                SocketOptions::default()
            ),
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
