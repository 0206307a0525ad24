//! Process creation and replacement: `clone(2)` with namespace flags in fork
//! style, `execveat(2)`, and `close_range(2)`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// What `clone_fork` returns in each of the two processes.
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    /// In the parent: the child's pid (as seen from the parent's pid namespace).
    Parent(Pid),
    /// In the child, with the proof that it has a single thread.
    Child(SingleThreaded),
}

/// Proof that this process has exactly one thread: the child of a fork has
/// only the thread that called it. Lets a forked child fork again without
/// counting its threads through /proc (which may by then be another pid
/// namespace's /proc, after setns into a container's mount namespace).
#[derive(Debug, PartialEq, Eq)]
pub struct SingleThreaded(());

/// Counts the threads of this process by listing `/proc/self/task`.
pub fn thread_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// `clone(2)` with `flags | SIGCHLD` and no new stack: the child continues from
/// this call on a copy of the parent's memory, exactly like `fork(2)`, but is
/// born into the namespaces that `flags` asks for (a new pid namespace makes it
/// pid 1 there).
///
/// Refuses with `EBUSY` when the calling process has more than one thread: a
/// fork of a multithreaded process may copy a lock that another thread holds,
/// and the child would deadlock on it. Runtime code must therefore run before
/// any thread (or async runtime) is started.
pub fn clone_fork(flags: CloneFlags) -> nix::Result<Forked> {
    match thread_count() {
        Ok(1) => clone_fork_single(&SingleThreaded(()), flags),
        Ok(_) => Err(Errno::EBUSY),
        Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    }
}

/// [`clone_fork`] in a process already known to be single-threaded.
pub fn clone_fork_single(_proof: &SingleThreaded, flags: CloneFlags) -> nix::Result<Forked> {
    let raw_flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a NULL stack pointer the kernel gives the child a copy of the
    // caller's stack, as fork(2) does; we checked above that this process has a
    // single thread, so no lock held by another thread can be copied into the
    // child in a locked state. Parent and child pointers are NULL, so the kernel
    // writes to no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw_flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child(SingleThreaded(()))),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// Ends this process at once with `code` (`_exit(2)`): no atexit handlers, no
/// flushing of buffers that a forked child shares with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an int and does not return; it runs no user code.
    unsafe { libc::_exit(code) }
}

/// Executes the program open at `fd` (`execveat(fd, "", argv, envp,
/// AT_EMPTY_PATH)`). Only returns on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let empty = c"";
    // SAFETY: both pointer arrays are NULL-terminated and point into `argv` and
    // `envp`, which outlive this call; `empty` is a valid C string; `fd` is an
    // open descriptor borrowed for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

/// Marks every descriptor from `first` up as close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`), so that a container's
/// process inherits stdio and the descriptors it was given, and nothing else.
///
/// Where close_range is refused (a kernel before 5.11, or a seccomp
/// allowlist, already loaded by then, that does not name it) each
/// descriptor listed in `/proc/self/fd` is marked with fcntl(2) instead.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    match close_range_cloexec(first) {
        Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => cloexec_from_proc(first),
        other => other,
    }
}

/// The fallback of [`cloexec_from`]: one `F_SETFD` per open descriptor.
fn cloexec_from_proc(first: u32) -> nix::Result<()> {
    let dir = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    // Collected first: the directory's own descriptor is in the listing and
    // is closed once the iterator is dropped.
    let fds: Vec<libc::c_int> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &libc::c_int| u32::try_from(*fd).is_ok_and(|fd| fd >= first))
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD and F_SETFD read and change only the descriptor's
        // flags; a number that is no longer open yields EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

fn close_range_cloexec(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes flags on this process's descriptor
    // table; it touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_sees_this_test_thread() {
        // The test harness runs tests on their own threads, so there are at
        // least two; clone_fork must refuse rather than fork them.
        let n = thread_count().expect("read /proc/self/task");
        assert!(n >= 1);
        if n > 1 {
            assert_eq!(clone_fork(CloneFlags::empty()), Err(Errno::EBUSY));
        }
    }
}

/// `struct sched_attr` of `sched_setattr(2)` in its first layout
/// (`SCHED_ATTR_SIZE_VER0`, 48 bytes: no utilisation clamps).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    /// The structure's size; [`sched_setattr_self`] fills it in.
    pub size: u32,
    /// `SCHED_OTHER` (0), `SCHED_FIFO` (1), … `SCHED_DEADLINE` (6).
    pub sched_policy: u32,
    /// `SCHED_FLAG_*` bits.
    pub sched_flags: u64,
    /// The nice value, for `SCHED_OTHER` and `SCHED_BATCH`.
    pub sched_nice: i32,
    /// The static priority, for `SCHED_FIFO` and `SCHED_RR`.
    pub sched_priority: u32,
    /// `SCHED_DEADLINE`'s runtime in nanoseconds.
    pub sched_runtime: u64,
    /// `SCHED_DEADLINE`'s deadline in nanoseconds.
    pub sched_deadline: u64,
    /// `SCHED_DEADLINE`'s period in nanoseconds.
    pub sched_period: u64,
}

/// Sets this process's scheduling policy and attributes (`sched_setattr(2)`
/// on pid 0); `nix` does not wrap it.
pub fn sched_setattr_self(attr: &SchedAttr) -> nix::Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel reads `attr.size` bytes from the pointer, which is a
    // live, initialised `SchedAttr` of exactly that size and C layout; pid 0
    // is the caller and the flags argument must be 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}

/// Sets this process's I/O priority (`ioprio_set(IOPRIO_WHO_PROCESS, 0,
/// ioprio)`, the class in bits 13-15 and its data below); `nix` does not wrap it.
pub fn ioprio_set_self(ioprio: i32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
    Errno::result(ret).map(drop)
}

/// Sets this process's execution domain (`personality(2)`), e.g. `PER_LINUX32`
/// so that `uname -m` reports a 32-bit machine.
pub fn set_personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: personality takes one integer and changes only this process's
    // execution domain; it touches no memory of ours.
    let ret = unsafe { libc::personality(persona) };
    Errno::result(ret).map(drop)
}

/// Sets the calling thread's NUMA memory policy (`set_mempolicy(2)`): `mode`
/// is an `MPOL_*` mode with its `MPOL_F_*` flags or'ed in, `nodemask` a bit
/// per node (bit n of word n / 64), all of whose bits the kernel reads.
pub fn set_mempolicy(mode: i32, nodemask: &[libc::c_ulong]) -> nix::Result<()> {
    let bits = nodemask.len() * libc::c_ulong::BITS as usize;
    // The kernel reads one bit less than `maxnode` says (a historical
    // off-by-one that every caller compensates for), so pass bits + 1; an
    // empty mask is passed as NULL with maxnode 0.
    let (ptr, maxnode) = if nodemask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (nodemask.as_ptr(), bits as libc::c_ulong + 1)
    };
    // SAFETY: the kernel reads `maxnode - 1` bits from `ptr`, which is
    // exactly the length of `nodemask` (or nothing when it is NULL), and
    // writes no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
