//! Image references (`[domain/]path[:tag][@digest]`) with Docker's grammar
//! and normalisation: a name without a domain lives on `docker.io`, and a
//! one-component name on docker.io lives under `library/`.
//!
//! The grammar is the one of the distribution project's reference package
//! (path components `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`, tags
//! `\w[\w.-]{0,127}`, a name of at most 255 characters); it is checked by hand
//! here because the rules are short and a regex engine would be the crate's
//! largest dependency.

use crate::digest::Digest;
use std::fmt;
use std::str::FromStr;

/// The registry a name without a domain belongs to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The namespace of one-component names on the default registry.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag assumed when neither tag nor digest is given.
pub const DEFAULT_TAG: &str = "latest";

const NAME_TOTAL_MAX: usize = 255;

/// Why a reference string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Empty string.
    #[error("invalid reference format: the reference is empty")]
    Empty,
    /// Upper-case letters in the repository path.
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    /// A 64-hex string, which Docker reserves for image IDs.
    #[error("invalid repository name {0:?}: cannot specify 64-byte hexadecimal strings")]
    LooksLikeId(String),
    /// A path component breaks the grammar.
    #[error("invalid reference format: repository name component {component:?} of {reference:?} must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*")]
    BadComponent {
        /// The whole reference.
        reference: String,
        /// The offending component.
        component: String,
    },
    /// The domain breaks the grammar.
    #[error("invalid reference format: registry domain {domain:?} of {reference:?} is not a valid host[:port]")]
    BadDomain {
        /// The whole reference.
        reference: String,
        /// The offending domain.
        domain: String,
    },
    /// The tag breaks the grammar.
    #[error("invalid reference format: tag {tag:?} of {reference:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    BadTag {
        /// The whole reference.
        reference: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest part is malformed or not sha256.
    #[error("invalid reference format: digest of {reference:?}: {reason}")]
    BadDigest {
        /// The whole reference.
        reference: String,
        /// Why the digest was refused.
        reason: String,
    },
    /// The name is longer than 255 characters.
    #[error("invalid reference format: repository name {0:?} is longer than 255 characters")]
    TooLong(String),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Checks one path component against `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // IPv6 literal: [addr]:port or [addr].
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => ("ok", Some(p)),
            None if after.is_empty() => ("ok", None),
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host == "ok" && d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Parses and normalises a reference, as `docker pull` reads its argument.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest = Digest::parse(d).map_err(|e| ReferenceError::BadDigest {
                    reference: s.to_string(),
                    reason: e.to_string(),
                })?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::BadTag {
                    reference: s.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::LooksLikeId(name.to_string()));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                if !valid_domain(first) {
                    return Err(ReferenceError::BadDomain {
                        reference: s.to_string(),
                        domain: first.to_string(),
                    });
                }
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase(path));
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::BadComponent {
                    reference: s.to_string(),
                    component: component.to_string(),
                });
            }
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path
        };
        if domain.len() + 1 + path.len() > NAME_TOTAL_MAX {
            return Err(ReferenceError::TooLong(format!("{domain}/{path}")));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Parses and, when neither tag nor digest is given, adds `:latest`.
    pub fn parse_with_default_tag(s: &str) -> Result<Self, ReferenceError> {
        Ok(Self::parse(s)?.with_default_tag())
    }

    /// This reference, with `:latest` added if it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// This repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::BadTag {
                reference: self.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// This repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The short form Docker prints: `busybox:latest` rather than
    /// `docker.io/library/busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut name = if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse_with_default_tag(s)
            .expect("valid reference")
            .to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("user/app:1.0"), "docker.io/user/app:1.0");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(full("localhost/a"), "localhost/a:latest");
        assert_eq!(full("[::1]:5000/a"), "[::1]:5000/a:latest");
        assert_eq!(full("quay.io/x/y-z__w.v"), "quay.io/x/y-z__w.v:latest");
        let d = Digest::of_bytes(b"x");
        let r = Reference::parse(&format!("busybox@{d}")).expect("digest ref");
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.tag(), None);
        assert_eq!(
            Reference::parse("docker.io/library/busybox:1")
                .expect("valid")
                .familiar(),
            "busybox:1"
        );
    }

    #[test]
    fn refuses_with_reasons() {
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            Reference::parse("a/b_-c"),
            Err(ReferenceError::BadComponent { .. })
        ));
        assert!(matches!(
            Reference::parse("a:"),
            Err(ReferenceError::BadTag { .. })
        ));
        assert!(matches!(
            Reference::parse("a:.x"),
            Err(ReferenceError::BadTag { .. })
        ));
        assert!(matches!(
            Reference::parse(&"a".repeat(64).replace('a', "b")),
            Err(ReferenceError::LooksLikeId(_))
        ));
        assert!(matches!(
            Reference::parse("a@sha256:zz"),
            Err(ReferenceError::BadDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("-bad.host/x"),
            Err(ReferenceError::BadDomain { .. })
        ));
        assert!(Reference::parse(&"a".repeat(300)).is_err());
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
    }
}
