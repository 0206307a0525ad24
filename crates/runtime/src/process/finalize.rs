//! The last steps before a container process becomes the user's program,
//! shared by the init and by `exec`: limits, identity, capabilities, working
//! directory, program lookup, then the exec through the sealed trampoline.
//!
//! The order is the one runc uses, for the same reasons: rlimits,
//! oom_score_adj, scheduler, I/O priority and personality while still
//! privileged; the bounding set dropped before the
//! uid changes (PR_SET_KEEPCAPS keeps the permitted set across setuid), the
//! other sets after; `no_new_privs` before anything that execs; the seccomp
//! filter last when `no_new_privs` is set, else before the capabilities are
//! dropped (loading a filter then needs CAP_SYS_ADMIN).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxPersonality, Process};

use berth_sys::trampoline::Trampoline;

use super::attributes;
use crate::error::{Error, Result};
use crate::{capabilities, identity};

/// The program to exec, resolved inside the container.
#[derive(Debug)]
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The seccomp notify listener, for the parent to hand to the agent.
    seccomp_listener: Option<OwnedFd>,
}

impl Program {
    /// Takes the seccomp notify listener the filter produced, if it has one.
    pub fn take_seccomp_listener(&mut self) -> Option<OwnedFd> {
        self.seccomp_listener.take()
    }
}

/// What confines a container process beyond its own `process` fields,
/// decided by the runtime before the fork.
#[derive(Debug, Clone, Copy)]
pub struct Confinement<'a> {
    /// The container's execution domain (`linux.personality`).
    pub personality: Option<&'a LinuxPersonality>,
    /// The container's NUMA memory policy (`linux.memoryPolicy`).
    pub memory_policy: Option<&'a oci_spec::runtime::LinuxMemoryPolicy>,
    /// The container's compiled seccomp filter.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The AppArmor profile and SELinux label for the exec, as decided for
    /// this host by [`crate::lsm::exec_labels`].
    pub labels: &'a crate::lsm::ExecLabels,
}

/// Applies the process's limits and identity, its security module labels
/// and the container's compiled seccomp filter, and resolves its program,
/// in the container's namespaces and root. On success the process is
/// ready to exec.
pub fn prepare(process: &Process, confinement: &Confinement<'_>) -> Result<Program> {
    let Confinement {
        personality,
        memory_policy,
        seccomp,
        labels,
    } = *confinement;
    if let Some(rlimits) = process.rlimits() {
        identity::apply_rlimits(rlimits)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        identity::set_oom_score_adj(None, adj)?;
    }
    // Scheduler, I/O priority and personality while the capabilities that a
    // real-time policy or I/O class needs are still held.
    attributes::apply(process, personality)?;
    attributes::apply_memory_policy(memory_policy)?;
    // Before no_new_privs, under which AppArmor refuses most transitions;
    // the labels take effect at the execve below.
    crate::lsm::apply_exec_labels(labels)?;
    let no_new_privs = process.no_new_privileges() == Some(true);
    if no_new_privs {
        identity::set_no_new_privs()?;
    }
    // seccomp: loaded here only when, without no_new_privs, the kernel
    // demands CAP_SYS_ADMIN to load it; else last, below.
    let mut seccomp_listener = None;
    if let (Some(filter), false) = (seccomp, no_new_privs) {
        seccomp_listener = filter.load()?;
    }
    let caps = process
        .capabilities()
        .clone()
        .unwrap_or_else(capabilities::empty);
    capabilities::drop_bounding(&caps)?;

    // chdir before the uid changes, as runc does, so a cwd only root can reach
    // works; if root cannot (a root-squashed mount), retry as the user.
    let cwd = process.cwd();
    let early_chdir = nix::unistd::chdir(cwd);
    identity::switch_user(process.user(), true)?;
    capabilities::apply(&caps)?;
    if let Some(umask) = process.user().umask() {
        identity::set_umask(umask);
    }
    if early_chdir.is_err() {
        nix::unistd::chdir(cwd)
            .map_err(|e| Error::sys(format!("chdir to process.cwd {}", cwd.display()), e))?;
    }
    check_cwd_inside(cwd)?;

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .map(str::to_owned);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = identity::home_for_uid(process.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    let args = process.args().clone().unwrap_or_default();
    let first = args
        .first()
        .ok_or_else(|| Error::Invalid("process.args: must name a program to run".into()))?;
    let path = identity::lookup_path(first, path_var.as_deref())?;
    // seccomp with no_new_privs: last, so the filter sees as few of the
    // runtime's own syscalls as possible.
    if let (Some(filter), true) = (seccomp, no_new_privs) {
        seccomp_listener = filter.load()?;
    }
    Ok(Program {
        path: cstring(path.as_os_str().as_encoded_bytes(), "program path")?,
        argv: args
            .iter()
            .map(|a| cstring(a.as_bytes(), "process.args"))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| cstring(e.as_bytes(), "process.env"))
            .collect::<Result<_>>()?,
        seccomp_listener,
    })
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Invalid(format!("{what}: contains a NUL byte")))
}

