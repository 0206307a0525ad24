//! `version`, `info`, `system df` and `events`.

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::cli::{EventsArgs, FormatArgs};
use crate::connect::{self, Connection};
use crate::error::{CliError, Result};
use crate::output::{self, to_value, write_stdout};
use crate::{table, units};

fn client_info() -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": format!("{}.{}", connect::CLIENT_API_VERSION.0, connect::CLIENT_API_VERSION.1),
        "DefaultAPIVersion": format!("{}.{}", connect::CLIENT_API_VERSION.0, connect::CLIENT_API_VERSION.1),
        "GoVersion": "",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(std::env::consts::ARCH),
        "Context": "default",
    })
}

fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `berth version`: the client's part always, the server's when the daemon answers.
pub async fn version(host: &connect::HostFlags, args: &FormatArgs) -> Result<()> {
    let mut client = client_info();
    let server = match connect::connect(host).await {
        Ok(conn) => {
            // The version actually spoken, as docker shows it after negotiation.
            let v = conn.api_version;
            client["ApiVersion"] =
                Value::String(format!("{}.{}", v.major_version, v.minor_version));
            Ok(conn.docker.version().await?)
        }
        Err(e) => Err(e),
    };
    let api_line = if client["ApiVersion"] == client["DefaultAPIVersion"] {
        client["ApiVersion"].as_str().unwrap_or("").to_string()
    } else {
        format!(
            "{} (downgraded from {})",
            client["ApiVersion"].as_str().unwrap_or(""),
            client["DefaultAPIVersion"].as_str().unwrap_or("")
        )
    };
    if let Some(format) = &args.format {
        let data = json!({
            "Client": client,
            "Server": server.as_ref().ok().map(to_value).unwrap_or(Value::Null),
        });
        write_stdout(&output::render_one(format, &data)?)?;
        return server.map(|_| ());
    }
    let mut text = format!(
        "Client:\n Version:\t{}\n API version:\t{}\n OS/Arch:\t{}/{}\n Context:\t{}\n",
        client["Version"].as_str().unwrap_or(""),
        api_line,
        client["Os"].as_str().unwrap_or(""),
        client["Arch"].as_str().unwrap_or(""),
        client["Context"].as_str().unwrap_or(""),
    );
    if let Ok(v) = &server {
        text.push_str(&server_version_text(v));
    }
    write_stdout(&table::align_with(&text, 20, 1))?;
    server.map(|_| ())
}

/// The `Server:` part of `docker version`, as docker 28's template writes it (before alignment).
pub fn server_version_text(v: &bollard::models::SystemVersion) -> String {
    let mut text = String::from("\nServer:");
    if let Some(name) = v.platform.as_ref().map(|p| p.name.as_str()) {
        if !name.is_empty() {
            text.push(' ');
            text.push_str(name);
        }
    }
    for c in v.components.iter().flatten() {
        text.push_str(&format!("\n {}:", c.name));
        let details = c
            .details
            .as_ref()
            .map(to_value)
            .unwrap_or(Value::Object(Default::default()));
        let d = |k: &str| match details.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        if c.name == "Engine" {
            text.push_str(&format!(
                "\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}",
                c.version,
                d("ApiVersion"),
                d("MinAPIVersion"),
                d("GoVersion"),
                d("GitCommit"),
                d("BuildTime"),
                d("Os"),
                d("Arch"),
                d("Experimental"),
            ));
            if let Value::Object(map) = &details {
                for (k, v) in map {
                    if [
                        "ApiVersion",
                        "MinAPIVersion",
                        "GoVersion",
                        "GitCommit",
                        "BuildTime",
                        "Os",
                        "Arch",
                        "Experimental",
                        "KernelVersion",
                    ]
                    .contains(&k.as_str())
                    {
                        continue;
                    }
                    text.push_str(&format!("\n  {k}:\t{}", crate::template::go_string(v)));
                }
            }
        } else {
            text.push_str(&format!("\n  Version:\t{}", c.version));
            if let Value::Object(map) = &details {
                for (k, v) in map {
                    text.push_str(&format!("\n  {k}:\t{}", crate::template::go_string(v)));
                }
            }
        }
    }
    text.push('\n');
    text
}

/// `berth info` / `berth system info`.
pub async fn info(conn: &Connection, args: &FormatArgs) -> Result<()> {
    let info = conn.docker.info().await?;
    if let Some(format) = &args.format {
        return write_stdout(&output::render_one(format, &to_value(&info))?);
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: &Option<i64>| v.unwrap_or(0);
    let mut text = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    );
    text.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n",
        n(&info.containers),
        n(&info.containers_running),
        n(&info.containers_paused),
        n(&info.containers_stopped),
        n(&info.images)
    ));
    text.push_str(&format!(" Server Version: {}\n", s(&info.server_version)));
    text.push_str(&format!(" Storage Driver: {}\n", s(&info.driver)));
    if let Some(driver) = &info.cgroup_driver {
        text.push_str(&format!(" Cgroup Driver: {driver}\n"));
    }
    if let Some(v) = &info.cgroup_version {
        text.push_str(&format!(" Cgroup Version: {v}\n"));
    }
    if let Some(runtimes) = &info.runtimes {
        let names: Vec<&str> = runtimes.keys().map(String::as_str).collect();
        text.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
    }
    if let Some(r) = &info.default_runtime {
        text.push_str(&format!(" Default Runtime: {r}\n"));
    }
    text.push_str(&format!(
        "{}Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n",
        info.kernel_version
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|k| format!(" Kernel Version: {k}\n "))
            .unwrap_or_else(|| " ".to_string()),
        s(&info.operating_system),
        s(&info.os_type),
        s(&info.architecture),
        n(&info.ncpu),
        human_binary(n(&info.mem_total)),
        s(&info.name),
        s(&info.id),
        s(&info.docker_root_dir),
    ));
    text.push_str(&format!(
        " Debug Mode: {}\n Experimental: {}\n Live Restore Enabled: {}\n",
        info.debug.unwrap_or(false),
        info.experimental_build.unwrap_or(false),
        info.live_restore_enabled.unwrap_or(false)
    ));
    for w in info.warnings.iter().flatten() {
        text.push_str(&format!("\n{w}"));
    }
    write_stdout(&text)
}

