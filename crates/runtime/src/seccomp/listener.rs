//! Handing a notify listener to the seccomp agent at `listenerPath`: one
//! message carrying the container process state (runtime-spec's
//! `ContainerProcessState`, as runc sends it) with the listener attached by
//! SCM_RIGHTS.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use oci_spec::runtime::LinuxSeccomp;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde::Serialize;

use super::{Result, SeccompError};

/// The name the spec gives the listener in the state's `fds`.
const SECCOMP_FD_NAME: &str = "seccompFd";

/// The runtime-spec version of the message's shape.
const STATE_VERSION: &str = "1.2.0";

/// Sends `listener` of the process `pid` to the agent at the section's
/// `listenerPath`, with the container's OCI `state` and the section's
/// `listenerMetadata`. The listener is closed here once sent: the agent owns
/// it from then on.
pub fn send_listener(
    seccomp: &LinuxSeccomp,
    listener: OwnedFd,
    pid: i32,
    state: &impl Serialize,
) -> Result<()> {
    let path = seccomp.listener_path().clone().ok_or_else(|| {
        SeccompError::Invalid(
            "linux.seccomp.listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY".into(),
        )
    })?;
    let message = serde_json::json!({
        "ociVersion": STATE_VERSION,
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "metadata": seccomp.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let bytes = serde_json::to_vec(&message).map_err(|e| SeccompError::Listener {
        path: path.clone(),
        op: "encode the state",
        source: e.into(),
    })?;
    let stream = UnixStream::connect(&path).map_err(|source| SeccompError::Listener {
        path: path.clone(),
        op: "connect",
        source,
    })?;
    let fds = [listener.as_fd()];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(SeccompError::Listener {
            path,
            op: "sendmsg",
            source: std::io::Error::other("the control message does not fit its buffer"),
        });
    }
    let sent = rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| SeccompError::Listener {
        path: path.clone(),
        op: "sendmsg",
        source: e.into(),
    })?;
    if sent != bytes.len() {
        return Err(SeccompError::Listener {
            path,
            op: "sendmsg",
            source: std::io::Error::other(format!("sent {sent} of {} bytes", bytes.len())),
        });
    }
    Ok(())
}
