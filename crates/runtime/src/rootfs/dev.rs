//! `/dev`: the default device nodes, `linux.devices`, the standard symlinks,
//! and the console.
//!
//! The runtime spec lists the devices every Linux container gets
//! (<https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#default-devices>)
//! and the `/dev` symlinks runc makes; berth makes the same set, and only when
//! the spec mounts a fresh filesystem on `/dev` (a `/dev` bound from the host
//! already has them).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, makedev, mknodat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::mounts::Context;
use super::secure_join::{clean_path, create_file, display, proc_fd_path, NodeKind, Root};
use super::{Result, RootfsError};

/// The spec's default devices: (name under /dev, major, minor), all
/// character devices with mode 0666 owned by root.
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// One node to make under /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceNode {
    /// The path below /dev (`null`, `net/tun`).
    pub rel: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Where it came from, for messages (`linux.devices[2]`, `default device`).
    pub field: String,
}

/// The nodes to make: the defaults the spec does not redefine, then
/// `linux.devices` in order. Pure, so its checks are unit-tested.
pub(super) fn device_nodes(spec: &Spec) -> Result<Vec<DeviceNode>> {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    let mut nodes = Vec::with_capacity(DEFAULT_DEVICES.len() + devices.len());
    for (name, major, minor) in DEFAULT_DEVICES {
        let redefined = devices
            .iter()
            .any(|d| clean_path(d.path()) == Path::new("dev").join(name));
        if !redefined {
            nodes.push(DeviceNode {
                rel: PathBuf::from(name),
                kind: SFlag::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
                field: format!("default device /dev/{name}"),
            });
        }
    }
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let rel = device_rel_path(&field, d.path())?;
        let kind = device_kind(&field, d.typ())?;
        let number = |what: &str, v: i64| {
            u64::try_from(v).map_err(|_| {
                RootfsError::invalid(
                    format!("{field}.{what}"),
                    v.to_string(),
                    "must not be negative",
                )
            })
        };
        nodes.push(DeviceNode {
            rel,
            kind,
            major: number("major", d.major())?,
            minor: number("minor", d.minor())?,
            // runc's default when fileMode is absent.
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            field,
        });
    }
    Ok(nodes)
}

/// A device path must name something below /dev: the runtime only fills the
/// /dev it mounted, and a node elsewhere in the image would survive as a
/// writable path to the device.
pub(super) fn device_rel_path(field: &str, path: &Path) -> Result<PathBuf> {
    let bad = |reason: &str| RootfsError::invalid(format!("{field}.path"), display(path), reason);
    if !path.is_absolute() {
        return Err(bad("must be an absolute path"));
    }
    if super::secure_join::escapes_root(path) {
        return Err(bad("escapes the container's root"));
    }
    let clean = clean_path(path);
    match clean.strip_prefix("dev") {
        Ok(rel) if !rel.as_os_str().is_empty() => Ok(rel.to_path_buf()),
        _ => Err(bad("must be below /dev")),
    }
}

/// The node type of a device: `c` and `u` (unbuffered, the same to Linux)
/// are character devices, `b` block, `p` a FIFO; `a` only means "all" in
/// cgroup rules.
pub(super) fn device_kind(field: &str, typ: LinuxDeviceType) -> Result<SFlag> {
    match typ {
        LinuxDeviceType::C | LinuxDeviceType::U => Ok(SFlag::S_IFCHR),
        LinuxDeviceType::B => Ok(SFlag::S_IFBLK),
        LinuxDeviceType::P => Ok(SFlag::S_IFIFO),
        LinuxDeviceType::A => Err(RootfsError::invalid(
            format!("{field}.type"),
            "a",
            "must be one of c, b, u or p",
        )),
    }
}

