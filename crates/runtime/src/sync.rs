//! The channel between the runtime process and a process it is setting up
//! (the container's init, or an exec'd process): a `SOCK_SEQPACKET` socket
//! pair carrying one small JSON message per packet. Errors in the child travel
//! back as text, so the user sees the cause, never just "channel closed".

use std::os::fd::{AsFd, OwnedFd};

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

    /// Receives one message; `None` when the other end closed without a word.
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read from the sync channel", e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("bad message on the sync channel: {e}")))
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
}
