//! `kill`: sends a signal to a container's init, or with `all` to every
//! process in its cgroup. SIGKILL to the init returns once the init is gone
//! (bounded), so a `delete` right after it finds the container stopped.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Parses a signal as runc accepts it: a number, `KILL`, or `SIGKILL`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Invalid(format!("unknown signal {s:?}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::Invalid(format!("unknown signal {s:?}")))
}

/// Sends `signal` to container `id`'s init (or, with `all`, to all its processes).
pub fn kill(root: &Root, id: &str, signal: Signal, all: bool) -> Result<()> {
    let record = root.load(id)?;
    let status = record.status(root);
    if matches!(status, Status::Stopped | Status::Creating) && !all {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "container not running".into(),
        });
    }
    if all {
        let mut pids = record.cgroup.pids()?;
        // Rootless without a delegated cgroup there is no process list: the
        // init gets the signal (with SIGKILL, the kernel then kills every
        // other process of its pid namespace).
        if record.cgroup.hierarchies().is_empty() && record.init_alive() {
            pids.push(Pid::from_raw(record.pid));
        }
        // A frozen process cannot act on the signal until thawed; SIGKILL
        // still needs the thaw for the process to die.
        for pid in pids {
            match send(pid, signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::sys(format!("kill({pid}, {signal})"), e)),
            }
        }
        if status == Status::Paused && signal == Signal::SIGKILL {
            record.cgroup.thaw()?;
        }
        return Ok(());
    }
    let pid = Pid::from_raw(record.pid);
    let pidfd = berth_sys::misc::pidfd_open(pid)
        .map_err(|e| Error::sys(format!("pidfd_open({pid})"), e))?;
    // The pidfd pins the process: check it is still our init (not a reused
    // pid) after opening it, then signal through it.
    if !record.init_alive() {
        return Err(Error::State {
            id: id.into(),
            status: "stopped".into(),
            message: "container not running".into(),
        });
    }
    berth_sys::misc::pidfd_send_signal(&pidfd, signal as i32)
        .map_err(|e| Error::sys(format!("kill({pid}, {signal})"), e))?;
    // SIGKILL cannot be caught: wait (bounded) until the init is gone, so
    // that `kill KILL` followed at once by `delete` finds the container
    // stopped. An init in its own pid namespace exits only after the
    // kernel has killed every other process there. A frozen init dies only
    // once thawed, which is not this call's business.
    if signal == Signal::SIGKILL && status != Status::Paused {
        wait_exit(&pidfd, KILL_WAIT);
    }
    Ok(())
}

/// How long `kill` with SIGKILL waits for the init to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Waits until the process behind `pidfd` has exited (the pidfd turns
/// readable) or `limit` has passed; the signal is sent either way, so a
/// timeout is not an error.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!("the container's init was still alive {limit:?} after SIGKILL");
            return;
        }
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!("poll the init's pidfd after SIGKILL: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").expect("KILL"), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").expect("SIGTERM"), Signal::SIGTERM);
        assert_eq!(parse_signal("term").expect("term"), Signal::SIGTERM);
        assert_eq!(parse_signal("9").expect("9"), Signal::SIGKILL);
        assert!(parse_signal("FOO").is_err());
        assert!(parse_signal("99").is_err());
    }
}
