//! Running as an ordinary user ("rootless"): what changes when the runtime's
//! effective uid is not 0.
//!
//! - **Id maps.** The kernel lets an unprivileged process write a new user
//!   namespace's `uid_map`/`gid_map` itself only for one line mapping its own
//!   effective id (and, for `gid_map`, only after `setgroups` is "deny").
//!   Any other mapping (a range, several lines, another host id) needs
//!   CAP_SETUID/CAP_SETGID in the parent namespace, which only the setuid
//!   helpers `newuidmap`/`newgidmap` (Debian's `uidmap` package) have: they
//!   check the ranges against `/etc/subuid` and `/etc/subgid` and write the
//!   map for us. **This is the one place berth executes a helper binary**;
//!   the runtime's own parent process runs it (single-threaded, before the
//!   init is told it is mapped), never the container's init.
//! - **State.** The default `--root` is `$XDG_RUNTIME_DIR/berth`, else
//!   `/run/user/UID/berth` ([`default_root_dir`]), as runc does.
//! - **Cgroups.** Used only where the user may write every hierarchy the
//!   container needs (a delegated subtree: directories the user owns).
//!   Otherwise the container gets no cgroup of its own, with one warning
//!   line naming why; a config with resource limits is then refused, not
//!   silently run unlimited ([`cgroup`]).
//! - **Refusals.** What needs privilege on the host is refused before
//!   anything is made, with the reason ([`check`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxResources, Spec};

use crate::cgroups::{Cgroup, Version};

/// The errors of running rootless; each says what cannot be done and why.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    /// The config asks for something an unprivileged user cannot have.
    #[error("rootless: {what} cannot be used by an unprivileged user: {why}")]
    Refused {
        /// The config field.
        what: String,
        /// Why not, and what to do instead.
        why: String,
    },
    /// `newuidmap`/`newgidmap` is not installed.
    #[error(
        "rootless: the {field} mapping {mapping} needs {helper} (a range, or an id other than \
         your own, can only be mapped by that setuid helper), but {helper} is not on PATH; \
         install the `uidmap` package"
    )]
    HelperMissing {
        /// `linux.uidMappings` or `linux.gidMappings`.
        field: &'static str,
        /// The mapping as `container:host:size` lines.
        mapping: String,
        /// `newuidmap` or `newgidmap`.
        helper: &'static str,
    },
    /// `newuidmap`/`newgidmap` refused or failed.
    #[error("rootless: {helper} {pid} {args} failed ({status}): {stderr}{advice}")]
    Helper {
        /// `newuidmap` or `newgidmap`.
        helper: &'static str,
        /// The init's pid.
        pid: i32,
        /// The mapping arguments.
        args: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
        /// What /etc/subuid or /etc/subgid says about the ranges, if they are the cause.
        advice: String,
    },
    /// Writing an id map or setgroups file directly failed.
    #[error("rootless: write {path}: {source}")]
    Write {
        /// The /proc file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The host's cgroups cannot be used and the config asks for limits.
    #[error(
        "rootless: linux.resources sets {fields}, but no cgroup can enforce them: {why}; remove \
         the limits, or run as root, or delegate a cgroup to this user"
    )]
    LimitsWithoutCgroup {
        /// The resource fields that are set.
        fields: String,
        /// Why there is no cgroup.
        why: String,
    },
}

/// Whether the runtime runs rootless: its effective uid is not 0.
pub fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// The default state directory of an unprivileged user:
/// `$XDG_RUNTIME_DIR/berth`, else `/run/user/UID/berth`.
pub fn default_root_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("berth"),
        None => PathBuf::from(format!("/run/user/{}/berth", nix::unistd::geteuid())),
    }
}

