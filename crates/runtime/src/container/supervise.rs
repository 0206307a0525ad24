//! Staying with a process until it exits: the signals this process receives
//! are forwarded to it, and exited children are reaped (as a subreaper, the
//! runtime inherits the container's orphans).

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Blocks signals into a signalfd from creation on.
#[derive(Debug)]
pub struct Supervisor {
    sfd: SignalFd,
}

impl Supervisor {
    /// Blocks the signals before the process is made, so none is lost between
    /// its start and the first read; the process unblocks them before it execs.
    pub fn new() -> Result<Self> {
        let mut mask = SigSet::all();
        for s in [
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
        ] {
            mask.remove(s);
        }
        mask.thread_block()
            .map_err(|e| Error::sys("sigprocmask", e))?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Error::sys("signalfd", e))?;
        Ok(Supervisor { sfd })
    }

    /// Forwards signals to `pid` until it exits; returns its exit status as
    /// a shell would (128+N for a signal).
    pub fn wait(&self, pid: Pid) -> Result<i32> {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        loop {
            let info = match self.sfd.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read signalfd", e)),
            };
            let signo = info.ssi_signo as i32;
            if signo == Signal::SIGCHLD as i32 {
                if let Some(code) = reap(pid)? {
                    return Ok(code);
                }
                continue;
            }
            if let Ok(sig) = Signal::try_from(signo) {
                // ESRCH: the process is exiting; its SIGCHLD follows.
                let _ = kill(pid, sig);
            }
        }
    }
}

/// Reaps every exited child; returns `pid`'s exit status once it has exited.
fn reap(pid: Pid) -> Result<Option<i32>> {
    let mut status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => status = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => status = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", e)),
        }
    }
    Ok(status)
}
