//! The OCI runtime config a container runs with, built from its record (the client's
//! ContainerConfig and HostConfig merged with the image's config) the way dockerd builds it:
//! docker's default capability set, masked and read-only /proc paths, new pid, ipc, uts, mount
//! and network namespaces, the hostname, limits, env, user, working directory, tmpfs mounts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use api_server::ApiError;
use api_types::models::{ContainerConfig, HostConfig};
use monitor_protocol::RootfsMount;
use serde_json::{json, Value};

use crate::state::ContainerRecord;

pub mod host;

use host::NsMode;

/// The PATH a container gets when its image sets none (dockerd's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities (moby's `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines, in number order (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: &[&str] = &api_types::capabilities::ALL;

/// Paths docker hides from containers (bind of /dev/null or an empty read-only tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker makes read-only in containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter(msg.into())
}

/// Every capability this host grants berthd (its bounding set): what `--privileged` and
/// `--cap-add ALL` give, as dockerd gives them (a VM may lack some, e.g. CAP_SYS_RESOURCE).
fn host_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Normalises a capability name as docker accepts it (`net_admin`, `CAP_NET_ADMIN`, `ALL`).
fn cap_name(name: &str) -> Result<String, ApiError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(invalid(format!("unknown capability: {name:?}")))
    }
}

/// The capability set: docker's defaults (or all with `--privileged`), with `--cap-add` and
/// `--cap-drop` applied as dockerd applies them (drop ALL first, then add).
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, ApiError> {
    if host.privileged == Some(true) {
        return Ok(host_caps());
    }
    let adds = host
        .cap_add
        .iter()
        .flatten()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = host
        .cap_drop
        .iter()
        .flatten()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if adds.iter().any(|a| a == "ALL") {
        return Ok(host_caps());
    }
    for a in adds {
        if !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

/// The OCI seccomp section for a container with capability set `caps`: berth's default
/// profile unless `--privileged` or `--security-opt seccomp=unconfined` (then none), or the
/// docker-format profile `seccomp=` carries (the JSON text the docker CLI sends after reading
/// the file, or an absolute path on berthd's host, read here).
pub fn seccomp(host: &HostConfig, caps: &[String]) -> Result<Option<Value>, ApiError> {
    let chosen = host
        .security_opt
        .iter()
        .flatten()
        .filter_map(|o| {
            o.strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
        })
        .next_back();
    if host.privileged == Some(true) || chosen == Some("unconfined") {
        return Ok(None);
    }
    let set: oci_spec::runtime::Capabilities = caps
        .iter()
        .filter_map(|c| serde_json::from_value(Value::String(c.clone())).ok())
        .collect();
    let profile = match chosen.map(str::trim) {
        None | Some("") | Some("builtin") => seccomp_profile::default_profile(&set),
        Some(text) => {
            let bytes = if text.starts_with('{') {
                text.as_bytes().to_vec()
            } else if text.starts_with('/') {
                std::fs::read(text).map_err(|e| {
                    invalid(format!(
                        "--security-opt seccomp={text}: read the profile: {e}"
                    ))
                })?
            } else {
                return Err(invalid(format!(
                    "--security-opt seccomp={text}: expected unconfined, a JSON profile or an absolute path to one"
                )));
            };
            let host_facts = seccomp_profile::docker::Host::current();
            seccomp_profile::docker::from_docker_json(&bytes, &set, &host_facts)
                .map_err(|e| invalid(format!("--security-opt seccomp: {e}")))?
        }
    };
    serde_json::to_value(&profile)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("encode the seccomp profile: {e}")))
}

/// Merges `KEY=VALUE` lists: later keys replace earlier ones, order of first appearance kept.
pub fn merge_env<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for kv in list {
            let key = kv.split('=').next().unwrap_or("");
            match out
                .iter_mut()
                .find(|e| e.split('=').next().unwrap_or("") == key)
            {
                Some(e) => *e = kv.clone(),
                None => out.push(kv.clone()),
            }
        }
    }
    out
}

