//! The embedded DNS server of user-defined networks: containers find each other by name.
//!
//! dockerd runs a resolver on 127.0.0.11 inside every container's namespace. Berth runs one
//! server per user-defined network instead, on that network's gateway address(es) in the host's
//! namespace (as podman's aardvark-dns does), and containers' `resolv.conf` names the gateway.
//! It answers A, AAAA and PTR queries for the containers of its network from [`Records`], which
//! the daemon keeps up to date, and forwards everything else to the host's nameservers. Being
//! in the host's namespace, it can reach loopback upstreams such as systemd-resolved's
//! 127.0.0.53.
//!
//! Plain threads and blocking sockets: one thread per UDP socket, one per TCP listener, one per
//! TCP connection (at most [`MAX_TCP_CONNECTIONS`]) and one per forwarded UDP query (at most
//! [`MAX_FORWARDS`] at once; past that the client is told REFUSED, as dockerd does). Every wait
//! polls its socket together with a stop eventfd, so stopping the server is prompt.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

use crate::files::ResolvConf;

/// Time to live of the answers about containers, as dockerd gives them.
pub const TTL: u32 = 600;
/// How long one upstream nameserver may take to answer before the next one is tried.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded UDP queries in flight at once, per server.
pub const MAX_FORWARDS: usize = 64;
/// TCP client connections open at once, per server.
pub const MAX_TCP_CONNECTIONS: usize = 32;
/// A TCP client connection that sends nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long stopping waits for forwards in flight (a TCP connect to an upstream cannot be
/// interrupted, and takes at most [`UPSTREAM_TIMEOUT`]).
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How long the TCP listener pauses after an accept that failed for lack of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The largest answer over UDP to a client that did not say (RFC 1035).
const UDP_DEFAULT_SIZE: usize = 512;
/// The UDP payload size this server advertises in its EDNS answers (the DNS flag day value).
const EDNS_PAYLOAD: u16 = 1232;
const DNS_PORT: u16 = 53;

