//! dockerd's copy-up: a fresh, empty volume mounted over a path the image has gets that path's
//! content, with owners, modes, times, symlinks, hard links and special files kept.
//!
//! Every step works on directory descriptors: the source path is resolved inside the image's
//! root (`RESOLVE_IN_ROOT`, so a symlink in the image cannot lead out of it), entries are opened
//! with `O_NOFOLLOW`, and the copies are made relative to the volume's directory descriptors, so
//! nothing a container put in the volume can redirect a write elsewhere.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, Uid,
};

use crate::error::VolumeError;

struct Copier<'a> {
    volume: &'a Path,
    /// Copied files with more than one link, by (dev, ino): the next name is a hard link.
    links: HashMap<(u64, u64), (OwnedFd, CString)>,
}

/// Copies the content of `inside` (a path in the image rooted at `image_root`) into the volume
/// directory `volume`, and gives `volume` the owner and mode of that directory. Returns false
/// (and copies nothing) when the image has no directory at `inside`.
pub fn copy_up(image_root: &Path, inside: &str, volume: &Path) -> Result<bool, VolumeError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustix::io::Errno| VolumeError::Io {
            name: volume.display().to_string(),
            op,
            path,
            source: e.into(),
        }
    };
    let root = rustix::fs::open(
        image_root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("open", image_root))?;
    let rel = inside.trim_start_matches('/');
    let src = if rel.is_empty() {
        rustix::fs::openat(
            &root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
    } else {
        rustix::fs::openat2(
            &root,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    };
    let src = match src {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(false),
        Err(e) => return Err(io("open", &image_root.join(rel))(e)),
    };
    let dst = rustix::fs::open(
        volume,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("open", volume))?;
    let mut copier = Copier {
        volume,
        links: HashMap::new(),
    };
    copier.dir(&src, &dst, volume)?;
    let st = rustix::fs::fstat(&src).map_err(io("stat", &image_root.join(rel)))?;
    set_owner_mode_times(&dst, &st).map_err(io("set owner and mode of", volume))?;
    Ok(true)
}

fn owner(st: &Stat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Owner first: chown clears set-id bits, which the mode then puts back.
fn set_owner_mode_times(fd: impl AsFd, st: &Stat) -> rustix::io::Result<()> {
    let (u, g) = owner(st);
    rustix::fs::fchown(&fd, u, g)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    rustix::fs::futimens(&fd, &times(st))
}

impl Copier<'_> {
    fn dir(&mut self, src: &OwnedFd, dst: &OwnedFd, at: &Path) -> Result<(), VolumeError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            let name = self.volume.display().to_string();
            move |e: rustix::io::Errno| VolumeError::Io {
                name,
                op,
                path,
                source: e.into(),
            }
        };
        let mut entries = Dir::read_from(src).map_err(io("list", at))?;
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(io("list", at))?;
            let name: &CStr = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let path = at.join(name.to_string_lossy().as_ref());
            let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io("stat", &path))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                        .map_err(io("create", &path))?;
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let s = rustix::fs::openat(src, name, flags, Mode::empty())
                        .map_err(io("open", &path))?;
                    let d = rustix::fs::openat(dst, name, flags, Mode::empty())
                        .map_err(io("open", &path))?;
                    self.dir(&s, &d, &path)?;
                    set_owner_mode_times(&d, &st).map_err(io("set owner and mode of", &path))?;
                }
                FileType::RegularFile => {
                    let key = (st.st_dev as u64, st.st_ino as u64);
                    if st.st_nlink > 1 {
                        if let Some((dir, first)) = self.links.get(&key) {
                            rustix::fs::linkat(dir, first.as_c_str(), dst, name, AtFlags::empty())
                                .map_err(io("link", &path))?;
                            continue;
                        }
                    }
                    let s = rustix::fs::openat(
                        src,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io("open", &path))?;
                    let d = rustix::fs::openat(
                        dst,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(io("create", &path))?;
                    let mut from = std::fs::File::from(s);
                    let mut to = std::fs::File::from(d);
                    std::io::copy(&mut from, &mut to).map_err(|source| VolumeError::Io {
                        name: self.volume.display().to_string(),
                        op: "copy",
                        path: path.clone(),
                        source,
                    })?;
                    set_owner_mode_times(&to, &st).map_err(io("set owner and mode of", &path))?;
                    if st.st_nlink > 1 {
                        let dir = rustix::io::dup(dst).map_err(io("dup", &path))?;
                        self.links.insert(key, (dir, name.to_owned()));
                    }
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(src, name, Vec::new())
                        .map_err(io("read link", &path))?;
                    rustix::fs::symlinkat(target.as_c_str(), dst, name)
                        .map_err(io("create link", &path))?;
                    let (u, g) = owner(&st);
                    rustix::fs::chownat(dst, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io("set owner of", &path))?;
                }
                kind @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                    rustix::fs::mknodat(
                        dst,
                        name,
                        kind,
                        Mode::from_raw_mode(st.st_mode & 0o7777),
                        st.st_rdev as _,
                    )
                    .map_err(io("create node", &path))?;
                    let (u, g) = owner(&st);
                    rustix::fs::chownat(dst, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io("set owner of", &path))?;
                }
                // A socket means nothing without its listener; dockerd skips them too.
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_content_and_keeps_modes_links_and_symlinks() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let image = tmp.path().join("image");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(image.join("data/sub")).expect("mkdir");
        std::fs::create_dir(&vol).expect("mkdir");
        std::fs::write(image.join("data/a"), b"hello").expect("write");
        std::fs::hard_link(image.join("data/a"), image.join("data/sub/b")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", image.join("data/abs")).expect("symlink");
        std::fs::set_permissions(image.join("data/a"), PermissionsExt::from_mode(0o751))
            .expect("chmod");
        std::fs::set_permissions(image.join("data"), PermissionsExt::from_mode(0o1777))
            .expect("chmod");
        assert!(copy_up(&image, "/data", &vol).expect("copy"));
        assert_eq!(std::fs::read(vol.join("a")).expect("read"), b"hello");
        let a = std::fs::metadata(vol.join("a")).expect("stat");
        assert_eq!(a.mode() & 0o7777, 0o751);
        let b = std::fs::metadata(vol.join("sub/b")).expect("stat");
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(
            std::fs::read_link(vol.join("abs")).expect("readlink"),
            Path::new("/etc/passwd")
        );
        let root = std::fs::metadata(&vol).expect("stat");
        assert_eq!(root.mode() & 0o7777, 0o1777);
    }

    #[test]
    fn a_symlink_in_the_image_stays_in_the_image() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let image = tmp.path().join("image");
        let outside = tmp.path().join("outside");
        let vol = tmp.path().join("vol");
        for d in [&image, &outside, &vol] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(outside.join("secret"), b"host").expect("write");
        // Resolved in the image's root, the absolute target names image/<outside>: missing.
        std::os::unix::fs::symlink(&outside, image.join("data")).expect("symlink");
        assert!(!copy_up(&image, "/data", &vol).expect("copy"));
        std::os::unix::fs::symlink("../../..", image.join("up")).expect("symlink");
        assert!(copy_up(&image, "/up", &vol).expect("copy"));
        assert!(
            vol.join("up").symlink_metadata().is_ok(),
            "the root itself was copied"
        );
        assert!(!vol.join("secret").exists());
        assert!(!copy_up(&image, "/missing", &vol).expect("copy"));
    }
}
