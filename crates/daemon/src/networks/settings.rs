//! Endpoint settings as the API takes them (refusing what berthd does not apply) and shows
//! them in a container's inspect.

use std::collections::HashMap;

use api_server::ApiError;
use api_types::models::generated::EndpointSettings;

use super::{Networks, DEFAULT_NETWORK};
use crate::state::ContainerRecord;

/// Refuses the endpoint settings berthd does not apply, rather than ignoring them: a chosen
/// MAC address (`--mac-address`), legacy links, a gateway priority, driver options and
/// link-local addresses.
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
    if s.gw_priority.is_some_and(|p| p != 0) {
        return refused("a gateway priority (--network gw-priority=)");
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