/// Why the embedded DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No address to listen on was given.
    #[error("embedded DNS server: no address to listen on")]
    NoListenAddress,
    /// A socket could not be bound.
    #[error("embedded DNS server: bind {proto} socket on {addr}: {source}")]
    Bind {
        /// "udp" or "tcp".
        proto: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// The eventfd that stops the server's threads could not be made.
    #[error("embedded DNS server: create the eventfd that stops it: {source}")]
    StopFd {
        /// The system's reason.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("embedded DNS server: start the thread serving {what}: {source}")]
    Spawn {
        /// What the thread would have served.
        what: String,
        /// The system's reason.
        source: io::Error,
    },
}

/// The names and addresses of one network's containers, shared between the daemon, which
/// changes them as containers come and go, and the server threads, which read them.
#[derive(Debug, Default)]
pub struct Records {
    network: Option<String>,
    table: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    owners: HashMap<String, Entry>,
    /// Lower-cased name -> owners that have it, in the order they were set.
    by_name: HashMap<String, Vec<String>>,
    /// Address -> owners that have it, in the order they were set.
    by_addr: HashMap<IpAddr, Vec<String>>,
    /// Owner -> its own upstream nameservers (a container's `--dns`).
    upstreams: HashMap<String, Vec<SocketAddr>>,
}

#[derive(Debug)]
struct Entry {
    /// As given: the first one is what PTR queries answer.
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

/// A name as it is matched: lower case, without the trailing dot of a fully qualified name.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Records {
    /// An empty table; PTR answers are the container's bare name.
    pub fn new() -> Records {
        Records::default()
    }

    /// An empty table for the network named `network`: names also resolve with `.NETWORK`
    /// appended, and PTR answers are `NAME.NETWORK`, as dockerd answers.
    pub fn for_network(network: &str) -> Records {
        Records {
            network: Some(key(network)),
            table: RwLock::default(),
        }
    }

    /// Sets `owner`'s names (its name first, then aliases, short ID, hostname) and its
    /// addresses on this network, replacing what `owner` had before.
    pub fn set(&self, owner: &str, names: &[String], addrs: &[IpAddr]) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        table.unindex(owner);
        let mut entry = Entry {
            names: Vec::new(),
            addrs: Vec::new(),
        };
        for name in names {
            let k = key(name);
            if k.is_empty() || entry.names.iter().any(|n| key(n) == k) {
                continue;
            }
            entry
                .names
                .push(name.strip_suffix('.').unwrap_or(name).to_owned());
            table.by_name.entry(k).or_default().push(owner.to_owned());
        }
        for addr in addrs {
            if entry.addrs.contains(addr) {
                continue;
            }
            entry.addrs.push(*addr);
            table
                .by_addr
                .entry(*addr)
                .or_default()
                .push(owner.to_owned());
        }
        table.owners.insert(owner.to_owned(), entry);
    }

    /// Forgets `owner`'s names, addresses and upstreams.
    pub fn remove(&self, owner: &str) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        table.unindex(owner);
        table.upstreams.remove(owner);
    }

    /// Sets the nameservers that queries coming from `owner`'s addresses are forwarded to,
    /// in place of the network's (a container's `--dns`, which dockerd's resolver uses as that
    /// container's upstreams); an empty list gives it the network's again.
    pub fn set_upstreams(&self, owner: &str, upstreams: &[SocketAddr]) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if upstreams.is_empty() {
            table.upstreams.remove(owner);
        } else {
            table.upstreams.insert(owner.to_owned(), upstreams.to_vec());
        }
    }

    /// The upstreams of the owner of `client`, if it has its own.
    fn upstreams_of(&self, client: IpAddr) -> Option<Vec<SocketAddr>> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let owner = table.by_addr.get(&client)?.first()?;
        table.upstreams.get(owner).cloned()
    }

    /// The addresses of `name` (any letter case, with or without the trailing dot), of every
    /// owner that has it; empty when no one has it.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        self.resolve(name).unwrap_or_default()
    }

    /// Like [`Records::lookup`], but tells a name nobody has (`None`) from a name whose owners
    /// have no address (`Some` of an empty list).
    pub fn resolve(&self, name: &str) -> Option<Vec<IpAddr>> {
        let k = key(name);
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let owners = table.by_name.get(&k).or_else(|| {
            let network = self.network.as_deref()?;
            let bare = k.strip_suffix(network)?.strip_suffix('.')?;
            table.by_name.get(bare)
        })?;
        let mut addrs = Vec::new();
        for owner in owners {
            for addr in table.owners.get(owner).map_or(&[][..], |e| &e.addrs) {
                if !addrs.contains(addr) {
                    addrs.push(*addr);
                }
            }
        }
        Some(addrs)
    }

    /// The name a PTR query for `addr` answers: the first name of the first owner of `addr`
    /// (with `.NETWORK` appended for a table made by [`Records::for_network`]).
    pub fn reverse(&self, addr: IpAddr) -> Option<String> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let owner = table.by_addr.get(&addr)?.first()?;
        let name = table.owners.get(owner)?.names.first()?;
        Some(match &self.network {
            Some(network) => format!("{name}.{network}"),
            None => name.clone(),
        })
    }
}

impl Table {
    fn unindex(&mut self, owner: &str) {
        let Some(old) = self.owners.remove(owner) else {
            return;
        };
        for name in &old.names {
            let k = key(name);
            if let Some(owners) = self.by_name.get_mut(&k) {
                owners.retain(|o| o != owner);
                if owners.is_empty() {
                    self.by_name.remove(&k);
                }
            }
        }
        for addr in &old.addrs {
            if let Some(owners) = self.by_addr.get_mut(addr) {
                owners.retain(|o| o != owner);
                if owners.is_empty() {
                    self.by_addr.remove(addr);
                }
            }
        }
    }
}

/// The nameservers of a host's `resolv.conf`, on port 53, as upstreams for [`DnsServer`].
/// Addresses with a zone (`fe80::1%eth0`) are left out.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    ResolvConf::parse(text)
        .nameservers
        .into_iter()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect()
}

/// A running DNS server for one network. Dropping it (or [`DnsServer::stop`]) stops its
/// threads and closes its sockets.
#[derive(Debug)]
pub struct DnsServer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

