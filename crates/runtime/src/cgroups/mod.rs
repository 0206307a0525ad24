//! Cgroups on v1, v2 and hybrid hosts behind one interface.
//!
//! # What this module owns
//!
//! Everything berth does with the cgroup filesystem for one container: finding
//! where each controller lives, making the container's directories, writing the
//! OCI `linux.resources` into them, moving processes in, freezing, reading
//! statistics and OOM kills, and removing the directories again. The result of
//! [`Cgroup::new`] is plain data ([`Cgroup`] is serde), stored in the
//! container's state file so later commands (`kill`, `events --stats`,
//! `update`, `delete`), which run as new processes, reopen the same cgroup
//! without detecting anything again. It never forks, never starts threads, and
//! never walks directories on the start path (create, apply, add_process): it
//! makes the directories it needs and writes the files the spec asks for.
//!
//! # Layout detection
//!
//! [`Layout::detect`] reads `/proc/self/mountinfo` (never guesses from paths):
//! - every `cgroup` (v1) mount gives a hierarchy with the controllers named in
//!   its super options (`cpu`, `cpuacct`, `cpuset`, `memory`, `devices`,
//!   `freezer`, `blkio`, `pids`, `hugetlb`, `net_cls`, `net_prio`) or the named
//!   hierarchy `name=systemd`, which berth joins as runc does;
//! - a `cgroup2` mount gives the unified hierarchy; its root
//!   `cgroup.controllers` says which controllers it holds.
//!
//! Only v1 mounts means [`LayoutKind::V1`], only cgroup2 means
//! [`LayoutKind::V2`], both means [`LayoutKind::Hybrid`]. On a hybrid host each
//! controller is used from the hierarchy that holds it (a controller can be
//! bound to one hierarchy only); on the development VMs hugetlb is on v2 and
//! all the others on v1. The container's processes join every hierarchy,
//! including the unified one when it holds no controller, so that
//! `/proc/<pid>/cgroup` is consistent and v2 features (`cgroup.events`) work.
//!
//! # Path rules (`linux.cgroupsPath`)
//!
//! - absolute, `/foo/bar`: below the mount point of each hierarchy;
//! - relative, `foo/bar`: below the runtime's own cgroup in each hierarchy (read
//!   from `/proc/self/cgroup`, minus the mount's root), as runc's cgroupfs
//!   driver does;
//! - absent or empty: `/berth/<container-id>`. A fixed parent keeps berth's
//!   containers together and away from the caller's own cgroup (a relative
//!   default would nest containers inside whatever service started berth, and
//!   on v2 that cgroup has processes, so it cannot delegate controllers);
//! - `slice:prefix:name` (systemd style) is refused with
//!   [`Error::SystemdPath`]: berth has no systemd driver yet;
//! - `..` components and the hierarchy root itself are refused.
//!
//! [`Cgroup::destroy`] removes the container's own directory (and any
//! sub-cgroups a process made inside it), never the shared parents such as
//! `/berth`, which other containers use. On v2, [`Cgroup::create`] enables the
//! needed controllers in `cgroup.subtree_control` of every ancestor from the
//! mount root down; they stay enabled afterwards (as with runc), since other
//! containers rely on them.
//!
//! # Testing without root
//!
//! Detection and path resolution are pure functions of text
//! ([`parse_mountinfo`], [`parse_proc_cgroup`], [`Layout::from_mounts`],
//! [`Layout::resolve`]), so the filesystem root is injectable: a mountinfo line
//! whose mount point is a temporary directory yields a [`Cgroup`] that works on
//! plain files there (writes open without O_CREAT, so a missing file is the same
//! error as a controller the kernel lacks). The v2 logic is unit-tested that way;
//! the v1, hybrid and cgroup2 paths are also tested against the real kernel.
//!
//! # Device rules on cgroup v2
//!
//! v1 gets `devices.allow`/`devices.deny` written in the order of the spec.
//! cgroup v2 has no device files: device control there is an eBPF program
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`) attached to the cgroup. When the devices
//! controller is not on a v1 hierarchy and the spec has a rule that restricts
//! anything, berth generates that program from the rules (last matching rule
//! wins, as in v1; see `devices_ebpf`), loads it before writing any other
//! resource, and attaches it to the container's cgroup2 directory with
//! `BPF_F_ALLOW_MULTI`, detaching the programs attached there before (so
//! [`Cgroup::update`] replaces the rules). A kernel that refuses the program
//! gives [`Error::DeviceRulesNeedEbpf`] with the verifier's log: berth refuses
//! rather than leaving devices unrestricted. A rule list that restricts nothing
//! needs no program (an earlier one is detached). With neither a v1 devices
//! hierarchy nor a cgroup2 mount, restricting rules are refused with
//! [`Error::ControllerMissing`].

mod devices;
mod devices_ebpf;
mod fs;
mod layout;
mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use devices::format_device_rule;
pub use layout::{
    parse_mountinfo, parse_proc_cgroup, resolve_cgroups_path, CgroupMount, CgroupsPath, Layout,
    LayoutKind, OwnCgroups, V1Hierarchy, V2Hierarchy,
};
pub use stats::{
    cpu_shares_to_weight, parse_blkio_recursive, parse_cpu_list, parse_flat_keyed, parse_io_stat,
    BlkioEntry, BlkioStats, CpuSetStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry,
    MemoryStats, PidsStats, Stats, Throttling,
};

/// The parent used when the spec gives no `cgroupsPath`: `/berth/<container-id>`.
pub const DEFAULT_PARENT: &str = "/berth";

/// The errors of the cgroups module; each names the cgroup file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cgroup or proc file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel refused a value written to a cgroup file.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A cgroup directory could not be made.
    #[error("create cgroup directory {path}: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A cgroup directory could not be removed or listed.
    #[error("remove cgroup directory {path}: {source}")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A kernel file did not have the expected format.
    #[error("parse {path}: {reason}")]
    Parse {
        /// The file (or a description of the text) being parsed.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// `cgroupsPath` was in systemd's `slice:prefix:name` form.
    #[error(
        "cgroupsPath {0:?} is systemd-style (slice:prefix:name), but berth has no systemd \
         cgroup driver yet; give a filesystem path such as /berth/<id>"
    )]
    SystemdPath(String),
    /// `cgroupsPath` or the container id cannot name a cgroup directory.
    #[error("cgroupsPath {path:?} is invalid: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// `/proc/self/mountinfo` shows no cgroup filesystem at all.
    #[error("no cgroup filesystem is mounted (read /proc/self/mountinfo)")]
    NoCgroupMounts,
    /// The runtime's own cgroup is not visible below a hierarchy's mount.
    #[error(
        "the runtime's own cgroup {own:?} is outside the mount of {mount_point} (root {root:?})"
    )]
    OwnCgroupOutsideMount {
        /// The path from /proc/self/cgroup.
        own: String,
        /// The hierarchy's mount point.
        mount_point: PathBuf,
        /// The mount's root in the hierarchy.
        root: String,
    },
    /// The resources need a controller that no hierarchy holds.
    #[error("cgroup {cgroup}: the resources need the {controller} controller, which is not mounted on this host")]
    ControllerMissing {
        /// The cgroup path.
        cgroup: String,
        /// The missing controller.
        controller: &'static str,
    },
    /// The kernel refused the cgroup v2 device program generated from the rules.
    #[error(
        "cgroup {cgroup}: the spec has {rules} device rules, which on this host need a cgroup v2 \
         eBPF device program, and the kernel refused to load it ({errno}); refusing rather than \
         leaving devices unrestricted; verifier log: {log}"
    )]
    DeviceRulesNeedEbpf {
        /// The cgroup path.
        cgroup: String,
        /// How many rules the spec had.
        rules: usize,
        /// What bpf(BPF_PROG_LOAD) returned.
        errno: nix::errno::Errno,
        /// The verifier's log (may be empty).
        log: String,
    },
    /// Attaching, listing or detaching the device program of a cgroup2 directory failed.
    #[error("cgroup {dir}: {op} for the device program failed: {source}")]
    DeviceProgram {
        /// The cgroup2 directory.
        dir: PathBuf,
        /// The bpf(2) command.
        op: &'static str,
        /// The cause.
        source: nix::Error,
    },
    /// The spec asks for something the host's cgroup version cannot do.
    #[error("cgroup {cgroup}: {what} is not supported here: {why}")]
    Unsupported {
        /// The cgroup path.
        cgroup: String,
        /// The setting.
        what: String,
        /// Why not.
        why: String,
    },
    /// The resources are inconsistent or out of range.
    #[error("cgroup {cgroup}: invalid resources: {reason}")]
    InvalidResources {
        /// The cgroup path.
        cgroup: String,
        /// What is wrong.
        reason: String,
    },
    /// Freezing did not reach the frozen state in time.
    #[error("cgroup {cgroup}: freezing did not complete within {millis} ms (last state {state:?}); thawed again")]
    FreezeTimeout {
        /// The cgroup path.
        cgroup: String,
        /// How long berth waited.
        millis: u64,
        /// The last state read.
        state: String,
    },
    /// Processes are still in the cgroup being destroyed.
    #[error("cgroup {dir} still has processes {pids:?}; kill them before deleting the cgroup")]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// The processes found in it.
        pids: Vec<i32>,
    },
    /// Several teardown steps failed; each is listed.
    #[error("cgroup {cgroup}: teardown failed: {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Teardown {
        /// The cgroup path.
        cgroup: String,
        /// Every failure.
        errors: Vec<Error>,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Which cgroup filesystem a hierarchy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// A `cgroup` (v1) mount.
    V1,
    /// The `cgroup2` unified mount.
    V2,
}

/// A resource controller berth uses (v1 names; on v2 `Blkio` is `io`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    /// CPU shares/weight, bandwidth and realtime.
    Cpu,
    /// CPU accounting (v1 only; v2 accounts in `cpu.stat`).
    Cpuacct,
    /// CPU and memory node placement.
    Cpuset,
    /// Memory limits and accounting.
    Memory,
    /// Process count limit.
    Pids,
    /// Block I/O (`blkio` on v1, `io` on v2).
    Blkio,
    /// Huge page limits.
    Hugetlb,
    /// Device access (v1 only; v2 uses eBPF).
    Devices,
    /// Freezing (v1 only; v2 has `cgroup.freeze` in every cgroup).
    Freezer,
    /// Network class id (v1 only).
    NetCls,
    /// Network interface priorities (v1 only).
    NetPrio,
}

impl Controller {
    /// Every controller, in a fixed order.
    pub const ALL: [Controller; 11] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Blkio,
        Controller::Hugetlb,
        Controller::Devices,
        Controller::Freezer,
        Controller::NetCls,
        Controller::NetPrio,
    ];

    /// The name in a v1 mount's options and in `/proc/self/cgroup`.
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::Hugetlb => "hugetlb",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
        }
    }

    /// The name in v2's `cgroup.controllers`, if the controller exists on v2.
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Cpu => Some("cpu"),
            Controller::Cpuset => Some("cpuset"),
            Controller::Memory => Some("memory"),
            Controller::Pids => Some("pids"),
            Controller::Blkio => Some("io"),
            Controller::Hugetlb => Some("hugetlb"),
            _ => None,
        }
    }

    /// The controller with this v1 name.
    pub fn from_v1_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.v1_name() == name)
    }

    /// The controller with this v2 name.
    pub fn from_v2_name(name: &str) -> Option<Controller> {
        Controller::ALL
            .into_iter()
            .find(|c| c.v2_name() == Some(name))
    }
}

/// One hierarchy the container's cgroup lives in, and its directory there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: Version,
    /// The controllers berth uses from this hierarchy (may be empty: joined for membership only).
    pub controllers: Vec<Controller>,
    /// For a named v1 hierarchy without controllers, its name (`systemd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The container's directory in it.
    pub dir: PathBuf,
}

