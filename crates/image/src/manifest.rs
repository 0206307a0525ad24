//! Manifests, indexes and configs: OCI image-spec ones and Docker's schema 2
//! manifests and manifest lists, read through oci-spec's image types (Docker's
//! schema 2 has the same shape as OCI's, only other media types), and the
//! choice of one platform's manifest from an index.

use crate::digest::Digest;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::fmt;
use std::str::FromStr;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer media type.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer media type.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker schema 1 signed manifest media type (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 manifest media type (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The `Accept` list a registry client sends for manifests, best first.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// Errors reading manifests, indexes and configs or choosing a platform.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The JSON does not parse as the expected document.
    #[error("{what} {digest}: not a valid {what}: {source}")]
    Parse {
        /// "manifest", "index" or "image config".
        what: &'static str,
        /// Digest of the document, or "(unknown digest)".
        digest: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// Docker schema 1 manifests are not supported.
    #[error("manifest {0}: Docker schema 1 manifests are not supported (re-push the image with a current client)")]
    Schema1(String),
    /// The media type is not a manifest or index type.
    #[error("manifest {digest}: media type {media_type:?} is not an image manifest or index")]
    UnknownMediaType {
        /// Digest of the document.
        digest: String,
        /// The media type found.
        media_type: String,
    },
    /// No entry of the index fits the platform.
    #[error("index {digest}: no manifest for platform {platform} (available: {available})")]
    NoMatchingPlatform {
        /// Digest of the index.
        digest: String,
        /// The platform asked for.
        platform: String,
        /// The platforms listed.
        available: String,
    },
    /// A platform string did not parse.
    #[error(
        "invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
    )]
    BadPlatform(String),
    /// A digest inside a document is malformed.
    #[error("{what}: bad digest {value:?}: {reason}")]
    BadDigest {
        /// Where the digest was found.
        what: String,
        /// The digest string.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// An operating system, CPU architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// GOOS value, e.g. `linux`.
    pub os: String,
    /// GOARCH value, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8` for arm64 or `v7` for arm.
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, the default on this host class.
    pub fn linux_amd64() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// The platform of the running host (Go names).
    pub fn host() -> Self {
        let arch = normalize_arch(std::env::consts::ARCH);
        Platform {
            os: "linux".into(),
            architecture: arch.0.into(),
            variant: arch.1.map(str::to_string),
        }
    }

    /// Whether an index entry's platform satisfies this requested one.
    /// arm64 without variant equals arm64/v8, and a request without a variant
    /// accepts any variant.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let default_variant = |p: &Platform| match (p.architecture.as_str(), &p.variant) {
            (_, Some(v)) => Some(v.clone()),
            ("arm64", None) => Some("v8".to_string()),
            _ => None,
        };
        match &self.variant {
            None => true,
            Some(_) => default_variant(self) == default_variant(candidate),
        }
    }

    fn from_oci(p: &oci_spec::image::Platform) -> Self {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }
    }
}

/// Maps the names other tools use for architectures to Go's.
fn normalize_arch(arch: &str) -> (&str, Option<&str>) {
    match arch {
        "x86_64" | "x86-64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "armhf" | "armv7l" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        "i386" | "i686" | "x86" => ("386", None),
        other => (other, None),
    }
}

impl FromStr for Platform {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ManifestError::BadPlatform(s.to_string());
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let ok = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad());
        }
        let os = parts[0].to_ascii_lowercase();
        let (arch, implied) = normalize_arch(parts[1]);
        let variant = parts
            .get(2)
            .map(|v| v.to_string())
            .or(implied.map(str::to_string));
        Ok(Platform {
            os,
            architecture: arch.to_string(),
            variant,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest or an index, as fetched from a registry or read from a layout.
#[derive(Debug, Clone)]
pub enum ManifestDocument {
    /// A single-platform image manifest (OCI or Docker schema 2).
    Image(Box<ImageManifest>),
    /// A multi-platform index (OCI index or Docker manifest list).
    Index(Box<ImageIndex>),
}

/// Peeks at a JSON document's own `mediaType` and `manifests` fields.
#[derive(serde::Deserialize)]
struct Sniff {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    manifests: Option<serde_json::Value>,
}

impl ManifestDocument {
    /// Parses a manifest or index. `media_type` is the Content-Type a registry
    /// sent or the descriptor's media type, when known; otherwise the
    /// document's own `mediaType` field (or its shape) decides.
    pub fn parse(
        bytes: &[u8],
        media_type: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Self, ManifestError> {
        let dstr = digest.map_or_else(|| "(unknown digest)".to_string(), |d| d.to_string());
        let sniff: Sniff =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
                what: "manifest",
                digest: dstr.clone(),
                source,
            })?;
        let mt = media_type
            .filter(|m| !m.is_empty() && *m != "application/json")
            .map(str::to_string)
            .or(sniff.media_type.clone());
        let is_index = match mt.as_deref() {
            Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
            Some(DOCKER_SCHEMA1) | Some(DOCKER_SCHEMA1_SIGNED) => {
                return Err(ManifestError::Schema1(dstr))
            }
            Some(other) if sniff.media_type.is_none() || media_type.is_some() => {
                return Err(ManifestError::UnknownMediaType {
                    digest: dstr,
                    media_type: other.to_string(),
                })
            }
            _ => {
                if sniff.schema_version == Some(1) {
                    return Err(ManifestError::Schema1(dstr));
                }
                sniff.manifests.is_some()
            }
        };
        if is_index {
            serde_json::from_slice(bytes)
                .map(|i| ManifestDocument::Index(Box::new(i)))
                .map_err(|source| ManifestError::Parse {
                    what: "index",
                    digest: dstr,
                    source,
                })
        } else {
            serde_json::from_slice(bytes)
                .map(|m| ManifestDocument::Image(Box::new(m)))
                .map_err(|source| ManifestError::Parse {
                    what: "manifest",
                    digest: dstr,
                    source,
                })
        }
    }
}

/// Parses an image config (OCI or Docker; the same JSON).
pub fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ImageConfiguration, ManifestError> {
    serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        what: "image config",
        digest: digest.to_string(),
        source,
    })
}

