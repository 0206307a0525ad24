//! Unit tests: the compiled BPF is run by a small classic-BPF interpreter
//! against syscalls as the kernel would present them, so rules, actions,
//! argument comparisons and the default profile are checked without loading
//! a filter into the test process.

use oci_spec::runtime::{Capabilities, Capability, LinuxSeccomp};

use super::*;

/// `struct seccomp_data` as the filter sees it.
struct Call {
    nr: i64,
    arch: u32,
    args: [u64; 6],
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

fn call(nr: i64, args: &[u64]) -> Call {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    Call {
        nr,
        arch: AUDIT_ARCH_X86_64,
        args: a,
    }
}

impl Call {
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr as u32,
            4 => self.arch,
            8..=15 => 0, // instruction pointer
            o if (16..64).contains(&o) => {
                let arg = self.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            o => panic!("the filter read seccomp_data at offset {o}"),
        }
    }
}

/// Runs a classic-BPF seccomp program (the subset libseccomp emits) and
/// returns its verdict.
fn run(bpf: &[u8], c: &Call) -> u32 {
    let prog: Vec<(u16, u8, u8, u32)> = bpf
        .chunks_exact(8)
        .map(|r| {
            (
                u16::from_ne_bytes([r[0], r[1]]),
                r[2],
                r[3],
                u32::from_ne_bytes([r[4], r[5], r[6], r[7]]),
            )
        })
        .collect();
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let (code, jt, jf, k) = prog[pc];
        pc += 1;
        let src = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            0x00 => match code & 0xe0 {
                0x20 => a = c.word(k),
                0x00 => a = k,
                0x60 => a = mem[k as usize],
                m => panic!("ld mode {m:#x}"),
            },
            0x01 => match code & 0xe0 {
                0x00 => x = k,
                0x60 => x = mem[k as usize],
                m => panic!("ldx mode {m:#x}"),
            },
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a << src,
                    0x70 => a >> src,
                    0xa0 => a ^ src,
                    op => panic!("alu op {op:#x}"),
                }
            }
            0x05 => {
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    op => panic!("jmp op {op:#x}"),
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            0x06 => return if code & 0x18 == 0x10 { a } else { k },
            _ => {
                if code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
}

const ALLOW: u32 = 0x7fff_0000;
const KILL_PROCESS: u32 = 0x8000_0000;
const KILL_THREAD: u32 = 0;
const TRAP: u32 = 0x0003_0000;
const NOTIFY: u32 = 0x7fc0_0000;
const LOG: u32 = 0x7ffc_0000;
fn errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}
fn trace(v: u32) -> u32 {
    0x7ff0_0000 | v
}

fn section(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid seccomp section")
}

fn nr(name: &str) -> i64 {
    libseccomp::ScmpSyscall::from_name(name)
        .expect("a known syscall")
        .as_raw_syscall() as i64
}

fn compiled(v: serde_json::Value) -> Filter {
    let s = section(v);
    validate(&s).expect("valid");
    compile(&s).expect("compiles")
}

#[test]
fn each_action_becomes_its_return_value() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
            { "names": ["rmdir"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS" },
            { "names": ["getcwd"], "action": "SCMP_ACT_KILL" },
            { "names": ["chdir"], "action": "SCMP_ACT_KILL_THREAD" },
            { "names": ["sync"], "action": "SCMP_ACT_TRAP" },
            { "names": ["syncfs"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
            { "names": ["fsync"], "action": "SCMP_ACT_LOG" },
            { "names": ["umask"], "action": "SCMP_ACT_NOTIFY" }
        ]
    }));
    let cases = [
        ("mkdir", errno(13)),
        ("rmdir", errno(libc::EPERM)),
        ("uname", KILL_PROCESS),
        ("getcwd", KILL_THREAD),
        ("chdir", KILL_THREAD),
        ("sync", TRAP),
        ("syncfs", trace(7)),
        ("fsync", LOG),
        ("umask", NOTIFY),
        ("read", ALLOW),
    ];
    for (name, want) in cases {
        assert_eq!(run(f.bpf(), &call(nr(name), &[])), want, "{name}");
    }
    assert_eq!(
        f.flags(),
        berth_sys::seccomp::FLAG_NEW_LISTENER,
        "a notify rule asks for a listener"
    );
}

#[test]
fn default_errno_ret_and_flags() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(run(f.bpf(), &call(nr("read"), &[])), ALLOW);
    assert_eq!(run(f.bpf(), &call(nr("write"), &[])), errno(38));
    // WAIT_KILLABLE_RECV is dropped without a notify rule (the kernel
    // refuses it without a listener).
    assert_eq!(
        f.flags(),
        berth_sys::seccomp::FLAG_LOG | berth_sys::seccomp::FLAG_SPEC_ALLOW
    );
}

