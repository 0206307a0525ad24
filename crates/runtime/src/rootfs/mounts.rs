//! `prepare`: root propagation, the rootfs as a mount point, and the spec's
//! mounts, each on a descriptor resolved inside the rootfs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{stat, umask, Mode, SFlag};
use nix::sys::statfs::{fstatfs, statfs, PROC_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::symlinkat;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::options::{attr, parse_options, parse_propagation, ParsedOptions, MS_NOSYMFOLLOW};
use super::secure_join::{
    clean_path, display, is_plain_name, mkdir_and_open, proc_fd_path, NodeKind, Root,
};
use super::{dev, mountinfo, Result, RootfsError, RootfsOptions};

/// Files in `/proc` that may be mounted over: the ones lxcfs emulates, plus
/// `ns_last_pid` for CRIU. Anything else under `/proc` is refused, because a
/// mount over e.g. `/proc/self/attr` disables the LSM that was to confine the
/// container (CVE-2019-16884); runc keeps the same list.
const PROC_MOUNTS_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Restores the process's umask when dropped. Device nodes and mount points
/// are made with exact modes (a 0666 `/dev/null`), which the caller's umask
/// would otherwise narrow; one `umask` call each way is cheaper than a
/// `chmod` per node.
pub(super) struct UmaskGuard(Mode);

impl UmaskGuard {
    pub(super) fn zero() -> Self {
        Self(umask(Mode::empty()))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// What every mount of one container shares.
pub(super) struct Context<'a> {
    pub root: Root,
    pub opts: &'a RootfsOptions,
    has_netns: bool,
    has_cgroupns: bool,
}

/// The `mount(2)` target naming exactly the inode `fd` holds.
fn target(fd: &impl std::os::fd::AsRawFd) -> String {
    proc_fd_path(fd)
}

pub(super) fn prepare(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<()> {
    let _umask = UmaskGuard::zero();
    let linux = spec.linux().as_ref();

    // Without this, every mount below would propagate back to the host's
    // shared mounts. runc defaults to MS_SLAVE|MS_REC (not private) so that
    // host mounts made later, e.g. a USB stick under a bind-mounted /media,
    // still reach the container.
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(v) => parse_propagation(v).ok_or_else(|| {
            RootfsError::invalid(
                "linux.rootfsPropagation",
                v,
                "must be one of shared, slave, private, unbindable or their r* forms",
            )
        })?,
    };
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>).map_err(|e| {
        RootfsError::sys(
            "set the propagation of / in the container's mount namespace",
            e,
        )
    })?;
    let shared = propagation.contains(MsFlags::MS_SHARED);
    if shared {
        make_parent_private(rootfs)?;
    }
    make_mount_point(rootfs, opts, shared)?;
    mount_all(spec, rootfs, opts)
}

/// Every `spec.mounts` entry in order, then `/dev`'s devices when the spec
/// mounts a fresh filesystem there. The rootfs is ready (a mount point, its
/// propagation set) and the umask is zero.
pub(super) fn mount_all(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<()> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]);
    let ctx = Context {
        root: Root::open(rootfs)
            .map_err(|e| RootfsError::sys(format!("open the rootfs {}", display(rootfs)), e))?,
        opts,
        has_netns: namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network),
        has_cgroupns: namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup),
    };

    let mut dev_is_fs = false;
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let parsed = parse_options(m.options().as_deref().unwrap_or(&[]));
        let dest = clean_path(m.destination());
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = parsed.is_bind() || typ == "bind";
        check_supported(i, &parsed)?;
        check_proc_destination(i, &dest, typ, is_bind, m.source().as_deref())?;
        let tree = opts.idmapped.get(i);
        if super::idmap::requested(m, &parsed) && tree.is_none() {
            return Err(RootfsError::invalid(
                format!("mounts[{i}].options"),
                "idmap",
                "the runtime made no ID-mapped tree for this mount (rootfs::prepare_idmapped was not called)",
            ));
        }
        if is_bind {
            let source = bind_source(i, m, opts)?;
            bind_mount(
                &ctx,
                &format!("mounts[{i}]"),
                &source,
                &dest,
                &parsed,
                parsed.is_recursive_bind(),
                tree,
            )?;
        } else if typ == "cgroup" {
            cgroup_mount(&ctx, i, &dest, &parsed)?;
        } else if typ == "sysfs" && opts.in_user_namespace && !ctx.has_netns {
            sysfs_fallback(&ctx, i, &dest, &parsed)?;
        } else {
            fs_mount(&ctx, i, m, typ, &dest, &parsed)?;
        }
        if parsed.attr_set != 0 || parsed.attr_clear != 0 {
            recursive_attrs(&ctx, &format!("mounts[{i}]"), &dest, &parsed)?;
        }
        if dest == Path::new("dev") {
            dev_is_fs = !is_bind;
        }
    }
    // runc's rule: a /dev the spec bind-mounts from the host (privileged
    // containers) is used as it is; only a fresh filesystem is populated.
    if dev_is_fs {
        dev::populate(&ctx, spec)?;
    }
    Ok(())
}

