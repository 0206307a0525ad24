//! The container's init before it becomes the user's program: runs in the new
//! namespaces, sets up the root filesystem, reports `Ready`, waits for `start`
//! on the exec fifo, then execs.
//!
//! Every step's error is sent to the parent on the sync channel, which prints
//! it and tears down what was made.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use berth_sys::trampoline::Trampoline;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::hooks::{self, HookPhase};
use crate::namespaces::Plan;
use crate::rootfs::{self, CgroupHierarchy, RootfsOptions};
use crate::sync::{Channel, Message};
use crate::{console, process::finalize};

/// What the init needs to know, prepared by `create` before the clone.
#[derive(Debug)]
pub struct InitContext<'a> {
    /// The container's id.
    pub id: &'a str,
    /// Its config.
    pub spec: &'a Spec,
    /// The canonical host path of its root filesystem.
    pub rootfs: &'a Path,
    /// Its namespaces.
    pub plan: &'a Plan,
    /// The exec fifo, opened `O_PATH` by the parent (the init may have no
    /// right to walk the runtime root, so it reopens the fifo through /proc).
    pub fifo: OwnedFd,
    /// The exec-done fifo (`O_PATH`), held open until the exec closes it.
    pub exec_done: OwnedFd,
    /// The connected console socket, when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    /// How many descriptors after stdio the program inherits.
    pub preserve_fds: u32,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Keep the runtime's session keyring.
    pub no_new_keyring: bool,
    /// Standard streams to use instead of the runtime's.
    pub stdio: Option<&'a finalize::Stdio>,
    /// The container's cgroup.
    pub cgroup: &'a Cgroup,
    /// The container's cgroup directories, for a `cgroup` mount.
    pub cgroup_paths: Vec<CgroupHierarchy>,
    /// The bundle directory (relative bind sources are taken from it).
    pub bundle: &'a Path,
    /// The container's compiled seccomp filter.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The ID-mapped bind sources the runtime made (moved into place by
    /// the mounts that asked for them).
    pub idmapped: rootfs::IdmappedTrees,
    /// The AppArmor profile and SELinux label of the process, decided for
    /// this host by the runtime (the container cannot see the host's
    /// selinuxfs).
    pub exec_labels: crate::lsm::ExecLabels,
    /// The SELinux label of the container's fresh filesystems.
    pub mount_label: Option<String>,
}

/// The init's main: never returns to the runtime's code. Returns the exit
/// status for `_exit` on failure, after telling the parent why.
pub fn run(ctx: InitContext<'_>, channel: Channel) -> i32 {
    match setup(&ctx, &channel) {
        Ok((trampoline, program, fifo, state, exec_done)) => {
            drop(channel);
            // Block until `start` writes to the fifo (we hold it open for
            // reading and writing, so the read waits for data instead of
            // seeing end-of-file).
            let mut fifo = std::fs::File::from(fifo);
            let mut byte = [0u8; 1];
            if fifo.read_exact(&mut byte).is_err() {
                return 1;
            }
            drop(fifo);
            if let Some(hooks) = ctx
                .spec
                .hooks()
                .as_ref()
                .and_then(|h| h.start_container().clone())
            {
                // A startContainer hook without an env of its own gets the
                // container process's, as runc's do (runc runs them from its
                // init once the process's environment is in place).
                let process_env = ctx.spec.process().as_ref().and_then(|p| p.env().clone());
                let hooks: Vec<_> = hooks
                    .into_iter()
                    .map(|mut h| {
                        if h.env().is_none() {
                            h.set_env(process_env.clone());
                        }
                        h
                    })
                    .collect();
                if let Err(e) =
                    hooks::run_hooks(HookPhase::StartContainer, &hooks, state.as_bytes())
                {
                    eprintln!("berth-runtime: {e}");
                    return 1;
                }
            }
            // Closed by the exec (close-on-exec): that end-of-file tells
            // `start` the program runs.
            let _exec_done = exec_done;
            let err = finalize::exec(&trampoline, &program, ctx.preserve_fds);
            eprintln!("berth-runtime: container {}: {err}", ctx.id);
            127
        }
        Err(e) => {
            let _ = channel.send(&Message::Failed(e.to_string()));
            1
        }
    }
}

