//! `docker login` as the daemon performs it (`POST /auth`): the credentials
//! are checked against the registry, never stored. The registry's `/v2/` is
//! pinged; a 401 is answered as its challenge asks (a token fetched from
//! the Bearer realm with the credentials, or Basic), and the ping is tried
//! again with that authorisation: a 200 means the login is good.
//!
//! Errors use dockerd's wording, since the docker CLI prints them as they
//! come: a token service's refusal is `Get "<ping URL>": unauthorized:
//! <reason>`, a ping that still fails is `login attempt to <ping URL>
//! failed with status: 401 Unauthorized`.

use super::auth::{parse_challenge, Challenge, Credentials, DOCKER_HUB_AUTH_KEY};
use super::client::{RegistryClient, DOCKER_HUB_API};
use super::RegistryError;
use crate::reference::DEFAULT_DOMAIN;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

/// The names `docker login` accepts for Docker Hub, besides an empty address.
const DOCKER_HUB_NAMES: [&str; 2] = [DEFAULT_DOMAIN, "index.docker.io"];

/// The registry a `docker login` server address names, as a reference's
/// domain: `docker.io` for Docker Hub (an empty address, `docker.io`,
/// `index.docker.io`, `https://index.docker.io/v1/`), else the
/// `host[:port]` of `[http[s]://]host[:port][/path]`.
pub fn login_registry(server_address: &str) -> Result<String, RegistryError> {
    let address = server_address.trim();
    if address.is_empty() || address == DOCKER_HUB_AUTH_KEY {
        return Ok(DEFAULT_DOMAIN.to_string());
    }
    let rest = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address);
    let host = rest.split('/').next().unwrap_or(rest);
    let bad = |reason: &str| RegistryError::BadServerAddress {
        address: server_address.to_string(),
        reason: format!("{server_address:?}: {reason}"),
    };
    if host.is_empty() {
        return Err(bad("no registry host in it"));
    }
    if host.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@' || c == '?') {
        return Err(bad(
            "the host part holds characters a host name cannot have",
        ));
    }
    if DOCKER_HUB_NAMES.contains(&host.to_ascii_lowercase().as_str()) {
        return Ok(DEFAULT_DOMAIN.to_string());
    }
    Ok(host.to_string())
}

/// `401 Unauthorized` and the like, as Go's `http.StatusText` prints them.
fn status_parts(status: StatusCode) -> (u16, String) {
    (
        status.as_u16(),
        status.canonical_reason().unwrap_or("").to_string(),
    )
}

/// reqwest's own text says only "error sending request"; the reason is at the end of the
/// chain of sources (a refused connection, a TLS alert, a name that does not resolve).
fn unreachable(url: &str, err: &reqwest::Error) -> RegistryError {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    RegistryError::LoginUnreachable {
        url: url.to_string(),
        reason,
    }
}

fn failed(url: &str, status: StatusCode) -> RegistryError {
    let (status, reason) = status_parts(status);
    RegistryError::LoginFailed {
        url: url.to_string(),
        status,
        reason,
    }
}

#[derive(serde::Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    #[serde(default)]
    details: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Why a token service refused, as the distribution client words it: an
/// OAuth error in the challenge, the first entry of an `errors` body
/// (`UNAUTHORIZED` printed as `unauthorized`), Docker Hub's `details`, or
/// the bare code's default message.
fn refusal_reason(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    let bearer_error = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let lower = v.to_ascii_lowercase();
            if !lower.starts_with("bearer") {
                return None;
            }
            let params = super::auth::challenge_params(v);
            let code = match params.get("error").map(String::as_str) {
                Some("invalid_token") => "unauthorized",
                Some("insufficient_scope") => "denied",
                _ => return None,
            };
            let message = params
                .get("error_description")
                .filter(|d| !d.is_empty())
                .cloned()
                .unwrap_or_else(|| default_message(code).to_string());
            Some(format!("{code}: {message}"))
        });
    if let Some(reason) = bearer_error {
        return reason;
    }
    if let Ok(b) = serde_json::from_slice::<ErrorsBody>(body) {
        if let Some(e) = b.errors.first() {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            let message = if e.message.is_empty() {
                default_message(&code).to_string()
            } else {
                e.message.clone()
            };
            return format!("{code}: {message}");
        }
        if let Some(d) = b.details.filter(|d| !d.is_empty()) {
            if status == StatusCode::UNAUTHORIZED {
                return format!("unauthorized: {d}");
            }
            return format!("denied: {d}");
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        return "unauthorized: authentication required".to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let (code, reason) = status_parts(status);
    if text.is_empty() || text.len() > 200 {
        format!("the token service answered {code} {reason}")
    } else {
        format!("the token service answered {code} {reason}: {text}")
    }
}

fn default_message(code: &str) -> &'static str {
    match code {
        "unauthorized" => "authentication required",
        "denied" => "requested access to the resource is denied",
        _ => "no reason given",
    }
}

impl RegistryClient {
    /// Checks `credentials` against `registry` (a domain from
    /// [`login_registry`]) as dockerd's `POST /auth` does. https first;
    /// plain http too for loopback and insecure registries (as pull and
    /// push). Nothing is stored: a success only says the registry accepted
    /// the credentials.
    pub async fn check_login(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), RegistryError> {
        let api_host = if registry == DEFAULT_DOMAIN {
            DOCKER_HUB_API
        } else {
            registry
        };
        let insecure = self.is_insecure(registry);
        let http = self.http_client(registry, !insecure)?;
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last = None;
        for scheme in schemes {
            let url = format!("{scheme}://{api_host}/v2/");
            match http.get(&url).send().await {
                Ok(ping) => return login_with(&http, registry, &url, ping, credentials).await,
                Err(source) => {
                    tracing::debug!(registry, %url, error = %source, "login ping failed");
                    last = Some(unreachable(&url, &source));
                }
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::BadUrl {
            registry: registry.to_string(),
            url: api_host.to_string(),
            reason: "no scheme to reach it by".to_string(),
        }))
    }
}

