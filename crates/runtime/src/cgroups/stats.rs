//! Statistics shaped like runc's `events --stats` data, and the pure parsers of the kernel's stat files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Result};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Usage and limits of one container, as the `data` of runc's `events --stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time and throttling.
    #[serde(default)]
    pub cpu: CpuStats,
    /// CPU and memory node placement.
    #[serde(default)]
    pub cpuset: CpuSetStats,
    /// Memory usage and limits.
    #[serde(default)]
    pub memory: MemoryStats,
    /// Process count.
    #[serde(default)]
    pub pids: PidsStats,
    /// Block I/O.
    #[serde(default)]
    pub blkio: BlkioStats,
    /// Huge pages, by page size (`2MB`).
    #[serde(default)]
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Time used.
    #[serde(default)]
    pub usage: CpuUsage,
    /// Bandwidth throttling.
    #[serde(default)]
    pub throttling: Throttling,
}

/// CPU and memory node placement (v2 shows only the effective lists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSetStats {
    /// CPUs the cgroup may run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// `cpuset.cpu_exclusive`.
    #[serde(default)]
    pub cpu_exclusive: u64,
    /// Memory nodes the cgroup may allocate from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// `cpuset.mem_hardwall`.
    #[serde(default)]
    pub mem_hardwall: u64,
    /// `cpuset.mem_exclusive`.
    #[serde(default)]
    pub mem_exclusive: u64,
    /// `cpuset.memory_migrate`.
    #[serde(default)]
    pub memory_migrate: u64,
    /// `cpuset.memory_spread_page`.
    #[serde(default)]
    pub memory_spread_page: u64,
    /// `cpuset.memory_spread_slab`.
    #[serde(default)]
    pub memory_spread_slab: u64,
    /// `cpuset.memory_pressure`.
    #[serde(default)]
    pub memory_pressure: u64,
    /// `cpuset.sched_load_balance`.
    #[serde(default)]
    pub sched_load_balance: u64,
    /// `cpuset.sched_relax_domain_level`.
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

/// CPU time, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Total time per CPU (v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Kernel time per CPU (v1 only).
    #[serde(
        default,
        rename = "percpu_kernel",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub percpu_kernel: Vec<u64>,
    /// User time per CPU (v1 only).
    #[serde(default, rename = "percpu_user", skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel time.
    #[serde(default)]
    pub kernel: u64,
    /// User time.
    #[serde(default)]
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// One memory counter family (usage, swap, kernel, kernel TCP), in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// The limit (a huge number when unlimited).
    #[serde(default)]
    pub limit: u64,
    /// Current usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage seen.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Page cache (`cache` on v1, `file` on v2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    #[serde(default)]
    pub usage: MemoryEntry,
    /// Memory plus swap (v1's memsw semantics, also on v2).
    #[serde(default)]
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    #[serde(default)]
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(default, rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every counter of `memory.stat`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Process count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit (0 when unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One line of a blkio statistic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O statistics, recursive over sub-cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// Bytes transferred.
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// I/O operations.
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge page statistics for one page size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    /// Bytes in use.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest use seen (v1 only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// Parses `key value` lines (`memory.stat`, `cpu.stat`, `memory.events`, `memory.oom_control`); other lines are skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (key, value) = (it.next()?, it.next()?);
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Parses a space-separated list of numbers (`cpuacct.usage_percpu`).
pub(crate) fn parse_u64_list(path: &Path, text: &str) -> Result<Vec<u64>> {
    text.split_whitespace()
        .map(|v| {
            v.parse().map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                reason: format!("expected numbers, found {v:?}"),
            })
        })
        .collect()
}

