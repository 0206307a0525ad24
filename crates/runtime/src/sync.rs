//! The channel between the runtime process and a process it is setting up
//! (the container's init, or an exec'd process): a `SOCK_SEQPACKET` socket
//! pair carrying one small JSON message per packet. Errors in the child travel
//! back as text, so the user sees the cause, never just "channel closed".

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Parent → child: the user namespace's id maps are written.
    Mapped,
    /// Child → parent: the pid of the process cloned by an intermediate.
    Pid(i32),
    /// Child → parent: the mounts are done, run prestart/createRuntime hooks.
    RunHooks,
    /// Parent → child: go on.
    Resume,
    /// Parent → child: the hooks are done; the OCI state (JSON, with the
    /// init's pid as the runtime sees it) for the hooks the init runs.
    HooksDone(String),
    /// Child → parent: set up and waiting for `start`.
    Ready,
    /// Child → parent: set-up failed, with the cause.
    Failed(String),
    /// Child → parent: the seccomp notify listener rides along this message
    /// (SCM_RIGHTS), for the parent to hand to the agent at `listenerPath`.
    SeccompListener,
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Makes a connected pair: (parent's end, child's end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair for the sync channel", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends one message.
    pub fn send(&self, msg: &Message) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
        nix::unistd::write(self.fd.as_fd(), &bytes)
            .map_err(|e| Error::sys("write to the sync channel", e))?;
        Ok(())
    }

    /// Sends one message with a descriptor attached (SCM_RIGHTS).
    pub fn send_with_fd(&self, msg: &Message, fd: BorrowedFd<'_>) -> Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
        let fds = [fd];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(Error::Init(
                "sync channel: the descriptor does not fit the control buffer".into(),
            ));
        }
        rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| {
            Error::sys(
                "sendmsg on the sync channel",
                nix::errno::Errno::from_raw(e.raw_os_error()),
            )
        })?;
        Ok(())
    }

    /// Receives one message; `None` when the other end closed without a word.
    /// A descriptor sent along is closed.
    pub fn recv(&self) -> Result<Option<Message>> {
        Ok(self.recv_with_fd()?.0)
    }

    /// Receives one message and the descriptor sent along with it, if any.
    pub fn recv_with_fd(&self) -> Result<(Option<Message>, Option<OwnedFd>)> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(msg) => break msg.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::sys(
                        "read from the sync channel",
                        nix::errno::Errno::from_raw(e.raw_os_error()),
                    ))
                }
            }
        };
        let mut fd = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                // Any extra descriptor is closed as it drops.
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        if n == 0 {
            return Ok((None, fd));
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Init(format!("bad message on the sync channel: {e}")))?;
        Ok((Some(msg), fd))
    }

    /// Receives one message and checks it is `want`; a `Failed` becomes the
    /// child's error, a closed channel says the child died.
    pub fn expect(&self, want: &Message, what: &str) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Message::Failed(cause)) => Err(Error::Init(cause)),
            Some(other) => Err(Error::Init(format!(
                "{what}: expected {want:?}, got {other:?}"
            ))),
            None => Err(Error::Init(format!(
                "{what}: the process exited before it was ready"
            ))),
        }
    }

    /// The descriptor, for poll(2) or to keep across a fork.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_and_close_is_seen() {
        let (a, b) = pair().expect("pair");
        a.send(&Message::Pid(42)).expect("send");
        assert_eq!(b.recv().expect("recv"), Some(Message::Pid(42)));
        b.send(&Message::Failed("mount /proc: EPERM".into()))
            .expect("send");
        let err = a.expect(&Message::Ready, "init").expect_err("failed");
        assert_eq!(err.to_string(), "container init: mount /proc: EPERM");
        drop(b);
        assert_eq!(a.recv().expect("recv"), None);
    }

    #[test]
    fn a_descriptor_crosses_with_its_message() {
        let (a, b) = pair().expect("pair");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        b.send_with_fd(&Message::SeccompListener, w.as_fd())
            .expect("send");
        drop(w);
        let (msg, fd) = a.recv_with_fd().expect("recv");
        assert_eq!(msg, Some(Message::SeccompListener));
        let fd = fd.expect("a descriptor came along");
        nix::unistd::write(&fd, b"x").expect("write through the received end");
        drop(fd);
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut byte).expect("read"), 1);
    }
}