/// Merges the client's container config with the image's config (`config` of the image's JSON),
/// as dockerd does at create; returns the merged config and the program (path, args).
pub fn merge_config(
    mut config: ContainerConfig,
    image: &Value,
) -> Result<(ContainerConfig, String, Vec<String>), ApiError> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
    };
    let img = &image["config"];
    let image_env = strings(&img["Env"]).unwrap_or_default();
    let env = merge_env([image_env.as_slice(), config.env.as_deref().unwrap_or(&[])]);
    config.env = Some(env);
    // moby's merge: a user entrypoint (even an empty one, which resets the image's) keeps the
    // image's Cmd out only when it is not empty.
    let user_entrypoint = config
        .entrypoint
        .take()
        .map(|e| e.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
    match user_entrypoint {
        Some(e) if !e.is_empty() => config.entrypoint = Some(e),
        given => {
            if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                config.cmd = strings(&img["Cmd"]);
            }
            config.entrypoint = match given {
                Some(_) => None,
                None => strings(&img["Entrypoint"]),
            };
        }
    }
    if config.working_dir.as_ref().is_none_or(|w| w.is_empty()) {
        config.working_dir = img["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    if config.user.as_ref().is_none_or(|u| u.is_empty()) {
        config.user = img["User"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    if config.healthcheck.is_none() {
        config.healthcheck = serde_json::from_value(img["Healthcheck"].clone()).ok();
    }
    if config.stop_signal.is_none() {
        config.stop_signal = img["StopSignal"].as_str().map(str::to_owned);
    }
    let mut labels: HashMap<String, String> = img["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(config.labels.take().unwrap_or_default());
    config.labels = Some(labels);
    let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    argv.extend(config.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(invalid("no command specified"));
    }
    let path = argv.remove(0);
    Ok((config, path, argv))
}

/// Checks the host config for what berth does not do yet, so a create fails cleanly instead of
/// running a container without what was asked.
pub fn refuse_unsupported(host: &HostConfig) -> Result<(), ApiError> {
    let not_yet = |what: &str| {
        Err(ApiError::NotImplemented(format!(
            "{what} is not supported by berthd yet"
        )))
    };
    if host.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return not_yet("legacy container links (--link; use a user-defined network, where containers find each other by name)");
    }
    if host
        .network_mode
        .as_deref()
        .is_some_and(|m| m.starts_with("container:") && m.len() == "container:".len())
    {
        return Err(invalid(
            "--network container: needs a container name or ID".to_string(),
        ));
    }
    host::check(host)?;
    crate::restart::validate(host).map_err(ApiError::InvalidParameter)?;
    for opt in host.security_opt.iter().flatten() {
        let ok = matches!(
            opt.as_str(),
            "no-new-privileges"
                | "no-new-privileges:true"
                | "no-new-privileges=true"
                | "no-new-privileges:false"
                | "no-new-privileges=false"
        ) || opt.starts_with("seccomp=")
            || opt.starts_with("seccomp:")
            // berthd gives containers neither an AppArmor profile nor an SELinux label, so
            // asking for none is what already happens; naming a profile or label is refused.
            || matches!(
                opt.as_str(),
                "apparmor=unconfined" | "apparmor:unconfined" | "label=disable" | "label:disable"
            );
        if !ok {
            return not_yet(&format!("--security-opt {opt}"));
        }
    }
    // A bad profile is refused at create, not at the first start.
    seccomp(host, &capabilities(host)?)?;
    Ok(())
}

/// The layers of a rootfs, top first (for reading /etc/passwd without mounting).
fn layers(m: &RootfsMount) -> Vec<PathBuf> {
    if m.typ == "bind" {
        return vec![PathBuf::from(&m.source)];
    }
    m.upper_dir()
        .into_iter()
        .chain(m.lower_dirs())
        .map(PathBuf::from)
        .collect()
}

/// Reads `etc/<file>` from the topmost layer that has it.
fn read_layered(m: &RootfsMount, file: &str) -> Option<String> {
    layers(m)
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("etc").join(file)).ok())
}