/// pivot_root(2) needs the new root to be a mount point. A rootfs that is one
/// already (berth's overlay mounts) needs no self-bind, which saves a mount
/// under the global lock. Except: in a user namespace the mounts copied from
/// the host are locked, and pivot_root refuses a locked new root; and with a
/// shared root propagation runc's order (fresh bind after making the parent
/// private) is kept.
fn make_mount_point(rootfs: &Path, opts: &RootfsOptions, shared: bool) -> Result<()> {
    if !opts.in_user_namespace && !shared && is_mount_root(rootfs) {
        return Ok(());
    }
    bind_onto_itself(rootfs, "")
}

/// Bind-mounts the rootfs onto itself, recursively; `context` ends the error's operation (which
/// mount namespace, for instance).
pub(super) fn bind_onto_itself(rootfs: &Path, context: &str) -> Result<()> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        RootfsError::sys(
            format!(
                "bind-mount the rootfs {} onto itself{context}",
                display(rootfs)
            ),
            e,
        )
    })
}

/// `statx`'s `STATX_ATTR_MOUNT_ROOT` (Linux 5.8): exact, unlike comparing
/// `st_dev` with the parent's, which btrfs subvolumes fool. An older kernel
/// answers "don't know", and the caller binds.
fn is_mount_root(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    match statx(CWD, path, AtFlags::empty(), StatxFlags::BASIC_STATS) {
        Ok(st) => {
            let known = st.stx_attributes_mask;
            let attrs = st.stx_attributes;
            known.contains(StatxAttributes::MOUNT_ROOT)
                && attrs.contains(StatxAttributes::MOUNT_ROOT)
        }
        Err(_) => false,
    }
}

