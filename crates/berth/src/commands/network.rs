//! `berth network …` and `berth port`: docker's network commands, flags and output.

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use serde_json::{json, Value};

use crate::cli::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs, PortArgs,
};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::{self, write_stdout};
use crate::units;

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// `berth network create`: prints the new network's ID.
pub async fn create(conn: &Connection, args: &NetworkCreateArgs) -> Result<()> {
    if args.gateway.len() > args.subnet.len() || args.ip_range.len() > args.subnet.len() {
        return Err(CliError::Invalid(
            "every --gateway and --ip-range needs a --subnet it belongs to".into(),
        ));
    }
    // docker pairs each gateway and range with the subnet that contains it; berth pairs them in
    // the order given, which is the same for the usual one subnet (and one IPv6 subnet) case.
    let config: Vec<IpamConfig> = args
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| IpamConfig {
            subnet: Some(s.clone()),
            gateway: args.gateway.get(i).cloned(),
            ip_range: args.ip_range.get(i).cloned(),
            auxiliary_addresses: None,
        })
        .collect();
    let request = NetworkCreateRequest {
        name: args.name.clone(),
        driver: Some(args.driver.clone()),
        internal: Some(args.internal),
        attachable: Some(args.attachable),
        enable_ipv6: args.ipv6.then_some(true),
        ipam: Some(Ipam {
            driver: Some(args.ipam_driver.clone()),
            config: Some(config),
            options: None,
        }),
        options: Some(super::key_values(&args.opt, "opt")?),
        labels: Some(super::key_values(&args.label, "label")?),
        ..Default::default()
    };
    let r = conn.docker.create_network(request).await?;
    if !r.warning.is_empty() {
        eprintln!("{}", r.warning);
    }
    write_stdout(&format!("{}\n", r.id))
}

/// `berth network ls`.
pub async fn ls(conn: &Connection, args: &NetworkLsArgs) -> Result<()> {
    let filters = super::parse_filters(&args.filter)?;
    let mut list = conn
        .docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filters),
        }))
        .await?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let id_of = |id: &str| {
        if args.no_trunc {
            id.to_string()
        } else {
            units::short_id(id)
        }
    };
    if args.quiet {
        let text: String = list
            .iter()
            .map(|n| format!("{}\n", id_of(n.id.as_deref().unwrap_or_default())))
            .collect();
        return write_stdout(&text);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            let labels = n
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            json!({
                "ID": id_of(n.id.as_deref().unwrap_or_default()),
                "Name": n.name.clone().unwrap_or_default(),
                "Driver": n.driver.clone().unwrap_or_default(),
                "Scope": n.scope.clone().unwrap_or_default(),
                "IPv4": n.enable_ipv4.unwrap_or(true).to_string(),
                "IPv6": n.enable_ipv6.unwrap_or(false).to_string(),
                "Internal": n.internal.unwrap_or(false).to_string(),
                "Labels": labels,
                "CreatedAt": n.created.as_ref().map(|c| c.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    output::print_rows(
        args.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        HEADERS,
        &rows,
    )
}

/// `berth network inspect`: the daemon's JSON as it sent it, in docker's indented array.
pub async fn inspect(conn: &Connection, args: &NetworkInspectArgs) -> Result<()> {
    let mut raws = Vec::new();
    let mut failed = false;
    for name in &args.networks {
        let path = format!(
            "/networks/{}?verbose={}",
            super::container::url_escape(name),
            args.verbose
        );
        let (status, body) = conn.get_raw(&path).await?;
        match status {
            200 => raws.push(body),
            404 => {
                failed = true;
                eprintln!("Error: No such network: {name}");
            }
            _ => {
                failed = true;
                eprintln!("{}", super::container::daemon_message(status, &body));
            }
        }
    }
    let text = output::inspect_text(&raws, args.format.as_deref())?;
    write_stdout(&text)?;
    if failed {
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth network rm`: prints each name removed.
pub async fn rm(conn: &Connection, args: &NetworkRmArgs) -> Result<()> {
    let mut failed = false;
    for n in &args.networks {
        match conn.docker.remove_network(n).await {
            Ok(()) => write_stdout(&format!("{n}\n"))?,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) if args.force => {}
            Err(e) => {
                failed = true;
                eprintln!("{}", CliError::from(e));
            }
        }
    }
    if failed {
        // docker 28's `network rm` ends its error output with this line.
        eprintln!("exit status 1");
        Err(CliError::Status(1))
    } else {
        Ok(())
    }
}

/// `berth network prune`.
pub async fn prune(conn: &Connection, args: &NetworkPruneArgs) -> Result<()> {
    let warning =
        "WARNING! This will remove all custom networks not used by at least one container.";
    if !args.force && !super::container::confirm(warning)? {
        return Ok(());
    }
    let filters = super::parse_filters(&args.filter)?;
    let r = conn
        .docker
        .prune_networks(Some(bollard::query_parameters::PruneNetworksOptions {
            filters: Some(filters),
        }))
        .await?;
    let deleted = r.networks_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok(());
    }
    let mut text = String::from("Deleted Networks:\n");
    for d in deleted {
        text.push_str(&d);
        text.push('\n');
    }
    write_stdout(&text)
}

/// `berth network connect`.
pub async fn connect(conn: &Connection, args: &NetworkConnectArgs) -> Result<()> {
    let ipam = (args.ip.is_some() || args.ip6.is_some()).then(|| EndpointIpamConfig {
        ipv4_address: args.ip.clone(),
        ipv6_address: args.ip6.clone(),
        link_local_ips: None,
    });
    let request = NetworkConnectRequest {
        container: args.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: ipam,
            aliases: (!args.alias.is_empty()).then(|| args.alias.clone()),
            ..Default::default()
        }),
    };
    conn.docker
        .connect_network(&args.network, request)
        .await
        .map_err(CliError::from)
}

/// `berth network disconnect`.
pub async fn disconnect(conn: &Connection, args: &NetworkDisconnectArgs) -> Result<()> {
    let request = NetworkDisconnectRequest {
        container: args.container.clone(),
        force: Some(args.force),
    };
    conn.docker
        .disconnect_network(&args.network, request)
        .await
        .map_err(CliError::from)
}

/// `berth port`: `80/tcp -> 0.0.0.0:8080` lines, as docker prints them.
pub async fn port(conn: &Connection, args: &PortArgs) -> Result<()> {
    let c = conn
        .docker
        .inspect_container(
            &args.container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let wanted = match &args.port {
        Some(p) => {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            let n: u16 = port
                .parse()
                .map_err(|_| CliError::Invalid(format!("invalid port {p:?}")))?;
            Some(format!("{n}/{proto}"))
        }
        None => None,
    };
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k.as_str(), ""));
        (p.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    let mut text = String::new();
    for key in keys {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in ports.get(key).cloned().flatten().unwrap_or_default() {
            let ip = b.host_ip.unwrap_or_default();
            let addr = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            let port = b.host_port.unwrap_or_default();
            if wanted.is_some() {
                text.push_str(&format!("{addr}:{port}\n"));
            } else {
                text.push_str(&format!("{key} -> {addr}:{port}\n"));
            }
        }
    }
    if text.is_empty() {
        if let Some(w) = &wanted {
            return Err(CliError::Message(
                1,
                format!(
                    "Error: No public port '{w}' published for {}",
                    args.container
                ),
            ));
        }
    }
    write_stdout(&text)
}