#[derive(Debug)]
struct Shared {
    records: Arc<Records>,
    upstreams: Vec<SocketAddr>,
    /// The server's own addresses, never used as upstreams: forwarding to itself would loop.
    listening: Vec<SocketAddr>,
    /// Readable once the server is stopping: every wait polls it.
    stop: OwnedFd,
    stopping: AtomicBool,
    tasks: Tasks,
    /// Turns the order of several addresses from one answer to the next, so clients spread
    /// their connections (dockerd shuffles them).
    rotation: AtomicUsize,
}

impl DnsServer {
    /// Listens on UDP and TCP on each of `listen` (a port 0 is chosen once, the same for both)
    /// and serves `records`, forwarding other queries to `upstreams` in order.
    pub fn start(
        listen: &[SocketAddr],
        records: Arc<Records>,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer, DnsError> {
        if listen.is_empty() {
            return Err(DnsError::NoListenAddress);
        }
        let stop = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| DnsError::StopFd { source: e.into() })?;
        let mut sockets = Vec::with_capacity(listen.len());
        for addr in listen {
            sockets.push(bind_pair(*addr)?);
        }
        let addrs: Vec<SocketAddr> = sockets.iter().map(|(_, _, a)| *a).collect();
        let upstreams = upstreams
            .into_iter()
            .filter(|u| !addrs.contains(u))
            .collect();
        let mut server = DnsServer {
            shared: Arc::new(Shared {
                records,
                upstreams,
                listening: addrs.clone(),
                stop,
                stopping: AtomicBool::new(false),
                tasks: Tasks::default(),
                rotation: AtomicUsize::new(0),
            }),
            threads: Vec::new(),
            addrs,
        };
        // On an error below, dropping `server` stops the threads already started.
        for (udp, tcp, addr) in sockets {
            let shared = Arc::clone(&server.shared);
            let udp = Arc::new(udp);
            server.threads.push(spawn(format!("udp {addr}"), move || {
                serve_udp(&shared, &udp)
            })?);
            let shared = Arc::clone(&server.shared);
            server.threads.push(spawn(format!("tcp {addr}"), move || {
                serve_tcp(&shared, &tcp)
            })?);
        }
        Ok(server)
    }

    /// Stops the server: its threads end and its sockets close (see [`Drop`]).
    pub fn stop(self) {}

    /// The addresses the server listens on, UDP and TCP alike, with the ports it was given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }
}