/// pivot_root(2) fails with EINVAL when the new root's parent mount is
/// shared, which it is after a shared `rootfsPropagation`: make just that
/// parent private.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let table = mountinfo::read().map_err(|e| {
        RootfsError::sys(
            "read /proc/self/mountinfo to find the rootfs's parent mount",
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    let parent = table
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(p) = parent.filter(|p| p.is_shared()) {
        mount(
            None::<&str>,
            &p.mount_point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!(
                    "make {}, the rootfs's parent mount, private",
                    display(&p.mount_point)
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// Refuses what the spec may ask for and berth does not do yet, before any
/// mount is made for it. (Idmapping is checked by `idmap::validate`.)
pub(super) fn check_supported(i: usize, parsed: &ParsedOptions) -> Result<()> {
    let unsupported = |value: String, what: &str| RootfsError::Unsupported {
        field: format!("mounts[{i}].options"),
        value,
        what: what.to_owned(),
    };
    if parsed.tmpcopyup {
        return Err(unsupported(
            "tmpcopyup".into(),
            "runc's tmpcopyup extension",
        ));
    }
    Ok(())
}

/// The lexical half of runc's check against mounts in `/proc`
/// (CVE-2019-16884): only a procfs on `/proc` itself, only the allowed files
/// below it. The other half, in [`check_resolved_not_in_proc`], catches a
/// destination that reaches `/proc` through a symlink.
pub(super) fn check_proc_destination(
    i: usize,
    dest: &Path,
    typ: &str,
    is_bind: bool,
    source: Option<&Path>,
) -> Result<()> {
    let value = || format!("/{}", display(dest));
    if dest == Path::new("proc") {
        let source_is_proc = is_bind
            && source
                .and_then(|s| statfs(s).ok())
                .is_some_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
        if typ == "proc" || source_is_proc {
            return Ok(());
        }
        return Err(RootfsError::invalid(
            format!("mounts[{i}].destination"),
            value(),
            "only a proc filesystem may be mounted on /proc",
        ));
    }
    if dest.starts_with("proc") && !PROC_MOUNTS_ALLOWED.iter().any(|a| dest == Path::new(a)) {
        return Err(RootfsError::invalid(
            format!("mounts[{i}].destination"),
            value(),
            "is inside /proc, where only the files lxcfs emulates may be mounted over",
        ));
    }
    Ok(())
}

/// A destination that resolved onto procfs through a symlink gets the same
/// check as one written under `/proc` (runc does this after its secure join).
/// One `fstatfs`, and a `readlink` only when the target is on procfs.
fn check_resolved_not_in_proc(
    ctx: &Context<'_>,
    field: &str,
    fd: &OwnedFd,
    dest: &Path,
) -> Result<()> {
    let on_proc = fstatfs(fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
    if !on_proc {
        return Ok(());
    }
    let real = nix::fcntl::readlink(Path::new(&proc_fd_path(fd))).map(PathBuf::from);
    let inside = real
        .as_ref()
        .ok()
        .and_then(|r| r.strip_prefix(ctx.root.path()).ok().map(Path::to_path_buf));
    match inside {
        Some(rel) if PROC_MOUNTS_ALLOWED.iter().any(|a| rel == Path::new(a)) => Ok(()),
        _ => Err(RootfsError::invalid(
            format!("{field}.destination"),
            format!("/{}", display(dest)),
            "resolves into /proc, where only the files lxcfs emulates may be mounted over",
        )),
    }
}

/// A bind mount's source on the host: relative ones are taken from the
/// bundle, as runc (which runs in the bundle directory) does.
fn bind_source(i: usize, m: &Mount, opts: &RootfsOptions) -> Result<PathBuf> {
    let source = m.source().as_deref().ok_or_else(|| {
        RootfsError::invalid(
            format!("mounts[{i}].source"),
            "",
            "a bind mount needs a source",
        )
    })?;
    Ok(if source.is_absolute() {
        source.to_path_buf()
    } else {
        opts.bundle.join(source)
    })
}

/// Opens (creating if missing) the mount point for a bind of `source`: a
/// directory for a directory, an empty file for anything else. The source
/// is only looked at when the mount point is missing.
fn open_bind_target(ctx: &Context<'_>, field: &str, source: &Path, dest: &Path) -> Result<OwnedFd> {
    match ctx.root.open_beneath(dest, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(|e| open_error(field, dest, e)),
    }
    let st = stat(source).map_err(|e| {
        RootfsError::sys(
            format!("{field}: look at the bind source {}", display(source)),
            e,
        )
    })?;
    let kind = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        NodeKind::Directory
    } else {
        NodeKind::File
    };
    ctx.root
        .open_or_create(dest, kind)
        .map_err(|e| open_error(field, dest, e))
}

fn open_error(field: &str, dest: &Path, e: Errno) -> RootfsError {
    RootfsError::sys(
        format!(
            "{field}: open or create the mount point /{} inside the rootfs",
            display(dest)
        ),
        e,
    )
}

/// Re-resolves a destination after something was mounted on it: the old
/// descriptor still points at the directory underneath, and a remount or a
/// propagation change must name the new mount.
fn reopen(ctx: &Context<'_>, field: &str, dest: &Path) -> Result<OwnedFd> {
    ctx.root.open_beneath(dest, OFlag::O_PATH).map_err(|e| {
        RootfsError::sys(
            format!("{field}: reopen /{} after mounting it", display(dest)),
            e,
        )
    })
}

/// A bind (or, with `recursive`, rbind) of `source` onto `dest`, then the
/// remount its flags need and its propagation changes. With `tree` (an
/// ID-mapped copy of `source` the runtime made) that tree is moved onto
/// `dest` instead of a fresh bind.
fn bind_mount(
    ctx: &Context<'_>,
    field: &str,
    source: &Path,
    dest: &Path,
    parsed: &ParsedOptions,
    recursive: bool,
    tree: Option<&OwnedFd>,
) -> Result<()> {
    // Filesystem data is ignored on a bind (see rootfs::validate); a bare
    // unknown word is refused.
    if let Some(unknown) = parsed.data_options.iter().find(|o| !o.contains('=')) {
        return Err(RootfsError::invalid(
            format!("{field}.options"),
            unknown.as_str(),
            "is not a mount option, and a bind mount takes no filesystem data",
        ));
    }
    let fd = open_bind_target(ctx, field, source, dest)?;
    check_resolved_not_in_proc(ctx, field, &fd, dest)?;
    if let Some(tree) = tree {
        use rustix::mount::{move_mount, MoveMountFlags};
        move_mount(
            tree.as_fd(),
            "",
            fd.as_fd(),
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!(
                    "{field}: move the ID-mapped copy of {} onto /{}",
                    display(source),
                    display(dest)
                ),
                Errno::from_raw(e.raw_os_error()),
            )
        })?;
        return finish_bind(ctx, field, source, dest, parsed);
    }
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source),
        target(&fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| {
        RootfsError::sys(
            format!(
                "{field}: bind-mount {} on /{}",
                display(source),
                display(dest)
            ),
            e,
        )
    })?;
    finish_bind(ctx, field, source, dest, parsed)
}

/// What a new bind on `dest` needs after it is attached: the remount its
/// flags ask for and its propagation changes.
fn finish_bind(
    ctx: &Context<'_>,
    field: &str,
    source: &Path,
    dest: &Path,
    parsed: &ParsedOptions,
) -> Result<()> {
    // MS_BIND ignores every other flag: ro, nosuid and the like take a
    // second call, made only when an option asks for one.
    let needs_remount = !parsed.remount_flags().is_empty() || !parsed.clear_flags.is_empty();
    if !needs_remount && parsed.propagation.is_empty() {
        return Ok(());
    }
    let mounted = reopen(ctx, field, dest)?;
    if needs_remount {
        remount_bind(field, &mounted, source, dest, parsed)?;
    }
    apply_propagation(field, &mounted, dest, &parsed.propagation)
}

/// The atime modes, of which a mount has exactly one.
const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// The per-mount flags `statvfs` reports, as `MS_*` flags.
pub(super) fn mount_flags_of(st_flags: FsFlags) -> MsFlags {
    let pairs = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| st_flags.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms)
}

