//! `create`: everything but the user's program. Validates the config, claims
//! the container's directory, makes its cgroup, clones its init into its
//! namespaces and waits until the init reports that it is ready (or why it is
//! not). On any failure everything made so far is undone.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use tracing::{debug, info_span};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::hooks::{self, HookPhase};
use crate::namespaces::Plan;
use crate::process::{self, init::InitContext};
use crate::rootfs::CgroupHierarchy;
use crate::state::{self, Record, Root, Status};
use crate::sync::Message;
use crate::{capabilities, console, identity, rootfs, spec};

/// What `create` is asked to do.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// The container's id.
    pub id: String,
    /// The bundle directory (holding config.json).
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master when process.terminal is true.
    pub console_socket: Option<PathBuf>,
    /// Instead of `console_socket`: an already connected socket for the pty
    /// master (`run` in the foreground keeps the other end and proxies the
    /// terminal itself).
    pub console_stream: Option<std::sync::Arc<OwnedFd>>,
    /// How many descriptors after stdio the program inherits.
    pub preserve_fds: u32,
    /// MS_MOVE + chroot instead of pivot_root (for a rootfs on a ramfs).
    pub no_pivot: bool,
    /// Keep the runtime's session keyring instead of a new one.
    pub no_new_keyring: bool,
    /// The container's stdin, stdout and stderr, instead of this process's
    /// (a monitor passes pipes it owns). Ignored with a terminal.
    pub stdio: Option<std::sync::Arc<crate::process::finalize::Stdio>>,
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Undo<'a> {
    root: &'a Root,
    id: String,
    cgroup: Option<Cgroup>,
    init: Option<Pid>,
    /// A container without a mount namespace: its rootfs and the mounts
    /// there to keep; the others are its own and removed.
    host_mounts: Option<(PathBuf, Vec<u64>)>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        // After the init is gone (it made them, and could still add some).
        if let Some((rootfs, kept)) = &self.host_mounts {
            if let Err(e) = rootfs::remove_host_mounts(rootfs, kept) {
                tracing::warn!("container {}: {e}", self.id);
            }
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!("container {}: removing its cgroup: {e}", self.id);
            }
        }
        if let Err(e) = self.root.remove(&self.id) {
            tracing::warn!("container {}: {e}", self.id);
        }
    }
}

