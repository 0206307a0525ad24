//! The bytes of nf_tables netlink messages: headers, attributes and batches.
//!
//! The constants are the kernel's UAPI (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`,
//! `linux/netfilter/nf_tables.h`); attribute values that the kernel reads with `nla_get_be*`
//! are big-endian, register contents are written in the byte order the packet or the kernel
//! expression produces them.

pub(super) const NLMSG_HDRLEN: usize = 16;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;

pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const NLM_F_CREATE: u16 = 0x400;
pub(super) const NLM_F_APPEND: u16 = 0x800;

const NLA_F_NESTED: u16 = 0x8000;

const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFPROTO_INET`: berth's table serves IPv4 and IPv6 at once.
pub(super) const NFPROTO_INET: u8 = 1;
pub(super) const NFPROTO_IPV4: u8 = 2;
pub(super) const NFPROTO_IPV6: u8 = 10;

/// `enum nf_tables_msg_types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MsgType {
    NewTable = 0,
    DelTable = 2,
    NewChain = 3,
    NewRule = 6,
    GetRule = 7,
    DelRule = 8,
}

impl MsgType {
    pub(super) fn nlmsg_type(self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | self as u16
    }
}

pub(super) const NFTA_TABLE_NAME: u16 = 1;

pub(super) const NFTA_CHAIN_TABLE: u16 = 1;
pub(super) const NFTA_CHAIN_NAME: u16 = 3;
pub(super) const NFTA_CHAIN_HOOK: u16 = 4;
pub(super) const NFTA_CHAIN_POLICY: u16 = 5;
pub(super) const NFTA_CHAIN_TYPE: u16 = 7;
pub(super) const NFTA_HOOK_HOOKNUM: u16 = 1;
pub(super) const NFTA_HOOK_PRIORITY: u16 = 2;

pub(super) const NFTA_RULE_TABLE: u16 = 1;
pub(super) const NFTA_RULE_CHAIN: u16 = 2;
pub(super) const NFTA_RULE_HANDLE: u16 = 3;
pub(super) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(super) const NFTA_RULE_USERDATA: u16 = 7;

/// `NFTNL_UDATA_RULE_COMMENT`: the TLV type that `nft` shows as a rule's `comment`.
pub(super) const UDATA_RULE_COMMENT: u8 = 0;

