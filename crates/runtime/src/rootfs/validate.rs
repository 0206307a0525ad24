//! `validate`: the spec's filesystem fields checked before anything exists,
//! so a bad bundle fails with a message naming the field instead of halfway
//! through a container's set-up.

use std::path::Path;

use oci_spec::runtime::Spec;

use super::dev::device_nodes;
use super::mounts::{check_proc_destination, check_supported};
use super::options::{parse_options, parse_propagation};
use super::secure_join::{clean_path, display, escapes_root};
use super::{Result, RootfsError};

pub(super) fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RootfsError::invalid("root", "", "is required on Linux"))?;
    let root_path = if root.path().is_absolute() {
        root.path().to_path_buf()
    } else {
        bundle.join(root.path())
    };
    match std::fs::metadata(&root_path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(RootfsError::invalid(
                "root.path",
                display(root.path()),
                format!("{} is not a directory", display(&root_path)),
            ))
        }
        Err(e) => {
            return Err(RootfsError::invalid(
                "root.path",
                display(root.path()),
                format!("cannot use {}: {e}", display(&root_path)),
            ))
        }
    }

    let linux = spec.linux().as_ref();
    if let Some(v) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|v| !v.is_empty())
    {
        if parse_propagation(v).is_none() {
            return Err(RootfsError::invalid(
                "linux.rootfsPropagation",
                v,
                "must be one of shared, slave, private, unbindable or their r* forms",
            ));
        }
    }

    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let dest = m.destination();
        let field = format!("mounts[{i}].destination");
        // runc accepts some relative destinations for old bundles; berth
        // refuses them, since their meaning (relative to what?) was never
        // specified and the spec now says absolute.
        if escapes_root(dest) {
            return Err(RootfsError::invalid(
                field,
                display(dest),
                "escapes the container's root",
            ));
        }
        if !dest.is_absolute() {
            return Err(RootfsError::invalid(
                field,
                display(dest),
                "must be an absolute path",
            ));
        }
        let clean = clean_path(dest);
        if clean.as_os_str().is_empty() {
            return Err(RootfsError::invalid(
                field,
                display(dest),
                "would cover the container's root; set root.path instead",
            ));
        }
        let parsed = parse_options(m.options().as_deref().unwrap_or(&[]));
        check_supported(i, &parsed)?;
        super::idmap::validate(i, m, &parsed, spec)?;
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = parsed.is_bind() || typ == "bind";
        if is_bind {
            if m.source()
                .as_deref()
                .is_none_or(|s| s.as_os_str().is_empty())
            {
                return Err(RootfsError::invalid(
                    format!("mounts[{i}].source"),
                    "",
                    "is required for a bind mount",
                ));
            }
            // Filesystem data (`mode=755`, `size=1k`) means nothing to a
            // bind and the kernel ignores it, as runc does: accepted. A bare
            // word that is no mount option is most likely a misspelt flag
            // (`nosiud`), which must not be dropped silently: refused.
            for data in parsed.data_options.iter().filter(|o| o.contains('=')) {
                tracing::info!(
                    "mounts[{i}].options {data:?}: filesystem data on a bind mount is ignored"
                );
            }
            if let Some(unknown) = parsed.data_options.iter().find(|o| !o.contains('=')) {
                return Err(RootfsError::invalid(
                    format!("mounts[{i}].options"),
                    unknown.as_str(),
                    "is not a mount option, and a bind mount takes no filesystem data",
                ));
            }
        } else if typ.is_empty() {
            return Err(RootfsError::invalid(
                format!("mounts[{i}].type"),
                "",
                "is required unless the options say bind or rbind",
            ));
        }
        check_proc_destination(i, &clean, typ, is_bind, m.source().as_deref())?;
    }

    device_nodes(spec)?;

    for (name, list) in [
        (
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_deref()),
        ),
        (
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_deref()),
        ),
    ] {
        for (i, p) in list.unwrap_or(&[]).iter().enumerate() {
            let path = Path::new(p);
            if !path.is_absolute() {
                // The spec says absolute; runc takes a relative one from the
                // container's root (its cwd when it applies them), and so
                // does berth, where the path is opened below the root anyway.
                tracing::info!(
                    "{name}[{i}] {p:?} is relative: taken from the container's root, as runc does"
                );
            }
            if escapes_root(path) {
                return Err(RootfsError::invalid(
                    format!("{name}[{i}]"),
                    p.as_str(),
                    "escapes the container's root",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, MountBuilder, RootBuilder};

    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir rootfs");
        std::fs::write(dir.path().join("file"), b"").expect("write file");
        dir
    }

    fn with_mounts(mounts: Vec<oci_spec::runtime::Mount>) -> Spec {
        let mut spec = Spec::default();
        spec.set_mounts(Some(mounts));
        spec
    }

    fn mnt(dest: &str, typ: &str, source: &str, options: &[&str]) -> oci_spec::runtime::Mount {
        let mut b = MountBuilder::default()
            .destination(dest)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if !typ.is_empty() {
            b = b.typ(typ);
        }
        if !source.is_empty() {
            b = b.source(source);
        }
        b.build().expect("mount")
    }

    fn err(spec: &Spec, bundle: &Path) -> String {
        validate(spec, bundle).expect_err("invalid").to_string()
    }

    #[test]
    fn default_spec_is_valid() {
        let b = bundle();
        validate(&Spec::default(), b.path()).expect("the default spec validates");
    }

    #[test]
    fn root_path_must_be_a_directory() {
        let b = bundle();
        let mut spec = Spec::default();
        spec.set_root(Some(
            RootBuilder::default()
                .path("missing")
                .build()
                .expect("root"),
        ));
        assert!(err(&spec, b.path()).starts_with("root.path \"missing\": cannot use"));
        spec.set_root(Some(
            RootBuilder::default().path("file").build().expect("root"),
        ));
        assert!(err(&spec, b.path()).ends_with("is not a directory"));
        spec.set_root(None);
        assert_eq!(err(&spec, b.path()), "root \"\": is required on Linux");
    }

    #[test]
    fn destinations() {
        let b = bundle();
        let mut mounts = oci_spec::runtime::get_default_mounts();
        mounts.push(mnt("../../etc", "tmpfs", "tmpfs", &[]));
        assert_eq!(
            err(&with_mounts(mounts), b.path()),
            format!(
                "mounts[{}].destination \"../../etc\": escapes the container's root",
                oci_spec::runtime::get_default_mounts().len()
            )
        );
        let e = err(
            &with_mounts(vec![mnt("/a/../../etc", "tmpfs", "", &[])]),
            b.path(),
        );
        assert_eq!(
            e,
            "mounts[0].destination \"/a/../../etc\": escapes the container's root"
        );
        let e = err(&with_mounts(vec![mnt("tmp", "tmpfs", "", &[])]), b.path());
        assert_eq!(e, "mounts[0].destination \"tmp\": must be an absolute path");
        let e = err(&with_mounts(vec![mnt("/", "tmpfs", "", &[])]), b.path());
        assert!(e.starts_with("mounts[0].destination \"/\": would cover"));
        let e = err(
            &with_mounts(vec![mnt("/proc/sys", "tmpfs", "", &[])]),
            b.path(),
        );
        assert!(e.starts_with("mounts[0].destination \"/proc/sys\": is inside /proc"));
    }

    #[test]
    fn bind_mounts() {
        let b = bundle();
        validate(
            &with_mounts(vec![mnt(
                "/x",
                "bind",
                "/tmp",
                &["rbind", "ro", "rprivate"],
            )]),
            b.path(),
        )
        .expect("bind with known options");
        validate(
            &with_mounts(vec![mnt("/x", "", "/tmp", &["bind"])]),
            b.path(),
        )
        .expect("type may be omitted for a bind");
        validate(
            &with_mounts(vec![mnt(
                "/x",
                "bind",
                "/tmp",
                &["rbind", "mode=755", "size=1k"],
            )]),
            b.path(),
        )
        .expect("filesystem data on a bind is ignored, as runc ignores it");
        let e = err(
            &with_mounts(vec![mnt("/x", "bind", "/tmp", &["rbind", "nosiud"])]),
            b.path(),
        );
        assert_eq!(
            e,
            "mounts[0].options \"nosiud\": is not a mount option, and a bind mount takes no filesystem data"
        );
        let e = err(
            &with_mounts(vec![mnt("/x", "bind", "", &["bind"])]),
            b.path(),
        );
        assert_eq!(e, "mounts[0].source \"\": is required for a bind mount");
        let e = err(&with_mounts(vec![mnt("/x", "", "", &["ro"])]), b.path());
        assert_eq!(
            e,
            "mounts[0].type \"\": is required unless the options say bind or rbind"
        );
        // A non-bind mount passes unknown options to the filesystem.
        validate(
            &with_mounts(vec![mnt(
                "/x",
                "tmpfs",
                "tmpfs",
                &["mode=700", "huge=never"],
            )]),
            b.path(),
        )
        .expect("tmpfs data");
    }

    #[test]
    fn unsupported_features_are_refused_by_name() {
        let b = bundle();
        validate(
            &with_mounts(vec![mnt(
                "/x",
                "bind",
                "/tmp",
                &["rbind", "rro", "rnosuid"],
            )]),
            b.path(),
        )
        .expect("recursive attributes are supported");
        let e = err(
            &with_mounts(vec![mnt("/x", "tmpfs", "tmpfs", &["tmpcopyup"])]),
            b.path(),
        );
        assert_eq!(
            e,
            "mounts[0].options \"tmpcopyup\": runc's tmpcopyup extension is not supported by berth yet"
        );
        let e = err(
            &with_mounts(vec![mnt("/x", "bind", "/tmp", &["bind", "idmap"])]),
            b.path(),
        );
        assert!(e.contains("has no user namespace"), "{e}");
    }

    #[test]
    fn propagation_and_paths() {
        let b = bundle();
        let mut spec = Spec::default();
        spec.set_linux(Some(
            LinuxBuilder::default()
                .rootfs_propagation("sideways")
                .build()
                .expect("linux"),
        ));
        assert!(err(&spec, b.path()).starts_with("linux.rootfsPropagation \"sideways\""));
        spec.set_linux(Some(
            LinuxBuilder::default()
                .masked_paths(vec!["../etc/shadow".to_string()])
                .build()
                .expect("linux"),
        ));
        assert_eq!(
            err(&spec, b.path()),
            "linux.maskedPaths[0] \"../etc/shadow\": escapes the container's root"
        );
    }
}
