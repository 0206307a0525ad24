//! ID-mapped bind mounts: the `idmap` and `ridmap` options and
//! `mounts[].uidMappings`/`gidMappings` (runtime-spec config.md, "Mounts").
//!
//! The kernel way, in two halves:
//!
//! 1. In the runtime, before the init is cloned ([`prepare`]), as root on
//!    the host: `open_tree(OPEN_TREE_CLONE)` makes a detached copy of the
//!    bind source (with `AT_RECURSIVE` for `rbind`), and
//!    `mount_setattr(MOUNT_ATTR_IDMAP)` gives it the mapping of a user
//!    namespace - a short-lived one made for the mount's own mapping, or
//!    the container's. This half must run outside the container's user
//!    namespace: the kernel idmaps a mount only for a caller privileged over
//!    the filesystem's superblock, which for a host filesystem is host root.
//! 2. In the init, in place of the bind ([`super::mounts`]): `move_mount`
//!    of the detached tree onto the destination resolved inside the rootfs.
//!    The descriptors reach the init through the clone (fork semantics).
//!
//! A mapping is written to the user namespace's `uid_map` as it stands
//! (`containerID hostID size`), as runc and crun do: a file whose owner on
//! disk is `containerID + n` is seen, and written, as host id `hostID + n`.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use rustix::mount::OpenTreeFlags;

use berth_sys::mount::{mount_setattr, MountAttr, MOUNT_ATTR_IDMAP};
use berth_sys::process::{clone_fork, exit_now, Forked};

use super::options::{parse_options, ParsedOptions};
use super::secure_join::display;
use super::{mountinfo, Result, RootfsError};

/// The detached, ID-mapped trees made by [`prepare_idmapped`](super::prepare_idmapped), by mount index.
/// Cloning shares the descriptors (the init gets them through the clone).
#[derive(Debug, Clone, Default)]
pub struct IdmappedTrees {
    trees: Vec<(usize, Arc<OwnedFd>)>,
}

impl IdmappedTrees {
    /// The tree made for `mounts[index]`, if that mount is ID-mapped.
    pub fn get(&self, index: usize) -> Option<&OwnedFd> {
        self.trees
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_ref())
    }

    /// No mount of the spec is ID-mapped.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

/// The mount asks for an idmapping: an `idmap`/`ridmap` option or a
/// mapping of its own.
pub fn requested(m: &Mount, parsed: &ParsedOptions) -> bool {
    parsed.idmap || has_maps(m.uid_mappings()) || has_maps(m.gid_mappings())
}

fn has_maps(maps: &Option<Vec<LinuxIdMapping>>) -> bool {
    maps.as_ref().is_some_and(|m| !m.is_empty())
}

/// Where a mount's mapping comes from.
#[derive(Debug, PartialEq, Eq)]
enum MappingSource<'a> {
    /// The mount's own `uidMappings`/`gidMappings`, or the container's new
    /// user namespace's (the same mapping, so an equal namespace serves).
    Maps(&'a [LinuxIdMapping], &'a [LinuxIdMapping]),
    /// The user namespace the container joins.
    Joined(&'a Path),
}

/// The spec's rule: the mount's own mappings if it has them, else the
/// container's user namespace; without either, an error.
fn mapping_source<'a>(i: usize, m: &'a Mount, spec: &'a Spec) -> Result<MappingSource<'a>> {
    if let (Some(uid), Some(gid)) = (m.uid_mappings(), m.gid_mappings()) {
        if !uid.is_empty() && !gid.is_empty() {
            return Ok(MappingSource::Maps(uid, gid));
        }
    }
    let linux = spec.linux().as_ref();
    let user_ns = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    match (user_ns.and_then(|n| n.path().as_deref()), user_ns, linux) {
        (Some(path), _, _) => Ok(MappingSource::Joined(path)),
        (None, Some(_), Some(linux)) => Ok(MappingSource::Maps(
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )),
        _ => Err(no_mapping(i)),
    }
}

fn no_mapping(i: usize) -> RootfsError {
    RootfsError::invalid(
        format!("mounts[{i}].options"),
        "idmap",
        "an ID-mapped mount without uidMappings and gidMappings of its own takes the \
         container's user namespace mapping, and this container has no user namespace",
    )
}

