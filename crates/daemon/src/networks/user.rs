//! User-defined networks: list, find, `docker network create` (subnets chosen from the pools
//! or checked, bridge, IPAM, DNS) and remove.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api_server::ApiError;
use api_types::models::generated::NetworkCreateRequest;
use ipnet::IpNet;
use network::link::{self};
use network::netlink::Netlink;

use super::{find_in, internal, lock, Net, NetworkRecord, Networks, Subnet};

impl Networks {
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
}

pub(super) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub(super) fn first_host(subnet: IpNet) -> Result<IpAddr, ApiError> {
    subnet
        .hosts()
        .next()
        .ok_or_else(|| ApiError::InvalidParameter(format!("subnet {subnet} has no host address")))
}
