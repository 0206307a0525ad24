//! The HostConfig fields that become cgroup limits, namespaces and process settings, and the
//! ones berthd refuses. Each field a client can send is either applied here (or elsewhere in
//! `spec`) or refused with a message naming it; a field at its default value (absent, zero,
//! empty) is never refused, so clients that send every field at its default keep working.

use std::collections::BTreeMap;

use api_server::ApiError;
use api_types::models::generated::{
    HostConfigCgroupnsModeEnum, HostConfigIsolationEnum, ResourcesBlkioWeightDevice, ThrottleDevice,
};
use api_types::models::HostConfig;
use serde_json::{json, Map, Value};

use super::invalid;

/// A 400 naming a field berthd does not support, and why.
fn refused(field: &str, why: &str) -> ApiError {
    invalid(format!("{field} is not supported by berthd: {why}"))
}

/// A namespace mode (`PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`) berthd applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsMode {
    /// A namespace of the container's own (the default).
    Private,
    /// The host's namespace: none is made.
    Host,
    /// `IpcMode: none`: a private IPC namespace without /dev/shm.
    NoShm,
    /// `PidMode: container:NAME`: that container's namespace, found at start.
    Joined,
}

/// The PID namespace mode (`--pid`).
pub fn pid_mode(host: &HostConfig) -> Result<NsMode, ApiError> {
    match host.pid_mode.as_deref().unwrap_or("") {
        "" | "private" => Ok(NsMode::Private),
        "host" => Ok(NsMode::Host),
        m if m.len() > "container:".len() && m.starts_with("container:") => Ok(NsMode::Joined),
        m => Err(invalid(format!(
            "invalid PidMode {m:?}: expected host or container:NAME"
        ))),
    }
}

/// The container whose PID namespace `--pid container:NAME` joins.
pub fn pid_container(host: &HostConfig) -> Option<&str> {
    host.pid_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("container:"))
        .filter(|n| !n.is_empty())
}

/// The IPC namespace mode (`--ipc`); `shareable` is private (others could join it).
pub fn ipc_mode(host: &HostConfig) -> Result<NsMode, ApiError> {
    match host.ipc_mode.as_deref().unwrap_or("") {
        "" | "private" | "shareable" => Ok(NsMode::Private),
        "host" => Ok(NsMode::Host),
        "none" => Ok(NsMode::NoShm),
        m if m.starts_with("container:") => Err(refused(
            &format!("IpcMode {m:?} (--ipc container:)"),
            "joining another container's IPC namespace (and its /dev/shm) is not implemented",
        )),
        m => Err(invalid(format!(
            "invalid IPC mode {m:?}: expected private, shareable, host, none or container:NAME"
        ))),
    }
}

/// The UTS namespace mode (`--uts`).
pub fn uts_mode(host: &HostConfig) -> Result<NsMode, ApiError> {
    match host.uts_mode.as_deref().unwrap_or("") {
        "" => Ok(NsMode::Private),
        "host" => Ok(NsMode::Host),
        m => Err(invalid(format!("invalid UTSMode {m:?}: expected host"))),
    }
}

/// Whether the container gets a cgroup namespace (`--cgroupns private`); the default on a
/// cgroup v1 host, as dockerd's, is the host's.
pub fn private_cgroupns(host: &HostConfig) -> bool {
    host.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::PRIVATE)
}

