//! API versions ("1.47") and the range berth speaks.
//!
//! dockerd serves every version from its `MinAPIVersion` up to its own; a client names the version
//! it speaks in the path (`/v1.47/containers/json`) after reading `API-Version` from `/_ping`.

use std::fmt;
use std::str::FromStr;

/// An Engine API version, `MAJOR.MINOR`; ordered numerically (1.9 < 1.24 < 1.50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// The major number (1 for every Engine API so far).
    pub major: u16,
    /// The minor number.
    pub minor: u16,
}

/// A version string that is not `MAJOR.MINOR` with decimal numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}: expected MAJOR.MINOR such as 1.47")]
pub struct VersionError(pub String);

impl ApiVersion {
    /// The newest version berth serves: what the docker CLI 28 speaks (API 1.50, docker 28.2).
    /// bollard-stubs' models cover up to 1.53, so every field 1.50 has is there.
    pub const CURRENT: ApiVersion = ApiVersion::new(1, 50);
    /// The oldest version berth serves, dockerd's `MinAPIVersion`.
    pub const MINIMUM: ApiVersion = ApiVersion::new(1, 24);

    /// The version `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Whether berth serves this version.
    pub fn is_supported(self) -> bool {
        (Self::MINIMUM..=Self::CURRENT).contains(&self)
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError(s.to_string());
        let (major, minor) = s.split_once('.').unwrap_or((s, "0"));
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u16>().map_err(|_| bad())
        };
        Ok(Self::new(number(major)?, number(minor)?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl serde::Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let v: ApiVersion = "1.47".parse().expect("parse 1.47");
        assert_eq!(v, ApiVersion::new(1, 47));
        assert!("1.9".parse::<ApiVersion>().expect("1.9") < "1.24".parse().expect("1.24"));
        assert_eq!("1".parse::<ApiVersion>().expect("1"), ApiVersion::new(1, 0));
        assert_eq!(v.to_string(), "1.47");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "1.", ".4", "1.x", "v1.40", "1.4.5", "99999.1"] {
            assert!(
                bad.parse::<ApiVersion>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn supported_range() {
        assert!(ApiVersion::CURRENT.is_supported());
        assert!(ApiVersion::MINIMUM.is_supported());
        assert!(!ApiVersion::new(1, 23).is_supported());
        assert!(!ApiVersion::new(1, 99).is_supported());
    }
}
