//! nf_tables expressions, the instructions of a rule, and the matches berth builds from them.
//!
//! Each match mirrors what `nft` itself emits for the same rule text (`nft --debug=netlink`
//! shows it), so `nft list` prints berth's rules in their familiar form.

use std::net::IpAddr;

use ipnet::IpNet;

use super::wire::{Attrs, NFPROTO_IPV4, NFPROTO_IPV6};

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// `NFT_REG_1` and `NFT_REG_2`, the 16-byte registers.
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const REG_VERDICT: u32 = 0;

const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const META_IIFNAME: u32 = 6;
const META_OIFNAME: u32 = 7;

const CT_STATE: u32 = 0;
const CT_STATUS: u32 = 2;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)`.
pub(super) const CT_STATE_ESTABLISHED_RELATED: u32 = 0x2 | 0x4;
/// `IPS_DST_NAT`: the connection was DNATed.
pub(super) const CT_STATUS_DNAT: u32 = 0x20;

const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;

const FIB_F_SADDR: u32 = 1;
const FIB_F_DADDR: u32 = 2;
const FIB_RESULT_ADDRTYPE: u32 = 3;
/// `RTN_LOCAL`: the address is one of this host's.
const RTN_LOCAL: u32 = 2;

const NAT_DNAT: u32 = 1;

const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;

/// The comparison of a `cmp` expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq = 0,
    Neq = 1,
}

/// What a rule does with a packet that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Accept,
    Drop,
    Jump(&'static str),
}

/// One nf_tables expression. Loads write register 1 unless said otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr {
    Meta(u32),
    Cmp(CmpOp, Vec<u8>),
    Payload { base: u32, offset: u32, len: u32 },
    Bitwise { len: u32, mask: Vec<u8> },
    Ct(u32),
    Fib(u32),
    Immediate { reg: u32, data: Vec<u8> },
    Verdict(Verdict),
    Dnat { family: u8, with_port: bool },
    Masquerade,
}

impl Expr {
    pub(super) fn write(&self, a: &mut Attrs<'_>) {
        a.nested(NFTA_LIST_ELEM, |a| {
            a.string(NFTA_EXPR_NAME, self.name());
            a.nested(NFTA_EXPR_DATA, |a| self.write_data(a));
        });
    }

    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) => "meta",
            Expr::Cmp(..) => "cmp",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Ct(_) => "ct",
            Expr::Fib(_) => "fib",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
        }
    }

    fn write_data(&self, a: &mut Attrs<'_>) {
        match self {
            Expr::Meta(key) => {
                a.be32(1, REG_1); // NFTA_META_DREG
                a.be32(2, *key); // NFTA_META_KEY
            }
            Expr::Cmp(op, data) => {
                a.be32(1, REG_1); // NFTA_CMP_SREG
                a.be32(2, *op as u32); // NFTA_CMP_OP
                a.nested(3, |a| a.bytes(NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
            }
            Expr::Payload { base, offset, len } => {
                a.be32(1, REG_1); // NFTA_PAYLOAD_DREG
                a.be32(2, *base);
                a.be32(3, *offset);
                a.be32(4, *len);
            }
            Expr::Bitwise { len, mask } => {
                a.be32(1, REG_1); // NFTA_BITWISE_SREG
                a.be32(2, REG_1); // NFTA_BITWISE_DREG
                a.be32(3, *len);
                a.nested(4, |a| a.bytes(NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
                let xor = vec![0; mask.len()];
                a.nested(5, |a| a.bytes(NFTA_DATA_VALUE, &xor)); // NFTA_BITWISE_XOR
            }
            Expr::Ct(key) => {
                a.be32(1, REG_1); // NFTA_CT_DREG
                a.be32(2, *key); // NFTA_CT_KEY
            }
            Expr::Fib(flags) => {
                a.be32(1, REG_1); // NFTA_FIB_DREG
                a.be32(2, FIB_RESULT_ADDRTYPE); // NFTA_FIB_RESULT
                a.be32(3, *flags); // NFTA_FIB_FLAGS
            }
            Expr::Immediate { reg, data } => {
                a.be32(1, *reg); // NFTA_IMMEDIATE_DREG
                a.nested(2, |a| a.bytes(NFTA_DATA_VALUE, data)); // NFTA_IMMEDIATE_DATA
            }
            Expr::Verdict(verdict) => {
                a.be32(1, REG_VERDICT);
                a.nested(2, |a| {
                    a.nested(NFTA_DATA_VERDICT, |a| {
                        let (code, chain) = match verdict {
                            Verdict::Accept => (NF_ACCEPT, None),
                            Verdict::Drop => (NF_DROP, None),
                            Verdict::Jump(chain) => (NFT_JUMP, Some(*chain)),
                        };
                        a.be32(NFTA_VERDICT_CODE, code as u32);
                        if let Some(chain) = chain {
                            a.string(NFTA_VERDICT_CHAIN, chain);
                        }
                    })
                });
            }
            Expr::Dnat { family, with_port } => {
                a.be32(1, NAT_DNAT); // NFTA_NAT_TYPE
                a.be32(2, u32::from(*family)); // NFTA_NAT_FAMILY
                a.be32(3, REG_1); // NFTA_NAT_REG_ADDR_MIN
                if *with_port {
                    a.be32(5, REG_2); // NFTA_NAT_REG_PROTO_MIN
                }
            }
            Expr::Masquerade => {}
        }
    }
}

fn family_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => NFPROTO_IPV4,
        IpAddr::V6(_) => NFPROTO_IPV6,
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// `meta nfproto ipv4|ipv6`: payload offsets below only make sense for one family.
pub(super) fn nfproto(family: u8) -> Vec<Expr> {
    vec![Expr::Meta(META_NFPROTO), Expr::Cmp(CmpOp::Eq, vec![family])]
}

/// `meta nfproto` of the family `ip` belongs to.
pub(super) fn nfproto_of(ip: IpAddr) -> Vec<Expr> {
    nfproto(family_of(ip))
}

/// `meta l4proto N`.
pub(super) fn l4proto(number: u8) -> Vec<Expr> {
    vec![Expr::Meta(META_L4PROTO), Expr::Cmp(CmpOp::Eq, vec![number])]
}

/// `th dport N` (the destination port sits at the same offset in TCP, UDP and SCTP).
pub(super) fn dport(port: u16) -> Vec<Expr> {
    vec![
        Expr::Payload {
            base: PAYLOAD_TRANSPORT,
            offset: 2,
            len: 2,
        },
        Expr::Cmp(CmpOp::Eq, port.to_be_bytes().to_vec()),
    ]
}

/// `ip daddr A` or `ip6 daddr A` (after an nfproto match).
pub(super) fn daddr(ip: IpAddr) -> Vec<Expr> {
    let (offset, len) = match ip {
        IpAddr::V4(_) => (16, 4),
        IpAddr::V6(_) => (24, 16),
    };
    vec![
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset,
            len,
        },
        Expr::Cmp(CmpOp::Eq, ip_bytes(ip)),
    ]
}

/// `ip saddr NET` or `ip6 saddr NET` (after an nfproto match): only the prefix's bytes are
/// loaded, and masked when the prefix ends inside a byte.
pub(super) fn saddr_in(net: IpNet) -> Vec<Expr> {
    let offset = match net {
        IpNet::V4(_) => 12,
        IpNet::V6(_) => 8,
    };
    let prefix = usize::from(net.prefix_len());
    let nbytes = prefix.div_ceil(8);
    if nbytes == 0 {
        return Vec::new();
    }
    let network = ip_bytes(net.network());
    let mask = ip_bytes(net.netmask());
    let mut out = vec![Expr::Payload {
        base: PAYLOAD_NETWORK,
        offset,
        len: nbytes as u32,
    }];
    if prefix & 7 != 0 {
        out.push(Expr::Bitwise {
            len: nbytes as u32,
            mask: mask[..nbytes].to_vec(),
        });
    }
    out.push(Expr::Cmp(CmpOp::Eq, network[..nbytes].to_vec()));
    out
}

fn ifname(key: u32, op: CmpOp, name: &str) -> Vec<Expr> {
    // The kernel loads the whole IFNAMSIZ buffer, NUL-padded.
    let mut data = vec![0u8; 16];
    data[..name.len()].copy_from_slice(name.as_bytes());
    vec![Expr::Meta(key), Expr::Cmp(op, data)]
}

/// `iifname NAME` / `iifname != NAME`.
pub(super) fn iifname(op: CmpOp, name: &str) -> Vec<Expr> {
    ifname(META_IIFNAME, op, name)
}

/// `oifname NAME` / `oifname != NAME`.
pub(super) fn oifname(op: CmpOp, name: &str) -> Vec<Expr> {
    ifname(META_OIFNAME, op, name)
}

fn ct_bits(key: u32, bits: u32) -> Vec<Expr> {
    vec![
        Expr::Ct(key),
        Expr::Bitwise {
            len: 4,
            mask: bits.to_ne_bytes().to_vec(),
        },
        Expr::Cmp(CmpOp::Neq, vec![0; 4]),
    ]
}

/// `ct state BITS` (any of them).
pub(super) fn ct_state(bits: u32) -> Vec<Expr> {
    ct_bits(CT_STATE, bits)
}

/// `ct status BITS` (any of them).
pub(super) fn ct_status(bits: u32) -> Vec<Expr> {
    ct_bits(CT_STATUS, bits)
}

/// `fib daddr type local`.
pub(super) fn fib_daddr_local() -> Vec<Expr> {
    vec![
        Expr::Fib(FIB_F_DADDR),
        Expr::Cmp(CmpOp::Eq, RTN_LOCAL.to_ne_bytes().to_vec()),
    ]
}

/// `fib saddr type local`.
pub(super) fn fib_saddr_local() -> Vec<Expr> {
    vec![
        Expr::Fib(FIB_F_SADDR),
        Expr::Cmp(CmpOp::Eq, RTN_LOCAL.to_ne_bytes().to_vec()),
    ]
}

/// `dnat ip to A:P` / `dnat ip6 to [A]:P`.
pub(super) fn dnat(ip: IpAddr, port: u16) -> Vec<Expr> {
    vec![
        Expr::Immediate {
            reg: REG_1,
            data: ip_bytes(ip),
        },
        Expr::Immediate {
            reg: REG_2,
            data: port.to_be_bytes().to_vec(),
        },
        Expr::Dnat {
            family: family_of(ip),
            with_port: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_aligned_prefixes_compare_only_their_bytes() {
        let net: IpNet = "172.30.0.0/16".parse().expect("net");
        assert_eq!(
            saddr_in(net),
            vec![
                Expr::Payload {
                    base: PAYLOAD_NETWORK,
                    offset: 12,
                    len: 2
                },
                Expr::Cmp(CmpOp::Eq, vec![172, 30]),
            ]
        );
    }

    #[test]
    fn other_prefixes_are_masked() {
        let net: IpNet = "10.1.2.16/28".parse().expect("net");
        let exprs = saddr_in(net);
        assert_eq!(
            exprs[1],
            Expr::Bitwise {
                len: 4,
                mask: vec![255, 255, 255, 0xf0]
            }
        );
        assert_eq!(exprs[2], Expr::Cmp(CmpOp::Eq, vec![10, 1, 2, 16]));
        let v6: IpNet = "fd00:1::/60".parse().expect("net");
        let exprs = saddr_in(v6);
        assert_eq!(
            exprs[0],
            Expr::Payload {
                base: PAYLOAD_NETWORK,
                offset: 8,
                len: 8
            }
        );
    }

    #[test]
    fn interface_names_are_padded_to_ifnamsiz() {
        let exprs = oifname(CmpOp::Neq, "br-x");
        assert_eq!(
            exprs[1],
            Expr::Cmp(CmpOp::Neq, b"br-x\0\0\0\0\0\0\0\0\0\0\0\0".to_vec())
        );
    }
}