/// Binary sizes as docker's `BytesSize`: `1GiB`, `7.775GiB`.
fn human_binary(size: i64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", units::go_g(v, 4), UNITS[i])
}

/// `berth system df`.
pub async fn df(conn: &Connection, args: &FormatArgs) -> Result<()> {
    // The shape API 1.50 answers (and docker 28 reads); bollard's model is newer.
    let (status, body) = conn.get_raw("/system/df").await?;
    if status != 200 {
        return Err(CliError::Message(
            1,
            format!(
                "Error response from daemon: {}",
                String::from_utf8_lossy(&body).trim()
            ),
        ));
    }
    let usage: api_types::models::DiskUsage = serde_json::from_slice(&body)
        .map_err(|e| CliError::Transport(format!("the daemon's /system/df answer: {e}")))?;
    let row = |kind: &str, total: i64, active: i64, size: i64, reclaimable: i64| {
        let reclaim = if size > 0 {
            format!(
                "{} ({}%)",
                units::human_size(reclaimable),
                reclaimable * 100 / size
            )
        } else {
            units::human_size(reclaimable)
        };
        json!({"Type": kind, "TotalCount": total.to_string(),
               "Active": active.to_string(), "Size": units::human_size(size),
               "Reclaimable": reclaim})
    };
    let images = &usage.images;
    let active_images = images.iter().filter(|i| i.containers > 0).count() as i64;
    let used: i64 = images
        .iter()
        .filter(|i| i.containers > 0)
        .map(|i| i.size - i.shared_size.max(0))
        .sum();
    let containers = &usage.containers;
    let running = containers
        .iter()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.to_string() == "running"))
        .count() as i64;
    let rw = |c: &bollard::models::ContainerSummary| c.size_rw.unwrap_or(0);
    let containers_size: i64 = containers.iter().map(rw).sum();
    let stopped_size: i64 = containers
        .iter()
        .filter(|c| c.state.as_ref().is_none_or(|s| s.to_string() != "running"))
        .map(rw)
        .sum();
    let rows = vec![
        row(
            "Images",
            images.len() as i64,
            active_images,
            usage.layers_size,
            (usage.layers_size - used).max(0),
        ),
        row(
            "Containers",
            containers.len() as i64,
            running,
            containers_size,
            stopped_size,
        ),
        row("Local Volumes", usage.volumes.len() as i64, 0, 0, 0),
        row("Build Cache", usage.build_cache.len() as i64, 0, 0, 0),
    ];
    output::print_rows(
        args.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
        &rows,
    )
}

/// `berth events`: streamed until `--until` or the end of the stream.
pub async fn events(conn: &Connection, args: &EventsArgs) -> Result<()> {
    let mut options = bollard::query_parameters::EventsOptionsBuilder::default()
        .filters(&crate::commands::parse_filters(&args.filter)?);
    if let Some(since) = &args.since {
        options = options.since(since);
    }
    if let Some(until) = &args.until {
        options = options.until(until);
    }
    let mut stream = conn.docker.events(Some(options.build()));
    while let Some(event) = stream.next().await {
        let event = event?;
        let line = match &args.format {
            Some(f) => output::render_one(f, &to_value(&event))?,
            None => event_line(&event),
        };
        write_stdout(&line)?;
    }
    Ok(())
}

/// One event as docker prints it: `2023-11-14T22:13:20.000000000Z container start ID (k=v, …)`.
fn event_line(e: &bollard::models::EventMessage) -> String {
    use chrono::TimeZone;
    let nanos = e.time_nano.unwrap_or(e.time.unwrap_or(0) * 1_000_000_000);
    let when = chrono::Local
        .timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
        .to_string();
    let kind = e.typ.map(|t| t.to_string()).unwrap_or_default();
    let action = e.action.clone().unwrap_or_default();
    let actor = e.actor.clone().unwrap_or_default();
    let mut attrs: Vec<(String, String)> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    attrs.sort();
    let attrs: Vec<String> = attrs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut line = format!("{when} {kind} {action} {}", actor.id.unwrap_or_default());
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line.push('\n');
    line
}

/// Refuses a flag berth does not implement.
pub fn unsupported(what: &str) -> CliError {
    CliError::Unsupported(format!("berth: {what} is not supported yet"))
}
