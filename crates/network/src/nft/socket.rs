//! The NETLINK_NETFILTER socket: sends a transaction and collects the kernel's answers, dumps
//! the rules of one chain.

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::wire::{self, Finished, MsgType, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP};

/// Receive buffer: dump parts are at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// Below this, the socket's default send buffer (about 208 KiB) holds the request.
const DEFAULT_BUFFERS: usize = 128 * 1024;

/// Why a transaction failed.
pub(super) enum TxError {
    /// The kernel refused message `index` (an index into the batch's `ops`), or the batch as a
    /// whole when `index` is `None`.
    Refused {
        index: Option<usize>,
        errno: io::Error,
    },
    /// The socket itself failed.
    Io(io::Error),
    /// The kernel's answers did not add up.
    Protocol(String),
}

/// One rule of a dumped chain.
pub(super) struct DumpedRule {
    pub(super) handle: u64,
    pub(super) comment: Option<String>,
}

pub(super) struct Socket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Socket {
    pub(super) fn open() -> io::Result<Socket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::NETFILTER),
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        rustix::net::connect(&fd, &SocketAddrNetlink::new(0, 0))?;
        Ok(Socket {
            fd,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends one transaction. The kernel runs a netlink request inside `sendmsg`, so when
    /// `send` returns every answer is already queued: they are read without blocking. The
    /// answers are an error for each refused message, or the acknowledgement of the last
    /// message once everything committed.
    pub(super) fn transact(&mut self, tx: &Finished) -> Result<(), TxError> {
        self.drain();
        let count = tx.ops.len();
        let (bytes, first_seq) = (&tx.bytes, tx.first_seq);
        if bytes.len() > DEFAULT_BUFFERS {
            // The whole batch must fit in one skb. SO_SNDBUFFORCE needs CAP_NET_ADMIN, which
            // changing nftables needs anyway.
            rustix::net::sockopt::set_socket_send_buffer_size_force(&self.fd, bytes.len() * 2)
                .map_err(|e| TxError::Io(e.into()))?;
        }
        let sent = rustix::net::send(&self.fd, bytes, SendFlags::empty())
            .map_err(|e| TxError::Io(e.into()))?;
        if sent != bytes.len() {
            return Err(TxError::Protocol(format!(
                "the kernel took {sent} of the transaction's {} bytes",
                bytes.len()
            )));
        }
        // BEGIN is first_seq, message i is first_seq + 1 + i, END is first_seq + count + 1.
        let last = first_seq.wrapping_add(count as u32);
        let mut committed = false;
        let mut first_error: Option<TxError> = None;
        loop {
            let n = match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::DONTWAIT) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::NOBUFS) => {
                    // So many messages were refused that their errors overflowed the
                    // socket: the transaction did not commit.
                    first_error.get_or_insert(TxError::Protocol(
                        "the kernel refused so many messages that its errors were lost".into(),
                    ));
                    continue;
                }
                Err(e) => return Err(TxError::Io(e.into())),
            };
            for reply in wire::replies(&self.buf[..n]) {
                if reply.ty != NLMSG_ERROR {
                    continue;
                }
                let offset = reply.seq.wrapping_sub(first_seq);
                if offset > count as u32 + 1 {
                    continue; // an answer to an earlier request
                }
                match wire::error_code(reply.payload) {
                    Some(0) => committed |= reply.seq == last,
                    Some(code) => {
                        if first_error.is_none() {
                            let index = (offset >= 1 && (offset as usize) <= count)
                                .then(|| offset as usize - 1);
                            first_error = Some(TxError::Refused {
                                index,
                                errno: io::Error::from_raw_os_error(-code),
                            });
                        }
                    }
                    None => {
                        first_error
                            .get_or_insert(TxError::Protocol("a truncated error message".into()));
                    }
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        if !committed {
            return Err(TxError::Protocol(
                "the kernel neither acknowledged nor refused the transaction".into(),
            ));
        }
        Ok(())
    }

    /// Discards whatever an earlier, failed exchange left unread.
    fn drain(&mut self) {
        loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => break,
                Ok(_) | Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// Lists the rules of `table`'s `chain`: handle and comment of each.
    pub(super) fn dump_rules(
        &mut self,
        table: &str,
        chain: &str,
        seq: u32,
    ) -> io::Result<Vec<DumpedRule>> {
        let request = wire::request(MsgType::GetRule, NLM_F_DUMP, seq, |a| {
            a.string(wire::NFTA_RULE_TABLE, table);
            a.string(wire::NFTA_RULE_CHAIN, chain);
        });
        self.drain();
        rustix::net::send(&self.fd, &request, SendFlags::empty())?;
        let mut rules = Vec::new();
        loop {
            let n = match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the netlink socket closed during a dump",
                ));
            }
            for reply in wire::replies(&self.buf[..n]) {
                if reply.seq != seq {
                    continue;
                }
                match reply.ty {
                    NLMSG_DONE => return Ok(rules),
                    NLMSG_ERROR => {
                        let code = wire::error_code(reply.payload).unwrap_or(-libc_eproto());
                        if code == 0 {
                            continue;
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    ty if ty == MsgType::NewRule.nlmsg_type() => {
                        // struct nfgenmsg precedes the attributes.
                        let attrs = reply.payload.get(4..).unwrap_or_default();
                        let mut rule = DumpedRule {
                            handle: 0,
                            comment: None,
                        };
                        for (ty, value) in wire::attrs(attrs) {
                            match ty {
                                wire::NFTA_RULE_HANDLE => {
                                    if let Ok(bytes) = <[u8; 8]>::try_from(value) {
                                        rule.handle = u64::from_be_bytes(bytes);
                                    }
                                }
                                wire::NFTA_RULE_USERDATA => {
                                    rule.comment = wire::udata_comment(value).map(str::to_owned);
                                }
                                _ => {}
                            }
                        }
                        rules.push(rule);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// EPROTO, for an error message too short to carry its errno.
fn libc_eproto() -> i32 {
    rustix::io::Errno::PROTO.raw_os_error()
}
