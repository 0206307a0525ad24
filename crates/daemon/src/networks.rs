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

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use api_server::ApiError;
use api_types::models::generated::{
    EndpointResource, EndpointSettings, Ipam as ApiIpam, IpamConfig, NetworkCreateRequest,
    NetworkInspect, PortBinding,
};
use ipnet::IpNet;
use monitor_protocol::Interface;
use network::dns::{DnsServer, Records};
use network::ipam::Ipam;
use network::link::{self, BridgeSpec};
use network::netlink::Netlink;
use network::nft::{Firewall, NetworkRules, PortMapping, Proto};
use network::ports::Reservation;
use serde::{Deserialize, Serialize};

use crate::state::ContainerRecord;
use crate::{io_err, DaemonError};

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

/// The nftables table of a berthd whose default bridge is `bridge`: `berth` for the default
/// `berth0`, else one of its own, so that daemons side by side never touch each other's rules.
pub fn table_name(bridge: &str) -> String {
    if bridge == "berth0" {
        "berth".to_string()
    } else {
        format!("berth_{}", bridge.replace(['-', '.'], "_"))
    }
}

fn random_hex(n: usize) -> Result<String, ApiError> {
    Ok(crate::new_id()?[..n].to_string())
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Where the embedded DNS servers send names they do not know: berthd's `--dns`, else the
/// host's resolvers (reachable from the host's namespace, where the servers run, even when
/// they are loopback addresses such as systemd-resolved's).
fn upstreams(config: &NetworkConfig) -> Vec<SocketAddr> {
    if !config.dns.is_empty() {
        return config
            .dns
            .iter()
            .map(|ip| SocketAddr::new(*ip, 53))
            .collect();
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| network::dns::upstreams_from_resolv_conf(&t))
        .unwrap_or_default()
}

impl Networks {
    /// Loads the networks (making the predefined ones on a first start), makes their bridges,
    /// and replaces berth's nftables table with their rules. Blocking.
    pub fn open(data_root: &Path, config: NetworkConfig) -> Result<Networks, DaemonError> {
        let dir = data_root.join("network");
        for d in [dir.join("networks"), dir.join("ipam")] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let table = table_name(&config.bridge);
        let mut records = BTreeMap::new();
        let list = dir.join("networks");
        for entry in std::fs::read_dir(&list).map_err(io_err("list", &list))? {
            let path = entry.map_err(io_err("list", &list))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
            match serde_json::from_slice::<NetworkRecord>(&bytes) {
                Ok(r) => {
                    records.insert(r.id.clone(), r);
                }
                Err(e) => tracing::error!("network record {}: {e}; skipped", path.display()),
            }
        }
        let networks = Networks {
            dir,
            config,
            table,
            state: Mutex::new(State {
                nets: BTreeMap::new(),
                firewall: None,
                ports: BTreeMap::new(),
                reservations: HashMap::new(),
            }),
        };
        networks
            .open_all(records)
            .map_err(|e| DaemonError::Network(e.to_string()))?;
        Ok(networks)
    }

    fn save(&self, r: &NetworkRecord) -> Result<(), ApiError> {
        let path = self.dir.join("networks").join(format!("{}.json", r.id));
        let bytes = serde_json::to_vec_pretty(r).map_err(internal)?;
        crate::write_atomic(&path, &bytes)
            .map_err(|e| internal(format!("network {}: write {}: {e}", r.name, path.display())))
    }

    fn ipam_path(&self, id: &str, n: usize) -> PathBuf {
        self.dir.join("ipam").join(format!("{id}-{n}.json"))
    }

    fn open_ipams(&self, r: &NetworkRecord) -> Result<Vec<Ipam>, ApiError> {
        r.subnets
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let path = self.ipam_path(&r.id, n);
                match Ipam::open(&path, s.subnet, s.gateway, s.ip_range) {
                    // An unreadable file can only come from a power loss (the file is replaced
                    // by rename, unsynced), which also ended every container: nothing in it is
                    // in use. It is kept aside for inspection and a fresh one made.
                    Err(network::ipam::IpamError::Parse { .. }) => {
                        let aside = path.with_extension("json.corrupt");
                        tracing::warn!(
                            "network {}: {} is unreadable; moved to {} and started afresh",
                            r.name,
                            path.display(),
                            aside.display()
                        );
                        let _ = std::fs::rename(&path, &aside);
                        Ipam::open(&path, s.subnet, s.gateway, s.ip_range)
                    }
                    other => other,
                }
                .map_err(|e| internal(format!("network {}: {e}", r.name)))
            })
            .collect()
    }

    /// Routes on the host and other networks' subnets: what a new subnet must not overlap.
    fn subnets_in_use(&self, nets: &BTreeMap<String, Net>) -> Result<Vec<IpNet>, ApiError> {
        let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")))?;
        let mut used = nl
            .routes()
            .map_err(|e| internal(format!("list the host's routes: {e}")))?;
        // A default route overlaps everything; it is no reason to refuse a subnet.
        used.retain(|n| n.prefix_len() > 0);
        for n in nets.values() {
            used.extend(n.record.subnets.iter().map(|s| s.subnet));
        }
        Ok(used)
    }

    fn pools(&self) -> Vec<(IpNet, u8)> {
        if self.config.pools.is_empty() {
            network::pools::default_pools()
        } else {
            self.config.pools.clone()
        }
    }

    fn open_all(&self, mut records: BTreeMap<String, NetworkRecord>) -> Result<(), ApiError> {
        let mut st = lock(&self.state);
        let created = crate::now();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !records.values().any(|r| r.name == name) {
                let r = NetworkRecord {
                    id: crate::new_id()?,
                    name: name.into(),
                    driver: driver.into(),
                    created: created.clone(),
                    bridge: String::new(),
                    subnets: Vec::new(),
                    internal: false,
                    ipv6: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    predefined: true,
                    attachable: false,
                };
                self.save(&r)?;
                records.insert(r.id.clone(), r);
            }
        }
        let default_bridge = records
            .values()
            .find(|r| r.name == DEFAULT_NETWORK)
            .cloned();
        // The default bridge follows the daemon's flags: a changed --bip or --bridge applies
        // at the next start, as with dockerd.
        if self.config.bridge != "none" {
            let mut r = default_bridge.clone().unwrap_or_else(|| NetworkRecord {
                id: String::new(),
                name: DEFAULT_NETWORK.into(),
                driver: "bridge".into(),
                created: created.clone(),
                bridge: String::new(),
                subnets: Vec::new(),
                internal: false,
                ipv6: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                predefined: true,
                attachable: false,
            });
            if r.id.is_empty() {
                r.id = crate::new_id()?;
            }
            r.bridge = self.config.bridge.clone();
            let subnet = match self.config.bip {
                Some(bip) => Some(Subnet {
                    subnet: bip.trunc(),
                    gateway: bip.addr(),
                    ip_range: None,
                }),
                None => r.subnets.first().cloned(),
            };
            let subnet = match subnet {
                Some(s) => s,
                None => {
                    let others: BTreeMap<String, Net> = BTreeMap::new();
                    let mut used = self.subnets_in_use(&others)?;
                    used.extend(
                        records
                            .values()
                            .flat_map(|r| r.subnets.iter().map(|s| s.subnet)),
                    );
                    let subnet =
                        network::pools::choose_subnet(&self.pools(), &used).ok_or_else(|| {
                            internal("no free subnet for the default bridge in the address pools")
                        })?;
                    Subnet {
                        subnet,
                        gateway: first_host(subnet)?,
                        ip_range: None,
                    }
                }
            };
            r.subnets = vec![subnet];
            r.options.insert(
                "com.docker.network.bridge.name".into(),
                self.config.bridge.clone(),
            );
            r.options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            if default_bridge.as_ref() != Some(&r) {
                self.save(&r)?;
            }
            records.insert(r.id.clone(), r);
        } else if let Some(r) = default_bridge {
            records.remove(&r.id);
        }
        let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")))?;
        for r in records.into_values() {
            if r.driver == "bridge" {
                self.make_bridge(&mut nl, &r)?;
            }
            let ipams = self.open_ipams(&r)?;
            let dns = self.start_dns(&r);
            st.nets.insert(
                r.id.clone(),
                Net {
                    record: r,
                    ipams,
                    dns,
                },
            );
        }
        let mut fw = Firewall::new(&self.table)
            .map_err(|e| internal(format!("nftables table {}: {e}", self.table)))?;
        let rules: Vec<NetworkRules> = st
            .nets
            .values()
            .filter(|n| n.record.driver == "bridge")
            .map(|n| n.record.rules())
            .collect();
        fw.sync(&rules, &[])
            .map_err(|e| internal(format!("nftables table {}: {e}", self.table)))?;
        st.firewall = Some(fw);
        Ok(())
    }

    fn make_bridge(&self, nl: &mut Netlink, r: &NetworkRecord) -> Result<(), ApiError> {
        let spec = BridgeSpec {
            name: r.bridge.clone(),
            addresses: r
                .subnets
                .iter()
                .map(|s| IpNet::new(s.gateway, s.subnet.prefix_len()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(internal)?,
            mtu: self.config.mtu,
        };
        link::ensure_bridge(nl, &spec).map_err(|e| internal(format!("network {}: {e}", r.name)))?;
        Ok(())
    }

    fn start_dns(&self, r: &NetworkRecord) -> Option<(DnsServer, Arc<Records>)> {
        if !r.has_dns() {
            return None;
        }
        let records = Arc::new(Records::for_network(&r.name));
        let listen: Vec<SocketAddr> = r
            .subnets
            .iter()
            .map(|s| SocketAddr::new(s.gateway, 53))
            .collect();
        match DnsServer::start(&listen, records.clone(), upstreams(&self.config)) {
            Ok(server) => Some((server, records)),
            Err(e) => {
                tracing::warn!(
                    "network {}: no embedded DNS server ({e}); its containers use the host's resolvers",
                    r.name
                );
                None
            }
        }
    }

    /// Replaces the table with every network's rules and every running container's ports.
    fn resync(&self, st: &mut State) -> Result<(), ApiError> {
        let rules: Vec<NetworkRules> = st
            .nets
            .values()
            .filter(|n| n.record.driver == "bridge")
            .map(|n| n.record.rules())
            .collect();
        let ports: Vec<(String, Vec<PortMapping>)> = st
            .ports
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(fw) = st.firewall.as_mut() {
            fw.sync(&rules, &ports)
                .map_err(|e| internal(format!("nftables table {}: {e}", self.table)))?;
        }
        Ok(())
    }

    /// Every network.
    pub fn list(&self) -> Vec<NetworkRecord> {
        let st = lock(&self.state);
        let mut out: Vec<NetworkRecord> = st.nets.values().map(|n| n.record.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A network by full ID, name or unique ID prefix (dockerd's order).
    pub fn find(&self, key: &str) -> Result<NetworkRecord, ApiError> {
        let st = lock(&self.state);
        find_in(&st.nets, key).map(|n| n.record.clone())
    }

    /// `docker network create`.
    pub fn create(&self, req: NetworkCreateRequest) -> Result<NetworkRecord, ApiError> {
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(ApiError::InvalidParameter(format!(
                "network driver {driver:?} is not supported by berthd (only \"bridge\")"
            )));
        }
        if matches!(req.name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(ApiError::Forbidden(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        if req
            .scope
            .as_deref()
            .is_some_and(|s| !s.is_empty() && s != "local")
        {
            return Err(ApiError::InvalidParameter(format!(
                "scope {:?} is not supported: berthd's networks are local",
                req.scope.as_deref().unwrap_or_default()
            )));
        }
        for (flag, on) in [
            ("--ingress", req.ingress == Some(true)),
            ("--config-only", req.config_only == Some(true)),
            (
                "--config-from",
                req.config_from
                    .as_ref()
                    .and_then(|c| c.network.as_deref())
                    .is_some_and(|n| !n.is_empty()),
            ),
        ] {
            if on {
                return Err(ApiError::InvalidParameter(format!(
                    "{flag} is for swarm networks, which berthd does not have"
                )));
            }
        }
        if req.enable_ipv4 == Some(false) {
            return Err(ApiError::InvalidParameter(
                "IPv6-only networks (--ipv4=false) are not supported by berthd".into(),
            ));
        }
        let ipam = req.ipam.clone().unwrap_or_default();
        if ipam
            .driver
            .as_deref()
            .is_some_and(|d| !d.is_empty() && d != "default")
        {
            return Err(ApiError::InvalidParameter(format!(
                "IPAM driver {:?} is not supported by berthd (only \"default\")",
                ipam.driver.as_deref().unwrap_or_default()
            )));
        }
        let options: BTreeMap<String, String> = req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        for key in options.keys() {
            if !matches!(
                key.as_str(),
                "com.docker.network.bridge.name"
                    | "com.docker.network.bridge.enable_ip_masquerade"
                    | "com.docker.network.driver.mtu"
            ) {
                return Err(ApiError::InvalidParameter(format!(
                    "network option {key:?} is not supported by berthd"
                )));
            }
        }
        let ipv6 = req.enable_ipv6 == Some(true);
        let mut st = lock(&self.state);
        if st.nets.values().any(|n| n.record.name == req.name) {
            return Err(ApiError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let id = crate::new_id()?;
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
            return Err(ApiError::InvalidParameter(format!(
                "invalid bridge name {bridge:?}: at most 15 characters, no '/' or spaces"
            )));
        }
        if st.nets.values().any(|n| n.record.bridge == bridge) {
            return Err(ApiError::Conflict(format!(
                "bridge {bridge} is already used by another network"
            )));
        }
        let mut subnets = Vec::new();
        let used = self.subnets_in_use(&st.nets)?;
        for c in ipam.config.iter().flatten() {
            let Some(text) = c.subnet.as_deref().filter(|s| !s.is_empty()) else {
                return Err(ApiError::InvalidParameter(
                    "an IPAM config without a subnet is not supported: give --subnet".into(),
                ));
            };
            let subnet: IpNet = text.parse().map_err(|_| {
                ApiError::InvalidParameter(format!("invalid subnet {text}: not a CIDR"))
            })?;
            if subnet != subnet.trunc() {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid subnet {text}: it has host bits set (did you mean {}?)",
                    subnet.trunc()
                )));
            }
            if subnet.addr().is_ipv6() && !ipv6 {
                return Err(ApiError::InvalidParameter(format!(
                    "subnet {subnet} is IPv6 but the network is not: add --ipv6"
                )));
            }
            if let Some(other) = used.iter().find(|u| overlaps(u, &subnet)) {
                return Err(ApiError::Forbidden(format!(
                    "Pool overlaps with other one on this address space ({subnet} overlaps {other})"
                )));
            }
            let gateway = match c.gateway.as_deref().filter(|g| !g.is_empty()) {
                Some(g) => {
                    let g: IpAddr = g.parse().map_err(|_| {
                        ApiError::InvalidParameter(format!("invalid gateway {g}: not an address"))
                    })?;
                    if !subnet.contains(&g) {
                        return Err(ApiError::InvalidParameter(format!(
                            "gateway {g} is not in subnet {subnet}"
                        )));
                    }
                    g
                }
                None => first_host(subnet)?,
            };
            let ip_range = match c.ip_range.as_deref().filter(|g| !g.is_empty()) {
                Some(t) => {
                    let r: IpNet = t.parse().map_err(|_| {
                        ApiError::InvalidParameter(format!("invalid ip-range {t}: not a CIDR"))
                    })?;
                    if !subnet.contains(&r) {
                        return Err(ApiError::InvalidParameter(format!(
                            "ip-range {r} is not in subnet {subnet}"
                        )));
                    }
                    Some(r)
                }
                None => None,
            };
            if c.auxiliary_addresses
                .as_ref()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(ApiError::InvalidParameter(
                    "--aux-address is not supported by berthd".into(),
                ));
            }
            subnets.push(Subnet {
                subnet,
                gateway,
                ip_range,
            });
        }
        if !subnets.iter().any(|s| s.subnet.addr().is_ipv4()) {
            let subnet = network::pools::choose_subnet(&self.pools(), &used).ok_or_else(|| {
                ApiError::Forbidden(
                    "all predefined address pools have been fully subnetted".to_string(),
                )
            })?;
            subnets.insert(
                0,
                Subnet {
                    subnet,
                    gateway: first_host(subnet)?,
                    ip_range: None,
                },
            );
        }
        if ipv6 && !subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
            return Err(ApiError::InvalidParameter(
                "--ipv6 needs an IPv6 --subnet: berthd has no IPv6 address pool".into(),
            ));
        }
        subnets.sort_by_key(|s| s.subnet.addr().is_ipv6());
        let record = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            created: crate::now(),
            bridge,
            subnets,
            internal: req.internal == Some(true),
            ipv6,
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            options,
            predefined: false,
            attachable: req.attachable == Some(true),
        };
        let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")))?;
        self.make_bridge(&mut nl, &record)?;
        let undo = |nl: &mut Netlink| {
            let _ = link::remove_bridge(nl, &record.bridge);
            for n in 0..record.subnets.len() {
                let _ = std::fs::remove_file(self.ipam_path(&record.id, n));
            }
        };
        let ipams = match self.open_ipams(&record) {
            Ok(i) => i,
            Err(e) => {
                undo(&mut nl);
                return Err(e);
            }
        };
        let dns = self.start_dns(&record);
        st.nets.insert(
            id.clone(),
            Net {
                record: record.clone(),
                ipams,
                dns,
            },
        );
        if let Err(e) = self.resync(&mut st).and_then(|_| self.save(&record)) {
            st.nets.remove(&id);
            let _ = self.resync(&mut st);
            undo(&mut nl);
            let _ = std::fs::remove_file(self.dir.join("networks").join(format!("{id}.json")));
            return Err(e);
        }
        Ok(record)
    }

    /// `docker network rm`: `users` are the containers connected to it (none, or refused).
    pub fn remove(&self, key: &str, users: &[String]) -> Result<NetworkRecord, ApiError> {
        let mut st = lock(&self.state);
        let record = find_in(&st.nets, key)?.record.clone();
        if record.predefined {
            return Err(ApiError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                record.name
            )));
        }
        if !users.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "error while removing network: network {} has active endpoints (name:{:?} id:{:?})",
                record.name,
                users.join(", "),
                &record.id[..12]
            )));
        }
        let path = self
            .dir
            .join("networks")
            .join(format!("{}.json", record.id));
        std::fs::remove_file(&path).map_err(|e| {
            internal(format!(
                "network {}: remove {}: {e}",
                record.name,
                path.display()
            ))
        })?;
        if let Some(net) = st.nets.remove(&record.id) {
            if let Some((server, _)) = net.dns {
                server.stop();
            }
        }
        for n in 0..record.subnets.len() {
            let _ = std::fs::remove_file(self.ipam_path(&record.id, n));
        }
        if let Err(e) = self.resync(&mut st) {
            tracing::warn!("network {}: {e}", record.name);
        }
        let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")))?;
        link::remove_bridge(&mut nl, &record.bridge)
            .map_err(|e| internal(format!("network {}: {e}", record.name)))?;
        Ok(record)
    }

    /// The networks a container joins when it starts: its `--network` (resolved; `default`
    /// is the default bridge) first, then the other endpoints it was connected to.
    pub fn wanted(
        &self,
        r: &ContainerRecord,
    ) -> Result<Vec<(NetworkRecord, EndpointSettings)>, ApiError> {
        let mode = r.host_config.network_mode.as_deref().unwrap_or("");
        let primary = match mode {
            "" | "default" => DEFAULT_NETWORK,
            m => m,
        };
        if primary == "host" || primary == "none" || primary.starts_with("container:") {
            return Ok(Vec::new());
        }
        let st = lock(&self.state);
        let mut out = Vec::new();
        let main = find_in(&st.nets, primary)
            .map_err(|_| ApiError::NotFound(format!("network {primary} not found")))?;
        let settings = |net: &NetworkRecord| {
            r.endpoints_config
                .get(&net.name)
                .or_else(|| r.endpoints_config.get(&net.id))
                .or_else(|| {
                    if net.name == primary || net.id == primary {
                        r.endpoints_config.get(primary)
                    } else {
                        None
                    }
                })
                .cloned()
                .unwrap_or_default()
        };
        if main.record.driver != "bridge" {
            return Ok(Vec::new());
        }
        if !r.primary_disconnected {
            out.push((main.record.clone(), settings(&main.record)));
        }
        for key in r.endpoints_config.keys() {
            if key == primary || key == &main.record.name || key == &main.record.id {
                continue;
            }
            let net = find_in(&st.nets, key)
                .map_err(|_| ApiError::NotFound(format!("network {key} not found")))?;
            if net.record.driver == "bridge" && !out.iter().any(|(n, _)| n.id == net.record.id) {
                out.push((net.record.clone(), settings(&net.record)));
            }
        }
        Ok(out)
    }

    /// Everything a container needs on its networks to start: addresses, interfaces, ports,
    /// DNS names. On failure nothing is left allocated.
    pub fn attach(&self, r: &ContainerRecord) -> Result<Attachment, ApiError> {
        let wanted = self.wanted(r)?;
        let mut att = Attachment {
            state: NetworkState::default(),
            interfaces: Vec::new(),
            embedded_dns: None,
        };
        if wanted.is_empty() {
            if publishes(r) && r.host_config.network_mode.as_deref() != Some("host") {
                // dockerd ignores -p with --network none/container:; it says so in a warning.
                tracing::info!(
                    "container {}: published ports ignored without a bridge network",
                    r.id
                );
            }
            return Ok(att);
        }
        let done = self.attach_inner(r, &wanted, 0, true, &mut att);
        if let Err(e) = done {
            self.release(&r.id, &att.state);
            return Err(e);
        }
        Ok(att)
    }

    fn attach_inner(
        &self,
        r: &ContainerRecord,
        wanted: &[(NetworkRecord, EndpointSettings)],
        first_index: usize,
        with_ports: bool,
        att: &mut Attachment,
    ) -> Result<(), ApiError> {
        let mut st = lock(&self.state);
        for (i, (net, settings)) in wanted.iter().enumerate() {
            let i = i + first_index;
            let n = st
                .nets
                .get_mut(&net.id)
                .ok_or_else(|| ApiError::NotFound(format!("network {} not found", net.name)))?;
            let want4 = settings
                .ipam_config
                .as_ref()
                .and_then(|c| c.ipv4_address.as_deref())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| {
                        ApiError::InvalidParameter(format!("invalid IPv4 address: {s}"))
                    })
                })
                .transpose()?;
            let want6 = settings
                .ipam_config
                .as_ref()
                .and_then(|c| c.ipv6_address.as_deref())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| {
                        ApiError::InvalidParameter(format!("invalid IPv6 address: {s}"))
                    })
                })
                .transpose()?;
            if (want4.is_some() || want6.is_some()) && n.record.predefined {
                return Err(ApiError::InvalidParameter(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            let mut ep = EndpointState {
                network_id: n.record.id.clone(),
                endpoint_id: crate::new_id()?,
                host_ifname: format!("veth{}", random_hex(7)?),
                ifname: format!("eth{i}"),
                ..Default::default()
            };
            // Recorded before allocating, so a failure part-way releases what was taken.
            att.state
                .endpoints
                .insert(n.record.name.clone(), ep.clone());
            for (k, s) in n.record.subnets.iter().enumerate() {
                let want = if s.subnet.addr().is_ipv4() {
                    want4
                } else {
                    want6
                };
                let addr = n.ipams[k].allocate(&r.id, want).map_err(|e| match e {
                    network::ipam::IpamError::InUse { .. } => {
                        ApiError::Forbidden(format!("network {}: {e}", n.record.name))
                    }
                    other => ApiError::Forbidden(format!("network {}: {other}", n.record.name)),
                })?;
                let net = IpNet::new(addr, s.subnet.prefix_len()).map_err(internal)?;
                if addr.is_ipv4() {
                    ep.ipv4 = Some(net);
                    if !n.record.internal {
                        ep.gateway = Some(s.gateway);
                    }
                } else {
                    ep.ipv6 = Some(net);
                    if !n.record.internal {
                        ep.gateway6 = Some(s.gateway);
                    }
                }
                att.state
                    .endpoints
                    .insert(n.record.name.clone(), ep.clone());
            }
            let mac = match ep.ipv4.map(|a| a.addr()) {
                Some(IpAddr::V4(a)) => link::mac_for(a),
                _ => {
                    let hex = random_hex(8)?;
                    let b = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
                    [0x02, 0x42, b(0), b(2), b(4), b(6)]
                }
            };
            ep.mac = mac_text(mac);
            ep.aliases = settings.aliases.clone().unwrap_or_default();
            if n.record.has_dns() {
                let mut names = vec![r.name.clone()];
                names.extend(ep.aliases.iter().cloned());
                names.push(r.id[..12].to_string());
                if let Some(h) = r.config.hostname.as_deref().filter(|h| !h.is_empty()) {
                    if !names.iter().any(|n| n == h) {
                        names.push(h.to_string());
                    }
                }
                ep.dns_names = names;
                if let Some((_, records)) = &n.dns {
                    let addrs: Vec<IpAddr> = ep
                        .ipv4
                        .iter()
                        .chain(ep.ipv6.iter())
                        .map(|a| a.addr())
                        .collect();
                    records.set(&r.id, &ep.dns_names, &addrs);
                    if att.embedded_dns.is_none() {
                        att.embedded_dns = n.record.gateway4().map(IpAddr::V4);
                    }
                }
            }
            att.interfaces.push(Interface {
                bridge: n.record.bridge.clone(),
                host_ifname: ep.host_ifname.clone(),
                ifname: ep.ifname.clone(),
                mac: Some(mac),
                addresses: ep
                    .ipv4
                    .iter()
                    .chain(ep.ipv6.iter())
                    .map(|a| (a.addr(), a.prefix_len()))
                    .collect(),
                // The default route goes through the first network only, as dockerd's
                // (an interface added later must not fight over it).
                gateway: if n.record.internal || i > 0 {
                    None
                } else {
                    n.record.gateway4()
                },
                gateway6: if n.record.internal || i > 0 {
                    None
                } else {
                    n.record.gateway6()
                },
                mtu: self.mtu(&n.record),
            });
            att.state.endpoints.insert(n.record.name.clone(), ep);
        }
        // Published ports go to the first network's address (dockerd: the one with the
        // default route), reserved on the host before anything is added to the table.
        let first = wanted
            .first()
            .and_then(|(net, _)| att.state.endpoints.get(&net.name))
            .cloned()
            .unwrap_or_default();
        let mappings = if with_ports {
            port_requests(r)?
        } else {
            Vec::new()
        };
        if !mappings.is_empty() {
            let Some(ip) = first.ipv4.map(|a| a.addr()) else {
                return Err(internal("published ports need an IPv4 address"));
            };
            let mut held = Vec::new();
            let mut table = Vec::new();
            for m in mappings {
                let (res, port) = reserve_one(m.host_ip, m.proto, m.host_from, m.host_to)?;
                held.push(res);
                table.push(PortMapping {
                    host_ip: m.host_ip,
                    host_port: port,
                    proto: m.proto,
                    container_ip: ip,
                    container_port: m.container_port,
                });
                att.state.ports.push(PublishedPort {
                    host_ip: m.host_ip,
                    host_port: port,
                    proto: m.proto.to_string(),
                    container_port: m.container_port,
                    container_ip: ip,
                });
            }
            st.reservations.insert(r.id.clone(), held);
            if let Some(fw) = st.firewall.as_mut() {
                fw.add_ports(&r.id, &table)
                    .map_err(|e| internal(format!("publish ports: {e}")))?;
            }
            st.ports.insert(r.id.clone(), table);
        }
        Ok(())
    }

    /// Puts a running container on one more network (`docker network connect`): its address,
    /// DNS names and the interface its monitor is to make. On failure nothing is left.
    pub fn attach_one(
        &self,
        r: &ContainerRecord,
        net: &NetworkRecord,
        settings: &EndpointSettings,
    ) -> Result<(EndpointState, Interface, NetworkState), ApiError> {
        let mut att = Attachment {
            state: NetworkState::default(),
            interfaces: Vec::new(),
            embedded_dns: None,
        };
        let index = (0..)
            .find(|i| {
                let name = format!("eth{i}");
                !r.net.endpoints.values().any(|e| e.ifname == name)
            })
            .unwrap_or(0);
        let wanted = [(net.clone(), settings.clone())];
        if let Err(e) = self.attach_inner(r, &wanted, index, false, &mut att) {
            self.release_network(&r.id, &net.id);
            return Err(e);
        }
        let ep = att
            .state
            .endpoints
            .get(&net.name)
            .cloned()
            .ok_or_else(|| internal("connect: no endpoint was made"))?;
        let iface = att
            .interfaces
            .pop()
            .ok_or_else(|| internal("connect: no interface was planned"))?;
        Ok((ep, iface, att.state))
    }

    /// Gives back one network's address and DNS names of container `id`.
    pub fn release_network(&self, id: &str, network_id: &str) {
        let mut st = lock(&self.state);
        if let Some(n) = st.nets.get_mut(network_id) {
            for ipam in n.ipams.iter_mut() {
                if let Err(e) = ipam.release_owner(id) {
                    tracing::warn!("container {id}: network {}: {e}", n.record.name);
                }
            }
            if let Some((_, records)) = &n.dns {
                records.remove(id);
            }
        }
    }

    fn mtu(&self, r: &NetworkRecord) -> Option<u32> {
        r.options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok())
            .or(self.config.mtu)
    }

    /// Gives back what [`Networks::attach`] took for container `id`.
    pub fn release(&self, id: &str, state: &NetworkState) {
        let mut st = lock(&self.state);
        for ep in state.endpoints.values() {
            if let Some(n) = st.nets.get_mut(&ep.network_id) {
                for ipam in n.ipams.iter_mut() {
                    if let Err(e) = ipam.release_owner(id) {
                        tracing::warn!("container {id}: network {}: {e}", n.record.name);
                    }
                }
                if let Some((_, records)) = &n.dns {
                    records.remove(id);
                }
            }
        }
        if st.ports.remove(id).is_some() {
            if let Some(fw) = st.firewall.as_mut() {
                if let Err(e) = fw.remove_ports(id) {
                    tracing::warn!("container {id}: unpublish ports: {e}");
                }
            }
        }
        st.reservations.remove(id);
    }

    /// After a restart: takes back the ports and DNS names of containers still running (their
    /// addresses are in the IPAM files already) and puts their rules back in the table.
    pub fn restore_running(&self, running: &[ContainerRecord]) {
        let mut st = lock(&self.state);
        for r in running {
            let mut held = Vec::new();
            let mut table = Vec::new();
            for p in &r.net.ports {
                let proto: Proto = match p.proto.parse() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                match network::ports::reserve(p.host_ip, proto, p.host_port) {
                    Ok(res) => held.push(res),
                    Err(e) => tracing::warn!("container {}: port {}: {e}", r.id, p.host_port),
                }
                table.push(PortMapping {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto,
                    container_ip: p.container_ip,
                    container_port: p.container_port,
                });
            }
            if !table.is_empty() {
                st.ports.insert(r.id.clone(), table);
                st.reservations.insert(r.id.clone(), held);
            }
            for ep in r.net.endpoints.values() {
                if let Some(Net {
                    dns: Some((_, records)),
                    ..
                }) = st.nets.get(&ep.network_id)
                {
                    let addrs: Vec<IpAddr> = ep
                        .ipv4
                        .iter()
                        .chain(ep.ipv6.iter())
                        .map(|a| a.addr())
                        .collect();
                    records.set(&r.id, &ep.dns_names, &addrs);
                }
            }
        }
        if let Err(e) = self.resync(&mut st) {
            tracing::error!("{e}");
        }
    }

    /// Frees the addresses IPAM holds for containers berthd no longer runs (left by a crash
    /// between an exit and its release).
    pub fn release_stale(&self, running: &std::collections::HashSet<String>) {
        let mut st = lock(&self.state);
        for n in st.nets.values_mut() {
            for ipam in n.ipams.iter_mut() {
                let stale: Vec<String> = ipam
                    .allocations()
                    .into_iter()
                    .map(|(_, owner)| owner)
                    .filter(|o| !running.contains(o))
                    .collect();
                for owner in stale {
                    let _ = ipam.release_owner(&owner);
                }
            }
        }
    }
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

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn first_host(subnet: IpNet) -> Result<IpAddr, ApiError> {
    subnet
        .hosts()
        .next()
        .ok_or_else(|| ApiError::InvalidParameter(format!("subnet {subnet} has no host address")))
}