/// The diff IDs a config lists, parsed.
pub fn diff_ids(
    config: &ImageConfiguration,
    digest: &Digest,
) -> Result<Vec<Digest>, ManifestError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            Digest::parse(d).map_err(|e| ManifestError::BadDigest {
                what: format!("image config {digest} rootfs.diff_ids"),
                value: d.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Converts an oci-spec digest into berth's (sha256 only).
pub fn digest_of(d: &oci_spec::image::Digest, what: &str) -> Result<Digest, ManifestError> {
    Digest::parse(d.as_ref()).map_err(|e| ManifestError::BadDigest {
        what: what.to_string(),
        value: d.to_string(),
        reason: e.to_string(),
    })
}

/// Chooses the manifest for `platform` from an index. Entries that are not
/// manifests (attestations, nested indexes without platform) are skipped.
/// Among several matches, one whose variant equals the request wins, then the
/// first listed (the index's own preference order).
pub fn select_platform(
    index: &ImageIndex,
    platform: &Platform,
    index_digest: Option<&Digest>,
) -> Result<oci_spec::image::Descriptor, ManifestError> {
    let mut best: Option<(&oci_spec::image::Descriptor, bool)> = None;
    for desc in index.manifests() {
        let Some(p) = desc.platform() else { continue };
        let cand = Platform::from_oci(p);
        if !platform.matches(&cand) {
            continue;
        }
        let exact = cand.variant == platform.variant;
        match best {
            Some((_, true)) => {}
            Some((_, false)) if !exact => {}
            _ => best = Some((desc, exact)),
        }
    }
    match best {
        Some((d, _)) => Ok(d.clone()),
        None => Err(ManifestError::NoMatchingPlatform {
            digest: index_digest.map_or_else(|| "(unknown digest)".to_string(), |d| d.to_string()),
            platform: platform.to_string(),
            available: index
                .manifests()
                .iter()
                .filter_map(|d| {
                    d.platform()
                        .as_ref()
                        .map(|p| Platform::from_oci(p).to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p: Platform = "linux/arm64".parse().expect("platform");
        assert!(p.matches(&"linux/arm64/v8".parse().expect("platform")));
        let p: Platform = "linux/arm64/v8".parse().expect("platform");
        assert!(p.matches(&"linux/arm64".parse().expect("platform")));
        assert!(!p.matches(&"linux/amd64".parse().expect("platform")));
        let p: Platform = "linux/x86_64".parse().expect("platform");
        assert_eq!(p, Platform::linux_amd64());
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
        assert_eq!(Platform::linux_amd64().to_string(), "linux/amd64");
    }

    #[test]
    fn selects_from_docker_manifest_list() {
        let d1 = Digest::of_bytes(b"1");
        let d2 = Digest::of_bytes(b"2");
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{d1}","size":10,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{d2}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{d1}","size":10,"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
        );
        let doc = ManifestDocument::parse(list.as_bytes(), None, None).expect("parse");
        let ManifestDocument::Index(index) = doc else {
            panic!("expected an index")
        };
        let chosen = select_platform(&index, &Platform::linux_amd64(), None).expect("amd64");
        assert_eq!(chosen.digest().as_ref(), d2.to_string());
        let err = select_platform(&index, &"linux/s390x".parse().expect("p"), None)
            .expect_err("no s390x");
        assert!(err.to_string().contains("linux/arm/v7"), "{err}");
    }

    #[test]
    fn refuses_schema1() {
        let doc = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            ManifestDocument::parse(doc, None, None),
            Err(ManifestError::Schema1(_))
        ));
    }
}
