//! Resolving container paths inside the rootfs without ever leaving it.
//!
//! A mount destination is a path in the container, but the image decides what
//! its components are: `/etc` may be a symlink to the host's `/etc`, `/a` to
//! `../../..`. Resolved naively on the host, a mount would land outside the
//! rootfs (CVE-2017-1002101 in Kubernetes' subPath,
//! <https://nvd.nist.gov/vuln/detail/CVE-2017-1002101>). And a path checked
//! first and mounted later can be swapped for a symlink in between by a
//! process that shares the rootfs (CVE-2021-30465, runc's mount race,
//! <https://nvd.nist.gov/vuln/detail/CVE-2021-30465>).
//!
//! So berth opens every target with `openat2(2)` and `RESOLVE_IN_ROOT`: the
//! kernel resolves symlinks as if the rootfs were `/` and clamps `..` there,
//! and the result is a descriptor, not a path. The mount is then made on
//! `/proc/self/fd/N`, which names exactly that inode however the tree changes
//! meanwhile. `RESOLVE_NO_MAGICLINKS` also refuses `/proc/*/fd`-style links,
//! through which a path inside a container's `/proc` could point anywhere
//! (CVE-2019-16884 mounted over `/proc/self/attr` this way,
//! <https://nvd.nist.gov/vuln/detail/CVE-2019-16884>).
//!
//! Kernels older than 5.6 lack `openat2`; there berth resolves the path in
//! user space ([`secure_join`]) and checks where the descriptor it opened
//! really is before using it.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlink, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, lstat, mkdirat, Mode, SFlag};

/// The most symlinks one resolution may follow, as Linux's `MAXSYMLINKS`
/// bounds a path walk (40) - kept generous for images with deep link farms.
const MAX_SYMLINKS: usize = 255;

/// Cleans a container path lexically into a path relative to the root: `.`
/// and empty components dropped, `..` pops one component and is clamped at
/// the root (as the kernel clamps `/..`). Symlinks are not looked at.
pub fn clean_path(path: &Path) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.iter().collect()
}

/// Whether `path`, read lexically, climbs above where it starts (more `..`
/// than components before them), e.g. `../../etc` or `/a/../../etc`.
pub fn escapes_root(path: &Path) -> bool {
    let mut depth: usize = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => {}
        }
    }
    false
}

/// Resolves `unsafe_path` inside `root` in user space: each existing component
/// is looked at with `lstat`, a symlink's target is resolved as if `root` were
/// `/` (an absolute target restarts at `root`), `..` never climbs above
/// `root`. Components that do not exist are appended as they are. The result
/// is always `root` or below it.
///
/// This is racy by nature (the tree may change after it returns); berth uses
/// it only to decide where to create missing directories, which it then does
/// with `O_NOFOLLOW` at every step, and as the fallback when `openat2` is
/// missing.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf, Errno> {
    let mut remaining: VecDeque<OsString> = components(unsafe_path);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    // Once a component is missing nothing below it exists either, so the
    // rest is joined lexically without more syscalls.
    let mut missing = false;
    while let Some(c) = remaining.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if missing {
            resolved.push(c);
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match lstat(&candidate) {
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                missing = true;
                resolved.push(c);
            }
            Err(e) => return Err(e),
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = PathBuf::from(readlink(&candidate)?);
                if target.is_absolute() {
                    resolved.clear();
                }
                for t in components(&target).into_iter().rev() {
                    remaining.push_front(t);
                }
            }
            Ok(_) => resolved.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// The components of a path that matter for resolution (`..` kept, `.` and
/// the root dropped).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// `/proc/self/fd/N` for a descriptor: a path `mount(2)` follows to exactly
/// the inode the descriptor holds.
pub fn proc_fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// What to create at a missing mount point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory (the mount source is a directory or a filesystem).
    Directory,
    /// An empty regular file (the mount source is a file or a device node).
    File,
}

