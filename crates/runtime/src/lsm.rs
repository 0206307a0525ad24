//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel`
//! and `linux.mountLabel`.
//!
//! Where the host has the module, the label is applied as runc applies it:
//! the process's label for its next `execve` is written to
//! `/proc/thread-self/attr/apparmor/exec` (`exec PROFILE`; the older
//! `attr/exec` when the kernel has no per-module directory) or, for SELinux,
//! the context to `/proc/thread-self/attr/exec`; the mount label becomes a
//! `context="…"` option of the container's fresh filesystems.
//!
//! Where the host lacks the module, runc silently runs the container
//! without the confinement the config asked for. berth refuses instead,
//! naming the field and saying the host has no AppArmor (or SELinux): a
//! container that was meant to be confined must not start unconfined
//! without anyone noticing. The one exception is the AppArmor profile
//! `unconfined`, which asks for nothing a host without AppArmor does not
//! already give.

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

/// The errors of this module; each names the config field.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    /// The config asks for a module the host does not have.
    #[error("{field} {value:?}: this host has no {module} (the kernel does not have it enabled), so the label cannot be applied; remove the field or run on a host with {module}")]
    NotOnHost {
        /// The config field (`process.apparmorProfile`, …).
        field: &'static str,
        /// Its value.
        value: String,
        /// "AppArmor" or "SELinux".
        module: &'static str,
    },
    /// Writing the process's next-exec label failed.
    #[error("{field} {value:?}: write it to {path}: {source}")]
    Write {
        /// The config field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The attribute file.
        path: String,
        /// The kernel's error (EINVAL or ENOENT: no such profile or context).
        #[source]
        source: std::io::Error,
    },
}

/// The security modules the host runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostModules {
    /// AppArmor is enabled (`/sys/module/apparmor/parameters/enabled` is `Y`).
    pub apparmor: bool,
    /// SELinux is enabled (selinuxfs is mounted: `/sys/fs/selinux/enforce`).
    pub selinux: bool,
}

impl HostModules {
    /// Looks at this host.
    pub fn detect() -> Self {
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim_start().starts_with('Y'));
        let selinux = Path::new("/sys/fs/selinux/enforce").exists();
        Self { apparmor, selinux }
    }
}

/// What a process gets written before its exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecLabels {
    /// The AppArmor profile to change to on exec.
    pub apparmor: Option<String>,
    /// The SELinux context to change to on exec.
    pub selinux: Option<String>,
}

/// The decision for one process's fields on a host (pure): what to apply,
/// or the refusal.
pub fn exec_labels(process: &Process, host: HostModules) -> Result<ExecLabels, LsmError> {
    let mut labels = ExecLabels::default();
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if host.apparmor {
            labels.apparmor = Some(profile.to_owned());
        } else if profile != "unconfined" {
            return Err(LsmError::NotOnHost {
                field: "process.apparmorProfile",
                value: profile.to_owned(),
                module: "AppArmor",
            });
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !host.selinux {
            return Err(LsmError::NotOnHost {
                field: "process.selinuxLabel",
                value: label.to_owned(),
                module: "SELinux",
            });
        }
        labels.selinux = Some(label.to_owned());
    }
    Ok(labels)
}

/// The decision for `linux.mountLabel` on a host (pure): the label to give
/// the container's fresh filesystems, or the refusal.
pub fn mount_label(spec: &Spec, host: HostModules) -> Result<Option<String>, LsmError> {
    let Some(label) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    if !host.selinux {
        return Err(LsmError::NotOnHost {
            field: "linux.mountLabel",
            value: label.to_owned(),
            module: "SELinux",
        });
    }
    Ok(Some(label.to_owned()))
}

/// Checks a whole config against this host before anything is made.
pub fn check(spec: &Spec) -> Result<(), LsmError> {
    let host = HostModules::detect();
    if let Some(process) = spec.process() {
        exec_labels(process, host)?;
    }
    mount_label(spec, host).map(|_| ())
}

/// Writes the labels the process's next `execve` takes on. Call it in the
/// container, after the rootfs is in place and before `no_new_privs` and the
/// capabilities are dropped (AppArmor restricts transitions under
/// `no_new_privs`).
pub fn apply_exec_labels(labels: &ExecLabels) -> Result<(), LsmError> {
    if let Some(profile) = &labels.apparmor {
        // The per-module directory (Linux 5.8) when there is one, so the
        // write reaches AppArmor whatever other module owns attr/exec.
        let modern = "/proc/thread-self/attr/apparmor/exec";
        let path = if Path::new(modern).exists() {
            modern
        } else {
            "/proc/thread-self/attr/exec"
        };
        write_attr(
            "process.apparmorProfile",
            profile,
            path,
            &format!("exec {profile}"),
        )?;
    }
    if let Some(label) = &labels.selinux {
        write_attr(
            "process.selinuxLabel",
            label,
            "/proc/thread-self/attr/exec",
            label,
        )?;
    }
    Ok(())
}

