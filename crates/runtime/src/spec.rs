//! Reading a bundle's `config.json` and checking it before anything is made.
//!
//! Parse errors carry the JSON path of the bad field (`linux.namespaces[2].type:
//! unknown variant "foo"`), so a user can find it without reading the whole
//! file. Validation refuses what the kernel would refuse later, half-way
//! through a create, and names the field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The config `berth-runtime spec` writes: runc's defaults (a shell on a
/// terminal, the default mounts, namespaces, masked and read-only paths) with
/// docker's default capability set, a read-only root and hostname "berth".
/// `rootless` adds a user namespace mapping the calling user to root.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_version("1.2.0".into());
    spec.set_hostname(Some("berth".into()));
    spec.set_annotations(None);
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(true));
    }
    if let Some(resources) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
    {
        // Every device denied unless allowed, as `runc spec` writes it, so
        // the config is safe with any runtime.
        resources.set_devices(Some(vec![deny_every_device()]));
    }
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        let set = crate::capabilities::default_set();
        let mut caps = oci_spec::runtime::LinuxCapabilities::default();
        caps.set_bounding(Some(set.clone()));
        caps.set_effective(Some(set.clone()));
        caps.set_permitted(Some(set));
        caps.set_inheritable(None);
        caps.set_ambient(None);
        process.set_capabilities(Some(caps));
    }
    // seccomp: berth's default profile, for the default capability set.
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(Some(crate::seccomp::default_profile(
            &crate::capabilities::default_set(),
        )));
    }
    spec
}

/// The device cgroup rule that denies every device (`{"allow": false,
/// "access": "rwm"}`): what a config starts from before it allows some.
pub fn deny_every_device() -> oci_spec::runtime::LinuxDeviceCgroup {
    let mut rule = oci_spec::runtime::LinuxDeviceCgroup::default();
    rule.set_allow(false);
    rule.set_typ(None);
    rule.set_major(None);
    rule.set_minor(None);
    rule.set_access(Some("rwm".to_string()));
    rule
}

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    parse(&bytes).map_err(|message| Error::Config { path, message })
}

/// Parses a config from JSON, naming the bad field on error.
pub fn parse(bytes: &[u8]) -> std::result::Result<Spec, String> {
    parse_json(bytes)
}

/// Parses a `process.json` (as `exec --process` takes), naming the bad field.
pub fn parse_process(bytes: &[u8]) -> std::result::Result<oci_spec::runtime::Process, String> {
    parse_json(bytes)
}

/// Parses any part of the spec from JSON, naming the bad field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if let Some(m) = crate::seccomp::explain_parse_error(&path, &inner.to_string()) {
            return m;
        }
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// The absolute path of the container's root filesystem.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| {
        Error::Invalid("root: missing (the container needs a root filesystem)".into())
    })?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    std::fs::canonicalize(&path).map_err(|e| {
        Error::Invalid(format!(
            "root.path {:?}: {e}",
            root.path().display().to_string()
        ))
    })
}