/// Makes the device nodes and symlinks in the /dev the spec mounted.
pub(super) fn populate(ctx: &Context<'_>, spec: &Spec) -> Result<()> {
    let dev = ctx
        .root
        .open_beneath(Path::new("dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| RootfsError::sys("open /dev inside the rootfs", e))?;
    for node in device_nodes(spec)? {
        make_node(ctx, &dev, &node)?;
    }
    if ctx.opts.console {
        // The mount point for `bind_console`, made now while /dev is
        // writable: a /dev the spec wants read-only is remounted so in
        // `finish`, and the console may be bound after that.
        create_file(dev.as_fd(), OsStr::new("console"))
            .map_err(|e| RootfsError::sys("create /dev/console", e))?;
    }
    let mut links: Vec<(&str, &str)> = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        // With devpts' newinstance the container's ptys come from its own
        // /dev/pts/ptmx; /dev/ptmx must lead there, not to the host's node.
        ("ptmx", "pts/ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    for (name, to) in links {
        let mut result = symlinkat(to, dev.as_fd(), name);
        if result == Err(Errno::EEXIST) && name == "ptmx" {
            // A ptmx node from linux.devices would reach the host's pty
            // instance; the symlink replaces it, as in runc.
            unlinkat(dev.as_fd(), name, UnlinkatFlags::NoRemoveDir).map_err(|e| {
                RootfsError::sys("remove /dev/ptmx to replace it with a symlink", e)
            })?;
            result = symlinkat(to, dev.as_fd(), name);
        }
        match result {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootfsError::sys(format!("symlink /dev/{name} to {to}"), e)),
        }
    }
    Ok(())
}

/// One node: `mknod` when the process may, or in a user namespace (where
/// the kernel refuses device nodes) an empty file with the host's node
/// bind-mounted on it, as runc does. FIFOs need no privilege and are always
/// made.
fn make_node(ctx: &Context<'_>, dev: &OwnedFd, node: &DeviceNode) -> Result<()> {
    let what = |verb: &str| format!("{}: {verb} /dev/{}", node.field, display(&node.rel));
    let name: &OsStr = node.rel.file_name().unwrap_or(node.rel.as_os_str());
    let parent_owned;
    let parent = match node.rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(sub) => {
            parent_owned = ctx
                .root
                .open_or_create(&Path::new("dev").join(sub), NodeKind::Directory)
                .map_err(|e| RootfsError::sys(what("create the directory of"), e))?;
            parent_owned.as_fd()
        }
        None => dev.as_fd(),
    };
    if ctx.opts.in_user_namespace && node.kind != SFlag::S_IFIFO {
        let fd = create_file(parent, name).map_err(|e| RootfsError::sys(what("create"), e))?;
        let host = Path::new("/dev").join(&node.rel);
        return mount(
            Some(&host),
            proc_fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!("{} from the host's {}", what("bind-mount"), display(&host)),
                e,
            )
        });
    }
    let perm = Mode::from_bits_truncate(node.mode);
    let devno = makedev(node.major, node.minor);
    let mut made = mknodat(parent, name, node.kind, perm, devno);
    if made == Err(Errno::EEXIST) {
        // Listed twice, or a default redefined under another spelling: the
        // last definition wins.
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| RootfsError::sys(what("replace"), e))?;
        made = mknodat(parent, name, node.kind, perm, devno);
    }
    made.map_err(|e| RootfsError::sys(what("mknod"), e))?;
    if node.uid != 0 || node.gid != 0 {
        fchownat(
            parent,
            name,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| RootfsError::sys(what("chown"), e))?;
    }
    Ok(())
}