/// Refuses, at create, what berthd does not do, and values out of the kernel's ranges.
pub fn check(host: &HostConfig) -> Result<(), ApiError> {
    pid_mode(host)?;
    ipc_mode(host)?;
    uts_mode(host)?;
    match host.userns_mode.as_deref().unwrap_or("") {
        // berthd never remaps users, so "host" is what every container gets.
        "" | "host" => {}
        m => {
            return Err(refused(
                &format!("UsernsMode {m:?} (--userns)"),
                "berthd runs containers in the host's user namespace (no userns-remap)",
            ))
        }
    }
    let nonzero = |v: Option<i64>| v.is_some_and(|v| v != 0);
    for (field, set) in [
        ("CpuCount", nonzero(host.cpu_count)),
        ("CpuPercent", nonzero(host.cpu_percent)),
        ("IOMaximumIOps", nonzero(host.io_maximum_iops)),
        ("IOMaximumBandwidth", nonzero(host.io_maximum_bandwidth)),
    ] {
        if set {
            return Err(refused(field, "it is a Windows-only setting"));
        }
    }
    if host.storage_opt.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(refused(
            "StorageOpt (--storage-opt)",
            "the overlay snapshotter has no per-container size quota",
        ));
    }
    if let Some(d) = host
        .volume_driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(refused(
            &format!("VolumeDriver {d:?} (--volume-driver)"),
            "only the local volume driver exists",
        ));
    }
    if host.device_requests.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(refused(
            "DeviceRequests (--gpus)",
            "no device driver (such as NVIDIA's) is available; use --device for device nodes",
        ));
    }
    if host.cgroup.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(refused(
            "Cgroup",
            "joining another container's cgroup is not implemented",
        ));
    }
    match host.isolation {
        None | Some(HostConfigIsolationEnum::EMPTY) | Some(HostConfigIsolationEnum::DEFAULT) => {}
        Some(other) => {
            return Err(invalid(format!(
                "Invalid isolation: {other:?} - Linux only supports 'default'"
            )))
        }
    }
    if host.shm_size.is_some_and(|s| s < 0) {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if let Some(adj) = host.oom_score_adj.filter(|a| *a != 0) {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(format!(
                "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
    }
    if let Some(s) = host.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&s) {
            return Err(invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    if let Some(w) = host.blkio_weight.filter(|w| *w != 0) {
        if !(10..=1000).contains(&w) {
            return Err(invalid(
                "Range of blkio weight is from 10 to 1000".to_string(),
            ));
        }
    }
    for rule in host.device_cgroup_rules.iter().flatten() {
        device_cgroup_rule(rule)?;
    }
    Ok(())
}

/// `--uts host` with `-h`: dockerd's conflict.
pub fn check_hostname(host: &HostConfig, hostname: Option<&str>) -> Result<(), ApiError> {
    if uts_mode(host)? == NsMode::Host && hostname.is_some_and(|h| !h.is_empty()) {
        return Err(invalid("Conflicting options: hostname and the UTS mode"));
    }
    Ok(())
}

/// A `--device-cgroup-rule` (`c 1:3 mr`, `a *:* rwm`) as an OCI device rule.
pub fn device_cgroup_rule(rule: &str) -> Result<Value, ApiError> {
    let bad = || {
        invalid(format!(
            "invalid device cgroup rule {rule:?}: expected TYPE MAJOR:MINOR ACCESS, as 'c 1:3 mr'"
        ))
    };
    let fields: Vec<&str> = rule.split_whitespace().collect();
    let [typ, numbers, access] = fields.as_slice() else {
        return Err(bad());
    };
    if !matches!(*typ, "a" | "b" | "c")
        || access.is_empty()
        || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
    {
        return Err(bad());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let mut out = json!({"allow": true, "type": typ, "access": access});
    for (key, v) in [("major", major), ("minor", minor)] {
        if v != "*" {
            out[key] = json!(v.parse::<i64>().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// The major and minor numbers of a block device given by path (`--blkio-weight-device`,
/// `--device-read-bps`, …).
fn block_device(field: &str, path: &str) -> Result<(u64, u64), ApiError> {
    use nix::sys::stat::{major, minor, stat, SFlag};
    let st = stat(path).map_err(|e| invalid(format!("{field}: stat {path}: {e}")))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFBLK {
        return Err(invalid(format!("{field}: {path} is not a block device")));
    }
    Ok((major(st.st_rdev), minor(st.st_rdev)))
}

fn throttle(field: &str, list: &Option<Vec<ThrottleDevice>>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for d in list.iter().flatten() {
        let path = d.path.clone().unwrap_or_default();
        let rate = d.rate.unwrap_or(0);
        if rate < 0 {
            return Err(invalid(format!("{field}: negative rate for {path}")));
        }
        let (major, minor) = block_device(field, &path)?;
        out.push(json!({"major": major, "minor": minor, "rate": rate}));
    }
    Ok(out)
}

fn weight_devices(list: &Option<Vec<ResourcesBlkioWeightDevice>>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for d in list.iter().flatten() {
        let path = d.path.clone().unwrap_or_default();
        let weight = d.weight.unwrap_or(0);
        if !(10..=1000).contains(&weight) {
            return Err(invalid(format!(
                "BlkioWeightDevice {path}: weight {weight} is outside 10-1000"
            )));
        }
        let (major, minor) = block_device("BlkioWeightDevice", &path)?;
        out.push(json!({"major": major, "minor": minor, "weight": weight}));
    }
    Ok(out)
}

/// The OCI `linux.resources.blockIO` of `--blkio-weight`, `--blkio-weight-device` and the
/// `--device-{read,write}-{bps,iops}` throttles, or `None` when nothing is set.
pub fn block_io(host: &HostConfig) -> Result<Option<Value>, ApiError> {
    let mut b = Map::new();
    if let Some(w) = host.blkio_weight.filter(|w| *w != 0) {
        b.insert("weight".into(), json!(w));
    }
    for (key, list) in [
        ("weightDevice", weight_devices(&host.blkio_weight_device)?),
        (
            "throttleReadBpsDevice",
            throttle("BlkioDeviceReadBps", &host.blkio_device_read_bps)?,
        ),
        (
            "throttleWriteBpsDevice",
            throttle("BlkioDeviceWriteBps", &host.blkio_device_write_bps)?,
        ),
        (
            "throttleReadIOPSDevice",
            throttle("BlkioDeviceReadIOps", &host.blkio_device_read_iops)?,
        ),
        (
            "throttleWriteIOPSDevice",
            throttle("BlkioDeviceWriteIOps", &host.blkio_device_write_iops)?,
        ),
    ] {
        if !list.is_empty() {
            b.insert(key.into(), Value::Array(list));
        }
    }
    Ok((!b.is_empty()).then_some(Value::Object(b)))
}

/// The memory settings besides the limit: `--memory-reservation`, `--memory-swappiness`,
/// `--oom-kill-disable`, added to `memory` (the OCI `linux.resources.memory`).
pub fn memory_extras(host: &HostConfig, memory: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(r) = host.memory_reservation.filter(|r| *r != 0) {
        if r < 0 {
            return Err(invalid("MemoryReservation must not be negative"));
        }
        if let Some(limit) = host.memory.filter(|m| *m > 0) {
            if r > limit {
                return Err(invalid(
                    "Minimum memory limit can not be less than memory reservation limit, see usage",
                ));
            }
        }
        memory.insert("reservation".into(), json!(r));
    }
    if let Some(s) = host.memory_swappiness.filter(|s| *s != -1) {
        memory.insert("swappiness".into(), json!(s));
    }
    if host.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    Ok(())
}

/// `--cpu-rt-period` and `--cpu-rt-runtime`, added to `cpu`.
pub fn cpu_realtime(host: &HostConfig, cpu: &mut Map<String, Value>) -> Result<(), ApiError> {
    let period = host.cpu_realtime_period.filter(|p| *p != 0);
    let runtime = host.cpu_realtime_runtime.filter(|r| *r != 0);
    if let (Some(p), Some(r)) = (period, runtime) {
        if r > p {
            return Err(invalid(
                "cpu-rt-runtime cannot be higher than cpu-rt-period",
            ));
        }
    }
    if let Some(p) = period {
        cpu.insert("realtimePeriod".into(), json!(p));
    }
    if let Some(r) = runtime {
        cpu.insert("realtimeRuntime".into(), json!(r));
    }
    Ok(())
}

/// `--group-add`: each group by number or by name from the image's /etc/group.
pub fn additional_gids(
    host: &HostConfig,
    group_file: impl FnOnce() -> Option<String>,
) -> Result<Vec<u32>, ApiError> {
    let wanted: Vec<&String> = host.group_add.iter().flatten().collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let groups = group_file().unwrap_or_default();
    let by_name: BTreeMap<&str, u32> = groups
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((*f.first()?, f.get(2)?.parse().ok()?))
        })
        .collect();
    let mut out = Vec::new();
    for g in wanted {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => *by_name.get(g.as_str()).ok_or_else(|| {
                invalid(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_never_refused() {
        let h = HostConfig {
            cpu_count: Some(0),
            cpu_percent: Some(0),
            io_maximum_iops: Some(0),
            io_maximum_bandwidth: Some(0),
            memory_swappiness: Some(-1),
            oom_score_adj: Some(0),
            blkio_weight: Some(0),
            storage_opt: Some(Default::default()),
            volume_driver: Some(String::new()),
            device_requests: Some(Vec::new()),
            isolation: Some(HostConfigIsolationEnum::EMPTY),
            cgroup: Some(String::new()),
            pid_mode: Some(String::new()),
            ipc_mode: Some("private".into()),
            uts_mode: Some(String::new()),
            userns_mode: Some(String::new()),
            ..Default::default()
        };
        check(&h).expect("every field at its default");
        check(&HostConfig::default()).expect("no fields");
    }

    #[test]
    fn unsupported_values_are_refused_by_name() {
        let cases: Vec<(HostConfig, &str)> = vec![
            (
                HostConfig {
                    cpu_count: Some(2),
                    ..Default::default()
                },
                "CpuCount",
            ),
            (
                HostConfig {
                    storage_opt: Some([("size".to_string(), "1G".to_string())].into()),
                    ..Default::default()
                },
                "StorageOpt",
            ),
            (
                HostConfig {
                    volume_driver: Some("nfs".into()),
                    ..Default::default()
                },
                "VolumeDriver",
            ),
            (
                HostConfig {
                    device_requests: Some(vec![Default::default()]),
                    ..Default::default()
                },
                "DeviceRequests",
            ),
            (
                HostConfig {
                    pid_mode: Some("container:".into()),
                    ..Default::default()
                },
                "PidMode",
            ),
            (
                HostConfig {
                    ipc_mode: Some("container:web".into()),
                    ..Default::default()
                },
                "IpcMode",
            ),
            (
                HostConfig {
                    userns_mode: Some("keep-id".into()),
                    ..Default::default()
                },
                "UsernsMode",
            ),
            (
                HostConfig {
                    isolation: Some(HostConfigIsolationEnum::HYPERV),
                    ..Default::default()
                },
                "isolation",
            ),
            (
                HostConfig {
                    oom_score_adj: Some(1001),
                    ..Default::default()
                },
                "oom score adj",
            ),
            (
                HostConfig {
                    memory_swappiness: Some(101),
                    ..Default::default()
                },
                "swappiness",
            ),
            (
                HostConfig {
                    blkio_weight: Some(5),
                    ..Default::default()
                },
                "blkio weight",
            ),
        ];
        for (h, word) in cases {
            let e = check(&h).expect_err(word).to_string();
            assert!(e.contains(word), "{e:?} should name {word}");
        }
    }

    #[test]
    fn namespace_modes() {
        let h = HostConfig {
            pid_mode: Some("host".into()),
            ipc_mode: Some("none".into()),
            uts_mode: Some("host".into()),
            userns_mode: Some("host".into()),
            ..Default::default()
        };
        check(&h).expect("host modes are applied");
        assert_eq!(pid_mode(&h).expect("pid"), NsMode::Host);
        assert_eq!(ipc_mode(&h).expect("ipc"), NsMode::NoShm);
        assert_eq!(uts_mode(&h).expect("uts"), NsMode::Host);
        assert!(check_hostname(&h, Some("web")).is_err());
        assert!(check_hostname(&h, Some("")).is_ok());
        let joined = HostConfig {
            pid_mode: Some("container:db".into()),
            ..Default::default()
        };
        assert_eq!(pid_mode(&joined).expect("pid"), NsMode::Joined);
        assert_eq!(pid_container(&joined), Some("db"));
    }

    #[test]
    fn device_cgroup_rules_parse() {
        assert_eq!(
            device_cgroup_rule("c 1:3 mr").expect("valid"),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mr"})
        );
        assert_eq!(
            device_cgroup_rule("a *:* rwm").expect("valid"),
            json!({"allow": true, "type": "a", "access": "rwm"})
        );
        for bad in ["c 1:3", "x 1:3 r", "c 1 r", "c 1:3 rx", "c a:3 r"] {
            assert!(device_cgroup_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_cpu_and_groups() {
        let h = HostConfig {
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            memory_swappiness: Some(10),
            oom_kill_disable: Some(true),
            cpu_realtime_period: Some(1000),
            cpu_realtime_runtime: Some(500),
            group_add: Some(vec!["audio".into(), "42".into(), "audio".into()]),
            ..Default::default()
        };
        let mut m = Map::new();
        memory_extras(&h, &mut m).expect("valid");
        assert_eq!(
            Value::Object(m),
            json!({"reservation": 32 << 20, "swappiness": 10, "disableOOMKiller": true})
        );
        let mut c = Map::new();
        cpu_realtime(&h, &mut c).expect("valid");
        assert_eq!(
            Value::Object(c),
            json!({"realtimePeriod": 1000, "realtimeRuntime": 500})
        );
        let gids = additional_gids(&h, || Some("root:x:0:\naudio:x:29:\n".into())).expect("found");
        assert_eq!(gids, [29, 42]);
        let missing = HostConfig {
            group_add: Some(vec!["nosuch".into()]),
            ..Default::default()
        };
        assert!(additional_gids(&missing, || None).is_err());
        let over = HostConfig {
            memory: Some(16 << 20),
            memory_reservation: Some(32 << 20),
            ..Default::default()
        };
        assert!(memory_extras(&over, &mut Map::new()).is_err());
        assert_eq!(block_io(&HostConfig::default()).expect("none"), None);
        let weighted = HostConfig {
            blkio_weight: Some(300),
            ..Default::default()
        };
        assert_eq!(
            block_io(&weighted).expect("weight"),
            Some(json!({"weight": 300}))
        );
    }
}
