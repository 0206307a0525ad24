//! Bounded waits on events: a process's exit through its pidfd, a file descriptor becoming
//! readable. No test sleeps to wait for something.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

/// Errors while waiting.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The event did not come in time.
    #[error("waited {timeout:?} for {what}, in vain")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// A syscall failed.
    #[error("waiting for {what}: {syscall}: {source}")]
    Sys {
        /// What was awaited.
        what: String,
        /// The syscall.
        syscall: &'static str,
        /// The kernel's error.
        source: Errno,
    },
}

fn timespec(left: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(left.subsec_nanos()),
    }
}

/// Waits until `fd` is readable (or hung up), for at most `timeout`.
pub fn readable(fd: impl AsFd, timeout: Duration, what: &str) -> Result<(), WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timespec(left))) {
            Ok(0) => {
                return Err(WaitError::Timeout {
                    what: what.to_owned(),
                    timeout,
                });
            }
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(source) => {
                return Err(WaitError::Sys {
                    what: what.to_owned(),
                    syscall: "poll",
                    source,
                });
            }
        }
    }
}

/// Waits until process `pid` has exited (a zombie counts), for at most `timeout`.
///
/// The process need not be our child: its pidfd becomes readable when it exits. A pid that no
/// longer exists has exited.
pub fn process_exit(pid: i32, timeout: Duration) -> Result<(), WaitError> {
    let what = format!("process {pid} to exit");
    let Some(pid) = Pid::from_raw(pid) else {
        return Ok(());
    };
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::SRCH) => return Ok(()),
        Err(source) => {
            return Err(WaitError::Sys {
                what,
                syscall: "pidfd_open",
                source,
            })
        }
    };
    readable(&fd, timeout, &what)
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command, which may itself hold parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Waits until the file at `path` contains `needle`, for at most `timeout`, woken by inotify
/// each time the file is written. Returns the file's text.
pub fn file_contains(
    path: &std::path::Path,
    needle: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let read = || {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    watch_until(
        path,
        rustix::fs::inotify::WatchFlags::MODIFY | rustix::fs::inotify::WatchFlags::CLOSE_WRITE,
        format!("{} to contain {needle:?}", path.display()),
        timeout,
        || {
            let text = read();
            (text.contains(needle), text)
        },
    )
}

/// Waits until the directory at `path` has no entry, for at most `timeout`, woken by inotify
/// each time an entry leaves it.
pub fn dir_empty(path: &std::path::Path, timeout: Duration) -> Result<(), WaitError> {
    use rustix::fs::inotify::WatchFlags;
    let names = || -> Vec<String> {
        std::fs::read_dir(path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    watch_until(
        path,
        WatchFlags::DELETE | WatchFlags::MOVED_FROM,
        format!("{} to be empty", path.display()),
        timeout,
        || {
            let left = names();
            (left.is_empty(), format!("{left:?}"))
        },
    )
    .map(|_| ())
}

/// Checks `done` (true, and what to report), then again after each inotify event of `flags`
/// on `path`, for at most `timeout`.
fn watch_until(
    path: &std::path::Path,
    flags: rustix::fs::inotify::WatchFlags,
    what: String,
    timeout: Duration,
    mut done: impl FnMut() -> (bool, String),
) -> Result<String, WaitError> {
    use rustix::fs::inotify;
    let sys = |syscall: &'static str| {
        let what = what.clone();
        move |source| WaitError::Sys {
            what,
            syscall,
            source,
        }
    };
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .map_err(sys("inotify_init"))?;
    inotify::add_watch(&fd, path, flags).map_err(sys("inotify_add_watch"))?;
    let deadline = Instant::now() + timeout;
    let mut events = [0u8; 4096];
    loop {
        let (finished, state) = done();
        if finished {
            return Ok(state);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match readable(&fd, left, &what) {
            Err(WaitError::Timeout { .. }) => {
                return Err(WaitError::Timeout {
                    what: format!("{what} (it holds {state})"),
                    timeout,
                });
            }
            Err(other) => return Err(other),
            Ok(()) => {}
        }
        // Drain the events; the state is what counts.
        match rustix::io::read(&fd, &mut events) {
            Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(source) => {
                return Err(WaitError::Sys {
                    what,
                    syscall: "read",
                    source,
                })
            }
        }
    }
}
