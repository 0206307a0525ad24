//! Registry credentials and the challenges registries answer with.
//!
//! Credentials come from three places, the first that has some winning: an
//! explicit argument (the daemon decodes the client's `X-Registry-Auth`
//! header with [`Credentials::from_x_registry_auth`]), then
//! `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) as `docker
//! login` writes it (`auths.<registry>.auth`, base64 of `user:password`).
//! Credential helpers (`credsStore`, `credHelpers`) would mean executing
//! another program on the daemon's behalf; they are refused with an error
//! that says so, rather than silently pulling anonymously.

use super::RegistryError;
use base64::Engine as _;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The key `docker login` uses for Docker Hub in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or an identity token) for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or personal access token.
    pub password: String,
    /// An OAuth2 refresh token (`identitytoken`) when the login produced one.
    pub identity_token: Option<String>,
}

impl fmt::Debug for Credentials {
    // Never print a secret, even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(serde::Deserialize, Default)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default, alias = "identitytoken")]
    identity_token: Option<String>,
    #[serde(default, rename = "serveraddress")]
    _server_address: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthConfig>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

/// Reduces a `config.json` key (`https://localhost:5000/v2/`,
/// `localhost:5000`) to the registry's host\[:port\].
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The names a registry domain may be stored under.
fn candidate_keys(registry: &str) -> Vec<&str> {
    if registry == crate::reference::DEFAULT_DOMAIN {
        vec![
            DOCKER_HUB_AUTH_KEY,
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
    } else {
        vec![registry]
    }
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    fn from_auth_config(a: AuthConfig, source: &str) -> Result<Option<Self>, RegistryError> {
        if let Some(tok) = a.identity_token.filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials {
                username: a.username,
                password: String::new(),
                identity_token: Some(tok),
            }));
        }
        if !a.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.auth.trim())
                .map_err(|e| RegistryError::BadCredentials {
                    source_name: source.to_string(),
                    reason: format!("the auth field is not base64: {e}"),
                })?;
            let text = String::from_utf8(raw).map_err(|_| RegistryError::BadCredentials {
                source_name: source.to_string(),
                reason: "the auth field is not UTF-8".into(),
            })?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| RegistryError::BadCredentials {
                    source_name: source.to_string(),
                    reason: "the auth field is not user:password".into(),
                })?;
            return Ok(Some(Credentials::new(u, p)));
        }
        if !a.username.is_empty() || !a.password.is_empty() {
            return Ok(Some(Credentials::new(a.username, a.password)));
        }
        Ok(None)
    }

    /// Decodes the `X-Registry-Auth` header the Docker CLI sends (base64url
    /// JSON with `username`, `password`, `identitytoken`). An empty header
    /// or `{}` means anonymous.
    pub fn from_x_registry_auth(header: &str) -> Result<Option<Self>, RegistryError> {
        let h = header.trim();
        if h.is_empty() {
            return Ok(None);
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let raw = engines
            .iter()
            .find_map(|e| e.decode(h).ok())
            .ok_or_else(|| RegistryError::BadCredentials {
                source_name: "X-Registry-Auth".into(),
                reason: "not base64".into(),
            })?;
        let a: AuthConfig =
            serde_json::from_slice(&raw).map_err(|e| RegistryError::BadCredentials {
                source_name: "X-Registry-Auth".into(),
                reason: format!("not a JSON auth config: {e}"),
            })?;
        Self::from_auth_config(a, "X-Registry-Auth")
    }

    /// The docker CLI's config file: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub fn default_docker_config() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
    }

    /// Looks up `registry` (a reference's domain) in a docker `config.json`.
    /// A missing file means no credentials; a registry handled by a
    /// credential helper is refused with [`RegistryError::CredentialHelper`].
    pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Self>, RegistryError> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RegistryError::ReadConfig {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let source_name = path.display().to_string();
        let mut config: DockerConfig =
            serde_json::from_slice(&data).map_err(|e| RegistryError::BadCredentials {
                source_name: source_name.clone(),
                reason: e.to_string(),
            })?;
        let keys = candidate_keys(registry);
        if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(*k)) {
            return Err(RegistryError::CredentialHelper {
                registry: registry.to_string(),
                helper: helper.clone(),
                path: path.to_path_buf(),
            });
        }
        let found = config
            .auths
            .keys()
            .find(|k| keys.iter().any(|c| key_host(k) == key_host(c)))
            .cloned();
        if let Some(k) = found {
            let a = config.auths.remove(&k).unwrap_or_default();
            if let Some(c) = Self::from_auth_config(a, &source_name)? {
                return Ok(Some(c));
            }
        }
        if let Some(helper) = config.creds_store {
            // With a store, `auths` entries are empty markers; the secret is
            // in the helper.
            if found_marker(&config.auths, &keys) || !helper.is_empty() {
                return Err(RegistryError::CredentialHelper {
                    registry: registry.to_string(),
                    helper,
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(None)
    }
}

fn found_marker(auths: &HashMap<String, AuthConfig>, keys: &[&str]) -> bool {
    auths
        .keys()
        .any(|k| keys.iter().any(|c| key_host(k) == key_host(c)))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the credentials with every request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: fetch a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (RFC 7235 auth-params, quoted
/// or not). Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// The auth-params of a `WWW-Authenticate` value (after its scheme), keys
/// lower-cased: what a challenge's `error` and `error_description` say.
pub(crate) fn challenge_params(header: &str) -> HashMap<String, String> {
    let header = header.trim();
    parse_params(header.split_once(' ').map(|(_, rest)| rest).unwrap_or(""))
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[start..i].trim().to_ascii_lowercase();
        i += 1;
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = s[vs..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn reads_docker_config_and_x_registry_auth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"http://localhost:5000/v2/":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"auth":"{auth}"}}}},
                   "credHelpers":{{"quay.io":"secretservice"}}}}"#
            ),
        )
        .expect("write config");
        let c = Credentials::from_docker_config(&path, "localhost:5000")
            .expect("read")
            .expect("found");
        assert_eq!(c, Credentials::new("alice", "s3cret"));
        assert!(Credentials::from_docker_config(&path, "docker.io")
            .expect("read")
            .is_some());
        assert!(Credentials::from_docker_config(&path, "other:1")
            .expect("read")
            .is_none());
        let err = Credentials::from_docker_config(&path, "quay.io").expect_err("helper");
        assert!(err.to_string().contains("secretservice"), "{err}");
        assert!(!format!("{c:?}").contains("s3cret"));

        let header = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"bob","password":"pw","serveraddress":"localhost:5000"}"#);
        assert_eq!(
            Credentials::from_x_registry_auth(&header).expect("decode"),
            Some(Credentials::new("bob", "pw"))
        );
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert_eq!(
            Credentials::from_x_registry_auth(&empty).expect("decode"),
            None
        );
    }
}
