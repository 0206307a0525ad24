//! Per-task attributes a container process gets before it execs:
//! `process.scheduler` (`sched_setattr(2)`), `process.ioPriority`
//! (`ioprio_set(2)`), `linux.personality` (`personality(2)`),
//! `linux.memoryPolicy` (`set_mempolicy(2)`) and, for `exec`,
//! `process.execCPUAffinity` (`sched_setaffinity(2)`).
//!
//! Each is turned into the kernel's numbers by a pure function (unit-tested
//! here) and set by [`apply`] while the process still holds its capabilities:
//! a real-time policy or a negative nice value needs CAP_SYS_NICE, the
//! real-time I/O class CAP_SYS_ADMIN. Values the kernel refuses (a priority out
//! of range, a deadline policy without its times) come back as errors that
//! name the field and what was asked, rather than being checked twice.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler,
};

use berth_sys::process::SchedAttr;

use crate::error::{Error, Result};

/// `PER_LINUX` from linux/personality.h.
const PER_LINUX: libc::c_ulong = 0x0000;
/// `PER_LINUX32` from linux/personality.h.
const PER_LINUX32: libc::c_ulong = 0x0008;

/// The `sched_attr` that `process.scheduler` asks for.
pub fn sched_attr(s: &Scheduler) -> SchedAttr {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        // Reserved by the kernel for an isochronous policy it never merged:
        // sched_setattr refuses it with EINVAL, which names the field.
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s
        .flags()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .fold(0, |acc, f| {
            acc | match f {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                // The clamps need values this layout (and the spec) do not carry:
                // the kernel refuses them with EINVAL.
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            }
        });
    SchedAttr {
        size: 0,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: s.nice().unwrap_or(0),
        // A negative priority is out of every policy's range; u32::MAX makes
        // the kernel say so.
        sched_priority: s
            .priority()
            .map_or(0, |p| u32::try_from(p).unwrap_or(u32::MAX)),
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
    }
}

/// The `ioprio_set` value of `process.ioPriority`: the class in bits 13-15,
/// the level (0-7) below.
pub fn ioprio(p: &LinuxIOPriority) -> Result<i32> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::Invalid(format!(
            "process.ioPriority.priority {level}: must be from 0 to 7"
        )));
    }
    Ok((class << 13) | level as i32)
}

/// The `personality(2)` value of `linux.personality`. The spec defines no
/// flags yet, so any is refused rather than ignored.
pub fn persona(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    if let Some(flag) = p.flags().as_deref().unwrap_or(&[]).first() {
        return Err(Error::Invalid(format!(
            "linux.personality.flags {flag:?}: the runtime spec defines no personality flags"
        )));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    })
}

/// The numbers of a list such as `0-3,7` (CPUs, memory nodes), each below
/// `limit`. `field` names the list in errors.
fn id_list(field: &str, list: &str, what: &str, limit: usize) -> Result<Vec<usize>> {
    let bad = |why: String| Error::Invalid(format!("{field} {list:?}: {why}"));
    let mut ids = Vec::new();
    for part in list.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{part:?} is not a {what} number or range")))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(bad(format!("range {part:?} runs backwards")));
        }
        if last >= limit {
            return Err(bad(format!(
                "{what} {last} is beyond the {limit} the kernel's mask holds"
            )));
        }
        ids.extend(first..=last);
    }
    Ok(ids)
}

/// The CPUs of a list such as `0-3,7` (`process.execCPUAffinity`), as
/// the kernel's affinity mask. `field` names the list in errors.
pub fn cpu_set(field: &str, list: &str) -> Result<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in id_list(field, list, "CPU", nix::sched::CpuSet::count())? {
        set.set(cpu)
            .map_err(|e| Error::sys(format!("{field}: add CPU {cpu} to the mask"), e))?;
    }
    Ok(set)
}

/// The largest memory node number a policy may name (the kernel's
/// `MAX_NUMNODES` is at most 1024).
const MAX_NODES: usize = 1024;