/// The flags a bind's remount should pass: the mount's `current` flags
/// (what the bind inherited from its source) with the options' flags set
/// and their cleared flags removed.
///
/// `MS_BIND|MS_REMOUNT` replaces all per-mount flags, so passing only the
/// requested ones would silently drop what the source had: `ro` on a bind
/// of a nosuid,nodev source would make it suid and dev again - a quiet
/// loss of security, and in a user namespace an EPERM, since those flags
/// are locked there. So berth restates the current flags, which is what
/// `mount_setattr(2)` (and mount(8) with the new mount API) does: change
/// only what was asked for.
pub(super) fn bind_remount_flags(current: MsFlags, parsed: &ParsedOptions) -> MsFlags {
    let requested = parsed.remount_flags();
    let mut flags = (current - ATIME_FLAGS - parsed.clear_flags) | requested;
    if (requested & ATIME_FLAGS).is_empty() {
        let kept_atime = (current & ATIME_FLAGS) - parsed.clear_flags;
        flags |= if kept_atime.is_empty() && !(current & ATIME_FLAGS).is_empty() {
            // The current atime mode was cleared (`norelatime`): fall back
            // to the kernel's other mode, strictatime.
            MsFlags::MS_STRICTATIME
        } else {
            kept_atime
        };
    }
    flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT
}

