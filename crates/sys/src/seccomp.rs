//! Loading a compiled seccomp filter with `seccomp(2)` directly, so the
//! caller chooses every filter flag (libseccomp 2.5 knows no
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`) and gets the notify listener back
//! as an owned descriptor.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `SECCOMP_SET_MODE_FILTER` from linux/seccomp.h.
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

/// `SECCOMP_FILTER_FLAG_TSYNC`: synchronise all threads to the filter.
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action but allow.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep speculative store bypass enabled.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification listener.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: TSYNC reports ESRCH instead of a tid.
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: a notified task waits killably.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Installs the classic-BPF `program` (8-byte `sock_filter` records in native
/// byte order, as libseccomp exports them) as a seccomp filter of this thread
/// with `flags`. With [`FLAG_NEW_LISTENER`] it returns the listener.
///
/// The caller needs `no_new_privs` or CAP_SYS_ADMIN, as the kernel requires.
pub fn set_mode_filter(program: &[u8], flags: u32) -> nix::Result<Option<OwnedFd>> {
    if program.is_empty()
        || !program.len().is_multiple_of(8)
        || program.len() / 8 > u16::MAX as usize
    {
        return Err(Errno::EINVAL);
    }
    let mut filters: Vec<libc::sock_filter> = program
        .chunks_exact(8)
        .map(|r| libc::sock_filter {
            code: u16::from_ne_bytes([r[0], r[1]]),
            jt: r[2],
            jf: r[3],
            k: u32::from_ne_bytes([r[4], r[5], r[6], r[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as libc::c_ushort,
        filter: filters.as_mut_ptr(),
    };
    // SAFETY: `prog` points to `filters`, `len` records long, both alive for
    // the whole call; the kernel copies the program and writes nothing back.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returned a new descriptor
        // (close-on-exec) that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }));
    }
    Ok(None)
}

/// Whether this kernel knows the filter flag `flag`: asked by passing it with
/// no program, which a kernel that knows the flag refuses with EFAULT (it
/// got as far as reading the program) and one that does not with EINVAL.
pub fn flag_supported(flag: u32) -> bool {
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    let flags = if flag == FLAG_WAIT_KILLABLE_RECV {
        flag | FLAG_NEW_LISTENER
    } else {
        flag
    };
    // SAFETY: a NULL program makes the kernel fail with EFAULT before it
    // installs anything; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}
