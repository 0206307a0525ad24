//! Linux namespaces: which to create (clone flags) and which to join (setns),
//! from the config's `linux.namespaces`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result};

/// `CLONE_NEWTIME`, which `nix` does not name (it shares its value with
/// CSIGNAL in clone(2) and works only with unshare(2) or clone3).
pub const CLONE_NEWTIME: libc::c_int = 0x80;

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(CLONE_NEWTIME),
    }
}

/// The name of a namespace type in /proc/PID/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace plan of one container.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces to create with clone(2) (never includes time).
    pub clone_flags: CloneFlags,
    /// A new time namespace (made with unshare(2) in an intermediate process).
    pub new_time: bool,
    /// A new user namespace: the parent writes its id maps.
    pub new_user: bool,
    /// A new cgroup namespace, unshared by the init once it is in its cgroup
    /// (so the namespace's root is the container's cgroup, not the runtime's).
    pub new_cgroup: bool,
    /// Namespaces to join, opened, user namespace first.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            clone_flags: CloneFlags::empty(),
            new_time: false,
            new_user: false,
            new_cgroup: false,
            joins: Vec::new(),
        }
    }
}

impl Plan {
    /// Splits the config's namespaces into those to create and those to join.
    pub fn from_config(namespaces: &[LinuxNamespace]) -> Self {
        let mut plan = Plan::default();
        for ns in namespaces {
            match ns.path() {
                Some(p) => plan.joins.push((ns.typ(), p.clone())),
                None if ns.typ() == LinuxNamespaceType::Time => plan.new_time = true,
                None if ns.typ() == LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                None => {
                    plan.clone_flags |= flag(ns.typ());
                    if ns.typ() == LinuxNamespaceType::User {
                        plan.new_user = true;
                    }
                }
            }
        }
        // Joining a user namespace first gives the capabilities needed to join
        // the others it owns (setns(2)).
        plan.joins
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        plan
    }

    /// Whether the init must be cloned from an intermediate process: joining
    /// namespaces (setns would change the runtime process itself) or a new time
    /// namespace (unshare affects only children).
    pub fn needs_intermediate(&self) -> bool {
        self.new_time || !self.joins.is_empty()
    }

    /// Whether the parent must place the init in its cgroup: an init in a user
    /// namespace has no rights on the host's cgroup files, so it waits for the
    /// parent; otherwise it places itself and no round trip is needed.
    pub fn parent_places_init(&self) -> bool {
        self.in_user_namespace()
    }

    /// Whether the container has no mount namespace of its own (none new,
    /// none joined): it then inherits the runtime's, the host's, and its
    /// mounts are made there (see `rootfs::prepare_in_host_namespace`).
    pub fn shares_host_mounts(&self) -> bool {
        !self.clone_flags.contains(CloneFlags::CLONE_NEWNS)
            && !self
                .joins
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::Mount)
    }

    /// Whether the container gets a new user namespace or joins one.
    pub fn in_user_namespace(&self) -> bool {
        self.new_user
            || self
                .joins
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User)
    }
}

/// Opens every namespace to join (before joining any, since joining a mount
/// namespace changes how later paths resolve).
pub fn open_all(
    joins: &[(LinuxNamespaceType, PathBuf)],
) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    joins
        .iter()
        .map(|(t, p)| Ok((*t, open_ns(*t, p)?)))
        .collect()
}

fn open_ns(t: LinuxNamespaceType, path: &Path) -> Result<OwnedFd> {
    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open {t} namespace {}", path.display()), e))
}

/// Joins the opened namespaces in order.
pub fn join_all(fds: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in fds {
        setns(fd, flag(*t)).map_err(|e| Error::sys(format!("setns {t} namespace"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build().expect("namespace"),
            None => b.build().expect("namespace"),
        }
    }

    #[test]
    fn plan_splits_new_and_joined_with_user_first() {
        let plan = Plan::from_config(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/proc/1/ns/net")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Mount, None),
        ]);
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(plan.joins[0].0, LinuxNamespaceType::User);
        assert!(plan.needs_intermediate());
        assert!(plan.in_user_namespace());
        assert!(!plan.new_user);
        assert!(!plan.shares_host_mounts());
    }

    #[test]
    fn mount_namespace_new_joined_or_none() {
        assert!(Plan::from_config(&[]).shares_host_mounts());
        assert!(Plan::from_config(&[ns(LinuxNamespaceType::Pid, None)]).shares_host_mounts());
        assert!(
            !Plan::from_config(&[ns(LinuxNamespaceType::Mount, Some("/proc/1/ns/mnt"))])
                .shares_host_mounts()
        );
    }

    #[test]
    fn new_namespaces_only_need_no_intermediate() {
        let plan = Plan::from_config(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::User, None),
        ]);
        assert!(!plan.needs_intermediate());
        assert!(plan.new_user);
        let plan = Plan::from_config(&[ns(LinuxNamespaceType::Time, None)]);
        assert!(plan.needs_intermediate());
        assert!(plan.clone_flags.is_empty());
    }
}
