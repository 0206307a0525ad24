//! The HTTP side of the distribution protocol: endpoints (https, or plain
//! http for loopback and insecure registries), authorisation (Basic, or a
//! Bearer token fetched from the realm a `WWW-Authenticate` challenge
//! names), and the requests pull and push make.

use super::auth::{parse_challenge, Challenge, Credentials};
use super::RegistryError;
use crate::digest::Digest;
use crate::manifest::ACCEPTED_MANIFEST_TYPES;
use crate::reference::{Reference, DEFAULT_DOMAIN};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The host that serves Docker Hub's API.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// A manifest larger than this is refused (distribution's own limit is 4 MiB).
pub(crate) const MAX_MANIFEST: usize = 4 << 20;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`, or an IPv4/IPv6 CIDR such as
    /// `10.0.0.0/8`) spoken to without certificate checks, falling back to
    /// plain http, as dockerd's `--insecure-registry`. Loopback addresses
    /// and `localhost` are always insecure, as in dockerd.
    pub insecure_registries: Vec<String>,
    /// Credentials to use for every registry this client talks to (the
    /// daemon's decoded `X-Registry-Auth`); when `None`, `docker_config`
    /// is consulted.
    pub credentials: Option<Credentials>,
    /// The docker CLI config to read credentials from (`None`: none).
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once (dockerd's default is 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once (dockerd's default is 5).
    pub max_concurrent_uploads: usize,
    /// Blobs larger than this are uploaded in PATCH chunks of this size;
    /// smaller ones in one PUT.
    pub upload_chunk_size: u64,
    /// Directory holding `<host[:port]>/ca.crt` files (dockerd's
    /// `/etc/docker/certs.d`), added to the trusted roots for that registry.
    pub certs_dir: Option<PathBuf>,
    /// How many times a transient failure (connection reset or refused,
    /// timeout, 408, 429, 5xx) of a pull's request is retried before the
    /// pull fails.
    pub max_retries: u32,
    /// The first retry's delay; each further one doubles it (with jitter),
    /// up to `max_retry_delay`. Tests use milliseconds.
    pub retry_base_delay: Duration,
    /// The longest delay between two attempts, also the cap on a 429's
    /// `Retry-After`.
    pub max_retry_delay: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            credentials: None,
            docker_config: Credentials::default_docker_config(),
            max_concurrent_downloads: 6,
            max_concurrent_uploads: 5,
            upload_chunk_size: 16 << 20,
            certs_dir: Some(PathBuf::from("/etc/docker/certs.d")),
            max_retries: 5,
            retry_base_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

/// A registry client: holds the connection pools; each pull or push opens
/// a [`Session`] for one repository.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    options: RegistryOptions,
}

/// What a session is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read the repository.
    Pull,
    /// Read and write the repository.
    Push,
}

fn http_err(registry: &str, op: impl Into<String>) -> impl FnOnce(reqwest::Error) -> RegistryError {
    let registry = registry.to_string();
    let op = op.into();
    move |source| RegistryError::Http {
        registry,
        op,
        source,
    }
}

/// Whether a domain is on the loopback (always insecure, as in dockerd).
fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl RegistryClient {
    /// A client with these options.
    pub fn new(options: RegistryOptions) -> Self {
        RegistryClient { options }
    }

    /// The options in force.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// Whether `domain` is spoken to without certificate checks (falling
    /// back to plain http).
    pub fn is_insecure(&self, domain: &str) -> bool {
        if is_loopback(domain) {
            return true;
        }
        let host = host_of(domain);
        self.options.insecure_registries.iter().any(|entry| {
            let e = entry
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            e == domain
                || e == host
                || host
                    .parse::<IpAddr>()
                    .map(|ip| in_cidr(ip, e))
                    .unwrap_or(false)
        })
    }

    fn credentials_for(&self, domain: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = &self.options.credentials {
            return Ok(Some(c.clone()));
        }
        match &self.options.docker_config {
            Some(path) => Credentials::from_docker_config(path, domain),
            None => Ok(None),
        }
    }

    pub(crate) fn http_client(
        &self,
        domain: &str,
        verify: bool,
    ) -> Result<reqwest::Client, RegistryError> {
        // reqwest is built without a crypto provider (so no aws-lc and no
        // OpenSSL); ring is installed as the process default unless the
        // embedding program chose one already.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(10))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(!verify);
        if let Some(dir) = &self.options.certs_dir {
            let ca = dir.join(domain).join("ca.crt");
            match std::fs::read(&ca) {
                Ok(pem) => {
                    for cert in reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(http_err(domain, format!("read CA bundle {}", ca.display())))?
                    {
                        b = b.add_root_certificate(cert);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(RegistryError::ReadConfig { path: ca, source }),
            }
        }
        b.build().map_err(http_err(domain, "build the HTTP client"))
    }

    /// Opens a session on `reference`'s repository: finds the endpoint
    /// (`GET /v2/`), and authorises for `access` (plus pull access to
    /// `mount_from` repositories of the same registry, for cross-repository
    /// mounts) if the registry asks for it.
    pub async fn session(
        &self,
        reference: &Reference,
        access: Access,
        mount_from: &[String],
    ) -> Result<Session, RegistryError> {
        let domain = reference.domain().to_string();
        let api_host = if domain == DEFAULT_DOMAIN {
            DOCKER_HUB_API.to_string()
        } else {
            domain.clone()
        };
        let credentials = self.credentials_for(&domain)?;
        let insecure = self.is_insecure(&domain);
        let http = self.http_client(&domain, !insecure)?;
        let mut base: Option<(Url, Response)> = None;
        let mut first_err = None;
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        for scheme in schemes {
            let url = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
                RegistryError::BadUrl {
                    registry: domain.clone(),
                    url: format!("{scheme}://{api_host}/"),
                    reason: e.to_string(),
                }
            })?;
            let ping = url.join("v2/").map_err(|e| RegistryError::BadUrl {
                registry: domain.clone(),
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            match http.get(ping).send().await {
                Ok(r) => {
                    base = Some((url, r));
                    break;
                }
                Err(e) => {
                    tracing::debug!(registry = %domain, %scheme, error = %e, "ping failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        let (base, ping) = match (base, first_err) {
            (Some(b), _) => b,
            (None, Some(e)) => return Err(http_err(&domain, "ping (GET /v2/)")(e)),
            (None, None) => unreachable!("at least one scheme is tried"),
        };
        let mut scopes = vec![format!(
            "repository:{}:{}",
            reference.path(),
            match access {
                Access::Pull => "pull",
                Access::Push => "pull,push",
            }
        )];
        for m in mount_from {
            if m != reference.path() {
                scopes.push(format!("repository:{m}:pull"));
            }
        }
        let session = Session {
            inner: Arc::new(SessionInner {
                http,
                registry: domain,
                base,
                repository: reference.path().to_string(),
                credentials,
                scopes,
                authorization: Mutex::new(None),
            }),
        };
        if ping.status() == StatusCode::UNAUTHORIZED {
            session.authorize(ping.headers()).await?;
        }
        Ok(session)
    }
}

#[derive(Debug)]
struct SessionInner {
    http: reqwest::Client,
    registry: String,
    base: Url,
    repository: String,
    credentials: Option<Credentials>,
    scopes: Vec<String>,
    authorization: Mutex<Option<HeaderValue>>,
}

/// An authorised connection to one repository of one registry; cheap to
/// clone and shared by the parallel downloads or uploads of one operation.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads a registry's error body into one sentence (`MANIFEST_UNKNOWN:
/// manifest unknown`), or the bare status.
async fn error_text(resp: Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() || text.len() > 200 {
                status.to_string()
            } else {
                format!("{status}: {text}")
            }
        }
    }
}

