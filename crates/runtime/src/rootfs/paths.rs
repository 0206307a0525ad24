//! `finish`: what is done to the root after the pivot - root propagation,
//! a read-only /dev, `linux.readonlyPaths`, `linux.maskedPaths`, the
//! process's working directory and a read-only root.
//!
//! Masked and read-only paths are the spec's way of hiding the parts of
//! /proc and /sys that leak or change the host
//! (<https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#masked-paths>).
//! They are resolved like mount destinations (in the root, no magic links)
//! and paths that do not exist on this kernel are skipped.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, SFlag};
use nix::sys::statvfs::{fstatvfs, statvfs};
use oci_spec::runtime::Spec;

use super::mounts::mount_flags_of;
use super::options::{parse_options, parse_propagation};
use super::secure_join::{clean_path, display, proc_fd_path, NodeKind, Root};
use super::{Result, RootfsError};

/// After the pivot, `/proc/self/fd` exists only if the spec mounted /proc;
/// without it, targets are named by their path (they were still resolved
/// safely to check they exist).
struct Targets {
    root: Root,
    proc_fd: bool,
}

impl Targets {
    fn path(&self, fd: &OwnedFd, path: &Path) -> String {
        if self.proc_fd {
            proc_fd_path(fd)
        } else {
            format!("/{}", display(&clean_path(path)))
        }
    }

    /// Opens a container path; `None` when it does not exist here.
    fn open(&self, what: &str, path: &Path) -> Result<Option<OwnedFd>> {
        match self.root.open_beneath(path, OFlag::O_PATH) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(RootfsError::sys(
                format!("{what}: open {}", display(path)),
                e,
            )),
        }
    }
}

pub(super) fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    // runc applies the root propagation again after the pivot: in prepare it
    // went to the host's "/" as seen in the new namespace; now "/" is the
    // container's root, the mount this setting is about.
    if let Some(v) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|v| !v.is_empty())
    {
        let flags = parse_propagation(v).ok_or_else(|| {
            RootfsError::invalid("linux.rootfsPropagation", v, "is not a propagation type")
        })?;
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).map_err(|e| {
            RootfsError::sys(format!("set propagation {v} on the container's /"), e)
        })?;
    }

    let targets = Targets {
        root: Root::open(Path::new("/"))
            .map_err(|e| RootfsError::sys("open the container's /", e))?,
        proc_fd: Path::new("/proc/self/fd").is_dir(),
    };

    remount_dev_readonly(spec, &targets)?;
    for (i, p) in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        readonly_path(&targets, &format!("linux.readonlyPaths[{i}]"), Path::new(p))?;
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[]);
    if !masked.is_empty() {
        let null = open_dev_null(&targets)?;
        for (i, p) in masked.iter().enumerate() {
            mask_path(
                &targets,
                &null,
                &format!("linux.maskedPaths[{i}]"),
                Path::new(p),
            )?;
        }
    }
    // The process's working directory is made if the image lacks it, as
    // runc does - and it must be made before the root turns read-only.
    if let Some(cwd) = spec
        .process()
        .as_ref()
        .map(|p| p.cwd())
        .filter(|c| !clean_path(c).as_os_str().is_empty())
    {
        targets
            .root
            .open_or_create(cwd, NodeKind::Directory)
            .map_err(|e| {
                RootfsError::sys(
                    format!("create process.cwd {} inside the container", display(cwd)),
                    e,
                )
            })?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        readonly_root()?;
    }
    Ok(())
}

/// A /dev the spec mounts read-only was mounted read-write so its devices
/// could be made; now it gets its read-only flag (runc's finalizeRootfs).
fn remount_dev_readonly(spec: &Spec, targets: &Targets) -> Result<()> {
    let Some(m) = spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .find(|m| clean_path(m.destination()) == Path::new("dev"))
    else {
        return Ok(());
    };
    let parsed = parse_options(m.options().as_deref().unwrap_or(&[]));
    if parsed.is_bind() || !parsed.flags.contains(MsFlags::MS_RDONLY) {
        return Ok(());
    }
    let Some(fd) = targets.open("remount /dev read-only", Path::new("/dev"))? else {
        return Ok(());
    };
    let flags = parsed.remount_flags() | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    mount(
        None::<&str>,
        targets.path(&fd, Path::new("/dev")).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("remount /dev read-only", e))
}

/// A read-only path: a recursive bind onto itself (so mounts below it stay
/// visible) and a read-only remount that keeps the nosuid, nodev and noexec
/// it had - a remount must restate them or, in a user namespace, it fails
/// on the locked ones.
fn readonly_path(targets: &Targets, field: &str, path: &Path) -> Result<()> {
    let Some(fd) = targets.open(field, path)? else {
        return Ok(());
    };
    let here = targets.path(&fd, path);
    mount(
        Some(here.as_str()),
        here.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys(format!("{field}: bind {} onto itself", display(path)), e))?;
    // The old descriptor names the directory under the new bind; the
    // remount must name the bind itself.
    let Some(fd) = targets.open(field, path)? else {
        return Ok(());
    };
    let kept = fstatvfs(&fd)
        .map(|s| mount_flags_of(s.flags()))
        .map_err(|e| RootfsError::sys(format!("{field}: statfs {}", display(path)), e))?
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    mount(
        None::<&str>,
        targets.path(&fd, path).as_str(),
        None::<&str>,
        kept | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys(format!("{field}: remount {} read-only", display(path)), e))
}

/// The container's /dev/null, checked to be the real null device before it
/// is bound over masked files: an image could make /dev/null a symlink or a
/// file of its own, and runc was escaped that way (CVE-2025-31133,
/// <https://nvd.nist.gov/vuln/detail/CVE-2025-31133>).
fn open_dev_null(targets: &Targets) -> Result<OwnedFd> {
    let fd = targets
        .root
        .open_beneath(Path::new("/dev/null"), OFlag::O_PATH)
        .map_err(|e| RootfsError::sys("open /dev/null to mask paths with it", e))?;
    let st = fstat(&fd).map_err(|e| RootfsError::sys("stat /dev/null", e))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(RootfsError::invalid(
            "linux.maskedPaths",
            "/dev/null",
            "cannot be masked with the container's /dev/null: it is not the null device (1:3)",
        ));
    }
    Ok(fd)
}

/// A masked path: /dev/null bound over a file, an empty read-only tmpfs over
/// a directory.
fn mask_path(targets: &Targets, null: &OwnedFd, field: &str, path: &Path) -> Result<()> {
    let Some(fd) = targets.open(field, path)? else {
        return Ok(());
    };
    let st =
        fstat(&fd).map_err(|e| RootfsError::sys(format!("{field}: stat {}", display(path)), e))?;
    let here = targets.path(&fd, path);
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        mount(
            Some("tmpfs"),
            here.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!("{field}: mask the directory {} with a tmpfs", display(path)),
                e,
            )
        })
    } else {
        let source = if targets.proc_fd {
            proc_fd_path(null)
        } else {
            "/dev/null".to_owned()
        };
        mount(
            Some(source.as_str()),
            here.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys(format!("{field}: mask {} with /dev/null", display(path)), e))
    }
}

/// `root.readonly`: remount "/" read-only, restating the flags it has so
/// that the remount changes nothing else (and passes the locked-flag check
/// in a user namespace).
fn readonly_root() -> Result<()> {
    let kept = statvfs("/")
        .map(|s| mount_flags_of(s.flags()))
        .map_err(|e| RootfsError::sys("statfs the container's /", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        kept | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("remount the container's / read-only", e))
}