/// Remounts a fresh bind with its options' flags (see [`bind_remount_flags`]).
/// The only EPERM left is a request to clear a flag that a user namespace
/// locks, which fails with a message saying so rather than differ silently.
fn remount_bind(
    field: &str,
    fd: &OwnedFd,
    source: &Path,
    dest: &Path,
    parsed: &ParsedOptions,
) -> Result<()> {
    let current = fstatvfs(fd)
        .map(|s| mount_flags_of(s.flags()))
        .map_err(|e| {
            RootfsError::sys(
                format!("{field}: statfs the new bind mount on /{}", display(dest)),
                e,
            )
        })?;
    let flags = bind_remount_flags(current, parsed);
    match mount(
        None::<&str>,
        target(fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if !(current & parsed.clear_flags).is_empty() => {
            Err(RootfsError::invalid(
                format!("{field}.options"),
                format!("{:?}", current & parsed.clear_flags),
                format!(
                    "cannot be cleared: the source {} is mounted with it, and a user namespace may not change that",
                    display(source)
                ),
            ))
        }
        Err(e) => Err(RootfsError::sys(
            format!(
                "{field}: remount the bind mount on /{} with {flags:?}",
                display(dest)
            ),
            e,
        )),
    }
}

/// One `mount(2)` per propagation option, in order (the kernel takes one
/// propagation type per call).
fn apply_propagation(
    field: &str,
    fd: &OwnedFd,
    dest: &Path,
    propagation: &[MsFlags],
) -> Result<()> {
    let path = target(fd);
    for p in propagation {
        mount(None::<&str>, path.as_str(), None::<&str>, *p, None::<&str>).map_err(|e| {
            RootfsError::sys(
                format!("{field}: set propagation {p:?} on /{}", display(dest)),
                e,
            )
        })?;
    }
    Ok(())
}

/// Any filesystem that is not a bind: proc, tmpfs, devpts, mqueue, sysfs,
/// overlay, … with the unknown options as its data.
fn fs_mount(
    ctx: &Context<'_>,
    i: usize,
    m: &Mount,
    typ: &str,
    dest: &Path,
    parsed: &ParsedOptions,
) -> Result<()> {
    let field = format!("mounts[{i}]");
    if typ == "proc" || typ == "sysfs" {
        check_not_symlink(ctx, &field, dest, typ)?;
    }
    let fd = ctx
        .root
        .open_or_create(dest, NodeKind::Directory)
        .map_err(|e| open_error(&field, dest, e))?;
    if typ != "proc" {
        check_resolved_not_in_proc(ctx, &field, &fd, dest)?;
    }
    let mut flags = parsed.flags;
    // /dev is filled with devices after the mounts; a read-only /dev is
    // remounted read-only by `finish`, as runc does.
    if dest == Path::new("dev") {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let source: PathBuf = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let mut data = parsed.data();
    // runc's rule for the SELinux mount label: a context= option on every
    // fresh filesystem but proc and sysfs (labelled by policy) and mqueue
    // (which takes no context=; its root is labelled after the mount).
    let label = ctx.opts.mount_label.as_deref().filter(|l| !l.is_empty());
    if let Some(label) = label.filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue")) {
        data = crate::lsm::with_context(&data, label);
    }
    let data = (!data.is_empty()).then_some(data.as_str());
    match mount(Some(&source), target(&fd).as_str(), Some(typ), flags, data) {
        Ok(()) => {}
        // sysfs may only be mounted by the owner of the network namespace; a
        // user namespace that joined a foreign one gets EPERM. runc falls back
        // to a recursive bind of the host's /sys.
        Err(Errno::EPERM) if typ == "sysfs" && ctx.opts.in_user_namespace => {
            drop(fd);
            return sysfs_fallback(ctx, i, dest, parsed);
        }
        Err(e) => {
            return Err(RootfsError::sys(
                format!(
                    "{field}: mount {typ} ({}) on /{} with {flags:?} and data {:?}",
                    display(&source),
                    display(dest),
                    data.unwrap_or("")
                ),
                e,
            ))
        }
    }
    if let Some(label) = label.filter(|_| typ == "mqueue") {
        let mounted = reopen(ctx, &field, dest)?;
        rustix::fs::setxattr(
            target(&mounted).as_str(),
            "security.selinux",
            label.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| {
            RootfsError::sys(
                format!(
                    "{field}: label the mqueue on /{} with linux.mountLabel {label:?}",
                    display(dest)
                ),
                Errno::from_raw(e.raw_os_error()),
            )
        })?;
    }
    if parsed.propagation.is_empty() {
        return Ok(());
    }
    let mounted = reopen(ctx, &field, dest)?;
    apply_propagation(&field, &mounted, dest, &parsed.propagation)
}

/// runc's rule for proc and sysfs: the mount point must be an ordinary
/// directory. A symlink the image put at `/proc` or `/sys` would still resolve
/// inside the root, but the filesystem would land wherever the image chose
/// while the container's programs (and the masked and read-only paths) look
/// at the link.
fn check_not_symlink(ctx: &Context<'_>, field: &str, dest: &Path, typ: &str) -> Result<()> {
    // A destination that is missing (it is created next) or cannot be
    // opened (the open that follows reports it) is not a symlink.
    let Ok(fd) = ctx
        .root
        .open_beneath(dest, OFlag::O_PATH | OFlag::O_NOFOLLOW)
    else {
        return Ok(());
    };
    let is_link = nix::sys::stat::fstat(&fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
    if is_link {
        return Err(RootfsError::invalid(
            format!("{field}.destination"),
            format!("/{}", display(dest)),
            format!("is a symlink in the rootfs; a {typ} filesystem must be mounted on ordinary directory"),
        ));
    }
    Ok(())
}

/// In a user namespace without its own network namespace the kernel will not
/// mount sysfs; the host's /sys, recursively bound with the spec's flags, is
/// what runc gives instead.
fn sysfs_fallback(ctx: &Context<'_>, i: usize, dest: &Path, parsed: &ParsedOptions) -> Result<()> {
    let mut bind = parsed.clone();
    bind.data_options.clear();
    bind_mount(
        ctx,
        &format!("mounts[{i}]"),
        Path::new("/sys"),
        dest,
        &bind,
        true,
        None,
    )
}

/// The directory name a hierarchy gets under the cgroup mount: as the host
/// names its mount points (`cpu,cpuacct`, `systemd`, `unified`).
fn hierarchy_dir(controllers: &str) -> &str {
    if controllers.is_empty() {
        "unified"
    } else {
        controllers.strip_prefix("name=").unwrap_or(controllers)
    }
}

/// A spec mount of type `cgroup`, as runc makes it.
///
/// Pure v2: one cgroup2 mount (with a cgroup namespace, whose root is the
/// container's cgroup) or a bind of the container's cgroup directory.
///
/// v1 and hybrid: a tmpfs, and in it one directory per hierarchy holding
/// either a fresh cgroup mount of that hierarchy (with a cgroup namespace)
/// or a read-only bind of the container's own cgroup directory - never the
/// host's whole tree. Comounted controllers get symlinks (`cpu` →
/// `cpu,cpuacct`) as on the host, and the tmpfs is made read-only last.
fn cgroup_mount(ctx: &Context<'_>, i: usize, dest: &Path, parsed: &ParsedOptions) -> Result<()> {
    let field = format!("mounts[{i}]");
    let hierarchies = &ctx.opts.cgroup_paths;
    let flags = parsed.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let fd = ctx
        .root
        .open_or_create(dest, NodeKind::Directory)
        .map_err(|e| open_error(&field, dest, e))?;
    check_resolved_not_in_proc(ctx, &field, &fd, dest)?;
    if hierarchies.is_empty() {
        // No cgroup of its own (rootless without a delegated cgroup): an
        // empty read-only directory, rather than any view of the host's.
        return mount(
            Some("tmpfs"),
            target(&fd).as_str(),
            Some("tmpfs"),
            flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(|e| {
            RootfsError::sys(
                format!(
                    "{field}: mount an empty tmpfs for cgroups on /{}",
                    display(dest)
                ),
                e,
            )
        });
    }

    if let [only] = hierarchies.as_slice() {
        if only.controllers.is_empty() {
            if ctx.has_cgroupns {
                mount(
                    Some("cgroup2"),
                    target(&fd).as_str(),
                    Some("cgroup2"),
                    flags,
                    None::<&str>,
                )
                .map_err(|e| {
                    RootfsError::sys(format!("{field}: mount cgroup2 on /{}", display(dest)), e)
                })?;
                if parsed.propagation.is_empty() {
                    return Ok(());
                }
                let mounted = reopen(ctx, &field, dest)?;
                return apply_propagation(&field, &mounted, dest, &parsed.propagation);
            }
            drop(fd);
            let mut bind = parsed.clone();
            bind.data_options.clear();
            return bind_mount(ctx, &field, &only.host_dir, dest, &bind, true, None);
        }
    }

    mount(
        Some("tmpfs"),
        target(&fd).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(|e| {
        RootfsError::sys(
            format!("{field}: mount the tmpfs for cgroups on /{}", display(dest)),
            e,
        )
    })?;
    let top = reopen(ctx, &field, dest)?;
    for h in hierarchies {
        let name = hierarchy_dir(&h.controllers);
        if !is_plain_name(name) {
            return Err(RootfsError::invalid(
                "cgroup hierarchy",
                h.controllers.as_str(),
                "is not a usable directory name",
            ));
        }
        let sub = mkdir_and_open(top.as_fd(), name.as_ref()).map_err(|e| {
            RootfsError::sys(format!("{field}: create /{}/{name}", display(dest)), e)
        })?;
        let what = || {
            format!(
                "{field}: mount cgroup {} on /{}/{name}",
                h.controllers,
                display(dest)
            )
        };
        if ctx.has_cgroupns {
            let (fstype, data) = if h.controllers.is_empty() {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.controllers.as_str()))
            };
            mount(
                Some(fstype),
                target(&sub).as_str(),
                Some(fstype),
                flags,
                data,
            )
            .map_err(|e| RootfsError::sys(what(), e))?;
        } else {
            mount(
                Some(&h.host_dir),
                target(&sub).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| {
                RootfsError::sys(format!("{} (bind of {})", what(), display(&h.host_dir)), e)
            })?;
            if !flags.is_empty() || !parsed.clear_flags.is_empty() {
                let mounted = reopen_child(top.as_fd(), name)
                    .map_err(|e| RootfsError::sys(format!("{}: reopen", what()), e))?;
                let mut bind = parsed.clone();
                bind.data_options.clear();
                remount_bind(&field, &mounted, &h.host_dir, &dest.join(name), &bind)?;
            }
        }
        if !h.controllers.starts_with("name=") && h.controllers.contains(',') {
            for controller in h.controllers.split(',').filter(|c| is_plain_name(c)) {
                match symlinkat(name, top.as_fd(), controller) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(RootfsError::sys(
                            format!("{field}: symlink /{}/{controller} to {name}", display(dest)),
                            e,
                        ))
                    }
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target(&top).as_str(),
            None::<&str>,
            flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!(
                    "{field}: remount the cgroup tmpfs on /{} read-only",
                    display(dest)
                ),
                e,
            )
        })?;
    }
    apply_propagation(&field, &top, dest, &parsed.propagation)
}

