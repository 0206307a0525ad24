//! The container's root filesystem: mounts, /dev, pivot_root, masked and
//! read-only paths.
//!
//! # The order the process chain calls it in
//!
//! 0. [`validate`] in the runtime, before anything is created: a pure check of
//!    `root`, `mounts`, `linux.devices`, `linux.rootfsPropagation` and the
//!    masked/read-only paths, with errors that name the field.
//! 1. [`prepare`] in the container's init, inside its new mount namespace
//!    (and user namespace, already mapped, if any): root propagation, the
//!    rootfs made a mount point, `spec.mounts` in order, then `/dev`'s
//!    devices and symlinks when the spec mounts a tmpfs on `/dev`.
//! 2. [`bind_console`] when the container has a terminal.
//! 3. (the createContainer hooks run here, in the runtime)
//! 4. [`pivot`]: `pivot_root(2)` into the rootfs, or `MS_MOVE` + `chroot` with
//!    `--no-pivot`.
//! 5. (sysctls are written here)
//! 6. [`finish`]: root propagation again, read-only `/dev`, read-only and
//!    masked paths, `process.cwd` made if missing, read-only root.
//!
//! A container without a mount namespace takes another road through the
//! same steps (see [`prepare_in_host_namespace`]): its mounts are made in the
//! host's namespace on a bind of the rootfs, [`enter_chroot`] replaces
//! [`pivot`], and [`remove_host_mounts`] undoes them when it is deleted.
//!
//! # Why it is built this way
//!
//! Every destination is resolved inside the rootfs by the kernel
//! (`openat2(RESOLVE_IN_ROOT)`, see [`mod@secure_join`]) and mounted on through
//! `/proc/self/fd/N`, so no symlink in the image and no race against another
//! process can move a mount outside the container. The kernel's global mount
//! lock serialises all mounts on the host, so this module makes no mount it
//! can avoid: the rootfs is bind-mounted onto itself only when it is not a
//! mount point already, bind mounts are remounted only when an option asks for
//! it, and nothing walks a directory tree.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::Spec;

mod dev;
mod host;
mod idmap;
mod mountinfo;
mod mounts;
pub mod options;
mod paths;
mod pivot;
pub mod secure_join;
mod validate;

pub use idmap::IdmappedTrees;
pub use options::{parse_options, parse_propagation, ParsedOptions};
pub use secure_join::{secure_join, Root};

/// Errors of the rootfs module. Each names the field of `config.json` or the
/// path and operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A field of the spec is invalid (found by [`validate`] or at use).
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        /// The field, e.g. `mounts[3].destination`.
        field: String,
        /// Its value as written in the spec.
        value: String,
        /// What is wrong with it, as a sentence fragment.
        reason: String,
    },
    /// The spec asks for something berth does not implement yet.
    #[error("{field} {value:?}: {what} is not supported by berth yet")]
    Unsupported {
        /// The field, e.g. `mounts[2].options`.
        field: String,
        /// Its value.
        value: String,
        /// What is not supported.
        what: String,
    },
    /// A system call failed.
    #[error("{action}: {source}")]
    Sys {
        /// What was being done, naming the path and, where there is one, the
        /// spec field: `mounts[0]: mount proc on /proc`.
        action: String,
        /// The kernel's error.
        #[source]
        source: Errno,
    },
}

impl RootfsError {
    /// A failed syscall with what was being done.
    fn sys(action: impl Into<String>, source: Errno) -> Self {
        Self::Sys {
            action: action.into(),
            source,
        }
    }

    /// An invalid spec field.
    fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The kernel's error number, when this is a failed syscall.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Sys { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// The result type of this module.
pub type Result<T, E = RootfsError> = std::result::Result<T, E>;

/// One cgroup hierarchy of the container, as the cgroups module placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// The controller list as `/proc/self/cgroup` writes it: `"memory"`,
    /// `"cpu,cpuacct"`, `"name=systemd"`, or `""` for the cgroup2 (unified)
    /// hierarchy.
    pub controllers: String,
    /// The container's own cgroup directory on the host, e.g.
    /// `/sys/fs/cgroup/memory/berth/abc`. Bind-mounted when the container has
    /// no cgroup namespace; unused (but kept for messages) when it has one.
    pub host_dir: PathBuf,
}

