//! `run`: create, start, and (unless detached) stay with the container:
//! forward the signals this process gets to the init, reap it, delete the
//! container, and return its exit status as a shell would (128+N for a
//! signal). A container with `process.terminal` and no `--console-socket` gets
//! a pty whose master this process keeps, copying it to and from its own
//! stdin and stdout (raw mode when stdin is a terminal), as runc does.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use tracing::debug;

use crate::console;
use crate::container::supervise::Supervisor;
use crate::container::{create::create, create::CreateOptions, delete::delete, start::start};
use crate::error::{Error, Result};
use crate::state::Root;

/// Runs a container; returns its exit status (0 at once when `detach`).
pub fn run(root: &Root, opts: &CreateOptions, detach: bool) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| debug!(elapsed_us = t0.elapsed().as_micros() as u64, "run: {what}");
    let supervisor = Supervisor::new()?;
    let mut opts = opts.clone();
    // A stream for the pty master in case the config asks for a terminal:
    // one socketpair(2) is cheaper than reading the config twice to find
    // out, and create uses it only if it does.
    let mut console_end: Option<OwnedFd> = None;
    if opts.console_socket.is_none() && opts.console_stream.is_none() && !detach {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("socketpair for the console", e))?;
        opts.console_stream = Some(Arc::new(theirs));
        console_end = Some(ours);
    }
    let record = create(root, &opts)?;
    // Our copy of the container's end: the init has its own.
    opts.console_stream = None;
    phase("created");
    let terminal = record.config.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let master = match console_end.filter(|_| terminal) {
        Some(end) => match console::receive_master(end.as_fd()) {
            Ok(received) => Some(received.master),
            Err(e) => {
                let _ = delete(root, &record.id, true);
                return Err(e.into());
            }
        },
        None => None,
    };
    let id = record.id.clone();
    if let Err(e) = start(root, &id) {
        let _ = delete(root, &id, true);
        return Err(e);
    }
    phase("started");
    if detach {
        return Ok(0);
    }
    let init = Pid::from_raw(record.pid);
    let code = match master {
        Some(master) => supervisor.wait_with_terminal(init, master)?,
        None => supervisor.wait(init)?,
    };
    phase("exited");
    delete(root, &id, true)?;
    phase("deleted");
    Ok(code)
}