#[test]
fn tsync_with_notify_asks_for_esrch() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    use berth_sys::seccomp::*;
    assert_eq!(
        f.flags(),
        FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV
    );
}

#[test]
fn arguments_are_anded_within_a_rule_and_rules_ored() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["socket"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 10, "op": "SCMP_CMP_EQ" },
                       { "index": 1, "value": 15, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["socket"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_GT" }] },
            { "names": ["dup"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_LT" }] },
            { "names": ["close"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 100, "op": "SCMP_CMP_GE" }] },
            { "names": ["fchdir"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 5, "op": "SCMP_CMP_LE" }] },
            { "names": ["umask"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 0o22, "op": "SCMP_CMP_NE" }] }
        ]
    }));
    let eperm = errno(libc::EPERM);
    let socket = nr("socket");
    assert_eq!(
        run(f.bpf(), &call(socket, &[10, 1])),
        eperm,
        "AF_INET6 stream"
    );
    assert_eq!(
        run(f.bpf(), &call(socket, &[10, 1 | 0x80000])),
        eperm,
        "AF_INET6 stream|SOCK_CLOEXEC"
    );
    assert_eq!(
        run(f.bpf(), &call(socket, &[10, 2])),
        ALLOW,
        "AF_INET6 dgram"
    );
    assert_eq!(run(f.bpf(), &call(socket, &[2, 2])), eperm, "AF_INET dgram");
    assert_eq!(run(f.bpf(), &call(socket, &[1, 1])), ALLOW, "AF_UNIX");
    assert_eq!(run(f.bpf(), &call(nr("personality"), &[9])), eperm);
    assert_eq!(run(f.bpf(), &call(nr("personality"), &[8])), ALLOW);
    assert_eq!(run(f.bpf(), &call(nr("dup"), &[2])), eperm);
    assert_eq!(run(f.bpf(), &call(nr("dup"), &[3])), ALLOW);
    assert_eq!(run(f.bpf(), &call(nr("close"), &[100])), eperm);
    assert_eq!(run(f.bpf(), &call(nr("close"), &[99])), ALLOW);
    assert_eq!(run(f.bpf(), &call(nr("fchdir"), &[5])), eperm);
    assert_eq!(run(f.bpf(), &call(nr("fchdir"), &[6])), ALLOW);
    assert_eq!(run(f.bpf(), &call(nr("umask"), &[0o77])), eperm);
    assert_eq!(run(f.bpf(), &call(nr("umask"), &[0o22])), ALLOW);
}

#[test]
fn two_conditions_on_one_argument_become_alternatives() {
    // libseccomp cannot AND two conditions on one argument; as runc, each
    // becomes a rule of its own.
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["dup"], "action": "SCMP_ACT_ERRNO",
            "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                     { "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }] }]
    }));
    assert_eq!(run(f.bpf(), &call(nr("dup"), &[1])), errno(libc::EPERM));
    assert_eq!(run(f.bpf(), &call(nr("dup"), &[2])), errno(libc::EPERM));
    assert_eq!(run(f.bpf(), &call(nr("dup"), &[3])), ALLOW);
}

#[test]
fn unknown_names_are_skipped_and_reported() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["berth_no_such_call", "mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert_eq!(f.skipped(), ["berth_no_such_call"]);
    assert_eq!(run(f.bpf(), &call(nr("mkdir"), &[])), errno(libc::EPERM));
}

#[test]
fn a_rule_with_the_default_action_is_left_out() {
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" },
                     { "names": ["read"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(run(f.bpf(), &call(nr("mkdir"), &[])), errno(libc::EPERM));
    assert_eq!(run(f.bpf(), &call(nr("read"), &[])), ALLOW);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn architectures_are_in_the_filter() {
    let with = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }));
    // mkdir is 39 on i386.
    let i386 = Call {
        nr: 39,
        arch: AUDIT_ARCH_I386,
        args: [0; 6],
    };
    assert_eq!(run(with.bpf(), &i386), errno(libc::EPERM));
    let without = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert_eq!(
        run(without.bpf(), &i386),
        KILL_THREAD,
        "an architecture not in the filter is killed"
    );
}