/// Answers the ping's challenge with the credentials and pings again.
async fn login_with(
    http: &reqwest::Client,
    registry: &str,
    url: &str,
    ping: reqwest::Response,
    credentials: &Credentials,
) -> Result<(), RegistryError> {
    match ping.status() {
        StatusCode::OK => return Ok(()),
        StatusCode::UNAUTHORIZED => {}
        other => return Err(failed(url, other)),
    }
    let challenges: Vec<Challenge> = ping
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .collect();
    let bearer = challenges.iter().find_map(|c| match c {
        Challenge::Bearer { realm, service, .. } => Some((realm, service)),
        Challenge::Basic => None,
    });
    let authorization = if let Some((realm, service)) = bearer {
        let token =
            fetch_token(http, registry, url, realm, service.as_deref(), credentials).await?;
        format!("Bearer {token}")
    } else if challenges.contains(&Challenge::Basic) {
        use base64::Engine as _;
        let pair = format!("{}:{}", credentials.username, credentials.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    } else {
        return Err(failed(url, StatusCode::UNAUTHORIZED));
    };
    let resp = http
        .get(url)
        .header(AUTHORIZATION, authorization)
        .send()
        .await
        .map_err(|source| unreachable(url, &source))?;
    if resp.status() == StatusCode::OK {
        Ok(())
    } else {
        Err(failed(url, resp.status()))
    }
}

/// A token for no particular repository (a login asks for none), fetched
/// with Basic credentials, or by the refresh-token grant for an identity
/// token.
async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    ping_url: &str,
    realm: &str,
    service: Option<&str>,
    credentials: &Credentials,
) -> Result<String, RegistryError> {
    let bad_url = |reason: String| RegistryError::BadUrl {
        registry: registry.to_string(),
        url: realm.to_string(),
        reason,
    };
    let mut url =
        Url::parse(realm).map_err(|e| bad_url(format!("the token realm is not a URL: {e}")))?;
    let req = match &credentials.identity_token {
        Some(refresh) => {
            let mut form =
                Url::parse("http://form.invalid/").map_err(|e| bad_url(e.to_string()))?;
            {
                let mut q = form.query_pairs_mut();
                q.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "berth");
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
            }
            http.post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.query().unwrap_or("").to_string())
        }
        None => {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                if !credentials.username.is_empty() {
                    q.append_pair("account", &credentials.username);
                }
            }
            let req = http.get(url);
            if credentials.username.is_empty() && credentials.password.is_empty() {
                req
            } else {
                req.basic_auth(&credentials.username, Some(&credentials.password))
            }
        }
    };
    let resp = req.send().await.map_err(|source| RegistryError::Http {
        registry: registry.to_string(),
        op: format!("fetch a token from {realm}"),
        source,
    })?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|source| RegistryError::Http {
        registry: registry.to_string(),
        op: format!("read the token from {realm}"),
        source,
    })?;
    if !status.is_success() {
        return Err(RegistryError::LoginRefused {
            url: ping_url.to_string(),
            reason: refusal_reason(status, &headers, &body),
        });
    }
    let t: TokenBody = serde_json::from_slice(&body).map_err(|e| RegistryError::LoginRefused {
        url: ping_url.to_string(),
        reason: format!("the token service's answer is not JSON with a token: {e}"),
    })?;
    t.token
        .or(t.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::LoginRefused {
            url: ping_url.to_string(),
            reason: "the token service's answer holds no token".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_name_registries_as_dockerd_reads_them() {
        for hub in [
            "",
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "https://docker.io",
        ] {
            assert_eq!(login_registry(hub).expect(hub), "docker.io", "{hub:?}");
        }
        for (addr, want) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
            ("https://registry.example.com/v1/", "registry.example.com"),
            ("[::1]:5000", "[::1]:5000"),
            ("registry-1.docker.io", "registry-1.docker.io"),
        ] {
            assert_eq!(login_registry(addr).expect(addr), want, "{addr:?}");
        }
        assert!(login_registry("https:///v2/").is_err());
        assert!(login_registry("a b:5000").is_err());
    }

    #[test]
    fn refusals_read_as_the_distribution_client_words_them() {
        let none = HeaderMap::new();
        assert_eq!(
            refusal_reason(
                StatusCode::UNAUTHORIZED,
                &none,
                br#"{"details":"incorrect username or password"}"#
            ),
            "unauthorized: incorrect username or password"
        );
        assert_eq!(
            refusal_reason(
                StatusCode::UNAUTHORIZED,
                &none,
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad creds"}]}"#
            ),
            "unauthorized: bad creds"
        );
        assert_eq!(
            refusal_reason(StatusCode::UNAUTHORIZED, &none, b"nope"),
            "unauthorized: authentication required"
        );
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            reqwest::header::HeaderValue::from_static(
                r#"Bearer realm="x",error="invalid_token",error_description="token expired""#,
            ),
        );
        assert_eq!(
            refusal_reason(StatusCode::UNAUTHORIZED, &h, b""),
            "unauthorized: token expired"
        );
    }
}
