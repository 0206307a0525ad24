//! cgroup v1 controllers: their files, the order writes must happen in, and their statistics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::stats::{parse_blkio_recursive, parse_cpu_list, parse_flat_keyed, parse_u64_list};
use super::{
    fs, BlkioStats, CpuSetStats, CpuStats, Error, HugetlbStats, MemoryEntry, MemoryStats, Result,
};

const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// Gives newly made cpuset directories their parent's cpus and mems: a v1 cpuset
/// starts empty, and no task can join an empty cpuset.
pub(crate) fn init_cpuset(mount_point: &Path, leaf: &Path, new_dirs: &[PathBuf]) -> Result<()> {
    match new_dirs.first() {
        Some(first) => {
            let parent = first.parent().unwrap_or(mount_point);
            let (cpus, mems) = filled_cpuset(mount_point, parent)?;
            for dir in new_dirs {
                fs::write(dir, "cpuset.cpus", &cpus)?;
                fs::write(dir, "cpuset.mems", &mems)?;
            }
            Ok(())
        }
        // The directory was already there (create is idempotent): repair it only if empty,
        // which a create interrupted by a crash can leave behind.
        None => {
            if fs::read(leaf, "cpuset.cpus")?.trim().is_empty() {
                let parent = leaf.parent().unwrap_or(mount_point);
                let (cpus, mems) = filled_cpuset(mount_point, parent)?;
                fs::write(leaf, "cpuset.cpus", &cpus)?;
                fs::write(leaf, "cpuset.mems", &mems)?;
            }
            Ok(())
        }
    }
}

/// The cpus and mems of `dir`, filling `dir` from its ancestors first if it is empty.
fn filled_cpuset(mount_point: &Path, dir: &Path) -> Result<(String, String)> {
    let cpus = fs::read(dir, "cpuset.cpus")?.trim().to_string();
    let mems = fs::read(dir, "cpuset.mems")?.trim().to_string();
    if (!cpus.is_empty() && !mems.is_empty()) || dir == mount_point {
        return Ok((cpus, mems));
    }
    let parent = dir.parent().unwrap_or(mount_point);
    let (pcpus, pmems) = filled_cpuset(mount_point, parent)?;
    if cpus.is_empty() {
        fs::write(dir, "cpuset.cpus", &pcpus)?;
    }
    if mems.is_empty() {
        fs::write(dir, "cpuset.mems", &pmems)?;
    }
    Ok((
        if cpus.is_empty() { pcpus } else { cpus },
        if mems.is_empty() { pmems } else { mems },
    ))
}

