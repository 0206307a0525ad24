//! Container verbs that take names and print names: stop, restart, kill, wait, rm, logs, top,
//! stats, inspect, rename, pause, unpause, update, prune.

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::cli::{
    ContainersArgs, InspectArgs, KillArgs, LogsArgs, PruneArgs, RenameArgs, RmArgs, StatsArgs,
    StopArgs, TopArgs, UpdateArgs,
};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::{self, write_stdout};
use crate::{table, units};

/// Runs `op` on each container, printing its name on success and the error otherwise; exit 1
/// if any failed (docker's multi-container commands).
async fn each<F, Fut>(containers: &[String], op: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), bollard::errors::Error>>,
{
    let mut failed = false;
    for c in containers {
        match op(c.clone()).await {
            Ok(()) => write_stdout(&format!("{c}\n"))?,
            Err(e) => {
                failed = true;
                eprintln!("{}", CliError::from(e));
            }
        }
    }
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth stop`.
pub async fn stop(conn: &Connection, args: &StopArgs) -> Result<()> {
    each(&args.containers, |c| {
        let opts = bollard::query_parameters::StopContainerOptions {
            signal: args.signal.clone(),
            t: args.timeout.map(|t| t as i32),
        };
        let docker = conn.docker.clone();
        async move { docker.stop_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth restart`.
pub async fn restart(conn: &Connection, args: &StopArgs) -> Result<()> {
    each(&args.containers, |c| {
        let opts = bollard::query_parameters::RestartContainerOptions {
            signal: args.signal.clone(),
            t: args.timeout.map(|t| t as i32),
        };
        let docker = conn.docker.clone();
        async move { docker.restart_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth kill`.
pub async fn kill(conn: &Connection, args: &KillArgs) -> Result<()> {
    each(&args.containers, |c| {
        let opts = bollard::query_parameters::KillContainerOptions {
            signal: args.signal.clone().unwrap_or_else(|| "KILL".to_string()),
        };
        let docker = conn.docker.clone();
        async move { docker.kill_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth pause`.
pub async fn pause(conn: &Connection, args: &ContainersArgs) -> Result<()> {
    each(&args.containers, |c| {
        let docker = conn.docker.clone();
        async move { docker.pause_container(&c).await }
    })
    .await
}

/// `berth unpause`.
pub async fn unpause(conn: &Connection, args: &ContainersArgs) -> Result<()> {
    each(&args.containers, |c| {
        let docker = conn.docker.clone();
        async move { docker.unpause_container(&c).await }
    })
    .await
}

/// `berth rm`.
pub async fn rm(conn: &Connection, args: &RmArgs) -> Result<()> {
    each(&args.containers, |c| {
        let opts = bollard::query_parameters::RemoveContainerOptions {
            v: args.volumes,
            force: args.force,
            link: false,
        };
        let docker = conn.docker.clone();
        async move { docker.remove_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth wait`: prints each exit code.
pub async fn wait(conn: &Connection, args: &ContainersArgs) -> Result<()> {
    let mut failed = false;
    for c in &args.containers {
        let mut s = conn
            .docker
            .wait_container(c, None::<bollard::query_parameters::WaitContainerOptions>);
        match s.next().await {
            Some(Ok(r)) => write_stdout(&format!("{}\n", r.status_code))?,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                write_stdout(&format!("{code}\n"))?
            }
            Some(Err(e)) => {
                failed = true;
                eprintln!("{}", CliError::from(e));
            }
            None => {
                failed = true;
                eprintln!("Error: the daemon ended the wait on {c} without an exit code");
            }
        }
    }
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth rename`.
pub async fn rename(conn: &Connection, args: &RenameArgs) -> Result<()> {
    conn.docker
        .rename_container(
            &args.container,
            bollard::query_parameters::RenameContainerOptions {
                name: args.new_name.clone(),
            },
        )
        .await?;
    Ok(())
}

/// `berth logs`.
pub async fn logs(conn: &Connection, args: &LogsArgs) -> Result<()> {
    let since = match &args.since {
        Some(s) => parse_time(s)?,
        None => 0,
    };
    let until = match &args.until {
        Some(s) => parse_time(s)?,
        None => 0,
    };
    let options = bollard::query_parameters::LogsOptions {
        follow: args.follow,
        stdout: true,
        stderr: true,
        since: since as i32,
        until: until as i32,
        timestamps: args.timestamps,
        tail: args.tail.clone(),
    };
    let out = conn.docker.logs(&args.container, Some(options));
    super::stream::pump(Box::pin(out), Box::pin(tokio::io::sink()), false, false)
        .await
        .map(|_| ())
}

/// A `--since`/`--until` value: RFC 3339, a Unix time, or a duration before now (`42m`, `10s`).
pub fn parse_time(text: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(n) = text.parse::<f64>() {
        return Ok(n as i64);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| CliError::Invalid(format!("invalid time {text:?}")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "ms" => n / 1000.0,
        _ => return Err(CliError::Invalid(format!("invalid time {text:?}"))),
    };
    Ok(chrono::Utc::now().timestamp() - secs as i64)
}

/// `berth top`.
pub async fn top(conn: &Connection, args: &TopArgs) -> Result<()> {
    let ps_args = args.ps_args.join(" ");
    let options =
        (!ps_args.is_empty()).then_some(bollard::query_parameters::TopOptions { ps_args });
    let top = conn.docker.top_processes(&args.container, options).await?;
    let mut text = top.titles.unwrap_or_default().join("\t");
    text.push('\n');
    for row in top.processes.unwrap_or_default() {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    // docker top aligns with a minimum cell width of 20 and padding 1.
    write_stdout(&table::align_with(&text, 20, 1))
}

const STATS_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const STATS_HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// `berth stats`: one table with `--no-stream`, else the table redrawn on every sample (for
/// the containers running when it started).
pub async fn stats(conn: &Connection, args: &StatsArgs) -> Result<()> {
    let names: Vec<String> = if args.containers.is_empty() {
        let list = conn
            .docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: args.all,
                ..Default::default()
            }))
            .await?;
        list.into_iter().filter_map(|c| c.id).collect()
    } else {
        args.containers.clone()
    };
    let streams = names.iter().enumerate().map(|(i, name)| {
        conn.docker
            .stats(
                name,
                Some(bollard::query_parameters::StatsOptions {
                    stream: !args.no_stream,
                    one_shot: false,
                }),
            )
            .map(move |item| (i, item))
            .boxed()
    });
    let mut merged = futures_util::stream::select_all(streams);
    let mut rows: Vec<Option<Value>> = vec![None; names.len()];
    let terminal = super::stream::stdout_is_terminal();
    while let Some((i, item)) = merged.next().await {
        rows[i] = Some(stats_row(&names[i], &item?, args.no_trunc));
        let ready: Vec<Value> = rows.iter().flatten().cloned().collect();
        if args.no_stream {
            continue;
        }
        if ready.len() == rows.len() {
            let table =
                output::render_rows(args.format.as_deref(), STATS_FORMAT, STATS_HEADERS, &ready)?;
            // On a terminal the table is redrawn in place, as docker does.
            let clear = if terminal { "\x1b[2J\x1b[H" } else { "" };
            write_stdout(&format!("{clear}{table}"))?;
        }
    }
    if args.no_stream {
        let ready: Vec<Value> = rows.into_iter().flatten().collect();
        return output::print_rows(args.format.as_deref(), STATS_FORMAT, STATS_HEADERS, &ready);
    }
    Ok(())
}

/// One container's sample as docker's stats row (CPU % from the delta against the previous
/// sample, memory without the page cache as docker's Linux calculation).
fn stats_row(name: &str, st: &bollard::models::ContainerStatsResponse, no_trunc: bool) -> Value {
    let cpu = st.cpu_stats.clone().unwrap_or_default();
    let pre = st.precpu_stats.clone().unwrap_or_default();
    let usage = |c: &bollard::models::ContainerCpuStats| {
        c.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0) as f64
    };
    let cpu_delta = usage(&cpu) - usage(&pre);
    let sys_delta =
        cpu.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let ncpu = cpu.online_cpus.unwrap_or(1).max(1) as f64;
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let mem = st.memory_stats.clone().unwrap_or_default();
    let cache = mem
        .stats
        .as_ref()
        .and_then(|s| {
            s.get("total_inactive_file")
                .or(s.get("inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    let used = mem.usage.unwrap_or(0).saturating_sub(cache) as i64;
    let limit = mem.limit.unwrap_or(0) as i64;
    let mem_pct = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0i64, 0i64);
    for n in st.networks.iter().flat_map(|m| m.values()) {
        rx += n.rx_bytes.unwrap_or(0) as i64;
        tx += n.tx_bytes.unwrap_or(0) as i64;
    }
    let (mut read, mut write) = (0i64, 0i64);
    for e in st
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .into_iter()
        .flatten()
    {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += e.value.unwrap_or(0) as i64,
            Some("write") => write += e.value.unwrap_or(0) as i64,
            _ => {}
        }
    }
    let id = st.id.clone().unwrap_or_else(|| name.to_string());
    let pids = st.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0);
    json!({
        "Container": name,
        "ID": if no_trunc { id.clone() } else { units::short_id(&id) },
        "Name": st.name.clone().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", binary(used), binary(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", units::human_size(rx), units::human_size(tx)),
        "BlockIO": format!("{} / {}", units::human_size(read), units::human_size(write)),
        "PIDs": pids.to_string(),
    })
}

fn binary(size: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", units::go_g(v, 4), UNITS[i])
}

/// `berth inspect` / `container inspect` / `image inspect`: containers first, then images,
/// unless `--type` says which. Without `--format` the daemon's JSON is printed as it sent it,
/// indented, as docker does.
pub async fn inspect(conn: &Connection, args: &InspectArgs, kind: Option<&str>) -> Result<()> {
    let kind = kind.or(args.kind.as_deref());
    let mut raws = Vec::new();
    let mut failed = false;
    for name in &args.objects {
        match inspect_one(conn, name, kind, args.size).await {
            Ok(raw) => raws.push(raw),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    write_stdout(&output::inspect_text(&raws, args.format.as_deref())?)?;
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

pub(crate) fn url_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'/'
            | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn daemon_message(status: u16, body: &[u8]) -> CliError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    CliError::Daemon { status, message }
}

async fn inspect_one(
    conn: &Connection,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Vec<u8>> {
    if kind != Some("image") {
        let path = format!("/containers/{}/json?size={size}", url_escape(name));
        let (status, body) = conn.get_raw(&path).await?;
        match status {
            200 => return Ok(body),
            404 if kind != Some("container") => {}
            _ => return Err(daemon_message(status, &body)),
        }
    }
    let (status, body) = conn
        .get_raw(&format!("/images/{}/json", url_escape(name)))
        .await?;
    match status {
        200 => Ok(body),
        404 if kind.is_none() => Err(CliError::Message(
            1,
            format!("Error: No such object: {name}"),
        )),
        _ => Err(daemon_message(status, &body)),
    }
}

/// `berth update`.
pub async fn update(conn: &Connection, args: &UpdateArgs) -> Result<()> {
    let mem = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v.as_deref() {
            None => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(s) => units::parse_ram(s)
                .map(Some)
                .ok_or_else(|| CliError::Invalid(format!("invalid {flag} {s:?}"))),
        }
    };
    let restart = match &args.restart {
        Some(r) => Some(
            serde_json::from_value::<bollard::models::RestartPolicyNameEnum>(Value::String(
                r.split(':').next().unwrap_or("").to_string(),
            ))
            .map(|name| bollard::models::RestartPolicy {
                name: Some(name),
                maximum_retry_count: r.split_once(':').and_then(|(_, n)| n.parse().ok()),
            })
            .map_err(|_| CliError::Invalid(format!("invalid restart policy {r:?}")))?,
        ),
        None => None,
    };
    let body = bollard::models::ContainerUpdateBody {
        nano_cpus: args.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
        memory: mem("--memory", &args.memory)?,
        memory_swap: mem("--memory-swap", &args.memory_swap)?,
        pids_limit: args.pids_limit,
        restart_policy: restart,
        ..Default::default()
    };
    each(&args.containers, |c| {
        let docker = conn.docker.clone();
        let body = body.clone();
        async move { docker.update_container(&c, body).await }
    })
    .await
}

/// docker's prune prompt: the warning, `Are you sure you want to continue? [y/N]`, and a yes
/// only for `y` or `yes`.
pub fn confirm(warning: &str) -> Result<bool> {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout().lock();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")
        .and_then(|()| out.flush())
        .map_err(CliError::io("write the prompt"))?;
    drop(out);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(CliError::io("read the answer from stdin"))?;
    let yes = matches!(answer.trim().to_lowercase().as_str(), "y" | "yes");
    if !yes {
        write_stdout("Total reclaimed space: 0B\n")?;
    }
    Ok(yes)
}

/// `berth container prune`.
pub async fn prune(conn: &Connection, args: &PruneArgs) -> Result<()> {
    if !args.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let r = conn
        .docker
        .prune_containers(Some(bollard::query_parameters::PruneContainersOptions {
            filters: Some(super::parse_filters(&args.filter)?),
        }))
        .await?;
    let mut text = String::new();
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Containers:\n");
        for d in deleted {
            text.push_str(&d);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(r.space_reclaimed.unwrap_or(0))
    ));
    write_stdout(&text)
}
