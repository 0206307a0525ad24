//! A blocking rtnetlink socket: one request (or one batch of requests) at a time, every
//! request acknowledged, over a single `NETLINK_ROUTE` socket bound in one network namespace.
//!
//! Synchronous on purpose: the monitor calls this before it forks (no async runtime may
//! exist there) and berthd calls it from a blocking task. A batch goes out in one `send` and
//! its acknowledgements are read back together, so a veth plus its addresses and routes cost
//! a few round trips to the kernel rather than one per attribute.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// `ENODEV`, `EEXIST`, `ESRCH`: the answers that some operations treat as success.
pub(crate) const ENODEV: i32 = 19;
pub(crate) const EEXIST: i32 = 17;

/// What can go wrong talking rtnetlink; each message names the operation and its object.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be made or bound.
    #[error("open a NETLINK_ROUTE socket: {0}")]
    Socket(#[source] io::Error),
    /// `setns(2)` into the target namespace failed on the helper thread.
    #[error("enter network namespace fd {fd} to open a netlink socket there: {source}")]
    EnterNetns {
        /// The namespace file descriptor that was given.
        fd: i32,
        /// Why the kernel refused.
        #[source]
        source: nix::Error,
    },
    /// The helper thread could not be started or died.
    #[error("open a netlink socket in network namespace fd {fd}: the helper thread {what}")]
    Thread {
        /// The namespace file descriptor that was given.
        fd: i32,
        /// What went wrong with the thread.
        what: String,
    },
    /// The kernel answered the request with an error.
    #[error("{op}: {source}{}", kernel_message(.detail))]
    Kernel {
        /// The operation and its object, e.g. `add address 10.0.0.2/24 to link 7`.
        op: String,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
        /// The kernel's extended acknowledgement text, when it gave one.
        detail: Option<String>,
    },
    /// Sending to or receiving from the socket failed.
    #[error("{op}: netlink socket I/O: {source}")]
    Io {
        /// The operation and its object.
        op: String,
        /// The system call's error.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("{op}: undecodable reply from the kernel: {detail}")]
    Decode {
        /// The operation and its object.
        op: String,
        /// What did not parse.
        detail: String,
    },
}

fn kernel_message(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" (kernel says: {d})"),
        None => String::new(),
    }
}

impl NetlinkError {
    /// The errno of a request the kernel refused, if that is what this error is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// One request of a batch: the message, its extra `NLM_F_*` flags, the words that name it in
/// an error, and an errno that counts as success (`EEXIST` for an idempotent add).
pub(crate) struct Request {
    pub msg: RouteNetlinkMessage,
    pub flags: u16,
    pub op: String,
    pub ok_errno: Option<i32>,
}

impl Request {
    pub fn new(msg: RouteNetlinkMessage, flags: u16, op: String) -> Request {
        Request {
            msg,
            flags,
            op,
            ok_errno: None,
        }
    }

