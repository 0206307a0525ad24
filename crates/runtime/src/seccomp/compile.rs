//! From the spec's section to a BPF program, through libseccomp.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator,
};
use tracing::debug;

use super::{flag_bit, uses_notify, Result, SeccompError};
use berth_sys::seccomp as sys;

/// A compiled filter, ready to load.
#[derive(Debug, Clone)]
pub struct Filter {
    bpf: Vec<u8>,
    flags: u32,
    skipped: Vec<String>,
}

impl Filter {
    /// A filter from a program and flags compiled earlier (the cache).
    pub(crate) fn from_parts(bpf: Vec<u8>, flags: u32) -> Filter {
        Filter {
            bpf,
            flags,
            skipped: Vec::new(),
        }
    }

    /// The BPF program: 8-byte `sock_filter` records in native byte order.
    pub fn bpf(&self) -> &[u8] {
        &self.bpf
    }

    /// The SECCOMP_FILTER_FLAG_* bits it is loaded with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The syscall names that were skipped as unknown to libseccomp.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Loads the filter on this thread (needs `no_new_privs` or
    /// CAP_SYS_ADMIN). Returns the notify listener when a rule notifies.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        sys::set_mode_filter(&self.bpf, self.flags).map_err(|source| SeccompError::Load {
            flags: self.flags,
            source,
        })
    }
}

fn lib(op: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let op = op.into();
    move |source| SeccompError::Library { op, source }
}

/// The libseccomp action for a spec action; errnoRet defaults to EPERM, as
/// the spec says (for SCMP_ACT_TRACE too, as runc does).
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let value = errno_ret.unwrap_or(libc::EPERM as u32);
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(value as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value as u16),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn compare(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let index = arg.index() as u32;
    let value = arg.value();
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // The spec's value is the mask, valueTwo what the masked argument
        // must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                index,
                ScmpCompareOp::MaskedEqual(value),
                arg.value_two().unwrap_or(0),
            )
        }
    };
    ScmpArgCompare::new(index, op, value)
}

/// Compiles a validated section (see [`super::validate`]) into a filter.
///
/// Several conditions in one rule must all hold (AND); several rules for one
/// syscall each apply (OR). libseccomp cannot AND two conditions on the same
/// argument, so a rule that has them becomes one rule per condition (OR), as
/// runc does. A rule whose action is the default action adds nothing and is
/// left out (libseccomp refuses it).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("make a filter context"))?;
    for a in seccomp.architectures().as_deref().unwrap_or_default() {
        ctx.add_arch(arch(*a))
            .map_err(lib(format!("add architecture {}", super::arch_name(*a))))?;
    }
    let mut skipped = Vec::new();
    let mut by_number: Vec<(u32, u32)> = Vec::new();
    for (i, rule) in seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            debug!(
                rule = i,
                "seccomp: rule has the default action, nothing to add"
            );
            continue;
        }
        let conditions: Vec<ScmpArgCompare> = rule
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(compare)
            .collect();
        let mut indexes: Vec<usize> = rule
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| a.index())
            .collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                match COMMON_NUMBERS.iter().find(|(n, _)| n == name) {
                    Some((_, nr)) if conditions.is_empty() => {
                        by_number.push((*nr, rule.action().as_u32(rule.errno_ret())));
                    }
                    _ => {
                        debug!(syscall = %name, "seccomp: syscall unknown to libseccomp, skipped");
                        skipped.push(name.clone());
                    }
                }
                continue;
            };
            let what = || format!("linux.seccomp.syscalls[{i}] ({name}): add the rule");
            if conditions.is_empty() {
                ctx.add_rule(act, syscall).map_err(lib(what()))?;
            } else if repeated {
                for c in &conditions {
                    ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))
                        .map_err(lib(what()))?;
                }
            } else {
                ctx.add_rule_conditional(act, syscall, &conditions)
                    .map_err(lib(what()))?;
            }
        }
    }

    let mut flags = 0;
    for f in seccomp.flags().as_deref().unwrap_or_default() {
        flags |= flag_bit(*f);
    }
    if uses_notify(seccomp) {
        flags |= sys::FLAG_NEW_LISTENER;
        // TSYNC reports a failing thread's id in the return value, where
        // the listener goes; TSYNC_ESRCH makes it an errno instead.
        if flags & sys::FLAG_TSYNC != 0 {
            flags |= sys::FLAG_TSYNC_ESRCH;
        }
    } else if flags & sys::FLAG_WAIT_KILLABLE_RECV != 0 {
        // Meaningful only for a notified task, and the kernel refuses it
        // without a listener; libseccomp ignores it the same way.
        debug!("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY ignored");
        flags &= !sys::FLAG_WAIT_KILLABLE_RECV;
    }

    let mut bpf = prelude(seccomp, &by_number);
    bpf.extend_from_slice(&export(&ctx)?);
    Ok(Filter {
        bpf,
        flags,
        skipped,
    })
}

