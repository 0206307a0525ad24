//! Docker's seccomp profile file format (`docker run --security-opt
//! seccomp=profile.json`): `defaultAction`, `defaultErrnoRet`,
//! `architectures` or `archMap`, `syscalls` (each with `name` or `names`,
//! `action`, `errnoRet`, `args`, and `includes`/`excludes` conditions on
//! capabilities, architectures and kernel version), `flags`, `listenerPath`.
//! Converted to the OCI section the way dockerd does it: conditional rules
//! are kept or dropped for the container's capabilities and this host.

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;

/// Why a docker-format profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The text is not JSON of the profile's shape.
    #[error("the seccomp profile is not a valid docker profile: {0}")]
    Parse(#[from] serde_json::Error),
    /// A rule names no system call.
    #[error("the seccomp profile's syscalls[{index}] names no system call (set name or names)")]
    NoNames {
        /// The rule's position in `syscalls`.
        index: usize,
    },
    /// A rule sets both `name` and `names`, which docker refuses too.
    #[error("the seccomp profile's syscalls[{index}] sets both name and names; use one")]
    NameAndNames {
        /// The rule's position in `syscalls`.
        index: usize,
    },
    /// Both `architectures` and `archMap` are set.
    #[error("the seccomp profile sets both architectures and archMap; use one")]
    ArchitecturesAndArchMap,
    /// A capability in `includes`/`excludes` is not one Linux has.
    #[error("the seccomp profile's syscalls[{index}] names an unknown capability {name:?}")]
    UnknownCapability {
        /// The rule's position in `syscalls`.
        index: usize,
        /// The name as written.
        name: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The host facts that decide conditional rules.
#[derive(Debug, Clone)]
pub struct Host {
    /// Docker's name for this machine's architecture (`amd64`, `arm64`, …).
    pub arch: String,
    /// The running kernel's major and minor version.
    pub kernel: (u32, u32),
}

impl Host {
    /// This machine: its architecture and the kernel release in
    /// /proc/sys/kernel/osrelease ((0, 0) when unreadable, so `minKernel`
    /// rules are dropped rather than wrongly kept).
    pub fn current() -> Host {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        }
        .to_string();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Host {
            arch,
            kernel: kernel_version(&release).unwrap_or((0, 0)),
        }
    }
}

fn kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn capability(index: usize, name: &str) -> Result<Capability, ProfileError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value::<Capability>(serde_json::Value::String(full)).map_err(|_| {
        ProfileError::UnknownCapability {
            index,
            name: name.to_string(),
        }
    })
}

/// Converts a docker-format profile to the OCI section for a container
/// whose capability set is `caps`, on `host`.
pub fn from_docker_json(
    text: &[u8],
    caps: &Capabilities,
    host: &Host,
) -> Result<LinuxSeccomp, ProfileError> {
    let p: Profile = serde_json::from_slice(text)?;
    let arches = match (p.architectures, p.arch_map) {
        (Some(_), Some(_)) => return Err(ProfileError::ArchitecturesAndArchMap),
        (Some(a), None) => Some(a),
        (None, Some(map)) => Some(
            map.into_iter()
                .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures))
                .collect(),
        ),
        (None, None) => None,
    };
    let mut syscalls = Vec::new();
    for (index, rule) in p.syscalls.into_iter().enumerate() {
        let names = match (rule.name, rule.names.is_empty()) {
            (Some(_), false) => return Err(ProfileError::NameAndNames { index }),
            (Some(n), true) => vec![n],
            (None, false) => rule.names,
            (None, true) => return Err(ProfileError::NoNames { index }),
        };
        let mut keep = true;
        for c in &rule.includes.caps {
            keep &= caps.contains(&capability(index, c)?);
        }
        for c in &rule.excludes.caps {
            keep &= !caps.contains(&capability(index, c)?);
        }
        if !rule.includes.arches.is_empty() {
            keep &= rule.includes.arches.contains(&host.arch);
        }
        keep &= !rule.excludes.arches.contains(&host.arch);
        if let Some(k) = &rule.includes.min_kernel {
            keep &= kernel_version(k).is_some_and(|min| host.kernel >= min);
        }
        if let Some(k) = &rule.excludes.min_kernel {
            keep &= kernel_version(k).is_none_or(|min| host.kernel < min);
        }
        if !keep {
            continue;
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(rule.action);
        s.set_errno_ret(rule.errno_ret);
        s.set_args(rule.args);
        syscalls.push(s);
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(p.default_action);
    out.set_default_errno_ret(p.default_errno_ret);
    out.set_architectures(arches);
    out.set_flags(p.flags);
    out.set_listener_path(p.listener_path.map(Into::into));
    out.set_listener_metadata(p.listener_metadata);
    out.set_syscalls(Some(syscalls));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            arch: "amd64".into(),
            kernel: (6, 1),
        }
    }

    #[test]
    fn converts_rules_and_conditions() {
        let caps: Capabilities = [Capability::Chown].into_iter().collect();
        let text = br#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CHOWN"], "arches": ["amd64"], "minKernel": "4.8"}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]}"#;
        let p = from_docker_json(text, &caps, &host()).expect("a valid profile");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..])
        );
        let names: Vec<Vec<String>> = p
            .syscalls()
            .iter()
            .flatten()
            .map(|s| s.names().clone())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["read".to_string(), "write".to_string()],
                vec!["chown".to_string()],
                vec!["personality".to_string()],
            ]
        );
    }

    #[test]
    fn bad_profiles_say_why() {
        let caps = Capabilities::new();
        let e = from_docker_json(b"{", &caps, &host()).expect_err("not JSON");
        assert!(e.to_string().contains("not a valid docker profile"), "{e}");
        let e = from_docker_json(
            br#"{"defaultAction": "SCMP_ACT_NOPE", "syscalls": []}"#,
            &caps,
            &host(),
        )
        .expect_err("unknown action");
        assert!(e.to_string().contains("SCMP_ACT_NOPE"), "{e}");
        let e = from_docker_json(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
            &caps,
            &host(),
        )
        .expect_err("no names");
        assert!(
            e.to_string().contains("syscalls[0] names no system call"),
            "{e}"
        );
    }
}
