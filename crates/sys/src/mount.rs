//! `mount_setattr(2)`, which neither `nix` nor `rustix` wraps: it changes the
//! properties of a mount (or a whole tree with `AT_RECURSIVE`) in one call,
//! and is the only way to make an ID-mapped mount (`MOUNT_ATTR_IDMAP`).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `MOUNT_ATTR_IDMAP` from linux/mount.h: idmap the mount with the user
/// namespace given in [`MountAttr::userns_fd`].
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (linux/mount.h, `MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    /// `MOUNT_ATTR_*` flags to set.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` flags to clear.
    pub attr_clr: u64,
    /// An `MS_*` propagation type, or 0 to leave it.
    pub propagation: u64,
    /// A user namespace descriptor, read only with `MOUNT_ATTR_IDMAP`.
    pub userns_fd: u64,
}

/// Applies `attr` to the mount `fd` names (an `open_tree(2)` descriptor or
/// any descriptor on a mount's root), and with `recursive` to every mount
/// below it (`AT_RECURSIVE`).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: the path is a NUL-terminated empty string (AT_EMPTY_PATH makes
    // the call act on `fd` itself); `attr` points to a live `struct
    // mount_attr` whose size we pass, and the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
