//! Linux capabilities in all five sets: bounding, effective, permitted,
//! inheritable and ambient (capabilities(7)).
//!
//! # Order (the one runc's `finalizeNamespace` uses)
//!
//! 1. [`ProcessCaps::resolve`] before anything is created: names are checked,
//!    capabilities this kernel does not know (numbered above
//!    `/proc/sys/kernel/cap_last_cap`) are skipped with a warning, and the
//!    combinations the kernel would refuse are reported by name.
//! 2. [`ProcessCaps::drop_bounding`] while still root: `PR_CAPBSET_DROP` needs
//!    `CAP_SETPCAP` in the effective set, which the uid change removes.
//! 3. [`crate::identity::switch_user`] with `keep_caps = true`: the permitted
//!    set survives the uid change, the effective set is cleared.
//! 4. [`ProcessCaps::apply`]: inheritable, effective, permitted with capset(2),
//!    then the ambient set with `PR_CAP_AMBIENT` (the uid change clears it,
//!    and an ambient capability must be both permitted and inheritable).
//!
//! Every set not given in the config is empty, as in runc: a container
//! without `process.capabilities` runs with no capability, even as root. The
//! inheritable set is what the config says and nothing more: leaving it full
//! let exec'd programs with file capabilities gain them
//! (CVE-2022-29162, <https://github.com/opencontainers/runc/security/advisories/GHSA-f3fp-gc8g-vw66>).

use std::fmt;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// A name that is not a Linux capability.
    #[error("process.capabilities.{set}: unknown capability {name:?}")]
    Unknown {
        /// Which set.
        set: SetName,
        /// The name as written.
        name: String,
    },
    /// The JSON does not have the shape of `process.capabilities`.
    #[error("process.capabilities{where_}: {reason}")]
    Malformed {
        /// `""` or `.<set>`.
        where_: String,
        /// What is wrong.
        reason: String,
    },
    /// A capability in one set that the kernel requires in another.
    #[error("process.capabilities.{set}: {cap} is not in the {required} set, and the kernel refuses it ({why})")]
    NotSubset {
        /// The set holding the capability.
        set: SetName,
        /// The capability.
        cap: caps::Capability,
        /// The set that must also hold it.
        required: SetName,
        /// The rule.
        why: &'static str,
    },
    /// A syscall on a capability set failed.
    #[error("{action}: {source}{hint}")]
    Apply {
        /// What was being done, e.g. "dropping CAP_SYS_ADMIN from the bounding set".
        action: String,
        /// An explanation for EPERM.
        hint: &'static str,
        /// The error from the `caps` crate.
        source: caps::errors::CapsError,
    },
}

/// Result of this module.
pub type Result<T, E = CapabilityError> = std::result::Result<T, E>;

/// The five capability sets, named as in the runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetName {
    /// `bounding`
    Bounding,
    /// `effective`
    Effective,
    /// `inheritable`
    Inheritable,
    /// `permitted`
    Permitted,
    /// `ambient`
    Ambient,
}

impl SetName {
    /// All five, in the order of the runtime spec.
    pub const ALL: [SetName; 5] = [
        SetName::Bounding,
        SetName::Effective,
        SetName::Inheritable,
        SetName::Permitted,
        SetName::Ambient,
    ];

    /// The JSON key in `process.capabilities`.
    pub fn key(self) -> &'static str {
        match self {
            SetName::Bounding => "bounding",
            SetName::Effective => "effective",
            SetName::Inheritable => "inheritable",
            SetName::Permitted => "permitted",
            SetName::Ambient => "ambient",
        }
    }

    fn of(self, caps: &LinuxCapabilities) -> Option<&Capabilities> {
        match self {
            SetName::Bounding => caps.bounding().as_ref(),
            SetName::Effective => caps.effective().as_ref(),
            SetName::Inheritable => caps.inheritable().as_ref(),
            SetName::Permitted => caps.permitted().as_ref(),
            SetName::Ambient => caps.ambient().as_ref(),
        }
    }
}

