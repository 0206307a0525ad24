//! Finding and reaching the daemon: `-H`, `BERTH_HOST`, `DOCKER_HOST`, the default socket, and
//! API version negotiation through `/_ping` as the docker CLI does it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{BollardRequest, ClientVersion, Docker};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{CliError, Result};

/// Where berthd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// The newest API version this client speaks (docker CLI 28's).
pub const CLIENT_API_VERSION: (usize, usize) = (1, 51);

/// dockerd's port for the API over TLS, used when `tcp://HOST` names none.
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// The global flags that say where the daemon is and how to reach it (docker's names).
#[derive(Debug, Clone, Default)]
pub struct HostFlags {
    /// `-H`/`--host`.
    pub host: Option<String>,
    /// `--tlsverify` (DOCKER_TLS_VERIFY also sets it).
    pub tlsverify: bool,
    /// `--tlscacert`.
    pub tlscacert: Option<PathBuf>,
    /// `--tlscert`.
    pub tlscert: Option<PathBuf>,
    /// `--tlskey`.
    pub tlskey: Option<PathBuf>,
}

/// Where the daemon is.
#[derive(Clone)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// `HOST:PORT` over mutual TLS.
    Tls(Box<TlsTarget>),
}

/// A TLS daemon: its address and the client's side of the handshake.
#[derive(Clone)]
pub struct TlsTarget {
    /// `HOST:PORT`.
    pub addr: String,
    /// The CA the daemon's certificate must chain to.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
}

/// A connection to the daemon, unix or TLS, for requests written by hand.
pub trait RawStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RawStream for T {}

impl Endpoint {
    /// How it is shown in messages (`unix:///path` is shown as the path, as before).
    pub fn display(&self) -> String {
        match self {
            Self::Unix(p) => p.clone(),
            Self::Tls(t) => format!("tcp://{}", t.addr),
        }
    }

    /// Opens a connection (and for TLS completes the handshake).
    pub async fn open(&self) -> std::io::Result<Box<dyn RawStream>> {
        match self {
            Self::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
            Self::Tls(t) => {
                let tcp = tokio::net::TcpStream::connect(&t.addr).await?;
                let _ = tcp.set_nodelay(true);
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(&t.config))
                    .connect(t.server_name.clone(), tcp)
                    .await?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// The daemon from `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket.
pub fn endpoint(flags: &HostFlags) -> Result<Endpoint> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let host = flags
        .host
        .clone()
        .or_else(|| env("BERTH_HOST"))
        .or_else(|| env("DOCKER_HOST"));
    let Some(host) = host else {
        return Ok(Endpoint::Unix(DEFAULT_SOCKET.to_string()));
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(CliError::BadHost(format!(
                "invalid host {host:?}: a unix:// address needs a socket path"
            )));
        }
        return Ok(Endpoint::Unix(path.to_string()));
    }
    if host.starts_with('/') {
        return Ok(Endpoint::Unix(host));
    }
    if let Some(rest) = host.strip_prefix("tcp://") {
        let verify = flags.tlsverify || env("DOCKER_TLS_VERIFY").is_some();
        if !verify {
            return Err(CliError::BadHost(format!(
                "berth: {host}: a tcp:// daemon is reached only with --tlsverify (or DOCKER_TLS_VERIFY) and a client certificate; berthd serves no plain TCP"
            )));
        }
        return tls_target(&host, rest, flags).map(|t| Endpoint::Tls(Box::new(t)));
    }
    if host.starts_with("http://") || host.starts_with("https://") {
        return Err(CliError::BadHost(format!(
            "berth: {host}: use tcp://HOST:PORT with --tlsverify, or unix:///path"
        )));
    }
    Err(CliError::BadHost(format!(
        "berth: unsupported host {host:?}: berth speaks unix:///path and tcp://HOST:PORT (with --tlsverify)"
    )))
}

/// `HOST[:PORT]`, split; the port defaults to 2376.
fn split_host(rest: &str) -> Option<(String, u16)> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(v6) = rest.strip_prefix('[') {
        let (ip, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_TLS_PORT,
            None => return None,
        };
        return Some((ip.to_string(), port));
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None if !rest.is_empty() && !rest.contains('/') => {
            Some((rest.to_string(), DEFAULT_TLS_PORT))
        }
        None => None,
    }
}