/// Checks the parts of the config that the core of the runtime owns
/// (version, process, namespaces, id mappings, hostname, sysctls). The
/// rootfs, cgroups, capabilities and rlimits are checked by their own modules.
pub fn validate(spec: &Spec) -> Result<()> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(Error::Invalid(format!(
            "ociVersion {version:?}: berth supports 1.x"
        )));
    }
    refuse_unsupported(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process: missing".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(Error::Invalid(
                "process.args: must name a program to run".into(),
            ))
        }
    }
    crate::process::attributes::validate(
        Some(process),
        spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
    )?;
    if !process.cwd().is_absolute() {
        return Err(Error::Invalid(format!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd().display().to_string()
        )));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
                return Err(Error::Invalid(format!(
                    "process.env[{i}] {e:?}: must be NAME=VALUE"
                )));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Invalid("linux: missing (berth runs Linux containers)".into()))?;

    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::Invalid(format!(
                "linux.namespaces[{i}]: namespace {} given twice",
                ns.typ()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::Invalid(format!(
                    "linux.namespaces[{i}].path {:?}: must be an absolute path",
                    p.display().to_string()
                )));
            }
            if let Err(e) = std::fs::metadata(p) {
                return Err(Error::Invalid(format!(
                    "linux.namespaces[{i}].path {:?}: {e}",
                    p.display().to_string()
                )));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        // The runtime spec: a namespace type left out is inherited from the
        // runtime. The container's mounts are then made in the host's mount
        // namespace (and removed by `delete`); what only a mount namespace
        // of its own can give is refused here.
        if has(LinuxNamespaceType::User) {
            return Err(Error::Invalid(
                "linux.namespaces: a user namespace needs a mount namespace too (the container's \
                 mounts would be made in the host's mount namespace, where a user namespace may \
                 not mount)"
                    .into(),
            ));
        }
        if let Some(p) = linux
            .rootfs_propagation()
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            return Err(Error::Invalid(format!(
                "linux.rootfsPropagation {p:?}: needs a mount namespace in linux.namespaces \
                 (without one it would change the propagation of the host's mounts)"
            )));
        }
    }

    let user_ns = namespaces
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    let uid_maps = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid_maps = linux.gid_mappings().as_deref().unwrap_or_default();
    match user_ns {
        Some(ns) if ns.path().is_none() => {
            if uid_maps.is_empty() || gid_maps.is_empty() {
                return Err(Error::Invalid(
                    "linux.uidMappings/gidMappings: a new user namespace needs both".into(),
                ));
            }
            validate_mappings("linux.uidMappings", uid_maps)?;
            validate_mappings("linux.gidMappings", gid_maps)?;
        }
        Some(_) => {
            if !uid_maps.is_empty() || !gid_maps.is_empty() {
                return Err(Error::Invalid(
                    "linux.uidMappings: mappings cannot be given for a joined user namespace"
                        .into(),
                ));
            }
        }
        None => {
            if !uid_maps.is_empty() || !gid_maps.is_empty() {
                return Err(Error::Invalid(
                    "linux.uidMappings: mappings need a user namespace in linux.namespaces".into(),
                ));
            }
        }
    }

    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::Invalid(
            "hostname: setting it needs a uts namespace in linux.namespaces".into(),
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(Error::Invalid(
            "domainname: setting it needs a uts namespace in linux.namespaces".into(),
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            validate_sysctl(key, &|t| has(t))?;
        }
    }
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(maps) = m.uid_mappings().as_deref().filter(|m| !m.is_empty()) {
            validate_mappings(&format!("mounts[{i}].uidMappings"), maps)?;
        }
        if let Some(maps) = m.gid_mappings().as_deref().filter(|m| !m.is_empty()) {
            validate_mappings(&format!("mounts[{i}].gidMappings"), maps)?;
        }
    }
    if linux.intel_rdt().is_some() {
        return Err(Error::Invalid(
            "linux.intelRdt: not supported by berth (this host has no resctrl support in berth)"
                .into(),
        ));
    }
    Ok(())
}

/// The fields of the runtime-spec that berth does not apply, refused by
/// name so that no config runs without what it asked for (the table in
/// docs/RUNTIME.md lists every field and what berth does with it). The
/// cgroup and mount fields are refused by their own modules.
fn refuse_unsupported(spec: &Spec) -> Result<()> {
    let refuse = |field: &str, why: &str| Err(Error::Invalid(format!("{field}: {why}")));
    for (field, present) in [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ] {
        if present {
            return refuse(
                field,
                "berth runs Linux containers; this platform's section cannot be applied",
            );
        }
    }
    if let Some(process) = spec.process() {
        if process
            .command_line()
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            return refuse(
                "process.commandLine",
                "is for Windows; a Linux process takes process.args",
            );
        }
        if process
            .user()
            .username()
            .as_deref()
            .is_some_and(|u| !u.is_empty())
        {
            return refuse(
                "process.user.username",
                "is for Windows; a Linux process takes process.user.uid and gid",
            );
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return refuse(
            "linux.netDevices",
            "moving host network devices into the container is not supported by berth yet",
        );
    }
    if let Some(p) = linux.memory_policy() {
        crate::process::attributes::mempolicy(p)?;
    }
    let new_time = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none());
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty()) && !new_time {
        return refuse(
            "linux.timeOffsets",
            "needs a new time namespace in linux.namespaces (offsets are set when it is made)",
        );
    }
    Ok(())
}

fn validate_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(Error::Invalid(format!(
                "{field}[{i}].size: must be at least 1"
            )));
        }
        let start = u64::from(m.container_id());
        let end = start + u64::from(m.size());
        if end > u64::from(u32::MAX) + 1
            || u64::from(m.host_id()) + u64::from(m.size()) > u64::from(u32::MAX) + 1
        {
            return Err(Error::Invalid(format!(
                "{field}[{i}]: range goes past id 4294967295"
            )));
        }
        if ranges.iter().any(|&(s, e)| start < e && s < end) {
            return Err(Error::Invalid(format!(
                "{field}[{i}]: containerID range overlaps another mapping"
            )));
        }
        ranges.push((start, end));
    }
    if maps.len() > 340 {
        return Err(Error::Invalid(format!(
            "{field}: the kernel takes at most 340 mappings"
        )));
    }
    Ok(())
}