impl fmt::Display for SetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Every capability the runtime spec (and `oci-spec`) names, in kernel order.
pub const ALL: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// Docker's default capability set (moby's `oci/caps/defaults.go`), in its order.
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The `caps` crate's value for a spec capability.
pub fn to_caps(cap: Capability) -> caps::Capability {
    use caps::Capability as K;
    match cap {
        Capability::Chown => K::CAP_CHOWN,
        Capability::DacOverride => K::CAP_DAC_OVERRIDE,
        Capability::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        Capability::Fowner => K::CAP_FOWNER,
        Capability::Fsetid => K::CAP_FSETID,
        Capability::Kill => K::CAP_KILL,
        Capability::Setgid => K::CAP_SETGID,
        Capability::Setuid => K::CAP_SETUID,
        Capability::Setpcap => K::CAP_SETPCAP,
        Capability::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        Capability::NetBindService => K::CAP_NET_BIND_SERVICE,
        Capability::NetBroadcast => K::CAP_NET_BROADCAST,
        Capability::NetAdmin => K::CAP_NET_ADMIN,
        Capability::NetRaw => K::CAP_NET_RAW,
        Capability::IpcLock => K::CAP_IPC_LOCK,
        Capability::IpcOwner => K::CAP_IPC_OWNER,
        Capability::SysModule => K::CAP_SYS_MODULE,
        Capability::SysRawio => K::CAP_SYS_RAWIO,
        Capability::SysChroot => K::CAP_SYS_CHROOT,
        Capability::SysPtrace => K::CAP_SYS_PTRACE,
        Capability::SysPacct => K::CAP_SYS_PACCT,
        Capability::SysAdmin => K::CAP_SYS_ADMIN,
        Capability::SysBoot => K::CAP_SYS_BOOT,
        Capability::SysNice => K::CAP_SYS_NICE,
        Capability::SysResource => K::CAP_SYS_RESOURCE,
        Capability::SysTime => K::CAP_SYS_TIME,
        Capability::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        Capability::Mknod => K::CAP_MKNOD,
        Capability::Lease => K::CAP_LEASE,
        Capability::AuditWrite => K::CAP_AUDIT_WRITE,
        Capability::AuditControl => K::CAP_AUDIT_CONTROL,
        Capability::Setfcap => K::CAP_SETFCAP,
        Capability::MacOverride => K::CAP_MAC_OVERRIDE,
        Capability::MacAdmin => K::CAP_MAC_ADMIN,
        Capability::Syslog => K::CAP_SYSLOG,
        Capability::WakeAlarm => K::CAP_WAKE_ALARM,
        Capability::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        Capability::AuditRead => K::CAP_AUDIT_READ,
        Capability::Perfmon => K::CAP_PERFMON,
        Capability::Bpf => K::CAP_BPF,
        Capability::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
    }
}

/// Docker's default capability set, for `berth-runtime spec` and the daemon.
pub fn default_set() -> Capabilities {
    DOCKER_DEFAULT.iter().copied().collect()
}

/// Every capability the running kernel knows (for `--privileged`).
pub fn all_known() -> Capabilities {
    let last = last_cap();
    ALL.iter()
        .copied()
        .filter(|c| to_caps(*c).index() <= last)
        .collect()
}

/// The highest capability number this kernel knows:
/// `/proc/sys/kernel/cap_last_cap`, or, without procfs, the highest one
/// `PR_CAPBSET_READ` accepts.
pub fn last_cap() -> u8 {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap") {
        if let Ok(n) = s.trim().parse::<u8>() {
            return n;
        }
    }
    caps::runtime::thread_all_supported()
        .iter()
        .map(|c| c.index())
        .max()
        .unwrap_or(caps::Capability::CAP_AUDIT_READ.index())
}