/// Set once `openat2` turned out not to exist, so the fallback is taken
/// without trying it again.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// A container's root directory, held open, against which container paths
/// are resolved.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` (a host path) as a root. Open it only after the rootfs
    /// has become the mount it will stay (after its self-bind): a descriptor
    /// opened before would point below that mount, and mounts made through it
    /// would be hidden.
    pub fn open(path: &Path) -> Result<Self, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The host path this root was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the container path `path` (absolute or relative, both taken as
    /// below the root) with `flags`, resolving inside the root.
    pub fn open_beneath(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let rel = clean_path(path);
        let rel: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        };
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let how = OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            // RESOLVE_IN_ROOT fails with EAGAIN when a rename raced the walk
            // and the kernel could not prove `..` stayed inside: try again.
            for _ in 0..16 {
                match openat2(self.fd.as_fd(), rel, how) {
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        break;
                    }
                    other => return other,
                }
            }
            if !NO_OPENAT2.load(Ordering::Relaxed) {
                return Err(Errno::EAGAIN);
            }
        }
        self.open_beneath_fallback(rel, flags)
    }

    /// The pre-5.6 path: resolve in user space, open without following a
    /// final symlink, then check through `/proc/self/fd` that the inode
    /// opened really is inside the root (a rename race would show here).
    pub fn open_beneath_fallback(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let joined = secure_join(&self.path, rel)?;
        let fd = nix::fcntl::open(
            &joined,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let real = PathBuf::from(readlink(Path::new(&proc_fd_path(&fd)))?);
        if real.starts_with(&self.path) {
            Ok(fd)
        } else {
            Err(Errno::EXDEV)
        }
    }

    /// Opens the container path `path` as an `O_PATH` descriptor, creating
    /// what is missing: directories along the way and, as the last
    /// component, a directory or an empty file as `kind` says. Symlinks in
    /// the existing part resolve inside the root; everything created is made
    /// and then opened with `O_NOFOLLOW`, so a symlink swapped in meanwhile
    /// makes this fail rather than escape.
    pub fn open_or_create(&self, path: &Path, kind: NodeKind) -> Result<OwnedFd, Errno> {
        match self.open_beneath(path, OFlag::O_PATH) {
            Err(Errno::ENOENT) => {}
            other => return other,
        }
        let resolved = secure_join(&self.path, &clean_path(path))?;
        let inner = resolved
            .strip_prefix(&self.path)
            .map_err(|_| Errno::EXDEV)?
            .to_path_buf();
        let names: Vec<&OsStr> = inner
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some((last, parents)) = names.split_last() else {
            return self.open_beneath(Path::new("."), OFlag::O_PATH);
        };
        let mut dir: Option<OwnedFd> = None;
        for name in parents {
            let parent = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
            dir = Some(mkdir_and_open(parent, name)?);
        }
        let parent = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
        match kind {
            NodeKind::Directory => mkdir_and_open(parent, last),
            NodeKind::File => create_file(parent, last),
        }
    }
}

/// `mkdirat` then `openat(O_NOFOLLOW | O_DIRECTORY)`: an existing directory
/// is fine, a symlink or a file in its place is `ENOTDIR`.
pub(crate) fn mkdir_and_open(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    openat(
        parent,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Creates an empty file, or opens the node already there unless it is a
/// symlink (a mount on a symlink's own inode is never what was meant).
pub(crate) fn create_file(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match openat(
        parent,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Err(Errno::EEXIST) => {}
        other => return other,
    }
    let fd = openat(
        parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&fd)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        return Err(Errno::ELOOP);
    }
    Ok(fd)
}

/// Whether a name is a single plain path component (no `/`, not `.`/`..`).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.as_bytes().contains(&b'/')
}

