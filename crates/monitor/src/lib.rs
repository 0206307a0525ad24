//! The monitor: one small process per container (like conmon) that berthd starts.
//!
//! Owns: making the container (the rootfs mount, then berth's runtime called in-process, before
//! any thread exists), the container's stdio pipes or its pty, the json-file log ([`log`]), the
//! exit code, time and OOM kill (in a state file replaced atomically), and a unix socket on which
//! berthd starts, attaches to, resizes, signals, waits for and execs in the container (the
//! protocol is in the `monitor-protocol` crate).
//!
//! Lifetime: [`launch`] forks; the child calls `setsid` (its own session and process group, so a
//! signal to berthd's group or berthd's death does not reach it), makes the container, and tells
//! the parent over a pipe that it is ready (or why it failed); the parent exits with that result,
//! so berthd learns synchronously whether the container could be made, and never has to reap the
//! long-lived monitor. The monitor exits after its container has exited: it drains the output,
//! ends attached streams, records the exit, answers waiters, deletes the container from the
//! runtime (its cgroup included) and unmounts the rootfs.
//!
//! The rootfs is mounted on `<bundle>/rootfs` in the host's mount namespace (the bundle lives in
//! berthd's exec root: `<exec-root>/containers/<id>/rootfs`), where the runtime finds it; the
//! monitor unmounts it when the container exits, and berthd unmounts it again (idempotently) when
//! it removes the container, so no mount is left behind even if a monitor was killed.
//!
//! The event loop is single-threaded (`poll(2)` over the socket, the pipes and a signalfd for
//! SIGCHLD), which keeps the runtime's fork-only-when-single-threaded rule for `exec` and keeps
//! the process small.
//!
//! Must never: start a thread, or know about images or the Docker API. May use: runtime, sys,
//! monitor-protocol, nix.
#![forbid(unsafe_code)]

mod engine;
pub mod log;
mod loopback;
mod network;
mod supervisor;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use monitor_protocol::{MonitorConfig, MonitorState, PROTOCOL_VERSION};
use nix::fcntl::OFlag;

pub use supervisor::Supervisor;

/// Why the monitor could not make or supervise its container.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The configuration file is unreadable or not a monitor configuration.
    #[error("monitor configuration {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file or socket operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// Its object.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// The call and its object.
        op: String,
        /// The errno.
        source: nix::Error,
    },
    /// The runtime refused or failed.
    #[error("{0}")]
    Runtime(#[from] runtime::Error),
    /// The log could not be written.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// The container's network interfaces could not be made or removed.
    #[error("{0}")]
    Network(String),
    /// The detached monitor could not make the container; its own words.
    #[error("{0}")]
    Child(String),
}

impl MonitorError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        MonitorError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        MonitorError::Sys {
            op: op.into(),
            source,
        }
    }
}

/// Reads and checks a monitor configuration.
pub fn read_config(path: &Path) -> Result<MonitorConfig, MonitorError> {
    let text = std::fs::read(path).map_err(|e| MonitorError::io("read", path, e))?;
    let config: MonitorConfig =
        serde_json::from_slice(&text).map_err(|e| MonitorError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if config.version != PROTOCOL_VERSION {
        return Err(MonitorError::Config {
            path: path.to_path_buf(),
            message: format!(
                "protocol version {} is not the {PROTOCOL_VERSION} this monitor speaks",
                config.version
            ),
        });
    }
    Ok(config)
}

/// Writes the monitor's state file atomically (temporary file, fsync, rename).
pub fn write_state(path: &Path, state: &MonitorState) -> Result<(), MonitorError> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec(state).map_err(|e| MonitorError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| MonitorError::io("create", &tmp, e))?;
    // Not fsynced: berthd reads this file after it was killed, not after a power loss (which
    // ends the container too); the rename alone is atomic against any kill. An fsync here
    // was on every start and exit.
    f.write_all(&json)
        .map_err(|e| MonitorError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| MonitorError::io("rename to", path, e))
}

/// Runs the monitor for the configuration at `config_path`: forks, and in this (the parent)
/// process returns once the child has made the container (Ok) or failed (its error). The child
/// never returns: it supervises the container and exits after it.
pub fn launch(config_path: &Path) -> Result<(), MonitorError> {
    let config = read_config(config_path)?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| MonitorError::sys("pipe2", e))?;
    match berth_sys::process::clone_fork(nix::sched::CloneFlags::empty())
        .map_err(|e| MonitorError::sys("fork the monitor", e))?
    {
        berth_sys::process::Forked::Parent(_) => {
            drop(ready_w);
            // "ok" ends the wait at once: the container's init inherits the pipe's write end
            // until it execs, so end-of-file would come only when the user's program starts.
            // A failure is "error: …" followed by end-of-file (the init is gone by then).
            let mut answer = Vec::new();
            let mut r = std::fs::File::from(ready_r);
            let mut buf = [0u8; 4096];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| MonitorError::io("read the readiness pipe of", config_path, e))?;
                answer.extend_from_slice(&buf[..n]);
                if n == 0 || answer == b"ok" {
                    break;
                }
            }
            let answer = String::from_utf8_lossy(&answer).into_owned();
            match answer.strip_prefix("error: ") {
                _ if answer == "ok" => Ok(()),
                Some(cause) => Err(MonitorError::Child(cause.to_string())),
                None => Err(MonitorError::Config {
                    path: config_path.to_path_buf(),
                    message: "the monitor exited before it made the container".into(),
                }),
            }
        }
        berth_sys::process::Forked::Child(_) => {
            drop(ready_r);
            let code = child(config, ready_w);
            berth_sys::process::exit_now(code)
        }
    }
}

/// The long-lived monitor: detaches, makes the container, reports, then serves until the exit.
fn child(config: MonitorConfig, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let made = (|| -> Result<Supervisor, MonitorError> {
        nix::unistd::setsid().map_err(|e| MonitorError::sys("setsid", e))?;
        // berthd's end of the pipe on our stdin closes if berthd dies before the start.
        let lifeline = nix::unistd::dup(std::io::stdin())
            .map_err(|e| MonitorError::sys("dup stdin (the lifeline)", e))?;
        nix::fcntl::fcntl(
            &lifeline,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| MonitorError::sys("fcntl(FD_CLOEXEC) on the lifeline", e))?;
        detach_stdio()?;
        Supervisor::create(config, lifeline)
    })();
    match made {
        Ok(mut supervisor) => {
            let _ = ready.write_all(b"ok");
            drop(ready);
            match supervisor.run() {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
        Err(e) => {
            let _ = ready.write_all(format!("error: {e}").as_bytes());
            1
        }
    }
}

/// Points this process's stdio at /dev/null, so berthd's pipes (which it reads to the end) are
/// not held open by the long-lived monitor.
fn detach_stdio() -> Result<(), MonitorError> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| MonitorError::io("open", Path::new("/dev/null"), e))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| MonitorError::sys("dup2 stdin", e))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| MonitorError::sys("dup2 stdout", e))?;
    nix::unistd::dup2_stderr(&null).map_err(|e| MonitorError::sys("dup2 stderr", e))?;
    Ok(())
}