/// Parses the raw `process.capabilities` JSON object, with errors that name
/// the set and the unknown capability. Names are read exactly as `oci-spec`
/// reads them (so the two never disagree); call this on the raw config to
/// report a bad name better than serde's message does.
pub fn parse_json(value: &serde_json::Value) -> Result<LinuxCapabilities> {
    let Some(obj) = value.as_object() else {
        return Err(CapabilityError::Malformed {
            where_: String::new(),
            reason: "is not a JSON object".into(),
        });
    };
    let mut out = empty();
    for set in SetName::ALL {
        let Some(list) = obj.get(set.key()) else {
            continue;
        };
        if list.is_null() {
            continue;
        }
        let Some(items) = list.as_array() else {
            return Err(CapabilityError::Malformed {
                where_: format!(".{set}"),
                reason: "is not an array".into(),
            });
        };
        let mut parsed = Capabilities::new();
        for item in items {
            let Some(name) = item.as_str() else {
                return Err(CapabilityError::Malformed {
                    where_: format!(".{set}"),
                    reason: format!("{item} is not a string"),
                });
            };
            let cap = serde_json::from_value::<Capability>(item.clone()).map_err(|_| {
                CapabilityError::Unknown {
                    set,
                    name: name.to_owned(),
                }
            })?;
            parsed.insert(cap);
        }
        match set {
            SetName::Bounding => out.set_bounding(Some(parsed)),
            SetName::Effective => out.set_effective(Some(parsed)),
            SetName::Inheritable => out.set_inheritable(Some(parsed)),
            SetName::Permitted => out.set_permitted(Some(parsed)),
            SetName::Ambient => out.set_ambient(Some(parsed)),
        };
    }
    Ok(out)
}

/// `process.capabilities` with every set empty (what runc uses when the
/// config has none). `LinuxCapabilities::default()` is not that: `oci-spec`
/// fills it with three capabilities.
pub fn empty() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_inheritable(None);
    c.set_permitted(None);
    c.set_ambient(None);
    c
}

/// The five sets resolved for this kernel, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCaps {
    /// The bounding set to keep; all others are dropped.
    pub bounding: CapsHashSet,
    /// The effective set.
    pub effective: CapsHashSet,
    /// The inheritable set.
    pub inheritable: CapsHashSet,
    /// The permitted set.
    pub permitted: CapsHashSet,
    /// The ambient set.
    pub ambient: CapsHashSet,
    /// Capabilities of the config this kernel does not know, which were left out.
    pub skipped: Vec<(SetName, Capability)>,
}

impl ProcessCaps {
    /// Resolves `process.capabilities` (`None`: every set empty) for this
    /// kernel. Capabilities above [`last_cap`] are skipped with a warning, as
    /// runc does; an effective capability outside permitted, or an ambient one
    /// outside permitted or inheritable, is an error naming it (capset(2) and
    /// `PR_CAP_AMBIENT_RAISE` would refuse them later, less clearly).
    pub fn resolve(caps: Option<&LinuxCapabilities>) -> Result<Self> {
        Self::resolve_for(caps, last_cap())
    }

    /// [`ProcessCaps::resolve`] for a kernel whose last capability is `last`.
    fn resolve_for(caps: Option<&LinuxCapabilities>, last: u8) -> Result<Self> {
        let mut skipped = Vec::new();
        let mut sets: [CapsHashSet; 5] = Default::default();
        if let Some(caps) = caps {
            for (i, set) in SetName::ALL.iter().enumerate() {
                let mut names: Vec<Capability> = set
                    .of(caps)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                // HashSet order is random: sort so warnings are stable.
                names.sort_by_key(|c| to_caps(*c).index());
                for cap in names {
                    let k = to_caps(cap);
                    if k.index() > last {
                        tracing::warn!(
                            "process.capabilities.{set}: ignoring {k}, which this kernel \
                             (cap_last_cap {last}) does not know"
                        );
                        skipped.push((*set, cap));
                    } else {
                        sets[i].insert(k);
                    }
                }
            }
        }
        let [bounding, effective, inheritable, permitted, ambient] = sets;
        let mut resolved = ProcessCaps {
            bounding,
            effective,
            inheritable,
            permitted,
            ambient,
            skipped,
        };
        resolved.drop_unraisable_ambient();
        resolved.validate()?;
        Ok(resolved)
    }

