//! Device rules on cgroup v2: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, generated from the OCI rule list and
//! attached to the container's cgroup2 directory.
//!
//! # Semantics
//!
//! The kernel runs the program for every device open and mknod with a
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`: the
//! low 16 bits of `access_type` are the device type (block 1, char 2), the high
//! 16 bits the access asked for (mknod 1, read 2, write 4; an `O_RDWR` open asks
//! for both read and write at once). The program returns 1 to allow, 0 to deny.
//!
//! The rules mean what they mean when written in order to v1's
//! `devices.allow`/`devices.deny`: the last rule that matches wins, and with no
//! matching rule the access is allowed (a new cgroup allows everything), so a
//! list starting with a deny-all is a default deny. Each access bit is decided
//! on its own, so `deny c 1:3 w` after `allow c 1:* rwm` still lets 1:3 be
//! read; a request is allowed only when every bit it asks for is. Type `a`
//! means every device and every access whatever else the rule says, as the v1
//! kernel reads it. The program walks the rules from the last to the first and
//! returns at the first match, per access bit; rules that cannot match any
//! device (a number above 2^31, far beyond the kernel's 12-bit major and
//! 20-bit minor) are left out, and nothing is emitted after a rule that
//! matches unconditionally (the verifier refuses unreachable instructions).
//!
//! # Why the instructions are written by hand
//!
//! The program is a fixed prologue plus a few compare-and-jump blocks per rule.
//! No maintained Rust crate emits cgroup device programs (the eBPF crates
//! compile separate BPF objects or load prebuilt ones, which would add a
//! toolchain to the build for about a dozen opcodes), so this file carries a
//! minimal assembler with labels for the handful of instructions needed. The
//! tests run the generated code in a small interpreter against a table of rule
//! lists, and against the real kernel.
//!
//! # Replacing a program
//!
//! [`attach_replacing`] attaches the new program with `BPF_F_ALLOW_MULTI` and
//! then detaches the programs that were attached before it, so there is never a
//! moment with no program (during the switch both run, and both must allow).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_sys::bpf::{
    self, BpfInsn, BPF_CGROUP_DEVICE, BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE,
    BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, BPF_F_ALLOW_MULTI,
};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{Error, Result};

/// The license the program is loaded under (the kernel wants one; no GPL-only helper is used).
const LICENSE: &std::ffi::CStr = c"Apache-2.0";

// Opcodes (linux/bpf.h, linux/bpf_common.h): class | op | source.
/// `BPF_LDX | BPF_MEM | BPF_W`: dst = *(u32 *)(src + off).
const LDX_W: u8 = 0x61;
/// `BPF_ALU64 | BPF_MOV | BPF_K`: dst = imm.
const MOV_K: u8 = 0xb7;
/// `BPF_ALU64 | BPF_MOV | BPF_X`: dst = src.
const MOV_X: u8 = 0xbf;
/// `BPF_ALU64 | BPF_AND | BPF_K`: dst &= imm.
const AND_K: u8 = 0x57;
/// `BPF_ALU64 | BPF_RSH | BPF_K`: dst >>= imm.
const RSH_K: u8 = 0x77;
/// `BPF_JMP | BPF_JEQ | BPF_K`: if dst == imm goto +off.
const JEQ_K: u8 = 0x15;
/// `BPF_JMP | BPF_JNE | BPF_K`: if dst != imm goto +off.
const JNE_K: u8 = 0x55;
/// `BPF_JMP | BPF_JA`: goto +off.
const JA: u8 = 0x05;
/// `BPF_JMP | BPF_EXIT`: return r0.
const EXIT: u8 = 0x95;

// Registers: r1 is the context on entry; the prologue keeps the fields in r2..r5.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// A jump target whose address is known only later.
#[derive(Clone, Copy)]
struct Label(usize);

/// Emits instructions and resolves forward jumps to labels.
#[derive(Default)]
struct Asm {
    insns: Vec<BpfInsn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(BpfInsn::new(code, dst, src, off, imm));
    }

    fn ldx_w(&mut self, dst: u8, src: u8, off: i16) {
        self.emit(LDX_W, dst, src, off, 0);
    }

    fn mov_k(&mut self, dst: u8, imm: i32) {
        self.emit(MOV_K, dst, 0, 0, imm);
    }

    fn mov_x(&mut self, dst: u8, src: u8) {
        self.emit(MOV_X, dst, src, 0, 0);
    }

    fn and_k(&mut self, dst: u8, imm: i32) {
        self.emit(AND_K, dst, 0, 0, imm);
    }

    fn rsh_k(&mut self, dst: u8, imm: i32) {
        self.emit(RSH_K, dst, 0, 0, imm);
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.emit(code, dst, 0, 0, imm);
    }

    fn ret(&mut self, value: i32) {
        self.mov_k(R0, value);
        self.emit(EXIT, 0, 0, 0, 0);
    }

    /// The program with every jump resolved, or `None` when a jump is farther
    /// than the 16-bit offset reaches (a rule list of thousands of rules).
    fn finish(mut self) -> Option<Vec<BpfInsn>> {
        for (at, label) in std::mem::take(&mut self.fixups) {
            // `program` binds every label it jumps to; an unbound one is refused, never guessed.
            let target = self.labels[label.0]?;
            let off = target as i64 - (at as i64 + 1);
            self.insns[at].off = i16::try_from(off).ok()?;
        }
        Some(self.insns)
    }
}

/// One rule as the program tests it; `None` fields match anything.
#[derive(Debug)]
struct Rule {
    allow: bool,
    typ: Option<u32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: u32,
}

/// The rule as the program tests it, or `None` when it can match no device.
fn lower(rule: &LinuxDeviceCgroup) -> Option<Rule> {
    let all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => {
            return Some(Rule {
                allow: rule.allow(),
                typ: None,
                major: None,
                minor: None,
                access: all,
            })
        }
        Some(LinuxDeviceType::B) => BPF_DEVCG_DEV_BLOCK,
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => BPF_DEVCG_DEV_CHAR,
        // devices::validate refuses the others before a program is made.
        Some(_) => return None,
    };
    // Negative is a wildcard; above i32::MAX no device has that number.
    let number = |n: Option<i64>| -> Option<Option<i32>> {
        match n {
            None => Some(None),
            Some(n) if n < 0 => Some(None),
            Some(n) => i32::try_from(n).ok().map(Some),
        }
    };
    let access = match rule.access().as_deref().filter(|a| !a.is_empty()) {
        None => all,
        Some(a) => a.chars().fold(0, |acc, c| {
            acc | match c {
                'm' => BPF_DEVCG_ACC_MKNOD,
                'r' => BPF_DEVCG_ACC_READ,
                'w' => BPF_DEVCG_ACC_WRITE,
                _ => 0,
            }
        }),
    };
    Some(Rule {
        allow: rule.allow(),
        typ: Some(typ),
        major: number(rule.major())?,
        minor: number(rule.minor())?,
        access,
    })
}

/// Generates the device program for `rules` (see the module doc for its meaning);
/// `None` when the list is too long for the program's jumps.
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Option<Vec<BpfInsn>> {
    let rules: Vec<Rule> = rules.iter().filter_map(lower).collect();
    let mut a = Asm::default();
    // struct bpf_cgroup_dev_ctx: access_type at 0, major at 4, minor at 8.
    a.ldx_w(R_TYPE, R1, 0);
    a.mov_x(R_ACCESS, R_TYPE);
    a.rsh_k(R_ACCESS, 16);
    a.and_k(R_TYPE, 0xffff);
    a.ldx_w(R_MAJOR, R1, 4);
    a.ldx_w(R_MINOR, R1, 8);
    for bit in [BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE] {
        let next_bit = a.label();
        a.mov_x(R0, R_ACCESS);
        a.and_k(R0, bit as i32);
        a.jump(JEQ_K, R0, 0, next_bit);
        for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next_rule = a.label();
            let mut conditional = false;
            let checks = [
                (R_TYPE, rule.typ.map(|t| t as i32)),
                (R_MAJOR, rule.major),
                (R_MINOR, rule.minor),
            ];
            for (reg, value) in checks {
                if let Some(v) = value {
                    a.jump(JNE_K, reg, v, next_rule);
                    conditional = true;
                }
            }
            if rule.allow {
                a.jump(JA, 0, 0, next_bit);
            } else {
                a.ret(0);
            }
            if !conditional {
                // Earlier rules are unreachable for this bit.
                break;
            }
            a.bind(next_rule);
        }
        // No rule matched (or an allow jumped here): this bit is allowed.
        a.bind(next_bit);
    }
    a.ret(1);
    a.finish()
}

/// Loads the program for `rules`; a refusal carries the verifier's log.
pub(crate) fn load(cgroup: &str, rules: &[LinuxDeviceCgroup]) -> Result<OwnedFd> {
    let insns = program(rules).ok_or_else(|| Error::InvalidResources {
        cgroup: cgroup.to_string(),
        reason: format!(
            "{} device rules make a device program too long for eBPF jumps",
            rules.len()
        ),
    })?;
    bpf::prog_load_cgroup_device(&insns, LICENSE).map_err(|e| Error::DeviceRulesNeedEbpf {
        cgroup: cgroup.to_string(),
        rules: rules.len(),
        errno: e.errno,
        log: e.log,
    })
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })
}

fn bpf_error(dir: &Path, op: &'static str, source: nix::Error) -> Error {
    Error::DeviceProgram {
        dir: dir.to_path_buf(),
        op,
        source,
    }
}

/// Detaches the device programs attached to `dir` whose ids are in `ids`.
fn detach_ids(dir: &Path, cgroup: &OwnedFd, ids: &[u32]) -> Result<()> {
    for &id in ids {
        let old = match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Detached and freed by someone else meanwhile.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(bpf_error(dir, "bpf(BPF_PROG_GET_FD_BY_ID)", e)),
        };
        match bpf::prog_detach(old.as_fd(), cgroup.as_fd(), BPF_CGROUP_DEVICE) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(bpf_error(dir, "bpf(BPF_PROG_DETACH)", e)),
        }
    }
    Ok(())
}

/// Attaches `prog` to the cgroup2 directory `dir`, then detaches the device
/// programs that were attached there before (a previous apply or update).
pub(crate) fn attach_replacing(dir: &Path, prog: &OwnedFd) -> Result<()> {
    let cgroup = open_dir(dir)?;
    let old = bpf::prog_query(cgroup.as_fd(), BPF_CGROUP_DEVICE)
        .map_err(|e| bpf_error(dir, "bpf(BPF_PROG_QUERY)", e))?;
    bpf::prog_attach(
        prog.as_fd(),
        cgroup.as_fd(),
        BPF_CGROUP_DEVICE,
        BPF_F_ALLOW_MULTI,
    )
    .map_err(|e| bpf_error(dir, "bpf(BPF_PROG_ATTACH)", e))?;
    detach_ids(dir, &cgroup, &old)
}

/// Detaches every device program attached directly to `dir` (an update to rules that restrict nothing).
pub(crate) fn detach_all(dir: &Path) -> Result<()> {
    let cgroup = open_dir(dir)?;
    let ids = bpf::prog_query(cgroup.as_fd(), BPF_CGROUP_DEVICE)
        .map_err(|e| bpf_error(dir, "bpf(BPF_PROG_QUERY)", e))?;
    detach_ids(dir, &cgroup, &ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    const M: u32 = BPF_DEVCG_ACC_MKNOD;
    const R: u32 = BPF_DEVCG_ACC_READ;
    const W: u32 = BPF_DEVCG_ACC_WRITE;
    const B: u32 = BPF_DEVCG_DEV_BLOCK;
    const C: u32 = BPF_DEVCG_DEV_CHAR;

    /// Parses `allow c 1:3 rw` / `deny a *:* rwm` into a rule.
    fn rule(text: &str) -> LinuxDeviceCgroup {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [verb, typ, numbers, access] = parts[..] else {
            panic!("bad test rule {text:?}");
        };
        let (major, minor) = numbers.split_once(':').expect("major:minor");
        let num = |s: &str| (s != "*").then(|| s.parse::<i64>().expect("number"));
        let typ = match typ {
            "a" => LinuxDeviceType::A,
            "b" => LinuxDeviceType::B,
            "c" => LinuxDeviceType::C,
            other => panic!("bad type {other}"),
        };
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(verb == "allow")
            .typ(typ)
            .access(access);
        if let Some(m) = num(major) {
            b = b.major(m);
        }
        if let Some(m) = num(minor) {
            b = b.minor(m);
        }
        b.build().expect("rule")
    }

    fn rules(list: &[&str]) -> Vec<LinuxDeviceCgroup> {
        list.iter().map(|r| rule(r)).collect()
    }

    /// Runs the program on a context the way the kernel would; only the opcodes the generator emits.
    fn run(prog: &[BpfInsn], typ: u32, major: u32, minor: u32, access: u32) -> u64 {
        let ctx = [typ | (access << 16), major, minor];
        let mut reg = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = prog.get(pc).copied().expect("pc ran off the end");
            let (d, s) = (i.dst() as usize, i.src() as usize);
            let imm = i.imm as i64 as u64;
            let mut next = pc + 1;
            let jump = |cond: bool| {
                if cond {
                    (pc as i64 + 1 + i.off as i64) as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_W => {
                    assert_eq!(s, R1 as usize, "loads are from the context only");
                    let off = i.off as usize;
                    assert!(off.is_multiple_of(4) && off < 12, "bad ctx offset {off}");
                    reg[d] = ctx[off / 4] as u64;
                }
                MOV_K => reg[d] = imm,
                MOV_X => reg[d] = reg[s],
                AND_K => reg[d] &= imm,
                RSH_K => reg[d] >>= imm,
                JEQ_K => next = jump(reg[d] == imm),
                JNE_K => next = jump(reg[d] != imm),
                JA => next = jump(true),
                EXIT => return reg[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
            assert!(next > pc, "backward jump at {pc}");
            pc = next;
        }
        panic!("program did not exit");
    }

    /// runc's default allowed devices after a deny-all (what docker-like configs send).
    fn default_list() -> Vec<LinuxDeviceCgroup> {
        rules(&[
            "deny a *:* rwm",
            "allow c *:* m",
            "allow b *:* m",
            "allow c 1:3 rwm",
            "allow c 1:8 rwm",
            "allow c 1:7 rwm",
            "allow c 5:0 rwm",
            "allow c 1:5 rwm",
            "allow c 1:9 rwm",
            "allow c 5:1 rwm",
            "allow c 136:* rwm",
            "allow c 5:2 rwm",
            "allow c 10:200 rwm",
        ])
    }

    #[test]
    fn expectations_hold_for_a_table_of_rule_lists() {
        // (rules, [(type, major, minor, access, allowed)])
        type Case = (Vec<LinuxDeviceCgroup>, Vec<(u32, u32, u32, u32, bool)>);
        let cases: Vec<Case> = vec![
            (vec![], vec![(C, 1, 3, R | W, true), (B, 8, 0, M, true)]),
            (
                rules(&["deny a *:* rwm"]),
                vec![
                    (C, 1, 3, R, false),
                    (B, 8, 0, M, false),
                    (C, 0, 0, W, false),
                ],
            ),
            (
                rules(&["deny a *:* rwm", "allow c 1:3 rwm"]),
                vec![
                    (C, 1, 3, R | W, true),
                    (C, 1, 5, R, false),
                    (B, 1, 3, R, false),
                ],
            ),
            (
                rules(&["deny c 1:3 rw"]),
                vec![
                    (C, 1, 3, R, false),
                    (C, 1, 3, W, false),
                    (C, 1, 3, M, true),
                    (C, 1, 5, R | W, true),
                    (B, 1, 3, R, true),
                ],
            ),
            (
                // The last match wins, per access bit.
                rules(&["deny a *:* rwm", "allow c 1:* rwm", "deny c 1:3 w"]),
                vec![
                    (C, 1, 3, R, true),
                    (C, 1, 3, R | W, false),
                    (C, 1, 3, W, false),
                    (C, 1, 5, R | W, true),
                    (C, 2, 3, R, false),
                ],
            ),
            (
                rules(&["deny a *:* rwm", "allow c 1:3 r"]),
                vec![
                    (C, 1, 3, R, true),
                    (C, 1, 3, R | W, false),
                    (C, 1, 3, M, false),
                ],
            ),
            (
                rules(&["deny a *:* rwm", "allow a *:* rwm"]),
                vec![(C, 1, 3, R | W, true), (B, 8, 0, R | W | M, true)],
            ),
            (
                rules(&["allow a *:* rwm", "deny a *:* rwm"]),
                vec![(C, 1, 3, R, false)],
            ),
            (
                // Type a ignores the numbers and the access, as v1 does.
                rules(&["deny a 1:3 r"]),
                vec![(C, 4, 1, W, false), (B, 8, 0, M, false)],
            ),
            (
                rules(&["deny a *:* rwm", "allow b 8:* r"]),
                vec![(B, 8, 0, R, true), (B, 8, 16, R, true), (C, 8, 0, R, false)],
            ),
            (
                default_list(),
                vec![
                    (B, 8, 0, M, true),
                    (B, 8, 0, R, false),
                    (C, 4, 1, M, true),
                    (C, 4, 1, R | W, false),
                    (C, 1, 3, R | W, true),
                    (C, 1, 5, R, true),
                    (C, 1, 9, R, true),
                    (C, 136, 4, R | W, true),
                    (C, 5, 2, R | W, true),
                    (C, 10, 200, R | W, true),
                    (C, 10, 229, R | W, false),
                    (C, 1, 1, R, false),
                ],
            ),
        ];
        for (list, expectations) in cases {
            let prog = program(&list).expect("program");
            let shown: Vec<String> = list.iter().map(super::super::format_device_rule).collect();
            for (typ, major, minor, access, allowed) in expectations {
                let got = run(&prog, typ, major, minor, access);
                assert_eq!(
                    got, allowed as u64,
                    "rules {shown:?}: type {typ} {major}:{minor} access {access:#x}"
                );
            }
        }
    }

    #[test]
    fn instruction_counts_are_as_designed() {
        // Prologue 6, per bit 3 (test), epilogue 2.
        assert_eq!(program(&[]).expect("program").len(), 6 + 3 * 3 + 2);
        // Deny-all adds a return per bit.
        assert_eq!(
            program(&rules(&["deny a *:* rwm"])).expect("program").len(),
            6 + 3 * 5 + 2
        );
        // A full c 1:3 rule: 3 compares + 1 jump per bit, behind the deny-all's return.
        assert_eq!(
            program(&rules(&["deny a *:* rwm", "allow c 1:3 rwm"]))
                .expect("program")
                .len(),
            6 + 3 * (3 + 4 + 2) + 2
        );
        // A rule after an unconditional one hides nothing; one before it is not emitted.
        assert_eq!(
            program(&rules(&["allow c 1:3 rwm", "deny a *:* rwm"]))
                .expect("program")
                .len(),
            6 + 3 * 5 + 2
        );
        // Numbers no device has are left out.
        assert_eq!(
            program(&rules(&["deny c 4294967296:1 rwm"]))
                .expect("program")
                .len(),
            program(&[]).expect("program").len()
        );
        // docker's list stays far below the verifier's 4096-instruction limit.
        assert!(program(&default_list()).expect("program").len() < 200);
    }

    #[test]
    fn a_list_too_long_for_the_jumps_is_refused() {
        let mut list = rules(&["deny a *:* rwm"]);
        for minor in 0..9000 {
            list.push(rule(&format!("allow c 1:{minor} rwm")));
        }
        assert!(program(&list).is_none());
        assert!(matches!(
            load("/test", &list),
            Err(Error::InvalidResources { .. })
        ));
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        for list in [default_list(), rules(&["deny c 1:3 rw"]), vec![]] {
            let prog = program(&list).expect("program");
            for (pc, i) in prog.iter().enumerate() {
                if matches!(i.code, JEQ_K | JNE_K | JA) {
                    let target = pc as i64 + 1 + i.off as i64;
                    assert!(
                        target > pc as i64 && (target as usize) < prog.len(),
                        "jump at {pc} to {target}"
                    );
                }
            }
        }
    }

    // ---------- the real kernel ----------

    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    /// Removes the test cgroup (after killing the child and moving it out) even when an assertion fails.
    struct Guard {
        dir: std::path::PathBuf,
        parent: std::path::PathBuf,
        child: Option<std::process::Child>,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = std::fs::write(self.parent.join("cgroup.procs"), child.id().to_string());
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = detach_all(&self.dir);
            if let Err(e) = std::fs::remove_dir(&self.dir) {
                eprintln!("could not remove {}: {e}", self.dir.display());
            }
        }
    }

    /// A cgroup2 mount to test in: the hybrid host's `/sys/fs/cgroup/unified`, or a pure v2 root.
    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        info.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(std::path::PathBuf::from)
        })
    }

    #[test]
    fn the_verifier_accepts_the_generated_programs() {
        let test = "the_verifier_accepts_the_generated_programs";
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root to load bpf programs");
            return;
        }
        let lists = [
            vec![],
            rules(&["deny a *:* rwm"]),
            rules(&["allow a *:* rwm"]),
            rules(&["deny c 1:3 rw"]),
            rules(&["deny a *:* rwm", "allow c 1:* rwm", "deny c 1:3 w"]),
            rules(&["allow c 1:3 rwm", "deny a *:* rwm"]),
            default_list(),
        ];
        for list in lists {
            if let Err(e) = load("/test", &list) {
                panic!("rules {list:?}: {e}");
            }
        }
    }

    #[test]
    fn the_kernel_enforces_the_generated_program() {
        let test = "the_kernel_enforces_the_generated_program";
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root to load bpf programs and make cgroups");
            return;
        }
        let Some(mount) = cgroup2_mount() else {
            eprintln!("SKIP {test}: no cgroup2 filesystem is mounted");
            return;
        };
        let dir = mount.join(format!(
            "berth-test-ebpf-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("make the test cgroup");
        let mut guard = Guard {
            dir: dir.clone(),
            parent: mount.clone(),
            child: None,
        };

        let list = rules(&["deny c 1:3 rw"]);
        let prog = load("/test", &list).expect("load the program");
        attach_replacing(&dir, &prog).expect("attach");
        // Attaching again (an update) leaves exactly one program.
        let prog2 = load("/test", &list).expect("load the program again");
        attach_replacing(&dir, &prog2).expect("attach replacing");
        let dir_fd = open_dir(&dir).expect("open dir");
        let ids = bpf::prog_query(dir_fd.as_fd(), BPF_CGROUP_DEVICE).expect("query");
        assert_eq!(ids.len(), 1, "programs attached after a replace: {ids:?}");

        // The child waits for a line, so it opens the devices only once inside the cgroup.
        let script = "read _; \
            if ( : </dev/null ); then echo null-ok; else echo null-denied; fi; \
            if ( : </dev/zero ); then echo zero-ok; else echo zero-denied; fi";
        let child = std::process::Command::new("sh")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        guard.child = Some(child);
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move the child in");
        let mut child = guard.child.take().expect("child");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"go\n").expect("tell the child to go");
        }
        // Bounded wait: the output arrives through a thread and a channel with a timeout.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the child finished within 10 s")
            .expect("wait for the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.contains("null-denied"),
            "stdout {stdout:?} stderr {stderr:?}"
        );
        assert!(
            stderr.contains("Operation not permitted"),
            "stderr {stderr:?}"
        );
        assert!(stdout.contains("zero-ok"), "stdout {stdout:?}");

        detach_all(&dir).expect("detach");
        let ids = bpf::prog_query(dir_fd.as_fd(), BPF_CGROUP_DEVICE).expect("query");
        assert!(ids.is_empty(), "programs left after detach_all: {ids:?}");
        drop(guard);
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
}