/// Sysctls are namespaced only in part: writing a host-wide one from a
/// container would change the host, so only the namespaced ones are allowed,
/// and only when the container has the namespace they belong to (as runc).
fn validate_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.contains("..") || key.starts_with('/') || key.starts_with('.') {
        return Err(Error::Invalid(format!(
            "linux.sysctl {key:?}: not a sysctl name"
        )));
    }
    let need = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(Error::Invalid(format!(
            "linux.sysctl {key:?}: not namespaced, so a container may not set it"
        )));
    };
    if !has(need) {
        return Err(Error::Invalid(format!(
            "linux.sysctl {key:?}: needs a {need} namespace in linux.namespaces"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> std::result::Result<(), String> {
        let spec = parse(v.to_string().as_bytes())?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_config_is_valid() {
        check(minimal()).expect("valid");
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let mut v = minimal();
        v["linux"]["namespaces"][1]["type"] = "foo".into();
        let e = check(v).expect_err("must fail");
        assert!(
            e.starts_with("linux.namespaces[1].type: unknown variant `foo`"),
            "{e}"
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let e = parse(b"{\"ociVersion\": ").expect_err("must fail");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = minimal();
        v["process"]["user"]["uid"] = "root".into();
        let e = check(v).expect_err("must fail");
        assert!(e.starts_with("process.user.uid: invalid type"), "{e}");
    }

    #[test]
    fn refusals_name_the_field() {
        type Change = fn(&mut serde_json::Value);
        let cases: Vec<(Change, &str)> = vec![
            (
                |v| v["process"]["args"] = serde_json::json!([]),
                "process.args",
            ),
            (|v| v["process"]["cwd"] = "rel".into(), "process.cwd"),
            (
                |v| v["process"]["env"] = serde_json::json!(["NOEQUALS"]),
                "process.env[0]",
            ),
            (|v| v["ociVersion"] = "2.0.0".into(), "ociVersion"),
            (
                |v| v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]),
                "linux.namespaces: a user namespace needs a mount namespace",
            ),
            (
                |v| {
                    v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
                    v["linux"]["rootfsPropagation"] = "shared".into();
                },
                "linux.rootfsPropagation \"shared\": needs a mount namespace",
            ),
            (
                |v| {
                    v["linux"]["namespaces"] =
                        serde_json::json!([{"type": "mount"}, {"type": "mount"}])
                },
                "linux.namespaces[1]",
            ),
            (
                |v| {
                    v["linux"]["uidMappings"] =
                        serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}])
                },
                "linux.uidMappings",
            ),
            (|v| v["hostname"] = "box".into(), "hostname"),
            (
                |v| v["windows"] = serde_json::json!({"layerFolders": []}),
                "windows: berth runs Linux containers",
            ),
            (
                |v| v["process"]["commandLine"] = "cmd /c".into(),
                "process.commandLine: is for Windows",
            ),
            (
                |v| v["process"]["user"]["username"] = "admin".into(),
                "process.user.username",
            ),
            (
                |v| v["linux"]["netDevices"] = serde_json::json!({"eth1": {}}),
                "linux.netDevices",
            ),
            (
                |v| v["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_BIND"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                |v| {
                    v["linux"]["timeOffsets"] =
                        serde_json::json!({"monotonic": {"secs": 10, "nanosecs": 0}})
                },
                "linux.timeOffsets: needs a new time namespace",
            ),
            (
                |v| v["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"}),
                "not namespaced",
            ),
            (
                |v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"}),
                "needs a net namespace",
            ),
        ];
        for (change, want) in cases {
            let mut v = minimal();
            change(&mut v);
            let e = check(v).expect_err(want);
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        }
    }

    #[test]
    fn no_mount_namespace_is_accepted() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        check(v).expect("a pid namespace alone");
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([]);
        check(v).expect("no namespaces at all");
    }

    #[test]
    fn overlapping_user_mappings_are_refused() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}]);
        v["linux"]["uidMappings"] = serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 100},
            {"containerID": 50, "hostID": 200000, "size": 10}
        ]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
        let e = check(v).expect_err("overlap");
        assert!(e.contains("linux.uidMappings[1]"), "{e}");
    }
}