    /// The kernel raises an ambient capability only if it is both permitted
    /// and inheritable. `runc spec` writes ambient capabilities without an
    /// inheritable set (since CVE-2022-29162), and runc carries on without
    /// them; so does berth, with a warning, instead of refusing such configs.
    fn drop_unraisable_ambient(&mut self) {
        let unraisable: Vec<caps::Capability> = self
            .ambient
            .iter()
            .filter(|c| !self.permitted.contains(c) || !self.inheritable.contains(c))
            .copied()
            .collect();
        for cap in unraisable {
            tracing::info!(
                "process.capabilities.ambient: {cap} is not both permitted and inheritable, so it cannot be raised; leaving it out"
            );
            self.ambient.remove(&cap);
        }
    }

    fn validate(&self) -> Result<()> {
        let rules: [(SetName, &CapsHashSet, SetName, &CapsHashSet, &'static str); 1] = [(
            SetName::Effective,
            &self.effective,
            SetName::Permitted,
            &self.permitted,
            "capset(2): effective must be a subset of permitted",
        )];
        for (set, members, required, superset, why) in rules {
            let mut missing: Vec<caps::Capability> =
                members.difference(superset).copied().collect();
            missing.sort_by_key(|c| c.index());
            if let Some(cap) = missing.first() {
                return Err(CapabilityError::NotSubset {
                    set,
                    cap: *cap,
                    required,
                    why,
                });
            }
        }
        Ok(())
    }

    /// Drops from this process's bounding set every capability not kept
    /// (`PR_CAPBSET_DROP`). Needs `CAP_SETPCAP`: call it before the uid change.
    pub fn drop_bounding(&self) -> Result<()> {
        let current =
            caps::read(None, CapSet::Bounding).map_err(|source| CapabilityError::Apply {
                action: "reading the bounding set".into(),
                hint: "",
                source,
            })?;
        let mut to_drop: Vec<caps::Capability> =
            current.difference(&self.bounding).copied().collect();
        to_drop.sort_by_key(|c| c.index());
        for cap in to_drop {
            caps::drop(None, CapSet::Bounding, cap).map_err(|source| CapabilityError::Apply {
                action: format!("dropping {cap} from the bounding set"),
                hint: " (PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set: drop the \
                       bounding set before switching user)",
                source,
            })?;
        }
        Ok(())
    }

    /// Sets the inheritable, effective and permitted sets (capset(2)), then the
    /// ambient set. Call it right after
    /// [`crate::identity::switch_user`]`(user, true)`.
    pub fn apply(&self) -> Result<()> {
        // Inheritable first, while the permitted set is still the old, larger
        // one (capset checks new inheritable against old permitted without
        // CAP_SETPCAP); effective before permitted because every intermediate
        // state must keep effective within permitted.
        let steps = [
            (CapSet::Inheritable, SetName::Inheritable, &self.inheritable),
            (CapSet::Effective, SetName::Effective, &self.effective),
            (CapSet::Permitted, SetName::Permitted, &self.permitted),
        ];
        for (cset, name, value) in steps {
            caps::set(None, cset, value).map_err(|source| CapabilityError::Apply {
                action: format!("setting the {name} set to {}", sorted_names(value)),
                hint: " (capset(2) only lowers permitted, and inheritable must stay within \
                       the bounding set)",
                source,
            })?;
        }
        match caps::clear(None, CapSet::Ambient) {
            Ok(()) => {}
            // Kernels before 4.3 have no ambient set: fine if none is wanted.
            Err(_)
                if self.ambient.is_empty() && caps::runtime::ambient_set_supported().is_err() =>
            {
                return Ok(())
            }
            Err(source) => {
                return Err(CapabilityError::Apply {
                    action: "clearing the ambient set".into(),
                    hint: "",
                    source,
                })
            }
        }
        let mut ambient: Vec<caps::Capability> = self.ambient.iter().copied().collect();
        ambient.sort_by_key(|c| c.index());
        for cap in ambient {
            caps::raise(None, CapSet::Ambient, cap).map_err(|source| CapabilityError::Apply {
                action: format!("raising {cap} in the ambient set"),
                hint: " (an ambient capability must be permitted and inheritable)",
                source,
            })?;
        }
        Ok(())
    }
}

