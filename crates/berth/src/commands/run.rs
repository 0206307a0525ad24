//! `run`, `create`, `start`, `attach`, `exec`: docker's create → attach → wait → start flow and
//! its exit codes (125 for the daemon's errors, 126/127 for a command that cannot run, else the
//! container's own code).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, HostConfigLogConfig, Mount, MountBindOptions,
    MountTmpfsOptions, MountType, MountVolumeOptions, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{AttachArgs, ExecArgs, RunArgs, StartArgs};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::write_stdout;

use super::stream::{self, RawTerminal};

fn invalid(msg: String) -> CliError {
    CliError::Invalid(msg)
}

fn key_values(flags: &[String], what: &str) -> Result<HashMap<String, String>> {
    flags
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            if k.is_empty() {
                return Err(invalid(format!("invalid {what} {f:?}: expected key=value")));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn read_env_files(files: &[String]) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(CliError::io(format!("read the env file {file}")))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.contains('=') {
                env.push(line.to_string());
            } else if let Ok(v) = std::env::var(line) {
                env.push(format!("{line}={v}"));
            }
        }
    }
    Ok(env)
}

fn ulimit(spec: &str) -> Result<ResourcesUlimits> {
    let bad = || {
        invalid(format!(
            "invalid ulimit {spec:?}: expected name=soft[:hard]"
        ))
    };
    let (name, limits) = spec.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft.parse().map_err(|_| bad())?),
        hard: Some(hard.parse().map_err(|_| bad())?),
    })
}

fn device(spec: &str) -> DeviceMapping {
    let parts: Vec<&str> = spec.split(':').collect();
    let host = parts[0].to_string();
    let (inside, perms) = match parts.as_slice() {
        [_, p] if p.chars().all(|c| "rwm".contains(c)) => (host.clone(), p.to_string()),
        [_, inside] => (inside.to_string(), "rwm".to_string()),
        [_, inside, p, ..] => (inside.to_string(), p.to_string()),
        _ => (host.clone(), "rwm".to_string()),
    };
    DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(inside),
        cgroup_permissions: Some(perms),
    }
}

fn restart_policy(spec: &str) -> Result<RestartPolicy> {
    let (name, count) = spec.split_once(':').unwrap_or((spec, ""));
    let name: RestartPolicyNameEnum =
        serde_json::from_value(serde_json::Value::String(name.to_string()))
            .map_err(|_| invalid(format!("invalid restart policy {spec:?}")))?;
    let maximum_retry_count = if count.is_empty() {
        None
    } else {
        Some(
            count
                .parse()
                .map_err(|_| invalid(format!("invalid restart policy {spec:?}: bad count")))?,
        )
    };
    if maximum_retry_count.is_some() && name != RestartPolicyNameEnum::ON_FAILURE {
        return Err(invalid(format!(
            "invalid restart policy {spec:?}: only on-failure takes a retry count"
        )));
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count,
    })
}

fn memory(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref() {
        None => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => crate::units::parse_ram(s).map(Some).ok_or_else(|| {
            invalid(format!(
                "invalid {flag} {s:?}: expected a size such as 512m"
            ))
        }),
    }
}

/// A Go duration (`1m30s`, `500ms`, `2h`) in nanoseconds.
pub fn go_duration(text: &str) -> Result<i64> {
    let bad = || {
        invalid(format!(
            "invalid duration {text:?}: expected e.g. 30s, 1m30s, 500ms"
        ))
    };
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let scale = match &after[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &after[unit_end..];
    }
    Ok(total as i64)
}

