//! Process attributes that `nix` leaves unwrapped: the session keyring,
//! signal dispositions, pidfds.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// `KEYCTL_JOIN_SESSION_KEYRING` from linux/keyctl.h.
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;

/// Joins a new session keyring named `name` (`keyctl(2)`), so a container does
/// not share the runtime's keys. Returns the keyring's serial number.
pub fn join_session_keyring(name: &CStr) -> nix::Result<i64> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads one NUL-terminated string,
    // which `name` is, and writes no memory of ours.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Sets every catchable signal back to its default action and empties the
/// signal mask. A container's program must not inherit the runtime's choices:
/// exec(2) keeps ignored signals ignored and the mask as it was, and Rust's
/// runtime ignores SIGPIPE.
pub fn reset_signals() -> nix::Result<()> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context, so
        // none of sigaction's handler-safety requirements apply.
        unsafe { sigaction(sig, &dfl) }?;
    }
    SigSet::empty().thread_set_mask()
}

/// Opens a pidfd for `pid` (`pidfd_open(2)`): a handle that cannot be
/// confused with a later process reusing the pid, and that poll(2) reports
/// readable when the process exits.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// Sends `sig` through a pidfd (`pidfd_send_signal(2)`).
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: libc::c_int) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a NULL siginfo is allowed (the kernel fills one as kill(2)
    // does); the descriptor is open for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Clears close-on-exec on descriptor number `fd`, which the runtime was
/// handed by its caller (`--preserve-fds`) and so holds only as a number.
pub fn set_inheritable(fd: std::os::fd::RawFd) -> nix::Result<()> {
    // SAFETY: F_GETFD and F_SETFD read and change only the descriptor's flags;
    // a number that is not an open descriptor yields EBADF and changes nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Errno::last());
    }
    // SAFETY: as above.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Duplicates `fd` onto the lowest free descriptor number at or above `min`,
/// close-on-exec (`fcntl(F_DUPFD_CLOEXEC)`).
pub fn dup_above(fd: std::os::fd::BorrowedFd<'_>, min: i32) -> nix::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor; `fd` is borrowed,
    // so open for the whole call.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}
