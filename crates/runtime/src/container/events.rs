//! `events`: a container's resource statistics, once or at an interval, and
//! OOM kills as they happen; read from whichever cgroup hierarchy holds each
//! controller.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use serde::Serialize;

use crate::cgroups::Stats;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// One event, in runc's JSON shape.
#[derive(Debug, Serialize)]
pub struct Event {
    /// "stats" or "oom".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container.
    pub id: String,
    /// The statistics, for "stats".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// The statistics of container `id` now.
pub fn stats(root: &Root, id: &str) -> Result<Event> {
    let record = root.load(id)?;
    let status = record.status(root);
    if status == Status::Stopped {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "container not running".into(),
        });
    }
    Ok(Event {
        kind: "stats",
        id: id.into(),
        data: Some(record.cgroup.stats()?),
    })
}

/// Calls `emit` with the container's statistics every `interval`, and with an
/// "oom" event whenever the kernel's OOM killer has killed one of its
/// processes since the last look; returns when the container stops.
pub fn stream(
    root: &Root,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event),
) -> Result<()> {
    let record = root.load(id)?;
    if record.status(root) == Status::Stopped {
        return Err(Error::State {
            id: id.into(),
            status: "stopped".into(),
            message: "container not running".into(),
        });
    }
    let pidfd = berth_sys::misc::pidfd_open(Pid::from_raw(record.pid))
        .map_err(|e| Error::sys(format!("pidfd_open({})", record.pid), e))?;
    let mut ooms = record.cgroup.oom_kill_count().unwrap_or(0);
    loop {
        let now = record.cgroup.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            ooms = now;
            emit(&Event {
                kind: "oom",
                id: id.into(),
                data: None,
            });
        }
        emit(&Event {
            kind: "stats",
            id: id.into(),
            data: Some(record.cgroup.stats()?),
        });
        // Wait for the interval, or less if the init exits first.
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let ms = interval.as_millis().min(i32::MAX as u128) as i32;
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(Error::sys("poll pidfd", e)),
        }
    }
}