/// Unix98 pty slaves have majors 136 to 143 (Documentation/admin-guide/devices.txt).
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// Creates `/dev/console` under `root` as an empty file (or uses the node
/// there) and bind-mounts the terminal's slave on it.
///
/// Both ends are checked, because runc was escaped through exactly this
/// bind (CVE-2025-52565, <https://nvd.nist.gov/vuln/detail/CVE-2025-52565>):
/// the source must be a pty slave (a path swapped for a symlink to, say, a
/// /proc file fails the check), and the target is created and opened without
/// following a final symlink and must not be on procfs or sysfs.
pub(super) fn bind_console(root: &Path, slave: &Path) -> Result<()> {
    // Checked and mounted through one descriptor, so the path cannot change
    // between the check and the bind.
    let source = nix::fcntl::open(slave, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| RootfsError::sys(format!("open the terminal {}", display(slave)), e))?;
    let st = fstat(&source)
        .map_err(|e| RootfsError::sys(format!("stat the terminal {}", display(slave)), e))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || !PTY_SLAVE_MAJORS.contains(&major(st.st_rdev)) {
        return Err(RootfsError::sys(
            format!(
                "bind {} on /dev/console: it is not a pty slave",
                display(slave)
            ),
            Errno::ENOTTY,
        ));
    }
    let root = Root::open(root).map_err(|e| {
        RootfsError::sys(
            format!("open the root {} for the console", display(root)),
            e,
        )
    })?;
    let dev = root
        .open_beneath(Path::new("dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| RootfsError::sys("open /dev inside the rootfs for the console", e))?;
    let fd = create_file(dev.as_fd(), OsStr::new("console"))
        .map_err(|e| RootfsError::sys("create /dev/console inside the rootfs", e))?;
    let fs = fstatfs(&fd)
        .map_err(|e| RootfsError::sys("statfs /dev/console", e))?
        .filesystem_type();
    if fs == PROC_SUPER_MAGIC || fs == SYSFS_MAGIC {
        return Err(RootfsError::sys(
            "bind the terminal on /dev/console: /dev resolves into /proc or /sys",
            Errno::EXDEV,
        ));
    }
    mount(
        Some(proc_fd_path(&source).as_str()),
        proc_fd_path(&fd).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        RootfsError::sys(
            format!("bind-mount the terminal {} on /dev/console", display(slave)),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxDeviceBuilder, SpecBuilder};

    fn spec_with(devices: Vec<oci_spec::runtime::LinuxDevice>) -> Spec {
        SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .devices(devices)
                    .build()
                    .expect("linux"),
            )
            .build()
            .expect("spec")
    }

    #[test]
    fn defaults_then_spec_devices() {
        let spec = spec_with(vec![
            LinuxDeviceBuilder::default()
                .path("/dev/net/tun")
                .typ(LinuxDeviceType::C)
                .major(10)
                .minor(200)
                .build()
                .expect("device"),
            LinuxDeviceBuilder::default()
                .path("/dev/null")
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .file_mode(0o600u32)
                .uid(1000u32)
                .build()
                .expect("device"),
        ]);
        let nodes = device_nodes(&spec).expect("nodes");
        let names: Vec<_> = nodes.iter().map(|n| n.rel.clone()).collect();
        assert_eq!(
            names,
            ["zero", "full", "random", "urandom", "tty", "net/tun", "null"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
        let null = nodes.last().expect("null");
        assert_eq!((null.mode, null.uid), (0o600, 1000));
        assert_eq!(nodes[5].mode, 0o666);
    }

    #[test]
    fn bad_devices_name_the_field() {
        let dev = |path: &str, typ| {
            spec_with(vec![LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .build()
                .expect("device")])
        };
        let err = |s: Spec| device_nodes(&s).expect_err("invalid").to_string();
        assert_eq!(
            err(dev("/etc/null", LinuxDeviceType::C)),
            "linux.devices[0].path \"/etc/null\": must be below /dev"
        );
        assert_eq!(
            err(dev("/dev/../etc/x", LinuxDeviceType::C)),
            "linux.devices[0].path \"/dev/../etc/x\": must be below /dev"
        );
        assert_eq!(
            err(dev("dev/x", LinuxDeviceType::C)),
            "linux.devices[0].path \"dev/x\": must be an absolute path"
        );
        assert_eq!(
            err(dev("/dev/x", LinuxDeviceType::A)),
            "linux.devices[0].type \"a\": must be one of c, b, u or p"
        );
        assert_eq!(
            err(dev("/dev", LinuxDeviceType::C)),
            "linux.devices[0].path \"/dev\": must be below /dev"
        );
    }
}