/// Creates a container; returns its record with the init's pid.
pub fn create(root: &Root, opts: &CreateOptions) -> Result<Record> {
    let _span = info_span!("create", id = %opts.id).entered();
    let t0 = std::time::Instant::now();
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| Error::io("open bundle", &opts.bundle, e))?;
    let config = spec::load(&bundle)?;
    spec::validate(&config)?;
    let lsm_host = crate::lsm::HostModules::detect();
    let exec_labels = crate::lsm::exec_labels(
        config
            .process()
            .as_ref()
            .ok_or_else(|| Error::Invalid("process: missing".into()))?,
        lsm_host,
    )?;
    let mount_label = crate::lsm::mount_label(&config, lsm_host)?;
    let rootfs = spec::rootfs_path(&config, &bundle)?;
    rootfs::validate(&config, &bundle)?;
    let process = config
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process: missing".into()))?;
    if let Some(caps) = process.capabilities() {
        capabilities::ProcessCaps::resolve(Some(caps))?;
    }
    if let Some(rlimits) = process.rlimits() {
        identity::validate_rlimits(rlimits)?;
    }
    let seccomp = config.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp_filter = match seccomp {
        Some(section) => {
            crate::seccomp::validate(section)?;
            Some(crate::seccomp::compile_cached(section, root.path())?)
        }
        None => None,
    };
    let terminal = process.terminal() == Some(true);
    if terminal && opts.console_socket.is_none() && opts.console_stream.is_none() {
        return Err(Error::Invalid(
            "process.terminal: true needs --console-socket (or use `run` in a terminal)".into(),
        ));
    }
    let linux = config
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Invalid("linux: missing".into()))?;
    let plan = Plan::from_config(linux.namespaces().as_deref().unwrap_or_default());
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let rootless = crate::rootless::is_rootless();
    let cgroup = if rootless {
        crate::rootless::check(&config)?;
        crate::rootless::cgroup(
            cgroups_path.as_deref(),
            &opts.id,
            linux.resources().as_ref(),
        )?
    } else {
        Cgroup::new(cgroups_path.as_deref(), &opts.id)?
    };
    debug!(
        elapsed_us = t0.elapsed().as_micros() as u64,
        "config validated"
    );

    if plan.shares_host_mounts() {
        refuse_shared_rootfs(root, &rootfs)?;
    }
    let dir = root.claim(&opts.id)?;
    let mut undo = Undo {
        root,
        id: opts.id.clone(),
        cgroup: None,
        init: None,
        host_mounts: None,
        armed: true,
    };
    // Rootless without a delegated cgroup: no hierarchy, nothing to make
    // (rootless::cgroup warned, and refused limits).
    if !cgroup.hierarchies().is_empty() {
        cgroup.create()?;
        undo.cgroup = Some(cgroup.clone());
        let mut resources = with_default_devices(linux);
        if rootless {
            // Only CAP_SYS_ADMIN on the host may write device rules; in a
            // user namespace no device node can be made, and the host's
            // are reached only through bind mounts the user may open.
            resources.set_devices(None);
        }
        cgroup.apply(&resources)?;
    }
    debug!(elapsed_us = t0.elapsed().as_micros() as u64, "cgroup ready");

    // Rootless, the caller can give the fifos to no one else: when the
    // container's root is another id (a subordinate one), they are opened up
    // instead (0666: the init opens them read-write); the container's
    // runtime root (made 0700, the caller's) keeps everyone else from them.
    let (root_ids, fifo_mode) = match container_root_on_host(linux) {
        Some(_) if rootless && !crate::rootless::root_is_caller(linux) => (None, 0o666),
        ids => (ids, 0o600),
    };
    let fifo_fd = make_fifo(&dir.join(state::EXEC_FIFO), root_ids, fifo_mode)?;
    let done_fd = make_fifo(&dir.join(state::EXEC_DONE_FIFO), root_ids, fifo_mode)?;
    let console_socket: Option<OwnedFd> =
        match (&opts.console_socket, &opts.console_stream, terminal) {
            (Some(path), _, true) => Some(console::connect_console_socket(path)?),
            (None, Some(stream), true) => Some(
                stream
                    .try_clone()
                    .map_err(|e| Error::io("dup the console stream", "console", e))?,
            ),
            _ => None,
        };

    // "" for root, as runc; rootless, the user's name (or uid), as runc.
    let owner = if rootless {
        let uid = nix::unistd::geteuid();
        nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name)
    } else {
        String::new()
    };
    let mut record = Record {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner,
        config: config.clone(),
        cgroup: cgroup.clone(),
        host_mounts: None,
    };
    if plan.shares_host_mounts() {
        // Before anything is mounted: what is there now is not the
        // container's, and `delete` must leave it.
        let kept = rootfs::mounts_at_or_below(&rootfs)?;
        undo.host_mounts = Some((rootfs.clone(), kept.clone()));
        record.host_mounts = Some(state::HostMounts { kept });
    }
    // Recorded at once (status "creating"), so a runtime killed half-way
    // leaves a container that `delete --force` can clean up.
    root.save(&record)?;
    let state_json =
        |r: &Record, status: Status| serde_json::to_vec(&r.oci_state(status)).unwrap_or_default();

    // Before the clone: the kernel idmaps a host filesystem only for a
    // caller that is root on the host, which the init in a user namespace
    // is not.
    let idmapped = rootfs::prepare_idmapped(&config, &bundle)?;
    process::become_subreaper()?;
    let time_offsets: Vec<(String, i64, u32)> = linux
        .time_offsets()
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|(clock, o)| {
                    (
                        clock.clone(),
                        o.secs().unwrap_or(0),
                        o.nanosecs().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = InitContext {
        id: &opts.id,
        spec: &config,
        rootfs: &rootfs,
        plan: &plan,
        fifo: fifo_fd,
        exec_done: done_fd,
        console_socket,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        stdio: opts.stdio.as_deref(),
        cgroup: &cgroup,
        cgroup_paths: mount_hierarchies(&cgroup),
        bundle: &bundle,
        seccomp: seccomp_filter.as_ref(),
        idmapped,
        exec_labels,
        mount_label,
    };
    let (pid, channel) = process::spawn(&plan, &time_offsets, |ch| process::init::run(ctx, ch))?;
    undo.init = Some(pid);
    debug!(
        pid = pid.as_raw(),
        elapsed_us = t0.elapsed().as_micros() as u64,
        "init cloned"
    );
    if plan.parent_places_init() {
        cgroup.add_process(pid)?;
        if plan.new_user && rootless {
            crate::rootless::write_id_maps(
                pid,
                linux.uid_mappings().as_deref().unwrap_or_default(),
                linux.gid_mappings().as_deref().unwrap_or_default(),
            )?;
        } else if plan.new_user {
            process::write_id_maps(
                pid,
                linux.uid_mappings().as_deref().unwrap_or_default(),
                linux.gid_mappings().as_deref().unwrap_or_default(),
            )?;
        }
        channel.send(&Message::Mapped)?;
    }
    record.pid = pid.as_raw();
    record.pid_start_time = state::process_start_time(pid).unwrap_or(0);

    loop {
        let (message, fd) = channel.recv_with_fd()?;
        match message {
            Some(Message::RunHooks) => {
                let json = state_json(&record, Status::Creating);
                if let Some(h) = config.hooks() {
                    if let Some(list) = h.prestart() {
                        hooks::run_hooks(HookPhase::Prestart, list, &json)?;
                    }
                    if let Some(list) = h.create_runtime() {
                        hooks::run_hooks(HookPhase::CreateRuntime, list, &json)?;
                    }
                }
                let state = String::from_utf8_lossy(&json).into_owned();
                channel.send(&Message::HooksDone(state))?;
            }
            Some(Message::SeccompListener) => {
                // seccomp: hand the notify listener to the agent, with the
                // state as runc sends it (status "creating").
                let (Some(seccomp), Some(listener)) = (seccomp, fd) else {
                    return Err(Error::Init(
                        "a seccomp listener message came without its descriptor".into(),
                    ));
                };
                let state = record.oci_state(Status::Creating);
                crate::seccomp::send_listener(seccomp, listener, pid.as_raw(), &state)?;
            }
            Some(Message::Ready) => break,
            Some(Message::Failed(cause)) => return Err(Error::Init(cause)),
            Some(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            None => {
                return Err(Error::Init(
                    "the init process exited before it was ready".into(),
                ))
            }
        }
    }
    debug!(elapsed_us = t0.elapsed().as_micros() as u64, "init ready");
    root.save(&record)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    undo.armed = false;
    Ok(record)
}

/// Refuses a second container without a mount namespace on a rootfs that
/// one under this root already mounts on in the host's namespace: the
/// mounts of the two could not be told apart, and deleting either would
/// unmount both.
fn refuse_shared_rootfs(root: &Root, rootfs: &Path) -> Result<()> {
    for id in root.ids()? {
        // A record being written or removed is not one to compare with.
        let Ok(other) = root.load(&id) else { continue };
        if other.host_mounts.is_some() && other.rootfs == rootfs {
            return Err(Error::Invalid(format!(
                "root.path {:?}: container {id} already uses this rootfs without a mount \
                 namespace; a second one without a mount namespace cannot share it",
                rootfs.display().to_string()
            )));
        }
    }
    Ok(())
}

/// Makes a fifo in the container's directory and opens it `O_PATH` for the
/// init, which reopens it through /proc (it may have no right to walk the
/// runtime root). In a new user namespace the init runs as a host uid that
/// must be able to open it: the fifo is given to that uid, as runc does.
fn make_fifo(path: &Path, owner: Option<(u32, u32)>, mode: u32) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::sys(format!("mkfifo {}", path.display()), e))?;
    if mode != 0o600 {
        // Not through mkfifo's mode, which the umask would narrow.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| Error::sys(format!("chmod {}", path.display()), e))?;
    }
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(uid.into()), Some(gid.into()))
            .map_err(|e| Error::sys(format!("chown {}", path.display()), e))?;
    }
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", path.display()), e))
}