/// Refuses, before anything is made, what an unprivileged user cannot have.
pub fn check(spec: &Spec) -> Result<(), RootlessError> {
    let refuse = |what: &str, why: &str| RootlessError::Refused {
        what: what.to_string(),
        why: why.to_string(),
    };
    let linux = spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none());
    let joins_user = namespaces
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_some());
    if !new_user && !joins_user {
        return Err(refuse(
            "a container without a user namespace",
            "making namespaces, mounts and the root filesystem needs capabilities that only a \
             user namespace gives; add {\"type\": \"user\"} to linux.namespaces with uid and gid \
             mappings (`berth-runtime spec --rootless` writes such a config)",
        ));
    }
    if new_user {
        let linux = linux.ok_or_else(|| refuse("linux", "missing"))?;
        for (field, maps) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            if maps.as_ref().is_none_or(|m| m.is_empty()) {
                return Err(refuse(
                    field,
                    "a new user namespace needs a mapping (at least your own id to 0)",
                ));
            }
        }
    }
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let parsed = crate::rootfs::parse_options(m.options().as_deref().unwrap_or(&[]));
        if parsed.idmap
            || m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
            || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        {
            return Err(refuse(
                &format!("mounts[{i}]: an ID-mapped mount"),
                "the kernel idmaps a host filesystem only for root on the host; run as root, \
                 or chown the source to the ids the container maps",
            ));
        }
    }
    let Some(linux) = linux else { return Ok(()) };
    if let Some(sysctls) = linux.sysctl() {
        for key in sysctls.keys() {
            if !sysctl_is_namespaced(key) {
                return Err(refuse(
                    &format!("linux.sysctl {key:?}"),
                    "it is not namespaced, so setting it would change the whole host",
                ));
            }
            if key.starts_with("net.")
                && !namespaces.iter().any(|n| {
                    n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none()
                })
            {
                return Err(refuse(
                    &format!("linux.sysctl {key:?}"),
                    "without a new network namespace it is the host's network setting",
                ));
            }
        }
    }
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        if adj < current_oom_score_adj() {
            return Err(refuse(
                "process.oomScoreAdj",
                "lowering it below the caller's own value needs CAP_SYS_RESOURCE on the host",
            ));
        }
    }
    Ok(())
}

/// The sysctls that belong to a namespace (runc's list): ipc (`kernel.msg*`,
/// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`), uts (`kernel.hostname`,
/// `kernel.domainname`) and network (`net.*`).
fn sysctl_is_namespaced(key: &str) -> bool {
    matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
            | "kernel.hostname"
            | "kernel.domainname"
    ) || key.starts_with("fs.mqueue.")
        || key.starts_with("net.")
}

fn current_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The container's cgroup when running rootless: the one [`Cgroup::new`]
/// resolves if the user may write every hierarchy that holds a controller,
/// else none (a cgroup with no hierarchies, which every operation skips),
/// after one warning line; then a config with resource limits is refused.
/// With no `cgroupsPath`, the path is `berth/<id>` below the caller's own
/// cgroup, where a delegated subtree is.
pub fn cgroup(
    cgroups_path: Option<&str>,
    container_id: &str,
    resources: Option<&LinuxResources>,
) -> crate::Result<Cgroup> {
    let default_path = format!("berth/{container_id}");
    let path = match cgroups_path.filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => default_path.as_str(),
    };
    let resolved = Cgroup::new(Some(path), container_id)?;
    let why = match unwritable(&resolved) {
        None => {
            let usable: Vec<_> = resolved
                .hierarchies()
                .iter()
                .filter(|h| !h.controllers.is_empty() || hierarchy_writable(h))
                .cloned()
                .collect();
            return Ok(Cgroup::from_parts(
                resolved.path().to_string(),
                resolved.layout_kind(),
                usable,
            ));
        }
        Some(why) => why,
    };
    let limits = limit_fields(resources);
    if !limits.is_empty() {
        return Err(RootlessError::LimitsWithoutCgroup {
            fields: limits.join(", "),
            why,
        }
        .into());
    }
    tracing::warn!("rootless: container {container_id} runs without a cgroup of its own: {why}");
    Ok(Cgroup::from_parts(
        resolved.path().to_string(),
        resolved.layout_kind(),
        Vec::new(),
    ))
}

/// Why the user cannot use the cgroup, or `None` when every hierarchy that
/// holds a controller is writable (the directory, or the nearest existing
/// ancestor in which it would be made).
fn unwritable(cgroup: &Cgroup) -> Option<String> {
    let needed: Vec<_> = cgroup
        .hierarchies()
        .iter()
        .filter(|h| !h.controllers.is_empty())
        .collect();
    if needed.is_empty() {
        return Some(format!(
            "no cgroup hierarchy of this host holds a controller at {}",
            cgroup.path()
        ));
    }
    for h in needed {
        if !hierarchy_writable(h) {
            let kind = match h.version {
                Version::V1 => "cgroup v1",
                Version::V2 => "cgroup v2",
            };
            let names: Vec<_> = h.controllers.iter().map(|c| c.v1_name()).collect();
            let need = match h.version {
                Version::V1 => format!("no write access to {}", nearest_existing(&h.dir).display()),
                Version::V2 => format!(
                    "no write access to {}, or the caller's own cgroup is not in a subtree it \
                     may write",
                    nearest_existing(&h.dir).display()
                ),
            };
            return Some(format!(
                "the {kind} hierarchy of {} at {} is not delegated to uid {} ({need})",
                names.join(","),
                h.mount_point.display(),
                nix::unistd::geteuid(),
            ));
        }
    }
    None
}

