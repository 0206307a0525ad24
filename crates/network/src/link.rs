//! Bridges and the veth pairs that join containers to them.
//!
//! The container's end of a veth is created directly inside the container's network
//! namespace by the same `RTM_NEWLINK` that makes the pair: moving a link between namespaces
//! afterwards stalls in an RCU barrier under the rtnl lock. Nothing here deletes a veth on the
//! normal path: a veth goes when the last reference to its namespace does (the kernel frees it
//! asynchronously), while an explicit delete costs about 16 ms under the rtnl lock. Only
//! [`detach`] (a network disconnect of a running container) and the error path of [`attach`]
//! delete one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, BridgeStpState, In6AddrGenMode, InfoBridge, InfoData, InfoKind,
    InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::netlink::{
    add_address_request, default_route_request, set_up_by_name_request, set_up_request, Netlink,
    NetlinkError, Request, EEXIST,
};
use crate::sysctl::{self, SysctlError};

/// Longest interface name the kernel takes (`IFNAMSIZ` less the terminating NUL).
pub const IFNAME_MAX: usize = 15;

/// What went wrong making or removing a bridge or a veth.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A name the kernel would refuse, caught before asking it.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A link of the bridge's name exists and is something else.
    #[error("link {name} exists but is a {kind}, not a {wanted}")]
    WrongKind {
        /// The link's name.
        name: String,
        /// What it is.
        kind: String,
        /// What it had to be.
        wanted: &'static str,
    },
    /// The bridge an endpoint is to join does not exist.
    #[error("attach {host_ifname}: bridge {bridge} does not exist")]
    NoBridge {
        /// The missing bridge.
        bridge: String,
        /// The veth that was to join it.
        host_ifname: String,
    },
    /// An rtnetlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A `/proc/sys` value could not be set.
    #[error("{link}: {source}")]
    Sysctl {
        /// The bridge or container link being set up.
        link: String,
        /// The failed read or write.
        #[source]
        source: SysctlError,
    },
    /// Setting up an endpoint failed and so did removing its half-made veth.
    #[error("{error}; removing the half-made veth {host_ifname} failed too: {cleanup}")]
    Cleanup {
        /// The first failure.
        error: Box<LinkError>,
        /// The veth that may be left behind.
        host_ifname: String,
        /// Why removing it failed.
        cleanup: NetlinkError,
    },
}

/// A bridge as berth wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// The bridge's interface name, e.g. `berth0`.
    pub name: String,
    /// The gateway addresses with the network's prefix length: v4, and v6 when enabled.
    pub addresses: Vec<IpNet>,
    /// The bridge's MTU; the kernel's default (1500) when `None`.
    pub mtu: Option<u32>,
}

/// One container's connection to a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The bridge the host end joins.
    pub bridge: String,
    /// The host end's name, e.g. `veth` and 7 hex digits (at most 15 bytes).
    pub host_ifname: String,
    /// The container end's name inside its namespace, e.g. `eth0`.
    pub ifname: String,
    /// The container end's MAC address; a random one when `None`.
    pub mac: Option<[u8; 6]>,
    /// The container's addresses with the network's prefix length.
    pub addresses: Vec<IpNet>,
    /// The v4 default gateway; `None` for an internal network.
    pub gateway: Option<Ipv4Addr>,
    /// The v6 default gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// The MTU of both ends.
    pub mtu: Option<u32>,
}

