//! A root filesystem made from Debian's `busybox-static`: one static binary and a symlink per
//! applet, enough for a shell, `id`, `cat`, `sleep`, `ls` and the rest of a user's checks.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` installs its binary.
pub const HOST_BUSYBOX: &str = "/usr/bin/busybox";

/// Errors while making a rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The host has no static busybox to copy.
    #[error("busybox rootfs: {path} is missing or not runnable ({source}); install Debian's busybox-static")]
    NoBusybox {
        /// The path looked at.
        path: PathBuf,
        /// Why it could not be run.
        source: std::io::Error,
    },
    /// `busybox --list` failed.
    #[error("busybox rootfs: `{HOST_BUSYBOX} --list` exited with {status}")]
    ListFailed {
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// A file or directory of the rootfs could not be made.
    #[error("busybox rootfs: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a busybox rootfs in `dir/rootfs` and returns its path.
///
/// It holds `bin/busybox`, a symlink in `bin/` per applet that `busybox --list` names, the empty
/// mount points `proc`, `sys`, `dev`, `tmp`, and `etc/passwd` and `etc/group` naming root and
/// nobody (uid and gid 65534). Every directory is mode 0755 (`tmp` 1777), so a user namespace's
/// mapped root can walk it.
pub fn busybox_rootfs(dir: &Path) -> Result<PathBuf, RootfsError> {
    let listing = Command::new(HOST_BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|source| RootfsError::NoBusybox {
            path: PathBuf::from(HOST_BUSYBOX),
            source,
        })?;
    if !listing.status.success() {
        return Err(RootfsError::ListFailed {
            status: listing.status,
        });
    }
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).map_err(io("create directory", &bin))?;
    let busybox = bin.join("busybox");
    fs::copy(HOST_BUSYBOX, &busybox).map_err(io("copy busybox to", &busybox))?;
    for applet in String::from_utf8_lossy(&listing.stdout).lines() {
        let applet = applet.trim();
        // The listing names busybox itself; a link over the binary would loop.
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = bin.join(applet);
        symlink("busybox", &link).map_err(io("symlink applet", &link))?;
    }
    for sub in ["proc", "sys", "dev", "tmp", "etc", "root"] {
        let path = rootfs.join(sub);
        fs::create_dir_all(&path).map_err(io("create directory", &path))?;
    }
    let etc = rootfs.join("etc");
    let passwd = etc.join("passwd");
    fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(io("write", &passwd))?;
    let group = etc.join("group");
    fs::write(&group, "root:x:0:\nnobody:x:65534:\n").map_err(io("write", &group))?;
    for (path, mode) in [
        (dir, 0o755),
        (rootfs.as_path(), 0o755),
        (&rootfs.join("tmp"), 0o1777),
    ] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))?;
    }
    Ok(rootfs)
}
