//! The `X-Registry-Auth` header of pull and push: base64url-encoded JSON credentials.

use serde::{Deserialize, Serialize};

/// Registry credentials as the docker CLI sends them (moby's `registry.AuthConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    /// User name.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    /// Password or token.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub password: String,
    /// `base64(username:password)`, as in a docker config file.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth: String,
    /// The registry the credentials are for.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub serveraddress: String,
    /// A refresh token for the registry's token service.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub identitytoken: String,
    /// A bearer token sent to the registry as is.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub registrytoken: String,
}

/// A JSON `null` read as the empty string, as Go's decoder leaves a string field alone on null:
/// bollard (and so berth's own CLI) sends every field it has no value for as `null`.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A header value that is not base64 of a JSON credentials object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid X-Registry-Auth header: {0}")]
pub struct AuthError(String);

/// Decodes base64 in either alphabet (standard or URL-safe), with or without padding: the docker
/// CLI sends URL-safe, older SDKs the standard one.
fn base64_decode(text: &str) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, c) in text.trim_end_matches('=').bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => {
                return Err(AuthError(format!(
                    "byte {i} ({:?}) is not base64",
                    c as char
                )))
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

impl RegistryAuth {
    /// Reads the header; an empty header means anonymous access, as in dockerd.
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        let json = base64_decode(value)?;
        serde_json::from_slice(&json).map_err(|e| AuthError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_alphabets() {
        // {"username":"u","password":"p?>"} in URL-safe base64 without padding.
        let auth = RegistryAuth::from_header("eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InA_PiJ9")
            .expect("url-safe");
        assert_eq!(auth.username, "u");
        assert_eq!(auth.password, "p?>");
        let std = RegistryAuth::from_header("eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InA/PiJ9")
            .expect("standard");
        assert_eq!(std, auth);
        assert_eq!(
            RegistryAuth::from_header("").expect("empty"),
            RegistryAuth::default()
        );
        assert!(RegistryAuth::from_header("!!").is_err());
        // base64 of {"username":"u","password":null,"email":null}
        let nulls = RegistryAuth::from_header(
            "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6bnVsbCwiZW1haWwiOm51bGx9",
        )
        .expect("nulls are empty strings");
        assert_eq!(nulls.username, "u");
        assert_eq!(nulls.password, "");
    }
}
