//! `exec`: runs another process in a running container: joins all of the
//! init's namespaces and its cgroup, applies the process's identity, and execs
//! through the sealed trampoline like the init does. A container without a
//! mount namespace has no namespace to hold its root: the process is
//! chrooted into the init's root instead.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, Process};

use berth_sys::trampoline::Trampoline;

use crate::container::create::write_pid_file;
use crate::container::supervise::Supervisor;
use crate::error::{Error, Result};
use crate::namespaces::{self, Plan};
use crate::process::{self, finalize};
use crate::state::{Root, Status};
use crate::sync::{Channel, Message};
use crate::{capabilities, console, identity};

/// How `exec` runs the process.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// Receives the pty master when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// Where to write the process's pid.
    pub pid_file: Option<PathBuf>,
    /// Return once the process runs, without waiting for it.
    pub detach: bool,
    /// How many descriptors after stdio the process inherits.
    pub preserve_fds: u32,
    /// The process's stdin, stdout and stderr, instead of this process's.
    pub stdio: Option<std::sync::Arc<finalize::Stdio>>,
    /// Exec into a paused container too (runc's `--ignore-paused`): the
    /// process joins the frozen cgroup and starts once the container is
    /// resumed, and this call waits until then.
    pub ignore_paused: bool,
}

/// Runs `process` in container `id`; returns its exit status (0 when detached).
pub fn exec(root: &Root, id: &str, process: &Process, opts: &ExecOptions) -> Result<i32> {
    let record = root.load(id)?;
    let status = record.status(root);
    let paused_ok = opts.ignore_paused && status == Status::Paused;
    if !matches!(status, Status::Running | Status::Created) && !paused_ok {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "cannot exec in a container that is not running".into(),
        });
    }
    if status == Status::Created && crate::rootless::is_rootless() {
        // The init stays non-dumpable until it execs the container's
        // program (so that nothing in the container can reach the runtime's
        // binary through /proc/1/exe, CVE-2019-5736, or ptrace the still
        // privileged init). The kernel then lets only host root open its
        // /proc/PID/ns links: an unprivileged caller gets EACCES.
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "an unprivileged user can exec into it only once it is started: until then \
                      its init is not dumpable, and the kernel lets only root open its namespaces"
                .into(),
        });
    }
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid(
            "process.args: must name a program to run".into(),
        ));
    }
    if let Some(caps) = process.capabilities() {
        capabilities::ProcessCaps::resolve(Some(caps))?;
    }
    if let Some(rlimits) = process.rlimits() {
        identity::validate_rlimits(rlimits)?;
    }
    process::attributes::validate(Some(process), None)?;
    let exec_labels = crate::lsm::exec_labels(process, crate::lsm::HostModules::detect())?;
    let terminal = process.terminal() == Some(true);
    let console_socket: Option<OwnedFd> = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(console::connect_console_socket(path)?),
        (None, true) => {
            return Err(Error::Invalid(
                "process.terminal: true needs --console-socket".into(),
            ))
        }
        _ => None,
    };

    // Join every namespace the container has, through the init's /proc links.
    let joins: Vec<LinuxNamespace> = record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let mut ns = n.clone();
            ns.set_path(Some(PathBuf::from(format!(
                "/proc/{}/ns/{}",
                record.pid,
                namespaces::proc_name(n.typ())
            ))));
            ns
        })
        .collect();
    let plan = Plan::from_config(&joins);
    // The init's root, opened now (by the runtime, which may read the
    // init's /proc entry) for the process to chroot into.
    let chroot_to = if record.host_mounts.is_some() {
        let path = format!("/proc/{}/root", record.pid);
        Some(
            nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::sys(format!("open {path}, the container's root"), e))?,
        )
    } else {
        None
    };
    if plan.joins.is_empty() && chroot_to.is_none() {
        return Err(Error::Invalid(
            "linux.namespaces: the container has none to join".into(),
        ));
    }

    let supervisor = if opts.detach {
        None
    } else {
        Some(Supervisor::new()?)
    };
    process::become_subreaper()?;
    let preserve_fds = opts.preserve_fds;
    let stdio = opts.stdio.as_deref();
    // The container's filter applies to every process in it, as in runc.
    let seccomp = record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let filter = seccomp
        .map(|s| crate::seccomp::compile_cached(s, root.path()))
        .transpose()?;
    // The container's execution domain applies to its every process.
    let personality = record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref());
    let (pid, channel) = process::spawn(&plan, &[], |ch| {
        child(
            process,
            chroot_to,
            &finalize::Confinement {
                personality,
                memory_policy: record
                    .config
                    .linux()
                    .as_ref()
                    .and_then(|l| l.memory_policy().as_ref()),
                seccomp: filter.as_ref(),
                labels: &exec_labels,
            },
            console_socket,
            stdio,
            preserve_fds,
            ch,
        )
    })?;
    let result = (|| -> Result<()> {
        record.cgroup.add_process(pid)?;
        channel.send(&Message::Resume)?;
        // seccomp: a notify listener comes before Ready; hand it to the agent.
        match channel.recv_with_fd()? {
            (Some(Message::Ready), _) => Ok(()),
            (Some(Message::SeccompListener), Some(listener)) => {
                let seccomp = seccomp.ok_or_else(|| {
                    Error::Init("exec: a seccomp listener came without a seccomp section".into())
                })?;
                let state = record.oci_state(status);
                crate::seccomp::send_listener(seccomp, listener, pid.as_raw(), &state)?;
                channel.expect(&Message::Ready, "exec")
            }
            (Some(Message::Failed(cause)), _) => Err(Error::Init(cause)),
            (None, _) => Err(Error::Init(
                "exec: the process exited before it was ready".into(),
            )),
            (Some(other), _) => Err(Error::Init(format!("exec: expected Ready, got {other:?}"))),
        }
    })();
    if let Err(e) = result {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    match supervisor {
        None => Ok(0),
        Some(s) => s.wait(pid),
    }
}

