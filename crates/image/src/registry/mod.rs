//! The registry client: the OCI distribution protocol for pull and push.
//!
//! - [`client`][]: endpoints and requests; https by default, plain http (after
//!   an https attempt without certificate checks, as dockerd does) for
//!   loopback and `insecure_registries`; Basic and Bearer-token auth.
//! - [`auth`][]: credentials (explicit, `X-Registry-Auth`, `~/.docker/config.json`)
//!   and `WWW-Authenticate` challenges.
//! - `login`: [`RegistryClient::check_login`], what `docker login` asks the
//!   daemon to do (`POST /auth`): ping `/v2/` and answer its challenge.
//! - `pull` and `push`: [`crate::store::Store::pull`] (or its halves
//!   [`crate::store::Store::download`], needing only `&Store`, and
//!   [`crate::store::Store::commit_pulled`]) and [`crate::store::Store::push`],
//!   the entry points the daemon and CLI call.
//!
//! - `retry`: which failures are transient, and the backoff between attempts.
//!
//! Async (tokio), unlike the rest of the crate: a pull is many concurrent
//! network streams. Layer bytes are written to the content store from the
//! download tasks (page-cache writes, short); unpacking and the one
//! `syncfs` that makes a pull durable run on blocking threads.
//!
//! The HTTP client is reqwest (over hyper and hyper-util) with rustls on
//! the ring provider, no default features: no OpenSSL, no aws-lc build. It
//! is chosen over driving hyper-util's client by hand because a registry
//! client needs what reqwest already does well and is maintained for:
//! redirects (registries answer blob GETs with 307s to object storage, and
//! the Authorization header must be dropped when the host changes), proxies
//! from the environment as docker honours them, connection pooling, and
//! timeouts. Written by hand here: the challenge parser (a dozen lines) and
//! the token flow, which are the protocol itself.

pub mod auth;
pub mod client;
mod login;
mod pull;
mod push;
mod retry;

pub use auth::Credentials;
pub use client::{Access, RegistryClient, RegistryOptions, Session};
pub use login::login_registry;
pub use pull::{PullOutcome, PulledImage};
pub use push::PushOutcome;

use crate::digest::Digest;
use std::path::PathBuf;

/// Errors from talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The HTTP exchange failed (connection, TLS, timeout).
    #[error("registry {registry}: {op}: {source}")]
    Http {
        /// The registry domain.
        registry: String,
        /// What was being done.
        op: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {registry}: {op}: unexpected status {status}: {message}")]
    Status {
        /// The registry domain.
        registry: String,
        /// What was being done.
        op: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text.
        message: String,
    },
    /// The registry answered with a status that says "try again later"
    /// (408, 429, 5xx); a pull retries these.
    #[error("registry {registry}: {op}: the registry is unavailable (status {status}): {message}")]
    Unavailable {
        /// The registry domain.
        registry: String,
        /// What was being done.
        op: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text.
        message: String,
        /// The delay the registry asked for (`Retry-After`, in seconds).
        retry_after: Option<std::time::Duration>,
    },
    /// Authentication or authorisation failed.
    #[error("registry {registry}: {op}: unauthorized: {message}")]
    Unauthorized {
        /// The registry domain.
        registry: String,
        /// What was being done.
        op: String,
        /// Why.
        message: String,
    },
    /// The registry has no such manifest, blob or repository.
    #[error("registry {registry}: {op}: not found: {message}")]
    NotFound {
        /// The registry domain.
        registry: String,
        /// What was being done.
        op: String,
        /// The registry's error text.
        message: String,
    },
    /// A login's credentials were refused by the registry's token service
    /// (dockerd's wording: the ping URL, then the service's reason).
    #[error("Get \"{url}\": {reason}")]
    LoginRefused {
        /// The `/v2/` URL the login pinged.
        url: String,
        /// The token service's reason (`unauthorized: incorrect username or password`).
        reason: String,
    },
    /// A login's ping with the credentials did not answer 200 (dockerd's wording).
    #[error("login attempt to {url} failed with status: {status} {reason}")]
    LoginFailed {
        /// The `/v2/` URL the login pinged.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Its reason phrase (`Unauthorized`).
        reason: String,
    },
    /// A login could not reach the registry at all (dockerd's wording: the ping URL, then
    /// the transport's innermost reason, such as a refused connection).
    #[error("Get \"{url}\": {reason}")]
    LoginUnreachable {
        /// The `/v2/` URL the login pinged.
        url: String,
        /// The connection's failure.
        reason: String,
    },
    /// A `docker login` server address that names no registry.
    #[error("unable to parse server address: {reason}")]
    BadServerAddress {
        /// The address as given.
        address: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Content did not hash to the digest that names it; nothing was kept.
    #[error(
        "{what}: expected digest {expected} but the content hashes to {actual}; nothing was stored"
    )]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A document is larger than berth accepts.
    #[error("{what}: larger than {limit} bytes; refused")]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit.
        limit: usize,
    },
    /// A URL (endpoint, realm, Location) did not parse.
    #[error("registry {registry}: bad URL {url:?}: {reason}")]
    BadUrl {
        /// The registry domain.
        registry: String,
        /// The URL text.
        url: String,
        /// Why.
        reason: String,
    },
    /// Credentials could not be read.
    #[error("credentials from {source_name}: {reason}")]
    BadCredentials {
        /// Where they came from.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The docker config names a credential helper, which berth does not run.
    #[error("credentials for {registry} are kept by the credential helper docker-credential-{helper} ({path}); berth does not run credential helpers: pass the credentials explicitly (X-Registry-Auth) or store them inline with `docker login` after removing credsStore/credHelpers")]
    CredentialHelper {
        /// The registry.
        registry: String,
        /// The helper's name.
        helper: String,
        /// The config file.
        path: PathBuf,
    },
    /// A config file or CA bundle could not be read.
    #[error("reading {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The image to push is not in the store or cannot be pushed.
    #[error("push {reference}: {reason}")]
    Push {
        /// The reference being pushed.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The image's manifest is Docker schema 1 (deprecated since 2015 and
    /// refused by docker 28 as well).
    #[error("image {reference}: its manifest is Docker image manifest version 2, schema 1 ({media_type}), which is not supported; the image must be pushed again as an OCI image or with a Docker schema 2 manifest")]
    Schema1 {
        /// The reference pulled.
        reference: String,
        /// The manifest's media type as served (or how it was recognised).
        media_type: String,
    },
    /// The manifest or config is unusable.
    #[error("image {reference}: {reason}")]
    BadImage {
        /// The reference pulled.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// From the local store.
    #[error(transparent)]
    Store(#[from] Box<crate::store::StoreError>),
    /// A worker task died.
    #[error("{op}: a worker task failed: {reason}")]
    Task {
        /// What the task was doing.
        op: String,
        /// The panic or cancellation.
        reason: String,
    },
}

macro_rules! from_store_part {
    ($($t:ty),*) => {$(
        impl From<$t> for RegistryError {
            fn from(e: $t) -> Self {
                RegistryError::Store(Box::new(e.into()))
            }
        }
    )*};
}
from_store_part!(
    crate::store::StoreError,
    crate::content::ContentError,
    crate::snapshot::SnapshotError,
    crate::manifest::ManifestError,
    crate::reference::ReferenceError
);