fn write_attr(field: &'static str, value: &str, path: &str, text: &str) -> Result<(), LsmError> {
    std::fs::write(path, text).map_err(|source| LsmError::Write {
        field,
        value: value.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// The mount data with an SELinux `context=` for `label` added, as the
/// kernel takes it (quoted, since a context holds commas).
pub fn with_context(data: &str, label: &str) -> String {
    let context = format!("context=\"{label}\"");
    if data.is_empty() {
        context
    } else {
        format!("{data},{context}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: HostModules = HostModules {
        apparmor: false,
        selinux: false,
    };
    const BOTH: HostModules = HostModules {
        apparmor: true,
        selinux: true,
    };

    fn process(apparmor: Option<&str>, selinux: Option<&str>) -> Process {
        let mut p = Process::default();
        p.set_apparmor_profile(apparmor.map(str::to_owned));
        p.set_selinux_label(selinux.map(str::to_owned));
        p
    }

    #[test]
    fn nothing_asked_nothing_done() {
        for host in [NONE, BOTH] {
            assert_eq!(
                exec_labels(&process(None, None), host).expect("ok"),
                ExecLabels::default()
            );
            assert_eq!(
                exec_labels(&process(Some(""), Some("")), host).expect("ok"),
                ExecLabels::default()
            );
        }
    }

    #[test]
    fn applied_where_the_host_has_the_module() {
        let got = exec_labels(
            &process(
                Some("docker-default"),
                Some("system_u:system_r:container_t:s0"),
            ),
            BOTH,
        )
        .expect("ok");
        assert_eq!(got.apparmor.as_deref(), Some("docker-default"));
        assert_eq!(
            got.selinux.as_deref(),
            Some("system_u:system_r:container_t:s0")
        );
        let host = HostModules {
            apparmor: true,
            selinux: false,
        };
        assert_eq!(
            exec_labels(&process(Some("unconfined"), None), host)
                .expect("ok")
                .apparmor
                .as_deref(),
            Some("unconfined")
        );
    }

    #[test]
    fn refused_by_name_where_the_host_lacks_it() {
        let e = exec_labels(&process(Some("docker-default"), None), NONE).expect_err("no AppArmor");
        assert_eq!(
            e.to_string(),
            "process.apparmorProfile \"docker-default\": this host has no AppArmor (the kernel does not have it enabled), so the label cannot be applied; remove the field or run on a host with AppArmor"
        );
        let e = exec_labels(&process(None, Some("a:b:c:s0")), NONE).expect_err("no SELinux");
        assert!(
            e.to_string()
                .starts_with("process.selinuxLabel \"a:b:c:s0\": this host has no SELinux"),
            "{e}"
        );
        let apparmor_only = HostModules {
            apparmor: true,
            selinux: false,
        };
        assert!(exec_labels(&process(None, Some("a:b:c:s0")), apparmor_only).is_err());
    }

    #[test]
    fn unconfined_needs_no_apparmor() {
        assert_eq!(
            exec_labels(&process(Some("unconfined"), None), NONE).expect("ok"),
            ExecLabels::default()
        );
    }

    #[test]
    fn mount_label_needs_selinux() {
        let mut spec = Spec::default();
        assert_eq!(mount_label(&spec, NONE).expect("none asked"), None);
        if let Some(linux) = spec.linux_mut() {
            linux.set_mount_label(Some("system_u:object_r:container_file_t:s0:c1,c2".into()));
        }
        let e = mount_label(&spec, NONE).expect_err("no SELinux");
        assert!(e.to_string().starts_with("linux.mountLabel"), "{e}");
        assert_eq!(
            mount_label(&spec, BOTH).expect("ok").as_deref(),
            Some("system_u:object_r:container_file_t:s0:c1,c2")
        );
    }

    #[test]
    fn context_is_quoted_into_the_data() {
        assert_eq!(
            with_context("", "a:b:c:s0:c1,c2"),
            "context=\"a:b:c:s0:c1,c2\""
        );
        assert_eq!(
            with_context("mode=755", "a:b:c:s0"),
            "mode=755,context=\"a:b:c:s0\""
        );
    }
}
