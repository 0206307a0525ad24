//! Networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks, and each
//! container's place on them.
//!
//! Owns the network records (`<data-root>/network/networks/<id>.json`, replaced atomically), one
//! IPAM per subnet (`<data-root>/network/ipam/<id>-<n>.json`), berth's nftables table (named
//! after the default bridge, so several berthds side by side never share one), the host port
//! reservations of running containers, and one embedded DNS server per user-defined network.
//!
//! The start path asks [`Networks::attach`] for a container's plan: addresses allocated, ports
//! reserved and DNATed, DNS names registered, and the interfaces the container's monitor makes
//! in its namespace. The container's exit gives it all back ([`Networks::release`]); its veth
//! pairs go with its namespace, freed by the kernel off any path a user waits on.
//!
//! All of this is blocking work (files, netlink): callers run it on a blocking thread.
//!
//! This file holds the records and the service's state; the modules below hold its work, one
//! concern each.

mod bridge;
mod endpoints;
mod files;
mod ports;
mod settings;
mod user;

pub use bridge::table_name;
pub use endpoints::{fixed_address_on_predefined, requested};
pub use ports::{parse_port_key, port_map, port_summaries};
pub use settings::{endpoint_settings, refuse_unsupported_endpoint};

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use api_server::ApiError;
use api_types::models::generated::{EndpointResource, Ipam as ApiIpam, IpamConfig, NetworkInspect};
use ipnet::IpNet;
use monitor_protocol::Interface;
use network::dns::{DnsServer, Records};
use network::ipam::Ipam;
use network::nft::{Firewall, NetworkRules, PortMapping};
use network::ports::Reservation;
use serde::{Deserialize, Serialize};

/// The name of the default network, as dockerd calls it.
pub const DEFAULT_NETWORK: &str = "bridge";

/// How berthd's networking was configured (flags and daemon.json, as dockerd's).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The default bridge's interface name (`--bridge`, default `berth0`); `none` disables the
    /// default network.
    pub bridge: String,
    /// The default bridge's address with its prefix (`--bip`); else chosen from the pools.
    pub bip: Option<IpNet>,
    /// Where subnets are taken from (`--default-address-pool`); empty: dockerd's defaults.
    pub pools: Vec<(IpNet, u8)>,
    /// The MTU of containers' interfaces (`--mtu`).
    pub mtu: Option<u32>,
    /// Nameservers for every container (`--dns`), instead of the host's.
    pub dns: Vec<IpAddr>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            bip: None,
            pools: Vec::new(),
            mtu: None,
            dns: Vec::new(),
        }
    }
}

/// One subnet of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    /// The subnet.
    pub subnet: IpNet,
    /// The gateway: the bridge's address in it.
    pub gateway: IpAddr,
    /// The part of the subnet containers' addresses come from (`--ip-range`).
    #[serde(default)]
    pub ip_range: Option<IpNet>,
}