fn publishes(r: &ContainerRecord) -> bool {
    r.host_config.publish_all_ports == Some(true)
        || r.host_config.port_bindings.as_ref().is_some_and(|p| {
            p.values()
                .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
        })
}

/// One port to publish, as asked.
struct PortRequest {
    host_ip: Option<IpAddr>,
    host_from: u16,
    host_to: u16,
    proto: Proto,
    container_port: u16,
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

fn port_requests(r: &ContainerRecord) -> Result<Vec<PortRequest>, ApiError> {
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

fn port_request(
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
fn reserve_one(
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

/// Refuses the endpoint settings berthd does not apply, rather than ignoring them: a chosen
/// MAC address (`--mac-address`), legacy links, driver options and link-local addresses.
pub fn refuse_unsupported_endpoint(network: &str, s: &EndpointSettings) -> Result<(), ApiError> {
    let refused = |what: &str| {
        Err(ApiError::NotImplemented(format!(
            "{what} (network {network}) is not supported by berthd yet"
        )))
    };
    if s.mac_address.as_deref().is_some_and(|m| !m.is_empty()) {
        return refused("a chosen MAC address (--mac-address)");
    }
    if s.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return refused("legacy links (--link)");
    }
    if s.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return refused("endpoint driver options (--driver-opt)");
    }
    if s.ipam_config
        .as_ref()
        .and_then(|c| c.link_local_ips.as_ref())
        .is_some_and(|l| !l.is_empty())
    {
        return refused("link-local addresses (--link-local-ip)");
    }
    Ok(())
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

/// The `NetworkSettings.Networks` map of a container's inspect.
pub fn endpoint_settings(
    r: &ContainerRecord,
    nets: &Networks,
) -> HashMap<String, EndpointSettings> {
    let mut out = HashMap::new();
    let mode = r.host_config.network_mode.as_deref().unwrap_or("");
    let primary = match mode {
        "" | "default" => DEFAULT_NETWORK,
        m => m,
    };
    let mut names: Vec<String> = vec![];
    if !primary.starts_with("container:") && !r.primary_disconnected {
        names.push(primary.to_string());
    }
    names.extend(
        r.endpoints_config
            .keys()
            .filter(|k| k.as_str() != primary)
            .cloned(),
    );
    for name in names {
        let Ok(net) = nets.find(&name) else { continue };
        let asked = r.endpoints_config.get(&name).cloned().unwrap_or_default();
        let live = r.net.endpoints.get(&net.name);
        let running = r.state.status == crate::state::Status::Running;
        let live = live.filter(|_| running);
        let text = |v: Option<String>| Some(v.unwrap_or_default());
        let (v4, v6) = (live.and_then(|e| e.ipv4), live.and_then(|e| e.ipv6));
        out.insert(
            net.name.clone(),
            EndpointSettings {
                ipam_config: asked.ipam_config.clone(),
                links: asked.links.clone(),
                mac_address: text(live.map(|e| e.mac.clone())),
                aliases: asked.aliases.clone(),
                driver_opts: asked.driver_opts.clone(),
                gw_priority: Some(0),
                network_id: Some(net.id.clone()),
                endpoint_id: text(live.map(|e| e.endpoint_id.clone())),
                gateway: text(live.and_then(|e| e.gateway).map(|g| g.to_string())),
                ip_address: text(v4.map(|a| a.addr().to_string())),
                ip_prefix_len: Some(v4.map_or(0, |a| i64::from(a.prefix_len()))),
                ipv6_gateway: text(live.and_then(|e| e.gateway6).map(|g| g.to_string())),
                global_ipv6_address: text(v6.map(|a| a.addr().to_string())),
                global_ipv6_prefix_len: Some(v6.map_or(0, |a| i64::from(a.prefix_len()))),
                dns_names: live.map(|e| e.dns_names.clone()).filter(|d| !d.is_empty()),
            },
        );
    }
    out
}

impl Networks {
    /// The default bridge's gateway, which `--add-host NAME:host-gateway` names.
    pub fn host_gateway(&self) -> Option<IpAddr> {
        let st = lock(&self.state);
        st.nets
            .values()
            .find(|n| n.record.name == DEFAULT_NETWORK)
            .and_then(|n| n.record.gateway4().map(IpAddr::V4))
    }

    /// Writes the `hostname`, `hosts` and `resolv.conf` a container's /etc gets, as dockerd
    /// writes them, into `dir`.
    pub fn write_name_files(
        &self,
        r: &ContainerRecord,
        hostname: &str,
        dir: &Path,
        embedded_dns: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let host = &r.host_config;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| internal(format!("container {}: write {}: {e}", r.id, path.display())))
        };
        write("hostname", network::files::hostname_file(hostname))?;
        if host.network_mode.as_deref() == Some("host")
            && host.dns.as_ref().is_none_or(|d| d.is_empty())
            && host.extra_hosts.as_ref().is_none_or(|d| d.is_empty())
        {
            // The host's own namespace: its files as they are (a loopback resolver works here).
            for name in ["hosts", "resolv.conf"] {
                let text =
                    std::fs::read_to_string(Path::new("/etc").join(name)).unwrap_or_default();
                write(name, text)?;
            }
            return Ok(());
        }
        let mut extra = Vec::new();
        for h in host.extra_hosts.iter().flatten() {
            let (name, addr) = network::files::parse_extra_host(h)
                .map_err(|e| ApiError::InvalidParameter(format!("invalid --add-host {h}: {e}")))?;
            let ip = match addr {
                network::files::ExtraHostAddr::Ip(ip) => ip,
                network::files::ExtraHostAddr::HostGateway => {
                    self.host_gateway().ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "invalid --add-host {h}: host-gateway needs the default bridge"
                        ))
                    })?
                }
            };
            extra.push((name, ip));
        }
        let own: Vec<IpAddr> = r
            .net
            .endpoints
            .values()
            .flat_map(|e| e.ipv4.iter().chain(e.ipv6.iter()).map(|a| a.addr()))
            .collect();
        let ipv6 = r.net.endpoints.values().any(|e| e.ipv6.is_some())
            || r.host_config.network_mode.as_deref() == Some("host");
        let domain = r.config.domainname.as_deref().filter(|d| !d.is_empty());
        write(
            "hosts",
            network::files::hosts(hostname, domain, &own, &extra, ipv6),
        )?;
        let host_text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let dns: Vec<IpAddr> = match host.dns.as_ref().filter(|d| !d.is_empty()) {
            Some(list) => list
                .iter()
                .map(|s| {
                    s.parse().map_err(|_| {
                        ApiError::InvalidParameter(format!("{s} is not an IP address (--dns)"))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => self.config.dns.clone(),
        };
        // On a user-defined network the embedded server is the only nameserver; a container's
        // own --dns servers are where that server forwards its other names.
        if embedded_dns.is_some() && host.dns.as_ref().is_some_and(|d| !d.is_empty()) {
            let ups: Vec<SocketAddr> = dns.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
            let st = lock(&self.state);
            for ep in r.net.endpoints.values() {
                if let Some(Net {
                    dns: Some((_, records)),
                    ..
                }) = st.nets.get(&ep.network_id)
                {
                    records.set_upstreams(&r.id, &ups);
                }
            }
        }
        let file_dns: &[IpAddr] = if embedded_dns.is_some() { &[] } else { &dns };
        write(
            "resolv.conf",
            network::files::resolv_conf(
                "/etc/resolv.conf",
                &host_text,
                embedded_dns,
                file_dns,
                host.dns_search.as_deref().unwrap_or_default(),
                host.dns_options.as_deref().unwrap_or_default(),
                ipv6,
            ),
        )
    }
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
