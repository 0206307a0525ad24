//! Berth's default seccomp profile as data (the OCI `linux.seccomp` section),
//! and docker-format profile files converted to that section. Data only (no
//! libseccomp, no syscalls), so berthd can fill a container's config without
//! linking the runtime, which compiles and loads the filter.
//!
//! The default profile is an allowlist. Everything not listed fails with
//! EPERM. The lists follow what Docker's default profile has taught the field
//! a container needs (moby/profiles, seccomp/default_linux.go), arranged by
//! what the calls do; docs/SECCOMP.md says where berth differs and why.
//!
//! Three kinds of entry:
//! - `ALWAYS`: allowed for every container;
//! - `WITH_CAPABILITY`: allowed only when the container's capability set
//!   holds the capability that the kernel would demand anyway (a container
//!   given CAP_SYS_ADMIN may mount, one without may not even try);
//! - a few calls allowed only for some argument values (socket families,
//!   personality, clone's namespace flags).
//!
//! Names that the running libseccomp does not know (newer calls, or another
//! architecture's) are skipped when the filter is compiled, so the lists can
//! hold every architecture's names at once.

#![forbid(unsafe_code)]

pub mod docker;

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

/// Calls every container may make, grouped by what they touch.
const ALWAYS: &[(&str, &[&str])] = &[
    (
        "files and directories",
        &[
            "access",
            "chdir",
            "chmod",
            "chown",
            "chown32",
            "close",
            "close_range",
            "copy_file_range",
            "creat",
            "dup",
            "dup2",
            "dup3",
            "faccessat",
            "faccessat2",
            "fadvise64",
            "fadvise64_64",
            "fallocate",
            "fchdir",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "fchown",
            "fchown32",
            "fchownat",
            "fcntl",
            "fcntl64",
            "fdatasync",
            "flock",
            "fstat",
            "fstat64",
            "fstatat64",
            "fstatfs",
            "fstatfs64",
            "fsync",
            "ftruncate",
            "ftruncate64",
            "futimesat",
            "getcwd",
            "getdents",
            "getdents64",
            "lchown",
            "lchown32",
            "link",
            "linkat",
            "_llseek",
            "lseek",
            "lstat",
            "lstat64",
            "mkdir",
            "mkdirat",
            "mknod",
            "mknodat",
            "name_to_handle_at",
            "newfstatat",
            "open",
            "openat",
            "openat2",
            "pread64",
            "preadv",
            "preadv2",
            "pwrite64",
            "pwritev",
            "pwritev2",
            "read",
            "readahead",
            "readlink",
            "readlinkat",
            "readv",
            "rename",
            "renameat",
            "renameat2",
            "rmdir",
            "sendfile",
            "sendfile64",
            "splice",
            "stat",
            "stat64",
            "statfs",
            "statfs64",
            "statx",
            "symlink",
            "symlinkat",
            "sync",
            "sync_file_range",
            "syncfs",
            "tee",
            "truncate",
            "truncate64",
            "umask",
            "unlink",
            "unlinkat",
            "utime",
            "utimensat",
            "utimensat_time64",
            "utimes",
            "vmsplice",
            "write",
            "writev",
            "cachestat",
            "statmount",
            "listmount",
        ],
    ),
    (
        "extended attributes",
        &[
            "fgetxattr",
            "flistxattr",
            "fremovexattr",
            "fsetxattr",
            "getxattr",
            "getxattrat",
            "lgetxattr",
            "listxattr",
            "listxattrat",
            "llistxattr",
            "lremovexattr",
            "lsetxattr",
            "removexattr",
            "removexattrat",
            "setxattr",
            "setxattrat",
        ],
    ),
    (
        "waiting on descriptors and events",
        &[
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_ctl_old",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_wait",
            "epoll_wait_old",
            "eventfd",
            "eventfd2",
            "fanotify_mark",
            "inotify_add_watch",
            "inotify_init",
            "inotify_init1",
            "inotify_rm_watch",
            "_newselect",
            "pipe",
            "pipe2",
            "poll",
            "ppoll",
            "ppoll_time64",
            "pselect6",
            "pselect6_time64",
            "select",
            "signalfd",
            "signalfd4",
            "timerfd_create",
            "timerfd_gettime",
            "timerfd_gettime64",
            "timerfd_settime",
            "timerfd_settime64",
        ],
    ),
    (
        "asynchronous I/O (io_uring is left out, see docs/SECCOMP.md)",
        &[
            "io_cancel",
            "io_destroy",
            "io_getevents",
            "io_pgetevents",
            "io_pgetevents_time64",
            "io_setup",
            "io_submit",
            "ioctl",
        ],
    ),
    (
        "memory",
        &[
            "brk",
            "madvise",
            "map_shadow_stack",
            "membarrier",
            "memfd_create",
            "memfd_secret",
            "mincore",
            "mlock",
            "mlock2",
            "mlockall",
            "mmap",
            "mmap2",
            "mprotect",
            "mremap",
            "mseal",
            "msync",
            "munlock",
            "munlockall",
            "munmap",
            "pkey_alloc",
            "pkey_free",
            "pkey_mprotect",
            "remap_file_pages",
        ],
    ),
    (
        "processes and threads",
        &[
            "capget",
            "capset",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "fork",
            "futex",
            "futex_requeue",
            "futex_time64",
            "futex_wait",
            "futex_waitv",
            "futex_wake",
            "get_robust_list",
            "get_thread_area",
            "getcpu",
            "getpgid",
            "getpgrp",
            "getpid",
            "getppid",
            "getpriority",
            "getrlimit",
            "getrusage",
            "getsid",
            "gettid",
            "ioprio_get",
            "ioprio_set",
            "landlock_add_rule",
            "landlock_create_ruleset",
            "landlock_restrict_self",
            "pidfd_open",
            "pidfd_send_signal",
            "prctl",
            "prlimit64",
            "process_mrelease",
            "restart_syscall",
            "rseq",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_getaffinity",
            "sched_getattr",
            "sched_getparam",
            "sched_getscheduler",
            "sched_rr_get_interval",
            "sched_rr_get_interval_time64",
            "sched_setaffinity",
            "sched_setattr",
            "sched_setparam",
            "sched_setscheduler",
            "sched_yield",
            "seccomp",
            "set_robust_list",
            "set_thread_area",
            "set_tid_address",
            "setpgid",
            "setpriority",
            "setrlimit",
            "setsid",
            "ugetrlimit",
            "vfork",
            "wait4",
            "waitid",
            "waitpid",
            // Same-container tracing: safe since Linux 4.8 closed the
            // seccomp bypass through ptrace.
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    (
        "user and group ids",
        &[
            "getegid",
            "getegid32",
            "geteuid",
            "geteuid32",
            "getgid",
            "getgid32",
            "getgroups",
            "getgroups32",
            "getresgid",
            "getresgid32",
            "getresuid",
            "getresuid32",
            "getuid",
            "getuid32",
            "setfsgid",
            "setfsgid32",
            "setfsuid",
            "setfsuid32",
            "setgid",
            "setgid32",
            "setgroups",
            "setgroups32",
            "setregid",
            "setregid32",
            "setresgid",
            "setresgid32",
            "setresuid",
            "setresuid32",
            "setreuid",
            "setreuid32",
            "setuid",
            "setuid32",
        ],
    ),
    (
        "signals",
        &[
            "alarm",
            "kill",
            "pause",
            "rt_sigaction",
            "rt_sigpending",
            "rt_sigprocmask",
            "rt_sigqueueinfo",
            "rt_sigreturn",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_sigtimedwait_time64",
            "rt_tgsigqueueinfo",
            "sigaltstack",
            "sigprocmask",
            "sigreturn",
            "tgkill",
            "tkill",
        ],
    ),
    (
        "clocks and timers (reading; setting needs CAP_SYS_TIME)",
        &[
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
            "clock_getres",
            "clock_getres_time64",
            "clock_gettime",
            "clock_gettime64",
            "clock_nanosleep",
            "clock_nanosleep_time64",
            "getitimer",
            "gettimeofday",
            "nanosleep",
            "setitimer",
            "time",
            "timer_create",
            "timer_delete",
            "timer_getoverrun",
            "timer_gettime",
            "timer_gettime64",
            "timer_settime",
            "timer_settime64",
            "times",
        ],
    ),
    (
        "sockets (socket(2) itself is filtered by family below)",
        &[
            "accept",
            "accept4",
            "bind",
            "connect",
            "getpeername",
            "getsockname",
            "getsockopt",
            "listen",
            "recv",
            "recvfrom",
            "recvmmsg",
            "recvmmsg_time64",
            "recvmsg",
            "send",
            "sendmmsg",
            "sendmsg",
            "sendto",
            "setsockopt",
            "shutdown",
            "socketpair",
        ],
    ),
    (
        "System V and POSIX IPC",
        &[
            "ipc",
            "mq_getsetattr",
            "mq_notify",
            "mq_open",
            "mq_timedreceive",
            "mq_timedreceive_time64",
            "mq_timedsend",
            "mq_timedsend_time64",
            "mq_unlink",
            "msgctl",
            "msgget",
            "msgrcv",
            "msgsnd",
            "semctl",
            "semget",
            "semop",
            "semtimedop",
            "semtimedop_time64",
            "shmat",
            "shmctl",
            "shmdt",
            "shmget",
        ],
    ),
    ("system information", &["getrandom", "sysinfo", "uname"]),
    (
        "one architecture's own calls (unknown names are skipped elsewhere)",
        &[
            "arch_prctl",
            "modify_ldt",
            "uretprobe",
            "riscv_hwprobe",
            "riscv_flush_icache",
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "swapcontext",
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
];

/// Calls allowed only when the container holds a capability: each is what
/// the kernel checks for these calls, so the filter only stops a process
/// that could not succeed anyway from reaching code it has no business in.
const WITH_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// clone(2)'s flags that make new namespaces.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The personalities a program may switch to, the harmless ones: PER_LINUX
/// (0), PER_LINUX32 (8), UNAME26 (0x20000), the last two together, and the
/// query 0xffffffff. Others (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, …) weaken
/// the process's own hardening.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The architectures a filter for this machine covers: the native one and
/// those its CPU can also run (a 64-bit x86 kernel runs 32-bit and x32
/// programs, and each needs its own syscall numbers in the filter).
fn arches() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(target_arch = "s390x") {
        vec![Arch::ScmpArchS390x, Arch::ScmpArchS390]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| (*n).to_owned()).collect());
    r.set_action(action);
    r
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let builder = match value_two {
        Some(v) => builder.value_two(v),
        None => builder,
    };
    // Every field is set (or has a default), so the builder cannot fail.
    builder.build().unwrap_or_default()
}

fn allow_if(name: &str, condition: LinuxSeccompArg) -> LinuxSyscall {
    let mut r = rule(&[name], LinuxSeccompAction::ScmpActAllow);
    r.set_args(Some(vec![condition]));
    r
}

/// Berth's default profile for a container whose capability set (the
/// bounding set, which caps what the process can ever hold) is `caps`.
pub fn default_profile(caps: &Capabilities) -> LinuxSeccomp {
    use LinuxSeccompOperator::*;
    let allow = LinuxSeccompAction::ScmpActAllow;
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    let always: Vec<&str> = ALWAYS
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    syscalls.push(rule(&always, allow));

    // socket(2) for every family but AF_ALG (38, the kernel's crypto API)
    // and AF_VSOCK (40, host/guest sockets): both have had container
    // escapes and no container workload needs them.
    let (af_alg, af_vsock) = (libc::AF_ALG as u64, libc::AF_VSOCK as u64);
    syscalls.push(allow_if("socket", arg(0, ScmpCmpLt, af_alg, None)));
    for family in af_alg + 1..af_vsock {
        syscalls.push(allow_if("socket", arg(0, ScmpCmpEq, family, None)));
    }
    syscalls.push(allow_if("socket", arg(0, ScmpCmpGt, af_vsock, None)));
    // 32-bit x86 also reaches socket(2) through socketcall(2), whose
    // arguments sit behind a pointer no filter can read; libseccomp turns
    // the rules above into socketcall(SYS_SOCKET) rules that cannot check
    // the family, so on 32-bit x86 programs the family filter does not hold
    // (docs/SECCOMP.md).
    syscalls.push(rule(&["socketcall"], allow));

    for p in PERSONALITIES {
        syscalls.push(allow_if("personality", arg(0, ScmpCmpEq, *p, None)));
    }

    let has = |c: Capability| caps.contains(&c);
    if !has(Capability::SysAdmin) {
        // clone(2) without namespace flags; s390 passes the flags second.
        let index = if cfg!(target_arch = "s390x") { 1 } else { 0 };
        syscalls.push(allow_if(
            "clone",
            arg(index, ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS, Some(0)),
        ));
        // clone3(2) passes its flags in a struct a filter cannot read:
        // ENOSYS makes the C libraries fall back to clone(2), which is
        // checked above.
        let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        syscalls.push(clone3);
    }
    let mut granted: Vec<&str> = Vec::new();
    for (cap, names) in WITH_CAPABILITY {
        if has(*cap) {
            for n in *names {
                if !granted.contains(n) {
                    granted.push(n);
                }
            }
        }
    }
    if !granted.is_empty() {
        syscalls.push(rule(&granted, allow));
    }

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(Some(arches()));
    profile.set_syscalls(Some(syscalls));
    profile
}