/// Makes sure the bridge exists as `spec` says and is up, and returns its index. Idempotent:
/// creates it when missing (no STP, forward delay 0, a fixed random MAC so that it does not
/// take a port's address and change it as containers come and go), adds missing addresses,
/// and sets what dockerd sets: `net.ipv4.ip_forward=1`, `route_localnet=1` on the bridge (so
/// a DNAT of 127.0.0.1 to a container works), `accept_ra=0` on the bridge, and for a v6
/// network `disable_ipv6=0` on the bridge and `forwarding=1` for `default` and `all`.
///
/// Turning forwarding on makes the host a router: the caller's firewall should drop forwarded
/// traffic that is not berth's, as dockerd does when it turns forwarding on.
pub fn ensure_bridge(nl: &mut Netlink, spec: &BridgeSpec) -> Result<u32, LinkError> {
    check_ifname(&spec.name)?;
    let name = spec.name.as_str();
    let has_v6 = spec.addresses.iter().any(|a| matches!(a, IpNet::V6(_)));
    let sysctl_err = |source| LinkError::Sysctl {
        link: format!("bridge {name}"),
        source,
    };

    let index = match nl.get_link(name)? {
        Some(link) => {
            check_kind(&link, name, InfoKind::Bridge, "bridge")?;
            link.header.index
        }
        None => {
            create_bridge(nl, spec)?;
            // dockerd sets accept_ra=0 on a bridge it creates: a router has no business
            // taking advertisements from its own containers.
            sysctl::ensure_if_present(&sysctl::ipv6_conf(name, "accept_ra"), "0")
                .map_err(sysctl_err)?;
            // Looked up again, kind and all: a racing creator may have made something else.
            let link = nl.get_link(name)?.ok_or_else(|| NetlinkError::Kernel {
                op: format!("look up bridge {name} just created"),
                source: std::io::Error::from_raw_os_error(19),
                detail: None,
            })?;
            check_kind(&link, name, InfoKind::Bridge, "bridge")?;
            link.header.index
        }
    };

    sysctl::ensure(&sysctl::ipv4_conf(name, "route_localnet"), "1").map_err(sysctl_err)?;
    if has_v6 {
        // A v6 address cannot be added while IPv6 is disabled on the link.
        sysctl::ensure(&sysctl::ipv6_conf(name, "disable_ipv6"), "0").map_err(sysctl_err)?;
    }

    let present = nl.addresses(index)?;
    let mut requests: Vec<Request> = spec
        .addresses
        .iter()
        .filter(|a| !present.contains(a))
        .map(|a| add_address_request(index, *a, &format!("bridge {name}")))
        .collect();
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    if let Some(mtu) = spec.mtu {
        up.attributes.push(LinkAttribute::Mtu(mtu));
    }
    requests.push(Request::new(
        RouteNetlinkMessage::SetLink(up),
        0,
        format!("set bridge {name} up"),
    ));
    nl.execute(requests)?;

    sysctl::ensure(&sysctl::ipv4_forward(), "1").map_err(sysctl_err)?;
    if has_v6 {
        // dockerd checks `default` as well as `all`: setting `all` sets `default` only at
        // that moment, and someone may have turned `default` off since.
        sysctl::ensure(&sysctl::ipv6_conf("default", "forwarding"), "1").map_err(sysctl_err)?;
        sysctl::ensure(&sysctl::ipv6_conf("all", "forwarding"), "1").map_err(sysctl_err)?;
    }
    Ok(index)
}

fn create_bridge(nl: &mut Netlink, spec: &BridgeSpec) -> Result<(), LinkError> {
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::IfName(spec.name.clone()));
    msg.attributes
        .push(LinkAttribute::Address(random_mac().to_vec()));
    if let Some(mtu) = spec.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![
            InfoBridge::StpState(BridgeStpState::Disabled),
            InfoBridge::ForwardDelay(0),
        ])),
    ]));
    // Another daemon thread may create the same bridge at the same moment: EEXIST is fine,
    // the caller checks the kind of whatever is there.
    nl.execute(vec![Request::new(
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("create bridge {}", spec.name),
    )
    .ok_if(EEXIST)])?;
    Ok(())
}

/// Deletes the bridge `name`; a bridge that does not exist counts as deleted. Refuses a link
/// of that name that is not a bridge.
pub fn remove_bridge(nl: &mut Netlink, name: &str) -> Result<(), LinkError> {
    check_ifname(name)?;
    match nl.get_link(name)? {
        None => Ok(()),
        Some(link) => {
            check_kind(&link, name, InfoKind::Bridge, "bridge")?;
            nl.delete_link(name)?;
            Ok(())
        }
    }
}

