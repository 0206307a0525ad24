//! Container networking on the kernel's own interfaces.
//!
//! Owns: the default bridge and user-defined bridges, veth pairs (the container's end made
//! directly inside its network namespace), addresses and routes (rtnetlink), IP address
//! management with state that survives a daemon restart, berth's nftables table (NAT for
//! egress, DNAT for published ports, isolation between networks), host port reservations, the
//! embedded DNS server of user-defined networks, and the text of a container's `hosts` and
//! `resolv.conf`.
//!
//! Must never: exec a helper binary (`ip`, `iptables`, `nft`), know about containers beyond
//! the names and addresses it is handed, or use an async runtime: this is plain synchronous
//! code that berthd (from a blocking task) and a container's monitor (single-threaded, before
//! and after it forks) both call.
//!
//! May use: the netlink crates, nftables over netlink, `ipnet`, `berth-sys`.
//!
//! ## Modules
//!
//! - [`netlink`]: one blocking `NETLINK_ROUTE` socket per network namespace, batched
//!   requests with acknowledgements; [`netlink::Netlink::open_in`] reaches another namespace
//!   from a short-lived thread, never by moving the caller.
//! - [`link`]: bridges ([`link::ensure_bridge`]) and veth pairs whose container end is made
//!   directly inside the container's namespace ([`link::attach`]); teardown is the namespace
//!   going away, not a delete.
//! - [`ipam`]: a network's handed-out addresses in a JSON file written atomically.
//! - [`pools`]: dockerd's default address pools and the choice of a free subnet.
//! - [`sysctl`]: `/proc/sys` values written only when they differ.
//! - [`dns`]: the embedded DNS server of a user-defined network (one per network, on its
//!   gateway addresses in the host's namespace) and the name table it answers from; the wire
//!   format is `hickory-proto`'s, the waits are `rustix` polls on its sockets and a stop eventfd.
//! - [`files`]: the text of a container's `/etc/hosts`, `/etc/resolv.conf` and
//!   `/etc/hostname`, as dockerd writes them; `--add-host` parsing.
//! - [`nft`]: berth's own nftables table (family `inet`), programmed in netlink
//!   transactions: egress masquerade, published ports (DNAT), isolation between networks.
//! - [`ports`]: host port reservations, so a taken port fails before a container starts and
//!   nobody else binds a published port while it is published.
#![forbid(unsafe_code)]

pub mod dns;
pub mod files;
pub mod ipam;
pub mod link;
pub mod netlink;
pub mod nft;
pub mod pools;
pub mod ports;
pub mod sysctl;
