//! The receiving end of `--console-socket`: a unix socket on which the runtime sends the
//! container's pty master with SCM_RIGHTS, as containerd and podman receive it.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::wait::{self, WaitError};

/// Errors while receiving or reading the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The socket could not be made or used.
    #[error("console socket {path}: {op}: {source}")]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
    /// recvmsg failed.
    #[error("console socket {path}: recvmsg: {source}")]
    Recv {
        /// The socket's path.
        path: PathBuf,
        /// The kernel's error.
        source: Errno,
    },
    /// The runtime's message carried no file descriptor.
    #[error("console socket {path}: the runtime's message ({bytes} bytes{closed}) carried no file descriptor")]
    NoFd {
        /// The socket's path.
        path: PathBuf,
        /// How many data bytes came with it.
        bytes: usize,
        /// ", the runtime closed the connection" when nothing came at all.
        closed: &'static str,
    },
    /// A bounded wait failed.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// A listening unix socket to pass as `--console-socket`.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listens on `dir/<name>` (keep `dir` short: a socket path holds at most 107 bytes).
    pub fn bind(dir: &Path, name: &str) -> Result<ConsoleSocket, ConsoleError> {
        let path = dir.join(name);
        let listener = UnixListener::bind(&path).map_err(|source| ConsoleError::Io {
            path: path.clone(),
            op: "bind",
            source,
        })?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master, within `timeout`.
    pub fn receive_master(&self, timeout: Duration) -> Result<File, ConsoleError> {
        let io = |op: &'static str| {
            let path = self.path.clone();
            move |source| ConsoleError::Io { path, op, source }
        };
        wait::readable(
            &self.listener,
            timeout,
            "the runtime to connect to the console socket",
        )?;
        let (stream, _) = self.listener.accept().map_err(io("accept"))?;
        wait::readable(&stream, timeout, "the runtime to send the pty master")?;
        let mut data = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut data)];
        let sent = recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).map_err(
            |source| ConsoleError::Recv {
                path: self.path.clone(),
                source,
            },
        )?;
        let mut received: Option<OwnedFd> = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    received.get_or_insert(fd);
                }
            }
        }
        received.map(File::from).ok_or_else(|| ConsoleError::NoFd {
            path: self.path.clone(),
            bytes: sent.bytes,
            closed: if sent.bytes == 0 {
                ", the runtime closed the connection"
            } else {
                ""
            },
        })
    }
}

/// Reads a pty master until the container side closes (EIO) or `timeout` passes, and returns
/// what it read.
pub fn read_until_closed(master: &mut File, timeout: Duration) -> Result<String, ConsoleError> {
    let deadline = Instant::now() + timeout;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait::readable(&*master, left, "output on the pty master").is_err() {
            break;
        }
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: every slave fd is closed, the container has exited.
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}