/// The bytes of a path, for messages that must not lose non-UTF-8 names.
pub fn display(path: &Path) -> String {
    String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A rootfs with the hostile links the runtime must survive.
    fn hostile_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("make a temp dir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(r.join("usr/lib")).expect("mkdir usr/lib");
        symlink("/etc", r.join("hostetc")).expect("symlink hostetc");
        symlink("../../..", r.join("a")).expect("symlink a");
        symlink("usr/lib/../../../../tmp", r.join("climb")).expect("symlink climb");
        symlink("loop2", r.join("loop1")).expect("symlink loop1");
        symlink("loop1", r.join("loop2")).expect("symlink loop2");
        symlink("/nowhere/deep", r.join("dangling")).expect("symlink dangling");
        symlink("lib", r.join("usr/lib64")).expect("symlink lib64");
        dir
    }

    #[test]
    fn clean_path_clamps_at_root() {
        assert_eq!(clean_path(Path::new("/proc")), PathBuf::from("proc"));
        assert_eq!(clean_path(Path::new("/a/./b//c/")), PathBuf::from("a/b/c"));
        assert_eq!(clean_path(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(clean_path(Path::new("/a/b/../../..")), PathBuf::new());
        assert_eq!(clean_path(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn escapes_root_is_lexical() {
        assert!(escapes_root(Path::new("../../etc")));
        assert!(escapes_root(Path::new("/a/../../etc")));
        assert!(!escapes_root(Path::new("/a/../etc")));
        assert!(!escapes_root(Path::new("/proc/sys")));
        assert!(!escapes_root(Path::new("/")));
    }

    #[test]
    fn secure_join_keeps_hostile_links_inside() {
        let dir = hostile_root();
        let r = dir.path();
        let j = |p: &str| secure_join(r, Path::new(p)).expect("resolve");
        assert_eq!(j("/hostetc/passwd"), r.join("etc/passwd"));
        assert_eq!(j("/a"), r.to_path_buf());
        assert_eq!(j("/a/etc/shadow"), r.join("etc/shadow"));
        assert_eq!(j("/climb/x"), r.join("tmp/x"));
        assert_eq!(j("/../../../etc"), r.join("etc"));
        assert_eq!(j("/usr/lib64/x"), r.join("usr/lib/x"));
        assert_eq!(j("/dangling/sub"), r.join("nowhere/deep/sub"));
        assert_eq!(j("/missing/../etc"), r.join("etc"));
        assert_eq!(secure_join(r, Path::new("/loop1/x")), Err(Errno::ELOOP));
    }

    #[test]
    fn open_beneath_resolves_in_root() {
        let dir = hostile_root();
        let root = Root::open(dir.path()).expect("open root");
        for (path, expect) in [
            ("/hostetc", "etc"),
            ("/a/etc", "etc"),
            ("/a/a/a/usr/lib", "usr/lib"),
            ("/usr/lib64", "usr/lib"),
            ("../../etc", "etc"),
            ("/", ""),
        ] {
            let fd = root
                .open_beneath(Path::new(path), OFlag::O_PATH)
                .unwrap_or_else(|e| panic!("open {path}: {e}"));
            let real = readlink(Path::new(&proc_fd_path(&fd))).expect("readlink");
            assert_eq!(PathBuf::from(real), dir.path().join(expect), "{path}");
        }
        assert_eq!(
            root.open_beneath(Path::new("/climb"), OFlag::O_PATH)
                .map(drop),
            Err(Errno::ENOENT),
            "climb resolves to <root>/tmp, which does not exist"
        );
    }

    #[test]
    fn fallback_resolves_in_root() {
        let dir = hostile_root();
        let root = Root::open(dir.path()).expect("open root");
        let fd = root
            .open_beneath_fallback(Path::new("a/hostetc"), OFlag::O_PATH)
            .expect("fallback open");
        let real = readlink(Path::new(&proc_fd_path(&fd))).expect("readlink");
        assert_eq!(PathBuf::from(real), dir.path().join("etc"));
    }

    #[test]
    fn open_or_create_makes_mount_points_inside() {
        let dir = hostile_root();
        let r = dir.path();
        let root = Root::open(r).expect("open root");
        let fd = root
            .open_or_create(Path::new("/hostetc/berth-test/sub"), NodeKind::Directory)
            .expect("create through an absolute link");
        assert!(r.join("etc/berth-test/sub").is_dir());
        assert!(!Path::new("/etc/berth-test").exists());
        let real = readlink(Path::new(&proc_fd_path(&fd))).expect("readlink");
        assert_eq!(PathBuf::from(real), r.join("etc/berth-test/sub"));

        root.open_or_create(Path::new("/a/a/newdir/file"), NodeKind::File)
            .expect("create a file through a relative escape");
        assert!(r.join("newdir/file").is_file());

        root.open_or_create(Path::new("/dangling/x"), NodeKind::Directory)
            .expect("create below a dangling link");
        assert!(r.join("nowhere/deep/x").is_dir());

        // An existing node is opened, not replaced or truncated.
        std::fs::write(r.join("etc/hosts"), b"keep").expect("write hosts");
        root.open_or_create(Path::new("/etc/hosts"), NodeKind::File)
            .expect("open existing file");
        assert_eq!(std::fs::read(r.join("etc/hosts")).expect("read"), b"keep");

        // A file where a directory is needed is refused.
        assert_eq!(
            root.open_or_create(Path::new("/etc/hosts/x"), NodeKind::Directory)
                .map(drop),
            Err(Errno::ENOTDIR)
        );
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("cpu,cpuacct"));
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name("a/b"));
        assert!(!is_plain_name(""));
    }
}