impl Session {
    /// The registry's domain, as in references.
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        &self.inner.repository
    }

    /// The API base URL chosen (`https://host/` or `http://host/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| RegistryError::BadUrl {
                registry: self.inner.registry.clone(),
                url: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// Answers a 401's challenge: remembers a Basic header or a Bearer
    /// token for the session's scopes.
    async fn authorize(&self, headers: &HeaderMap) -> Result<(), RegistryError> {
        let reg = &self.inner.registry;
        let challenges: Vec<Challenge> = headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .collect();
        let challenge = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or(challenges.first())
            .ok_or_else(|| RegistryError::Unauthorized {
                registry: reg.clone(),
                op: "authorise".into(),
                message: "the registry asks for authentication with a scheme berth does not speak (only Basic and Bearer)".into(),
            })?;
        let header = match challenge {
            Challenge::Basic => {
                let c = self.inner.credentials.as_ref().ok_or_else(|| {
                    RegistryError::Unauthorized {
                        registry: reg.clone(),
                        op: "authorise".into(),
                        message: "the registry requires a login and no credentials were given (docker login, or X-Registry-Auth)".into(),
                    }
                })?;
                use base64::Engine as _;
                let v = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password));
                format!("Basic {v}")
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let token = self
                    .fetch_token(realm, service.as_deref(), scope.as_deref())
                    .await?;
                format!("Bearer {token}")
            }
        };
        let value = HeaderValue::from_str(&header).map_err(|_| RegistryError::Unauthorized {
            registry: reg.clone(),
            op: "authorise".into(),
            message: "the credentials or token contain characters not allowed in a header".into(),
        })?;
        if let Ok(mut a) = self.inner.authorization.lock() {
            *a = Some(value);
        }
        Ok(())
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        let reg = &self.inner.registry;
        let mut url = Url::parse(realm).map_err(|e| RegistryError::BadUrl {
            registry: reg.clone(),
            url: realm.to_string(),
            reason: format!("the token realm is not a URL: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            let mut scopes = self.inner.scopes.clone();
            if let Some(s) = scope {
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
            for s in &scopes {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.inner.http.get(url.clone());
        if let Some(c) = &self.inner.credentials {
            match &c.identity_token {
                None => req = req.basic_auth(&c.username, Some(&c.password)),
                // An identity token is an OAuth2 refresh token: exchanged
                // by a form POST to the same realm (the distribution token
                // spec's "refresh_token" grant).
                Some(refresh) => {
                    let mut form =
                        Url::parse("http://form.invalid/").map_err(|e| RegistryError::BadUrl {
                            registry: reg.clone(),
                            url: realm.to_string(),
                            reason: e.to_string(),
                        })?;
                    {
                        let mut q = form.query_pairs_mut();
                        q.append_pair("grant_type", "refresh_token")
                            .append_pair("refresh_token", refresh)
                            .append_pair("client_id", "berth");
                        for (k, v) in url.query_pairs() {
                            q.append_pair(&k, &v);
                        }
                    }
                    let body = form.query().unwrap_or("").to_string();
                    let mut post = url.clone();
                    post.set_query(None);
                    req = self
                        .inner
                        .http
                        .post(post)
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body);
                }
            }
        }
        let resp = req
            .send()
            .await
            .map_err(http_err(reg, format!("fetch a token from {realm}")))?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: reg.clone(),
                op: format!("fetch a token from {realm}"),
                message: format!("{} (wrong user name or password?)", error_text(resp).await),
            });
        }
        if !resp.status().is_success() {
            return Err(RegistryError::Status {
                registry: reg.clone(),
                op: format!("fetch a token from {realm}"),
                status: resp.status().as_u16(),
                message: error_text(resp).await,
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(http_err(reg, format!("read the token from {realm}")))?;
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Unauthorized {
                registry: reg.clone(),
                op: format!("fetch a token from {realm}"),
                message: format!("the token response is not JSON with a token: {e}"),
            })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Unauthorized {
                registry: reg.clone(),
                op: format!("fetch a token from {realm}"),
                message: "the token response holds no token".into(),
            })
    }

    /// Sends a request built by `build`, answering one 401 challenge and
    /// retrying once. A second 401 is an authentication error.
    pub(crate) async fn send(
        &self,
        op: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let reg = &self.inner.registry;
        for attempt in 0..2 {
            let mut req = build(&self.inner.http);
            let auth = self.inner.authorization.lock().ok().and_then(|a| a.clone());
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(http_err(reg, op))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if attempt == 0 {
                self.authorize(resp.headers()).await?;
                continue;
            }
            return Err(RegistryError::Unauthorized {
                registry: reg.clone(),
                op: op.to_string(),
                message: format!(
                    "{} (wrong user name or password, or no access to {})",
                    error_text(resp).await,
                    self.inner.repository
                ),
            });
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Turns a non-success response into an error naming the operation.
    pub(crate) async fn check(
        &self,
        op: &str,
        resp: Response,
        ok: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = error_text(resp).await;
        Err(match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                RegistryError::Unavailable {
                    registry: self.inner.registry.clone(),
                    op: op.to_string(),
                    status: status.as_u16(),
                    message,
                    retry_after,
                }
            }
            s if s.is_server_error() => RegistryError::Unavailable {
                registry: self.inner.registry.clone(),
                op: op.to_string(),
                status: status.as_u16(),
                message,
                retry_after,
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: self.inner.registry.clone(),
                op: op.to_string(),
                message,
            },
            StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry: self.inner.registry.clone(),
                op: op.to_string(),
                message,
            },
            _ => RegistryError::Status {
                registry: self.inner.registry.clone(),
                op: op.to_string(),
                status: status.as_u16(),
                message,
            },
        })
    }

    /// Fetches a manifest or index by tag or digest, with content
    /// negotiation. Returns its bytes, media type (Content-Type) and digest
    /// (computed; checked against the reference's digest and the
    /// `Docker-Content-Digest` header when either is given).
    pub async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest), RegistryError> {
        let url = self.url(&format!(
            "v2/{}/manifests/{reference}",
            self.inner.repository
        ))?;
        let op = format!("fetch manifest {}:{reference}", self.inner.repository);
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        let resp = self
            .send(&op, |h| h.get(url.clone()).header(ACCEPT, accept.as_str()))
            .await?;
        let resp = self.check(&op, resp, &[StatusCode::OK]).await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok());
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST as u64)
        {
            return Err(RegistryError::TooLarge {
                what: op,
                limit: MAX_MANIFEST,
            });
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(http_err(&self.inner.registry, op.clone()))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_MANIFEST {
                return Err(RegistryError::TooLarge {
                    what: op,
                    limit: MAX_MANIFEST,
                });
            }
        }
        let digest = Digest::of_bytes(&bytes);
        let expected = Digest::parse(reference).ok().or(header_digest);
        if let Some(e) = expected {
            if e != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {}:{reference}", self.inner.repository),
                    expected: e,
                    actual: digest,
                });
            }
        }
        Ok((bytes, media_type, digest))
    }

    /// Starts a blob download; the caller streams the body.
    pub async fn get_blob(&self, digest: &Digest) -> Result<Response, RegistryError> {
        let url = self.url(&format!("v2/{}/blobs/{digest}", self.inner.repository))?;
        let op = format!("fetch blob {digest}");
        let resp = self.send(&op, |h| h.get(url.clone())).await?;
        self.check(&op, resp, &[StatusCode::OK]).await
    }

    /// Starts a blob download from byte `offset` on (`Range: bytes=N-`,
    /// none when 0). Returns the response and whether it continues at
    /// `offset` (206 with a `Content-Range` starting there) or starts over
    /// (200: the registry ignored the range).
    pub async fn get_blob_from(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, bool), RegistryError> {
        if offset == 0 {
            return Ok((self.get_blob(digest).await?, false));
        }
        let url = self.url(&format!("v2/{}/blobs/{digest}", self.inner.repository))?;
        let op = format!("fetch blob {digest} from byte {offset}");
        let range = format!("bytes={offset}-");
        let resp = self
            .send(&op, |h| {
                h.get(url.clone())
                    .header(reqwest::header::RANGE, range.as_str())
            })
            .await?;
        let resp = self
            .check(&op, resp, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT])
            .await?;
        if resp.status() == StatusCode::OK {
            return Ok((resp, false));
        }
        let starts_at = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if starts_at != Some(offset) {
            return Err(RegistryError::Status {
                registry: self.inner.registry.clone(),
                op,
                status: resp.status().as_u16(),
                message: format!(
                    "the partial content does not start at byte {offset} (Content-Range {:?})",
                    resp.headers().get(reqwest::header::CONTENT_RANGE)
                ),
            });
        }
        Ok((resp, true))
    }

    /// Whether the repository has a blob (`HEAD`).
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("v2/{}/blobs/{digest}", self.inner.repository))?;
        let op = format!("check for blob {digest}");
        let resp = self.send(&op, |h| h.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.check(&op, resp, &[]).await.map(|_| false),
        }
    }

    fn location(&self, resp: &Response, op: &str) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Status {
                registry: self.inner.registry.clone(),
                op: op.to_string(),
                status: resp.status().as_u16(),
                message: "the registry sent no Location for the upload".into(),
            })?;
        // Relative locations resolve against the URL that answered.
        resp.url().join(loc).map_err(|e| RegistryError::BadUrl {
            registry: self.inner.registry.clone(),
            url: loc.to_string(),
            reason: e.to_string(),
        })
    }

    /// Tries a cross-repository mount of `digest` from repository `from`.
    /// Returns `None` when mounted, or the upload URL the registry opened
    /// instead (202) for a normal upload.
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<Option<Url>, RegistryError> {
        let mut url = self.url(&format!("v2/{}/blobs/uploads/", self.inner.repository))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let op = format!("mount blob {digest} from {from}");
        let resp = self.send(&op, |h| h.post(url.clone())).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(None);
        }
        let resp = self.check(&op, resp, &[StatusCode::ACCEPTED]).await?;
        Ok(Some(self.location(&resp, &op)?))
    }

    /// Opens an upload session; returns its URL.
    pub async fn start_upload(&self) -> Result<Url, RegistryError> {
        let url = self.url(&format!("v2/{}/blobs/uploads/", self.inner.repository))?;
        let op = format!("start a blob upload to {}", self.inner.repository);
        let resp = self.send(&op, |h| h.post(url.clone())).await?;
        let resp = self.check(&op, resp, &[StatusCode::ACCEPTED]).await?;
        self.location(&resp, &op)
    }

    /// Sends one chunk of an upload (`PATCH` with `Content-Range`); returns
    /// the URL for the next request.
    pub async fn upload_chunk(
        &self,
        upload: &Url,
        offset: u64,
        data: bytes::Bytes,
    ) -> Result<Url, RegistryError> {
        let end = offset + data.len() as u64 - 1;
        let op = format!("upload bytes {offset}-{end} to {}", self.inner.repository);
        let resp = self
            .send(&op, |h| {
                h.request(Method::PATCH, upload.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{end}"))
                    .body(data.clone())
            })
            .await?;
        let resp = self.check(&op, resp, &[StatusCode::ACCEPTED]).await?;
        self.location(&resp, &op)
    }

    /// Completes an upload (`PUT ?digest=`), with the last bytes (or all of
    /// them, for a monolithic upload) as the body.
    pub async fn finish_upload(
        &self,
        upload: &Url,
        digest: &Digest,
        data: bytes::Bytes,
    ) -> Result<(), RegistryError> {
        let mut url = upload.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let op = format!("complete the upload of blob {digest}");
        let resp = self
            .send(&op, |h| {
                h.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        self.check(&op, resp, &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Stores a manifest under a tag or digest; returns the digest the
    /// registry reports (checked against ours).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let url = self.url(&format!(
            "v2/{}/manifests/{reference}",
            self.inner.repository
        ))?;
        let op = format!("put manifest {}:{reference}", self.inner.repository);
        let ours = Digest::of_bytes(&bytes);
        let body = bytes::Bytes::from(bytes);
        let resp = self
            .send(&op, |h| {
                h.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let resp = self
            .check(&op, resp, &[StatusCode::CREATED, StatusCode::OK])
            .await?;
        if let Some(theirs) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok())
        {
            if theirs != ours {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest pushed to {}:{reference}", self.inner.repository),
                    expected: ours,
                    actual: theirs,
                });
            }
        }
        Ok(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_like_dockerd() {
        let c = RegistryClient::new(RegistryOptions {
            insecure_registries: vec!["myreg:5000".into(), "10.0.0.0/8".into()],
            ..RegistryOptions::default()
        });
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("127.1.2.3"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(c.is_insecure("myreg:5000"));
        assert!(c.is_insecure("10.1.2.3:443"));
        assert!(!c.is_insecure("myreg:5001"));
        assert!(!c.is_insecure("docker.io"));
        assert!(!c.is_insecure("11.0.0.1"));
    }
}