/// The health check that `--health-*` and `--no-healthcheck` describe.
fn health(args: &RunArgs) -> Result<Option<bollard::models::HealthConfig>> {
    let any = args.health_cmd.is_some()
        || args.health_interval.is_some()
        || args.health_timeout.is_some()
        || args.health_retries.is_some()
        || args.health_start_period.is_some();
    if args.no_healthcheck {
        if any {
            return Err(invalid(
                "--no-healthcheck conflicts with --health-* options".to_string(),
            ));
        }
        return Ok(Some(bollard::models::HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    let d = |v: &Option<String>| v.as_deref().map(go_duration).transpose();
    Ok(Some(bollard::models::HealthConfig {
        test: args
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
        interval: d(&args.health_interval)?,
        timeout: d(&args.health_timeout)?,
        retries: args.health_retries,
        start_period: d(&args.health_start_period)?,
        ..Default::default()
    }))
}

/// Capability names as docker sends them: upper case with the `CAP_` prefix (`ALL` stays).
fn capabilities(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let n = n.to_uppercase();
            if n == "ALL" || n.starts_with("CAP_") {
                n
            } else {
                format!("CAP_{n}")
            }
        })
        .collect()
}

/// A familiar image name in full, as docker sends it: `busybox` → `docker.io/library/busybox`.
pub fn normalize_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// Splits `-v` values as the docker CLI does: a bare container path is an anonymous volume
/// (sent in Config.Volumes), anything else a bind or named volume (HostConfig.Binds); a
/// relative host path (`./dir`) is made absolute.
fn volume_flags(values: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut anonymous, mut binds) = (Vec::new(), Vec::new());
    for v in values {
        if !v.contains(':') {
            anonymous.push(v.clone());
        } else if v.starts_with('.') {
            let cwd = std::env::current_dir()
                .map_err(|e| invalid(format!("-v {v}: read the current directory: {e}")))?;
            let (src, rest) = v.split_once(':').unwrap_or((v, ""));
            binds.push(format!("{}:{rest}", cwd.join(src).display()));
        } else {
            binds.push(v.clone());
        }
    }
    Ok((anonymous, binds))
}