fn tls_target(host: &str, rest: &str, flags: &HostFlags) -> Result<TlsTarget> {
    let bad = |why: String| CliError::BadHost(format!("berth: {host}: {why}"));
    let (name, port) =
        split_host(rest).ok_or_else(|| bad("expected tcp://HOST:PORT".to_string()))?;
    // The docker CLI's directory: DOCKER_CERT_PATH, else the config directory.
    let dir = std::env::var_os("DOCKER_CERT_PATH")
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"));
    let ca = flags
        .tlscacert
        .clone()
        .unwrap_or_else(|| dir.join("ca.pem"));
    let cert = flags
        .tlscert
        .clone()
        .unwrap_or_else(|| dir.join("cert.pem"));
    let key = flags.tlskey.clone().unwrap_or_else(|| dir.join("key.pem"));

    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| bad(format!("cannot read the {what} {}: {e}", path.display())))
    };
    let pem = |what: &str, path: &Path, e: String| {
        bad(format!(
            "the {what} {} is not usable PEM: {e}",
            path.display()
        ))
    };
    let certs = |what: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>> {
        let bytes = read(what, path)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| pem(what, path, e.to_string()))?;
        if certs.is_empty() {
            return Err(pem(what, path, "no CERTIFICATE block in it".into()));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("CA certificate", &ca)? {
        roots.add(c).map_err(|e| {
            bad(format!(
                "the CA certificate {} cannot be used: {e}",
                ca.display()
            ))
        })?;
    }
    let chain = certs("client certificate", &cert)?;
    let key_der = PrivateKeyDer::from_pem_slice(&read("client key", &key)?)
        .map_err(|e| pem("client key", &key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| {
            bad(format!(
                "the client key {} does not fit the certificate {}: {e}",
                key.display(),
                cert.display()
            ))
        })?;
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| bad(format!("{name:?} is not a host name or IP address: {e}")))?;
    let addr = if name.contains(':') {
        format!("[{name}]:{port}")
    } else {
        format!("{name}:{port}")
    };
    Ok(TlsTarget {
        addr,
        ca,
        cert,
        key,
        server_name,
        config: Arc::new(config),
    })
}

/// A connected client, its API version agreed with the daemon.
pub struct Connection {
    /// The bollard client.
    pub docker: Docker,
    /// The daemon's address as shown in messages.
    pub socket: String,
    /// Where the daemon is.
    pub endpoint: Endpoint,
    /// The negotiated API version.
    pub api_version: ClientVersion,
}

/// Pings the daemon (`/_ping`, reading its `Api-Version` header) and connects at the lower of
/// the two versions.
pub async fn connect(flags: &HostFlags) -> Result<Connection> {
    let endpoint = endpoint(flags)?;
    let socket = endpoint.display();
    let server = ping(&endpoint).await?;
    let client = ClientVersion {
        major_version: CLIENT_API_VERSION.0,
        minor_version: CLIENT_API_VERSION.1,
    };
    let api_version = match server {
        Some(v) if v < client => v,
        _ => client,
    };
    let docker = match &endpoint {
        Endpoint::Unix(path) => Docker::connect_with_unix(path, 120, &api_version),
        Endpoint::Tls(t) => {
            // bollard's own https transport would also trust the system's public roots; the
            // docker CLI trusts only --tlscacert, and so does this one: every request goes
            // over a connection opened with our own TLS config.
            let target = endpoint.clone();
            Docker::connect_with_custom_transport(
                move |req: BollardRequest| tls_request(target.clone(), req),
                Some(format!("https://{}", t.addr)),
                120,
                &api_version,
            )
        }
    };
    let docker = docker
        .map_err(|e| CliError::NoDaemon {
            socket: socket.clone(),
            reason: e.to_string(),
        })?
        .with_request_modifier(move |mut req| {
            // bollard 0.21.1 joins an absolute path onto its `/vX.Y` base URL, which drops the
            // version prefix; put it back so the negotiated version reaches the daemon.
            let uri = req.uri();
            if !uri.path().starts_with("/v1.") {
                let rebuilt = format!(
                    "{}://{}/v{}.{}{}",
                    uri.scheme_str().unwrap_or("unix"),
                    uri.authority().map(|a| a.as_str()).unwrap_or(""),
                    api_version.major_version,
                    api_version.minor_version,
                    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                );
                if let Ok(parsed) = rebuilt.parse() {
                    *req.uri_mut() = parsed;
                }
            }
            req
        });
    Ok(Connection {
        docker,
        socket,
        endpoint,
        api_version,
    })
}