fn sorted_names(set: &CapsHashSet) -> String {
    let mut v: Vec<caps::Capability> = set.iter().copied().collect();
    v.sort_by_key(|c| c.index());
    let names: Vec<String> = v.iter().map(|c| c.to_string()).collect();
    format!("[{}]", names.join(", "))
}

/// [`ProcessCaps::resolve`] then [`ProcessCaps::drop_bounding`].
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<()> {
    ProcessCaps::resolve(Some(caps))?.drop_bounding()
}

/// [`ProcessCaps::resolve`] then [`ProcessCaps::apply`].
pub fn apply(caps: &LinuxCapabilities) -> Result<()> {
    ProcessCaps::resolve(Some(caps))?.apply()
}

/// The names of a spec capability set, sorted, as the spec writes them
/// (`"CAP_CHOWN"`), for `berth-runtime spec` and messages.
pub fn names(set: &Capabilities) -> Vec<String> {
    let mut v: Vec<caps::Capability> = set.iter().map(|c| to_caps(*c)).collect();
    v.sort_by_key(|c| c.index());
    v.iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::test_child;

    fn set(list: &[Capability]) -> Capabilities {
        list.iter().copied().collect()
    }

    /// A config with the given sets and every other one absent. (Not
    /// `LinuxCapabilitiesBuilder`: it fills unset sets with oci-spec's three
    /// default capabilities.)
    fn spec(sets: &[(SetName, &[Capability])]) -> LinuxCapabilities {
        let mut c = empty();
        for (name, list) in sets {
            let v = Some(set(list));
            match name {
                SetName::Bounding => c.set_bounding(v),
                SetName::Effective => c.set_effective(v),
                SetName::Inheritable => c.set_inheritable(v),
                SetName::Permitted => c.set_permitted(v),
                SetName::Ambient => c.set_ambient(v),
            };
        }
        c
    }

    #[test]
    fn every_spec_capability_maps_to_its_kernel_number() {
        let mut seen = HashSetOfIndex::default();
        for (i, cap) in ALL.iter().enumerate() {
            let k = to_caps(*cap);
            assert_eq!(usize::from(k.index()), i, "{cap:?} is out of kernel order");
            // The spec name and the caps crate's name agree.
            let spec_name = serde_json::to_value(cap).expect("serialize capability");
            assert_eq!(spec_name.as_str(), Some(k.to_string().as_str()));
            assert!(seen.0.insert(k.index()));
        }
        assert_eq!(seen.0.len(), caps::all().len());
    }

    #[derive(Default)]
    struct HashSetOfIndex(std::collections::HashSet<u8>);

    #[test]
    fn unknown_names_are_errors_naming_the_set() {
        let v = serde_json::json!({"bounding": ["CAP_CHOWN", "CAP_FOO"]});
        let e = parse_json(&v).expect_err("CAP_FOO");
        assert_eq!(
            e.to_string(),
            "process.capabilities.bounding: unknown capability \"CAP_FOO\""
        );
        let v = serde_json::json!({"ambient": "CAP_CHOWN"});
        assert!(parse_json(&v)
            .expect_err("not an array")
            .to_string()
            .contains(".ambient"));

        let v = serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]
        });
        let parsed = parse_json(&v).expect("valid capabilities");
        assert_eq!(
            parsed.bounding().as_ref(),
            Some(&set(&[Capability::Chown, Capability::Kill]))
        );
        assert_eq!(parsed.inheritable(), &None);
        // The same config through oci-spec gives the same value.
        let via_serde: LinuxCapabilities = serde_json::from_value(v).expect("oci-spec parse");
        assert_eq!(via_serde.bounding(), parsed.bounding());
    }

    #[test]
    fn data_sets() {
        let d = default_set();
        assert_eq!(d.len(), 14);
        assert!(d.contains(&Capability::NetRaw) && !d.contains(&Capability::SysAdmin));
        assert_eq!(names(&d)[0], "CAP_CHOWN");
        let all = all_known();
        assert_eq!(all.len(), usize::from(last_cap().min(40)) + 1);
        assert!(all.is_superset(&d));
    }

    #[test]
    fn resolve_skips_what_the_kernel_does_not_know() {
        let spec = spec(&[
            (
                SetName::Bounding,
                &[
                    Capability::Chown,
                    Capability::Bpf,
                    Capability::CheckpointRestore,
                ],
            ),
            (SetName::Permitted, &[Capability::Perfmon]),
        ]);
        // A kernel that stops at CAP_AUDIT_READ (37), like Linux 5.7.
        let plan = ProcessCaps::resolve_for(Some(&spec), 37).expect("resolve");
        assert_eq!(
            plan.bounding,
            [caps::Capability::CAP_CHOWN].into_iter().collect()
        );
        assert!(plan.permitted.is_empty());
        assert_eq!(
            plan.skipped,
            vec![
                (SetName::Bounding, Capability::Bpf),
                (SetName::Bounding, Capability::CheckpointRestore),
                (SetName::Permitted, Capability::Perfmon),
            ]
        );
        // No config: every set empty.
        let none = ProcessCaps::resolve(None).expect("resolve none");
        assert!(none.bounding.is_empty() && none.permitted.is_empty() && none.ambient.is_empty());
        assert_eq!(ProcessCaps::resolve(Some(&empty())).expect("empty"), none);
    }

    #[test]
    fn resolve_refuses_or_leaves_out_what_the_kernel_would_refuse() {
        let c = spec(&[
            (SetName::Effective, &[Capability::Kill]),
            (SetName::Permitted, &[Capability::Chown]),
        ]);
        let e = ProcessCaps::resolve(Some(&c)).expect_err("effective outside permitted");
        assert!(
            e.to_string().starts_with(
                "process.capabilities.effective: CAP_KILL is not in the permitted set"
            ),
            "{e}"
        );
        let c = spec(&[
            (SetName::Permitted, &[Capability::Kill]),
            (SetName::Ambient, &[Capability::Kill]),
        ]);
        // runc carries on without an ambient capability it cannot raise
        // (`runc spec` writes such configs): it is left out, not refused.
        let r = ProcessCaps::resolve(Some(&c)).expect("ambient outside inheritable is left out");
        assert!(r.ambient.is_empty(), "{:?}", r.ambient);
        assert!(r.permitted.contains(&caps::Capability::CAP_KILL));
    }

    /// As root (no user switch): the sets end up exactly as asked.
    #[test]
    fn apply_as_root() {
        if !test_child::here("capabilities::tests::apply_as_root", &[]) {
            return;
        }
        let d = default_set();
        let c = spec(&[
            (SetName::Bounding, &DOCKER_DEFAULT),
            (SetName::Effective, &DOCKER_DEFAULT),
            (SetName::Permitted, &DOCKER_DEFAULT),
        ]);
        drop_bounding(&c).expect("drop bounding");
        apply(&c).expect("apply");
        let want: CapsHashSet = d.iter().map(|c| to_caps(*c)).collect();
        for s in [CapSet::Bounding, CapSet::Effective, CapSet::Permitted] {
            assert_eq!(caps::read(None, s).expect("read"), want, "{s:?}");
        }
        assert!(caps::read(None, CapSet::Inheritable)
            .expect("read")
            .is_empty());
        assert!(caps::read(None, CapSet::Ambient).expect("read").is_empty());
        // CAP_SYS_ADMIN is gone for good: it can be raised in no set.
        assert!(caps::raise(None, CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).is_err());
    }

    /// Without CAP_SETPCAP the bounding set cannot shrink; the error says so.
    #[test]
    fn drop_bounding_needs_setpcap() {
        if !test_child::here("capabilities::tests::drop_bounding_needs_setpcap", &[]) {
            return;
        }
        caps::drop(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).expect("drop setpcap");
        let e = drop_bounding(&empty()).expect_err("no CAP_SETPCAP");
        assert!(e.to_string().contains("needs CAP_SETPCAP"), "{e}");
    }
}