/// A `--mount` value (`type=bind,src=/a,dst=/b,readonly`), parsed as the docker CLI parses it.
fn mount_flag(value: &str) -> Result<Mount> {
    let bad = |why: String| {
        invalid(format!(
            "invalid argument \"{value}\" for \"--mount\" flag: {why}"
        ))
    };
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let flag = |v: Option<&str>| -> Result<bool> {
        match v {
            None | Some("1") | Some("true") | Some("True") | Some("TRUE") => Ok(true),
            Some("0") | Some("false") | Some("False") | Some("FALSE") => Ok(false),
            Some(other) => Err(bad(format!("invalid value for boolean: {other:?}"))),
        }
    };
    let mut volume = MountVolumeOptions::default();
    let mut bind = MountBindOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_volume, mut has_bind, mut has_tmpfs) = (false, false, false);
    for field in value.split(',').filter(|f| !f.is_empty()) {
        let (key, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need =
            || v.ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")));
        match key.as_str() {
            "type" => {
                m.typ = Some(
                    need()?
                        .parse()
                        .map_err(|()| bad(format!("invalid mount type {:?}", v.unwrap_or(""))))?,
                )
            }
            "source" | "src" => m.source = Some(need()?.to_string()),
            "target" | "dst" | "destination" => m.target = Some(need()?.to_string()),
            "readonly" | "ro" => m.read_only = Some(flag(v)?),
            "consistency" => m.consistency = Some(need()?.to_string()),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation =
                    Some(need()?.parse().map_err(|_| {
                        bad(format!("invalid bind-propagation {:?}", v.unwrap_or("")))
                    })?)
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(flag(v)?)
            }
            "volume-nocopy" => {
                has_volume = true;
                volume.no_copy = Some(flag(v)?)
            }
            "volume-label" => {
                has_volume = true;
                let (k, val) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume
                    .labels
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), val.to_string());
            }
            "volume-driver" => {
                has_volume = true;
                volume
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .name = Some(need()?.to_string())
            }
            "volume-opt" => {
                has_volume = true;
                let (k, val) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .options
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), val.to_string());
            }
            "volume-subpath" => {
                has_volume = true;
                volume.subpath = Some(need()?.to_string())
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                let size = need()?;
                tmpfs.size_bytes = Some(
                    crate::units::parse_ram(size)
                        .ok_or_else(|| bad(format!("invalid tmpfs-size {size:?}")))?,
                )
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let mode = need()?;
                tmpfs.mode = Some(
                    i64::from_str_radix(mode, 8)
                        .map_err(|_| bad(format!("invalid tmpfs-mode {mode:?}")))?,
                )
            }
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if m.target.as_deref().is_none_or(str::is_empty) {
        return Err(bad("target is required".to_string()));
    }
    if has_volume {
        m.volume_options = Some(volume);
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// The container config and host config that `run`/`create` flags describe.
pub fn container_body(args: &RunArgs) -> Result<ContainerCreateBody> {
    if !args.attach.is_empty() {
        return Err(super::system::unsupported(
            "the -a/--attach flag of run and create",
        ));
    }
    if args.pull != "missing" {
        return Err(super::system::unsupported("--pull other than \"missing\""));
    }
    let refused: [(&str, bool); 2] = [
        ("--gpus", args.gpus.is_some()),
        ("--platform", args.platform.is_some()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, used)| *used) {
        return Err(super::system::unsupported(flag));
    }
    let (anonymous_volumes, binds) = volume_flags(&args.volume)?;
    let mounts = args
        .mount
        .iter()
        .map(|m| mount_flag(m))
        .collect::<Result<Vec<_>>>()?;
    let (port_bindings, mut exposed) = publish(&args.publish)?;
    for e in &args.expose {
        for key in expand_ports(e)? {
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }
    let mut endpoints = HashMap::new();
    let aliased = !args.network_alias.is_empty() || args.ip.is_some() || args.ip6.is_some();
    if aliased {
        let net = args
            .network
            .clone()
            .filter(|n| {
                !["default", "bridge", "host", "none"].contains(&n.as_str())
                    && !n.starts_with("container:")
            })
            .ok_or_else(|| {
                invalid("--network-alias, --ip and --ip6 need a user-defined --network".to_string())
            })?;
        endpoints.insert(
            net,
            bollard::models::EndpointSettings {
                aliases: (!args.network_alias.is_empty()).then(|| args.network_alias.clone()),
                ipam_config: (args.ip.is_some() || args.ip6.is_some()).then(|| {
                    bollard::models::EndpointIpamConfig {
                        ipv4_address: args.ip.clone(),
                        ipv6_address: args.ip6.clone(),
                        link_local_ips: None,
                    }
                }),
                ..Default::default()
            },
        );
    }
    let mut env = read_env_files(&args.env_file)?;
    for e in &args.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let mut log_config = None;
    if !args.log_opt.is_empty() || args.log_driver.is_some() {
        log_config = Some(HostConfigLogConfig {
            typ: args.log_driver.clone(),
            config: (!args.log_opt.is_empty())
                .then(|| key_values(&args.log_opt, "log option"))
                .transpose()?,
        });
    }
    let mut labels = HashMap::new();
    for file in &args.label_file {
        let text = std::fs::read_to_string(file)
            .map_err(CliError::io(format!("read the label file {file}")))?;
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        labels.extend(key_values(&lines, "label")?);
    }
    labels.extend(key_values(&args.label, "label")?);
    let healthcheck = health(args)?;
    let tmpfs: HashMap<String, String> = args
        .tmpfs
        .iter()
        .map(|t| {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            (path.to_string(), opts.to_string())
        })
        .collect();
    let host_config = HostConfig {
        memory: memory("--memory", &args.memory)?,
        memory_swap: memory("--memory-swap", &args.memory_swap)?,
        nano_cpus: args.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
        pids_limit: args.pids_limit,
        ulimits: (!args.ulimit.is_empty())
            .then(|| {
                args.ulimit
                    .iter()
                    .map(|u| ulimit(u))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?,
        cap_add: (!args.cap_add.is_empty()).then(|| capabilities(&args.cap_add)),
        cap_drop: (!args.cap_drop.is_empty()).then(|| capabilities(&args.cap_drop)),
        privileged: Some(args.privileged),
        security_opt: (!args.security_opt.is_empty()).then(|| args.security_opt.clone()),
        readonly_rootfs: Some(args.read_only),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        devices: (!args.device.is_empty()).then(|| args.device.iter().map(|d| device(d)).collect()),
        sysctls: (!args.sysctl.is_empty())
            .then(|| key_values(&args.sysctl, "sysctl"))
            .transpose()?,
        log_config,
        runtime: args.runtime.clone(),
        network_mode: Some(
            args.network
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        ),
        restart_policy: Some(restart_policy(&args.restart)?),
        auto_remove: Some(args.rm),
        init: args.init.then_some(true),
        shm_size: memory("--shm-size", &args.shm_size)?,
        group_add: (!args.group_add.is_empty()).then(|| args.group_add.clone()),
        oom_kill_disable: args.oom_kill_disable.then_some(true),
        oom_score_adj: args.oom_score_adj,
        pid_mode: args.pid.clone(),
        ipc_mode: args.ipc.clone(),
        uts_mode: args.uts.clone(),
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        memory_reservation: memory("--memory-reservation", &args.memory_reservation)?,
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        volumes_from: (!args.volumes_from.is_empty()).then(|| args.volumes_from.clone()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        publish_all_ports: args.publish_all.then_some(true),
        dns: (!args.dns.is_empty()).then(|| args.dns.clone()),
        dns_search: (!args.dns_search.is_empty()).then(|| args.dns_search.clone()),
        dns_options: (!args.dns_option.is_empty()).then(|| args.dns_option.clone()),
        extra_hosts: (!args.add_host.is_empty()).then(|| args.add_host.clone()),
        ..HostConfig::default()
    };
    let attach = !args.detach;
    Ok(ContainerCreateBody {
        hostname: args.hostname.clone(),
        user: args.user.clone(),
        env: (!env.is_empty()).then_some(env),
        cmd: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint: args.entrypoint.clone().map(
            |e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e]
                }
            },
        ),
        image: Some(args.image.clone()),
        volumes: (!anonymous_volumes.is_empty()).then_some(anonymous_volumes),
        labels: (!labels.is_empty()).then_some(labels),
        domainname: args.domainname.clone(),
        healthcheck,
        working_dir: args.workdir.clone(),
        tty: Some(args.tty),
        open_stdin: Some(args.interactive),
        stdin_once: Some(args.interactive && attach),
        attach_stdin: Some(args.interactive && attach),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        host_config: Some(host_config),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        networking_config: (!endpoints.is_empty()).then_some(bollard::models::NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..ContainerCreateBody::default()
    })
}

/// `80`, `80/udp`, `8000-8002/tcp` as the API's `PORT/PROTO` keys.
fn expand_ports(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    let (from, to) = port_range(ports)?;
    Ok((from..=to).map(|p| format!("{p}/{proto}")).collect())
}

fn port_range(text: &str) -> Result<(u16, u16)> {
    let bad = || invalid(format!("invalid port range: {text}"));
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` flags as the API's port bindings and the
/// ports they expose, as docker's CLI turns them (ranges expanded one to one).
fn publish(flags: &[String]) -> Result<(bollard::models::PortMap, Vec<String>)> {
    let mut bindings = bollard::models::PortMap::new();
    let mut exposed = Vec::new();
    for flag in flags {
        let (addr, proto) = match flag.rsplit_once('/') {
            Some((a, p)) if !p.contains(':') => (a, p.to_lowercase()),
            _ => (flag.as_str(), "tcp".to_string()),
        };
        if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
            return Err(invalid(format!("invalid proto: {proto}")));
        }
        // An IPv6 host address comes in brackets: [::1]:8080:80.
        let (ip, rest) = match addr.strip_prefix('[') {
            Some(r) => {
                let (ip, rest) = r
                    .split_once("]:")
                    .ok_or_else(|| invalid(format!("invalid publish spec {flag:?}")))?;
                (ip.to_string(), rest.to_string())
            }
            None => {
                let parts: Vec<&str> = addr.split(':').collect();
                match parts.len() {
                    1 | 2 => (String::new(), addr.to_string()),
                    3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
                    _ => return Err(invalid(format!("invalid publish spec {flag:?}"))),
                }
            }
        };
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(format!("invalid IP address: {ip}")));
        }
        let (host, container) = match rest.split_once(':') {
            Some((h, c)) => (h.to_string(), c.to_string()),
            None => (String::new(), rest.clone()),
        };
        let (cfrom, cto) = port_range(&container)?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(port_range(&host)?)
        };
        let count = cto - cfrom;
        for (i, cport) in (cfrom..=cto).enumerate() {
            let host_port = match host_range {
                None => String::new(),
                // One container port, a host range: the daemon picks a free one of the range.
                Some((hf, ht)) if count == 0 && ht > hf => format!("{hf}-{ht}"),
                Some((hf, ht)) => {
                    if ht - hf != count {
                        return Err(invalid(format!(
                            "invalid ranges specified for container and host Ports: {container} and {host}"
                        )));
                    }
                    (hf + i as u16).to_string()
                }
            };
            let key = format!("{cport}/{proto}");
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(bollard::models::PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(host_port),
                });
        }
    }
    Ok((bindings, exposed))
}

/// `name[:tag]` split as the API's pull wants it (`latest` by default).
pub fn split_reference(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Creates the container, pulling its image first when the daemon does not have it.
async fn create(conn: &Connection, args: &RunArgs) -> Result<String> {
    if let Some(path) = args
        .cidfile
        .as_deref()
        .filter(|p| std::path::Path::new(p).exists())
    {
        return Err(invalid(format!(
            "container ID file found, make sure the other container isn't running or delete {path}"
        )));
    }
    let body = container_body(args)?;
    let options = bollard::query_parameters::CreateContainerOptions {
        name: args.name.clone(),
        platform: String::new(),
    };
    match conn
        .docker
        .create_container(Some(options.clone()), body.clone())
        .await
    {
        Ok(r) => {
            print_warnings(&r.warnings);
            Ok(r.id)
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            let (name, tag) = split_reference(&args.image);
            let shown = if args.image.contains(':') || args.image.contains('@') {
                args.image.clone()
            } else {
                format!("{}:latest", args.image)
            };
            eprintln!("Unable to find image '{shown}' locally");
            super::image::pull_to(conn, &name, &tag, false, true).await?;
            let r = conn.docker.create_container(Some(options), body).await?;
            print_warnings(&r.warnings);
            Ok(r.id)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
}

/// Writes the container ID to `--cidfile` (which must not exist yet, as docker insists).
fn write_cidfile(args: &RunArgs, id: &str) -> Result<()> {
    let Some(path) = &args.cidfile else {
        return Ok(());
    };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(CliError::io(format!("create the container ID file {path}")))?;
    f.write_all(id.as_bytes())
        .map_err(CliError::io(format!("write the container ID file {path}")))
}

/// `berth create`: prints the new container's ID.
pub async fn create_command(conn: &Connection, args: &RunArgs) -> Result<()> {
    let id = create(conn, args).await.map_err(daemon_error_125)?;
    write_cidfile(args, &id)?;
    write_stdout(&format!("{id}\n"))
}

/// Daemon errors of `run`/`create` exit 125, as docker's.
fn daemon_error_125(e: CliError) -> CliError {
    match e {
        CliError::Daemon { .. } | CliError::Transport(_) => {
            CliError::Message(125, format!("berth: {e}"))
        }
        other => other,
    }
}

/// docker's mapping of a failed start to an exit code.
fn start_error(e: CliError) -> CliError {
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    };
    CliError::Message(code, format!("berth: {text}"))
}

/// `berth run`.
pub async fn run(conn: &Connection, args: &RunArgs) -> Result<i32> {
    if args.tty && args.interactive && !stream::stdin_is_terminal() {
        return Err(CliError::Message(
            1,
            "the input device is not a TTY".to_string(),
        ));
    }
    let id = create(conn, args).await.map_err(daemon_error_125)?;
    write_cidfile(args, &id)?;
    if args.detach {
        // docker prints the ID before starting, so it is printed even when the start fails.
        write_stdout(&format!("{id}\n"))?;
        conn.docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| start_error(e.into()))?;
        return Ok(0);
    }
    let attach = conn
        .docker
        .attach_container(
            &id,
            Some(bollard::query_parameters::AttachContainerOptions {
                stdin: args.interactive,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                detach_keys: None,
            }),
        )
        .await
        .map_err(|e| daemon_error_125(e.into()))?;
    let condition = if args.rm { "removed" } else { "next-exit" };
    let wait = ExitWait::register(conn, &id, condition)
        .await
        .map_err(daemon_error_125)?;
    let raw = if args.tty && args.interactive {
        RawTerminal::enter()?
    } else {
        None
    };
    if let Err(e) = conn
        .docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        drop(raw);
        return Err(start_error(e.into()));
    }
    let resizer = if args.tty {
        let docker = conn.docker.clone();
        let cid = id.clone();
        stream::forward_resizes(move |h, w| {
            let docker = docker.clone();
            let cid = cid.clone();
            async move {
                let _ = docker
                    .resize_container_tty(
                        &cid,
                        bollard::query_parameters::ResizeContainerTTYOptions {
                            h: i32::from(h),
                            w: i32::from(w),
                        },
                    )
                    .await;
            }
        })
    } else {
        None
    };
    let proxy = if args.sig_proxy && !args.tty {
        stream::proxy_signals(conn.docker.clone(), id.clone())
    } else {
        None
    };
    let pumped = stream::pump(
        attach.output,
        attach.input,
        args.interactive,
        args.tty && args.interactive,
    )
    .await;
    for task in [resizer, proxy].into_iter().flatten() {
        task.abort();
    }
    if matches!(pumped, Ok(stream::Ended::Detached)) {
        drop(raw);
        eprintln!("read escape sequence");
        return Ok(0);
    }
    let code = wait.exit_code().await;
    drop(raw);
    pumped?;
    Ok(code? as i32)
}

/// A `/containers/{id}/wait` request sent (its headers read) before the container starts, so
/// that a fast exit is not missed; the exit code is read later.
pub struct ExitWait {
    stream: Box<dyn crate::connect::RawStream>,
    chunked: bool,
    buffered: Vec<u8>,
}

impl ExitWait {
    /// Sends the wait request and reads the response's headers.
    pub async fn register(conn: &Connection, id: &str, condition: &str) -> Result<Self> {
        let io = |what: &str| CliError::io(format!("{what} for the wait on container {id}"));
        let mut stream = conn.open_stream().await.map_err(io("connect"))?;
        let request = format!(
            "POST /v{}.{}/containers/{id}/wait?condition={condition} HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            conn.api_version.major_version, conn.api_version.minor_version
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io("send the request"))?;
        let mut buffered = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream
                .read(&mut buf)
                .await
                .map_err(io("read the response"))?;
            if n == 0 {
                return Err(CliError::Transport(format!(
                    "the daemon closed the wait on container {id}"
                )));
            }
            buffered.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&buffered[..head_end]).to_string();
        let rest = buffered[head_end + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let mut wait = Self {
            stream,
            chunked,
            buffered: rest,
        };
        if !(200..300).contains(&status) {
            let body = wait.body().await?;
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(CliError::Daemon { status, message });
        }
        Ok(wait)
    }

    async fn body(&mut self) -> Result<Vec<u8>> {
        let mut raw = std::mem::take(&mut self.buffered);
        self.stream
            .read_to_end(&mut raw)
            .await
            .map_err(CliError::io("read the wait response"))?;
        if !self.chunked {
            return Ok(raw);
        }
        // Give the chunked body a head so the shared HTTP reader can decode it.
        let mut whole = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        whole.extend_from_slice(&raw);
        Ok(crate::connect::split_response(&whole).1)
    }

    /// The container's exit code, once it exits.
    pub async fn exit_code(mut self) -> Result<i64> {
        let body = self.body().await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            CliError::Transport(format!("the daemon's wait answer is not JSON: {e}"))
        })?;
        if let Some(msg) = v
            .get("Error")
            .and_then(|e| e.get("Message"))
            .and_then(|m| m.as_str())
            .filter(|m| !m.is_empty())
        {
            return Err(CliError::Daemon {
                status: 500,
                message: msg.to_string(),
            });
        }
        Ok(v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(0))
    }
}

/// `berth start`: starts each container; with `-a` attaches to the (single) container and
/// returns its exit code.
pub async fn start(conn: &Connection, args: &StartArgs) -> Result<i32> {
    if args.attach || args.interactive {
        let [id] = args.containers.as_slice() else {
            return Err(CliError::Message(
                1,
                "you cannot start and attach multiple containers at once".to_string(),
            ));
        };
        let info = conn
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await?;
        let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
        let full = info.id.clone().unwrap_or_else(|| id.clone());
        let attach = conn
            .docker
            .attach_container(
                &full,
                Some(bollard::query_parameters::AttachContainerOptions {
                    stdin: args.interactive,
                    stdout: true,
                    stderr: true,
                    stream: true,
                    logs: false,
                    detach_keys: None,
                }),
            )
            .await?;
        let wait = ExitWait::register(conn, &full, "next-exit").await?;
        let raw = if tty && args.interactive {
            RawTerminal::enter()?
        } else {
            None
        };
        conn.docker
            .start_container(
                &full,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await?;
        let proxy = if tty {
            None
        } else {
            stream::proxy_signals(conn.docker.clone(), full.clone())
        };
        let pumped = stream::pump(
            attach.output,
            attach.input,
            args.interactive,
            tty && args.interactive,
        )
        .await;
        if let Some(task) = proxy {
            task.abort();
        }
        if matches!(pumped, Ok(stream::Ended::Detached)) {
            drop(raw);
            eprintln!("read escape sequence");
            return Ok(0);
        }
        let code = wait.exit_code().await;
        drop(raw);
        pumped?;
        return Ok(code? as i32);
    }
    let mut failed = Vec::new();
    for c in &args.containers {
        match conn
            .docker
            .start_container(c, None::<bollard::query_parameters::StartContainerOptions>)
            .await
        {
            Ok(()) => write_stdout(&format!("{c}\n"))?,
            Err(e) => {
                failed.push(c.as_str());
                eprintln!("{}", CliError::from(e));
            }
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    Err(CliError::Message(
        1,
        format!("Error: failed to start containers: {}", failed.join(", ")),
    ))
}

/// `berth attach`.
pub async fn attach(conn: &Connection, args: &AttachArgs) -> Result<i32> {
    let info = conn
        .docker
        .inspect_container(
            &args.container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if !running {
        return Err(CliError::Message(
            1,
            "You cannot attach to a stopped container, start it first".to_string(),
        ));
    }
    let config = info.config.clone().unwrap_or_default();
    let tty = config.tty.unwrap_or(false);
    let stdin = !args.no_stdin && config.open_stdin.unwrap_or(false);
    let full = info.id.clone().unwrap_or_else(|| args.container.clone());
    let attach = conn
        .docker
        .attach_container(
            &full,
            Some(bollard::query_parameters::AttachContainerOptions {
                stdin,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                detach_keys: None,
            }),
        )
        .await?;
    let raw = if tty && stdin {
        RawTerminal::enter()?
    } else {
        None
    };
    let pumped = stream::pump(attach.output, attach.input, stdin, tty && stdin).await;
    drop(raw);
    if pumped? == stream::Ended::Detached {
        eprintln!("read escape sequence");
        return Ok(0);
    }
    let after = conn
        .docker
        .inspect_container(
            &full,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    Ok(after.state.and_then(|s| s.exit_code).unwrap_or(0) as i32)
}

/// `berth exec`: the command's exit code.
pub async fn exec(conn: &Connection, args: &ExecArgs) -> Result<i32> {
    if args.tty && args.interactive && !stream::stdin_is_terminal() {
        return Err(CliError::Message(
            1,
            "the input device is not a TTY".to_string(),
        ));
    }
    let config = bollard::models::ExecConfig {
        attach_stdin: Some(args.interactive && !args.detach),
        attach_stdout: Some(!args.detach),
        attach_stderr: Some(!args.detach),
        tty: Some(args.tty),
        env: (!args.env.is_empty()).then(|| args.env.clone()),
        cmd: Some(args.command.clone()),
        privileged: Some(args.privileged),
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        console_size: stream::terminal_size()
            .filter(|_| args.tty)
            .map(|(h, w)| vec![usize::from(h), usize::from(w)]),
        ..Default::default()
    };
    let created = conn.docker.create_exec(&args.container, config).await?;
    let started = conn
        .docker
        .start_exec(
            &created.id,
            Some(bollard::exec::StartExecOptions {
                detach: args.detach,
                tty: args.tty,
                output_capacity: None,
            }),
        )
        .await?;
    let bollard::exec::StartExecResults::Attached { output, input } = started else {
        return Ok(0);
    };
    let raw = if args.tty && args.interactive {
        RawTerminal::enter()?
    } else {
        None
    };
    let resizer = if args.tty {
        let docker = conn.docker.clone();
        let eid = created.id.clone();
        stream::forward_resizes(move |h, w| {
            let docker = docker.clone();
            let eid = eid.clone();
            async move {
                let _ = docker
                    .resize_exec(
                        &eid,
                        bollard::query_parameters::ResizeExecOptions {
                            h: i32::from(h),
                            w: i32::from(w),
                        },
                    )
                    .await;
            }
        })
    } else {
        None
    };
    let pumped = stream::pump(output, input, args.interactive, false).await;
    if let Some(r) = resizer {
        r.abort();
    }
    drop(raw);
    pumped?;
    let inspect = conn.docker.inspect_exec(&created.id).await?;
    Ok(inspect.exit_code.unwrap_or(0) as i32)
}

/// Drains a stream, for commands whose progress is not shown.
pub async fn drain<S, T>(mut s: S) -> Result<()>
where
    S: futures_util::Stream<Item = std::result::Result<T, bollard::errors::Error>> + Unpin,
{
    while let Some(item) = s.next().await {
        item?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(m: &bollard::models::PortMap, key: &str) -> Vec<(String, String)> {
        m.get(key)
            .cloned()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|b| {
                (
                    b.host_ip.unwrap_or_default(),
                    b.host_port.unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn publish_flags_become_bindings_as_docker_makes_them() {
        let flags: Vec<String> = [
            "8080:80",
            "127.0.0.1:9090:90/udp",
            "443",
            "[::1]:7070:70",
            "5000-5001:6000-6001",
            "4000-4010:22",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (m, exposed) = publish(&flags).expect("valid flags");
        assert_eq!(binding(&m, "80/tcp"), vec![("".into(), "8080".into())]);
        assert_eq!(
            binding(&m, "90/udp"),
            vec![("127.0.0.1".into(), "9090".into())]
        );
        assert_eq!(binding(&m, "443/tcp"), vec![("".into(), "".into())]);
        assert_eq!(binding(&m, "70/tcp"), vec![("::1".into(), "7070".into())]);
        assert_eq!(binding(&m, "6001/tcp"), vec![("".into(), "5001".into())]);
        assert_eq!(binding(&m, "22/tcp"), vec![("".into(), "4000-4010".into())]);
        assert!(exposed.contains(&"6000/tcp".to_string()));
        for bad in ["80/icmp", "x:80", "1.2.3:80:80", "5000-5002:6000-6001", "0"] {
            assert!(
                publish(&[bad.to_string()]).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn expose_ranges_expand() {
        assert_eq!(
            expand_ports("8000-8002/udp").expect("valid"),
            vec!["8000/udp", "8001/udp", "8002/udp"]
        );
        assert!(expand_ports("80/foo").is_err());
    }

    #[test]
    fn mount_flags_parse_as_docker_parses_them() {
        let m =
            mount_flag("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave").expect("a bind");
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(
            (m.source.as_deref(), m.target.as_deref()),
            (Some("/a"), Some("/b"))
        );
        assert_eq!(m.read_only, Some(true));
        assert!(m.bind_options.is_some_and(|b| b.propagation.is_some()));
        let m = mount_flag("src=data,target=/d,volume-nocopy,volume-opt=o=bind").expect("a volume");
        assert_eq!(m.typ, Some(MountType::VOLUME));
        let vo = m.volume_options.expect("volume options");
        assert_eq!(vo.no_copy, Some(true));
        let opts = vo
            .driver_config
            .and_then(|d| d.options)
            .expect("driver options");
        assert_eq!(opts.get("o").map(String::as_str), Some("bind"));
        let m = mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").expect("a tmpfs");
        let t = m.tmpfs_options.expect("tmpfs options");
        assert_eq!((t.size_bytes, t.mode), (Some(1 << 20), Some(0o1770)));
        assert!(mount_flag("type=tmpfs").is_err(), "no target");
        assert!(mount_flag("type=bind,dst=/x,nosuch=1").is_err());
        assert!(mount_flag("type=floppy,dst=/x").is_err());
    }

    #[test]
    fn bare_container_paths_are_anonymous_volumes() {
        let (anonymous, binds) = volume_flags(&[
            "/data".to_string(),
            "name:/n".to_string(),
            "/host:/h:ro".to_string(),
        ])
        .expect("valid");
        assert_eq!(anonymous, ["/data"]);
        assert_eq!(binds, ["name:/n", "/host:/h:ro"]);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_duration("1m30s").expect("valid"), 90_000_000_000);
        assert_eq!(go_duration("500ms").expect("valid"), 500_000_000);
        assert!(go_duration("5 parsecs").is_err());
    }

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/a/b:1.0"),
            ("localhost:5000/a/b".into(), "1.0".into())
        );
        assert_eq!(
            split_reference("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
    }
}