/// Connects a container: one `RTM_NEWLINK` makes the veth pair, the host end named
/// `ep.host_ifname` on `ep.bridge` and up, the other end named `ep.ifname` created inside
/// `netns` with the MAC. Then, from a short-lived thread in `netns`: router advertisements
/// ignored on the container's end; and over a socket opened there, in one batch: `lo` up,
/// no IPv6 link-local address when the endpoint has no v6 address (so the container shows
/// no inet6 address, as with dockerd), the container's end up, the addresses, the default
/// routes. On any failure after the pair exists the host end is deleted (which takes the peer
/// with it), so nothing is left. The helper thread is joined before this returns.
pub fn attach(host: &mut Netlink, netns: BorrowedFd<'_>, ep: &Endpoint) -> Result<(), LinkError> {
    check_ifname(&ep.host_ifname)?;
    check_ifname(&ep.ifname)?;
    check_ifname(&ep.bridge)?;
    let has_v6 = ep.addresses.iter().any(|a| matches!(a, IpNet::V6(_)));

    // While the host side looks up the bridge and makes the pair, the helper thread enters
    // the namespace and opens its socket; it then waits to hear that the container's end
    // exists before it sets that link's sysctls. The two overlap instead of queueing.
    let (created_tx, created_rx) = std::sync::mpsc::channel::<bool>();
    let (inside, created) = Netlink::open_in_while(
        netns,
        move || match created_rx.recv() {
            Ok(true) => Some(container_ipv6_sysctls(&ep.ifname, has_v6)),
            _ => None,
        },
        || {
            let created = create_veth(host, netns, ep);
            // The helper may be gone already (it failed to enter the namespace).
            let _ = created_tx.send(created.is_ok());
            created
        },
    );
    // Nothing to undo when the creation failed: the kernel made none of it (and an EEXIST
    // means the name belongs to someone else, whose link must stay).
    created?;

    configure_inside(inside, netns, ep, has_v6).map_err(|error| {
        match host.delete_link(&ep.host_ifname) {
            Ok(()) => error,
            Err(cleanup) => LinkError::Cleanup {
                error: Box::new(error),
                host_ifname: ep.host_ifname.clone(),
                cleanup,
            },
        }
    })
}

/// One `RTM_NEWLINK` on the host's socket: the pair, the host end on the bridge and up, the
/// container's end made inside `netns`.
fn create_veth(host: &mut Netlink, netns: BorrowedFd<'_>, ep: &Endpoint) -> Result<(), LinkError> {
    let bridge = host
        .link_index(&ep.bridge)?
        .ok_or_else(|| LinkError::NoBridge {
            bridge: ep.bridge.clone(),
            host_ifname: ep.host_ifname.clone(),
        })?;

    // The peer cannot be brought up by this message: the kernel configures it before the
    // two ends know each other, and veth_open refuses with ENOTCONN. It goes up from inside.
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(ep.ifname.clone()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    if let Some(mac) = ep.mac {
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(mtu) = ep.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }
    let mut veth = LinkMessage::default();
    veth.header.flags = LinkFlags::Up;
    veth.header.change_mask = LinkFlags::Up;
    veth.attributes
        .push(LinkAttribute::IfName(ep.host_ifname.clone()));
    veth.attributes.push(LinkAttribute::Controller(bridge));
    if let Some(mtu) = ep.mtu {
        veth.attributes.push(LinkAttribute::Mtu(mtu));
    }
    veth.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    host.execute(vec![Request::new(
        RouteNetlinkMessage::NewLink(veth),
        NLM_F_CREATE | NLM_F_EXCL,
        format!(
            "create veth {} on bridge {} into netns fd {} as {}",
            ep.host_ifname,
            ep.bridge,
            netns.as_raw_fd(),
            ep.ifname
        ),
    )])?;
    Ok(())
}

/// Inside the container's namespace, given what the helper thread did there: `lo` and the
/// container's end up, its addresses and default routes, in one batch.
fn configure_inside(
    opened: Result<(Netlink, Option<Result<(), SysctlError>>), NetlinkError>,
    netns: BorrowedFd<'_>,
    ep: &Endpoint,
    has_v6: bool,
) -> Result<(), LinkError> {
    let (mut inside, sysctls) = opened?;
    if let Some(Err(source)) = sysctls {
        return Err(LinkError::Sysctl {
            link: place(ep, netns),
            source,
        });
    }
    let index = inside
        .link_index(&ep.ifname)?
        .ok_or_else(|| NetlinkError::Kernel {
            op: format!(
                "find {} inside netns fd {} after creating it",
                ep.ifname,
                netns.as_raw_fd()
            ),
            source: std::io::Error::from_raw_os_error(19),
            detail: None,
        })?;
    let place = place(ep, netns);
    let mut requests = vec![set_up_by_name_request("lo")];
    if !has_v6 {
        // No IPv6 address of berth's: no link-local one either, so `ip addr` in the
        // container shows none (as with dockerd) and no duplicate address detection runs.
        // This must come before the link goes up, which is when the kernel makes it.
        requests.push(no_link_local_request(index, &place));
    }
    requests.push(set_up_request(index, &place));
    requests.extend(
        ep.addresses
            .iter()
            .map(|a| add_address_request(index, *a, &place)),
    );
    // Routes after the addresses: the kernel processes a batch in order, and a gateway is
    // reachable only once the link has an address on its subnet.
    if let Some(gw) = ep.gateway {
        requests.push(default_route_request(IpAddr::V4(gw), Some((index, &place))));
    }
    if let Some(gw) = ep.gateway6 {
        requests.push(default_route_request(IpAddr::V6(gw), Some((index, &place))));
    }
    inside.execute(requests)?;
    Ok(())
}

fn place(ep: &Endpoint, netns: BorrowedFd<'_>) -> String {
    format!("{} in netns fd {}", ep.ifname, netns.as_raw_fd())
}

/// Router advertisements ignored on the container's end: berth gives the addresses and
/// routes, and an advertisement on a bridge could only come from another container
/// (CVE-2020-13401). Runs on the helper thread inside the container's namespace, before the
/// link goes up. A kernel without IPv6 has no such file, which is fine. (dockerd writes
/// `disable_ipv6=1` for a v4-only endpoint instead; that write spins on the rtnl lock with
/// `restart_syscall` and cost milliseconds here under load, so berth asks for no link-local
/// address over netlink, which leaves the same addresses.)
fn container_ipv6_sysctls(ifname: &str, has_v6: bool) -> Result<(), SysctlError> {
    if has_v6 {
        sysctl::ensure_if_present(&sysctl::ipv6_conf(ifname, "disable_ipv6"), "0")?;
    }
    sysctl::ensure_if_present(&sysctl::ipv6_conf(ifname, "accept_ra"), "0")?;
    Ok(())
}

/// The request that stops the kernel from giving link `index` an IPv6 link-local address
/// (`addr_gen_mode none`).
fn no_link_local_request(index: u32, link: &str) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]));
    Request::new(
        RouteNetlinkMessage::SetLink(msg),
        0,
        format!("turn off IPv6 link-local addresses on {link}"),
    )
}

