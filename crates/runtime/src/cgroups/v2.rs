//! cgroup v2: controller delegation, the v1-to-v2 value conversions, freezing and statistics.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::stats::{
    blkio_weight_to_io_weight, cpu_shares_to_weight, parse_cpu_list, parse_flat_keyed,
    parse_io_stat,
};
use super::{
    fs, BlkioStats, Controller, CpuSetStats, CpuStats, Error, Hierarchy, HugetlbStats, LayoutKind,
    MemoryStats, Result,
};

/// Enables `controllers` in `cgroup.subtree_control` of every ancestor of `leaf`,
/// from the mount root down, writing only where one is missing (a write to a
/// cgroup that has processes would fail with EBUSY even for a no-op).
pub(crate) fn enable_controllers(
    mount_point: &Path,
    leaf: &Path,
    controllers: &[Controller],
) -> Result<()> {
    let names: Vec<&str> = controllers.iter().filter_map(|c| c.v2_name()).collect();
    if names.is_empty() {
        return Ok(());
    }
    let Ok(below) = leaf.strip_prefix(mount_point) else {
        return Ok(());
    };
    let mut dir = mount_point.to_path_buf();
    // Every ancestor of the leaf, not the leaf itself: its children are not ours to make.
    for component in below.components() {
        let enabled = fs::read(&dir, "cgroup.subtree_control")?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !enabled.split_whitespace().any(|e| e == **n))
            .map(|n| format!("+{n}"))
            .collect();
        if !missing.is_empty() {
            fs::write(&dir, "cgroup.subtree_control", &missing.join(" "))?;
        }
        dir.push(component);
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// The v2 `memory.swap.max` for the spec's memory+swap value, as runc converts it.
pub(crate) fn swap_max(
    cgroup: &str,
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<String>> {
    let invalid = |reason: String| Error::InvalidResources {
        cgroup: cgroup.to_string(),
        reason,
    };
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    match (limit, swap) {
        // Unlimited memory without a swap value: swap unlimited too, as on v1.
        (-1, 0) => Ok(Some("max".to_string())),
        (_, 0) => Ok(None),
        (_, -1) => Ok(Some("max".to_string())),
        (0 | -1, _) => Err(invalid(
            "a memory+swap limit needs a memory limit on cgroup v2".to_string(),
        )),
        (l, s) if l < 0 => Err(invalid(format!("memory limit {l} is negative (swap {s})"))),
        (l, s) if s < l => Err(invalid(format!(
            "memory+swap limit {s} is below the memory limit {l}"
        ))),
        (l, s) => Ok(Some((s - l).to_string())),
    }
}

/// Memory: `memory.max`, `memory.swap.max` (swap alone), `memory.low`.
pub(crate) fn memory(cgroup: &str, dir: &Path, m: &LinuxMemory) -> Result<()> {
    if m.kernel_tcp().is_some() {
        return Err(Error::Unsupported {
            cgroup: cgroup.to_string(),
            what: "linux.resources.memory.kernelTCP".to_string(),
            why: "cgroup v2 has no separate TCP buffer memory limit".to_string(),
        });
    }
    let swap = swap_max(cgroup, m.swap(), m.limit())?;
    if let (Some(true), Some(l)) = (m.check_before_update(), m.limit().filter(|v| *v > 0)) {
        // The spec's checkBeforeUpdate: v2 would otherwise reclaim or OOM-kill to fit.
        let current = fs::read_u64(dir, "memory.current")?;
        if current > l as u64 {
            return Err(Error::InvalidResources {
                cgroup: cgroup.to_string(),
                reason: format!("memory limit {l} is below the current usage {current}"),
            });
        }
    }
    if let Some(l) = m.limit().filter(|v| *v != 0) {
        fs::write(dir, "memory.max", &max_or(l))?;
    }
    if let Some(s) = swap {
        match fs::write(dir, "memory.swap.max", &s) {
            Ok(()) => {}
            // No swap on the host (no file): "no limit" and "no swap" hold anyway, as runc allows.
            Err(Error::Write { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && (s == "max" || s == "0") => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        fs::write(dir, "memory.low", &max_or(r))?;
    }
    if m.swappiness().is_some() {
        tracing::warn!(
            cgroup,
            "cgroup v2 has no per-cgroup swappiness; memory.swappiness ignored"
        );
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!(
            cgroup,
            "cgroup v2 cannot disable the OOM killer per cgroup; disableOOMKiller ignored"
        );
    }
    Ok(())
}

/// CPU: weight from shares, `cpu.max`, burst, idle; realtime is refused (v2 has no RT groups).
pub(crate) fn cpu(cgroup: &str, dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(Error::Unsupported {
            cgroup: cgroup.to_string(),
            what: "cpu realtimePeriod/realtimeRuntime".to_string(),
            why: "cgroup v2 has no realtime group scheduling".to_string(),
        });
    }
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        fs::write(dir, "cpu.weight", &cpu_shares_to_weight(shares).to_string())?;
    }
    let quota = c.quota().filter(|v| *v != 0);
    let period = c.period().filter(|v| *v != 0);
    let max = match (quota, period) {
        (Some(q), Some(p)) => Some(format!("{} {p}", max_or(q))),
        // One token keeps the current period.
        (Some(q), None) => Some(max_or(q)),
        // cpu.max needs a quota before the period; keep the current one.
        (None, Some(p)) => {
            let current = fs::read(dir, "cpu.max")?;
            let q = current
                .split_whitespace()
                .next()
                .unwrap_or("max")
                .to_string();
            Some(format!("{q} {p}"))
        }
        (None, None) => None,
    };
    if let Some(max) = max {
        fs::write(dir, "cpu.max", &max)?;
    }
    if let Some(burst) = c.burst() {
        fs::write(dir, "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// Block I/O: `io.weight` (converted from the v1 range) and `io.max` throttles.
pub(crate) fn io(cgroup: &str, dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let has_leaf = b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some_and(|w| w != 0));
    if has_leaf {
        return Err(Error::Unsupported {
            cgroup: cgroup.to_string(),
            what: "linux.resources.blockIO leafWeight".to_string(),
            why: "cgroup v2 has no leaf weight".to_string(),
        });
    }
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write(
            dir,
            "io.weight",
            &format!("default {}", blkio_weight_to_io_weight(w)),
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            fs::write(
                dir,
                "io.weight",
                &format!(
                    "{}:{} {}",
                    d.major(),
                    d.minor(),
                    blkio_weight_to_io_weight(w)
                ),
            )?;
        }
    }
    let lists = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in lists {
        for d in list.iter().flatten() {
            // v1 takes 0 as "no limit"; v2 spells it max.
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

/// Refuses `unified` keys that could escape the cgroup or that name a controller this hierarchy does not hold.
pub(crate) fn check_unified_key(
    cgroup: &str,
    h: &Hierarchy,
    kind: LayoutKind,
    key: &str,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidResources {
        cgroup: cgroup.to_string(),
        reason,
    };
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(invalid(format!(
            "unified key {key:?} is not a cgroup file name"
        )));
    }
    let prefix = key.split('.').next().unwrap_or("");
    if prefix == "cgroup" {
        return Ok(());
    }
    let held = h.controllers.iter().any(|c| c.v2_name() == Some(prefix));
    // Pure v2: trust the kernel to refuse files of controllers that are not enabled.
    if kind == LayoutKind::V2 || held {
        return Ok(());
    }
    Err(invalid(format!(
        "unified key {key:?} belongs to the {prefix} controller, which is not on the cgroup v2 \
         hierarchy of this hybrid host"
    )))
}

/// How long [`freeze`] waits for `cgroup.events` to report frozen.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

fn read_events(file: &mut File, path: &Path) -> Result<bool> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(parse_flat_keyed(&text).get("frozen") == Some(&1))
}

/// Writes `cgroup.freeze` and waits on `cgroup.events` (which the kernel signals with POLLPRI) until frozen.
pub(crate) fn freeze(cgroup: &str, dir: &Path) -> Result<()> {
    let path = dir.join("cgroup.events");
    let mut events = File::open(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    fs::write(dir, "cgroup.freeze", "1")?;
    let start = Instant::now();
    loop {
        if read_events(&mut events, &path)? {
            return Ok(());
        }
        let left = FREEZE_TIMEOUT.saturating_sub(start.elapsed());
        if left.is_zero() {
            if let Err(e) = fs::write(dir, "cgroup.freeze", "0") {
                tracing::warn!(cgroup, error = %e, "could not thaw after a failed freeze");
            }
            return Err(Error::FreezeTimeout {
                cgroup: cgroup.to_string(),
                millis: FREEZE_TIMEOUT.as_millis() as u64,
                state: "not frozen".to_string(),
            });
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::Read {
                    path: path.clone(),
                    source: e.into(),
                })
            }
        }
    }
}

/// Whether `cgroup.events` says frozen.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(parse_flat_keyed(&fs::read(dir, "cgroup.events")?).get("frozen") == Some(&1))
}

/// CPU time from `cpu.stat` (always present on v2), converted from µs to ns.
pub(crate) fn cpu_usage_stats(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let stat = parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
    let get = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
    cpu.usage.total = get("usage_usec");
    cpu.usage.user = get("user_usec");
    cpu.usage.kernel = get("system_usec");
    Ok(())
}

/// CFS throttling from `cpu.stat` (only with the cpu controller).
pub(crate) fn cpu_throttling(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let stat = parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    cpu.throttling.periods = get("nr_periods");
    cpu.throttling.throttled_periods = get("nr_throttled");
    cpu.throttling.throttled_time = get("throttled_usec") * 1000;
    Ok(())
}

fn limit(dir: &Path, file: &str) -> Result<u64> {
    Ok(fs::read_u64_or_max(dir, file)?.unwrap_or(u64::MAX))
}

/// Memory usage and limits, with swap reported as memory+swap like v1's memsw (as runc does).
pub(crate) fn memory_stats(dir: &Path, m: &mut MemoryStats) -> Result<()> {
    m.usage.usage = fs::read_u64(dir, "memory.current")?;
    m.usage.limit = limit(dir, "memory.max")?;
    m.usage.max = fs::read_u64_optional(dir, "memory.peak")?;
    let events = parse_flat_keyed(&fs::read(dir, "memory.events")?);
    m.usage.failcnt = events.get("max").copied().unwrap_or(0);
    if dir.join("memory.swap.current").exists() {
        m.swap.usage = fs::read_u64(dir, "memory.swap.current")? + m.usage.usage;
        let swap_limit = limit(dir, "memory.swap.max")?;
        m.swap.limit = if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + m.usage.limit
        };
    }
    m.raw = parse_flat_keyed(&fs::read(dir, "memory.stat")?);
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    Ok(())
}

/// Bytes and operations from `io.stat`.
pub(crate) fn io_stats(dir: &Path, b: &mut BlkioStats) -> Result<()> {
    let (bytes, ios) = parse_io_stat(&dir.join("io.stat"), &fs::read(dir, "io.stat")?)?;
    b.io_service_bytes_recursive = bytes;
    b.io_serviced_recursive = ios;
    Ok(())
}

/// One page size's usage; `None` if the kernel has no files for it.
pub(crate) fn hugetlb_stats(dir: &Path, size: &str) -> Result<Option<HugetlbStats>> {
    let current = format!("hugetlb.{size}.current");
    if !dir.join(&current).exists() {
        return Ok(None);
    }
    let events = parse_flat_keyed(&fs::read(dir, &format!("hugetlb.{size}.events"))?);
    Ok(Some(HugetlbStats {
        usage: fs::read_u64(dir, &current)?,
        max: 0,
        failcnt: events.get("max").copied().unwrap_or(0),
    }))
}

/// The effective cpus and mems of a v2 cgroup (v2 has no other cpuset statistics).
pub(crate) fn cpuset_stats(dir: &Path, c: &mut CpuSetStats) -> Result<()> {
    for (file, out) in [
        ("cpuset.cpus.effective", &mut c.cpus),
        ("cpuset.mems.effective", &mut c.mems),
    ] {
        *out = parse_cpu_list(&dir.join(file), &fs::read(dir, file)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn unified(controllers: Vec<Controller>) -> Hierarchy {
        Hierarchy {
            version: super::super::Version::V2,
            controllers,
            name: None,
            mount_point: PathBuf::from("/sys/fs/cgroup/unified"),
            dir: PathBuf::from("/sys/fs/cgroup/unified/berth/x"),
        }
    }

    #[test]
    fn unified_keys_on_hybrid_must_belong_to_v2_controllers() {
        let h = unified(vec![Controller::Hugetlb]);
        assert!(check_unified_key("c", &h, LayoutKind::Hybrid, "hugetlb.2MB.max").is_ok());
        assert!(check_unified_key("c", &h, LayoutKind::Hybrid, "cgroup.max.depth").is_ok());
        assert!(check_unified_key("c", &h, LayoutKind::Hybrid, "memory.high").is_err());
        assert!(check_unified_key("c", &h, LayoutKind::V2, "memory.high").is_ok());
        for bad in ["", "memory", "../x.y", ".hidden", "a/b.c"] {
            assert!(
                check_unified_key("c", &h, LayoutKind::V2, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn swap_conversion_follows_runc() {
        assert_eq!(
            swap_max("c", None, Some(-1)).expect("ok").as_deref(),
            Some("max")
        );
        assert_eq!(swap_max("c", None, Some(100)).expect("ok"), None);
        assert_eq!(
            swap_max("c", Some(-1), Some(100)).expect("ok").as_deref(),
            Some("max")
        );
        assert_eq!(
            swap_max("c", Some(300), Some(100)).expect("ok").as_deref(),
            Some("200")
        );
        assert!(swap_max("c", Some(300), None).is_err());
        assert!(swap_max("c", Some(50), Some(100)).is_err());
    }
}