/// The per-mount flags mountinfo shows (its sixth field), as `MS_*` flags.
/// No atime word means strictatime.
pub(super) fn flags_of_mountinfo(options: &[String]) -> MsFlags {
    let mut flags = MsFlags::empty();
    let mut atime_named = false;
    for o in options {
        flags |= match o.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "nosymfollow" => MS_NOSYMFOLLOW,
            "noatime" => {
                atime_named = true;
                MsFlags::MS_NOATIME
            }
            "relatime" => {
                atime_named = true;
                MsFlags::MS_RELATIME
            }
            _ => MsFlags::empty(),
        };
    }
    if !atime_named {
        flags |= MsFlags::MS_STRICTATIME;
    }
    flags
}

/// A mount's flags after the recursive options' `MOUNT_ATTR_*` changes, with
/// `mount_setattr(2)`'s meaning: clearing the atime mask and setting one
/// value in it selects that atime mode.
pub(super) fn with_attrs(current: MsFlags, set: u64, clear: u64) -> MsFlags {
    let pairs = [
        (attr::RDONLY, MsFlags::MS_RDONLY),
        (attr::NOSUID, MsFlags::MS_NOSUID),
        (attr::NODEV, MsFlags::MS_NODEV),
        (attr::NOEXEC, MsFlags::MS_NOEXEC),
        (attr::NODIRATIME, MsFlags::MS_NODIRATIME),
        (attr::NOSYMFOLLOW, MS_NOSYMFOLLOW),
    ];
    let mut flags = current;
    for (a, m) in pairs {
        if clear & a != 0 {
            flags.remove(m);
        }
        if set & a != 0 {
            flags.insert(m);
        }
    }
    if clear & attr::ATIME_MASK == attr::ATIME_MASK {
        flags.remove(ATIME_FLAGS);
        flags.insert(match set & attr::ATIME_MASK {
            attr::NOATIME => MsFlags::MS_NOATIME,
            attr::STRICTATIME => MsFlags::MS_STRICTATIME,
            _ => MsFlags::MS_RELATIME,
        });
    }
    flags
}

