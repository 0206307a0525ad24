//! Berth's nftables table: egress NAT, published ports (DNAT) and isolation between networks.
//!
//! # Why messages are written by hand
//!
//! The table is programmed over `NETLINK_NETFILTER` in batched transactions
//! (`NFNL_MSG_BATCH_BEGIN` … `END`): the kernel applies a whole batch or none of it. No crate
//! fits well: `rustables` (pure Rust) is GPL-3.0, which berth (Apache-2.0) cannot link, and
//! has no `fib` expression; `nftnl` wraps the C libraries libnftnl and libmnl, a C build and
//! link dependency on every machine for what is, here, a dozen small TLV encodings. They are
//! written against the kernel's UAPI headers (`wire`, `expr`) and sent over a rustix netlink
//! socket (`socket`); the integration tests read the result back with `nft -j`.
//!
//! # The table
//!
//! One table of family `inet` (IPv4 and IPv6 in one place), named by the caller. Nothing
//! outside it is read or changed. Its chains:
//!
//! - `prerouting` (nat, dstnat) and `output` (nat, dstnat): `fib daddr type local jump ports`,
//!   so published ports answer on every local address, from other hosts, from containers
//!   (hairpin) and from the host itself, 127.0.0.1 included.
//! - `ports`: one DNAT rule per published port, its comment the owner's name (a container),
//!   which is how [`Firewall::remove_ports`] finds them. Adding a container's ports is one
//!   transaction that appends to this chain; nothing else is listed or rewritten.
//! - `postrouting` (nat, srcnat): per network that is not internal, masquerade of its
//!   subnets leaving by any other interface (if it masquerades); masquerade of DNATed
//!   connections from a host-local source out of the bridge (127.0.0.1 reaching a container,
//!   which also needs `route_localnet=1` on the bridge); masquerade of DNATed connections
//!   from the bridge's own subnets back into it (hairpin), so replies come back through
//!   the host.
//! - `forward` (filter): established and related accepted; within one bridge accepted;
//!   internal bridges allowed nothing else; connections to published ports (DNATed)
//!   accepted, from wherever they come, as they would be through dockerd's userland proxy;
//!   from a berth bridge to another berth bridge dropped (`isolate`); everything else from or
//!   to a berth bridge accepted.
//!
//! An accept here does not override a drop in the host's own tables: a packet must pass every
//! base chain on its hook, so published ports obey the host's firewall.
//!
//! IPv6 gets the same rules for v6 subnets and v6 mappings. A v6 connection to `[::1]` cannot
//! reach a container (the kernel has no `route_localnet` for IPv6), and a mapping is DNATed
//! only within its container address's family.

mod expr;
mod socket;
mod wire;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use expr::{CmpOp, Expr, Verdict};
use socket::{Socket, TxError};
use wire::{Batch, MsgType, NLM_F_APPEND, NLM_F_CREATE};

const CHAIN_PORTS: &str = "ports";
const CHAIN_ISOLATE: &str = "isolate";

const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;
const PRIO_DSTNAT: i32 = -100;
const PRIO_FILTER: i32 = 0;
const PRIO_SRCNAT: i32 = 100;
const NF_ACCEPT: u32 = 1;

/// IFNAMSIZ less the NUL.
const MAX_IFNAME: usize = 15;
/// `nft` shows comments up to this length.
const MAX_OWNER: usize = 127;
/// NFT_NAME_MAXLEN less the NUL.
const MAX_TABLE: usize = 255;

/// What the firewall must do for one bridge network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    /// The bridge's interface name.
    pub bridge: String,
    /// The network's subnets, IPv4 and IPv6.
    pub subnets: Vec<IpNet>,
    /// An internal network reaches nothing outside its bridge, and is reached from nowhere.
    pub internal: bool,
    /// Masquerade traffic from the subnets that leaves through another interface.
    pub masquerade: bool,
}

/// The transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Proto {
    /// The IP protocol number.
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        })
    }
}

/// A protocol name that is not tcp, udp or sctp.
#[derive(Debug, thiserror::Error)]
#[error("unknown port protocol {0:?}: expected tcp, udp or sctp")]
pub struct UnknownProto(pub String);