impl Shared {
    /// Where queries from `client` are forwarded: its owner's upstreams, else the network's.
    fn upstreams_for(&self, client: IpAddr) -> Vec<SocketAddr> {
        match self.records.upstreams_of(client) {
            Some(own) => own
                .into_iter()
                .filter(|u| !self.listening.contains(u))
                .collect(),
            None => self.upstreams.clone(),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // An eventfd write of 1 cannot overflow its counter: it is never read, only polled.
        let _ = rustix::io::write(&self.shared.stop, &1u64.to_ne_bytes());
        for thread in self.threads.drain(..) {
            // A panicked thread has already stopped; there is nothing more to undo.
            let _ = thread.join();
        }
        self.shared.tasks.wait_idle(STOP_WAIT);
    }
}

fn spawn(what: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, DnsError> {
    std::thread::Builder::new()
        .name("berth-dns".to_owned())
        .spawn(f)
        .map_err(|source| DnsError::Spawn { what, source })
}

/// Binds a UDP socket and a TCP listener on the same address and port. With port 0 the UDP
/// socket picks the port, and a few other ports are tried if TCP finds that one taken.
fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), DnsError> {
    let tries = if addr.port() == 0 { 8 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = bind_socket(addr, SocketType::DGRAM)
            .map(UdpSocket::from)
            .map_err(|source| DnsError::Bind {
                proto: "udp",
                addr,
                source,
            })?;
        let bound = udp.local_addr().map_err(|source| DnsError::Bind {
            proto: "udp",
            addr,
            source,
        })?;
        match bind_socket(bound, SocketType::STREAM) {
            Ok(tcp) => return Ok((udp, TcpListener::from(tcp), bound)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() == 0 => last = Some(e),
            Err(source) => {
                return Err(DnsError::Bind {
                    proto: "tcp",
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(DnsError::Bind {
        proto: "tcp",
        addr,
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)),
    })
}

/// A non-blocking socket bound to `addr` (and listening, for TCP).
///
/// With IP_FREEBIND, because the gateway address may not be usable yet when the daemon starts
/// the server: an IPv6 address stays tentative until duplicate address detection is done, and
/// a bridge's addresses can be re-added after the server started.
fn bind_socket(addr: SocketAddr, kind: SocketType) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    match addr {
        SocketAddr::V4(_) => sockopt::set_ip_freebind(&fd, true)?,
        SocketAddr::V6(_) => {
            sockopt::set_ipv6_freebind(&fd, true)?;
            sockopt::set_ipv6_v6only(&fd, true)?;
        }
    }
    if kind == SocketType::STREAM {
        // As std does for listeners: a restarted server can bind while old connections linger
        // in TIME_WAIT.
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    if kind == SocketType::STREAM {
        rustix::net::listen(&fd, 128)?;
    }
    Ok(fd)
}

/// Counts the forwards and TCP connections in flight, so both stay bounded and stopping can
/// wait for them.
#[derive(Debug, Default)]
struct Tasks {
    counts: Mutex<TaskCounts>,
    idle: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct TaskCounts {
    forwards: usize,
    tcp: usize,
}

#[derive(Debug, Clone, Copy)]
enum TaskKind {
    Forward,
    Tcp,
}

struct TaskGuard<'a> {
    tasks: &'a Tasks,
    kind: TaskKind,
}

impl Tasks {
    fn try_start(&self, kind: TaskKind) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, limit) = match kind {
            TaskKind::Forward => (&mut counts.forwards, MAX_FORWARDS),
            TaskKind::Tcp => (&mut counts.tcp, MAX_TCP_CONNECTIONS),
        };
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    fn finish(&self, kind: TaskKind) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        match kind {
            TaskKind::Forward => counts.forwards = counts.forwards.saturating_sub(1),
            TaskKind::Tcp => counts.tcp = counts.tcp.saturating_sub(1),
        }
        self.idle.notify_all();
    }

    fn wait_idle(&self, timeout: Duration) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .idle
            .wait_timeout_while(counts, timeout, |c| c.forwards + c.tcp > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.tasks.finish(self.kind);
    }
}

enum Wait {
    Ready,
    Stopped,
    TimedOut,
}

/// Waits until `fd` is readable (or in error: the next read reports it), the server stops, or
/// `deadline` passes.
fn wait_readable(fd: &impl AsFd, stop: &OwnedFd, deadline: Option<Instant>) -> Wait {
    loop {
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Wait::TimedOut;
                }
                // Any Duration this module uses fits a Timespec.
                Some(Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                }))
            }
        };
        let mut fds = [
            PollFd::new(fd, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {
                if !fds[1].revents().is_empty() {
                    return Wait::Stopped;
                }
                if !fds[0].revents().is_empty() {
                    return Wait::Ready;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            // poll only fails for bad arguments or lack of memory; waiting again would spin.
            Err(_) => return Wait::Stopped,
        }
    }
}

fn serve_udp(shared: &Arc<Shared>, socket: &Arc<UdpSocket>) {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        match wait_readable(socket.as_ref(), &shared.stop, None) {
            Wait::Ready => {}
            Wait::Stopped => return,
            Wait::TimedOut => continue,
        }
        // Errors here are a client's (an ICMP error for an earlier reply) or a spurious
        // wake-up: the socket itself stays usable.
        let Ok((len, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let packet = &buf[..len];
        match respond(shared, packet, Transport::Udp, peer.ip()) {
            Outcome::Reply(reply) => {
                let _ = socket.send_to(&reply, peer);
            }
            Outcome::Drop => {}
            Outcome::Forward(query, upstreams) => {
                if !shared.tasks.try_start(TaskKind::Forward) {
                    let _ = socket.send_to(&error_reply(&query, ResponseCode::Refused), peer);
                    continue;
                }
                let task_shared = Arc::clone(shared);
                let task_socket = Arc::clone(socket);
                let owned = packet.to_vec();
                let spawned = std::thread::Builder::new()
                    .name("berth-dns-fwd".to_owned())
                    .spawn(move || {
                        let guard = TaskGuard {
                            tasks: &task_shared.tasks,
                            kind: TaskKind::Forward,
                        };
                        let reply =
                            forward(&task_shared, &query, &owned, Transport::Udp, &upstreams);
                        let _ = task_socket.send_to(&reply, peer);
                        // The socket goes before the count: a stopped server has closed every
                        // socket once the count is zero.
                        drop(task_socket);
                        drop(guard);
                    });
                if spawned.is_err() {
                    shared.tasks.finish(TaskKind::Forward);
                    // The parsed query went into the closure; answer from the packet's header.
                    if let Some(reply) = header_error(packet, ResponseCode::ServFail) {
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            }
        }
    }
}

fn serve_tcp(shared: &Arc<Shared>, listener: &TcpListener) {
    loop {
        match wait_readable(listener, &shared.stop, None) {
            Wait::Ready => {}
            Wait::Stopped => return,
            Wait::TimedOut => continue,
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue
            }
            // Out of descriptors or memory: the connection stays queued and the listener stays
            // readable, so back off instead of spinning.
            Err(_) => {
                if let Wait::Stopped = wait_readable(
                    &shared.stop,
                    &shared.stop,
                    Some(Instant::now() + ACCEPT_BACKOFF),
                ) {
                    return;
                }
                continue;
            }
        };
        if !shared.tasks.try_start(TaskKind::Tcp) {
            // Closing the connection tells the client to go elsewhere.
            continue;
        }
        let task_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("berth-dns-tcp".to_owned())
            .spawn(move || {
                let _guard = TaskGuard {
                    tasks: &task_shared.tasks,
                    kind: TaskKind::Tcp,
                };
                serve_tcp_connection(&task_shared, stream, peer.ip());
            });
        if spawned.is_err() {
            shared.tasks.finish(TaskKind::Tcp);
        }
    }
}

/// Answers the length-prefixed queries of one TCP client (RFC 1035 4.2.2) until it closes the
/// connection, goes idle, or sends something that is not DNS.
fn serve_tcp_connection(shared: &Shared, mut stream: TcpStream, client: IpAddr) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
    {
        return;
    }
    loop {
        let Ok(packet) = read_tcp_message(&mut stream, &shared.stop, Instant::now() + TCP_IDLE)
        else {
            return;
        };
        let reply = match respond(shared, &packet, Transport::Tcp, client) {
            Outcome::Reply(reply) => reply,
            Outcome::Drop => return,
            Outcome::Forward(query, upstreams) => {
                forward(shared, &query, &packet, Transport::Tcp, &upstreams)
            }
        };
        if write_tcp_message(&mut stream, &reply).is_err() {
            return;
        }
    }
}

#[derive(Debug)]
enum TcpReadError {
    Io,
    Stopped,
    TimedOut,
    Closed,
}

fn read_exact_polled(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stop: &OwnedFd,
    deadline: Instant,
) -> Result<(), TcpReadError> {
    let mut filled = 0;
    while filled < buf.len() {
        match wait_readable(stream, stop, Some(deadline)) {
            Wait::Ready => {}
            Wait::Stopped => return Err(TcpReadError::Stopped),
            Wait::TimedOut => return Err(TcpReadError::TimedOut),
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(TcpReadError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(TcpReadError::Io),
        }
    }
    Ok(())
}

fn read_tcp_message(
    stream: &mut TcpStream,
    stop: &OwnedFd,
    deadline: Instant,
) -> Result<Vec<u8>, TcpReadError> {
    let mut len = [0u8; 2];
    read_exact_polled(stream, &mut len, stop, deadline)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 {
        return Err(TcpReadError::Closed);
    }
    let mut packet = vec![0u8; len];
    // The rest of a message that has begun must follow promptly.
    let body_deadline = deadline.min(Instant::now() + UPSTREAM_TIMEOUT);
    read_exact_polled(stream, &mut packet, stop, body_deadline)?;
    Ok(packet)
}

fn write_tcp_message(stream: &mut TcpStream, packet: &[u8]) -> io::Result<()> {
    let len = u16::try_from(packet.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "DNS message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(packet);
    stream.write_all(&framed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

enum Outcome {
    Reply(Vec<u8>),
    /// To these upstreams (never empty).
    Forward(Message, Vec<SocketAddr>),
    Drop,
}

/// Decides what to do with one packet from a client: answer it from the records, answer an
/// error, forward it, or ignore it.
fn respond(shared: &Shared, packet: &[u8], transport: Transport, client: IpAddr) -> Outcome {
    let query = match Message::from_vec(packet) {
        Ok(query) => query,
        Err(_) => {
            return match header_error(packet, ResponseCode::FormErr) {
                Some(reply) => Outcome::Reply(reply),
                None => Outcome::Drop,
            }
        }
    };
    // Answering a response could make two servers talk to each other forever.
    if query.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    if query.metadata.op_code != OpCode::Query {
        return Outcome::Reply(error_reply(&query, ResponseCode::NotImp));
    }
    let [question] = query.queries.as_slice() else {
        return Outcome::Reply(error_reply(&query, ResponseCode::FormErr));
    };
    if question.query_class() == DNSClass::IN {
        let name = question.name();
        let qtype = question.query_type();
        if qtype == RecordType::PTR {
            if let Some(target) = ptr_target(&shared.records, name) {
                let record = Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(target)));
                return Outcome::Reply(answer(&query, vec![record], transport));
            }
        } else if let Some(mut addrs) = shared.records.resolve(&name.to_ascii()) {
            // A name we own has no other data: NOERROR with no answer, also for a family it
            // has no address of, so the client does not conclude that the name does not exist.
            addrs.retain(|a| match qtype {
                RecordType::A => a.is_ipv4(),
                RecordType::AAAA => a.is_ipv6(),
                _ => false,
            });
            if addrs.len() > 1 {
                let turn = shared.rotation.fetch_add(1, Ordering::Relaxed) % addrs.len();
                addrs.rotate_left(turn);
            }
            let records = addrs
                .into_iter()
                .map(|addr| {
                    let data = match addr {
                        IpAddr::V4(a) => RData::A(A(a)),
                        IpAddr::V6(a) => RData::AAAA(AAAA(a)),
                    };
                    Record::from_rdata(name.clone(), TTL, data)
                })
                .collect();
            return Outcome::Reply(answer(&query, records, transport));
        }
    }
    let upstreams = shared.upstreams_for(client);
    if upstreams.is_empty() {
        return Outcome::Reply(error_reply(&query, ResponseCode::Refused));
    }
    Outcome::Forward(query, upstreams)
}

/// The name a PTR query for `name` (an `in-addr.arpa` or `ip6.arpa` name of one address)
/// answers, if that address is a container's.
fn ptr_target(records: &Records, name: &Name) -> Option<Name> {
    let net = name.parse_arpa_name().ok()?;
    if net.prefix_len() != net.max_prefix_len() {
        return None;
    }
    let target = records.reverse(net.addr())?;
    let mut target = Name::from_ascii(&target).ok()?;
    target.set_fqdn(true);
    Some(target)
}

/// The start of a reply to `query`: same ID, question and recursion-desired flag; recursion is
/// available (through the upstreams); an EDNS record when the query had one (RFC 6891 6.1.1).
fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.checking_disabled = query.metadata.checking_disabled;
    reply.metadata.response_code = code;
    reply.queries = query.queries.clone();
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.edns = Some(edns);
    }
    reply
}

fn error_reply(query: &Message, code: ResponseCode) -> Vec<u8> {
    let reply = reply_to(query, code);
    reply
        .to_vec()
        .unwrap_or_else(|_| header_error_for(query.metadata.id, code))
}

/// An authoritative answer with `records`, cut to what the client can take over `transport`
/// (with the truncated flag set, so it retries over TCP).
fn answer(query: &Message, records: Vec<Record>, transport: Transport) -> Vec<u8> {
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp if query.edns.is_some() => usize::from(query.max_payload()),
        Transport::Udp => UDP_DEFAULT_SIZE,
    };
    let mut reply = reply_to(query, ResponseCode::NoError);
    reply.metadata.authoritative = true;
    reply.answers = records;
    loop {
        match reply.to_vec() {
            Ok(bytes) if bytes.len() <= limit => return bytes,
            Ok(_) if !reply.answers.is_empty() => {
                reply.answers.pop();
                reply.metadata.truncation = true;
            }
            _ => return error_reply(query, ResponseCode::ServFail),
        }
    }
}

/// A header-only error reply to a packet that could not be parsed, when at least its header
/// is there and it is a query; `None` means the packet is better ignored.
fn header_error(packet: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    let header = packet.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut reply = header_error_for(u16::from_be_bytes([header[0], header[1]]), code);
    // Keep the opcode and recursion-desired bits of the query.
    reply[2] |= header[2] & 0x79;
    Some(reply)
}

fn header_error_for(id: u16, code: ResponseCode) -> Vec<u8> {
    let mut reply = vec![0u8; 12];
    reply[..2].copy_from_slice(&id.to_be_bytes());
    reply[2] = 0x80;
    reply[3] = 0x80 | (code.low() & 0x0f);
    reply
}

/// Asks the upstreams in order, and returns the first answer that is not SERVFAIL or REFUSED
/// (as dockerd does), else SERVFAIL.
fn forward(
    shared: &Shared,
    query: &Message,
    packet: &[u8],
    transport: Transport,
    upstreams: &[SocketAddr],
) -> Vec<u8> {
    let client_limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp if query.edns.is_some() => usize::from(query.max_payload()),
        Transport::Udp => UDP_DEFAULT_SIZE,
    };
    let id = query.metadata.id;
    for upstream in upstreams {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let deadline = Instant::now() + UPSTREAM_TIMEOUT;
        let reply = match transport {
            Transport::Tcp => exchange_tcp(*upstream, packet, id, &shared.stop, deadline),
            Transport::Udp => match exchange_udp(*upstream, packet, id, &shared.stop, deadline) {
                // The upstream could not fit its answer in UDP: ask again over TCP, and pass
                // the whole answer on if the client can take it, else the truncated one (the
                // client then retries over TCP itself).
                Ok(reply) if reply_truncated(&reply) => {
                    let tcp_deadline = Instant::now() + UPSTREAM_TIMEOUT;
                    match exchange_tcp(*upstream, packet, id, &shared.stop, tcp_deadline) {
                        Ok(full) if full.len() <= client_limit => Ok(full),
                        _ => Ok(reply),
                    }
                }
                other => other,
            },
        };
        let Ok(reply) = reply else {
            continue;
        };
        let code = reply[3] & 0x0f;
        if code == ResponseCode::ServFail.low() || code == ResponseCode::Refused.low() {
            continue;
        }
        return reply;
    }
    error_reply(query, ResponseCode::ServFail)
}