/// Resolves `-u user[:group]` to numeric ids, numbers first, names from the image's
/// /etc/passwd and /etc/group. Returns (uid, gid, additional gids).
pub fn resolve_user(user: &str, rootfs: &RootfsMount) -> Result<(u32, u32), ApiError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => {
            let gid = read_layered(rootfs, "passwd").and_then(|p| {
                p.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 3 && f[2] == u)
                        .then(|| f[3].parse().ok())
                        .flatten()
                })
            });
            (n, gid.unwrap_or(0))
        }
        Err(_) => {
            let passwd = read_layered(rootfs, "passwd").ok_or_else(|| {
                invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
            passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 3 && f[0] == u)
                        .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                        .flatten()
                })
                .ok_or_else(|| {
                    invalid(format!(
                        "unable to find user {u}: no matching entries in passwd file"
                    ))
                })?
        }
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read_layered(rootfs, "group")
                .and_then(|groups| {
                    groups.lines().find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() > 2 && f[0] == g)
                            .then(|| f[2].parse().ok())
                            .flatten()
                    })
                })
                .ok_or_else(|| {
                    invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// The OCI `process` of a container or of an exec in it.
pub fn process(
    record: &ContainerRecord,
    args: Vec<String>,
    extra_env: &[String],
    user: Option<&str>,
    cwd: Option<&str>,
    tty: bool,
    hostname: &str,
) -> Result<Value, ApiError> {
    let config = &record.config;
    let host = &record.host_config;
    let user = user
        .filter(|u| !u.is_empty())
        .or(config.user.as_deref())
        .unwrap_or("");
    let (uid, gid) = resolve_user(user, &record.rootfs)?;
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    let env = merge_env([
        env.as_slice(),
        config.env.as_deref().unwrap_or(&[]),
        extra_env,
    ]);
    let caps = capabilities(host)?;
    let no_new_privs = host.security_opt.iter().flatten().any(|o| {
        o == "no-new-privileges"
            || o.ends_with("no-new-privileges:true")
            || o == "no-new-privileges=true"
    });
    let mut rlimits = Vec::new();
    for u in host.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if soft < 0 || hard < 0 {
            return Err(invalid(format!("invalid ulimit {name}: negative value")));
        }
        rlimits.push(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": soft,
            "hard": hard,
        }));
    }
    let cwd = cwd
        .filter(|c| !c.is_empty())
        .or(config.working_dir.as_deref())
        .filter(|c| !c.is_empty())
        .unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let gids = host::additional_gids(host, || read_layered(&record.rootfs, "group"))?;
    let mut p = json!({
        "terminal": tty,
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": no_new_privs,
    });
    if !rlimits.is_empty() {
        p["rlimits"] = Value::Array(rlimits);
    }
    if !gids.is_empty() {
        p["user"]["additionalGids"] = json!(gids);
    }
    if let Some(adj) = host.oom_score_adj.filter(|a| *a != 0) {
        p["oomScoreAdj"] = json!(adj);
    }
    Ok(p)
}

/// Where a container's network namespace and its name files come from.
#[derive(Debug, Clone, Copy)]
pub struct NetJoin<'a> {
    /// The namespace to join (`--network container:NAME`: the other container's), else a new
    /// one (or the host's with `--network host`).
    pub netns: Option<&'a Path>,
    /// The directory holding the `hosts`, `hostname` and `resolv.conf` bind-mounted in: the
    /// container's own, or the one whose namespace it joins.
    pub files_dir: &'a Path,
    /// The PID namespace to join (`--pid container:NAME`: the other container's, found at
    /// start), else a new one (or the host's with `--pid host`).
    pub pid_ns: Option<&'a Path>,
}

