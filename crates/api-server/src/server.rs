//! The accept loop and the per-request pipeline: version check, route lookup, handler, error
//! mapping, and the headers dockerd puts on every response.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_types::{ApiVersion, Query};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::http::{error_reply, plain_error_reply, Reply, RequestContext};
use crate::listener::{Accepted, ApiListener};
use crate::router::{self, Lookup, Route};
use crate::{routes, ApiError, Backend, ServeError};

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The `Server` header's product and version ("berth/0.1.0").
    pub server_version: String,
    /// The `Builder-Version` header of `/_ping`: "1" for the classic builder, "2" for BuildKit.
    pub builder_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_version: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            builder_version: "1".to_string(),
        }
    }
}

struct Shared<B> {
    backend: Arc<B>,
    table: Vec<Route<B>>,
    config: Arc<ServerConfig>,
}

/// Serves the Engine API on `listener` with `backend` until `shutdown` resolves, then stops
/// accepting (connections already open, hijacked ones included, run to their end) and removes
/// the socket.
pub async fn serve<B: Backend>(
    listener: ApiListener,
    backend: Arc<B>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_all(vec![listener], backend, config, shutdown).await
}

/// How long a TCP client has to finish the TLS handshake before its connection is closed, so
/// that connections which never speak cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the Engine API on every listener at once (a unix socket and a TLS port, as dockerd's
/// several `-H`), with the same backend, until `shutdown` resolves or one listener fails; then
/// all stop accepting and the sockets are removed.
pub async fn serve_all<B: Backend>(
    listeners: Vec<ApiListener>,
    backend: Arc<B>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let shared = Arc::new(Shared {
        backend,
        table: routes::table::<B>(),
        config: Arc::new(config),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for listener in listeners {
        tracing::info!(listener = %listener.addr(), "serving the Engine API");
        loops.spawn(accept_loop(listener, Arc::clone(&shared), stop_rx.clone()));
    }
    tokio::pin!(shutdown);
    let mut result = tokio::select! {
        () = &mut shutdown => Ok(()),
        Some(joined) = loops.join_next() => joined_result(joined),
    };
    let _ = stop_tx.send(true);
    while let Some(joined) = loops.join_next().await {
        if let Err(e) = joined_result(joined) {
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

fn joined_result(
    joined: Result<Result<(), ServeError>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match joined {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime shuts down.
        Err(_) => Ok(()),
    }
}

async fn accept_loop<B: Backend>(
    listener: ApiListener,
    shared: Arc<Shared<B>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            // Running out of descriptors or memory is transient: log and keep serving.
            Err(e) if e.raw_os_error().is_some_and(is_transient) => {
                tracing::warn!(error = %e, "accepting an API connection failed");
                continue;
            }
            Err(source) => {
                return Err(ServeError::Accept {
                    listener: listener.addr().to_string(),
                    source,
                })
            }
        };
        let shared = Arc::clone(&shared);
        match accepted {
            Accepted::Unix(stream) => {
                tokio::spawn(serve_connection(stream, shared));
            }
            Accepted::Tcp(stream, tls) => {
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string());
                // The handshake runs in the connection's task: a slow client holds up no one.
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => serve_connection(stream, shared).await,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "refused an API connection: TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "refused an API connection: no TLS handshake within 10 s");
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    Ok(())
}

/// One HTTP/1.1 connection, on whatever transport: the same code serves the unix socket and
/// TLS, hijacked attach and exec streams included.
async fn serve_connection<B, S>(stream: S, shared: Arc<Shared<B>>)
where
    B: Backend,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, std::convert::Infallible>(dispatch(shared, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "API connection ended with an error");
    }
}

fn is_transient(errno: i32) -> bool {
    // Linux errnos: EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, EINTR.
    matches!(errno, 24 | 23 | 105 | 12 | 103 | 4)
}

async fn dispatch<B: Backend>(shared: Arc<Shared<B>>, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let span = tracing::debug_span!("api", %method, path = uri.path());
    let mut reply = async {
        let reply = match handle(&shared, req).await {
            Ok(reply) => reply,
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(error = %e, "request failed");
                } else {
                    tracing::debug!(error = %e, status = %e.status(), "request refused");
                }
                if predates_json_errors(uri.path()) {
                    plain_error_reply(&e)
                } else {
                    error_reply(&e)
                }
            }
        };
        tracing::debug!(status = %reply.status(), query = uri.query().unwrap_or(""), "answered");
        reply
    }
    .instrument(span)
    .await;
    let headers = reply.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{} ({})",
        shared.config.server_version,
        std::env::consts::OS
    )) {
        headers.insert("server", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ApiVersion::CURRENT.to_string()) {
        headers.insert("api-version", v);
    }
    headers.insert("ostype", HeaderValue::from_static(std::env::consts::OS));
    reply
}

/// Checks the version a client names in the path against the range berth serves.
fn negotiate(text: &str) -> Result<ApiVersion, ApiError> {
    let v: ApiVersion = text
        .parse()
        .map_err(|e: api_types::VersionError| ApiError::InvalidParameter(e.to_string()))?;
    if v < ApiVersion::MINIMUM {
        return Err(ApiError::InvalidParameter(format!(
            "client version {text} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            ApiVersion::MINIMUM
        )));
    }
    if v > ApiVersion::CURRENT {
        return Err(ApiError::InvalidParameter(format!(
            "client version {text} is too new. Maximum supported API version is {}",
            ApiVersion::CURRENT
        )));
    }
    Ok(v)
}

/// Whether the path names a version older than any berth serves: such clients predate JSON
/// error bodies, so dockerd answers them in plain text they can print.
fn predates_json_errors(path: &str) -> bool {
    router::split_version(path)
        .0
        .and_then(|v| v.parse::<ApiVersion>().ok())
        .is_some_and(|v| v < ApiVersion::MINIMUM)
}

async fn handle<B: Backend>(shared: &Shared<B>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let (version, path) = router::split_version(parts.uri.path());
    // As in dockerd, an unknown route is "page not found" whatever version it names.
    let (handler, params) = match router::lookup(&shared.table, &parts.method, path) {
        Lookup::Found(handler, params) => (handler, params),
        Lookup::NotFound => return Err(ApiError::NotFound("page not found".to_string())),
    };
    let version = match version {
        None => ApiVersion::CURRENT,
        Some(text) => negotiate(text)?,
    };
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let cx = RequestContext {
        version,
        params,
        query,
        headers: parts.headers,
        extensions: parts.extensions,
        method: parts.method,
        config: Arc::clone(&shared.config),
        body: Some(body),
    };
    handler(Arc::clone(&shared.backend), cx).await
}