/// The host uid and gid that are root in the container's new user namespace.
fn container_root_on_host(linux: &oci_spec::runtime::Linux) -> Option<(u32, u32)> {
    let host_of = |maps: &[oci_spec::runtime::LinuxIdMapping]| {
        maps.iter()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    let uid = host_of(linux.uid_mappings().as_deref()?)?;
    let gid = host_of(linux.gid_mappings().as_deref()?)?;
    Some((uid, gid))
}

/// The devices every container may use whatever its rules say, as runc
/// grants them (runc's `AllowedDevices`): mknod of any device (the device
/// nodes the init makes in /dev), and the standard character devices. Callers
/// such as dockerd and podman rely on this: their configs deny all devices and
/// allow only the extra ones.
const DEFAULT_DEVICE_RULES: &[(&str, Option<i64>, Option<i64>, &str)] = &[
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", Some(1), Some(3), "rwm"),    // /dev/null
    ("c", Some(1), Some(8), "rwm"),    // /dev/random
    ("c", Some(1), Some(7), "rwm"),    // /dev/full
    ("c", Some(5), Some(0), "rwm"),    // /dev/tty
    ("c", Some(1), Some(5), "rwm"),    // /dev/zero
    ("c", Some(1), Some(9), "rwm"),    // /dev/urandom
    ("c", Some(136), None, "rwm"),     // /dev/pts/*
    ("c", Some(5), Some(2), "rwm"),    // /dev/ptmx
    ("c", Some(10), Some(200), "rwm"), // /dev/net/tun
];

/// The container's cgroup resources with its device rules as runc applies
/// them: every device denied first, then the config's own rules, then the
/// default devices and an allow rule for each device of `linux.devices`. So
/// a config with no device rules (or none at all, as `berth-runtime spec`
/// wrote before) gets the default set and nothing else: without the leading
/// deny-all a new cgroup inherits its parent's "a *:* rwm", and with
/// CAP_MKNOD the container could make and open a node for any host disk.
/// A config that means to allow everything (docker's `--privileged`) says so
/// with its own allow-all rule, which comes after the deny-all.
fn with_default_devices(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut resources = linux.resources().clone().unwrap_or_else(|| {
        let mut r = oci_spec::runtime::LinuxResources::default();
        r.set_devices(None);
        r
    });
    let mut rules = vec![spec::deny_every_device()];
    rules.extend(resources.devices().clone().unwrap_or_default());
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    for (typ, major, minor, access) in DEFAULT_DEVICE_RULES {
        let t = if *typ == "b" {
            LinuxDeviceType::B
        } else {
            LinuxDeviceType::C
        };
        rules.push(rule(t, *major, *minor, access));
    }
    for dev in linux.devices().as_deref().unwrap_or_default() {
        // The devices cgroup governs character and block devices only: a fifo
        // needs no rule (and the kernel takes none), and an unbuffered
        // character device is a `c` to it.
        let typ = match dev.typ() {
            LinuxDeviceType::P => continue,
            LinuxDeviceType::U => LinuxDeviceType::C,
            t => t,
        };
        rules.push(rule(typ, Some(dev.major()), Some(dev.minor()), "rwm"));
    }
    resources.set_devices(Some(rules));
    resources
}

/// The container's cgroup directories as the rootfs code mounts them: named
/// as the hierarchy's mount point is (`cpu,cpuacct`, `name=systemd`, `""`
/// for cgroup2).
fn mount_hierarchies(cgroup: &Cgroup) -> Vec<CgroupHierarchy> {
    cgroup
        .hierarchies()
        .iter()
        .map(|h| CgroupHierarchy {
            controllers: match (&h.version, &h.name) {
                (crate::cgroups::Version::V2, _) => String::new(),
                (_, Some(name)) => format!("name={name}"),
                _ => h
                    .mount_point
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| h.label()),
            },
            host_dir: h.dir.clone(),
        })
        .collect()
}

/// Writes a pid file atomically (runc's callers read it as soon as it exists).
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.as_raw().to_string()).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename pid file to", path, e))
}