/// Syscalls added since Linux 6.5 that the libseccomp on a host may not know
/// yet, with the number each has on every architecture that numbers new
/// calls from the kernel's common table (x86_64, x32 with its bit, i386,
/// arm, aarch64, riscv64). Without them a profile that allows, say, `mseal`
/// or `statmount` would refuse them on a new kernel with an old libseccomp,
/// and a C library that only falls back on ENOSYS would fail.
const COMMON_NUMBERS: &[(&str, u32)] = &[
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

/// The kernel's audit architecture tokens (linux/audit.h) of the
/// architectures whose new syscalls have the common numbers.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const AUDIT_ARCH_RISCV64: u32 = 0xc000_00f3;
/// x32 calls arrive as x86_64 with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One architecture's part of the prelude.
struct Block {
    /// The audit architecture token the block applies to.
    token: u32,
    /// Syscall numbers and the kernel action each returns.
    numbers: Vec<(u32, u32)>,
    /// Above this number, ENOSYS (x32's numbers excluded on x86_64).
    enosys_above: Option<u32>,
}

/// A BPF prelude run before libseccomp's program, per covered architecture:
///
/// - rules that name syscalls libseccomp does not know but
///   [`COMMON_NUMBERS`] does, compared by number;
/// - for an allowlist (a default action other than allow or log), ENOSYS
///   for every syscall numbered above the highest the section names, as
///   runc does: a call newer than the profile is then one the kernel seems
///   not to have, and C libraries fall back to older calls (clone3 → clone,
///   fchmodat2 → fchmodat), where EPERM would make them fail.
///
/// Anything else falls through to libseccomp's program: classic BPF jumps
/// are relative and forward, so what comes before it does not change it.
fn prelude(seccomp: &LinuxSeccomp, rules: &[(u32, u32)]) -> Vec<u8> {
    let allowlist = !matches!(
        seccomp.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    );
    let names: Vec<&String> = seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|r| r.names())
        .collect();
    let highest = |arch: ScmpArch| -> Option<u32> {
        names
            .iter()
            .filter_map(|n| match COMMON_NUMBERS.iter().find(|(c, _)| c == n) {
                Some((_, nr)) => Some(*nr),
                None => ScmpSyscall::from_name_by_arch(n, arch)
                    .ok()
                    .map(|s| s.as_raw_syscall())
                    .filter(|nr| *nr >= 0 && (*nr as u32) < X32_SYSCALL_BIT)
                    .map(|nr| nr as u32),
            })
            .max()
    };
    let native = if cfg!(target_arch = "x86_64") {
        Some(Arch::ScmpArchX86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(Arch::ScmpArchAarch64)
    } else if cfg!(target_arch = "riscv64") {
        Some(Arch::ScmpArchRiscv64)
    } else {
        None
    };
    let mut arches: Vec<Arch> = seccomp.architectures().clone().unwrap_or_default();
    arches.extend(native);
    let mut blocks: Vec<Block> = Vec::new();
    for arch in arches {
        let (token, bit, scmp) = match arch {
            Arch::ScmpArchX86_64 => (AUDIT_ARCH_X86_64, 0, Some(ScmpArch::X8664)),
            Arch::ScmpArchX32 => (AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, None),
            Arch::ScmpArchX86 => (AUDIT_ARCH_I386, 0, Some(ScmpArch::X86)),
            Arch::ScmpArchAarch64 => (AUDIT_ARCH_AARCH64, 0, Some(ScmpArch::Aarch64)),
            Arch::ScmpArchArm => (AUDIT_ARCH_ARM, 0, Some(ScmpArch::Arm)),
            Arch::ScmpArchRiscv64 => (AUDIT_ARCH_RISCV64, 0, Some(ScmpArch::Riscv64)),
            _ => continue,
        };
        let i = match blocks.iter().position(|b| b.token == token) {
            Some(i) => i,
            None => {
                blocks.push(Block {
                    token,
                    numbers: Vec::new(),
                    enosys_above: None,
                });
                blocks.len() - 1
            }
        };
        let block = &mut blocks[i];
        for (nr, action) in rules {
            if !block.numbers.iter().any(|(n, _)| *n == nr | bit) {
                block.numbers.push((nr | bit, *action));
            }
        }
        if let (true, Some(scmp)) = (allowlist, scmp) {
            block.enosys_above = highest(scmp);
        }
    }

    const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let enosys = 0x0005_0000 | libc::ENOSYS as u32; // SECCOMP_RET_ERRNO
    let mut out: Vec<(u16, u8, u8, u32)> = Vec::new();
    for block in blocks {
        let mut body: Vec<(u16, u8, u8, u32)> = vec![(LD_ABS, 0, 0, 0)];
        for (nr, action) in &block.numbers {
            body.push((JEQ_K, 0, 1, *nr));
            body.push((RET_K, 0, 0, *action));
        }
        if let Some(max) = block.enosys_above {
            if block.token == AUDIT_ARCH_X86_64 {
                // x32's calls carry a high bit: leave them to libseccomp.
                body.push((JGE_K, 2, 0, X32_SYSCALL_BIT));
            }
            body.push((JGT_K, 0, 1, max));
            body.push((RET_K, 0, 0, enosys));
        }
        if body.len() == 1 {
            continue;
        }
        // A block is a few dozen instructions, far below a jump's 255.
        out.push((LD_ABS, 0, 0, 4));
        out.push((JEQ_K, 0, body.len().min(255) as u8, block.token));
        out.extend(body);
    }
    let mut bytes = Vec::with_capacity(out.len() * 8);
    for (code, jt, jf, k) in out {
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.push(jt);
        bytes.push(jf);
        bytes.extend_from_slice(&k.to_ne_bytes());
    }
    bytes
}

/// libseccomp 2.5 exports only to a descriptor: export into a memfd and read
/// it back.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SeccompError::Export(e.into()))?;
    ctx.export_bpf(&fd).map_err(lib("export the BPF program"))?;
    let mut file = std::fs::File::from(fd);
    let mut bpf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(SeccompError::Export)?;
    Ok(bpf)
}
