//! The errors a backend returns, mapped to HTTP statuses as dockerd's `errdefs` are, and the
//! errors of setting up the listener.

use std::path::PathBuf;

use hyper::StatusCode;

/// A failed API call. The variant picks the status; the text goes to the client as
/// `{"message": …}` and should read as a sentence naming the object ("No such container: web").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404: no such container, image, exec instance or route.
    #[error("{0}")]
    NotFound(String),
    /// 409: the object is in the way (name taken, container running, image in use).
    #[error("{0}")]
    Conflict(String),
    /// 400: malformed or invalid input.
    #[error("{0}")]
    InvalidParameter(String),
    /// 304: nothing to do (start of a running container, stop of a stopped one); no body.
    #[error("not modified")]
    NotModified,
    /// 401: the registry refused the credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the operation is not permitted.
    #[error("{0}")]
    Forbidden(String),
    /// 501: berth does not do this (yet); the text says what.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a dependency is down (the registry, a monitor).
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status dockerd uses for this kind of error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::NotModified => StatusCode::NOT_MODIFIED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error dockerd gives for a container that does not exist.
    pub fn no_such_container(id: &str) -> Self {
        ApiError::NotFound(format!("No such container: {id}"))
    }

    /// The error dockerd gives for an image that does not exist.
    pub fn no_such_image(name: &str) -> Self {
        ApiError::NotFound(format!("No such image: {name}"))
    }

    /// The error dockerd gives for an exec instance that does not exist.
    pub fn no_such_exec(id: &str) -> Self {
        ApiError::NotFound(format!("No such exec instance: {id}"))
    }
}

impl From<api_types::QueryError> for ApiError {
    fn from(e: api_types::QueryError) -> Self {
        ApiError::InvalidParameter(e.to_string())
    }
}

/// A failure to set up or run the listener.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `tcp://` without mutual TLS: the API gives root on the host, so it is never served to
    /// unauthenticated clients.
    #[error("refusing to listen on {0} without --tlsverify: the API gives root on this host, and plain TCP (or TLS without client certificates) would give it to anyone who can reach the port; pass --tlsverify --tlscacert --tlscert --tlskey, or use a unix socket")]
    PlainTcpRefused(String),
    /// An address in a scheme berth does not serve.
    #[error("cannot listen on {0:?}: expected unix:///path/to/socket or tcp://HOST:PORT")]
    UnsupportedAddress(String),
    /// A `tcp://` address that is not `HOST[:PORT]`.
    #[error("cannot listen on {0:?}: expected tcp://HOST:PORT with HOST an IP address or a name that resolves")]
    BadTcpAddress(String),
    /// Another process has the TCP port.
    #[error("cannot listen on tcp://{0}: the address is already in use")]
    TcpInUse(std::net::SocketAddr),
    /// A TCP socket call failed.
    #[error("{op} tcp://{addr}: {error}")]
    Tcp {
        /// The operation ("bind").
        op: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The system's error.
        error: std::io::Error,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Another process accepts connections on the socket.
    #[error("cannot listen on {0}: another daemon is listening on it")]
    InUse(PathBuf),
    /// The path exists and is not a socket; berth will not remove someone's file.
    #[error("cannot listen on {0}: the path exists and is not a socket")]
    NotASocket(PathBuf),
    /// A file-system or socket call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation, as a phrase ("bind unix socket").
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Accepting a connection failed in a way that stops the server.
    #[error("accept on the API listener {listener}: {source}")]
    Accept {
        /// The listener (unix:///path or tcp://addr).
        listener: String,
        /// The system's error.
        source: std::io::Error,
    },
}

impl From<api_types::FiltersError> for ApiError {
    fn from(e: api_types::FiltersError) -> Self {
        ApiError::InvalidParameter(e.to_string())
    }
}
