//! Finding and reaching the daemon: `-H`, `BERTH_HOST`, `DOCKER_HOST`, the default socket, and
//! API version negotiation through `/_ping` as the docker CLI does it.

use bollard::{ClientVersion, Docker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{CliError, Result};

/// Where berthd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// The newest API version this client speaks (docker CLI 28's).
pub const CLIENT_API_VERSION: (usize, usize) = (1, 51);

/// The socket path from `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.
pub fn socket_path(flag: Option<&str>) -> Result<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let host = flag
        .map(str::to_string)
        .or_else(|| env("BERTH_HOST"))
        .or_else(|| env("DOCKER_HOST"));
    let Some(host) = host else {
        return Ok(DEFAULT_SOCKET.to_string());
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(CliError::BadHost(format!(
                "invalid host {host:?}: a unix:// address needs a socket path"
            )));
        }
        return Ok(path.to_string());
    }
    if host.starts_with('/') {
        return Ok(host);
    }
    if host.starts_with("tcp://") || host.starts_with("http://") || host.starts_with("https://") {
        return Err(CliError::BadHost(format!(
            "berth: {host}: TCP hosts are refused until berth speaks TLS; use unix:///path"
        )));
    }
    Err(CliError::BadHost(format!(
        "berth: unsupported host {host:?}: berth speaks unix:///path only"
    )))
}

/// A connected client, its API version agreed with the daemon.
pub struct Connection {
    /// The bollard client.
    pub docker: Docker,
    /// The socket path.
    pub socket: String,
    /// The negotiated API version.
    pub api_version: ClientVersion,
}

/// Pings the daemon (`/_ping`, reading its `Api-Version` header) and connects at the lower of
/// the two versions.
pub async fn connect(host: Option<&str>) -> Result<Connection> {
    let socket = socket_path(host)?;
    let server = ping(&socket).await?;
    let client = ClientVersion {
        major_version: CLIENT_API_VERSION.0,
        minor_version: CLIENT_API_VERSION.1,
    };
    let api_version = match server {
        Some(v) if v < client => v,
        _ => client,
    };
    let docker = Docker::connect_with_unix(&socket, 120, &api_version)
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
        api_version,
    })
}

impl Connection {
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
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
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
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
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
async fn ping(socket: &str) -> Result<Option<ClientVersion>> {
    let no_daemon = |reason: String| CliError::NoDaemon {
        socket: socket.to_string(),
        reason,
    };
    let mut stream = tokio::net::UnixStream::connect(socket)
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

    #[test]
    fn tcp_hosts_are_refused_and_unix_paths_read() {
        assert_eq!(
            socket_path(Some("unix:///tmp/x.sock")).expect("unix"),
            "/tmp/x.sock"
        );
        let err = socket_path(Some("tcp://127.0.0.1:2375")).expect_err("tcp refused");
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}
