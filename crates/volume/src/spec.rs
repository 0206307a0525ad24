//! `-v SRC:DST[:MODES]` as dockerd's Linux parser reads it, and the checks every mount's
//! destination gets. Destinations are only checked as strings here: the runtime resolves them
//! inside the container's rootfs, never on the host.

use std::path::{Component, Path, PathBuf};

use crate::error::MountError;

/// What a mount takes its content from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A path on the host (an absolute path).
    Host(PathBuf),
    /// A named volume, made on first use.
    Named(String),
    /// A new anonymous volume (only a destination was given).
    Anonymous,
}

/// A parsed `-v` specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Where the content comes from.
    pub source: MountSource,
    /// The path in the container, as given (absolute).
    pub destination: String,
    /// Mounted read-only (`ro`).
    pub read_only: bool,
    /// The bind propagation asked for (`shared`, `rslave`, …), if any.
    pub propagation: Option<String>,
    /// Skip the copy of the image's content into a fresh volume (`nocopy`).
    pub nocopy: bool,
    /// The mode string as given (what inspect shows as `Mode`).
    pub mode: String,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// Checks a propagation name (`bind-propagation=`, a `-v` mode); returns it.
pub fn parse_propagation(p: &str) -> Result<String, MountError> {
    if PROPAGATIONS.contains(&p) {
        Ok(p.to_string())
    } else {
        Err(MountError::InvalidPropagation(p.to_string()))
    }
}

/// Checks a mount destination as dockerd does: absolute, and not `/`. `kind` is the mount
/// type named in the message (`bind`, `volume`, `tmpfs`).
pub fn check_destination(kind: &str, dst: &str) -> Result<(), MountError> {
    if !dst.starts_with('/') {
        return Err(MountError::RelativeDestination {
            kind: kind.to_string(),
            path: dst.to_string(),
        });
    }
    let is_root = Path::new(dst)
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir));
    if is_root {
        return Err(MountError::RootDestination {
            kind: kind.to_string(),
        });
    }
    Ok(())
}

/// Parses a `-v`/`Binds` entry: `DST`, `SRC:DST` or `SRC:DST:MODES`, where SRC is an absolute
/// host path or a volume name and MODES is a comma-separated list of `ro`/`rw`, `z`/`Z`, a
/// propagation, `nocopy` (volumes only) and the ignored consistency modes.
pub fn parse_bind(raw: &str) -> Result<MountSpec, MountError> {
    let invalid = || MountError::InvalidSpec(raw.to_string());
    let parts: Vec<&str> = raw.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(invalid()),
    };
    if dst.is_empty() || (parts.len() > 1 && src.is_empty()) {
        return Err(invalid());
    }
    let source = if src.is_empty() {
        MountSource::Anonymous
    } else if src.starts_with('/') {
        MountSource::Host(PathBuf::from(src))
    } else {
        MountSource::Named(src.to_string())
    };
    let kind = match source {
        MountSource::Host(_) => "bind",
        _ => "volume",
    };
    check_destination(kind, dst)?;
    let mut spec = MountSpec {
        source,
        destination: dst.to_string(),
        read_only: false,
        propagation: None,
        nocopy: false,
        mode: mode.to_string(),
    };
    let (mut rw_seen, mut label_seen, mut copy_seen) = (false, false, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        let bad = || MountError::InvalidMode(mode.to_string());
        match m {
            "ro" | "rw" => {
                if std::mem::replace(&mut rw_seen, true) {
                    return Err(bad());
                }
                spec.read_only = m == "ro";
            }
            "z" | "Z" => {
                if std::mem::replace(&mut label_seen, true) {
                    return Err(bad());
                }
            }
            "nocopy" => {
                if std::mem::replace(&mut copy_seen, true)
                    || matches!(spec.source, MountSource::Host(_))
                {
                    return Err(bad());
                }
                spec.nocopy = true;
            }
            "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => {
                if spec.propagation.is_some() {
                    return Err(bad());
                }
                spec.propagation = Some(p.to_string());
            }
            _ => return Err(bad()),
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let anon = parse_bind("/data").expect("anonymous");
        assert_eq!(anon.source, MountSource::Anonymous);
        let named = parse_bind("cache:/var/cache:ro,nocopy").expect("named");
        assert_eq!(named.source, MountSource::Named("cache".into()));
        assert!(named.read_only && named.nocopy);
        let bind = parse_bind("/srv:/srv:rshared,Z").expect("bind");
        assert_eq!(bind.source, MountSource::Host("/srv".into()));
        assert_eq!(bind.propagation.as_deref(), Some("rshared"));
        assert!(!bind.read_only);
    }

    #[test]
    fn refuses_what_dockerd_refuses() {
        assert_eq!(
            parse_bind("a:b:c:d"),
            Err(MountError::InvalidSpec("a:b:c:d".into()))
        );
        assert!(matches!(
            parse_bind("/srv:rel"),
            Err(MountError::RelativeDestination { .. })
        ));
        assert_eq!(
            parse_bind("/srv:/").map(|_| ()).expect_err("refused").to_string(),
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert!(parse_bind("/srv:/x:nocopy").is_err());
        assert!(parse_bind("v:/x:ro,rw").is_err());
        assert!(parse_bind("v:/x:bogus").is_err());
        assert!(parse_bind(":/x").is_err());
        assert!(check_destination("tmpfs", "/./").is_err());
        assert!(check_destination("tmpfs", "/run").is_ok());
    }
}
