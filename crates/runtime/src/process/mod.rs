//! The process chain: how the runtime process makes a container's init (or an
//! exec'd process) inside its namespaces, and what that process does before it
//! becomes the user's program.
//!
//! ```text
//! runtime ──clone(new namespaces)──▶ init (pid 1 in its pid namespace)
//!    │          or, when namespaces are joined by path or a time namespace is new:
//!    └─fork─▶ intermediate ──setns/unshare, clone──▶ init     (intermediate exits)
//! ```
//!
//! The runtime is single-threaded, so a plain clone(2) in fork style is safe
//! and costs one syscall; the intermediate is used only when it must be. The
//! runtime marks itself a child subreaper, so an init orphaned by the
//! intermediate is re-parented to it and can still be waited for.

pub mod attributes;
pub mod finalize;
pub mod init;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use berth_sys::process::{clone_fork, clone_fork_single, Forked, SingleThreaded};

use crate::error::{Error, Result};
use crate::namespaces::{self, Plan};
use crate::sync::{self, Channel, Message};

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::sys("prctl(PR_SET_CHILD_SUBREAPER)", e))
}

/// Starts a child in the namespaces of `plan` and runs `child_main` in it;
/// returns the child's pid (in the caller's pid namespace) and the parent's end
/// of the sync channel. `child_main` returns the exit status of the child if it
/// fails before it execs; it must report the cause on the channel first.
pub fn spawn(
    plan: &Plan,
    time_offsets: &[(String, i64, u32)],
    child_main: impl FnOnce(Channel) -> i32,
) -> Result<(Pid, Channel)> {
    let (parent_end, child_end) = sync::pair()?;
    if !plan.needs_intermediate() {
        return match clone_fork(plan.clone_flags).map_err(|e| clone_error(plan, e))? {
            Forked::Child(_) => {
                drop(parent_end);
                let code = child_main(child_end);
                berth_sys::process::exit_now(code)
            }
            Forked::Parent(pid) => {
                drop(child_end);
                Ok((pid, parent_end))
            }
        };
    }

    let joins = namespaces::open_all(&plan.joins)?;
    // The intermediate reports the init's pid on a channel of its own: the
    // init may already be sending on the main channel (Ready, when nothing
    // makes it wait for its parent) before the intermediate gets to write,
    // and one stream cannot say whose message came first.
    let (pid_parent_end, pid_child_end) = sync::pair()?;
    match clone_fork(nix::sched::CloneFlags::empty())
        .map_err(|e| Error::sys("fork the intermediate process", e))?
    {
        Forked::Child(single) => {
            drop(parent_end);
            drop(pid_parent_end);
            let pid = match join_and_clone(&single, plan, &joins, time_offsets) {
                Ok(Forked::Child(_)) => {
                    drop(pid_child_end);
                    let code = child_main(child_end);
                    berth_sys::process::exit_now(code)
                }
                Ok(Forked::Parent(pid)) => pid,
                Err(e) => {
                    let _ = pid_child_end.send(&Message::Failed(e.to_string()));
                    berth_sys::process::exit_now(1)
                }
            };
            let code = pid_child_end
                .send(&Message::Pid(pid.as_raw()))
                .map_or(1, |_| 0);
            berth_sys::process::exit_now(code)
        }
        Forked::Parent(intermediate) => {
            drop(child_end);
            drop(pid_child_end);
            let got = pid_parent_end.recv();
            // The intermediate exits right after it reports; reap it.
            let _ = waitpid(intermediate, None);
            match got? {
                Some(Message::Pid(p)) => Ok((Pid::from_raw(p), parent_end)),
                Some(Message::Failed(cause)) => Err(Error::Init(cause)),
                other => Err(Error::Init(format!(
                    "intermediate process: expected the init's pid, got {other:?}"
                ))),
            }
        }
    }
}

/// In the intermediate: joins the namespaces, makes a new time namespace if
/// asked, and clones the init.
fn join_and_clone(
    single: &SingleThreaded,
    plan: &Plan,
    joins: &[(oci_spec::runtime::LinuxNamespaceType, std::os::fd::OwnedFd)],
    time_offsets: &[(String, i64, u32)],
) -> Result<Forked> {
    namespaces::join_all(joins)?;
    if plan.new_time {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            namespaces::CLONE_NEWTIME,
        ))
        .map_err(|e| Error::sys("unshare time namespace", e))?;
        write_time_offsets(time_offsets)?;
    }
    clone_fork_single(single, plan.clone_flags).map_err(|e| clone_error(plan, e))
}

fn clone_error(plan: &Plan, e: nix::Error) -> Error {
    Error::sys(format!("clone into namespaces {:?}", plan.clone_flags), e)
}

/// Writes the time namespace's clock offsets (`/proc/self/timens_offsets`),
/// which the kernel accepts only before the first process enters it.
fn write_time_offsets(offsets: &[(String, i64, u32)]) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for (clock, secs, nanos) in offsets {
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| Error::io("write", "/proc/self/timens_offsets", e))
}

/// Writes a new user namespace's uid and gid maps from the parent.
pub fn write_id_maps(
    pid: Pid,
    uid: &[oci_spec::runtime::LinuxIdMapping],
    gid: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<()> {
    let fmt = |maps: &[oci_spec::runtime::LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, text) in [("uid_map", fmt(uid)), ("gid_map", fmt(gid))] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text.as_bytes()).map_err(|e| Error::io("write", &path, e))?;
    }
    Ok(())
}