fn parse_dev(path: &Path, dev: &str) -> Result<(u64, u64)> {
    let bad = || Error::Parse {
        path: path.to_path_buf(),
        reason: format!("expected major:minor, found {dev:?}"),
    };
    let (major, minor) = dev.split_once(':').ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

/// Parses v1 `blkio.*_recursive` files: `8:0 Read 4096` lines, skipping the closing `Total N`.
pub fn parse_blkio_recursive(path: &Path, text: &str) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [dev, op, value] => {
                let (major, minor) = parse_dev(path, dev)?;
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: (*op).to_string(),
                    value: value.parse().map_err(|_| Error::Parse {
                        path: path.to_path_buf(),
                        reason: format!("expected a number in {line:?}"),
                    })?,
                });
            }
            [] | [_, _] => {}
            _ => {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    reason: format!("unexpected line {line:?}"),
                })
            }
        }
    }
    Ok(out)
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) into (service bytes, serviced) entries.
pub fn parse_io_stat(path: &Path, text: &str) -> Result<(Vec<BlkioEntry>, Vec<BlkioEntry>)> {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let Some(dev) = fields.next() else { continue };
        let (major, minor) = parse_dev(path, dev)?;
        for kv in fields {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    Ok((bytes, ios))
}

/// Parses a kernel CPU or node list (`0-3,8,10-11`) into the numbers it names.
pub fn parse_cpu_list(path: &Path, text: &str) -> Result<Vec<u16>> {
    let bad = |part: &str| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a list such as 0-3,8, found {part:?}"),
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u16 = lo.parse().map_err(|_| bad(part))?;
        let hi: u16 = hi.parse().map_err(|_| bad(part))?;
        if hi < lo {
            return Err(bad(part));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// Converts v1 `cpu.shares` to v2 `cpu.weight` as runc 1.3+ does (1024 → 100, 2 → 1, 262144 → 10000); 0 stays unset.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    // A quadratic in log2(shares) through the three points above (runc PR 4785), so
    // the default share count maps to the default weight.
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// Converts a v1 blkio weight (10..=1000) to a v2 io weight (1..=10000), as runc does.
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// Turns a sysfs huge page directory name (`hugepages-2048kB`) into the cgroup file size name (`2MB`).
pub(crate) fn hugepage_size_name(dir_name: &str) -> Option<String> {
    let kb: u64 = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    const MB: u64 = 1024;
    const GB: u64 = 1024 * 1024;
    Some(if kb / GB * GB == kb {
        format!("{}GB", kb / (1024 * 1024))
    } else if kb / MB * MB == kb {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    })
}

/// The huge page sizes the kernel supports, as cgroup file names use them.
pub(crate) fn hugepage_sizes() -> Result<Vec<String>> {
    let dir = PathBuf::from("/sys/kernel/mm/hugepages");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    let mut sizes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        if let Some(name) = hugepage_size_name(&entry.file_name().to_string_lossy()) {
            sizes.push(name);
        }
    }
    sizes.sort();
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1_000_000), 10_000);
        // Monotonic over the range.
        let mut last = 0;
        for s in (2..262_144).step_by(997) {
            let w = cpu_shares_to_weight(s);
            assert!(w >= last, "{s} -> {w} < {last}");
            last = w;
        }
        assert_eq!(cpu_shares_to_weight(512), 59);
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn parses_flat_keyed() {
        let m = parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(m["oom_kill"], 3);
        assert_eq!(m.len(), 3);
        let m = parse_flat_keyed("usage_usec 100\nuser_usec 60\nsystem_usec 40\n");
        assert_eq!(m["usage_usec"], 100);
    }

    #[test]
    fn parses_blkio_recursive() {
        let text = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n254:0 Total 12288\nTotal 12288\n";
        let v = parse_blkio_recursive(Path::new("f"), text).expect("parse");
        assert_eq!(v.len(), 6);
        assert_eq!(
            v[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert!(parse_blkio_recursive(Path::new("f"), "x:y Read 1\n").is_err());
    }

    #[test]
    fn parses_io_stat() {
        let text = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n";
        let (bytes, ios) = parse_io_stat(Path::new("io.stat"), text).expect("parse");
        assert_eq!(bytes.len(), 3);
        assert_eq!(bytes[0].value, 1_459_200);
        assert_eq!(bytes[0].op, "Read");
        assert_eq!(ios[1].value, 353);
        assert_eq!(ios[1].major, 8);
        assert_eq!(ios[1].minor, 16);
    }

    #[test]
    fn parses_cpu_lists() {
        let p = Path::new("cpuset.cpus");
        assert_eq!(
            parse_cpu_list(p, "0-3,8,10-11\n").expect("list"),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list(p, "\n").expect("empty"), Vec::<u16>::new());
        assert!(parse_cpu_list(p, "3-1").is_err());
        assert!(parse_cpu_list(p, "a").is_err());
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(
            hugepage_size_name("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(hugepage_size_name("other"), None);
    }

    #[test]
    fn json_field_names_match_runc() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.usage.percpu = vec![2, 3];
        s.cpu.throttling.throttled_periods = 1;
        s.memory.kernel_tcp.limit = 7;
        s.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 1,
        });
        s.hugetlb.insert("2MB".into(), HugetlbStats::default());
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["percpu"][1], 3);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 1);
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 7);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["memory"]["usage"].get("usage").is_none());
        assert_eq!(v["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert_eq!(v["cpuset"]["sched_relax_domain_level"], 0);
        let back: Stats = serde_json::from_value(v).expect("back");
        assert_eq!(back, s);
    }
}