fn default_caps() -> Capabilities {
    crate::capabilities::default_set()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn default_profile_blocks_what_it_promises() {
    let profile = default_profile(&default_caps());
    validate(&profile).expect("the default profile is valid");
    let f = compile(&profile).expect("the default profile compiles");
    let eperm = errno(libc::EPERM);
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "kexec_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "io_uring_setup",
        "acct",
        "settimeofday",
        "clock_settime",
        "iopl",
        "syslog",
        "sethostname",
        "fsopen",
        "move_mount",
        "open_tree",
        "kcmp",
    ] {
        let Ok(n) = libseccomp::ScmpSyscall::from_name(name) else {
            continue;
        };
        assert_eq!(
            run(f.bpf(), &call(n.as_raw_syscall() as i64, &[])),
            eperm,
            "{name} is refused"
        );
    }
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "mmap",
        "futex",
        "exit_group",
        "ptrace",
        "chown",
        "setuid",
        "capset",
        "wait4",
        "fork",
        "vfork",
        "arch_prctl",
        "rseq",
    ] {
        assert_eq!(
            run(f.bpf(), &call(nr(name), &[])),
            ALLOW,
            "{name} is allowed"
        );
    }
    let clone = nr("clone");
    assert_eq!(
        run(f.bpf(), &call(clone, &[0x1200011])),
        ALLOW,
        "fork-style clone"
    );
    assert_eq!(
        run(f.bpf(), &call(clone, &[libc::CLONE_NEWUSER as u64])),
        eperm,
        "clone of a user namespace"
    );
    assert_eq!(
        run(f.bpf(), &call(clone, &[libc::CLONE_NEWNS as u64 | 0x11])),
        eperm
    );
    assert_eq!(
        run(f.bpf(), &call(nr("clone3"), &[])),
        errno(libc::ENOSYS),
        "clone3 says ENOSYS so the C library falls back to clone"
    );
    let socket = nr("socket");
    for (family, want) in [
        (1, ALLOW),
        (2, ALLOW),
        (10, ALLOW),
        (16, ALLOW),
        (38, eperm),
        (39, ALLOW),
        (40, eperm),
        (44, ALLOW),
    ] {
        assert_eq!(
            run(f.bpf(), &call(socket, &[family])),
            want,
            "family {family}"
        );
    }
    let personality = nr("personality");
    assert_eq!(run(f.bpf(), &call(personality, &[0])), ALLOW);
    assert_eq!(run(f.bpf(), &call(personality, &[0xffff_ffff])), ALLOW);
    assert_eq!(
        run(f.bpf(), &call(personality, &[0x0040_0000])),
        eperm,
        "READ_IMPLIES_EXEC"
    );
    // chown32 is i386's (212) and allowed there.
    let chown32 = Call {
        nr: 212,
        arch: AUDIT_ARCH_I386,
        args: [0; 6],
    };
    assert_eq!(run(f.bpf(), &chown32), ALLOW);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn capabilities_open_their_syscalls() {
    let mut caps = default_caps();
    caps.insert(Capability::SysAdmin);
    caps.insert(Capability::SysPtrace);
    caps.insert(Capability::SysModule);
    caps.insert(Capability::SysTime);
    let f = compile(&default_profile(&caps)).expect("compiles");
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "bpf",
        "perf_event_open",
        "kcmp",
        "init_module",
        "finit_module",
        "delete_module",
        "settimeofday",
        "clock_settime",
    ] {
        assert_eq!(run(f.bpf(), &call(nr(name), &[])), ALLOW, "{name}");
    }
    assert_eq!(
        run(f.bpf(), &call(nr("clone"), &[libc::CLONE_NEWUSER as u64])),
        ALLOW,
        "CAP_SYS_ADMIN may clone namespaces"
    );
    assert_eq!(run(f.bpf(), &call(nr("clone3"), &[])), ALLOW);
    // Still refused: no capability opens these.
    for name in ["keyctl", "add_key", "kexec_load", "userfaultfd"] {
        assert_eq!(
            run(f.bpf(), &call(nr(name), &[])),
            errno(libc::EPERM),
            "{name}"
        );
    }
}

fn invalid(v: serde_json::Value) -> String {
    validate(&section(v))
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn validation_names_the_field() {
    let cases = [
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a" }),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }),
            "linux.seccomp.defaultErrnoRet: defaultErrnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["a"], "action": "SCMP_ACT_ERRNO" },
                             { "names": [], "action": "SCMP_ACT_ERRNO" }] }),
            "linux.seccomp.syscalls[1].names: must name at least one syscall",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }] }),
            "linux.seccomp.syscalls[0].errnoRet",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 }] }),
            "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{ "index": 6, "value": 0, "op": "SCMP_CMP_EQ" }] }] }),
            "linux.seccomp.syscalls[0].args[0].index: 6 is out of range",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
            "linux.seccomp.listenerPath: must be set",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "rel.sock",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
            "linux.seccomp.listenerPath: \"rel.sock\" must be an absolute path",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                "syscalls": [{ "names": ["write"], "action": "SCMP_ACT_NOTIFY" }] }),
            "linux.seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for \"write\"",
        ),
    ];
    for (v, want) in cases {
        let e = invalid(v);
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }
}