/// Appends netlink attributes to a buffer, keeping the 4-byte alignment the kernel expects.
pub(super) struct Attrs<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Attrs<'a> {
    pub(super) fn new(buf: &'a mut Vec<u8>) -> Attrs<'a> {
        Attrs { buf }
    }

    fn pad(&mut self) {
        while self.buf.len() & 3 != 0 {
            self.buf.push(0);
        }
    }

    pub(super) fn bytes(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        // Attribute payloads here are names, addresses and short lists of expressions; the
        // caller validated their lengths, so this only guards against a logic error.
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// A NUL-terminated string, as `nla_strcmp`/`nla_strscpy` read it.
    pub(super) fn string(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.bytes(ty, &data);
    }

    pub(super) fn be32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }

    pub(super) fn be64(&mut self, ty: u16, v: u64) {
        self.bytes(ty, &v.to_be_bytes());
    }

    /// Writes a nested attribute whose content `f` appends.
    pub(super) fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(&mut Attrs { buf: self.buf });
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// One transaction: BEGIN, the messages, END, in one buffer sent with one `sendmsg`, so the
/// kernel applies all of it or none of it. `ops[i]` says in words what message `i` does, so an
/// error can name it.
///
/// The kernel reports every refused message; only the last message asks for an
/// acknowledgement, which the kernel sends once the whole transaction committed. (An
/// acknowledgement per message would cost a socket buffer's worth of skbs per few hundred
/// rules and overflow it on a large replace.)
pub(super) struct Batch {
    buf: Vec<u8>,
    first_seq: u32,
    next_seq: u32,
    last_msg: Option<usize>,
    pub(super) ops: Vec<String>,
}

impl Batch {
    pub(super) fn new(first_seq: u32) -> Batch {
        let mut batch = Batch {
            buf: Vec::with_capacity(1024),
            first_seq,
            next_seq: first_seq,
            last_msg: None,
            ops: Vec::new(),
        };
        batch.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, |_| {});
        batch
    }

    fn header(&mut self, ty: u16, flags: u16, family: u8, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.buf.len();
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version (NFNETLINK_V0), res_id (big-endian). The batch
        // markers carry the subsystem in res_id.
        let res_id = if ty == NFNL_MSG_BATCH_BEGIN || ty == NFNL_MSG_BATCH_END {
            NFNL_SUBSYS_NFTABLES
        } else {
            0
        };
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        f(&mut Attrs::new(&mut self.buf));
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Adds one nf_tables message to the transaction.
    pub(super) fn push(
        &mut self,
        msg: MsgType,
        extra_flags: u16,
        op: String,
        f: impl FnOnce(&mut Attrs<'_>),
    ) {
        self.ops.push(op);
        self.last_msg = Some(self.buf.len());
        self.header(
            msg.nlmsg_type(),
            NLM_F_REQUEST | extra_flags,
            NFPROTO_INET,
            f,
        );
    }

    /// Closes the transaction; its last message asks for the acknowledgement.
    pub(super) fn finish(mut self) -> Finished {
        if let Some(at) = self.last_msg {
            let flags = u16::from_ne_bytes([self.buf[at + 6], self.buf[at + 7]]) | NLM_F_ACK;
            self.buf[at + 6..at + 8].copy_from_slice(&flags.to_ne_bytes());
        }
        self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, |_| {});
        Finished {
            bytes: self.buf,
            ops: self.ops,
            first_seq: self.first_seq,
            next_seq: self.next_seq,
        }
    }
}

/// A closed transaction, ready to send.
pub(super) struct Finished {
    pub(super) bytes: Vec<u8>,
    /// What each message between BEGIN and END does, in words.
    pub(super) ops: Vec<String>,
    /// The sequence number of BEGIN; message `i` has `first_seq + 1 + i`.
    pub(super) first_seq: u32,
    /// The first sequence number after END.
    pub(super) next_seq: u32,
}

/// A single request outside a batch (a dump).
pub(super) fn request(
    msg: MsgType,
    flags: u16,
    seq: u32,
    f: impl FnOnce(&mut Attrs<'_>),
) -> Vec<u8> {
    let mut batch = Batch {
        buf: Vec::with_capacity(128),
        first_seq: seq,
        next_seq: seq,
        last_msg: None,
        ops: Vec::new(),
    };
    batch.header(msg.nlmsg_type(), NLM_F_REQUEST | flags, NFPROTO_INET, f);
    batch.buf
}

/// One message from the kernel.
pub(super) struct Reply<'a> {
    pub(super) ty: u16,
    pub(super) seq: u32,
    pub(super) payload: &'a [u8],
}

/// Splits a datagram into netlink messages; stops at a truncated one.
pub(super) fn replies(mut data: &[u8]) -> impl Iterator<Item = Reply<'_>> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return None;
        }
        let ty = u16::from_ne_bytes(data[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(data[8..12].try_into().ok()?);
        let payload = &data[NLMSG_HDRLEN..len];
        let aligned = (len + 3) & !3;
        data = &data[aligned.min(data.len())..];
        Some(Reply { ty, seq, payload })
    })
}

/// The errno of an `NLMSG_ERROR` payload: 0 is an acknowledgement.
pub(super) fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?))
}

/// Iterates over `(type, value)` of the attributes in `data` (the nested flag removed).
pub(super) fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & !NLA_F_NESTED;
        if len < 4 || len > data.len() {
            return None;
        }
        let value = &data[4..len];
        let aligned = (len + 3) & !3;
        data = &data[aligned.min(data.len())..];
        Some((ty, value))
    })
}

