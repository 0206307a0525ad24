//! A container without a mount namespace: the runtime spec says it inherits
//! the runtime's, so its mounts are made in the host's mount namespace.
//!
//! What keeps the host intact:
//!
//! - the propagation of the host's mounts is left alone (no `--make-rslave /`
//!   as in the normal path, which would change the host's own `/`);
//! - the rootfs gets a fresh bind mount of its own, made a recursive slave: the
//!   container's mounts sit on that bind, so none of them propagates to the
//!   host's peers, and a read-only root or a remount touches the bind, never
//!   the host's filesystem the bundle lives on. (On a shared mount the bind
//!   itself is copied to the peers, as any mount there is; its unmount
//!   propagates the same way and removes the copies.)
//! - no `pivot_root` and no `MS_MOVE` onto `/` (both would change the host's
//!   root): the init `chroot`s into the rootfs;
//! - the runtime records which mounts existed at or below the rootfs before
//!   the container (their mount ids), and `delete`, or a failed `create`,
//!   detaches every other mount there, deepest first. runc leaves proc, dev
//!   and sys mounted under the bundle instead.
//!
//! A chroot is weaker than a pivot: a process of the container with
//! `CAP_SYS_CHROOT` can walk out of it, and one with `CAP_SYS_ADMIN` can
//! mount over the host. That is what a config asks for when it shares the
//! host's mount namespace; berth's daemon never writes such configs.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot};
use oci_spec::runtime::Spec;

use super::mounts::{mount_all, UmaskGuard};
use super::secure_join::display;
use super::{mountinfo, Result, RootfsError, RootfsOptions};

/// Reads the mount table for `what`.
fn table(what: &str) -> Result<Vec<mountinfo::MountEntry>> {
    mountinfo::read().map_err(|e| {
        RootfsError::sys(
            format!("read /proc/self/mountinfo to {what}"),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })
}

/// The ids of the mounts at `rootfs` or below it, now.
pub(super) fn mounts_at_or_below(rootfs: &Path) -> Result<Vec<u64>> {
    Ok(
        table("list the mounts under the rootfs before the container")?
            .into_iter()
            .filter(|m| m.mount_point.starts_with(rootfs))
            .map(|m| m.id)
            .collect(),
    )
}

pub(super) fn prepare(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<()> {
    let _umask = UmaskGuard::zero();
    // Recursive, so mounts the host already has under the rootfs stay
    // visible on the bind (as copies, which the cleanup removes with it).
    super::mounts::bind_onto_itself(rootfs, " in the host's mount namespace")?;
    // Only the bind made above and its copies: the host's mounts keep their
    // propagation, and the container's mounts stay off the host's peers.
    mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        RootfsError::sys(
            format!("make the bind of the rootfs {} a slave", display(rootfs)),
            e,
        )
    })?;
    mount_all(spec, rootfs, opts)
}

/// `chroot` into the rootfs, and chdir to its `/`.
pub(super) fn enter(rootfs: &Path) -> Result<()> {
    chdir(rootfs)
        .map_err(|e| RootfsError::sys(format!("chdir into the rootfs {}", display(rootfs)), e))?;
    chroot(".").map_err(|e| RootfsError::sys(format!("chroot into {}", display(rootfs)), e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir to the new /", e))
}

/// Detaches every mount at or below `rootfs` whose id is not in `kept`,
/// deepest first. Call it once no process of the container is left: the
/// mount points are named by path, and a live process could swap a
/// directory on the way for a symlink (the last component is not followed
/// in any case).
pub(super) fn unmount(rootfs: &Path, kept: &[u64]) -> Result<()> {
    let mut ours: Vec<_> = table("find the container's mounts under the rootfs")?
        .into_iter()
        .filter(|m| m.mount_point.starts_with(rootfs) && !kept.contains(&m.id))
        .collect();
    // Deepest first; at one mount point the later (upper) mount first.
    ours.sort_by_key(|m| {
        (
            std::cmp::Reverse(m.mount_point.components().count()),
            std::cmp::Reverse(m.id),
        )
    });
    let mut failed = None;
    for m in &ours {
        match umount2(
            &m.mount_point,
            MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
        ) {
            // Gone already: detached with its parent, or by someone else.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => {
                // Every failure is logged; the first is returned.
                let path = display(&m.mount_point);
                tracing::warn!(
                    "unmount {path} (the container's, in the host's mount namespace): {e}"
                );
                failed.get_or_insert(RootfsError::sys(
                    format!(
                        "unmount {}, a mount of the container in the host's mount namespace",
                        display(&m.mount_point)
                    ),
                    e,
                ));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