/// The recursive options (`rro`, `rnosuid`, …) applied to the mount at
/// `dest` and every mount below it.
///
/// runc does this with one `mount_setattr(2)` and `AT_RECURSIVE`; berth has
/// no safe wrapper for that syscall yet, so it remounts each mount of the
/// subtree (listed from mountinfo, read only when such an option is given)
/// with `MS_BIND|MS_REMOUNT`, restating the flags each already has so that
/// locked ones in a user namespace stay. Nothing else runs in the container
/// yet, so the end state is the same; each target is reopened inside the
/// rootfs and checked to be the mount listed before it is changed.
fn recursive_attrs(
    ctx: &Context<'_>,
    field: &str,
    dest: &Path,
    parsed: &ParsedOptions,
) -> Result<()> {
    let top = reopen(ctx, field, dest)?;
    let top_path = nix::fcntl::readlink(Path::new(&proc_fd_path(&top)))
        .map(PathBuf::from)
        .map_err(|e| RootfsError::sys(format!("{field}: find where /{} is", display(dest)), e))?;
    let table = mountinfo::read().map_err(|e| {
        RootfsError::sys(
            format!("{field}: read /proc/self/mountinfo for the recursive options"),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    for m in table
        .iter()
        .filter(|m| m.mount_point.starts_with(&top_path))
    {
        let current = flags_of_mountinfo(&m.options);
        let wanted = with_attrs(current, parsed.attr_set, parsed.attr_clear);
        if wanted == current {
            continue;
        }
        let what = || {
            format!(
                "{field}: apply {:?} to {}",
                parsed.recursive_options,
                display(&m.mount_point)
            )
        };
        let rel = m
            .mount_point
            .strip_prefix(ctx.root.path())
            .map_err(|_| RootfsError::sys(what(), Errno::EXDEV))?;
        let fd = ctx
            .root
            .open_beneath(rel, OFlag::O_PATH)
            .map_err(|e| RootfsError::sys(what(), e))?;
        let real = nix::fcntl::readlink(Path::new(&proc_fd_path(&fd))).map(PathBuf::from);
        if real.as_deref().ok() != Some(m.mount_point.as_path()) {
            return Err(RootfsError::sys(
                format!("{} (the path changed)", what()),
                Errno::EXDEV,
            ));
        }
        mount(
            None::<&str>,
            target(&fd).as_str(),
            None::<&str>,
            wanted | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys(what(), e))?;
    }
    Ok(())
}

/// Opens `name` in `dir` again after a mount on it, so the descriptor names
/// the new mount's root.
fn reopen_child(dir: BorrowedFd<'_>, name: &str) -> std::result::Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_destinations() {
        let d = |p: &str| clean_path(Path::new(p));
        assert!(check_proc_destination(0, &d("/proc"), "proc", false, None).is_ok());
        assert!(check_proc_destination(0, &d("/proc/cpuinfo"), "", true, None).is_ok());
        assert!(
            check_proc_destination(0, &d("/proc/sys/kernel/ns_last_pid"), "", true, None).is_ok()
        );
        let e = check_proc_destination(2, &d("/proc/self/attr"), "tmpfs", false, None)
            .expect_err("inside /proc");
        assert_eq!(
            e.to_string(),
            "mounts[2].destination \"/proc/self/attr\": is inside /proc, where only the files lxcfs emulates may be mounted over"
        );
        assert!(check_proc_destination(0, &d("/proc"), "tmpfs", false, None).is_err());
        assert!(check_proc_destination(0, &d("/processes"), "tmpfs", false, None).is_ok());
    }

    #[test]
    fn recursive_attrs_change_flags_like_mount_setattr() {
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let current = flags_of_mountinfo(&opts(&["rw", "nosuid", "relatime"]));
        assert_eq!(current, MsFlags::MS_NOSUID | MsFlags::MS_RELATIME);
        assert_eq!(
            flags_of_mountinfo(&opts(&["ro"])),
            MsFlags::MS_RDONLY | MsFlags::MS_STRICTATIME
        );
        let p = parse_options(&["rro", "rnodev"]);
        assert_eq!(
            with_attrs(current, p.attr_set, p.attr_clear),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
        let p = parse_options(&["rsuid", "rnoatime"]);
        assert_eq!(
            with_attrs(current, p.attr_set, p.attr_clear),
            MsFlags::MS_NOATIME
        );
        let p = parse_options(&["rstrictatime"]);
        assert_eq!(
            with_attrs(current, p.attr_set, p.attr_clear),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME
        );
        let p = parse_options(&["ratime"]);
        assert_eq!(
            with_attrs(MsFlags::MS_NOATIME, p.attr_set, p.attr_clear),
            MsFlags::MS_RELATIME
        );
    }

    #[test]
    fn bind_remounts_keep_what_the_source_had() {
        let b = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
        let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME;
        assert_eq!(
            bind_remount_flags(nosuid_nodev, &parse_options(&["bind", "ro"])),
            nosuid_nodev | MsFlags::MS_RDONLY | b
        );
        assert_eq!(
            bind_remount_flags(nosuid_nodev, &parse_options(&["bind", "suid", "noexec"])),
            MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME | b
        );
        assert_eq!(
            bind_remount_flags(nosuid_nodev, &parse_options(&["bind", "noatime"])),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME | b
        );
        assert_eq!(
            bind_remount_flags(nosuid_nodev, &parse_options(&["bind", "norelatime"])),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME | b
        );
        assert_eq!(
            bind_remount_flags(MsFlags::MS_RDONLY, &parse_options(&["bind", "rw"])),
            b
        );
    }

    #[test]
    fn hierarchy_dirs() {
        assert_eq!(hierarchy_dir("cpu,cpuacct"), "cpu,cpuacct");
        assert_eq!(hierarchy_dir("name=systemd"), "systemd");
        assert_eq!(hierarchy_dir(""), "unified");
    }

    #[test]
    fn statvfs_flags_map_to_mount_flags() {
        let f = mount_flags_of(FsFlags::ST_RDONLY | FsFlags::ST_NOSUID | FsFlags::ST_RELATIME);
        assert_eq!(
            f,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_RELATIME
        );
    }
}