/// The container's hostname: `-h`, or the host's with `--network host`, or the short ID.
pub fn hostname(record: &ContainerRecord) -> String {
    if let Some(h) = record.config.hostname.as_deref().filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    let host_uts = host::uts_mode(&record.host_config).is_ok_and(|m| m == NsMode::Host);
    if host_uts || record.host_config.network_mode.as_deref() == Some("host") {
        if let Ok(h) = nix::unistd::gethostname() {
            return h.to_string_lossy().into_owned();
        }
    }
    record.id[..12].to_string()
}

/// Parses a docker size such as `64m` or `1g` (`--tmpfs size=`, `--shm-size`) into bytes.
fn tmpfs_options(opts: &str) -> Vec<String> {
    let mut out: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => out.retain(|x| x != "noexec"),
            "suid" => out.retain(|x| x != "nosuid"),
            "dev" => out.retain(|x| x != "nodev"),
            other => out.push(other.to_string()),
        }
    }
    out
}

/// A `--device HOST[:CONTAINER[:PERMS]]`: the device node to make and its cgroup rule.
fn device(d: &api_types::models::generated::DeviceMapping) -> Result<(Value, Value), ApiError> {
    use nix::sys::stat::{major, minor, stat, SFlag};
    let host = d.path_on_host.clone().unwrap_or_default();
    let inside = d
        .path_in_container
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| host.clone());
    let perms = d
        .cgroup_permissions
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "rwm".into());
    if !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid(format!(
            "invalid device permissions {perms:?} for {host}"
        )));
    }
    let st = stat(host.as_str()).map_err(|e| {
        invalid(format!(
            "error gathering device information while adding custom device {host:?}: {e}"
        ))
    })?;
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let typ = if fmt == SFlag::S_IFCHR {
        "c"
    } else if fmt == SFlag::S_IFBLK {
        "b"
    } else {
        return Err(invalid(format!("{host:?} is not a device node")));
    };
    let (maj, min) = (major(st.st_rdev), minor(st.st_rdev));
    Ok((
        json!({"path": inside, "type": typ, "major": maj, "minor": min,
               "fileMode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}),
        json!({"allow": true, "type": typ, "major": maj, "minor": min, "access": perms}),
    ))
}

/// The host mount holding `path` (after resolving it on the host, as the bind will) and its
/// propagation fields from mountinfo (`shared:N`, `master:N`).
fn host_mount_of(path: &str) -> Result<(PathBuf, String), ApiError> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| invalid(format!("resolve the bind source {path}: {e}")))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ApiError::Internal(format!("read /proc/self/mountinfo: {e}")))?;
    let mut best: Option<(PathBuf, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| PathBuf::from(unescape_octal(p))) else {
            continue;
        };
        if !real.starts_with(&point) {
            continue;
        }
        let optional = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        // Later lines are mounted over earlier ones at the same point.
        if best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((point, optional));
        }
    }
    best.ok_or_else(|| ApiError::Internal(format!("no mount holds {}", real.display())))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_octal(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Adds the container's `-v`/`--mount`/`--volumes-from` mounts, parents before children (as
/// dockerd sorts them), replacing a default mount at the same destination (`/etc/hosts`, …).
/// Binds and volumes are recursive binds; the runtime resolves each destination inside the
/// rootfs, so a symlink in the image cannot point a mount at the host. Returns the root
/// propagation a shared or slave bind needs, checking (as dockerd does) that its source's
/// mount on the host is shared (or, for slave, shared or slave).
fn user_mounts(
    mounts: &mut Vec<Value>,
    records: &[crate::state::MountRecord],
) -> Result<Option<&'static str>, ApiError> {
    let mut root_propagation = None;
    let mut sorted: Vec<&crate::state::MountRecord> = records.iter().collect();
    sorted.sort_by_key(|m| {
        Path::new(&m.destination)
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .count()
    });
    for m in sorted {
        let dest = Path::new(&m.destination);
        mounts.retain(|x| x["destination"].as_str().map(Path::new) != Some(dest));
        if m.typ == "tmpfs" {
            mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": m.tmpfs_options}));
            continue;
        }
        let mut options = vec!["rbind".to_string()];
        options.push(if m.propagation.is_empty() {
            "rprivate".to_string()
        } else {
            m.propagation.clone()
        });
        let shared = matches!(m.propagation.as_str(), "shared" | "rshared");
        let slave = matches!(m.propagation.as_str(), "slave" | "rslave");
        if shared || slave {
            let (point, fields) = host_mount_of(&m.source)?;
            let is_shared = fields.split(' ').any(|f| f.starts_with("shared:"));
            let is_slave = fields.split(' ').any(|f| f.starts_with("master:"));
            if shared && !is_shared {
                return Err(invalid(format!(
                    "path {} is mounted on {} but it is not a shared mount",
                    m.source,
                    point.display()
                )));
            }
            if slave && !is_shared && !is_slave {
                return Err(invalid(format!(
                    "path {} is mounted on {} but it is not a shared or slave mount",
                    m.source,
                    point.display()
                )));
            }
            root_propagation = match (shared, root_propagation) {
                (true, _) | (false, Some("shared")) => Some("shared"),
                _ => Some("rslave"),
            };
        }
        if !m.rw {
            options.push("ro".into());
        }
        mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options}));
    }
    Ok(root_propagation)
}