/// Whether this user may make the cgroup of `h` and move processes into it.
/// On cgroup v2 the kernel also requires write access to `cgroup.procs` of
/// the common ancestor of the caller's cgroup and the target, so a
/// delegated subtree is one the caller itself is in.
fn hierarchy_writable(h: &crate::cgroups::Hierarchy) -> bool {
    if !writable_for_cgroup(&h.dir) {
        return false;
    }
    if h.version == Version::V1 {
        return true;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        })
        .unwrap_or_default();
    let Ok(target) = h.dir.strip_prefix(&h.mount_point) else {
        return false;
    };
    let mut common = h.mount_point.clone();
    for (a, b) in Path::new(own.trim_start_matches('/'))
        .components()
        .zip(target.components())
    {
        if a != b {
            break;
        }
        common.push(a);
    }
    nix::unistd::access(&common.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Whether this user may make (or use) a cgroup directory at `dir`.
fn writable_for_cgroup(dir: &Path) -> bool {
    let existing = nearest_existing(dir);
    let ok = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    if existing == dir {
        ok(&dir.join("cgroup.procs"))
    } else {
        ok(existing)
    }
}

fn nearest_existing(dir: &Path) -> &Path {
    let mut p = dir;
    while !p.exists() {
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    p
}

/// The resource limits the config sets (every field of `linux.resources`
/// but the device rules, which a user namespace enforces by itself: no
/// device node can be made in it).
pub fn limit_fields(resources: Option<&LinuxResources>) -> Vec<String> {
    let Some(r) = resources else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(r) else {
        return vec!["linux.resources".to_string()];
    };
    map.into_iter()
        .filter(|(k, v)| k != "devices" && set(v))
        .map(|(k, _)| format!("linux.resources.{k}"))
        .collect()
}

fn set(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Object(m) => m.values().any(set),
        serde_json::Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// Writes a new user namespace's id maps as an unprivileged user: one line
/// mapping the caller's own id directly (with `setgroups` "deny" first for
/// the gid map, as the kernel requires), anything else through
/// `newuidmap`/`newgidmap`.
pub fn write_id_maps(
    pid: Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), RootlessError> {
    let own_uid = nix::unistd::geteuid();
    let own_gid = nix::unistd::getegid();
    if is_own(uid, own_uid.as_raw()) {
        write_proc(pid, "uid_map", &map_text(uid))?;
    } else {
        run_helper(pid, Helper::Uid, uid, own_uid, own_gid)?;
    }
    if is_own(gid, own_gid.as_raw()) {
        write_proc(pid, "setgroups", "deny")?;
        write_proc(pid, "gid_map", &map_text(gid))?;
    } else {
        run_helper(pid, Helper::Gid, gid, own_uid, own_gid)?;
    }
    Ok(())
}

/// Whether the mapping is the one the kernel lets an unprivileged process
/// write itself: a single line of size 1 mapping its own id.
pub fn is_own(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == own)
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_proc(pid: Pid, file: &str, text: &str) -> Result<(), RootlessError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, text.as_bytes()).map_err(|source| RootlessError::Write { path, source })
}

#[derive(Clone, Copy)]
enum Helper {
    Uid,
    Gid,
}

impl Helper {
    fn binary(self) -> &'static str {
        match self {
            Helper::Uid => "newuidmap",
            Helper::Gid => "newgidmap",
        }
    }
    fn field(self) -> &'static str {
        match self {
            Helper::Uid => "linux.uidMappings",
            Helper::Gid => "linux.gidMappings",
        }
    }
    fn file(self) -> &'static str {
        match self {
            Helper::Uid => "/etc/subuid",
            Helper::Gid => "/etc/subgid",
        }
    }
}

