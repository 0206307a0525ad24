//! `delete`: removes a container: its processes (with `force`, or when it was
//! never started), the mounts it made in the host's mount namespace when it
//! has none of its own, its cgroup and its record; then runs the poststop
//! hooks.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::hooks::{self, HookPhase};
use crate::state::{Record, Root, Status};

/// How long processes get to die after SIGKILL before delete gives up.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletes container `id`.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let record = match root.load(id) {
        Ok(r) => r,
        Err(Error::NotFound(_)) if force => {
            // A create killed before it wrote its record leaves only a directory.
            return root.remove(id);
        }
        Err(e) => return Err(e),
    };
    let status = record.status(root);
    match status {
        Status::Stopped | Status::Created | Status::Creating => {}
        Status::Running | Status::Paused if force => {}
        Status::Running | Status::Paused => {
            return Err(Error::State {
                id: id.into(),
                status: status.to_string(),
                message: format!("cannot delete container {id} that is not stopped: {status}"),
            })
        }
    }
    kill_all(&record, status)?;
    let mut failures = Vec::new();
    // A container without a mount namespace mounted in the host's: remove
    // those mounts now that none of its processes is left.
    if let Some(host) = &record.host_mounts {
        if let Err(e) = crate::rootfs::remove_host_mounts(&record.rootfs, &host.kept) {
            failures.push(e.to_string());
        }
    }
    if let Err(e) = record.cgroup.destroy() {
        failures.push(e.to_string());
    }
    if let Err(e) = root.remove(id) {
        failures.push(e.to_string());
    }
    if let Some(list) = record
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
    {
        let json = serde_json::to_vec(&record.oci_state(Status::Stopped)).unwrap_or_default();
        // The spec: a failing poststop hook is logged, and the delete goes on.
        if let Err(e) = hooks::run_hooks(HookPhase::Poststop, &list, &json) {
            tracing::warn!("container {id}: {e}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Init(format!(
            "container {id}: delete: {}",
            failures.join("; ")
        )))
    }
}

/// Kills every process of the container and waits for each to be gone.
pub(crate) fn kill_all(record: &Record, status: Status) -> Result<()> {
    let mut pids = record.cgroup.pids().unwrap_or_default();
    if record.init_alive() && !pids.contains(&Pid::from_raw(record.pid)) {
        pids.push(Pid::from_raw(record.pid));
    }
    if pids.is_empty() {
        return Ok(());
    }
    let pidfds: Vec<_> = pids
        .iter()
        .filter_map(|p| berth_sys::misc::pidfd_open(*p).ok())
        .collect();
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    if status == Status::Paused {
        // Frozen processes die only once thawed.
        record.cgroup.thaw()?;
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    for fd in &pidfds {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Init(format!(
                    "container {}: processes still alive {}s after SIGKILL",
                    record.id,
                    KILL_TIMEOUT.as_secs()
                )));
            }
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(n) if n > 0 => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll pidfd", e)),
            }
        }
    }
    // Reap the init if it is our child (`run`, or a create in this process).
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(record.pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    Ok(())
}
