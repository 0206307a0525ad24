//! The few `bpf(2)` commands berth needs for cgroup v2 device control: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup directory,
//! list the programs attached there, and detach one.
//!
//! The attribute structs below are prefixes of the kernel's `union bpf_attr`
//! (linux/bpf.h); the kernel accepts a shorter attribute and treats the rest
//! as zero, so only the fields berth sets are declared.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `BPF_PROG_LOAD` (enum bpf_cmd).
const BPF_PROG_LOAD: libc::c_int = 5;
/// `BPF_PROG_ATTACH`.
const BPF_PROG_ATTACH: libc::c_int = 8;
/// `BPF_PROG_DETACH`.
const BPF_PROG_DETACH: libc::c_int = 9;
/// `BPF_PROG_GET_FD_BY_ID`.
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
/// `BPF_PROG_QUERY`.
const BPF_PROG_QUERY: libc::c_int = 16;

/// `BPF_PROG_TYPE_CGROUP_DEVICE` (enum bpf_prog_type).
pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` (enum bpf_attach_type).
pub const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_OVERRIDE`: a descendant may replace this program.
pub const BPF_F_ALLOW_OVERRIDE: u32 = 1 << 0;
/// `BPF_F_ALLOW_MULTI`: several programs may be attached; all must allow.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// `BPF_DEVCG_DEV_BLOCK`: the low 16 bits of `access_type` for a block device.
pub const BPF_DEVCG_DEV_BLOCK: u32 = 1;
/// `BPF_DEVCG_DEV_CHAR`: the low 16 bits of `access_type` for a character device.
pub const BPF_DEVCG_DEV_CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`: bit of the high 16 bits of `access_type`.
pub const BPF_DEVCG_ACC_MKNOD: u32 = 1;
/// `BPF_DEVCG_ACC_READ`.
pub const BPF_DEVCG_ACC_READ: u32 = 2;
/// `BPF_DEVCG_ACC_WRITE`.
pub const BPF_DEVCG_ACC_WRITE: u32 = 4;

/// Size of the verifier log requested when a load is refused; the verifier's
/// message for a short program fits easily, and a longer log is truncated.
const LOG_SIZE: usize = 64 * 1024;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BpfInsn {
    /// Opcode (class | size/op | source).
    pub code: u8,
    /// Destination register in the low nibble, source register in the high one.
    pub regs: u8,
    /// Signed offset (jumps, memory access).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl BpfInsn {
    /// Builds an instruction from its parts; registers are 0..=10.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
        BpfInsn {
            code,
            regs: (dst & 0x0f) | ((src & 0x0f) << 4),
            off,
            imm,
        }
    }

    /// The destination register.
    pub const fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// The source register.
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// A program the kernel refused to load, with the verifier's explanation.
#[derive(Debug, thiserror::Error)]
#[error("bpf(BPF_PROG_LOAD) failed: {errno}; verifier log: {log}")]
pub struct LoadError {
    /// What the syscall returned.
    pub errno: Errno,
    /// The verifier log (empty when the kernel gave none).
    pub log: String,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls `bpf(cmd, attr, size_of::<T>())`.
///
/// # Safety
/// Every pointer stored in `attr` must be valid for what the kernel does with
/// it under `cmd` (read or write, with the lengths given in `attr`).
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed struct of the size passed;
    // the caller guarantees the pointers inside it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(ret)
}

fn load(insns: &[BpfInsn], license: &CStr, log: Option<&mut [u8]>) -> nix::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?;
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(buf.len()).map_err(|_| Errno::E2BIG)?;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // SAFETY: `insns` (insn_cnt records) and the NUL-terminated `license` are
    // read-only and alive for the call; `log_buf`, when set, is a writable
    // buffer of exactly `log_size` bytes that outlives the call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: on success BPF_PROG_LOAD returns a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Loads `insns` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program under `license`
/// and returns its descriptor. When the kernel refuses, the load is repeated
/// with a verifier log so the error says why (the first try has none, since a
/// log that is too small is itself a failure, ENOSPC).
pub fn prog_load_cgroup_device(insns: &[BpfInsn], license: &CStr) -> Result<OwnedFd, LoadError> {
    match load(insns, license, None) {
        Ok(fd) => Ok(fd),
        Err(errno) => {
            let mut buf = vec![0u8; LOG_SIZE];
            // Retry for the text only; a success now (a transient failure) is kept.
            match load(insns, license, Some(&mut buf)) {
                Ok(fd) => Ok(fd),
                Err(second) => {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    let log = String::from_utf8_lossy(&buf[..end]).trim().to_string();
                    let errno = if second == Errno::ENOSPC {
                        errno
                    } else {
                        second
                    };
                    Err(LoadError { errno, log })
                }
            }
        }
    }
}

/// Attaches `prog` to the cgroup directory `cgroup_dir` (opened read-only)
/// at `attach_type` with `flags` (e.g. [`BPF_F_ALLOW_MULTI`]).
pub fn prog_attach(
    prog: BorrowedFd<'_>,
    cgroup_dir: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> nix::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: the attribute holds only descriptors and integers, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr)? };
    Ok(())
}

/// Detaches `prog` from `cgroup_dir` at `attach_type`.
pub fn prog_detach(
    prog: BorrowedFd<'_>,
    cgroup_dir: BorrowedFd<'_>,
    attach_type: u32,
) -> nix::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: 0,
    };
    // SAFETY: the attribute holds only descriptors and integers, no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr)? };
    Ok(())
}

/// The ids of the programs attached directly to `cgroup_dir` at `attach_type`
/// (not inherited ones).
pub fn prog_query(cgroup_dir: BorrowedFd<'_>, attach_type: u32) -> nix::Result<Vec<u32>> {
    // Ask for the count first, then for the ids; retry if it grew meanwhile.
    loop {
        let mut attr = ProgQueryAttr {
            target_fd: cgroup_dir.as_raw_fd() as u32,
            attach_type,
            ..Default::default()
        };
        // SAFETY: `prog_ids` is null, so the kernel only writes the count into `attr`.
        unsafe { bpf(BPF_PROG_QUERY, &mut attr)? };
        if attr.prog_cnt == 0 {
            return Ok(Vec::new());
        }
        let want = attr.prog_cnt;
        let mut ids = vec![0u32; want as usize];
        let mut attr = ProgQueryAttr {
            target_fd: cgroup_dir.as_raw_fd() as u32,
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: want,
            ..Default::default()
        };
        // SAFETY: `prog_ids` points to `want` writable u32s alive for the call,
        // and `prog_cnt` tells the kernel that length.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt.min(want) as usize);
                return Ok(ids);
            }
            Err(Errno::ENOSPC) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Opens the loaded program with id `id` (needs CAP_SYS_ADMIN).
pub fn prog_get_fd_by_id(id: u32) -> nix::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        id,
        ..Default::default()
    };
    // SAFETY: the attribute holds only integers, no pointers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: on success the kernel returns a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        let i = BpfInsn::new(0x61, 2, 1, 4, -1);
        assert_eq!((i.dst(), i.src()), (2, 1));
        assert_eq!(i.regs, 0x12);
        assert_eq!(std::mem::size_of::<ProgQueryAttr>(), 32);
    }

    #[test]
    fn loads_a_trivial_program_or_explains_a_refusal() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP loads_a_trivial_program_or_explains_a_refusal: bpf(2) needs root");
            return;
        }
        // r0 = 1; exit
        let ok = [
            BpfInsn::new(0xb7, 0, 0, 0, 1),
            BpfInsn::new(0x95, 0, 0, 0, 0),
        ];
        prog_load_cgroup_device(&ok, c"Apache-2.0").expect("load r0=1; exit");
        // exit without setting r0: the verifier refuses and says why.
        let bad = [BpfInsn::new(0x95, 0, 0, 0, 0)];
        let err = prog_load_cgroup_device(&bad, c"Apache-2.0").expect_err("r0 unset");
        assert!(err.log.contains("R0"), "log: {}", err.log);
    }
}