    pub fn ok_if(mut self, errno: i32) -> Request {
        self.ok_errno = Some(errno);
        self
    }
}

/// A request of a batch waiting for its acknowledgement.
struct Pending {
    seq: u32,
    op: String,
    ok_errno: Option<i32>,
    error: Option<NetlinkError>,
    answered: bool,
}

/// Big enough for any datagram the kernel sends: it caps dump chunks at 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// How often a dump that the kernel marks as interrupted (the table changed under it) is
/// started again before giving up.
const DUMP_RETRIES: usize = 8;

/// One `NETLINK_ROUTE` socket, bound in the network namespace it was created in.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
    recv: Vec<u8>,
    send: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        // Extended acks carry the kernel's own words for a refusal; capped acks keep the
        // echo of a failed request short. Both are best effort: old kernels lack them.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        // Strict checking makes the kernel apply the filters of a dump request (the link
        // index of an address dump) instead of sending everything.
        let _ = socket.set_netlink_get_strict_chk(true);
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink {
            socket,
            seq: 0,
            recv: Vec::with_capacity(RECV_BUF),
            send: Vec::with_capacity(4096),
        })
    }

    /// Opens a socket inside the network namespace `netns` without moving the calling thread:
    /// a short-lived thread enters the namespace, makes the socket (which stays bound to that
    /// namespace for its whole life) and is joined before this returns.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink, NetlinkError> {
        Ok(Netlink::open_in_with(netns, || ())?.0)
    }

    /// [`Netlink::open_in`] that also runs `inside` on the helper thread while it is in the
    /// namespace: the place to touch `/proc/sys/net`, which shows the namespace of the
    /// thread that opens it.
    pub(crate) fn open_in_with<T: Send>(
        netns: BorrowedFd<'_>,
        inside: impl FnOnce() -> T + Send,
    ) -> Result<(Netlink, T), NetlinkError> {
        Netlink::open_in_while(netns, inside, || ()).0
    }

    /// [`Netlink::open_in_with`], running `meanwhile` on the calling thread while the helper
    /// thread works (which opens its socket before it runs `inside`). The helper is joined
    /// before this returns.
    pub(crate) fn open_in_while<T: Send, U>(
        netns: BorrowedFd<'_>,
        inside: impl FnOnce() -> T + Send,
        meanwhile: impl FnOnce() -> U,
    ) -> (Result<(Netlink, T), NetlinkError>, U) {
        let fd = netns.as_raw_fd();
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("netns-socket".into())
                .spawn_scoped(scope, move || {
                    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|source| NetlinkError::EnterNetns { fd, source })?;
                    let socket = Netlink::open()?;
                    Ok((socket, inside()))
                });
            // `meanwhile` runs even when the thread could not start: it may be what the
            // caller needs done whatever happens, and it must not wait on the thread.
            let other = meanwhile();
            let opened = match spawned {
                Err(e) => Err(NetlinkError::Thread {
                    fd,
                    what: format!("could not be started: {e}"),
                }),
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(NetlinkError::Thread {
                        fd,
                        what: "panicked".into(),
                    })
                }),
            };
            (opened, other)
        })
    }

    /// The index of the link called `name`, or `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = format!("look up link {name}");
        // Only the index is wanted: read it from the ifinfomsg (after the 16-byte netlink
        // header: family, pad, type, then the index) instead of decoding every attribute.
        let index = |m: &[u8], op: &str| match m.get(20..24) {
            Some(b) => Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(NetlinkError::Decode {
                op: op.to_string(),
                detail: format!("a {}-byte link message has no index", m.len()),
            }),
        };
        match self.get_with(RouteNetlinkMessage::GetLink(msg), &op, index) {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.errno() == Some(ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.execute(vec![set_up_request(index, &format!("link {index}"))])
    }

    /// Deletes the link called `name`; a link that does not exist counts as deleted.
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.execute(vec![Request::new(
            RouteNetlinkMessage::DelLink(msg),
            0,
            format!("delete link {name}"),
        )
        .ok_if(ENODEV)])
    }

    /// Adds `addr` (address with prefix length) to link `index`; an address already there
    /// counts as added.
    pub fn add_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.execute(vec![add_address_request(
            index,
            addr,
            &format!("link {index}"),
        )])
    }

    /// The addresses (with prefix length) on link `index`, v4 and v6.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IpNet>, NetlinkError> {
        let mut req = AddressMessage::default();
        req.header.index = index;
        let replies = self.dump(
            RouteNetlinkMessage::GetAddress(req),
            &format!("list the addresses of link {index}"),
        )?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(msg) = reply else {
                continue;
            };
            if msg.header.index != index {
                continue;
            }
            let mut local = None;
            let mut address = None;
            for attr in &msg.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    _ => {}
                }
            }
            // On a point-to-point link IFA_ADDRESS is the peer; IFA_LOCAL is ours.
            if let Some(ip) = local.or(address) {
                if let Ok(net) = IpNet::new(ip, msg.header.prefix_len) {
                    out.push(net);
                }
            }
        }
        Ok(out)
    }

    /// The destinations of the routes in the main table, v4 and v6 (a default route shows
    /// as `0.0.0.0/0` or `::/0`).
    pub fn routes(&mut self) -> Result<Vec<IpNet>, NetlinkError> {
        let mut req = RouteMessage::default();
        req.header.table = RouteHeader::RT_TABLE_MAIN;
        let replies = self.dump(
            RouteNetlinkMessage::GetRoute(req),
            "list the routes of the main table",
        )?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(msg) = reply else {
                continue;
            };
            let mut table = u32::from(msg.header.table);
            let mut dest = None;
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                        dest = Some(IpAddr::V4(*a))
                    }
                    RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                        dest = Some(IpAddr::V6(*a))
                    }
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            let dest = match (dest, msg.header.address_family) {
                (Some(d), _) => d,
                (None, AddressFamily::Inet) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                (None, AddressFamily::Inet6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                _ => continue,
            };
            if let Ok(net) = IpNet::new(dest, msg.header.destination_prefix_length) {
                out.push(net.trunc());
            }
        }
        Ok(out)
    }

    /// Adds a default route through `gateway` (v4 or v6) to the main table.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<(), NetlinkError> {
        self.execute(vec![default_route_request(gateway, None)])
    }

    /// The link called `name` as the kernel describes it, or `None` when there is none.
    pub(crate) fn get_link(&mut self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = format!("look up link {name}");
        match self.get(RouteNetlinkMessage::GetLink(msg), &op) {
            Ok(RouteNetlinkMessage::NewLink(link)) => Ok(Some(link)),
            Ok(other) => Err(NetlinkError::Decode {
                op,
                detail: format!("expected a link, got {other:?}"),
            }),
            Err(e) if e.errno() == Some(ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Appends `msg` to the send buffer with `flags` and a fresh sequence number.
    fn push(&mut self, msg: RouteNetlinkMessage, flags: u16) -> u32 {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let start = self.send.len();
        let len = packet.buffer_len();
        // Messages in one datagram must each start 4-byte aligned.
        self.send.resize(start + align4(len), 0);
        packet.serialize(&mut self.send[start..start + len]);
        seq
    }

    fn flush(&mut self, op: &str) -> Result<(), NetlinkError> {
        let result = loop {
            match self.socket.send(&self.send, 0) {
                Ok(_) => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    break Err(NetlinkError::Io {
                        op: op.to_string(),
                        source,
                    })
                }
            }
        };
        self.send.clear();
        result
    }

    /// Reads one datagram into the receive buffer.
    fn receive(&mut self, op: &str) -> Result<(), NetlinkError> {
        loop {
            self.recv.clear();
            self.recv.reserve(RECV_BUF);
            match self.socket.recv(&mut self.recv, libc_msg_trunc()) {
                Ok(n) if n > self.recv.len() => {
                    return Err(NetlinkError::Decode {
                        op: op.to_string(),
                        detail: format!("a {n}-byte datagram did not fit the receive buffer"),
                    })
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(NetlinkError::Io {
                        op: op.to_string(),
                        source,
                    })
                }
            }
        }
    }

    /// Sends every request in one datagram, each asking for an acknowledgement, and reads
    /// all the acknowledgements. The kernel carries on past a failed request, so all of them
    /// are read even then; the first failure (in request order) is returned.
    pub(crate) fn execute(&mut self, requests: Vec<Request>) -> Result<(), NetlinkError> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<Pending> = Vec::with_capacity(requests.len());
        self.send.clear();
        for req in requests {
            let seq = self.push(req.msg, req.flags | NLM_F_ACK);
            pending.push(Pending {
                seq,
                op: req.op,
                ok_errno: req.ok_errno,
                error: None,
                answered: false,
            });
        }
        let first_op = pending[0].op.clone();
        self.flush(&first_op)?;
        let mut left = pending.len();
        while left > 0 {
            self.receive(&first_op)?;
            let mut offset = 0;
            while offset < self.recv.len() {
                let (len, kind, flags, seq, payload) = split_message(&self.recv[offset..])
                    .map_err(|detail| NetlinkError::Decode {
                        op: first_op.clone(),
                        detail,
                    })?;
                offset += align4(len);
                if kind != NLMSG_ERROR {
                    continue;
                }
                let Some(slot) = pending.iter_mut().find(|p| p.seq == seq && !p.answered) else {
                    continue;
                };
                slot.answered = true;
                left -= 1;
                let (code, detail) = parse_ack(payload, flags);
                if code != 0 && Some(-code) != slot.ok_errno {
                    slot.error = Some(NetlinkError::Kernel {
                        op: std::mem::take(&mut slot.op),
                        source: io::Error::from_raw_os_error(-code),
                        detail,
                    });
                }
            }
        }
        match pending.into_iter().find_map(|p| p.error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends one request without `NLM_F_ACK` and returns the kernel's single answer.
    fn get(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &str,
    ) -> Result<RouteNetlinkMessage, NetlinkError> {
        self.get_with(msg, op, decode_inner)
    }

    /// Like `get`, handing the answer's raw bytes (header included) to `read`.
    fn get_with<T>(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &str,
        read: impl FnOnce(&[u8], &str) -> Result<T, NetlinkError>,
    ) -> Result<T, NetlinkError> {
        self.send.clear();
        let seq = self.push(msg, 0);
        self.flush(op)?;
        loop {
            self.receive(op)?;
            let mut offset = 0;
            while offset < self.recv.len() {
                let slice = &self.recv[offset..];
                let (len, kind, flags, got, payload) =
                    split_message(slice).map_err(|detail| NetlinkError::Decode {
                        op: op.to_string(),
                        detail,
                    })?;
                offset += align4(len);
                if got != seq {
                    continue;
                }
                if kind == NLMSG_ERROR {
                    let (code, detail) = parse_ack(payload, flags);
                    return Err(NetlinkError::Kernel {
                        op: op.to_string(),
                        source: io::Error::from_raw_os_error(-code),
                        detail,
                    });
                }
                return read(&slice[..len], op);
            }
        }
    }

    /// Runs a dump request and returns every message of the answer.
    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        for _ in 0..DUMP_RETRIES {
            self.send.clear();
            let seq = self.push(msg.clone(), NLM_F_DUMP);
            self.flush(op)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            'reading: loop {
                self.receive(op)?;
                let mut offset = 0;
                while offset < self.recv.len() {
                    let slice = &self.recv[offset..];
                    let (len, kind, flags, got, payload) =
                        split_message(slice).map_err(|detail| NetlinkError::Decode {
                            op: op.to_string(),
                            detail,
                        })?;
                    offset += align4(len);
                    if got != seq {
                        continue;
                    }
                    if flags & NLM_F_DUMP_INTR != 0 {
                        interrupted = true;
                    }
                    match kind {
                        NLMSG_DONE => break 'reading,
                        NLMSG_NOOP => {}
                        NLMSG_ERROR => {
                            let (code, detail) = parse_ack(payload, flags);
                            if code == 0 {
                                break 'reading;
                            }
                            return Err(NetlinkError::Kernel {
                                op: op.to_string(),
                                source: io::Error::from_raw_os_error(-code),
                                detail,
                            });
                        }
                        _ => out.push(decode_inner(&slice[..len], op)?),
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(NetlinkError::Decode {
            op: op.to_string(),
            detail: format!("the dump was interrupted {DUMP_RETRIES} times in a row"),
        })
    }
}

/// The request that adds `addr` to link `index`, treating an address already there as done.
/// IPv6 addresses skip duplicate address detection, as dockerd's do: the address is ours to
/// give out, and a tentative address would be unusable for a second or more.
pub(crate) fn add_address_request(index: u32, addr: IpNet, link: &str) -> Request {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix_len();
    match addr {
        IpNet::V4(net) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes
                .push(AddressAttribute::Local(IpAddr::V4(net.addr())));
            msg.attributes
                .push(AddressAttribute::Address(IpAddr::V4(net.addr())));
            if net.prefix_len() < 31 {
                msg.attributes
                    .push(AddressAttribute::Broadcast(net.broadcast()));
            }
        }
        IpNet::V6(net) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Address(IpAddr::V6(net.addr())));
        }
    }
    Request::new(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("add address {addr} to {link}"),
    )
    .ok_if(EEXIST)
}

/// The request that adds a default route through `gateway`, out of link `oif` (described as
/// `link` in errors) when given.
pub(crate) fn default_route_request(gateway: IpAddr, oif: Option<(u32, &str)>) -> Request {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match gateway {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    let op = match oif {
        Some((index, link)) => {
            msg.attributes.push(RouteAttribute::Oif(index));
            format!("add default route via {gateway} on {link}")
        }
        None => format!("add default route via {gateway}"),
    };
    Request::new(
        RouteNetlinkMessage::NewRoute(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        op,
    )
}

/// The request that brings link `index` (described as `link` in errors) up.
pub(crate) fn set_up_request(index: u32, link: &str) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    Request::new(
        RouteNetlinkMessage::SetLink(msg),
        0,
        format!("set {link} up"),
    )
}

/// The request that brings the link called `name` up (the kernel looks it up by name when
/// the index is 0), saving a lookup.
pub(crate) fn set_up_by_name_request(name: &str) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    Request::new(
        RouteNetlinkMessage::SetLink(msg),
        0,
        format!("set link {name} up"),
    )
}

fn libc_msg_trunc() -> i32 {
    // MSG_TRUNC makes recv report a datagram's real length, so a short buffer is noticed.
    nix::sys::socket::MsgFlags::MSG_TRUNC.bits()
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Splits the netlink message at the start of `buf` into (length, type, flags, sequence
/// number, payload).
fn split_message(buf: &[u8]) -> Result<(usize, u16, u16, u32, &[u8]), String> {
    let nl = NetlinkBuffer::new_checked(buf).map_err(|e| e.to_string())?;
    let len = nl.length() as usize;
    Ok((
        len,
        nl.message_type(),
        nl.flags(),
        nl.sequence_number(),
        &buf[16..len],
    ))
}

/// The error code of an `NLMSG_ERROR` payload (0 for an ack, `-errno` for a refusal) and the
/// kernel's extended-ack text when it sent one.
fn parse_ack(payload: &[u8], flags: u16) -> (i32, Option<String>) {
    let Some(code) = payload.get(..4) else {
        return (-libc_eproto(), None);
    };
    let code = i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
    if code == 0 || flags & NLM_F_ACK_TLVS == 0 {
        return (code, None);
    }
    // After the code comes the request's header, its body too unless the ack is capped,
    // then the TLVs.
    let echoed = &payload[4..];
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        match echoed.get(..4) {
            Some(b) => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            None => return (code, None),
        }
    };
    let mut tlvs = echoed.get(align4(skip)..).unwrap_or(&[]);
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            break;
        }
        // NLMSGERR_ATTR_MSG: a NUL-terminated string.
        if kind == 1 {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or(&[]);
            return (code, Some(String::from_utf8_lossy(text).into_owned()));
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or(&[]);
    }
    (code, None)
}

fn libc_eproto() -> i32 {
    nix::errno::Errno::EPROTO as i32
}

fn decode_inner(message: &[u8], op: &str) -> Result<RouteNetlinkMessage, NetlinkError> {
    let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(message).map_err(|e| {
        NetlinkError::Decode {
            op: op.to_string(),
            detail: e.to_string(),
        }
    })?;
    match parsed.payload {
        NetlinkPayload::InnerMessage(m) => Ok(m),
        other => Err(NetlinkError::Decode {
            op: op.to_string(),
            detail: format!("unexpected message {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Netlink>();
        assert_send::<NetlinkError>();
    }

    fn ack(code: i32, flags: u16, echoed: &[u8], tlvs: &[(u16, &[u8])]) -> (Vec<u8>, u16) {
        let mut p = code.to_ne_bytes().to_vec();
        p.extend_from_slice(echoed);
        for (kind, value) in tlvs {
            let len = 4 + value.len();
            p.extend_from_slice(&(len as u16).to_ne_bytes());
            p.extend_from_slice(&kind.to_ne_bytes());
            p.extend_from_slice(value);
            p.resize(align4(p.len()), 0);
        }
        (p, flags)
    }

    #[test]
    fn extended_acks_yield_the_kernels_words() {
        let mut header = vec![0u8; 16];
        header[..4].copy_from_slice(&16u32.to_ne_bytes());
        let (p, f) = ack(
            -101,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            &header,
            &[(2, &[0, 0, 0, 0]), (1, b"Nexthop has invalid gateway\0")],
        );
        assert_eq!(
            parse_ack(&p, f),
            (-101, Some("Nexthop has invalid gateway".to_string()))
        );
        // Not capped: the echoed request (header says 24 bytes) comes before the TLVs.
        let mut echoed = vec![0u8; 24];
        echoed[..4].copy_from_slice(&24u32.to_ne_bytes());
        let (p, f) = ack(-17, NLM_F_ACK_TLVS, &echoed, &[(1, b"exists\0")]);
        assert_eq!(parse_ack(&p, f), (-17, Some("exists".to_string())));
        let (p, f) = ack(0, 0, &header, &[]);
        assert_eq!(parse_ack(&p, f), (0, None));
        assert_eq!(parse_ack(&[1, 2], 0).0, -(nix::errno::Errno::EPROTO as i32));
        // A truncated TLV is ignored, not trusted.
        let (mut p, f) = ack(-1, NLM_F_CAPPED | NLM_F_ACK_TLVS, &header, &[(1, b"abc\0")]);
        p.truncate(p.len() - 4);
        assert_eq!(parse_ack(&p, f), (-1, None));
    }
}