#[allow(clippy::type_complexity)]
fn setup(
    ctx: &InitContext<'_>,
    channel: &Channel,
) -> Result<(Trampoline, finalize::Program, OwnedFd, String, OwnedFd)> {
    let t0 = std::time::Instant::now();
    if ctx.plan.parent_places_init() {
        channel.expect(
            &Message::Mapped,
            "waiting to be placed in the cgroup and mapped",
        )?;
        if ctx.plan.new_user {
            nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(|e| {
                Error::sys(
                    "setresgid(0) in the new user namespace (is gid 0 mapped?)",
                    e,
                )
            })?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(|e| {
                Error::sys(
                    "setresuid(0) in the new user namespace (is uid 0 mapped?)",
                    e,
                )
            })?;
        }
    } else {
        // "0" in cgroup.procs means the writing process: no pid translation
        // across the new pid namespace and no round trip to the parent.
        ctx.cgroup.add_process(nix::unistd::Pid::from_raw(0))?;
    }
    // A non-dumpable process's /proc/PID entries belong to root and cannot be
    // ptrace-opened by other processes of the container (e.g. /proc/PID/exe of
    // the runtime binary, CVE-2019-5736) while we are still the runtime. Only
    // once mapped: an unprivileged parent (rootless) writes the id maps, and
    // newuidmap checks that it owns this process, through /proc/PID. Until
    // then no other process is in the container.
    nix::sys::prctl::set_dumpable(false).map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE)", e))?;
    if ctx.plan.new_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare cgroup namespace", e))?;
    }
    let process = ctx
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process: missing".into()))?;
    let terminal = process.terminal() == Some(true);
    if let (Some(stdio), false) = (ctx.stdio, terminal) {
        finalize::install_stdio(stdio)?;
    }
    if !terminal {
        // A session of its own, so the caller's terminal signals reach the
        // container only through the runtime. With a terminal the console
        // code makes the session and takes the pty as its controlling tty.
        nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
    }
    if !ctx.no_new_keyring {
        let name = std::ffi::CString::new(format!("_ses.{}", ctx.id))
            .map_err(|_| Error::InvalidId(ctx.id.into()))?;
        // EDQUOT/ENOSYS mean the kernel has no room or no keyrings; runc
        // carries on in that case too.
        if let Err(e) = berth_sys::misc::join_session_keyring(&name) {
            if e != nix::errno::Errno::ENOSYS && e != nix::errno::Errno::EDQUOT {
                return Err(Error::sys("keyctl(JOIN_SESSION_KEYRING)", e));
            }
        }
    }
    if let Some(hostname) = ctx.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(hostname)
            .map_err(|e| Error::sys(format!("sethostname {hostname:?}"), e))?;
    }
    if let Some(domain) = ctx.spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // /proc/sys/kernel/domainname belongs to the writer's uts namespace.
        std::fs::write("/proc/sys/kernel/domainname", domain)
            .map_err(|e| Error::io("write", "/proc/sys/kernel/domainname", e))?;
    }
    let fifo_path = format!("/proc/self/fd/{}", ctx.fifo.as_raw_fd());
    let fifo = open(
        fifo_path.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open the exec fifo", e))?;
    let done_path = format!("/proc/self/fd/{}", ctx.exec_done.as_raw_fd());
    let exec_done = open(
        done_path.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open the exec-done fifo", e))?;
    let trampoline =
        Trampoline::new().map_err(|e| Error::sys("make the exec trampoline (memfd)", e))?;

    let opts = RootfsOptions {
        no_pivot: ctx.no_pivot,
        in_user_namespace: ctx.plan.in_user_namespace(),
        console: terminal,
        cgroup_paths: ctx.cgroup_paths.clone(),
        bundle: ctx.bundle.to_path_buf(),
        mount_label: ctx.mount_label.clone(),
        idmapped: ctx.idmapped.clone(),
    };
    phase(t0, "init: namespaces, cgroup, keyring, hostname");
    if ctx.plan.shares_host_mounts() {
        rootfs::prepare_in_host_namespace(ctx.spec, ctx.rootfs, &opts)?;
    } else {
        rootfs::prepare(ctx.spec, ctx.rootfs, &opts)?;
    }
    phase(t0, "init: mounts");

    // Any hook at all: the parent runs its own (prestart, createRuntime) and
    // sends the state for ours, which must carry our pid as the runtime sees
    // it (we may be pid 1 of a new pid namespace).
    let hooks = ctx.spec.hooks().as_ref();
    let any_hooks = hooks.is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
    });
    let mut state = String::new();
    if any_hooks {
        channel.send(&Message::RunHooks)?;
        match channel.recv()? {
            Some(Message::HooksDone(s)) => state = s,
            Some(Message::Failed(cause)) => return Err(Error::Init(cause)),
            other => {
                return Err(Error::Init(format!(
                    "waiting for the prestart and createRuntime hooks: got {other:?}"
                )))
            }
        }
    }
    if let Some(list) = hooks.and_then(|h| h.create_container().clone()) {
        hooks::run_hooks(HookPhase::CreateContainer, &list, state.as_bytes())?;
    }

    if ctx.plan.shares_host_mounts() {
        // --no-pivot changes nothing here: both roads would change the
        // host's root.
        rootfs::enter_chroot(ctx.rootfs)?;
    } else {
        rootfs::pivot(ctx.rootfs, ctx.no_pivot)?;
    }
    phase(t0, "init: pivot_root");

    if let Some(sysctl) = ctx.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|e| Error::io("write sysctl", &path, e))?;
        }
    }
    if terminal {
        let socket = ctx.console_socket.as_ref().ok_or_else(|| {
            Error::Invalid("process.terminal: true needs --console-socket".into())
        })?;
        let pty = console::open_pty()?;
        if let Some(size) = process.console_size() {
            console::set_window_size(&pty.master, size.height() as u16, size.width() as u16)?;
        }
        console::send_master_over(socket, &pty.master)?;
        rootfs::bind_console(Path::new("/"), &pty.slave_path)?;
        console::make_controlling_terminal(&pty.slave)?;
    }
    rootfs::finish(ctx.spec)?;
    phase(t0, "init: sysctl, console, masked and read-only paths");

    let personality = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref());
    let mut program = finalize::prepare(
        process,
        &finalize::Confinement {
            personality,
            memory_policy: ctx
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.memory_policy().as_ref()),
            seccomp: ctx.seccomp,
            labels: &ctx.exec_labels,
        },
    )?;
    if let Some(listener) = program.take_seccomp_listener() {
        // The parent hands it to the seccomp agent; our copy closes here.
        channel.send_with_fd(&Message::SeccompListener, listener.as_fd())?;
    }
    phase(
        t0,
        "init: limits, capabilities, user, seccomp, program lookup",
    );
    channel.send(&Message::Ready)?;
    Ok((trampoline, program, fifo, state, exec_done))
}

/// Logs the end of a phase of the init's set-up with the time since it began
/// (`--debug`).
fn phase(t0: std::time::Instant, what: &str) {
    tracing::debug!(elapsed_us = t0.elapsed().as_micros() as u64, "{what}");
}
