//! Making the rootfs the process's `/`.
//!
//! `pivot_root(2)` rather than `chroot(2)`: after a pivot the host's tree is
//! unmounted from the container's namespace, so no chroot escape (a second
//! chroot and `..`) reaches it. The pivot is done without a temporary
//! directory (`pivot_root(".", ".")`, documented in pivot_root(2)), so the
//! rootfs need not be writable and nothing is left behind in it.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use super::secure_join::display;
use super::{mountinfo, Result, RootfsError};

pub(super) fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        return move_root(rootfs);
    }
    let old_root = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open the old root / before pivot_root", e))?;
    let new_root = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys(format!("open the rootfs {}", display(rootfs)), e))?;
    fchdir(&new_root)
        .map_err(|e| RootfsError::sys(format!("chdir into the rootfs {}", display(rootfs)), e))?;
    // new_root and put_old both ".": the old root ends up mounted on top of
    // the new one at "/", from where it is detached below.
    pivot_root(".", ".")
        .map_err(|e| RootfsError::sys(format!("pivot_root into {}", display(rootfs)), e))?;
    fchdir(&old_root)
        .map_err(|e| RootfsError::sys("chdir into the old root after pivot_root", e))?;
    // The old root's mounts may still be shared with the host: make them
    // slaves first, or the unmount below would propagate and unmount the
    // host's own tree.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("make the old root a recursive slave", e))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| RootfsError::sys("detach the old root after pivot_root", e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir to the new /", e))
}

/// `--no-pivot`: move the rootfs mount onto `/` and chroot into it, for roots
/// on a ramdisk where `pivot_root` is impossible.
///
/// The host's tree stays in the mount namespace below the chroot, so first
/// every full procfs and sysfs mount outside the rootfs is unmounted (or,
/// where a user namespace forbids that, covered with an empty tmpfs): the
/// kernel lets a process mount a new proc or sysfs only if a fully visible
/// one exists in its namespace, and the host's would make that check pass
/// for a container that should fail it (runc does the same).
fn move_root(rootfs: &Path) -> Result<()> {
    let table = mountinfo::read().map_err(|e| {
        RootfsError::sys(
            "read /proc/self/mountinfo to hide the host's proc and sys",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    let mut hide: Vec<_> = table
        .iter()
        .filter(|m| {
            (m.fs_type == "proc" || m.fs_type == "sysfs")
                && m.root == Path::new("/")
                && !m.mount_point.starts_with(rootfs)
        })
        .map(|m| m.mount_point.clone())
        .collect();
    // Deepest first, so a parent is not detached before its children.
    hide.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in hide {
        let fail =
            |e| RootfsError::sys(format!("hide the host's {} before chroot", display(&p)), e);
        mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(fail)?;
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => {
                mount(
                    Some("tmpfs"),
                    &p,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
        }
    }
    chdir(rootfs)
        .map_err(|e| RootfsError::sys(format!("chdir into the rootfs {}", display(rootfs)), e))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys(format!("move the rootfs {} onto /", display(rootfs)), e))?;
    chroot(".").map_err(|e| RootfsError::sys(format!("chroot into {}", display(rootfs)), e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir to the new /", e))
}