fn run_helper(
    pid: Pid,
    helper: Helper,
    maps: &[LinuxIdMapping],
    own_uid: Uid,
    own_gid: Gid,
) -> Result<(), RootlessError> {
    let mapping = maps
        .iter()
        .map(|m| format!("{}:{}:{}", m.container_id(), m.host_id(), m.size()))
        .collect::<Vec<_>>()
        .join(",");
    let Some(binary) = find_in_path(helper.binary()) else {
        return Err(RootlessError::HelperMissing {
            field: helper.field(),
            mapping,
            helper: helper.binary(),
        });
    };
    let args: Vec<String> = maps
        .iter()
        .flat_map(|m| [m.container_id(), m.host_id(), m.size()])
        .map(|n| n.to_string())
        .collect();
    let out = Command::new(&binary)
        .arg(pid.as_raw().to_string())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| RootlessError::Helper {
            helper: helper.binary(),
            pid: pid.as_raw(),
            args: args.join(" "),
            status: "could not be started".to_string(),
            stderr: e.to_string(),
            advice: String::new(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let own = match helper {
        Helper::Uid => own_uid.as_raw(),
        Helper::Gid => own_gid.as_raw(),
    };
    let text = std::fs::read_to_string(helper.file()).unwrap_or_default();
    let advice = subid_advice(helper.file(), &text, &user_name(own_uid), own, maps);
    Err(RootlessError::Helper {
        helper: helper.binary(),
        pid: pid.as_raw(),
        args: args.join(" "),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        advice,
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn user_name(uid: Uid) -> String {
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default()
}

/// The subordinate id ranges (`name:start:count` lines) of the user named
/// `name` or numbered `id`.
pub fn subid_ranges(text: &str, name: &str, id: u32) -> Vec<(u64, u64)> {
    let id = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who.is_empty() || (who != name && who != id) {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// Why `newuidmap`/`newgidmap` refused the mappings, from the subordinate id
/// file: the first range that is neither the user's own id nor inside one of
/// their ranges. Empty when the file allows every range (then the helper's
/// own message is the cause).
fn subid_advice(file: &str, text: &str, name: &str, own: u32, maps: &[LinuxIdMapping]) -> String {
    let ranges = subid_ranges(text, name, own);
    for m in maps {
        let (start, size) = (u64::from(m.host_id()), u64::from(m.size()));
        let inside = ranges
            .iter()
            .any(|(s, c)| start >= *s && start + size <= s + c);
        if inside || (size == 1 && start == u64::from(own)) {
            continue;
        }
        let have = if ranges.is_empty() {
            "none".to_string()
        } else {
            ranges
                .iter()
                .map(|(s, c)| format!("{s}-{}", s + c - 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return format!(
            "; host ids {start}-{} are not among {name:?}'s ranges in {file} ({have}); add them \
             with `usermod --add-sub{}s {start}-{} {name}`",
            start + size - 1,
            if file.ends_with("subuid") {
                "uid"
            } else {
                "gid"
            },
            start + size - 1,
        );
    }
    String::new()
}

/// Whether the container's root maps to the caller's own uid and gid (so
/// files the caller makes are the container root's without a chown).
pub fn root_is_caller(linux: &Linux) -> bool {
    let host_of = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.and_then(|m| m.iter().find(|m| m.container_id() == 0))
            .map(|m| m.host_id())
    };
    host_of(linux.uid_mappings().as_ref()) == Some(nix::unistd::geteuid().as_raw())
        && host_of(linux.gid_mappings().as_ref()) == Some(nix::unistd::getegid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .expect("mapping")
    }

    #[test]
    fn only_one_own_id_of_size_one_is_written_directly() {
        assert!(is_own(&[map(0, 1000, 1)], 1000));
        assert!(!is_own(&[map(0, 1000, 2)], 1000));
        assert!(!is_own(&[map(0, 1001, 1)], 1000));
        assert!(!is_own(&[map(0, 1000, 1), map(1, 100000, 10)], 1000));
    }

    #[test]
    fn subid_ranges_by_name_or_uid() {
        let text = "alice:100000:65536\n1000:200000:10\nbob:300000:5\n";
        assert_eq!(
            subid_ranges(text, "alice", 1000),
            vec![(100000, 65536), (200000, 10)]
        );
        assert!(subid_ranges(text, "carol", 7).is_empty());
    }

    #[test]
    fn advice_names_the_range_outside_the_file() {
        let text = "alice:100000:65536\n";
        let ok = [map(0, 1000, 1), map(1, 100000, 65536)];
        assert_eq!(subid_advice("/etc/subuid", text, "alice", 1000, &ok), "");
        let bad = [map(0, 1000, 1), map(1, 100000, 70000)];
        let msg = subid_advice("/etc/subuid", text, "alice", 1000, &bad);
        assert!(msg.contains("100000-169999"), "{msg}");
        assert!(msg.contains("--add-subuids"), "{msg}");
    }

    #[test]
    fn limits_ignore_device_rules_and_empty_sections() {
        assert!(limit_fields(None).is_empty());
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{}}"#)
                .expect("resources");
        assert!(limit_fields(Some(&r)).is_empty());
        let r: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).expect("resources");
        assert_eq!(limit_fields(Some(&r)), vec!["linux.resources.memory"]);
    }

    #[test]
    fn namespaced_sysctls() {
        assert!(sysctl_is_namespaced("net.ipv4.ip_forward"));
        assert!(sysctl_is_namespaced("kernel.shmmax"));
        assert!(!sysctl_is_namespaced("kernel.pid_max"));
        assert!(!sysctl_is_namespaced("vm.swappiness"));
    }
}
