//! The bridges and what serves them: the networks loaded (the predefined ones made on a first
//! start) and their bridges made when berthd opens, their IPAM files, their embedded DNS
//! servers, and berth's nftables table kept in sync with them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use api_server::ApiError;
use ipnet::IpNet;
use network::dns::{DnsServer, Records};
use network::ipam::Ipam;
use network::link::{self, BridgeSpec};
use network::netlink::Netlink;
use network::nft::{Firewall, NetworkRules, PortMapping};

use super::user::first_host;
use super::{
    internal, lock, Net, NetworkConfig, NetworkRecord, Networks, State, Subnet, DEFAULT_NETWORK,
};
use crate::{io_err, DaemonError};

/// The nftables table of a berthd whose default bridge is `bridge`: `berth` for the default
/// `berth0`, else one of its own, so that daemons side by side never touch each other's rules.
pub fn table_name(bridge: &str) -> String {
    if bridge == "berth0" {
        "berth".to_string()
    } else {
        format!("berth_{}", bridge.replace(['-', '.'], "_"))
    }
}

/// Where the embedded DNS servers send names they do not know: berthd's `--dns`, else the
/// host's resolvers (reachable from the host's namespace, where the servers run, even when
/// they are loopback addresses such as systemd-resolved's).
pub(super) fn upstreams(config: &NetworkConfig) -> Vec<SocketAddr> {
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

/// A predefined network as first made, with a new ID: no subnets, labels or options yet (the
/// default bridge gets its bridge, subnet and options from the daemon's flags afterwards).
fn predefined_record(name: &str, driver: &str, created: &str) -> Result<NetworkRecord, ApiError> {
    Ok(NetworkRecord {
        id: crate::new_id()?,
        name: name.into(),
        driver: driver.into(),
        created: created.into(),
        bridge: String::new(),
        subnets: Vec::new(),
        internal: false,
        ipv6: false,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        predefined: true,
        attachable: false,
    })
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

    pub(super) fn save(&self, r: &NetworkRecord) -> Result<(), ApiError> {
        let path = self.dir.join("networks").join(format!("{}.json", r.id));
        let bytes = serde_json::to_vec_pretty(r).map_err(internal)?;
        crate::write_atomic(&path, &bytes)
            .map_err(|e| internal(format!("network {}: write {}: {e}", r.name, path.display())))
    }

    pub(super) fn ipam_path(&self, id: &str, n: usize) -> PathBuf {
        self.dir.join("ipam").join(format!("{id}-{n}.json"))
    }

    pub(super) fn open_ipams(&self, r: &NetworkRecord) -> Result<Vec<Ipam>, ApiError> {
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
    pub(super) fn subnets_in_use(
        &self,
        nets: &BTreeMap<String, Net>,
    ) -> Result<Vec<IpNet>, ApiError> {
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

    pub(super) fn pools(&self) -> Vec<(IpNet, u8)> {
        if self.config.pools.is_empty() {
            network::pools::default_pools()
        } else {
            self.config.pools.clone()
        }
    }

    pub(super) fn open_all(
        &self,
        mut records: BTreeMap<String, NetworkRecord>,
    ) -> Result<(), ApiError> {
        let mut st = lock(&self.state);
        let created = crate::now();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !records.values().any(|r| r.name == name) {
                let r = predefined_record(name, driver, &created)?;
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
            let mut r = match default_bridge.clone() {
                Some(r) => r,
                None => predefined_record(DEFAULT_NETWORK, "bridge", &created)?,
            };
            // A record read from disk without an ID gets one, as a new one does.
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

    pub(super) fn make_bridge(&self, nl: &mut Netlink, r: &NetworkRecord) -> Result<(), ApiError> {
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

    pub(super) fn start_dns(&self, r: &NetworkRecord) -> Option<(DnsServer, Arc<Records>)> {
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
    pub(super) fn resync(&self, st: &mut State) -> Result<(), ApiError> {
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
}