/// The `set_mempolicy` arguments of `linux.memoryPolicy`: the mode with its
/// flags, and the node mask. The spec's rules about which modes take nodes
/// are checked here; the kernel checks the nodes exist.
pub fn mempolicy(p: &LinuxMemoryPolicy) -> Result<(i32, Vec<libc::c_ulong>)> {
    let (mode, needs_nodes) = match p.mode() {
        MemoryPolicyModeType::MpolDefault => (0, Some(false)),
        MemoryPolicyModeType::MpolPreferred => (1, None),
        MemoryPolicyModeType::MpolBind => (2, Some(true)),
        MemoryPolicyModeType::MpolInterleave => (3, Some(true)),
        MemoryPolicyModeType::MpolLocal => (4, Some(false)),
        MemoryPolicyModeType::MpolPreferredMany => (5, Some(true)),
        MemoryPolicyModeType::MpolWeightedInterleave => (6, Some(true)),
    };
    let nodes = match p.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(list) => id_list("linux.memoryPolicy.nodes", list, "node", MAX_NODES)?,
        None => Vec::new(),
    };
    match needs_nodes {
        Some(true) if nodes.is_empty() => {
            return Err(Error::Invalid(format!(
                "linux.memoryPolicy.nodes: mode {:?} needs at least one node",
                p.mode()
            )))
        }
        Some(false) if !nodes.is_empty() => {
            return Err(Error::Invalid(format!(
                "linux.memoryPolicy.nodes: mode {:?} takes no nodes",
                p.mode()
            )))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    if flags & (3 << 14) == 3 << 14 {
        return Err(Error::Invalid(
            "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
                .into(),
        ));
    }
    let word = libc::c_ulong::BITS as usize;
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    if let Some(&max) = nodes.iter().max() {
        mask = vec![0; max / word + 1];
        for n in nodes {
            mask[n / word] |= 1 << (n % word);
        }
    }
    Ok((mode | flags, mask))
}

/// Sets the calling process's CPU affinity to `list` (one of
/// `process.execCPUAffinity`'s, named by `field`).
pub fn set_cpu_affinity(field: &str, list: &str) -> Result<()> {
    let set = cpu_set(field, list)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::sys(format!("{field} {list:?}: sched_setaffinity"), e))
}

/// Checks what can be checked before anything is made, so a bad value fails
/// `create` in the runtime rather than in the init.
pub fn validate(process: Option<&Process>, personality: Option<&LinuxPersonality>) -> Result<()> {
    if let Some(p) = process.and_then(|p| p.io_priority().as_ref()) {
        ioprio(p)?;
    }
    if let Some(a) = process.and_then(|p| p.exec_cpu_affinity().as_ref()) {
        for (field, list) in [
            ("process.execCPUAffinity.initial", a.initial()),
            ("process.execCPUAffinity.final", a.cpu_affinity_final()),
        ] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                cpu_set(field, list)?;
            }
        }
    }
    if let Some(p) = personality {
        persona(p)?;
    }
    Ok(())
}

/// Sets the NUMA memory policy of the calling process (`linux.memoryPolicy`);
/// its children and the program it execs keep it.
pub fn apply_memory_policy(policy: Option<&LinuxMemoryPolicy>) -> Result<()> {
    let Some(p) = policy else { return Ok(()) };
    let (mode, mask) = mempolicy(p)?;
    berth_sys::process::set_mempolicy(mode, &mask).map_err(|e| {
        Error::sys(
            format!(
                "linux.memoryPolicy: set_mempolicy with mode {:?}, nodes {:?}, flags {:?}",
                p.mode(),
                p.nodes().as_deref().unwrap_or(""),
                p.flags().as_deref().unwrap_or(&[])
            ),
            e,
        )
    })
}