impl Hierarchy {
    /// The key naming this hierarchy in [`Cgroup::paths`]: `unified`, `name=systemd`, or its controllers joined by commas.
    pub fn label(&self) -> String {
        match (&self.version, &self.name) {
            (Version::V2, _) => "unified".to_string(),
            (Version::V1, Some(name)) => format!("name={name}"),
            (Version::V1, None) => self
                .controllers
                .iter()
                .map(|c| c.v1_name())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// A container's cgroup in every hierarchy of the host: plain data, stored in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The cgroup path as resolved (`/berth/<id>`, or the spec's path), for messages.
    path: String,
    /// The host's layout when the cgroup was resolved.
    kind: LayoutKind,
    /// One entry per hierarchy, each with the container's directory.
    hierarchies: Vec<Hierarchy>,
}

impl Cgroup {
    /// Detects the host layout and resolves `cgroups_path` for `container_id`; touches nothing.
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Cgroup> {
        let path = resolve_cgroups_path(cgroups_path, container_id)?;
        let layout = Layout::detect()?;
        let own = match path {
            CgroupsPath::Relative(_) => Some(OwnCgroups::read()?),
            CgroupsPath::Absolute(_) => None,
        };
        layout.resolve(own.as_ref(), &path)
    }

    pub(crate) fn from_parts(path: String, kind: LayoutKind, hierarchies: Vec<Hierarchy>) -> Self {
        Cgroup {
            path,
            kind,
            hierarchies,
        }
    }

    /// The cgroup path as resolved, e.g. `/berth/abc`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host layout this cgroup was resolved on.
    pub fn layout_kind(&self) -> LayoutKind {
        self.kind
    }

    /// Every hierarchy the cgroup lives in.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// Directory per hierarchy ([`Hierarchy::label`]) and per controller name (v1 names, `io` on v2).
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        for h in &self.hierarchies {
            out.insert(h.label(), h.dir.clone());
            for c in &h.controllers {
                let name = match h.version {
                    Version::V1 => c.v1_name(),
                    Version::V2 => c.v2_name().unwrap_or(c.v1_name()),
                };
                out.insert(name.to_string(), h.dir.clone());
            }
        }
        out
    }

    /// The hierarchy holding `controller`, if any.
    pub fn hierarchy_of(&self, controller: Controller) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.contains(&controller))
    }

    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    fn missing(&self, controller: Controller) -> Error {
        Error::ControllerMissing {
            cgroup: self.path.clone(),
            controller: controller.v1_name(),
        }
    }

    /// Makes the directory in every hierarchy; idempotent; on failure removes what it made.
    pub fn create(&self) -> Result<()> {
        let _span = tracing::debug_span!("cgroup.create", cgroup = %self.path).entered();
        let mut made: Vec<PathBuf> = Vec::new();
        let result = self.create_inner(&mut made);
        if result.is_err() {
            for dir in made.iter().rev() {
                if let Err(e) = std::fs::remove_dir(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove a cgroup directory made by a failed create");
                }
            }
        }
        result
    }

    fn create_inner(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            let first_new = made.len();
            if let Err(e) = fs::mkdir_all(&h.dir, made) {
                if self.membership_only(h) {
                    tracing::warn!(cgroup = %self.path, error = %e, "cannot make the cgroup in a hierarchy without controllers; processes will not join it");
                    continue;
                }
                return Err(e);
            }
            let new_dirs = &made[first_new..];
            match h.version {
                Version::V1 if h.controllers.contains(&Controller::Cpuset) => {
                    v1::init_cpuset(&h.mount_point, &h.dir, new_dirs)?;
                }
                Version::V1 => {}
                Version::V2 => v2::enable_controllers(&h.mount_point, &h.dir, &h.controllers)?,
            }
        }
        Ok(())
    }

    /// Writes the OCI resources into the cgroup files (at create time).
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        let _span = tracing::debug_span!("cgroup.apply", cgroup = %self.path).entered();
        self.check_unsupported(r)?;
        let device_program = self.check_devices(r)?;
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        self.apply_pids(r)?;
        self.apply_blkio(r)?;
        self.apply_hugetlb(r)?;
        self.apply_devices(r, device_program)?;
        self.apply_network(r)?;
        self.apply_unified(r)?;
        Ok(())
    }

    /// Changes the resources of a running container (`berth-runtime update`); same rules as [`Cgroup::apply`].
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.apply(r)
    }

    fn check_unsupported(&self, r: &LinuxResources) -> Result<()> {
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(Error::Unsupported {
                cgroup: self.path.clone(),
                what: "linux.resources.rdma".to_string(),
                why: "berth does not manage the rdma controller yet".to_string(),
            });
        }
        Ok(())
    }

    /// Validates the device rules and, when they need the cgroup v2 device
    /// program, loads it, so a refusal comes before anything is written.
    fn check_devices(&self, r: &LinuxResources) -> Result<Option<OwnedFd>> {
        let Some(rules) = r.devices() else {
            return Ok(None);
        };
        for rule in rules {
            devices::validate(rule).map_err(|reason| Error::InvalidResources {
                cgroup: self.path.clone(),
                reason,
            })?;
        }
        let on_v1 = self
            .hierarchy_of(Controller::Devices)
            .is_some_and(|h| h.version == Version::V1);
        if on_v1 || !devices::restricts_anything(rules) {
            return Ok(None);
        }
        if self.unified().is_none() {
            return Err(self.missing(Controller::Devices));
        }
        devices_ebpf::load(&self.path, rules).map(Some)
    }

    fn apply_memory(&self, r: &LinuxResources) -> Result<()> {
        let Some(m) = r.memory() else { return Ok(()) };
        let unsupported = |what: &str, why: &str| Error::Unsupported {
            cgroup: self.path.clone(),
            what: format!("linux.resources.memory.{what}"),
            why: why.to_string(),
        };
        if m.kernel().is_some() {
            // cgroup v1's memory.kmem.limit_in_bytes still exists but accepts
            // and drops every write (Linux 6.x); v2 never had it.
            return Err(unsupported(
                "kernel",
                "the kernel no longer enforces a separate kernel memory limit (kernel memory counts against memory.limit)",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(unsupported(
                "useHierarchy",
                "the kernel's memory controller is always hierarchical (false cannot be had)",
            ));
        }
        let wanted = m.limit().is_some_and(|v| v != 0)
            || m.kernel_tcp().is_some()
            || m.swap().is_some_and(|v| v != 0)
            || m.reservation().is_some_and(|v| v != 0)
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true);
        if !wanted {
            return Ok(());
        }
        let h = self
            .hierarchy_of(Controller::Memory)
            .ok_or_else(|| self.missing(Controller::Memory))?;
        match h.version {
            Version::V1 => v1::memory(&self.path, &h.dir, m),
            Version::V2 => v2::memory(&self.path, &h.dir, m),
        }
    }

    fn apply_cpu(&self, r: &LinuxResources) -> Result<()> {
        let Some(c) = r.cpu() else { return Ok(()) };
        let wants_cpu = c.shares().is_some_and(|v| v != 0)
            || c.quota().is_some_and(|v| v != 0)
            || c.period().is_some_and(|v| v != 0)
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_period().is_some_and(|v| v != 0)
            || c.realtime_runtime().is_some_and(|v| v != 0);
        if wants_cpu {
            let h = self
                .hierarchy_of(Controller::Cpu)
                .ok_or_else(|| self.missing(Controller::Cpu))?;
            match h.version {
                Version::V1 => v1::cpu(&h.dir, c)?,
                Version::V2 => v2::cpu(&self.path, &h.dir, c)?,
            }
        }
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let h = self
                .hierarchy_of(Controller::Cpuset)
                .ok_or_else(|| self.missing(Controller::Cpuset))?;
            // Same file names on v1 and v2.
            if let Some(cpus) = cpus {
                fs::write(&h.dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = mems {
                fs::write(&h.dir, "cpuset.mems", mems)?;
            }
        }
        Ok(())
    }

    fn apply_pids(&self, r: &LinuxResources) -> Result<()> {
        let Some(p) = r.pids() else { return Ok(()) };
        // As runc: 0 is "unset", negative is "no limit".
        if p.limit() == 0 {
            return Ok(());
        }
        let h = self
            .hierarchy_of(Controller::Pids)
            .ok_or_else(|| self.missing(Controller::Pids))?;
        let value = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        fs::write(&h.dir, "pids.max", &value)
    }

    fn apply_blkio(&self, r: &LinuxResources) -> Result<()> {
        let Some(b) = r.block_io() else {
            return Ok(());
        };
        let wanted = b.weight().is_some_and(|w| w != 0)
            || b.leaf_weight().is_some_and(|w| w != 0)
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()));
        if !wanted {
            return Ok(());
        }
        let h = self
            .hierarchy_of(Controller::Blkio)
            .ok_or_else(|| self.missing(Controller::Blkio))?;
        match h.version {
            Version::V1 => v1::blkio(&self.path, &h.dir, b),
            Version::V2 => v2::io(&self.path, &h.dir, b),
        }
    }

    fn apply_hugetlb(&self, r: &LinuxResources) -> Result<()> {
        let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) else {
            return Ok(());
        };
        let h = self
            .hierarchy_of(Controller::Hugetlb)
            .ok_or_else(|| self.missing(Controller::Hugetlb))?;
        for l in limits {
            let size = l.page_size();
            if size.is_empty() || size.contains('/') || size.contains('.') {
                return Err(Error::InvalidResources {
                    cgroup: self.path.clone(),
                    reason: format!("hugepage size {size:?} is not a size such as 2MB"),
                });
            }
            let (file, value) = match h.version {
                Version::V1 => (
                    format!("hugetlb.{size}.limit_in_bytes"),
                    if l.limit() < 0 {
                        "-1".to_string()
                    } else {
                        l.limit().to_string()
                    },
                ),
                Version::V2 => (
                    format!("hugetlb.{size}.max"),
                    if l.limit() < 0 {
                        "max".to_string()
                    } else {
                        l.limit().to_string()
                    },
                ),
            };
            fs::write(&h.dir, &file, &value)?;
        }
        Ok(())
    }

    fn apply_devices(&self, r: &LinuxResources, program: Option<OwnedFd>) -> Result<()> {
        if let Some(program) = program {
            // check_devices loads a program only when there is a cgroup2 hierarchy.
            let h = self
                .unified()
                .ok_or_else(|| self.missing(Controller::Devices))?;
            return devices_ebpf::attach_replacing(&h.dir, &program);
        }
        let Some(rules) = r.devices().as_ref().filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        match self.hierarchy_of(Controller::Devices) {
            Some(h) if h.version == Version::V1 => {
                for rule in rules {
                    let file = if rule.allow() {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    fs::write(&h.dir, file, &format_device_rule(rule))?;
                }
                Ok(())
            }
            // Rules that restrict nothing: an update lifts what an earlier program enforced.
            // A failure leaves the container stricter than asked, never looser: warn only.
            _ => {
                if let Some(h) = self.unified().filter(|h| h.dir.is_dir()) {
                    if let Err(e) = devices_ebpf::detach_all(&h.dir) {
                        tracing::warn!(cgroup = %self.path, error = %e, "could not detach an earlier device program");
                    }
                }
                Ok(())
            }
        }
    }

    /// net_cls and net_prio are cgroup v1 controllers; without their
    /// hierarchy (always so on cgroup v2) the settings are refused, as runc
    /// refuses them, rather than dropped.
    fn apply_network(&self, r: &LinuxResources) -> Result<()> {
        let Some(n) = r.network() else { return Ok(()) };
        let unmounted = |what: &str, controller: &str| Error::Unsupported {
            cgroup: self.path.clone(),
            what: format!("linux.resources.network.{what}"),
            why: format!("the host has no {controller} hierarchy (a cgroup v1 controller)"),
        };
        if let Some(class_id) = n.class_id() {
            let h = self
                .hierarchy_of(Controller::NetCls)
                .ok_or_else(|| unmounted("classID", "net_cls"))?;
            fs::write(&h.dir, "net_cls.classid", &class_id.to_string())?;
        }
        if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
            let h = self
                .hierarchy_of(Controller::NetPrio)
                .ok_or_else(|| unmounted("priorities", "net_prio"))?;
            for p in prios {
                fs::write(
                    &h.dir,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        Ok(())
    }

    fn apply_unified(&self, r: &LinuxResources) -> Result<()> {
        let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let Some(h) = self.unified() else {
            return Err(Error::Unsupported {
                cgroup: self.path.clone(),
                what: "linux.resources.unified".to_string(),
                why: "the host has no cgroup v2 hierarchy".to_string(),
            });
        };
        // Sorted so that errors and writes are deterministic.
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            v2::check_unified_key(&self.path, h, self.kind, key)?;
            fs::write(&h.dir, key, &map[key])?;
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: Pid) -> Result<()> {
        let value = pid.as_raw().to_string();
        for h in &self.hierarchies {
            match fs::write(&h.dir, "cgroup.procs", &value) {
                Ok(()) => {}
                // create could not make it (see membership_only) and said so.
                Err(Error::Write { source, .. })
                    if self.membership_only(h) && source.kind() == std::io::ErrorKind::NotFound => {
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A hierarchy berth joins only so that the process's cgroups are consistent
    /// (`name=systemd`, or the cgroup2 mount of a hybrid host when it holds no
    /// controller berth uses). It may be read-only (a container runtime inside a
    /// container), so failing to make a directory there is logged, not fatal.
    fn membership_only(&self, h: &Hierarchy) -> bool {
        h.controllers.is_empty() && (h.version == Version::V1 || self.kind == LayoutKind::Hybrid)
    }

    /// The hierarchy whose tree is read for the container's processes.
    fn membership(&self) -> Option<&Hierarchy> {
        let pick = |c| {
            self.hierarchies
                .iter()
                .find(|h| h.version == Version::V1 && h.controllers.contains(&c))
        };
        match self.kind {
            LayoutKind::V2 => self.unified(),
            _ => pick(Controller::Freezer)
                .or_else(|| pick(Controller::Pids))
                .or_else(|| pick(Controller::Memory))
                .or_else(|| self.hierarchies.first()),
        }
    }

    /// All processes in the cgroup and its sub-cgroups (for `ps` and `kill --all`).
    pub fn pids(&self) -> Result<Vec<Pid>> {
        let Some(h) = self.membership() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        fs::collect_procs(&h.dir, &mut out)?;
        Ok(out.into_iter().map(Pid::from_raw).collect())
    }

    fn freezer(&self) -> Option<&Hierarchy> {
        self.hierarchy_of(Controller::Freezer)
            .or_else(|| self.unified())
    }

    /// Freezes every process in the cgroup and waits (bounded) until the kernel says frozen.
    pub fn freeze(&self) -> Result<()> {
        let _span = tracing::debug_span!("cgroup.freeze", cgroup = %self.path).entered();
        match self.freezer() {
            Some(h) if h.version == Version::V1 => v1::freeze(&self.path, &h.dir),
            Some(h) => v2::freeze(&self.path, &h.dir),
            None => Err(self.missing(Controller::Freezer)),
        }
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer() {
            Some(h) if h.version == Version::V1 => fs::write(&h.dir, "freezer.state", "THAWED"),
            Some(h) => fs::write(&h.dir, "cgroup.freeze", "0"),
            None => Err(self.missing(Controller::Freezer)),
        }
    }

    /// Whether the cgroup is fully frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Some(h) if h.version == Version::V1 => {
                Ok(fs::read(&h.dir, "freezer.state")?.trim() == "FROZEN")
            }
            Some(h) => v2::is_frozen(&h.dir),
            None => Err(self.missing(Controller::Freezer)),
        }
    }

    /// Usage and limits, shaped like runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        let unified = self.unified();
        match self.hierarchy_of(Controller::Cpuacct) {
            Some(h) => v1::cpuacct_stats(&h.dir, &mut s.cpu)?,
            None => {
                if let Some(u) = unified {
                    v2::cpu_usage_stats(&u.dir, &mut s.cpu)?;
                }
            }
        }
        if let Some(h) = self.hierarchy_of(Controller::Cpu) {
            match h.version {
                Version::V1 => v1::cpu_throttling(&h.dir, &mut s.cpu)?,
                Version::V2 => v2::cpu_throttling(&h.dir, &mut s.cpu)?,
            }
        }
        if let Some(h) = self.hierarchy_of(Controller::Cpuset) {
            match h.version {
                Version::V1 => v1::cpuset_stats(&h.dir, &mut s.cpuset)?,
                Version::V2 => v2::cpuset_stats(&h.dir, &mut s.cpuset)?,
            }
        }
        if let Some(h) = self.hierarchy_of(Controller::Memory) {
            match h.version {
                Version::V1 => v1::memory_stats(&h.dir, &mut s.memory)?,
                Version::V2 => v2::memory_stats(&h.dir, &mut s.memory)?,
            }
        }
        if let Some(h) = self.hierarchy_of(Controller::Pids) {
            s.pids.current = fs::read_u64(&h.dir, "pids.current")?;
            s.pids.limit = fs::read_u64_or_max(&h.dir, "pids.max")?.unwrap_or(0);
        }
        if let Some(h) = self.hierarchy_of(Controller::Blkio) {
            match h.version {
                Version::V1 => v1::blkio_stats(&h.dir, &mut s.blkio)?,
                Version::V2 => v2::io_stats(&h.dir, &mut s.blkio)?,
            }
        }
        if let Some(h) = self.hierarchy_of(Controller::Hugetlb) {
            for size in stats::hugepage_sizes()? {
                let entry = match h.version {
                    Version::V1 => v1::hugetlb_stats(&h.dir, &size)?,
                    Version::V2 => v2::hugetlb_stats(&h.dir, &size)?,
                };
                if let Some(entry) = entry {
                    s.hugetlb.insert(size, entry);
                }
            }
        }
        Ok(s)
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let h = self
            .hierarchy_of(Controller::Memory)
            .ok_or_else(|| self.missing(Controller::Memory))?;
        let file = match h.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = fs::read(&h.dir, file)?;
        Ok(parse_flat_keyed(&text)
            .get("oom_kill")
            .copied()
            .unwrap_or(0))
    }

    /// Removes the container's directory (and sub-cgroups) in every hierarchy; tolerates ones already gone.
    pub fn destroy(&self) -> Result<()> {
        let _span = tracing::debug_span!("cgroup.destroy", cgroup = %self.path).entered();
        let mut errors = Vec::new();
        for h in &self.hierarchies {
            if let Err(e) = fs::remove_tree(&h.dir) {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Teardown {
                cgroup: self.path.clone(),
                errors,
            }),
        }
    }
}
