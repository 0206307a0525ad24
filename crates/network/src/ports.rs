//! Host port reservations for published ports.
//!
//! A published port is DNATed in berth's nftables table, so no process on the host needs to
//! listen on it. The port is still reserved, as dockerd does: a socket bound (not listening)
//! to the host address and port, without `SO_REUSEADDR`, so a port another program holds is a
//! clear error before the container starts, and no other program can bind the port while it
//! is published. Dropping the [`Reservation`] releases it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::nft::Proto;

/// How often a kernel-chosen port is tried again when its IPv6 twin is taken.
const PICK_ATTEMPTS: usize = 32;

/// Errors of port reservations.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Someone else holds the port (dockerd's words).
    #[error("Bind for {addr} failed: port is already allocated")]
    Allocated {
        /// `0.0.0.0:8080`, `[::]:8080`, `127.0.0.1:8080`.
        addr: String,
        /// The protocol.
        proto: Proto,
    },
    /// Binding failed for another reason.
    #[error("Bind for {addr}/{proto} failed: {source}")]
    Bind {
        /// The address and port.
        addr: String,
        /// The protocol.
        proto: Proto,
        /// The error.
        source: io::Error,
    },
    /// The socket could not be made (for SCTP: the kernel may lack it).
    #[error("open a {proto} socket to reserve {addr}: {source}")]
    Socket {
        /// The address and port.
        addr: String,
        /// The protocol.
        proto: Proto,
        /// The error.
        source: io::Error,
    },
    /// The kernel has no SCTP.
    #[error("cannot reserve {addr}/sctp: this kernel has no SCTP support (the sctp module is not loaded)")]
    NoSctp {
        /// The address and port.
        addr: String,
    },
    /// No port of the ephemeral range was free on every address.
    #[error("no free {proto} port for {addr} in the ephemeral range after {attempts} attempts")]
    Exhausted {
        /// The address.
        addr: String,
        /// The protocol.
        proto: Proto,
        /// How many ports were tried.
        attempts: usize,
    },
    /// A port or range is malformed.
    #[error("invalid port range {input:?}: {reason}")]
    InvalidRange {
        /// The text given.
        input: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// A reserved host port: one bound socket per address. Dropping it releases the port.
#[derive(Debug)]
pub struct Reservation {
    host_ip: Option<IpAddr>,
    proto: Proto,
    port: u16,
    // Held only so the port stays bound.
    _sockets: Vec<OwnedFd>,
}

impl Reservation {
    /// The reserved port (the kernel's choice when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host address; `None` is every address.
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.host_ip
    }

    /// The protocol.
    pub fn proto(&self) -> Proto {
        self.proto
    }
}

