//! `berth xray CONTAINER`: what a container really is, seen from the host.
//!
//! The daemon says which process and which directories make the container
//! (inspect: its pid, its overlay dirs, its image's layers); everything else
//! is read from the kernel where it lives: /proc/PID/ns for the namespaces
//! (each inode against the host's, as xray's own process has them), /proc/PID/cgroup and the
//! cgroup files for limits and usage, /proc/PID/status for the pid inside,
//! the capabilities and the seccomp mode, /proc/PID/net/dev for the
//! interfaces. So xray runs on the daemon's host, as root, like the brief's
//! seed articles do by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::XrayArgs;
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::write_stdout;
use crate::units;

/// Linux capability names by number (linux/capability.h).
const CAP_NAMES: [&str; 41] = api_types::capabilities::ALL;

const NAMESPACES: [&str; 8] = ["pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time"];

/// Everything xray shows, also as `--format json`.
#[derive(Debug, Serialize)]
pub struct Xray {
    id: String,
    name: String,
    image: String,
    pid_on_host: i64,
    pid_inside: Option<i64>,
    namespaces: Vec<Namespace>,
    cgroups: Vec<CgroupView>,
    rootfs: Rootfs,
    security: Security,
    network: Network,
}

#[derive(Debug, Serialize)]
struct Namespace {
    kind: String,
    inode: u64,
    host_inode: u64,
    own: bool,
}