impl FromStr for Proto {
    type Err = UnknownProto;

    fn from_str(s: &str) -> Result<Proto, UnknownProto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(UnknownProto(s.to_string())),
        }
    }
}

/// One published port: host address and port to a container's address and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address it answers on; `None` is every local address of the container
    /// address's family.
    pub host_ip: Option<IpAddr>,
    /// The port on the host (not 0: reserve one first).
    pub host_port: u16,
    /// The transport protocol.
    pub proto: Proto,
    /// The container's address on its bridge.
    pub container_ip: IpAddr,
    /// The port inside the container.
    pub container_port: u16,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.host_port)?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.host_port)?,
            None => write!(f, "*:{}", self.host_port)?,
        }
        match self.container_ip {
            IpAddr::V6(ip) => write!(f, " -> [{ip}]:{}/{}", self.container_port, self.proto),
            IpAddr::V4(ip) => write!(f, " -> {ip}:{}/{}", self.container_port, self.proto),
        }
    }
}

/// Errors of the firewall.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The table name cannot be used.
    #[error("nftables table name {name:?} is invalid: {reason}")]
    InvalidTable {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A bridge name cannot be an interface name.
    #[error("bridge name {name:?} is invalid: {reason}")]
    InvalidBridge {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An owner name cannot tag rules.
    #[error("published ports' owner {owner:?} is invalid: {reason}")]
    InvalidOwner {
        /// The name given.
        owner: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A port mapping cannot be expressed.
    #[error("published port {mapping} of {owner:?} is invalid: {reason}")]
    InvalidMapping {
        /// The owner it belongs to.
        owner: String,
        /// The mapping, as text.
        mapping: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The netlink socket could not be opened.
    #[error("open a NETLINK_NETFILTER socket for nftables table inet {table}: {source}")]
    Socket {
        /// The table.
        table: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel refused an operation, or the socket failed while doing it.
    #[error("nftables table inet {table}: {operation}: {source}")]
    Kernel {
        /// The table.
        table: String,
        /// What was being done: the chain and the rule, or the whole transaction.
        operation: String,
        /// The kernel's errno.
        source: io::Error,
    },
    /// The kernel's answers made no sense.
    #[error("nftables table inet {table}: {operation}: {detail}")]
    Protocol {
        /// The table.
        table: String,
        /// What was being done.
        operation: String,
        /// What was wrong.
        detail: String,
    },
}

impl NftError {
    /// The kernel's errno, for errors that carry one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NftError::Kernel { source, .. } | NftError::Socket { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// A rule to add: its chain, its expressions, its comment, and what it is for in words.
struct Rule {
    chain: &'static str,
    exprs: Vec<Expr>,
    comment: Option<String>,
    what: String,
}

impl Rule {
    fn new(chain: &'static str, what: impl Into<String>, parts: Vec<Vec<Expr>>) -> Rule {
        Rule {
            chain,
            exprs: parts.into_iter().flatten().collect(),
            comment: None,
            what: what.into(),
        }
    }
}

/// Berth's nftables table, and the netlink socket that programs it (opened in the network
/// namespace of the thread that called [`Firewall::new`]).
///
/// One `Firewall` per table: its methods take `&mut self`, so berthd shares it behind a
/// mutex, which also keeps a `remove_ports` listing consistent with the deletes that follow.
/// Adding the same owner twice adds its rules twice; `remove_ports` removes all of them.
pub struct Firewall {
    table: String,
    socket: Socket,
    seq: u32,
}

impl fmt::Debug for Firewall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Firewall")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Firewall {
    /// Opens the netlink socket for table `inet TABLE`; nothing is changed yet.
    pub fn new(table: &str) -> Result<Firewall, NftError> {
        validate_table(table)?;
        let socket = Socket::open().map_err(|source| NftError::Socket {
            table: table.to_string(),
            source,
        })?;
        Ok(Firewall {
            table: table.to_string(),
            socket,
            seq: initial_seq(),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the whole table in one transaction: made if missing, deleted and made anew
    /// with the rules of `networks` and every owner's `ports`.
    pub fn sync(
        &mut self,
        networks: &[NetworkRules],
        ports: &[(String, Vec<PortMapping>)],
    ) -> Result<(), NftError> {
        for network in networks {
            validate_bridge(&network.bridge)?;
        }
        let mut port_rules = Vec::new();
        for (owner, mappings) in ports {
            port_rules.extend(port_rules_of(owner, mappings)?);
        }
        let mut batch = Batch::new(self.seq);
        let table = self.table.clone();
        // Adding a table that exists is a no-op, so the delete that follows cannot fail for
        // a missing table: the pair makes "replace" out of "create or replace".
        batch.push(
            MsgType::NewTable,
            NLM_F_CREATE,
            "make sure the table exists".into(),
            |a| a.string(wire::NFTA_TABLE_NAME, &table),
        );
        batch.push(MsgType::DelTable, 0, "delete the old table".into(), |a| {
            a.string(wire::NFTA_TABLE_NAME, &table)
        });
        batch.push(
            MsgType::NewTable,
            NLM_F_CREATE,
            "add the table".into(),
            |a| a.string(wire::NFTA_TABLE_NAME, &table),
        );
        self.push_chain(&mut batch, CHAIN_PORTS, None);
        self.push_chain(&mut batch, CHAIN_ISOLATE, None);
        self.push_chain(
            &mut batch,
            "prerouting",
            Some(("nat", NF_INET_PRE_ROUTING, PRIO_DSTNAT)),
        );
        self.push_chain(
            &mut batch,
            "output",
            Some(("nat", NF_INET_LOCAL_OUT, PRIO_DSTNAT)),
        );
        self.push_chain(
            &mut batch,
            "postrouting",
            Some(("nat", NF_INET_POST_ROUTING, PRIO_SRCNAT)),
        );
        self.push_chain(
            &mut batch,
            "forward",
            Some(("filter", NF_INET_FORWARD, PRIO_FILTER)),
        );
        for rule in base_rules(networks).iter().chain(&port_rules) {
            self.push_rule(&mut batch, rule);
        }
        self.run(batch, "replace the table")
    }

    /// Publishes `owner`'s ports: one transaction appending one rule per mapping to the
    /// `ports` chain. The table must exist ([`Firewall::sync`]).
    pub fn add_ports(&mut self, owner: &str, ports: &[PortMapping]) -> Result<(), NftError> {
        let rules = port_rules_of(owner, ports)?;
        if rules.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(self.seq);
        for rule in &rules {
            self.push_rule(&mut batch, rule);
        }
        self.run(batch, &format!("publish the ports of {owner:?}"))
    }

    /// Removes `owner`'s published ports: lists the `ports` chain and deletes that owner's
    /// rules in one transaction. An owner with no rules, or a missing table, is fine.
    pub fn remove_ports(&mut self, owner: &str) -> Result<(), NftError> {
        validate_owner(owner)?;
        let operation = format!("list chain {CHAIN_PORTS} to remove the ports of {owner:?}");
        let seq = self.take_seq(1);
        let rules = match self.socket.dump_rules(&self.table, CHAIN_PORTS, seq) {
            Ok(rules) => rules,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => {
                return Ok(());
            }
            Err(source) => {
                return Err(NftError::Kernel {
                    table: self.table.clone(),
                    operation,
                    source,
                })
            }
        };
        let handles: Vec<u64> = rules
            .into_iter()
            .filter(|rule| rule.comment.as_deref() == Some(owner))
            .map(|rule| rule.handle)
            .collect();
        if handles.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(self.seq);
        for handle in handles {
            let table = &self.table;
            batch.push(
                MsgType::DelRule,
                0,
                format!("delete rule {handle} of {owner:?} from chain {CHAIN_PORTS}"),
                |a| {
                    a.string(wire::NFTA_RULE_TABLE, table);
                    a.string(wire::NFTA_RULE_CHAIN, CHAIN_PORTS);
                    a.be64(wire::NFTA_RULE_HANDLE, handle);
                },
            );
        }
        self.run(batch, &format!("remove the ports of {owner:?}"))
    }

    /// Deletes the table; a missing table is fine.
    pub fn delete(&mut self) -> Result<(), NftError> {
        let mut batch = Batch::new(self.seq);
        let table = self.table.clone();
        batch.push(MsgType::DelTable, 0, "delete the table".into(), |a| {
            a.string(wire::NFTA_TABLE_NAME, &table)
        });
        match self.run(batch, "delete the table") {
            Err(e) if e.errno() == Some(rustix::io::Errno::NOENT.raw_os_error()) => Ok(()),
            other => other,
        }
    }

    fn take_seq(&mut self, n: u32) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(n);
        seq
    }

    fn push_chain(
        &self,
        batch: &mut Batch,
        name: &'static str,
        base: Option<(&'static str, u32, i32)>,
    ) {
        let table = &self.table;
        batch.push(
            MsgType::NewChain,
            NLM_F_CREATE,
            format!("add chain {name}"),
            |a| {
                a.string(wire::NFTA_CHAIN_TABLE, table);
                a.string(wire::NFTA_CHAIN_NAME, name);
                if let Some((kind, hook, priority)) = base {
                    a.nested(wire::NFTA_CHAIN_HOOK, |a| {
                        a.be32(wire::NFTA_HOOK_HOOKNUM, hook);
                        a.be32(wire::NFTA_HOOK_PRIORITY, priority as u32);
                    });
                    a.be32(wire::NFTA_CHAIN_POLICY, NF_ACCEPT);
                    a.string(wire::NFTA_CHAIN_TYPE, kind);
                }
            },
        );
    }

    fn push_rule(&self, batch: &mut Batch, rule: &Rule) {
        let table = &self.table;
        batch.push(
            MsgType::NewRule,
            NLM_F_CREATE | NLM_F_APPEND,
            format!("add rule to chain {}: {}", rule.chain, rule.what),
            |a| {
                a.string(wire::NFTA_RULE_TABLE, table);
                a.string(wire::NFTA_RULE_CHAIN, rule.chain);
                a.nested(wire::NFTA_RULE_EXPRESSIONS, |a| {
                    for e in &rule.exprs {
                        e.write(a);
                    }
                });
                if let Some(comment) = &rule.comment {
                    a.bytes(wire::NFTA_RULE_USERDATA, &wire::comment_udata(comment));
                }
            },
        );
    }

    fn run(&mut self, batch: Batch, what: &str) -> Result<(), NftError> {
        let tx = batch.finish();
        self.seq = tx.next_seq;
        self.socket.transact(&tx).map_err(|e| match e {
            TxError::Refused { index, errno } => NftError::Kernel {
                table: self.table.clone(),
                operation: match index.and_then(|i| tx.ops.get(i)) {
                    Some(op) => format!("{what}: {op}"),
                    None => what.to_string(),
                },
                source: errno,
            },
            TxError::Io(source) => NftError::Kernel {
                table: self.table.clone(),
                operation: what.to_string(),
                source,
            },
            TxError::Protocol(detail) => NftError::Protocol {
                table: self.table.clone(),
                operation: what.to_string(),
                detail,
            },
        })
    }
}

/// Sequence numbers only need to tell this socket's requests apart; starting from the clock
/// keeps a new socket's numbers away from an old one's in `nft monitor` traces.
fn initial_seq() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

fn validate_table(name: &str) -> Result<(), NftError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_TABLE {
        Some("it is longer than 255 bytes")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("it must start with a letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some("only letters, digits, '_', '-' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NftError::InvalidTable {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn validate_bridge(name: &str) -> Result<(), NftError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IFNAME {
        Some("an interface name has at most 15 bytes")
    } else if name.contains(|c: char| c == '/' || c == '\0' || c.is_whitespace() || c == ':') {
        Some("an interface name has no '/', ':', NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NftError::InvalidBridge {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn validate_owner(owner: &str) -> Result<(), NftError> {
    let reason = if owner.is_empty() {
        Some("it is empty")
    } else if owner.len() > MAX_OWNER {
        Some("it is longer than 127 bytes")
    } else if owner.contains('\0') {
        Some("it contains NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NftError::InvalidOwner {
            owner: owner.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The DNAT rules of one owner's mappings, in chain `ports`.
fn port_rules_of(owner: &str, mappings: &[PortMapping]) -> Result<Vec<Rule>, NftError> {
    validate_owner(owner)?;
    mappings
        .iter()
        .map(|m| {
            let invalid = |reason| NftError::InvalidMapping {
                owner: owner.to_string(),
                mapping: m.to_string(),
                reason,
            };
            if m.host_port == 0 {
                return Err(invalid(
                    "host port 0 must be resolved by a reservation first",
                ));
            }
            if m.container_port == 0 {
                return Err(invalid("container port 0 is not a port"));
            }
            let mut parts = vec![expr::nfproto_of(m.container_ip)];
            if let Some(host_ip) = m.host_ip {
                if host_ip.is_ipv4() != m.container_ip.is_ipv4() {
                    return Err(invalid(
                        "host and container addresses are of different families",
                    ));
                }
                parts.push(expr::daddr(host_ip));
            }
            parts.push(expr::l4proto(m.proto.number()));
            parts.push(expr::dport(m.host_port));
            parts.push(expr::dnat(m.container_ip, m.container_port));
            let mut rule = Rule::new(CHAIN_PORTS, format!("DNAT {m} for {owner:?}"), parts);
            rule.comment = Some(owner.to_string());
            Ok(rule)
        })
        .collect()
}

/// The rules that follow from the networks (everything but the published ports).
fn base_rules(networks: &[NetworkRules]) -> Vec<Rule> {
    let mut rules = vec![
        Rule::new(
            "prerouting",
            "published ports on local addresses",
            vec![
                expr::fib_daddr_local(),
                vec![Expr::Verdict(Verdict::Jump(CHAIN_PORTS))],
            ],
        ),
        Rule::new(
            "output",
            "published ports on local addresses",
            vec![
                expr::fib_daddr_local(),
                vec![Expr::Verdict(Verdict::Jump(CHAIN_PORTS))],
            ],
        ),
    ];
    let masq = || vec![Expr::Masquerade];
    for n in networks.iter().filter(|n| !n.internal) {
        let b = n.bridge.as_str();
        if n.masquerade {
            for &subnet in &n.subnets {
                rules.push(Rule::new(
                    "postrouting",
                    format!("masquerade {subnet} leaving by other than {b}"),
                    vec![
                        expr::nfproto_of(subnet.addr()),
                        expr::saddr_in(subnet),
                        expr::oifname(CmpOp::Neq, b),
                        masq(),
                    ],
                ));
            }
        }
        rules.push(Rule::new(
            "postrouting",
            format!("masquerade DNATed connections from host addresses into {b}"),
            vec![
                expr::oifname(CmpOp::Eq, b),
                expr::ct_status(expr::CT_STATUS_DNAT),
                expr::fib_saddr_local(),
                masq(),
            ],
        ));
        for &subnet in &n.subnets {
            rules.push(Rule::new(
                "postrouting",
                format!("masquerade DNATed connections from {subnet} back into {b} (hairpin)"),
                vec![
                    expr::nfproto_of(subnet.addr()),
                    expr::saddr_in(subnet),
                    expr::oifname(CmpOp::Eq, b),
                    expr::ct_status(expr::CT_STATUS_DNAT),
                    masq(),
                ],
            ));
        }
    }
    let accept = || vec![Expr::Verdict(Verdict::Accept)];
    let drop = || vec![Expr::Verdict(Verdict::Drop)];
    rules.push(Rule::new(
        "forward",
        "accept established and related",
        vec![expr::ct_state(expr::CT_STATE_ESTABLISHED_RELATED), accept()],
    ));
    for n in networks {
        let b = n.bridge.as_str();
        rules.push(Rule::new(
            "forward",
            format!("accept within {b}"),
            vec![
                expr::iifname(CmpOp::Eq, b),
                expr::oifname(CmpOp::Eq, b),
                accept(),
            ],
        ));
    }
    for n in networks.iter().filter(|n| n.internal) {
        let b = n.bridge.as_str();
        rules.push(Rule::new(
            "forward",
            format!("internal {b} sends nothing out"),
            vec![expr::iifname(CmpOp::Eq, b), drop()],
        ));
        rules.push(Rule::new(
            "forward",
            format!("internal {b} receives nothing from out"),
            vec![expr::oifname(CmpOp::Eq, b), drop()],
        ));
    }
    if networks.iter().any(|n| !n.internal) {
        // A published port is open to everyone who reaches the host, containers of other
        // networks included (as through dockerd's userland proxy): DNATed connections pass
        // the isolation below.
        rules.push(Rule::new(
            "forward",
            "accept connections to published ports",
            vec![expr::ct_status(expr::CT_STATUS_DNAT), accept()],
        ));
    }
    for n in networks.iter().filter(|n| !n.internal) {
        let b = n.bridge.as_str();
        rules.push(Rule::new(
            "forward",
            format!("isolate {b} from other berth bridges"),
            vec![
                expr::iifname(CmpOp::Eq, b),
                vec![Expr::Verdict(Verdict::Jump(CHAIN_ISOLATE))],
            ],
        ));
    }
    for n in networks.iter().filter(|n| !n.internal) {
        let b = n.bridge.as_str();
        rules.push(Rule::new(
            "forward",
            format!("accept to {b}"),
            vec![expr::oifname(CmpOp::Eq, b), accept()],
        ));
    }
    for n in networks {
        let b = n.bridge.as_str();
        rules.push(Rule::new(
            CHAIN_ISOLATE,
            format!("drop from one berth bridge into {b}"),
            vec![expr::oifname(CmpOp::Eq, b), drop()],
        ));
    }
    if networks.iter().any(|n| !n.internal) {
        rules.push(Rule::new(
            CHAIN_ISOLATE,
            "accept the rest from berth bridges",
            vec![accept()],
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnets: &[&str], internal: bool) -> NetworkRules {
        NetworkRules {
            bridge: bridge.into(),
            subnets: subnets.iter().map(|s| s.parse().expect("subnet")).collect(),
            internal,
            masquerade: true,
        }
    }

    #[test]
    fn a_firewall_moves_between_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Firewall>();
    }

    #[test]
    fn proto_round_trips_through_text() {
        for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            assert_eq!(p.to_string().parse::<Proto>().expect("parse"), p);
        }
        assert_eq!("TCP".parse::<Proto>().expect("parse"), Proto::Tcp);
        let err = "icmp"
            .parse::<Proto>()
            .expect_err("icmp is no port protocol");
        assert_eq!(
            err.to_string(),
            "unknown port protocol \"icmp\": expected tcp, udp or sctp"
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_table("berth").is_ok());
        assert!(validate_table("berth_t1-2.x").is_ok());
        assert!(validate_table("").is_err());
        assert!(validate_table("1berth").is_err());
        assert!(validate_table("ber th").is_err());
        assert!(validate_bridge("br-0123456789ab").is_ok());
        assert!(validate_bridge("br-0123456789abc").is_err());
        assert!(validate_owner(&"a".repeat(128)).is_err());
        let err = validate_table("a;b").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "nftables table name \"a;b\" is invalid: only letters, digits, '_', '-' and '.' are allowed"
        );
    }

    #[test]
    fn mappings_of_mixed_families_are_refused() {
        let m = PortMapping {
            host_ip: Some("::1".parse().expect("ip")),
            host_port: 8080,
            proto: Proto::Tcp,
            container_ip: "10.0.0.2".parse().expect("ip"),
            container_port: 80,
        };
        let err = port_rules_of("web", &[m]).err().expect("refused");
        assert_eq!(
            err.to_string(),
            "published port [::1]:8080 -> 10.0.0.2:80/tcp of \"web\" is invalid: host and container addresses are of different families"
        );
    }

    #[test]
    fn internal_networks_get_no_nat() {
        let rules = base_rules(&[
            net("br-a", &["10.1.0.0/24", "fd00:a::/64"], false),
            net("br-i", &["10.2.0.0/24"], true),
        ]);
        let post: Vec<_> = rules
            .iter()
            .filter(|r| r.chain == "postrouting")
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(post.len(), 5, "{post:?}");
        assert!(post.iter().all(|w| w.contains("br-a")));
        let isolate = rules.iter().filter(|r| r.chain == CHAIN_ISOLATE).count();
        assert_eq!(isolate, 3);
    }
}