/// Reserves `port` of `proto` on `host_ip` (`None`: `0.0.0.0`, and `[::]` where the host has
/// IPv6). Port 0 picks a free one: the kernel chooses it from its ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, skipping `ip_local_reserved_ports`) by binding
/// port 0, the range dockerd takes its ports from.
pub fn reserve(host_ip: Option<IpAddr>, proto: Proto, port: u16) -> Result<Reservation, PortError> {
    let addrs: Vec<(IpAddr, bool)> = match host_ip {
        Some(ip) => vec![(ip, false)],
        // The IPv6 wildcard is optional: a host without IPv6 skips it.
        None => vec![
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), false),
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), true),
        ],
    };
    if port != 0 {
        let sockets = bind_all(&addrs, proto, port)?;
        return Ok(Reservation {
            host_ip,
            proto,
            port,
            _sockets: sockets,
        });
    }
    let (first, optional) = addrs[0];
    for _ in 0..PICK_ATTEMPTS {
        let Some(socket) = bind_one(first, optional, proto, 0)? else {
            break;
        };
        let picked = local_port(&socket, first, proto)?;
        match bind_all(&addrs[1..], proto, picked) {
            Ok(mut rest) => {
                rest.insert(0, socket);
                return Ok(Reservation {
                    host_ip,
                    proto,
                    port: picked,
                    _sockets: rest,
                });
            }
            Err(PortError::Allocated { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PortError::Exhausted {
        addr: host_text(first),
        proto,
        attempts: PICK_ATTEMPTS,
    })
}

/// Parses a host port or range: `"8080"` or `"8080-8090"`.
pub fn parse_range(s: &str) -> Result<(u16, u16), PortError> {
    let invalid = |reason| PortError::InvalidRange {
        input: s.to_string(),
        reason,
    };
    let number = |t: &str| -> Result<u16, PortError> {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("a port is a number from 0 to 65535"));
        }
        t.parse::<u16>()
            .map_err(|_| invalid("a port is a number from 0 to 65535"))
    };
    match s.split_once('-') {
        None => {
            let port = number(s)?;
            Ok((port, port))
        }
        Some((start, end)) => {
            let (start, end) = (number(start)?, number(end)?);
            if start > end {
                return Err(invalid("the range's start is above its end"));
            }
            Ok((start, end))
        }
    }
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn bind_all(addrs: &[(IpAddr, bool)], proto: Proto, port: u16) -> Result<Vec<OwnedFd>, PortError> {
    let mut sockets = Vec::with_capacity(addrs.len());
    for &(ip, optional) in addrs {
        if let Some(socket) = bind_one(ip, optional, proto, port)? {
            sockets.push(socket);
        }
    }
    Ok(sockets)
}

/// Binds one socket; `Ok(None)` when `optional` and the host has no such address family.
fn bind_one(
    ip: IpAddr,
    optional: bool,
    proto: Proto,
    port: u16,
) -> Result<Option<OwnedFd>, PortError> {
    let addr = format!("{}:{port}", host_text(ip));
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let (ty, protocol) = match proto {
        Proto::Tcp => (SocketType::STREAM, None),
        Proto::Udp => (SocketType::DGRAM, None),
        Proto::Sctp => (SocketType::STREAM, Some(rustix::net::ipproto::SCTP)),
    };
    let socket = match rustix::net::socket_with(family, ty, SocketFlags::CLOEXEC, protocol) {
        Ok(socket) => socket,
        Err(Errno::AFNOSUPPORT) if optional => return Ok(None),
        Err(Errno::PROTONOSUPPORT) if proto == Proto::Sctp => {
            return Err(PortError::NoSctp { addr })
        }
        Err(e) => {
            return Err(PortError::Socket {
                addr,
                proto,
                source: e.into(),
            })
        }
    };
    if ip.is_ipv6() {
        // [::] must not also claim the IPv4 port: 0.0.0.0 is reserved by its own socket.
        rustix::net::sockopt::set_ipv6_v6only(&socket, true).map_err(|e| PortError::Socket {
            addr: addr.clone(),
            proto,
            source: e.into(),
        })?;
    }
    match rustix::net::bind(&socket, &SocketAddr::new(ip, port)) {
        Ok(()) => Ok(Some(socket)),
        Err(Errno::ADDRINUSE) => Err(PortError::Allocated { addr, proto }),
        // IPv6 disabled by sysctl: the family exists but [::] cannot be bound.
        Err(Errno::ADDRNOTAVAIL) if optional => Ok(None),
        Err(e) => Err(PortError::Bind {
            addr,
            proto,
            source: e.into(),
        }),
    }
}

fn local_port(socket: &OwnedFd, ip: IpAddr, proto: Proto) -> Result<u16, PortError> {
    let fail = |source: io::Error| PortError::Bind {
        addr: format!("{}:0", host_text(ip)),
        proto,
        source,
    };
    let local = rustix::net::getsockname(socket).map_err(|e| fail(e.into()))?;
    let local = SocketAddr::try_from(local).map_err(|e| fail(e.into()))?;
    Ok(local.port())
}

impl fmt::Display for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(ip) => write!(f, "{}:{}/{}", host_text(ip), self.port, self.proto),
            None => write!(f, "*:{}/{}", self.port, self.proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("8080").expect("single"), (8080, 8080));
        assert_eq!(parse_range("8080-8090").expect("range"), (8080, 8090));
        assert_eq!(parse_range("0").expect("zero"), (0, 0));
        for bad in [
            "",
            "-",
            "80-",
            "x",
            "65536",
            "90-80",
            "+80",
            "8080-8090-9000",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            parse_range("90-80").expect_err("refused").to_string(),
            "invalid port range \"90-80\": the range's start is above its end"
        );
    }

    #[test]
    fn a_reserved_port_cannot_be_reserved_again() {
        let first = reserve(LOOPBACK, Proto::Tcp, 0).expect("reserve a free port");
        assert_ne!(first.port(), 0);
        let err = reserve(LOOPBACK, Proto::Tcp, first.port()).expect_err("taken");
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 127.0.0.1:{} failed: port is already allocated",
                first.port()
            )
        );
        // Another program, even with SO_REUSEADDR, cannot listen on it either.
        assert!(std::net::TcpListener::bind(("127.0.0.1", first.port())).is_err());
        // The same number over UDP is another port.
        let udp = reserve(LOOPBACK, Proto::Udp, first.port()).expect("udp is separate");
        drop(udp);
        let port = first.port();
        drop(first);
        let again = reserve(LOOPBACK, Proto::Tcp, port).expect("released on drop");
        assert_eq!(again.port(), port);
    }

    #[test]
    fn sctp_is_reserved_or_refused_with_a_reason() {
        match reserve(LOOPBACK, Proto::Sctp, 0) {
            Ok(r) => {
                let err = reserve(LOOPBACK, Proto::Sctp, r.port()).expect_err("taken");
                assert!(matches!(err, PortError::Allocated { .. }), "{err}");
            }
            Err(err) => {
                eprintln!("this kernel has no SCTP; checking the refusal: {err}");
                assert_eq!(
                    err.to_string(),
                    "cannot reserve 127.0.0.1:0/sctp: this kernel has no SCTP support (the sctp module is not loaded)"
                );
            }
        }
    }

    #[test]
    fn picked_ports_come_from_the_ephemeral_range() {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("read ip_local_port_range");
        let mut it = text
            .split_whitespace()
            .map(|n| n.parse::<u16>().expect("port"));
        let (lo, hi) = (it.next().expect("low"), it.next().expect("high"));
        let r = reserve(None, Proto::Udp, 0).expect("reserve on every address");
        assert!(
            (lo..=hi).contains(&r.port()),
            "{} not in {lo}-{hi}",
            r.port()
        );
        let err = reserve(None, Proto::Udp, r.port()).expect_err("taken");
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 0.0.0.0:{} failed: port is already allocated",
                r.port()
            )
        );
    }
}
