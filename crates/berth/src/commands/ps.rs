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

/// Ports as docker's CLI lists them: sorted by private port, protocol and address; ports
/// without a different public one grouped into ranges (`8000-8002/tcp`) first, in the order
/// their groups appear; then the host mappings (`0.0.0.0:8080->80/tcp`).
pub fn ports(list: &[bollard::models::PortSummary]) -> String {
    let proto = |p: &bollard::models::PortSummary| {
        p.typ
            .map(|t| t.to_string())
            .unwrap_or_else(|| "tcp".to_string())
    };
    let mut sorted: Vec<&bollard::models::PortSummary> = list.iter().collect();
    sorted.sort_by(|a, b| {
        (
            a.private_port,
            proto(a),
            a.ip.clone().unwrap_or_default(),
            a.public_port,
        )
            .cmp(&(
                b.private_port,
                proto(b),
                b.ip.clone().unwrap_or_default(),
                b.public_port,
            ))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in sorted {
        let current = p.private_port;
        let mut key = proto(p);
        if let Some(ip) = p.ip.as_deref().filter(|ip| !ip.is_empty()) {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                let m = format!("{host}->{current}/{}", proto(p));
                if !mappings.contains(&m) {
                    mappings.push(m);
                }
                continue;
            }
            key = format!("{ip}/{key}");
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) if current == g.2 => {}
            Some(g) => {
                result.push(port_group(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(port_group(key, *first, *last));
    }
    result.extend(mappings);
    result.join(", ")
}

/// One group of docker's port list: `80/tcp`, `8000-8002/tcp`, `IP:80->80/tcp` for a port
/// published on the same number.
fn port_group(key: &str, first: u16, last: u16) -> String {
    let range = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    match key.rsplit_once('/') {
        Some((ip, proto)) => {
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            format!("{host}:{range}->{range}/{proto}")
        }
        None => format!("{range}/{key}"),
    }
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

#[cfg(test)]
mod port_tests {
    use super::ports;
    use bollard::models::{PortSummary, PortSummaryTypeEnum};

    fn port(private: u16, public: Option<u16>, ip: Option<&str>) -> PortSummary {
        PortSummary {
            ip: ip.map(str::to_string),
            private_port: private,
            public_port: public,
            typ: Some(PortSummaryTypeEnum::TCP),
        }
    }

    #[test]
    fn ports_are_grouped_and_ordered_as_docker_lists_them() {
        let list = vec![
            port(80, Some(8080), Some("0.0.0.0")),
            port(8002, None, None),
            port(8000, None, None),
            port(8001, None, None),
            port(443, None, None),
            port(9000, Some(9000), Some("127.0.0.1")),
            port(53, Some(5353), Some("::1")),
        ];
        assert_eq!(
            ports(&list),
            "443/tcp, 8000-8002/tcp, 127.0.0.1:9000->9000/tcp, [::1]:5353->53/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(ports(&[]), "");
    }
}