/// Checks a mount's idmapping fields against the spec's rules (pure):
/// only bind mounts, both mappings or neither, and a mapping to use.
pub(super) fn validate(i: usize, m: &Mount, parsed: &ParsedOptions, spec: &Spec) -> Result<()> {
    if !requested(m, parsed) {
        return Ok(());
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if !(parsed.is_bind() || typ == "bind") {
        return Err(RootfsError::Unsupported {
            field: format!("mounts[{i}].type"),
            value: typ.to_owned(),
            what: "an ID-mapped mount of anything but a bind mount".to_owned(),
        });
    }
    match (has_maps(m.uid_mappings()), has_maps(m.gid_mappings())) {
        (true, false) => {
            return Err(RootfsError::invalid(
                format!("mounts[{i}].gidMappings"),
                "",
                "must be given along with uidMappings",
            ))
        }
        (false, true) => {
            return Err(RootfsError::invalid(
                format!("mounts[{i}].uidMappings"),
                "",
                "must be given along with gidMappings",
            ))
        }
        _ => {}
    }
    mapping_source(i, m, spec).map(|_| ())
}

/// Makes the detached, ID-mapped tree of every mount that asks for one.
/// Runs in the runtime as root on the host, before the init is cloned;
/// `bundle` is where relative bind sources are found.
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<IdmappedTrees> {
    let mut trees = IdmappedTrees::default();
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    // One user namespace per distinct mapping, dropped once every tree has
    // its mapping (the mounts keep what they need of it).
    let mut namespaces: HashMap<String, OwnedFd> = HashMap::new();
    for (i, m) in mounts.iter().enumerate() {
        let parsed = parse_options(m.options().as_deref().unwrap_or(&[]));
        if !requested(m, &parsed) {
            continue;
        }
        validate(i, m, &parsed, spec)?;
        if !nix::unistd::geteuid().is_root() {
            return Err(RootfsError::Unsupported {
                field: format!("mounts[{i}].options"),
                value: "idmap".into(),
                what: "an ID-mapped mount made by an unprivileged user (the kernel idmaps \
                       a host filesystem only for host root)"
                    .into(),
            });
        }
        let source = match m.source().as_deref() {
            Some(s) if s.is_absolute() => s.to_path_buf(),
            Some(s) => bundle.join(s),
            None => {
                return Err(RootfsError::invalid(
                    format!("mounts[{i}].source"),
                    "",
                    "a bind mount needs a source",
                ))
            }
        };
        let key = match mapping_source(i, m, spec)? {
            MappingSource::Maps(uid, gid) => format!("maps {} / {}", map_text(uid), map_text(gid)),
            MappingSource::Joined(path) => format!("path {}", path.display()),
        };
        if !namespaces.contains_key(&key) {
            let fd = match mapping_source(i, m, spec)? {
                MappingSource::Maps(uid, gid) => userns_with_maps(i, uid, gid)?,
                MappingSource::Joined(path) => {
                    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
                        RootfsError::sys(
                            format!(
                                "mounts[{i}]: open the container's user namespace {}",
                                display(path)
                            ),
                            e,
                        )
                    })?
                }
            };
            namespaces.insert(key.clone(), fd);
        }
        let userns = namespaces.get(&key).ok_or_else(|| {
            RootfsError::sys(
                format!("mounts[{i}]: find its user namespace"),
                Errno::ENOENT,
            )
        })?;
        let tree = idmapped_tree(i, &source, &parsed, userns)?;
        trees.trees.push((i, Arc::new(tree)));
    }
    Ok(trees)
}

/// A mapping as `uid_map` takes it.
fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The detached copy of `source` with the mapping of `userns`.
fn idmapped_tree(
    i: usize,
    source: &Path,
    parsed: &ParsedOptions,
    userns: &OwnedFd,
) -> Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if parsed.is_recursive_bind() {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = rustix::mount::open_tree(rustix::fs::CWD, source, flags).map_err(|e| {
        RootfsError::sys(
            format!(
                "mounts[{i}]: open_tree(OPEN_TREE_CLONE) of {}",
                display(source)
            ),
            Errno::from_raw(e.raw_os_error()),
        )
    })?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: u64::try_from(std::os::fd::AsRawFd::as_raw_fd(userns)).unwrap_or(u64::MAX),
        ..MountAttr::default()
    };
    // `ridmap` maps every mount of an rbind; `idmap` only its top, so a
    // submount on a filesystem without idmapping support still works.
    match mount_setattr(tree.as_fd(), parsed.idmap_recursive, &attr) {
        Ok(()) => Ok(tree),
        Err(Errno::EINVAL) => Err(RootfsError::invalid(
            format!("mounts[{i}].source"),
            display(source),
            format!(
                "cannot be ID-mapped: its filesystem ({}) does not support idmapped mounts{}",
                filesystem_of(source),
                if parsed.idmap_recursive {
                    ", or a mount below it does (ridmap maps them all)"
                } else {
                    ""
                }
            ),
        )),
        Err(e) => Err(RootfsError::sys(
            format!(
                "mounts[{i}]: mount_setattr(MOUNT_ATTR_IDMAP) on the copy of {}",
                display(source)
            ),
            e,
        )),
    }
}

