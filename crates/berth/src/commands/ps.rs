//! `berth ps` with docker's columns, truncation and `--format` fields.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::cli::PsArgs;
use crate::connect::Connection;
use crate::error::Result;
use crate::output::{self, write_stdout};
use crate::units;

/// docker's default `ps` table.
pub const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The header of each `ps` field.
pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

/// `berth ps`.
pub async fn ps(conn: &Connection, args: &PsArgs) -> Result<()> {
    let mut options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(args.all || args.latest || args.last > 0)
        .size(args.size)
        .filters(&super::parse_filters(&args.filter)?);
    if args.latest {
        options = options.limit(1);
    } else if args.last > 0 {
        options = options.limit(args.last as i32);
    }
    let list = conn.docker.list_containers(Some(options.build())).await?;
    let trunc = !args.no_trunc;
    if args.quiet {
        let mut text = String::new();
        for c in &list {
            let id = c.id.clone().unwrap_or_default();
            text.push_str(&if trunc { units::short_id(&id) } else { id });
            text.push('\n');
        }
        return write_stdout(&text);
    }
    let rows: Vec<Value> = list.iter().map(|c| row(c, trunc)).collect();
    let format = args.format.as_deref();
    let default = if args.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        DEFAULT_FORMAT
    };
    output::print_rows(format, default, HEADERS, &rows)
}

fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

/// The names a user gave, without the leading slash and without link aliases (`/a/b`).
pub fn names(list: &[String]) -> Vec<String> {
    list.iter()
        .filter_map(|n| {
            let n = n.strip_prefix('/').unwrap_or(n);
            (!n.contains('/')).then(|| n.to_string())
        })
        .collect()
}

/// Published ports as docker lists them: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports(list: &[bollard::models::PortSummary]) -> String {
    let mut out: Vec<String> = list
        .iter()
        .map(|p| {
            let proto = p
                .typ
                .map(|t| t.to_string())
                .unwrap_or_else(|| "tcp".to_string());
            match (&p.ip, p.public_port) {
                (Some(ip), Some(public)) if !ip.is_empty() => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.clone()
                    };
                    format!("{ip}:{public}->{}/{proto}", p.private_port)
                }
                _ => format!("{}/{proto}", p.private_port),
            }
        })
        .collect();
    out.dedup();
    out.join(", ")
}

fn row(c: &bollard::models::ContainerSummary, trunc: bool) -> Value {
    let id = c.id.clone().unwrap_or_default();
    let mut image = c.image.clone().unwrap_or_default();
    if image.is_empty() {
        image = "<no image>".to_string();
    } else if trunc && image.starts_with("sha256:") {
        image = units::short_id(&image);
    }
    let command = c.command.clone().unwrap_or_default();
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    let created = c.created.unwrap_or(0);
    let labels: HashMap<String, String> = c.labels.clone().unwrap_or_default();
    let mut label_list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    label_list.sort();
    let size = match (c.size_rw, c.size_root_fs) {
        (Some(rw), Some(root)) => format!(
            "{} (virtual {})",
            units::human_size(rw),
            units::human_size(root)
        ),
        (Some(rw), None) => units::human_size(rw),
        _ => "0B".to_string(),
    };
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .flatten()
        .map(|m| m.name.clone().or(m.source.clone()).unwrap_or_default())
        .collect();
    let networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| {
            let mut k: Vec<String> = n.keys().cloned().collect();
            k.sort();
            k
        })
        .unwrap_or_default();
    json!({
        "ID": if trunc { units::short_id(&id) } else { id },
        "Image": image,
        "Command": serde_json::to_string(&command).unwrap_or_default(),
        "CreatedAt": units::go_time_string(created),
        "RunningFor": units::since(created),
        "Ports": ports(c.ports.as_deref().unwrap_or_default()),
        "State": c.state.map(|s| s.to_string()).unwrap_or_default(),
        "Status": c.status.clone().unwrap_or_default(),
        "Size": size,
        "Names": names(c.names.as_deref().unwrap_or_default()).join(","),
        "Labels": label_list.join(","),
        "Mounts": mounts.join(","),
        "LocalVolumes": mounts.len().to_string(),
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "__labels": labels,
    })
}