/// A network, as berthd keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The bridge interface (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    /// Its subnets, IPv4 first.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    /// No route out (`--internal`).
    #[serde(default)]
    pub internal: bool,
    /// IPv6 enabled (`--ipv6`).
    #[serde(default)]
    pub ipv6: bool,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`-o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `bridge`, `host`, `none`: made by berthd, never removed.
    #[serde(default)]
    pub predefined: bool,
    /// `--attachable`, kept and reported as dockerd does for a local network: standalone
    /// containers may always join a local network, so it changes nothing else (docker-compose
    /// asks for it on every network it makes).
    #[serde(default)]
    pub attachable: bool,
}

impl NetworkRecord {
    /// Whether containers on it find each other by name (user-defined bridge networks).
    fn has_dns(&self) -> bool {
        self.driver == "bridge" && !self.predefined
    }

    fn masquerade(&self) -> bool {
        self.options
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false")
    }

    fn rules(&self) -> NetworkRules {
        NetworkRules {
            bridge: self.bridge.clone(),
            subnets: self.subnets.iter().map(|s| s.subnet).collect(),
            internal: self.internal,
            masquerade: self.masquerade(),
        }
    }

    fn gateway4(&self) -> Option<Ipv4Addr> {
        self.subnets.iter().find_map(|s| match s.gateway {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    fn gateway6(&self) -> Option<Ipv6Addr> {
        self.subnets.iter().find_map(|s| match s.gateway {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// The API's view; `containers` filled by the caller for inspect.
    pub fn to_api(&self, containers: Option<HashMap<String, EndpointResource>>) -> NetworkInspect {
        let config: Vec<IpamConfig> = self
            .subnets
            .iter()
            .map(|s| IpamConfig {
                subnet: Some(s.subnet.to_string()),
                ip_range: s.ip_range.map(|r| r.to_string()),
                gateway: Some(s.gateway.to_string()),
                auxiliary_addresses: None,
            })
            .collect();
        NetworkInspect {
            name: Some(self.name.clone()),
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            scope: Some("local".into()),
            driver: Some(self.driver.clone()),
            enable_ipv4: Some(self.driver == "bridge"),
            enable_ipv6: Some(self.ipv6),
            ipam: Some(ApiIpam {
                driver: Some("default".into()),
                config: Some(config),
                options: Some(HashMap::new()),
            }),
            internal: Some(self.internal),
            attachable: Some(self.attachable),
            ingress: Some(false),
            config_from: Some(api_types::models::generated::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            options: Some(
                self.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            labels: Some(
                self.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            containers: Some(containers.unwrap_or_default()),
            ..Default::default()
        }
    }
}

/// A container's place on one network while it runs (kept in its record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    /// The network's ID.
    pub network_id: String,
    /// This endpoint's ID (64 hex digits).
    pub endpoint_id: String,
    /// The veth's host end.
    pub host_ifname: String,
    /// The interface inside the container.
    pub ifname: String,
    /// Its MAC address (`02:42:…`).
    pub mac: String,
    /// Its IPv4 address with prefix.
    pub ipv4: Option<IpNet>,
    /// Its IPv6 address with prefix.
    pub ipv6: Option<IpNet>,
    /// The IPv4 gateway.
    pub gateway: Option<IpAddr>,
    /// The IPv6 gateway.
    pub gateway6: Option<IpAddr>,
    /// Names others on the network resolve it by.
    pub dns_names: Vec<String>,
    /// The aliases asked for (`--network-alias`, `--alias`).
    pub aliases: Vec<String>,
}

impl EndpointState {
    /// Its addresses, IPv4 first: the order its interface, its DNS names and `/etc/hosts`
    /// list them in.
    pub fn addresses(&self) -> impl Iterator<Item = IpNet> {
        self.ipv4.into_iter().chain(self.ipv6)
    }
}

/// A published port while its container runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The host address (none: all).
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The container's port.
    pub container_port: u16,
    /// The container address it goes to.
    pub container_ip: IpAddr,
}

/// Everything networking gave a running container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    /// By network name.
    pub endpoints: BTreeMap<String, EndpointState>,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
}

/// What starting a container on its networks needs beyond [`NetworkState`].
pub struct Attachment {
    /// What to keep in the record.
    pub state: NetworkState,
    /// What the monitor makes.
    pub interfaces: Vec<Interface>,
    /// The embedded DNS server's address, for resolv.conf (user-defined networks).
    pub embedded_dns: Option<IpAddr>,
}

struct Net {
    record: NetworkRecord,
    ipams: Vec<Ipam>,
    dns: Option<(DnsServer, Arc<Records>)>,
}

struct State {
    nets: BTreeMap<String, Net>,
    firewall: Option<Firewall>,
    /// Published ports by container, as the firewall has them.
    ports: BTreeMap<String, Vec<PortMapping>>,
    reservations: HashMap<String, Vec<Reservation>>,
}

/// berthd's networks.
pub struct Networks {
    dir: PathBuf,
    config: NetworkConfig,
    table: String,
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn internal(what: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(what.to_string())
}

fn find_in<'a>(nets: &'a BTreeMap<String, Net>, key: &str) -> Result<&'a Net, ApiError> {
    if let Some(n) = nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.record.name == key) {
        return Ok(n);
    }
    let matches: Vec<&Net> = nets
        .values()
        .filter(|n| n.record.id.starts_with(key))
        .collect();
    match matches.as_slice() {
        [one] if !key.is_empty() => Ok(one),
        [] | [_] => Err(ApiError::NotFound(format!("network {key} not found"))),
        _ => Err(ApiError::InvalidParameter(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            matches.len()
        ))),
    }
}