/// One request over a new connection (bollard's unix transport does not pool either); the
/// connection runs with upgrades, so attach and exec hijack it as they do the unix socket.
async fn tls_request(
    endpoint: Endpoint,
    mut req: BollardRequest,
) -> std::result::Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error> {
    let stream = endpoint.open().await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    // A client connection sends the URI as given: make it origin-form, with a Host header.
    if let Some(authority) = req.uri().authority().map(|a| a.to_string()) {
        if !req.headers().contains_key(hyper::header::HOST) {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&authority) {
                req.headers_mut().insert(hyper::header::HOST, v);
            }
        }
    }
    if let Some(pq) = req.uri().path_and_query().cloned() {
        if let Ok(uri) = hyper::Uri::builder().path_and_query(pq).build() {
            *req.uri_mut() = uri;
        }
    }
    Ok(sender.send_request(req).await?)
}

impl Connection {
    /// A new connection to the daemon for a request written by hand.
    pub async fn open_stream(&self) -> std::io::Result<Box<dyn RawStream>> {
        self.endpoint.open().await
    }

    /// A GET whose JSON answer is wanted byte for byte (inspect prints the daemon's own JSON,
    /// as docker does): the status and the body.
    pub async fn get_raw(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        let io = |what: &'static str| {
            let path = path.to_string();
            move |e: std::io::Error| CliError::Io {
                what: format!("{what} for GET {path}"),
                source: e,
            }
        };
        let mut stream = self
            .open_stream()
            .await
            .map_err(io("connect to the daemon"))?;
        let request = format!(
            "GET /v{}.{}{path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n",
            self.api_version.major_version, self.api_version.minor_version
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io("send the request"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(io("read the answer"))?;
        Ok(split_response(&raw))
    }
}

impl Connection {
    /// A POST of a JSON body for endpoints bollard does not cover (`/auth`): the status and the
    /// body of the answer.
    pub async fn post_json_raw(&self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let io = |what: &'static str| {
            let path = path.to_string();
            move |e: std::io::Error| CliError::Io {
                what: format!("{what} for POST {path}"),
                source: e,
            }
        };
        let mut stream = self
            .open_stream()
            .await
            .map_err(io("connect to the daemon"))?;
        let head = format!(
            "POST /v{}.{}{path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.api_version.major_version,
            self.api_version.minor_version,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(io("send the request"))?;
        stream
            .write_all(body)
            .await
            .map_err(io("send the request"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(io("read the answer"))?;
        Ok(split_response(&raw))
    }
}

/// An HTTP/1.1 response's status and body (chunked transfer decoded).
pub fn split_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new());
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = &raw[end + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (status, body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..i]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        rest = &rest[i + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    (status, out)
}

/// `GET /_ping` on the socket; the server's API version, if it said one.
async fn ping(endpoint: &Endpoint) -> Result<Option<ClientVersion>> {
    let no_daemon = |reason: String| CliError::NoDaemon {
        socket: endpoint.display(),
        reason,
    };
    let mut stream = endpoint
        .open()
        .await
        .map_err(|e| no_daemon(io_reason(&e)))?;
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| no_daemon(io_reason(&e)))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| no_daemon(io_reason(&e)))?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    Ok(head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("api-version") {
            return None;
        }
        let (major, minor) = value.trim().split_once('.')?;
        Some(ClientVersion {
            major_version: major.parse().ok()?,
            minor_version: minor.parse().ok()?,
        })
    }))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such socket".to_string(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(host: &str) -> HostFlags {
        HostFlags {
            host: Some(host.to_string()),
            ..HostFlags::default()
        }
    }

    #[test]
    fn tcp_needs_tlsverify_and_unix_paths_read() {
        match endpoint(&flags("unix:///tmp/x.sock")).map_err(|e| e.to_string()) {
            Ok(Endpoint::Unix(p)) => assert_eq!(p, "/tmp/x.sock"),
            other => panic!("unix:///tmp/x.sock: {:?}", other.err()),
        }
        if std::env::var_os("DOCKER_TLS_VERIFY").is_none() {
            let err = endpoint(&flags("tcp://127.0.0.1:2375"))
                .err()
                .expect("tcp without --tlsverify refused");
            assert!(err.to_string().contains("--tlsverify"), "{err}");
        }
        let mut with_tls = flags("tcp://127.0.0.1:2376");
        with_tls.tlsverify = true;
        with_tls.tlscacert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = endpoint(&with_tls).err().expect("a missing CA file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn tcp_addresses_split() {
        assert_eq!(
            split_host("127.0.0.1:2377"),
            Some(("127.0.0.1".into(), 2377))
        );
        assert_eq!(
            split_host("example.org"),
            Some(("example.org".into(), 2376))
        );
        assert_eq!(split_host("[::1]:9/"), Some(("::1".into(), 9)));
        assert_eq!(split_host("host:port"), None);
    }
}
