//! The name files a container gets: `/etc/hosts`, `/etc/hostname` and `resolv.conf` (pointing
//! at the embedded DNS server on user-defined networks).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use api_server::ApiError;

use super::{internal, lock, Net, Networks, DEFAULT_NETWORK};
use crate::state::ContainerRecord;

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
            .flat_map(|e| e.addresses().map(|a| a.addr()))
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