/// The filesystem type of the mount `path` is on, from mountinfo, for a
/// message ("ext4", "tmpfs"); "unknown" when it cannot be found.
fn filesystem_of(path: &Path) -> String {
    let Ok(real) = std::fs::canonicalize(path) else {
        return "unknown".into();
    };
    mountinfo::read()
        .ok()
        .and_then(|table| {
            table
                .into_iter()
                .filter(|m| real.starts_with(&m.mount_point))
                .max_by_key(|m| m.mount_point.as_os_str().len())
                .map(|m| m.fs_type)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A user namespace with the given maps, kept by its descriptor: a child
/// clones into a new user namespace and waits; the runtime (root on the
/// host) writes its maps, opens `/proc/PID/ns/user` and lets it exit.
fn userns_with_maps(i: usize, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (wait_read, wait_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| {
        RootfsError::sys(
            format!("mounts[{i}]: make a pipe for the user namespace helper"),
            e,
        )
    })?;
    let child = match clone_fork(CloneFlags::CLONE_NEWUSER) {
        Ok(Forked::Child(_)) => {
            drop(wait_write);
            let mut byte = [0u8; 1];
            // Returns at end-of-file, when the runtime is done with us.
            let _ = nix::unistd::read(&wait_read, &mut byte);
            exit_now(0)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            return Err(RootfsError::sys(
                format!("mounts[{i}]: clone a helper into a new user namespace for the mapping"),
                e,
            ))
        }
    };
    drop(wait_read);
    let result = write_maps(i, child, uid, gid).and_then(|()| {
        let path = format!("/proc/{child}/ns/user");
        open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootfsError::sys(format!("mounts[{i}]: open {path}"), e))
    });
    drop(wait_write);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

fn write_maps(i: usize, pid: Pid, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, map_text(maps)).map_err(|e| {
            RootfsError::sys(
                format!("mounts[{i}]: write {} for the mapping", path.display()),
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).expect("spec")
    }

    fn check(v: serde_json::Value) -> std::result::Result<(), String> {
        let s = spec(v);
        let m = &s.mounts().as_deref().expect("mounts")[0];
        let parsed = parse_options(m.options().as_deref().unwrap_or(&[]));
        validate(0, m, &parsed, &s).map_err(|e| e.to_string())
    }

    fn base(mount: serde_json::Value, userns: bool) -> serde_json::Value {
        let mut namespaces = vec![serde_json::json!({"type": "mount"})];
        if userns {
            namespaces.push(serde_json::json!({"type": "user"}));
        }
        serde_json::json!({
            "ociVersion": "1.2.0",
            "mounts": [mount],
            "linux": {
                "namespaces": namespaces,
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }
        })
    }

    #[test]
    fn the_spec_rules_for_a_mapping() {
        let maps = serde_json::json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
        let own = serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"],
            "uidMappings": maps, "gidMappings": maps
        });
        check(base(own.clone(), false)).expect("own mappings need no user namespace");
        check(base(own, true)).expect("own mappings with a user namespace");

        let bare = serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["rbind", "ridmap"]
        });
        check(base(bare.clone(), true)).expect("the container's mapping");
        let e = check(base(bare, false)).expect_err("no mapping at all");
        assert!(e.contains("has no user namespace"), "{e}");

        let half = serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": maps
        });
        let e = check(base(half, true)).expect_err("uid without gid");
        assert!(e.starts_with("mounts[0].gidMappings"), "{e}");

        let tmpfs = serde_json::json!({
            "destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]
        });
        let e = check(base(tmpfs, true)).expect_err("not a bind");
        assert!(e.contains("anything but a bind mount"), "{e}");

        let plain = serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"]
        });
        check(base(plain, false)).expect("not idmapped at all");
    }

    #[test]
    fn mapping_source_prefers_the_mounts_own() {
        let s = spec(base(
            serde_json::json!({
                "destination": "/m", "type": "bind", "source": "/tmp", "options": ["idmap"],
                "uidMappings": [{"containerID": 1, "hostID": 2, "size": 3}],
                "gidMappings": [{"containerID": 4, "hostID": 5, "size": 6}]
            }),
            true,
        ));
        let m = &s.mounts().as_deref().expect("mounts")[0];
        match mapping_source(0, m, &s).expect("source") {
            MappingSource::Maps(uid, gid) => {
                assert_eq!(map_text(uid), "1 2 3\n");
                assert_eq!(map_text(gid), "4 5 6\n");
            }
            other => panic!("{other:?}"),
        }
    }
}
