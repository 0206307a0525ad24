//! Staying with a process until it exits: the signals this process receives
//! are forwarded to it, and exited children are reaped (as a subreaper, the
//! runtime inherits the container's orphans).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
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

impl Supervisor {
    /// Like [`Supervisor::wait`], and meanwhile copies `master` (the
    /// container's pty) to stdout and stdin to it, with stdin in raw mode when
    /// it is a terminal, and the terminal's size passed on at start and on
    /// SIGWINCH. Stdin's end-of-file becomes the terminal's end-of-file
    /// character.
    pub fn wait_with_terminal(&self, pid: Pid, master: OwnedFd) -> Result<i32> {
        let stdin = std::io::stdin();
        let _raw = RawMode::enter(stdin.as_fd());
        pass_window_size(stdin.as_fd(), &master);
        let mut stdin_open = true;
        let mut master_open = true;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut fds = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
            if master_open {
                fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open && master_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll the terminal", e)),
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig_ready, master_ready, stdin_ready) =
                (ready(0), master_open && ready(1), ready(2));
            drop(fds);
            if master_ready {
                match nix::unistd::read(&master, &mut buf) {
                    Ok(0) | Err(nix::errno::Errno::EIO) => master_open = false,
                    Ok(n) => write_all_stdout(&buf[..n]),
                    Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(e) => return Err(Error::sys("read the container's terminal", e)),
                }
            }
            if stdin_ready {
                match nix::unistd::read(&stdin, &mut buf) {
                    Ok(0) => {
                        stdin_open = false;
                        // End of input: the terminal's EOF character (^D).
                        let _ = nix::unistd::write(&master, &[4u8]);
                    }
                    Ok(n) => {
                        let _ = write_all(&master, &buf[..n]);
                    }
                    Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(_) => stdin_open = false,
                }
            }
            if sig_ready {
                let info = match self.sfd.read_signal() {
                    Ok(Some(info)) => info,
                    Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("read signalfd", e)),
                };
                let signo = info.ssi_signo as i32;
                if signo == Signal::SIGCHLD as i32 {
                    if let Some(code) = reap(pid)? {
                        drain(&master, &mut buf);
                        return Ok(code);
                    }
                } else if signo == Signal::SIGWINCH as i32 {
                    pass_window_size(stdin.as_fd(), &master);
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = kill(pid, sig);
                }
            }
        }
    }
}

/// Puts a terminal in raw mode until dropped; nothing when it is not a terminal.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<Termios>,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Self {
        let saved = tcgetattr(fd).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        }
        RawMode { fd, saved }
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(self.fd, SetArg::TCSANOW, saved);
        }
    }
}

fn pass_window_size(from: BorrowedFd<'_>, master: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(from) {
        let _ = crate::console::set_window_size(master, size.ws_row, size.ws_col);
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_all_stdout(data: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(data);
    let _ = out.flush();
}

/// What the container wrote before it exited and we have not read yet.
fn drain(master: &OwnedFd, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        match nix::unistd::read(master, buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => write_all_stdout(&buf[..n]),
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