#[test]
fn unknown_names_in_the_config_say_what_they_are() {
    let config = |seccomp: serde_json::Value| {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}], "seccomp": seccomp}
        })
        .to_string()
    };
    let cases = [
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                { "names": ["a"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["a"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["a"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["a"], "action": "SCMP_ACT_FOO" }] }),
            "linux.seccomp.syscalls[3].action: unknown action \"SCMP_ACT_FOO\"",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_BAR" }),
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BAR\"",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                { "names": ["a"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_SOMETIMES" }] }] }),
            "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_SOMETIMES\"",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"] }),
            "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_X\"",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"] }),
            "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\"",
        ),
    ];
    for (seccomp, want) in cases {
        let e = crate::spec::parse(config(seccomp).as_bytes()).expect_err("must fail");
        assert!(e.starts_with(want), "{e:?} should start with {want:?}");
    }
}

#[test]
fn the_default_spec_carries_the_default_profile() {
    let spec = crate::spec::default_spec(false);
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .expect("spec writes linux.seccomp");
    assert_eq!(seccomp, default_profile(&default_caps()));
}

#[test]
fn features_list_names_the_parser_accepts() {
    for a in ACTIONS {
        serde_json::from_value::<LinuxSeccompAction>(serde_json::json!(a)).expect(a);
    }
    for o in OPERATORS {
        serde_json::from_value::<LinuxSeccompOperator>(serde_json::json!(o)).expect(o);
    }
    for a in ARCHES {
        serde_json::from_value::<Arch>(serde_json::json!(a)).expect(a);
    }
    for f in KNOWN_FLAGS {
        serde_json::from_value::<LinuxSeccompFilterFlag>(serde_json::json!(f)).expect(f);
    }
    let supported = supported_flags();
    assert!(supported.iter().all(|f| KNOWN_FLAGS.contains(f)));
    assert!(
        supported.contains(&"SECCOMP_FILTER_FLAG_LOG"),
        "every kernel since 4.14 has it"
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn new_syscalls_this_libseccomp_may_not_know_are_matched_by_number() {
    let f = compile(&default_profile(&default_caps())).expect("compiles");
    let on = |arch: u32, nr: i64| Call {
        nr,
        arch,
        args: [0; 6],
    };
    for nr in [457, 458, 462, 463, 464] {
        assert_eq!(run(f.bpf(), &on(AUDIT_ARCH_X86_64, nr)), ALLOW, "{nr}");
        assert_eq!(run(f.bpf(), &on(AUDIT_ARCH_I386, nr)), ALLOW, "i386 {nr}");
        assert_eq!(
            run(f.bpf(), &on(AUDIT_ARCH_X86_64, nr | 0x4000_0000)),
            ALLOW,
            "x32 {nr}"
        );
    }
    assert_eq!(
        run(f.bpf(), &on(AUDIT_ARCH_X86_64, 470)),
        errno(libc::ENOSYS),
        "a call newer than the profile seems not to exist"
    );
    assert_eq!(run(f.bpf(), &on(AUDIT_ARCH_I386, 470)), errno(libc::ENOSYS));
    assert_eq!(
        run(f.bpf(), &on(AUDIT_ARCH_X86_64, nr("kexec_file_load"))),
        errno(libc::EPERM),
        "an older call the profile does not name is refused"
    );
    let f = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mseal"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }]
    }));
    assert_eq!(run(f.bpf(), &call(462, &[])), errno(38));
    assert_eq!(run(f.bpf(), &call(nr("read"), &[])), ALLOW);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn calls_newer_than_an_allowlist_get_enosys_and_a_denylist_adds_nothing() {
    let allowlist = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["read", "write", "mkdir"], "action": "SCMP_ACT_ALLOW" }]
    }));
    let mkdir = nr("mkdir");
    assert_eq!(run(allowlist.bpf(), &call(mkdir, &[])), ALLOW);
    assert_eq!(
        run(allowlist.bpf(), &call(mkdir - 1, &[])),
        errno(libc::EPERM),
        "below the highest named: the default action"
    );
    assert_eq!(
        run(allowlist.bpf(), &call(mkdir + 1, &[])),
        errno(libc::ENOSYS),
        "above it: ENOSYS"
    );
    let x32 = Call {
        nr: 0x4000_0000 | 200,
        arch: AUDIT_ARCH_X86_64,
        args: [0; 6],
    };
    assert_ne!(
        run(allowlist.bpf(), &x32),
        errno(libc::ENOSYS),
        "x32 numbers are left to libseccomp's program"
    );
    let denylist = compiled(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert_eq!(run(denylist.bpf(), &call(mkdir + 1, &[])), ALLOW);
}