/// The whole OCI config for the container's init.
pub fn build(
    record: &ContainerRecord,
    cgroup_parent: &str,
    init_path: Option<&Path>,
    net: &NetJoin<'_>,
) -> Result<Value, ApiError> {
    let host = &record.host_config;
    let hostname = hostname(record);
    let with_init = host.init == Some(true);
    let mut argv = Vec::new();
    if with_init {
        if init_path.is_none() {
            return Err(ApiError::NotImplemented(
                "--init needs an init binary: start berthd with --init-path (for example /usr/bin/tini-static)".into(),
            ));
        }
        argv.extend(["/sbin/docker-init".to_string(), "--".to_string()]);
    }
    argv.push(record.path.clone());
    argv.extend(record.args.iter().cloned());
    let tty = record.config.tty == Some(true);
    let mut process = process(record, argv, &[], None, None, tty, &hostname)?;
    // The docker CLI sends the terminal's size with a -t container so its first lines are laid
    // out right before any resize arrives.
    if let Some([h, w]) = host.console_size.as_deref().map(|s| [s.first(), s.get(1)]) {
        if let (true, Some(&h), Some(&w)) = (tty, h, w) {
            if h > 0 && w > 0 {
                process["consoleSize"] = json!({"height": h, "width": w});
            }
        }
    }
    let (pid_ns, ipc_ns, uts_ns) = (
        host::pid_mode(host)?,
        host::ipc_mode(host)?,
        host::uts_mode(host)?,
    );
    let privileged = host.privileged == Some(true);
    let host_net = host.network_mode.as_deref() == Some("host");

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/etc/resolv.conf", "type": "bind", "source": net.files_dir.join("resolv.conf"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hostname", "type": "bind", "source": net.files_dir.join("hostname"), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": net.files_dir.join("hosts"), "options": ["rbind", "rprivate"]}),
    ];
    match ipc_ns {
        NsMode::Private => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", host.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20))]})),
        // The host's IPC namespace comes with the host's shared memory, as dockerd binds it.
        NsMode::Host => mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]})),
        NsMode::NoShm | NsMode::Joined => {}
    }
    if let (true, Some(init)) = (with_init, init_path) {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }
    for (dest, opts) in host.tmpfs.iter().flatten().collect::<BTreeMap<_, _>>() {
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid tmpfs mount point {dest:?}: not an absolute path"
            )));
        }
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": tmpfs_options(opts)}));
    }
    let root_propagation = user_mounts(&mut mounts, &record.mounts)?;

    let mut namespaces = vec![json!({"type": "mount"})];
    match (pid_ns, net.pid_ns) {
        (NsMode::Host, _) => {}
        (NsMode::Joined, Some(path)) => namespaces.push(json!({"type": "pid", "path": path})),
        // At create (a check only) the other container's namespace is not looked up yet.
        _ => namespaces.push(json!({"type": "pid"})),
    }
    if ipc_ns != NsMode::Host {
        namespaces.push(json!({"type": "ipc"}));
    }
    if uts_ns != NsMode::Host {
        namespaces.push(json!({"type": "uts"}));
    }
    if host::private_cgroupns(host) {
        namespaces.push(json!({"type": "cgroup"}));
    }
    match net.netns {
        Some(path) => namespaces.push(json!({"type": "network", "path": path})),
        None if !host_net => namespaces.push(json!({"type": "network"})),
        None => {}
    }

    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if privileged {
        resources = json!({"devices": [{"allow": true, "access": "rwm"}]});
    }
    let mut memory = serde_json::Map::new();
    if let Some(m) = host.memory.filter(|m| *m > 0) {
        if m < 6 << 20 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
        let swap = match host.memory_swap {
            Some(-1) => -1,
            Some(s) if s > 0 => {
                if s < m {
                    return Err(invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    ));
                }
                s
            }
            _ => m * 2,
        };
        memory.insert("limit".into(), json!(m));
        memory.insert("swap".into(), json!(swap));
    } else if host.memory_swap.is_some_and(|s| s > 0) {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    host::memory_extras(host, &mut memory)?;
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    host::cpu_realtime(host, &mut cpu)?;
    if let Some(s) = host.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(n) = host.nano_cpus.filter(|n| *n > 0) {
        if host.cpu_quota.is_some_and(|q| q > 0) || host.cpu_period.is_some_and(|p| p > 0) {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
            ));
        }
        let period = 100_000i64;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(n * period / 1_000_000_000));
    }
    if let Some(q) = host.cpu_quota.filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = host.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(c) = host.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(c) = host.cpuset_mems.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("mems".into(), json!(c));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(b) = host::block_io(host)? {
        resources["blockIO"] = b;
    }
    if let Some(p) = host.pids_limit.filter(|p| *p > 0) {
        resources["pids"] = json!({"limit": p});
    }

    let mut devices = Vec::new();
    for d in host.devices.iter().flatten() {
        let (dev, rule) = device(d)?;
        devices.push(dev);
        if let Some(list) = resources["devices"].as_array_mut() {
            list.push(rule);
        }
    }
    if !privileged {
        for rule in host.device_cgroup_rules.iter().flatten() {
            let rule = host::device_cgroup_rule(rule)?;
            if let Some(list) = resources["devices"].as_array_mut() {
                list.push(rule);
            }
        }
    }
    let parent = host
        .cgroup_parent
        .as_deref()
        .filter(|p| !p.trim_matches('/').is_empty())
        .unwrap_or(cgroup_parent);
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/{}/{}", parent.trim_matches('/'), record.id),
    });
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if !privileged {
        // dockerd's rule: lists the client gives (`--security-opt systempaths=unconfined` sends
        // empty ones) replace the defaults.
        linux["maskedPaths"] = match &host.masked_paths {
            Some(p) => json!(p),
            None => json!(MASKED_PATHS),
        };
        linux["readonlyPaths"] = match &host.readonly_paths {
            Some(p) => json!(p),
            None => json!(READONLY_PATHS),
        };
    }
    if let Some(p) = root_propagation {
        linux["rootfsPropagation"] = json!(p);
    }
    if let Some(s) = host.sysctls.as_ref().filter(|s| !s.is_empty()) {
        linux["sysctl"] = json!(s);
    }
    if let Some(profile) = seccomp(host, &capabilities(host)?)? {
        linux["seccomp"] = profile;
    }
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": host.readonly_rootfs == Some(true)},
        "mounts": mounts,
        "linux": linux,
    });
    // A hostname needs a UTS namespace of the container's own.
    if uts_ns != NsMode::Host {
        spec["hostname"] = json!(hostname);
    }
    if let Some(a) = host.annotations.as_ref().filter(|a| !a.is_empty()) {
        spec["annotations"] = json!(a.iter().collect::<BTreeMap<_, _>>());
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_add_and_drop() {
        let mut h = HostConfig {
            cap_add: Some(vec!["net_admin".into()]),
            cap_drop: Some(vec!["CAP_CHOWN".into()]),
            ..Default::default()
        };
        let caps = capabilities(&h).expect("valid");
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        h.cap_drop = Some(vec!["ALL".into()]);
        assert_eq!(capabilities(&h).expect("valid"), vec!["CAP_NET_ADMIN"]);
        h.cap_add = Some(vec!["nosuch".into()]);
        assert!(capabilities(&h).is_err());
    }

    #[test]
    fn user_mounts_go_parents_first_and_replace_defaults() {
        use crate::state::MountRecord;
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc"}),
            json!({"destination": "/etc/hosts", "type": "bind", "source": "/default"}),
        ];
        let records = vec![
            MountRecord {
                typ: "bind".into(),
                source: "/srv/a/b".into(),
                destination: "/a/b".into(),
                rw: false,
                propagation: "rprivate".into(),
                ..Default::default()
            },
            MountRecord {
                typ: "volume".into(),
                name: "v".into(),
                source: "/var/lib/berth/volumes/v/_data".into(),
                destination: "/a".into(),
                rw: true,
                ..Default::default()
            },
            MountRecord {
                typ: "bind".into(),
                source: "/mine".into(),
                destination: "/etc/hosts".into(),
                rw: true,
                ..Default::default()
            },
            MountRecord {
                typ: "tmpfs".into(),
                destination: "/t".into(),
                rw: true,
                tmpfs_options: vec!["nosuid".into(), "size=1024".into()],
                ..Default::default()
            },
        ];
        let root = user_mounts(&mut mounts, &records).expect("private binds need nothing");
        assert_eq!(root, None);
        let dests: Vec<&str> = mounts
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        assert_eq!(dests, ["/proc", "/a", "/t", "/a/b", "/etc/hosts"]);
        assert_eq!(mounts[1]["options"], json!(["rbind", "rprivate"]));
        assert_eq!(mounts[3]["options"], json!(["rbind", "rprivate", "ro"]));
        assert_eq!(mounts[4]["source"], "/mine");
        assert_eq!(mounts[2]["type"], "tmpfs");
    }

    fn record(host: HostConfig) -> ContainerRecord {
        ContainerRecord {
            id: "ab".repeat(32),
            name: "web".into(),
            created: String::new(),
            image: "busybox".into(),
            image_id: String::new(),
            path: "sh".into(),
            args: Vec::new(),
            config: ContainerConfig {
                tty: Some(true),
                ..Default::default()
            },
            host_config: host,
            rootfs: RootfsMount {
                typ: "bind".into(),
                source: "/nonexistent-rootfs".into(),
                options: Vec::new(),
            },
            state: Default::default(),
            restart_count: 0,
            manually_stopped: false,
            endpoints_config: Default::default(),
            net: Default::default(),
            primary_disconnected: false,
            mounts: Vec::new(),
        }
    }

    #[test]
    fn host_config_fields_reach_the_oci_config() {
        let files = Path::new("/nonexistent-files");
        let net = NetJoin {
            netns: None,
            files_dir: files,
            pid_ns: None,
        };
        let host = HostConfig {
            oom_score_adj: Some(-200),
            group_add: Some(vec!["5".into()]),
            pid_mode: Some("host".into()),
            uts_mode: Some("host".into()),
            ipc_mode: Some("none".into()),
            cgroupns_mode: Some(api_types::models::generated::HostConfigCgroupnsModeEnum::PRIVATE),
            cgroup_parent: Some("/mine/".into()),
            memory_reservation: Some(1 << 20),
            device_cgroup_rules: Some(vec!["b 8:* r".into()]),
            annotations: Some([("k".to_string(), "v".to_string())].into()),
            masked_paths: Some(Vec::new()),
            console_size: Some(vec![40, 120]),
            ..Default::default()
        };
        let spec = build(&record(host), "berth", None, &net).expect("builds");
        assert_eq!(spec["process"]["oomScoreAdj"], -200);
        assert_eq!(spec["process"]["user"]["additionalGids"], json!([5]));
        assert_eq!(
            spec["process"]["consoleSize"],
            json!({"height": 40, "width": 120})
        );
        let kinds: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert_eq!(kinds, ["mount", "ipc", "cgroup", "network"]);
        let joined = build(
            &record(HostConfig {
                pid_mode: Some("container:db".into()),
                ..Default::default()
            }),
            "berth",
            None,
            &NetJoin {
                pid_ns: Some(Path::new("/proc/42/ns/pid")),
                ..net
            },
        )
        .expect("builds");
        assert!(joined["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .contains(&json!({"type": "pid", "path": "/proc/42/ns/pid"})));
        assert!(
            spec.get("hostname").is_none(),
            "--uts host sets no hostname"
        );
        assert!(
            !spec["mounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .any(|m| m["destination"] == "/dev/shm"),
            "--ipc none has no /dev/shm"
        );
        assert_eq!(
            spec["linux"]["cgroupsPath"],
            format!("/mine/{}", "ab".repeat(32))
        );
        assert_eq!(
            spec["linux"]["resources"]["memory"],
            json!({"reservation": 1 << 20})
        );
        assert!(spec["linux"]["resources"]["devices"]
            .as_array()
            .expect("device rules")
            .contains(&json!({"allow": true, "type": "b", "major": 8, "access": "r"})));
        assert_eq!(spec["annotations"], json!({"k": "v"}));
        assert_eq!(spec["linux"]["maskedPaths"], json!([]));
        assert_eq!(spec["linux"]["readonlyPaths"], json!(READONLY_PATHS));

        let plain = build(&record(HostConfig::default()), "berth", None, &net).expect("builds");
        assert_eq!(
            plain["linux"]["cgroupsPath"],
            format!("/berth/{}", "ab".repeat(32))
        );
        assert_eq!(plain["hostname"], "abababababab");
        assert!(plain["process"].get("oomScoreAdj").is_none());
        let ipc_host = build(
            &record(HostConfig {
                ipc_mode: Some("host".into()),
                ..Default::default()
            }),
            "berth",
            None,
            &net,
        )
        .expect("builds");
        assert!(ipc_host["mounts"]
            .as_array()
            .expect("mounts")
            .contains(&json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]})));
    }

    #[test]
    fn security_opts_asking_for_nothing_pass_and_profiles_are_refused() {
        let with = |opt: &str| HostConfig {
            security_opt: Some(vec![opt.to_string()]),
            ..Default::default()
        };
        for ok in [
            "label=disable",
            "label:disable",
            "apparmor=unconfined",
            "no-new-privileges",
        ] {
            refuse_unsupported(&with(ok)).expect(ok);
        }
        for bad in [
            "label=type:svirt_t",
            "apparmor=docker-default",
            "systempaths=unconfined",
        ] {
            let e = refuse_unsupported(&with(bad)).expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn octal_escapes_of_mountinfo_are_undone() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/é\\04"), "/é\\04");
    }

    #[test]
    fn env_merges_by_key() {
        let a = vec!["PATH=/a".to_string(), "X=1".to_string()];
        let b = vec!["X=2".to_string(), "Y=3".to_string()];
        assert_eq!(
            merge_env([a.as_slice(), b.as_slice()]),
            ["PATH=/a", "X=2", "Y=3"]
        );
    }

    #[test]
    fn config_takes_image_defaults() {
        let image = json!({"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/w"}});
        let (c, path, args) = merge_config(ContainerConfig::default(), &image).expect("merges");
        assert_eq!(path, "sh");
        assert!(args.is_empty());
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        let given = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        let (_, path, args) = merge_config(given, &image).expect("merges");
        assert_eq!((path.as_str(), args), ("echo", vec!["hi".to_string()]));
        assert!(merge_config(ContainerConfig::default(), &json!({"config": {}})).is_err());
    }
}
