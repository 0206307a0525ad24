//! Gives a container's own network namespace the interfaces berthd planned for it: for each, a
//! veth pair whose container end is made straight inside the namespace (no move between
//! namespaces, which stalls under the rtnl lock), with its addresses and default route. The
//! monitor does this rather than berthd because it already holds the container's init and is
//! single-threaded, so the work costs no extra round trip on the start path. The interfaces go
//! when the namespace goes: the kernel frees a veth whose namespace dies, off any waiting path.

use std::fs::File;
use std::os::fd::AsFd;

use monitor_protocol::Interface;
use network::link::{self, Endpoint};
use network::netlink::Netlink;
use nix::unistd::Pid;

use crate::MonitorError;

fn endpoint(i: &Interface) -> Result<Endpoint, MonitorError> {
    let addresses = i
        .addresses
        .iter()
        .map(|(ip, prefix)| {
            ipnet::IpNet::new(*ip, *prefix).map_err(|e| {
                MonitorError::Network(format!(
                    "interface {}: address {ip}/{prefix}: {e}",
                    i.ifname
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Endpoint {
        bridge: i.bridge.clone(),
        host_ifname: i.host_ifname.clone(),
        ifname: i.ifname.clone(),
        mac: i.mac,
        addresses,
        gateway: i.gateway,
        gateway6: i.gateway6,
        mtu: i.mtu,
    })
}

fn netns(init: Pid) -> Result<File, MonitorError> {
    let path = format!("/proc/{init}/ns/net");
    File::open(&path).map_err(|e| MonitorError::io("open", std::path::Path::new(&path), e))
}

/// Makes every planned interface in the network namespace of `init`.
pub fn attach_all(init: Pid, interfaces: &[Interface]) -> Result<(), MonitorError> {
    let ns = netns(init)?;
    let mut host = Netlink::open()
        .map_err(|e| MonitorError::Network(format!("open a netlink socket: {e}")))?;
    for i in interfaces {
        link::attach(&mut host, ns.as_fd(), &endpoint(i)?)
            .map_err(|e| MonitorError::Network(e.to_string()))?;
    }
    Ok(())
}

/// Removes one interface from a running container by its host end (`docker network
/// disconnect`): deleting either end of a veth deletes both.
pub fn detach(host_ifname: &str) -> Result<(), MonitorError> {
    let mut host = Netlink::open()
        .map_err(|e| MonitorError::Network(format!("open a netlink socket: {e}")))?;
    link::detach(&mut host, host_ifname).map_err(|e| MonitorError::Network(e.to_string()))
}