/// The working directory must resolve inside the container's root: a cwd
/// reached through a descriptor leaked from the host would let the program walk
/// the host's filesystem (CVE-2024-21626). getcwd(2) prefixes a directory
/// outside the process's root with "(unreachable)".
fn check_cwd_inside(want: &Path) -> Result<()> {
    let cwd = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", e))?;
    if !cwd.is_absolute() || cwd.starts_with("(unreachable)") {
        return Err(Error::Invalid(format!(
            "process.cwd {}: resolves outside the container's root",
            want.display()
        )));
    }
    Ok(())
}

/// The standard streams a container process gets instead of the runtime's
/// own (the monitor hands it pipes or a pty it owns).
#[derive(Debug)]
pub struct Stdio {
    /// Becomes descriptor 0.
    pub stdin: OwnedFd,
    /// Becomes descriptor 1.
    pub stdout: OwnedFd,
    /// Becomes descriptor 2.
    pub stderr: OwnedFd,
}

/// Installs `stdio` as descriptors 0, 1 and 2 of this process. Each is first
/// copied above 2, so a stream that already sits on 0–2 is not overwritten
/// before it is used.
pub fn install_stdio(stdio: &Stdio) -> Result<()> {
    let high = [&stdio.stdin, &stdio.stdout, &stdio.stderr]
        .iter()
        .map(|fd| berth_sys::misc::dup_above(fd.as_fd(), 3))
        .collect::<nix::Result<Vec<OwnedFd>>>()
        .map_err(|e| Error::sys("dup the container's stdio", e))?;
    nix::unistd::dup2_stdin(&high[0]).map_err(|e| Error::sys("dup2 onto stdin", e))?;
    nix::unistd::dup2_stdout(&high[1]).map_err(|e| Error::sys("dup2 onto stdout", e))?;
    nix::unistd::dup2_stderr(&high[2]).map_err(|e| Error::sys("dup2 onto stderr", e))?;
    Ok(())
}

/// Closes every descriptor but stdio and the `preserve_fds` after them (they
/// become close-on-exec), resets signals, and execs `program` through the
/// trampoline. Returns only on failure.
///
/// The preserved range is left as it is: what the caller handed over reached
/// the runtime through an exec, so it is open and not close-on-exec and
/// survives this exec too; a number in the range that the caller left closed
/// may hold one of the runtime's own descriptors, which are close-on-exec and
/// must stay so (clearing the flag would leak them into the container), or
/// nothing, which is no error (`--preserve-fds` is an upper bound, as runc
/// and youki read it).
pub fn exec(trampoline: &Trampoline, program: &Program, preserve_fds: u32) -> Error {
    if let Err(e) = berth_sys::process::cloexec_from(3 + preserve_fds) {
        return Error::sys("close_range(CLOSE_RANGE_CLOEXEC)", e);
    }
    if let Err(e) = berth_sys::misc::reset_signals() {
        return Error::sys("reset signal dispositions", e);
    }
    let argv: Vec<&std::ffi::CStr> = program.argv.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = program.envp.iter().map(|e| e.as_c_str()).collect();
    let errno = trampoline.exec(&program.path, &argv, &envp);
    Error::sys(format!("exec {}", program.path.to_string_lossy()), errno)
}