/// Sets the process's scheduler, I/O priority and personality, in that order.
pub fn apply(process: &Process, personality: Option<&LinuxPersonality>) -> Result<()> {
    if let Some(s) = process.scheduler() {
        let attr = sched_attr(s);
        berth_sys::process::sched_setattr_self(&attr).map_err(|e| {
            Error::sys(
                format!(
                    "process.scheduler: sched_setattr with policy {:?}, nice {}, priority {}, \
                     flags {:#x}, runtime {}, deadline {}, period {}",
                    s.policy(),
                    attr.sched_nice,
                    attr.sched_priority,
                    attr.sched_flags,
                    attr.sched_runtime,
                    attr.sched_deadline,
                    attr.sched_period
                ),
                e,
            )
        })?;
    }
    if let Some(p) = process.io_priority() {
        let value = ioprio(p)?;
        berth_sys::process::ioprio_set_self(value).map_err(|e| {
            Error::sys(
                format!(
                    "process.ioPriority: ioprio_set with class {:?}, priority {}",
                    p.class(),
                    p.priority()
                ),
                e,
            )
        })?;
    }
    if let Some(p) = personality {
        let value = persona(p)?;
        berth_sys::process::set_personality(value).map_err(|e| {
            Error::sys(
                format!("linux.personality: personality({:?})", p.domain()),
                e,
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIOPriorityBuilder, LinuxPersonalityBuilder, SchedulerBuilder};

    #[test]
    fn memory_policies_follow_the_spec_rules() {
        let policy = |v: serde_json::Value| -> LinuxMemoryPolicy {
            serde_json::from_value(v).expect("memoryPolicy")
        };
        assert_eq!(
            mempolicy(&policy(
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-1,65"})
            ))
            .expect("bind"),
            (2, vec![0b11, 0b10])
        );
        assert_eq!(
            mempolicy(&policy(serde_json::json!({
                "mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]
            })))
            .expect("interleave"),
            (3 | 1 << 15, vec![1])
        );
        assert_eq!(
            mempolicy(&policy(serde_json::json!({"mode": "MPOL_DEFAULT"}))).expect("default"),
            (0, vec![])
        );
        for (bad, want) in [
            (
                serde_json::json!({"mode": "MPOL_BIND"}),
                "needs at least one node",
            ),
            (
                serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
                "takes no nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
                    "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
                "exclude each other",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "5000"}),
                "beyond",
            ),
        ] {
            let e = mempolicy(&policy(bad)).expect_err(want).to_string();
            assert!(e.contains("linux.memoryPolicy") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn cpu_lists_parse_like_the_kernels() {
        let s = cpu_set("f", "0-2,5").expect("list");
        let on: Vec<usize> = (0..8).filter(|&c| s.is_set(c).unwrap_or(false)).collect();
        assert_eq!(on, vec![0, 1, 2, 5]);
        for bad in ["", "a", "3-1", "1,,2", "99999"] {
            let e = cpu_set("process.execCPUAffinity.final", bad).expect_err(bad);
            assert!(
                e.to_string().contains("process.execCPUAffinity.final"),
                "{e}"
            );
        }
    }

    #[test]
    fn scheduler_maps_to_the_kernels_numbers() {
        let s = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedBatch)
            .nice(5)
            .flags(vec![LinuxSchedulerFlag::SchedResetOnFork])
            .build()
            .expect("scheduler");
        let a = sched_attr(&s);
        assert_eq!((a.sched_policy, a.sched_nice, a.sched_flags), (3, 5, 1));
        let s = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedDeadline)
            .runtime(10_000_000u64)
            .deadline(30_000_000u64)
            .period(30_000_000u64)
            .build()
            .expect("scheduler");
        let a = sched_attr(&s);
        assert_eq!(
            (
                a.sched_policy,
                a.sched_runtime,
                a.sched_deadline,
                a.sched_period
            ),
            (6, 10_000_000, 30_000_000, 30_000_000)
        );
        let s = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedFifo)
            .priority(-1)
            .build()
            .expect("scheduler");
        assert_eq!(sched_attr(&s).sched_priority, u32::MAX);
    }

    #[test]
    fn io_priority_packs_class_and_level() {
        let p = |class, priority: i64| {
            LinuxIOPriorityBuilder::default()
                .class(class)
                .priority(priority)
                .build()
                .expect("ioPriority")
        };
        assert_eq!(
            ioprio(&p(IOPriorityClass::IoprioClassRt, 1)).ok(),
            Some((1 << 13) | 1)
        );
        assert_eq!(
            ioprio(&p(IOPriorityClass::IoprioClassBe, 7)).ok(),
            Some((2 << 13) | 7)
        );
        assert_eq!(
            ioprio(&p(IOPriorityClass::IoprioClassIdle, 0)).ok(),
            Some(3 << 13)
        );
        let err = ioprio(&p(IOPriorityClass::IoprioClassBe, 8)).expect_err("8 is out of range");
        assert!(
            err.to_string().contains("process.ioPriority.priority 8"),
            "{err}"
        );
    }

    #[test]
    fn personality_domains_and_flags() {
        let p = LinuxPersonalityBuilder::default()
            .domain(LinuxPersonalityDomain::PerLinux32)
            .build()
            .expect("personality");
        assert_eq!(persona(&p).ok(), Some(PER_LINUX32));
        let p = LinuxPersonalityBuilder::default()
            .domain(LinuxPersonalityDomain::PerLinux)
            .flags(vec!["SHORT_INODE".to_string()])
            .build()
            .expect("personality");
        let err = persona(&p).expect_err("flags are refused");
        assert!(err.to_string().contains("linux.personality.flags"), "{err}");
    }
}