fn is_einval(e: &Error) -> bool {
    matches!(e, Error::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
}

/// Memory: limit, memsw (the spec's swap is memory+swap, as v1's memsw), reservation, swappiness, OOM killer.
pub(crate) fn memory(cgroup: &str, dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().filter(|v| *v != 0);
    let mut swap = m.swap().filter(|v| *v != 0);
    // As runc: making memory unlimited without a swap value makes memory+swap unlimited too.
    if limit == Some(-1) && swap.is_none() {
        swap = Some(-1);
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // The kernel keeps limit <= memsw at every step. Writing the limit first is
            // right unless it rises above the current memsw; then memsw must go first.
            // Trying avoids reading the current values on the common path.
            match fs::write(dir, MEMORY_LIMIT, &l.to_string()) {
                Ok(()) => fs::write(dir, MEMSW_LIMIT, &s.to_string())?,
                Err(e) if is_einval(&e) => {
                    fs::write(dir, MEMSW_LIMIT, &s.to_string())?;
                    fs::write(dir, MEMORY_LIMIT, &l.to_string())?;
                }
                Err(e) => return Err(e),
            }
        }
        (Some(l), None) => fs::write(dir, MEMORY_LIMIT, &l.to_string())?,
        (None, Some(s)) => fs::write(dir, MEMSW_LIMIT, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        fs::write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidResources {
                cgroup: cgroup.to_string(),
                reason: format!("memory swappiness {s} is above 100"),
            });
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", "1")?;
    }
    if let Some(tcp) = m.kernel_tcp() {
        // Deprecated by the kernel, but still enforced on v1.
        fs::write(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    Ok(())
}

/// CPU: shares, CFS period/quota/burst, realtime period/runtime, idle.
pub(crate) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        fs::write(dir, "cpu.shares", &shares.to_string())?;
    }
    if let Some(period) = c.period().filter(|v| *v != 0) {
        fs::write(dir, "cpu.cfs_period_us", &period.to_string())?;
    }
    if let Some(quota) = c.quota().filter(|v| *v != 0) {
        fs::write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
    }
    if let Some(burst) = c.burst() {
        fs::write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    // The period first: the runtime must fit in it.
    if let Some(period) = c.realtime_period().filter(|v| *v != 0) {
        fs::write(dir, "cpu.rt_period_us", &period.to_string())?;
    }
    if let Some(runtime) = c.realtime_runtime().filter(|v| *v != 0) {
        fs::write(dir, "cpu.rt_runtime_us", &runtime.to_string())?;
    }
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

fn device_lines<'a, T>(
    dir: &Path,
    file: &str,
    list: &'a Option<Vec<T>>,
    line: impl Fn(&'a T) -> Option<String>,
) -> Result<()> {
    for item in list.iter().flatten() {
        if let Some(l) = line(item) {
            fs::write(dir, file, &l)?;
        }
    }
    Ok(())
}

/// Block I/O: weights (CFQ's `blkio.weight` or BFQ's `blkio.bfq.weight`) and throttles.
pub(crate) fn blkio(cgroup: &str, dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let needs_weight_files = b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty());
    if needs_weight_files {
        // CFQ is gone from current kernels; BFQ names its files blkio.bfq.*. Which one
        // exists depends on the devices' I/O schedulers, so ask the kernel.
        let prefix = if dir.join("blkio.weight").exists() {
            "blkio."
        } else if dir.join("blkio.bfq.weight").exists() {
            "blkio.bfq."
        } else {
            return Err(Error::Unsupported {
                cgroup: cgroup.to_string(),
                what: "blockIO weight".to_string(),
                why: format!(
                    "neither blkio.weight nor blkio.bfq.weight exists in {} (weights need the \
                     bfq I/O scheduler on the device)",
                    dir.display()
                ),
            });
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            fs::write(dir, &format!("{prefix}weight"), &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
            fs::write(dir, &format!("{prefix}leaf_weight"), &w.to_string())?;
        }
        device_lines(
            dir,
            &format!("{prefix}weight_device"),
            b.weight_device(),
            |d| {
                d.weight()
                    .map(|w| format!("{}:{} {}", d.major(), d.minor(), w))
            },
        )?;
        device_lines(
            dir,
            &format!("{prefix}leaf_weight_device"),
            b.weight_device(),
            |d| {
                d.leaf_weight()
                    .map(|w| format!("{}:{} {}", d.major(), d.minor(), w))
            },
        )?;
    }
    let throttle = |file: &str, list| {
        device_lines(
            dir,
            file,
            list,
            |d: &oci_spec::runtime::LinuxThrottleDevice| {
                Some(format!("{}:{} {}", d.major(), d.minor(), d.rate()))
            },
        )
    };
    throttle(
        "blkio.throttle.read_bps_device",
        b.throttle_read_bps_device(),
    )?;
    throttle(
        "blkio.throttle.write_bps_device",
        b.throttle_write_bps_device(),
    )?;
    throttle(
        "blkio.throttle.read_iops_device",
        b.throttle_read_iops_device(),
    )?;
    throttle(
        "blkio.throttle.write_iops_device",
        b.throttle_write_iops_device(),
    )?;
    Ok(())
}

/// How long [`freeze`] waits for the kernel to stop every task.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Freezes through `freezer.state` and waits until it reads FROZEN.
///
/// v1 has no notification for the state change, so this reads the state in a
/// bounded loop: first yielding the CPU (most cgroups freeze within
/// microseconds), then sleeping 1 ms between reads. FROZEN is written again on
/// each round because a v1 freeze attempt that meets a task in an unfreezable
/// state is not retried by the kernel on its own.
pub(crate) fn freeze(cgroup: &str, dir: &Path) -> Result<()> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        fs::write(dir, "freezer.state", "FROZEN")?;
        let state = fs::read(dir, "freezer.state")?.trim().to_string();
        if state == "FROZEN" {
            return Ok(());
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            let thawed = fs::write(dir, "freezer.state", "THAWED");
            if let Err(e) = thawed {
                tracing::warn!(cgroup, error = %e, "could not thaw after a failed freeze");
            }
            return Err(Error::FreezeTimeout {
                cgroup: cgroup.to_string(),
                millis: FREEZE_TIMEOUT.as_millis() as u64,
                state,
            });
        }
        round += 1;
        if round < 20 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// CPU time from cpuacct (in ns; user/system from `cpuacct.usage_user`/`usage_sys`).
pub(crate) fn cpuacct_stats(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    cpu.usage.total = fs::read_u64(dir, "cpuacct.usage")?;
    let list = |file: &str| -> Result<Vec<u64>> {
        match fs::read_optional(dir, file)? {
            Some(text) => parse_u64_list(&dir.join(file), &text),
            None => Ok(Vec::new()),
        }
    };
    cpu.usage.percpu = list("cpuacct.usage_percpu")?;
    cpu.usage.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
    cpu.usage.percpu_user = list("cpuacct.usage_percpu_user")?;
    cpu.usage.user = fs::read_u64_optional(dir, "cpuacct.usage_user")?;
    cpu.usage.kernel = fs::read_u64_optional(dir, "cpuacct.usage_sys")?;
    Ok(())
}

/// CFS throttling from v1 `cpu.stat`.
pub(crate) fn cpu_throttling(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    let stat = parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    cpu.throttling.periods = get("nr_periods");
    cpu.throttling.throttled_periods = get("nr_throttled");
    cpu.throttling.throttled_time = get("throttled_time");
    Ok(())
}

fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let file = |name: &str| format!("{prefix}{name}");
    // memsw and kmem files are absent when swap or kmem accounting is off.
    if prefix != "memory." && !dir.join(file("usage_in_bytes")).exists() {
        return Ok(MemoryEntry::default());
    }
    Ok(MemoryEntry {
        limit: fs::read_u64(dir, &file("limit_in_bytes"))?,
        usage: fs::read_u64(dir, &file("usage_in_bytes"))?,
        max: fs::read_u64(dir, &file("max_usage_in_bytes"))?,
        failcnt: fs::read_u64(dir, &file("failcnt"))?,
    })
}

/// Memory usage, memsw, kmem and `memory.stat`.
pub(crate) fn memory_stats(dir: &Path, m: &mut MemoryStats) -> Result<()> {
    m.usage = memory_entry(dir, "memory.")?;
    m.swap = memory_entry(dir, "memory.memsw.")?;
    m.kernel = memory_entry(dir, "memory.kmem.")?;
    m.kernel_tcp = memory_entry(dir, "memory.kmem.tcp.")?;
    m.raw = parse_flat_keyed(&fs::read(dir, "memory.stat")?);
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

/// Bytes and operations from the throttle layer, which sees every bio whatever the I/O scheduler.
pub(crate) fn blkio_stats(dir: &Path, b: &mut BlkioStats) -> Result<()> {
    let file = "blkio.throttle.io_service_bytes_recursive";
    b.io_service_bytes_recursive = parse_blkio_recursive(&dir.join(file), &fs::read(dir, file)?)?;
    let file = "blkio.throttle.io_serviced_recursive";
    b.io_serviced_recursive = parse_blkio_recursive(&dir.join(file), &fs::read(dir, file)?)?;
    Ok(())
}

/// One page size's usage; `None` if the kernel has no files for it.
pub(crate) fn hugetlb_stats(dir: &Path, size: &str) -> Result<Option<HugetlbStats>> {
    let Some(usage) = fs::read_optional(dir, &format!("hugetlb.{size}.usage_in_bytes"))? else {
        return Ok(None);
    };
    let path = dir.join(format!("hugetlb.{size}.usage_in_bytes"));
    Ok(Some(HugetlbStats {
        usage: usage.trim().parse().map_err(|_| Error::Parse {
            path,
            reason: format!("expected a number, found {:?}", usage.trim()),
        })?,
        max: fs::read_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
        failcnt: fs::read_u64(dir, &format!("hugetlb.{size}.failcnt"))?,
    }))
}

/// The cpuset files of a v1 cgroup.
pub(crate) fn cpuset_stats(dir: &Path, c: &mut CpuSetStats) -> Result<()> {
    let list =
        |file: &str| -> Result<Vec<u16>> { parse_cpu_list(&dir.join(file), &fs::read(dir, file)?) };
    c.cpus = list("cpuset.cpus")?;
    c.mems = list("cpuset.mems")?;
    c.cpu_exclusive = fs::read_u64_optional(dir, "cpuset.cpu_exclusive")?;
    c.mem_hardwall = fs::read_u64_optional(dir, "cpuset.mem_hardwall")?;
    c.mem_exclusive = fs::read_u64_optional(dir, "cpuset.mem_exclusive")?;
    c.memory_migrate = fs::read_u64_optional(dir, "cpuset.memory_migrate")?;
    c.memory_spread_page = fs::read_u64_optional(dir, "cpuset.memory_spread_page")?;
    c.memory_spread_slab = fs::read_u64_optional(dir, "cpuset.memory_spread_slab")?;
    c.memory_pressure = fs::read_u64_optional(dir, "cpuset.memory_pressure")?;
    c.sched_load_balance = fs::read_u64_optional(dir, "cpuset.sched_load_balance")?;
    if let Some(text) = fs::read_optional(dir, "cpuset.sched_relax_domain_level")? {
        c.sched_relax_domain_level = text.trim().parse().map_err(|_| Error::Parse {
            path: dir.join("cpuset.sched_relax_domain_level"),
            reason: format!("expected a number, found {:?}", text.trim()),
        })?;
    }
    Ok(())
}