/// How the container's root filesystem is set up, beyond what the spec says.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: move the rootfs onto `/` and `chroot` instead of
    /// `pivot_root` (for ramdisk roots, where `pivot_root` is impossible).
    pub no_pivot: bool,
    /// The init already runs in a user namespace: device nodes cannot be
    /// made (they are bind-mounted from the host instead), mounts inherited
    /// from the host are locked, and sysfs needs a network namespace.
    pub in_user_namespace: bool,
    /// The container has a terminal and the runtime will call
    /// [`bind_console`]: `prepare` makes `/dev/console` in the /dev it
    /// populates, so the bind works even once /dev is read-only.
    pub console: bool,
    /// The container's cgroup hierarchies, for a spec mount of type
    /// `cgroup`. One entry with controllers `""` means a pure cgroup v2
    /// host; anything else is a v1 or hybrid host (one entry per hierarchy).
    pub cgroup_paths: Vec<CgroupHierarchy>,
    /// The bundle directory: relative bind-mount sources are taken from
    /// here, as runc (which runs in the bundle) does.
    pub bundle: PathBuf,
    /// The SELinux label of the container's fresh filesystems
    /// (`linux.mountLabel`, once [`crate::lsm::mount_label`] accepted it for
    /// this host): a `context=` option on each.
    pub mount_label: Option<String>,
    /// The ID-mapped trees [`prepare_idmapped`] made, moved into place
    /// instead of a bind for the mounts that ask for an idmapping.
    pub idmapped: IdmappedTrees,
}

/// Checks the spec's filesystem fields before anything is created. `bundle`
/// is the bundle directory (a relative `root.path` is taken from there).
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.validate").entered();
    validate::validate(spec, bundle)
}

/// Makes a detached, ID-mapped copy of every bind source whose mount asks
/// for an idmapping (`idmap`, `ridmap`, `uidMappings`). Call it in the
/// runtime, as root on the host, before the init is cloned; the init finds
/// the trees in [`RootfsOptions::idmapped`].
pub fn prepare_idmapped(spec: &Spec, bundle: &Path) -> Result<IdmappedTrees> {
    let _span = tracing::debug_span!("rootfs.prepare_idmapped").entered();
    idmap::prepare(spec, bundle)
}

/// Sets the rootfs up inside the container's new mount namespace: root
/// propagation, the rootfs as a mount point, every `spec.mounts` entry in
/// order, and `/dev` when the spec mounts a tmpfs there. `rootfs` is the
/// absolute, canonical host path of `root.path`.
pub fn prepare(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.prepare", rootfs = %rootfs.display()).entered();
    mounts::prepare(spec, rootfs, opts)
}

/// Bind-mounts the terminal's slave (`slave`, e.g. `/dev/pts/3` or
/// `/proc/self/fd/N`) onto `/dev/console` in `root`, creating it as an empty
/// file. Call it after [`prepare`] with the rootfs path, or after [`pivot`]
/// with `/`.
pub fn bind_console(root: &Path, slave: &Path) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.bind_console", slave = %slave.display()).entered();
    dev::bind_console(root, slave)
}

/// Makes the rootfs the process's `/`: `pivot_root(2)` and a lazy unmount of
/// the old root, or with `no_pivot` an `MS_MOVE` onto `/` and `chroot`.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.pivot", no_pivot).entered();
    pivot::pivot(rootfs, no_pivot)
}

/// Finishes the root after [`pivot`] and the sysctls: root propagation,
/// read-only `/dev` if asked, `linux.readonlyPaths`, `linux.maskedPaths`,
/// `process.cwd` created if missing, and a read-only root when
/// `root.readonly` is true.
pub fn finish(spec: &Spec) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.finish").entered();
    paths::finish(spec)
}

/// The ids of the mounts at the rootfs or below it, read by the runtime
/// before it creates a container without a mount namespace: the mounts
/// [`remove_host_mounts`] must leave in place.
pub fn mounts_at_or_below(rootfs: &Path) -> Result<Vec<u64>> {
    host::mounts_at_or_below(rootfs)
}

/// [`prepare`] for a container without a mount namespace, in the host's:
/// the rootfs is bind-mounted onto itself and that bind made a recursive
/// slave (the host's propagation is not touched), then every `spec.mounts`
/// entry and `/dev` are made on it as usual.
pub fn prepare_in_host_namespace(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<()> {
    let _span =
        tracing::debug_span!("rootfs.prepare_in_host_namespace", rootfs = %rootfs.display())
            .entered();
    host::prepare(spec, rootfs, opts)
}

/// [`pivot`] for a container without a mount namespace: `chroot(2)` into the
/// rootfs, since `pivot_root` or a move onto `/` would change the host's
/// root.
pub fn enter_chroot(rootfs: &Path) -> Result<()> {
    let _span = tracing::debug_span!("rootfs.enter_chroot").entered();
    host::enter(rootfs)
}

/// Detaches, deepest first, every mount at the rootfs or below it in this
/// (the host's) mount namespace but those `kept` (from
/// [`mounts_at_or_below`]): what a container without a mount namespace
/// mounted. Call it once the container's processes are gone.
pub fn remove_host_mounts(rootfs: &Path, kept: &[u64]) -> Result<()> {
    let _span =
        tracing::debug_span!("rootfs.remove_host_mounts", rootfs = %rootfs.display()).entered();
    host::unmount(rootfs, kept)
}
