//! A container's endpoints: the networks it joins, its addresses and interfaces, its ports
//! reserved and DNATed, its DNS names; given back at exit (or when disconnected), and
//! re-taken for running containers when berthd opens.

use std::net::IpAddr;

use api_server::ApiError;
use api_types::models::generated::EndpointSettings;
use ipnet::IpNet;
use monitor_protocol::Interface;
use network::link::{self};
use network::nft::{PortMapping, Proto};

use super::ports::{port_requests, publishes, reserve_one};
use super::{
    find_in, internal, lock, Attachment, EndpointState, Net, NetworkRecord, NetworkState, Networks,
    PublishedPort, DEFAULT_NETWORK,
};
use crate::state::ContainerRecord;

pub(super) fn random_hex(n: usize) -> Result<String, ApiError> {
    Ok(crate::new_id()?[..n].to_string())
}

pub(super) fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// dockerd's refusal of `--ip`/`--ip6` on a predefined network (bridge, host, none).
pub fn fixed_address_on_predefined() -> ApiError {
    ApiError::InvalidParameter(
        "user specified IP address is supported on user defined networks only".into(),
    )
}

/// The address a container asked for in one family's field of its endpoint settings (`--ip`,
/// `--ip6`); an empty field asks for none. `family` (`IPv4`, `IPv6`) names the field, and an
/// address of the other family in it is refused as malformed, as dockerd does (400, before
/// any allocation).
pub fn requested(field: Option<&str>, family: &str) -> Result<Option<IpAddr>, ApiError> {
    let want_v6 = family == "IPv6";
    field
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>()
                .ok()
                .filter(|ip| ip.is_ipv6() == want_v6)
                .ok_or_else(|| ApiError::InvalidParameter(format!("invalid {family} address: {s}")))
        })
        .transpose()
}

impl Networks {
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

    pub(super) fn attach_inner(
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
            let ipam = settings.ipam_config.as_ref();
            let want4 = requested(ipam.and_then(|c| c.ipv4_address.as_deref()), "IPv4")?;
            let want6 = requested(ipam.and_then(|c| c.ipv6_address.as_deref()), "IPv6")?;
            if (want4.is_some() || want6.is_some()) && n.record.predefined {
                return Err(fixed_address_on_predefined());
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
                let addr = n.ipams[k]
                    .allocate(&r.id, want)
                    .map_err(|e| ApiError::Forbidden(format!("network {}: {e}", n.record.name)))?;
                let net = IpNet::new(addr, s.subnet.prefix_len()).map_err(internal)?;
                let (slot, gateway) = if addr.is_ipv4() {
                    (&mut ep.ipv4, &mut ep.gateway)
                } else {
                    (&mut ep.ipv6, &mut ep.gateway6)
                };
                *slot = Some(net);
                if !n.record.internal {
                    *gateway = Some(s.gateway);
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
                    let addrs: Vec<IpAddr> = ep.addresses().map(|a| a.addr()).collect();
                    records.set(&r.id, &ep.dns_names, &addrs);
                    if att.embedded_dns.is_none() {
                        att.embedded_dns = n.record.gateway4().map(IpAddr::V4);
                    }
                }
            }
            // The default route goes through the first network only, as dockerd's (an
            // interface added later must not fight over it).
            let routed = !n.record.internal && i == 0;
            att.interfaces.push(Interface {
                bridge: n.record.bridge.clone(),
                host_ifname: ep.host_ifname.clone(),
                ifname: ep.ifname.clone(),
                mac: Some(mac),
                addresses: ep.addresses().map(|a| (a.addr(), a.prefix_len())).collect(),
                gateway: n.record.gateway4().filter(|_| routed),
                gateway6: n.record.gateway6().filter(|_| routed),
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

    pub(super) fn mtu(&self, r: &NetworkRecord) -> Option<u32> {
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
                    let addrs: Vec<IpAddr> = ep.addresses().map(|a| a.addr()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_missing_field_asks_for_no_address() {
        assert_eq!(requested(None, "IPv4"), Ok(None));
        assert_eq!(requested(Some(""), "IPv6"), Ok(None));
    }

    #[test]
    fn a_requested_address_is_parsed() {
        let v4: IpAddr = "172.30.0.5".parse().expect("an IPv4 literal");
        let v6: IpAddr = "fd00::5".parse().expect("an IPv6 literal");
        assert_eq!(requested(Some("172.30.0.5"), "IPv4"), Ok(Some(v4)));
        assert_eq!(requested(Some("fd00::5"), "IPv6"), Ok(Some(v6)));
    }

    #[test]
    fn a_malformed_address_is_refused_naming_its_family() {
        assert_eq!(
            requested(Some("300.1.1.1"), "IPv4"),
            Err(ApiError::InvalidParameter(
                "invalid IPv4 address: 300.1.1.1".into()
            ))
        );
        assert_eq!(
            requested(Some("fd00:::5"), "IPv6"),
            Err(ApiError::InvalidParameter(
                "invalid IPv6 address: fd00:::5".into()
            ))
        );
    }

    #[test]
    fn an_address_of_the_other_family_is_refused() {
        assert_eq!(
            requested(Some("fd00::5"), "IPv4"),
            Err(ApiError::InvalidParameter(
                "invalid IPv4 address: fd00::5".into()
            ))
        );
        assert_eq!(
            requested(Some("172.30.0.5"), "IPv6"),
            Err(ApiError::InvalidParameter(
                "invalid IPv6 address: 172.30.0.5".into()
            ))
        );
    }

    #[test]
    fn an_endpoints_addresses_list_ipv4_first() {
        let v4: IpNet = "172.30.0.5/16".parse().expect("an IPv4 network");
        let v6: IpNet = "fd00::5/64".parse().expect("an IPv6 network");
        let ep = EndpointState {
            ipv4: Some(v4),
            ipv6: Some(v6),
            ..Default::default()
        };
        assert_eq!(ep.addresses().collect::<Vec<_>>(), vec![v4, v6]);
        let only6 = EndpointState {
            ipv6: Some(v6),
            ..Default::default()
        };
        assert_eq!(only6.addresses().collect::<Vec<_>>(), vec![v6]);
        assert_eq!(EndpointState::default().addresses().count(), 0);
    }
}