/// Whether `packet` is a DNS response to the query with this ID.
fn is_reply_to(packet: &[u8], id: u16) -> bool {
    packet.len() >= 12 && u16::from_be_bytes([packet[0], packet[1]]) == id && packet[2] & 0x80 != 0
}

fn reply_truncated(packet: &[u8]) -> bool {
    packet[2] & 0x02 != 0
}

fn exchange_udp(
    upstream: SocketAddr,
    packet: &[u8],
    id: u16,
    stop: &OwnedFd,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A fresh socket per query, connected: the kernel picks a random source port and drops
    // datagrams from anyone but the upstream.
    let socket = UdpSocket::bind(local)?;
    socket.connect(upstream)?;
    socket.set_nonblocking(true)?;
    socket.send(packet)?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        match wait_readable(&socket, stop, Some(deadline)) {
            Wait::Ready => {}
            Wait::Stopped => return Err(io::Error::from(io::ErrorKind::Interrupted)),
            Wait::TimedOut => return Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
        match socket.recv(&mut buf) {
            Ok(len) if is_reply_to(&buf[..len], id) => {
                buf.truncate(len);
                return Ok(buf);
            }
            // A stray or late datagram for another query.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Connection refused (an ICMP port unreachable) and the like.
            Err(e) => return Err(e),
        }
    }
}