/// Disconnects a running container from a network by deleting the host end of its veth (the
/// peer goes with it). Slow (about 16 ms under the rtnl lock); not for container teardown,
/// where dropping the namespace frees the veth. A veth already gone counts as removed; a link
/// of that name that is not a veth is refused.
pub fn detach(host: &mut Netlink, host_ifname: &str) -> Result<(), LinkError> {
    check_ifname(host_ifname)?;
    match host.get_link(host_ifname)? {
        None => Ok(()),
        Some(link) => {
            check_kind(&link, host_ifname, InfoKind::Veth, "veth")?;
            host.delete_link(host_ifname)?;
            Ok(())
        }
    }
}

/// dockerd's MAC for a container address: `02:42` and the four bytes of the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Brings `lo` up inside the network namespace `netns`.
pub fn set_loopback_up(netns: BorrowedFd<'_>) -> Result<(), LinkError> {
    let mut inside = Netlink::open_in(netns)?;
    inside.execute(vec![set_up_by_name_request("lo")])?;
    Ok(())
}

/// Refuses what the kernel's `dev_valid_name` refuses, so the error names the problem.
pub fn check_ifname(name: &str) -> Result<(), LinkError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > IFNAME_MAX {
        Some("it is longer than 15 bytes (IFNAMSIZ)")
    } else if name == "." || name == ".." {
        Some("it is a path component")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("it contains '/', ':', NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LinkError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_kind(
    link: &LinkMessage,
    name: &str,
    want: InfoKind,
    wanted: &'static str,
) -> Result<(), LinkError> {
    let kind = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    });
    match kind {
        Some(k) if k == want => Ok(()),
        Some(k) => Err(LinkError::WrongKind {
            name: name.to_string(),
            kind: k.to_string(),
            wanted,
        }),
        None => Err(LinkError::WrongKind {
            name: name.to_string(),
            kind: "device without a link kind".to_string(),
            wanted,
        }),
    }
}

/// A random, locally administered, unicast MAC. The hasher's keys are random per process
/// and per `RandomState`, which is all a bridge's MAC needs.
fn random_mac() -> [u8; 6] {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    let bits = hasher.finish().to_le_bytes();
    [
        (bits[0] & 0xfe) | 0x02,
        bits[1],
        bits[2],
        bits[3],
        bits[4],
        bits[5],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_for_follows_dockerd() {
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 172, 17, 0, 2]
        );
    }

    #[test]
    fn names_the_kernel_refuses_are_refused() {
        assert!(check_ifname("veth0123456").is_ok());
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(check_ifname("0123456789abcde").is_ok());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("..").is_err());
    }

    #[test]
    fn random_macs_are_local_unicast() {
        let m = random_mac();
        assert_eq!(m[0] & 0x01, 0);
        assert_eq!(m[0] & 0x02, 0x02);
    }
}