#[derive(Debug, Serialize)]
struct CgroupView {
    controllers: String,
    dir: String,
    values: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct Rootfs {
    driver: String,
    merged: Option<String>,
    upper: Option<String>,
    upper_bytes: Option<u64>,
    work: Option<String>,
    lower: Vec<Lower>,
}

#[derive(Debug, Serialize)]
struct Lower {
    dir: String,
    layer: Option<String>,
    position: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Security {
    effective: Vec<String>,
    bounding: Vec<String>,
    seccomp: String,
    no_new_privs: bool,
}

#[derive(Debug, Serialize)]
struct Network {
    mode: String,
    interfaces: Vec<String>,
    endpoints: Vec<Endpoint>,
    ports: Vec<String>,
}

/// One network the container is on: its address and the veth pair that carries it.
#[derive(Debug, Serialize)]
struct Endpoint {
    network: String,
    address: String,
    gateway: String,
    mac: String,
    /// The container's end, as named inside (eth0, …).
    inside: String,
    /// The host's end and the bridge it is a port of.
    host_veth: String,
    bridge: String,
}

/// The host interface whose index is `index`, and the bridge it is enslaved to.
fn host_link(index: &str) -> Option<(String, String)> {
    for entry in std::fs::read_dir("/sys/class/net").ok()?.flatten() {
        let dir = entry.path();
        let ifindex = std::fs::read_to_string(dir.join("ifindex")).unwrap_or_default();
        if ifindex.trim() == index {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bridge = std::fs::read_link(dir.join("master"))
                .ok()
                .and_then(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            return Some((name, bridge));
        }
    }
    None
}

/// The container's endpoints from inspect, each with its veth pair found through the
/// container's own sysfs (`iflink` of its end is the host end's index).
fn endpoints(c: &Value, pid: i64, inside: &[String]) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let Some(nets) = c["NetworkSettings"]["Networks"].as_object() else {
        return out;
    };
    for (name, ep) in nets {
        let ip = ep["IPAddress"].as_str().unwrap_or_default();
        if ip.is_empty() {
            continue;
        }
        let mac = ep["MacAddress"].as_str().unwrap_or_default().to_string();
        // The interface inside whose MAC is the endpoint's.
        let ifname = inside
            .iter()
            .find(|i| {
                std::fs::read_to_string(format!("/proc/{pid}/root/sys/class/net/{i}/address"))
                    .is_ok_and(|a| a.trim() == mac)
            })
            .cloned()
            .unwrap_or_default();
        let (host_veth, bridge) =
            std::fs::read_to_string(format!("/proc/{pid}/root/sys/class/net/{ifname}/iflink"))
                .ok()
                .and_then(|i| host_link(i.trim()))
                .unwrap_or_default();
        out.push(Endpoint {
            network: name.clone(),
            address: format!("{ip}/{}", ep["IPPrefixLen"].as_i64().unwrap_or(0)),
            gateway: ep["Gateway"].as_str().unwrap_or_default().to_string(),
            mac,
            inside: ifname,
            host_veth,
            bridge,
        });
    }
    out.sort_by(|a, b| a.inside.cmp(&b.inside));
    out
}

/// Published ports as `docker port` prints them.
fn ports(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(map) = c["NetworkSettings"]["Ports"].as_object() {
        for (key, bindings) in map {
            for b in bindings.as_array().into_iter().flatten() {
                out.push(format!(
                    "{key} -> {}:{}",
                    b["HostIp"].as_str().unwrap_or_default(),
                    b["HostPort"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    out.sort();
    out
}

/// `berth xray`.
pub async fn xray(conn: &Connection, args: &XrayArgs) -> Result<()> {
    let path = format!("/containers/{}/json", args.container);
    let (status, body) = conn.get_raw(&path).await?;
    if status == 404 {
        return Err(CliError::Message(
            1,
            format!("Error: No such container: {}", args.container),
        ));
    }
    if status != 200 {
        return Err(CliError::Message(
            1,
            format!("Error: {}", String::from_utf8_lossy(&body)),
        ));
    }
    let c: Value = serde_json::from_slice(&body).map_err(|e| {
        CliError::Transport(format!("the daemon's inspect answer is not JSON: {e}"))
    })?;
    let pid = c["State"]["Pid"].as_i64().unwrap_or(0);
    if pid <= 0 || c["State"]["Running"] != Value::Bool(true) {
        return Err(CliError::Message(
            1,
            format!(
                "Error: container {} is not running: xray looks at its live processes",
                args.container
            ),
        ));
    }
    let image_id = c["Image"].as_str().unwrap_or_default().to_string();
    let layers = match conn.get_raw(&format!("/images/{image_id}/json")).await {
        Ok((200, body)) => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["RootFS"]["Layers"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let x = gather(&c, pid, &layers);
    if args.format.as_deref() == Some("json") {
        let text =
            serde_json::to_string_pretty(&x).map_err(|e| CliError::Transport(e.to_string()))?;
        return write_stdout(&(text + "\n"));
    }
    if let Some(f) = &args.format {
        return Err(CliError::Invalid(format!(
            "--format {f:?}: xray prints a report or, with --format json, JSON"
        )));
    }
    write_stdout(&render(&x))
}

fn gather(c: &Value, pid: i64, layers: &[String]) -> Xray {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let pid_inside =
        field("NSpid:").and_then(|v| v.split_whitespace().last().and_then(|p| p.parse().ok()));
    let caps = |name: &str| decode_caps(field(name).as_deref().unwrap_or("0"));
    let seccomp = match field("Seccomp:").as_deref() {
        Some("0") => "disabled".to_string(),
        Some("1") => "strict".to_string(),
        Some("2") => {
            let n = field("Seccomp_filters:").unwrap_or_else(|| "?".into());
            format!("filter ({n} program(s))")
        }
        other => format!("unknown ({other:?})"),
    };
    let graph = &c["GraphDriver"]["Data"];
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let upper = s(&graph["UpperDir"]);
    Xray {
        id: c["Id"].as_str().unwrap_or_default().to_string(),
        name: c["Name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: c["Config"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        pid_on_host: pid,
        pid_inside,
        namespaces: NAMESPACES
            .iter()
            .filter_map(|kind| {
                let inode = ns_inode(&format!("/proc/{pid}/ns/{kind}"))?;
                // The host's namespaces as this process has them: pid 1's
                // may be hidden (a sandboxed init), and xray runs on the host.
                let host_inode = ns_inode(&format!("/proc/self/ns/{kind}")).unwrap_or(0);
                Some(Namespace {
                    kind: kind.to_string(),
                    inode,
                    host_inode,
                    own: inode != host_inode,
                })
            })
            .collect(),
        cgroups: cgroups(pid),
        rootfs: Rootfs {
            driver: c["GraphDriver"]["Name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            merged: s(&graph["MergedDir"]),
            upper_bytes: upper.as_deref().map(|u| dir_bytes(Path::new(u))),
            upper,
            work: s(&graph["WorkDir"]),
            lower: lowers(graph["LowerDir"].as_str().unwrap_or_default(), layers),
        },
        security: Security {
            effective: caps("CapEff:"),
            bounding: caps("CapBnd:"),
            seccomp,
            no_new_privs: field("NoNewPrivs:").as_deref() == Some("1"),
        },
        network: Network {
            mode: c["HostConfig"]["NetworkMode"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            interfaces: interfaces(pid),
            endpoints: endpoints(c, pid, &interfaces(pid)),
            ports: ports(c),
        },
    }
}

fn ns_inode(link: &str) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let t = target.to_string_lossy();
    t.split('[').nth(1)?.trim_end_matches(']').parse().ok()
}

fn decode_caps(hex: &str) -> Vec<String> {
    let bits = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    (0..64)
        .filter(|i| bits & (1u64 << i) != 0)
        .map(|i| {
            CAP_NAMES
                .get(i)
                .map_or(format!("CAP_{i}"), |n| n.to_string())
        })
        .collect()
}

/// The container's cgroup in each hierarchy, with the limits and usage a
/// person asks about first.
fn cgroups(pid: i64) -> Vec<CgroupView> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let mount = if controllers.is_empty() {
            PathBuf::from("/sys/fs/cgroup/unified")
        } else {
            let name = controllers.trim_start_matches("name=");
            PathBuf::from("/sys/fs/cgroup").join(name)
        };
        let mount = if mount.exists() {
            mount
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        let dir = mount.join(path.trim_start_matches('/'));
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .map(|v| v.trim().to_string())
        };
        let mut values = Vec::new();
        let mut add = |label: &str, v: Option<String>| {
            if let Some(v) = v {
                values.push((label.to_string(), v));
            }
        };
        let bytes = |v: Option<String>| {
            v.map(|v| match v.parse::<i64>() {
                Ok(n) if n >= (1i64 << 62) => "unlimited".to_string(),
                Ok(n) => units::human_size(n),
                Err(_) => v,
            })
        };
        for c in controllers.split(',') {
            match c {
                "memory" => {
                    add("limit", bytes(read("memory.limit_in_bytes")));
                    add("usage", bytes(read("memory.usage_in_bytes")));
                    add(
                        "oom kills",
                        read("memory.oom_control").and_then(|t| {
                            t.lines()
                                .find_map(|l| l.strip_prefix("oom_kill ").map(str::to_owned))
                        }),
                    );
                }
                "pids" => {
                    add("limit", read("pids.max"));
                    add("current", read("pids.current"));
                }
                "cpu" => {
                    add("shares", read("cpu.shares"));
                    add(
                        "quota/period (us)",
                        read("cpu.cfs_quota_us")
                            .zip(read("cpu.cfs_period_us"))
                            .map(|(q, p)| format!("{q}/{p}")),
                    );
                }
                "cpuacct" => add("cpu time (ns)", read("cpuacct.usage")),
                "cpuset" => add("cpus", read("cpuset.cpus")),
                "" => {
                    add("memory.max", read("memory.max"));
                    add("memory.current", bytes(read("memory.current")));
                    add("pids.max", read("pids.max"));
                    add("cpu.max", read("cpu.max"));
                }
                _ => {}
            }
        }
        out.push(CgroupView {
            controllers: if controllers.is_empty() {
                "unified".into()
            } else {
                controllers.into()
            },
            dir: dir.display().to_string(),
            values,
        });
    }
    out
}

/// Overlay lower dirs (top first) matched to the image's layers: each lower
/// dir is a snapshot named by the chain ID of the layers up to it.
fn lowers(lowerdir: &str, diff_ids: &[String]) -> Vec<Lower> {
    let mut chains = Vec::new();
    let mut chain: Option<String> = None;
    for d in diff_ids {
        let next = match &chain {
            None => d.clone(),
            Some(parent) => {
                let mut h = Sha256::new();
                h.update(format!("{parent} {d}").as_bytes());
                format!("sha256:{}", hex::encode(h.finalize()))
            }
        };
        chains.push(next.clone());
        chain = Some(next);
    }
    lowerdir
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|dir| {
            let position = chains.iter().position(|c| {
                let hexpart = c.trim_start_matches("sha256:");
                dir.contains(hexpart)
            });
            Lower {
                dir: dir.to_string(),
                layer: position.and_then(|i| diff_ids.get(i).cloned()),
                position: position.map(|i| i + 1),
            }
        })
        .collect()
}

/// Apparent size of the files under `dir` (the writable layer is small; a
/// walk of it is what a person asking this wants).
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

fn interfaces(pid: i64) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect()
}

fn render(x: &Xray) -> String {
    let mut o = String::new();
    let short = &x.id[..x.id.len().min(12)];
    let _ = writeln!(o, "Container   {} ({short}), image {}", x.name, x.image);
    let inside = x.pid_inside.map_or("?".to_string(), |p| p.to_string());
    let _ = writeln!(
        o,
        "Process     pid {} on the host is pid {inside} inside",
        x.pid_on_host
    );
    let _ = writeln!(o, "\nNamespaces  (inode, against the host's)");
    for n in &x.namespaces {
        let whose = if n.own {
            format!("own     (host {})", n.host_inode)
        } else {
            "shared with the host".to_string()
        };
        let _ = writeln!(o, "  {:<7} {:<11} {whose}", n.kind, n.inode);
    }
    let _ = writeln!(o, "\nCgroups");
    for c in &x.cgroups {
        let vals: Vec<String> = c.values.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "  {:<13} {}", c.controllers, c.dir);
        if !vals.is_empty() {
            let _ = writeln!(o, "  {:<13} {}", "", vals.join(", "));
        }
    }
    let r = &x.rootfs;
    let _ = writeln!(
        o,
        "\nRoot filesystem ({})",
        if r.driver.is_empty() { "?" } else { &r.driver }
    );
    if let Some(m) = &r.merged {
        // berthd's monitors usually mount it in a mount namespace of their own, so on the
        // host the directory is empty; the container's files are at /proc/PID/root.
        let on_host = std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(m.as_str())));
        if on_host {
            let _ = writeln!(o, "  merged   {m}");
        } else {
            let _ = writeln!(
                o,
                "  merged   {m}  (mounted in the monitor's mount namespace; on the host: /proc/{}/root)",
                x.pid_on_host
            );
        }
    }
    if let Some(u) = &r.upper {
        let size = r
            .upper_bytes
            .map(|b| units::human_size(b as i64))
            .unwrap_or_default();
        let _ = writeln!(o, "  upper    {u}  (the writable layer: {size})");
    }
    if let Some(w) = &r.work {
        let _ = writeln!(o, "  work     {w}");
    }
    let total = r.lower.len();
    for (i, l) in r.lower.iter().enumerate() {
        let what = match (&l.layer, l.position) {
            (Some(layer), Some(p)) => format!("image layer {p}: {}", &layer[..layer.len().min(19)]),
            _ => "not one of the image's layers".to_string(),
        };
        let _ = writeln!(o, "  lower {}  {}  ({what})", total - i, l.dir);
    }
    let s = &x.security;
    let _ = writeln!(o, "\nSecurity");
    let _ = writeln!(
        o,
        "  capabilities  {} of {} effective: {}",
        s.effective.len(),
        CAP_NAMES.len(),
        s.effective
            .iter()
            .map(|c| c.trim_start_matches("CAP_"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(o, "  seccomp       {}", s.seccomp);
    let _ = writeln!(
        o,
        "  no_new_privs  {}",
        if s.no_new_privs { "yes" } else { "no" }
    );
    let _ = writeln!(o, "\nNetwork");
    let _ = writeln!(o, "  mode        {}", x.network.mode);
    let _ = writeln!(o, "  interfaces  {}", x.network.interfaces.join(", "));
    for e in &x.network.endpoints {
        let _ = writeln!(
            o,
            "  {:<11} {} via {}, mac {}",
            e.network, e.address, e.gateway, e.mac
        );
        let _ = writeln!(
            o,
            "  {:<11} veth pair: {} inside <-> {} on the host, a port of bridge {}",
            "", e.inside, e.host_veth, e.bridge
        );
    }
    if !x.network.ports.is_empty() {
        let _ = writeln!(o, "  published   {}", x.network.ports.join(", "));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_decode_by_number() {
        assert_eq!(decode_caps("0000000000000001"), vec!["CAP_CHOWN"]);
        assert_eq!(decode_caps("00000000a80425fb").len(), 14);
    }

    #[test]
    fn lower_dirs_map_to_layers_by_chain_id() {
        let d1 = format!("sha256:{}", "a".repeat(64));
        let d2 = format!("sha256:{}", "b".repeat(64));
        let mut h = Sha256::new();
        h.update(format!("{d1} {d2}").as_bytes());
        let c2 = hex::encode(h.finalize());
        let lowerdir = format!("/s/{c2}/fs:/s/{}/fs", "a".repeat(64));
        let l = lowers(&lowerdir, &[d1.clone(), d2.clone()]);
        assert_eq!(l[0].position, Some(2));
        assert_eq!(l[0].layer.as_deref(), Some(d2.as_str()));
        assert_eq!(l[1].position, Some(1));
    }
}