/// The rule comment `nft` shows: a TLV of type `NFTNL_UDATA_RULE_COMMENT` with the text and
/// its NUL.
pub(super) fn comment_udata(comment: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(comment.len() + 3);
    out.push(UDATA_RULE_COMMENT);
    out.push(u8::try_from(comment.len() + 1).unwrap_or(u8::MAX));
    out.extend_from_slice(comment.as_bytes());
    out.push(0);
    out
}

/// The comment inside a rule's user data, if it has one.
pub(super) fn udata_comment(mut udata: &[u8]) -> Option<&str> {
    while udata.len() >= 2 {
        let (ty, len) = (udata[0], udata[1] as usize);
        let value = udata.get(2..2 + len)?;
        if ty == UDATA_RULE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return std::str::from_utf8(text).ok();
        }
        udata = &udata[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let mut buf = Vec::new();
        let mut a = Attrs::new(&mut buf);
        a.string(NFTA_TABLE_NAME, "abc");
        a.string(NFTA_TABLE_NAME, "abcd");
        assert_eq!(buf.len(), 8 + 12);
        assert_eq!(&buf[0..4], &[8, 0, 1, 0]);
        assert_eq!(&buf[4..8], b"abc\0");
        assert_eq!(&buf[8..12], &[9, 0, 1, 0]);
        let parsed: Vec<_> = attrs(&buf).collect();
        assert_eq!(parsed, vec![(1, &b"abc\0"[..]), (1, &b"abcd\0"[..])]);
    }

    #[test]
    fn nested_attributes_carry_their_length_and_flag() {
        let mut buf = Vec::new();
        Attrs::new(&mut buf).nested(4, |a| a.be32(1, 7));
        assert_eq!(&buf[0..4], &[12, 0, 4, 0x80]);
        assert_eq!(&buf[8..12], &[0, 0, 0, 7]);
    }

    #[test]
    fn a_batch_is_framed_by_begin_and_end() {
        let mut batch = Batch::new(100);
        batch.push(MsgType::NewTable, NLM_F_CREATE, "add table".into(), |a| {
            a.string(NFTA_TABLE_NAME, "t")
        });
        batch.push(MsgType::DelTable, 0, "delete table".into(), |a| {
            a.string(NFTA_TABLE_NAME, "t")
        });
        let done = batch.finish();
        assert_eq!((done.first_seq, done.next_seq), (100, 104));
        assert_eq!(done.ops.len(), 2);
        let buf = done.bytes;
        let msgs: Vec<_> = replies(&buf).map(|r| (r.ty, r.seq)).collect();
        assert_eq!(
            msgs,
            vec![
                (0x10, 100),
                (10 << 8, 101),
                ((10 << 8) | 2, 102),
                (0x11, 103)
            ]
        );
        // Only the last message asks for an acknowledgement.
        let flags: Vec<u16> = {
            let mut at = 0;
            let mut out = Vec::new();
            while at < buf.len() {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("len")) as usize;
                out.push(u16::from_ne_bytes([buf[at + 6], buf[at + 7]]));
                at += len;
            }
            out
        };
        assert_eq!(
            flags,
            vec![
                NLM_F_REQUEST,
                NLM_F_REQUEST | NLM_F_CREATE,
                NLM_F_REQUEST | NLM_F_ACK,
                NLM_F_REQUEST
            ]
        );
        // BEGIN names the nf_tables subsystem in res_id, big-endian.
        assert_eq!(&buf[16..20], &[0, 0, 0, 10]);
    }

    #[test]
    fn comments_round_trip_through_user_data() {
        let udata = comment_udata("web-1");
        assert_eq!(udata, b"\x00\x06web-1\x00");
        assert_eq!(udata_comment(&udata), Some("web-1"));
        assert_eq!(udata_comment(b"\x01\x02ab\x00\x03xy\x00"), Some("xy"));
        assert_eq!(udata_comment(b"\x00\x09short"), None);
    }
}
