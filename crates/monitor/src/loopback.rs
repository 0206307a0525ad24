//! Brings the loopback interface of a container's own network namespace up, as dockerd does
//! for every container (a new namespace starts with `lo` down). One netlink message
//! (RTM_NEWLINK, index 1, IFF_UP) sent from inside the namespace: the monitor, which has one
//! thread, enters the namespace with setns and returns to its own; no helper binary.

use std::fs::File;

use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use rustix::net::{netlink, recv, sendto, socket, AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::MonitorError;

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFF_UP: u32 = 1;
/// The loopback interface is the first link of every network namespace.
const LO_INDEX: i32 = 1;

/// The RTM_NEWLINK request: nlmsghdr then ifinfomsg, 32 bytes, native endian.
fn request() -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&32u32.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: family 0 (AF_UNSPEC), pad, type 0, index, flags, change mask.
    m[20..24].copy_from_slice(&LO_INDEX.to_ne_bytes());
    m[24..28].copy_from_slice(&IFF_UP.to_ne_bytes());
    m[28..32].copy_from_slice(&IFF_UP.to_ne_bytes());
    m
}

fn set_lo_up() -> Result<(), MonitorError> {
    let sys = |op: &str, e: rustix::io::Errno| {
        MonitorError::sys(
            op.to_string(),
            nix::errno::Errno::from_raw(e.raw_os_error()),
        )
    };
    let fd = socket(AddressFamily::NETLINK, SocketType::RAW, None) // NETLINK_ROUTE is protocol 0
        .map_err(|e| sys("socket(AF_NETLINK)", e))?;
    sendto(
        &fd,
        &request(),
        SendFlags::empty(),
        &netlink::SocketAddrNetlink::new(0, 0),
    )
    .map_err(|e| sys("send RTM_NEWLINK for lo", e))?;
    let mut buf = [0u8; 256];
    let (n, _) = recv(&fd, &mut buf, RecvFlags::empty())
        .map_err(|e| sys("receive the netlink answer", e))?;
    if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if code != 0 {
            return Err(MonitorError::sys(
                "set lo up",
                nix::errno::Errno::from_raw(-code),
            ));
        }
    }
    Ok(())
}

/// Sets `lo` up in the network namespace of `init`, if it has one of its own.
pub fn bring_up(init: Pid) -> Result<(), MonitorError> {
    let path = format!("/proc/{init}/ns/net");
    let mine = std::fs::metadata("/proc/self/ns/net");
    let theirs = std::fs::metadata(&path);
    if let (Ok(a), Ok(b)) = (&mine, &theirs) {
        use std::os::unix::fs::MetadataExt;
        if a.ino() == b.ino() && a.dev() == b.dev() {
            // --network host: the host's loopback is not ours to touch.
            return Ok(());
        }
    }
    let own = File::open("/proc/self/ns/net")
        .map_err(|e| MonitorError::io("open", std::path::Path::new("/proc/self/ns/net"), e))?;
    let target =
        File::open(&path).map_err(|e| MonitorError::io("open", std::path::Path::new(&path), e))?;
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| MonitorError::sys(format!("setns {path}"), e))?;
    let result = set_lo_up();
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(|e| MonitorError::sys("setns back to the monitor's network namespace", e))?;
    result
}