fn child(
    process: &Process,
    chroot_to: Option<OwnedFd>,
    confinement: &finalize::Confinement<'_>,
    console_socket: Option<OwnedFd>,
    stdio: Option<&finalize::Stdio>,
    preserve_fds: u32,
    channel: Channel,
) -> i32 {
    let prepared = (|| -> Result<(Trampoline, finalize::Program)> {
        nix::sys::prctl::set_dumpable(false)
            .map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE)", e))?;
        // process.execCPUAffinity: `initial` while outside the container's
        // cgroup (whose cpuset may be narrower), `final` once inside it.
        let affinity = process.exec_cpu_affinity().as_ref();
        if let Some(list) = affinity
            .and_then(|a| a.initial().as_deref())
            .filter(|l| !l.is_empty())
        {
            process::attributes::set_cpu_affinity("process.execCPUAffinity.initial", list)?;
        }
        channel.expect(&Message::Resume, "waiting to join the cgroup")?;
        if let Some(list) = affinity
            .and_then(|a| a.cpu_affinity_final().as_deref())
            .filter(|l| !l.is_empty())
        {
            process::attributes::set_cpu_affinity("process.execCPUAffinity.final", list)?;
        }
        if let Some(root) = chroot_to {
            nix::unistd::fchdir(&root)
                .map_err(|e| Error::sys("chdir into the container's root", e))?;
            nix::unistd::chroot(".")
                .map_err(|e| Error::sys("chroot into the container's root", e))?;
            nix::unistd::chdir("/").map_err(|e| Error::sys("chdir to the container's /", e))?;
        }
        let trampoline =
            Trampoline::new().map_err(|e| Error::sys("make the exec trampoline (memfd)", e))?;
        match &console_socket {
            Some(socket) => {
                let pty = console::open_pty()?;
                if let Some(size) = process.console_size() {
                    console::set_window_size(
                        &pty.master,
                        size.height() as u16,
                        size.width() as u16,
                    )?;
                }
                console::send_master_over(socket, &pty.master)?;
                console::make_controlling_terminal(&pty.slave)?;
            }
            None => {
                if let Some(stdio) = stdio {
                    finalize::install_stdio(stdio)?;
                }
                nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
            }
        }
        let mut program = finalize::prepare(process, confinement)?;
        if let Some(listener) = program.take_seccomp_listener() {
            channel.send_with_fd(
                &Message::SeccompListener,
                std::os::fd::AsFd::as_fd(&listener),
            )?;
        }
        Ok((trampoline, program))
    })();
    match prepared {
        Ok((trampoline, program)) => {
            if channel.send(&Message::Ready).is_err() {
                return 1;
            }
            drop(channel);
            let err = finalize::exec(&trampoline, &program, preserve_fds);
            eprintln!("berth-runtime: exec: {err}");
            127
        }
        Err(e) => {
            let _ = channel.send(&Message::Failed(e.to_string()));
            1
        }
    }
}
