//! Published ports: `-p` parsed and reserved on the host, and the `Ports` of inspect and
//! `docker ps`.

use std::collections::HashMap;
use std::net::IpAddr;

use api_server::ApiError;
use api_types::models::generated::PortBinding;
use network::nft::Proto;
use network::ports::Reservation;

use crate::state::ContainerRecord;

pub(super) fn publishes(r: &ContainerRecord) -> bool {
    r.host_config.publish_all_ports == Some(true)
        || r.host_config.port_bindings.as_ref().is_some_and(|p| {
            p.values()
                .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
        })
}

/// One port to publish, as asked.
pub(super) struct PortRequest {
    pub(super) host_ip: Option<IpAddr>,
    pub(super) host_from: u16,
    pub(super) host_to: u16,
    pub(super) proto: Proto,
    pub(super) container_port: u16,
}

/// Parses `80/tcp` as the API keys ports.
pub fn parse_port_key(key: &str) -> Result<(u16, Proto), ApiError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto: Proto = proto
        .parse()
        .map_err(|_| ApiError::InvalidParameter(format!("invalid proto: {proto}")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::InvalidParameter(format!("invalid containerPort: {port}")))?;
    Ok((port, proto))
}

pub(super) fn port_requests(r: &ContainerRecord) -> Result<Vec<PortRequest>, ApiError> {
    let mut out = Vec::new();
    let bindings = r.host_config.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    for key in keys {
        let (container_port, proto) = parse_port_key(key)?;
        for b in bindings.get(key).cloned().flatten().unwrap_or_default() {
            out.push(port_request(&b, container_port, proto)?);
        }
    }
    if r.host_config.publish_all_ports == Some(true) {
        let mut exposed: Vec<&String> = r.config.exposed_ports.iter().flatten().collect();
        exposed.sort();
        for key in exposed {
            if bindings
                .get(key)
                .is_some_and(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
            {
                continue;
            }
            let (container_port, proto) = parse_port_key(key)?;
            out.push(PortRequest {
                host_ip: None,
                host_from: 0,
                host_to: 0,
                proto,
                container_port,
            });
        }
    }
    Ok(out)
}

pub(super) fn port_request(
    b: &PortBinding,
    container_port: u16,
    proto: Proto,
) -> Result<PortRequest, ApiError> {
    let host_ip = match b.host_ip.as_deref().map(|s| s.trim_matches(['[', ']'])) {
        None | Some("") => None,
        Some(s) => {
            let ip: IpAddr = s
                .parse()
                .map_err(|_| ApiError::InvalidParameter(format!("invalid host IP: {s}")))?;
            if ip.is_unspecified() && ip.is_ipv4() {
                None
            } else {
                Some(ip)
            }
        }
    };
    let (host_from, host_to) = match b.host_port.as_deref() {
        None | Some("") => (0, 0),
        Some(s) => network::ports::parse_range(s)
            .map_err(|e| ApiError::InvalidParameter(format!("invalid hostPort: {s}: {e}")))?,
    };
    Ok(PortRequest {
        host_ip,
        host_from,
        host_to,
        proto,
        container_port,
    })
}

/// Reserves one host port: the one asked, the first free one of a range, or one the kernel picks.
pub(super) fn reserve_one(
    ip: Option<IpAddr>,
    proto: Proto,
    from: u16,
    to: u16,
) -> Result<(Reservation, u16), ApiError> {
    let conflict = |e: network::ports::PortError| {
        ApiError::Internal(format!(
            "driver failed programming external connectivity on endpoint: {e}"
        ))
    };
    if from == to {
        let res = network::ports::reserve(ip, proto, from).map_err(conflict)?;
        let port = res.port();
        return Ok((res, port));
    }
    let mut last = None;
    for port in from..=to {
        match network::ports::reserve(ip, proto, port) {
            Ok(res) => return Ok((res, port)),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => conflict(e),
        None => ApiError::InvalidParameter(format!("invalid host port range {from}-{to}")),
    })
}

/// The `NetworkSettings.Ports` map: every exposed or published port, with its bindings while
/// the container runs.
pub fn port_map(r: &ContainerRecord) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut out: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if r.state.status == crate::state::Status::Running {
        for key in r.config.exposed_ports.iter().flatten() {
            out.insert(key.clone(), None);
        }
        for p in &r.net.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let b = PortBinding {
                host_ip: Some(
                    p.host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                ),
                host_port: Some(p.host_port.to_string()),
            };
            out.entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
    }
    out
}

/// The `Ports` column of `docker ps`: published ports while running, exposed ones otherwise.
pub fn port_summaries(r: &ContainerRecord) -> Vec<api_types::models::generated::PortSummary> {
    use api_types::models::generated::{PortSummary, PortSummaryTypeEnum};
    let typ = |p: &str| match p {
        "udp" => Some(PortSummaryTypeEnum::UDP),
        "sctp" => Some(PortSummaryTypeEnum::SCTP),
        _ => Some(PortSummaryTypeEnum::TCP),
    };
    let mut out = Vec::new();
    let running = r.state.status == crate::state::Status::Running;
    if running {
        for p in &r.net.ports {
            out.push(PortSummary {
                ip: Some(
                    p.host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                ),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                typ: typ(&p.proto),
            });
        }
    }
    for key in r.config.exposed_ports.iter().flatten() {
        if let Ok((port, proto)) = parse_port_key(key) {
            let proto = proto.to_string();
            if !out
                .iter()
                .any(|s| s.private_port == port && s.typ == typ(&proto))
            {
                out.push(PortSummary {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: typ(&proto),
                });
            }
        }
    }
    out
}