fn exchange_tcp(
    upstream: SocketAddr,
    packet: &[u8],
    id: u16,
    stop: &OwnedFd,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    if timeout.is_zero() {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    let mut stream = TcpStream::connect_timeout(&upstream, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    write_tcp_message(&mut stream, packet)?;
    loop {
        let reply = read_tcp_message(&mut stream, stop, deadline)
            .map_err(|e| io::Error::other(format!("read from {upstream}: {e:?}")))?;
        if is_reply_to(&reply, id) {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lookup_ignores_case_and_trailing_dot() {
        let records = Records::new();
        records.set(
            "c1",
            &names(&["Web", "web-alias"]),
            &[ip("10.0.0.2"), ip("fd00::2")],
        );
        assert_eq!(records.lookup("web"), vec![ip("10.0.0.2"), ip("fd00::2")]);
        assert_eq!(records.lookup("WEB."), vec![ip("10.0.0.2"), ip("fd00::2")]);
        assert_eq!(records.lookup("web-alias"), records.lookup("web"));
        assert!(records.lookup("db").is_empty());
        assert_eq!(records.resolve("db"), None);
    }

    #[test]
    fn set_replaces_and_remove_forgets() {
        let records = Records::new();
        records.set("c1", &names(&["old"]), &[ip("10.0.0.2")]);
        records.set("c1", &names(&["new"]), &[ip("10.0.0.3")]);
        assert_eq!(records.resolve("old"), None);
        assert_eq!(records.lookup("new"), vec![ip("10.0.0.3")]);
        assert_eq!(records.reverse(ip("10.0.0.2")), None);
        assert_eq!(records.reverse(ip("10.0.0.3")).as_deref(), Some("new"));
        records.remove("c1");
        assert_eq!(records.resolve("new"), None);
        assert_eq!(records.reverse(ip("10.0.0.3")), None);
        // Removing what is not there is not an error.
        records.remove("c1");
    }

    #[test]
    fn shared_alias_answers_every_owner() {
        let records = Records::new();
        records.set("c1", &names(&["a", "svc"]), &[ip("10.0.0.2")]);
        records.set("c2", &names(&["b", "svc"]), &[ip("10.0.0.3")]);
        assert_eq!(records.lookup("svc"), vec![ip("10.0.0.2"), ip("10.0.0.3")]);
        records.remove("c1");
        assert_eq!(records.lookup("svc"), vec![ip("10.0.0.3")]);
    }

    #[test]
    fn known_name_without_address() {
        let records = Records::new();
        records.set("c1", &names(&["quiet"]), &[]);
        assert_eq!(records.resolve("quiet"), Some(Vec::new()));
        assert!(records.lookup("quiet").is_empty());
    }

    #[test]
    fn network_suffix_and_reverse_name() {
        let records = Records::for_network("MyNet");
        records.set("c1", &names(&["web"]), &[ip("10.0.0.2")]);
        assert_eq!(records.lookup("web.mynet."), vec![ip("10.0.0.2")]);
        assert_eq!(records.lookup("web"), vec![ip("10.0.0.2")]);
        assert!(records.lookup("web.othernet").is_empty());
        assert_eq!(
            records.reverse(ip("10.0.0.2")).as_deref(),
            Some("web.mynet")
        );
    }

    #[test]
    fn upstreams_from_host_file() {
        let text = "# generated\nnameserver 127.0.0.53\nnameserver fd00::1\nnameserver fe80::1%eth0\nsearch example.com\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            vec![
                SocketAddr::new(ip("127.0.0.53"), 53),
                SocketAddr::new(ip("fd00::1"), 53)
            ]
        );
    }

    #[test]
    fn header_error_keeps_id_and_opcode() {
        let packet = [0x12, 0x34, 0x01, 0x00, 0, 5, 0, 0, 0, 0, 0, 0];
        let reply = header_error(&packet, ResponseCode::FormErr).expect("a reply");
        assert_eq!(reply[..2], [0x12, 0x34]);
        assert_eq!(reply[2], 0x81);
        assert_eq!(reply[3] & 0x0f, 1);
        // Responses and runts get nothing.
        assert!(header_error(
            &[0x12, 0x34, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ResponseCode::FormErr
        )
        .is_none());
        assert!(header_error(&[1, 2, 3], ResponseCode::FormErr).is_none());
    }
}
