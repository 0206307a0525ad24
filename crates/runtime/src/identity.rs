//! The container process's identity and limits: user, groups, rlimits, umask,
//! oom_score_adj, no_new_privs, and the lookup of the program to exec.
//!
//! # Order in the container's init (the one runc uses)
//!
//! runc's `standard_init_linux.go` and `init_linux.go` (`finalizeNamespace`,
//! `setupUser`) fix this order; each step needs what the previous one left:
//!
//! 1. [`validate_rlimits`] (and [`crate::capabilities::ProcessCaps::resolve`])
//!    in the runtime before anything is created, so a bad config fails fast.
//! 2. [`set_oom_score_adj`] early (runc's nsexec writes it before the user
//!    namespace drops the privilege to lower it; lowering needs
//!    `CAP_SYS_RESOURCE`, see proc(5)).
//! 3. [`apply_rlimits`] in the init while it is still privileged, or
//!    [`apply_rlimits_to`] from the parent on the init's pid (runc does the
//!    latter: inside a new user namespace the init can no longer raise a hard
//!    limit, because `CAP_SYS_RESOURCE` counts in the initial namespace; see
//!    setrlimit(2)).
//! 4. rootfs, pivot_root, console ([`crate::console`]), [`set_umask`] (runc
//!    sets it when it finalizes the rootfs).
//! 5. [`set_no_new_privs`] before seccomp is loaded (seccomp(2) requires it
//!    of an unprivileged caller; it also stops setuid binaries from regaining
//!    what we drop here, see prctl(2) `PR_SET_NO_NEW_PRIVS`).
//! 6. [`crate::capabilities::ProcessCaps::drop_bounding`], which needs
//!    `CAP_SETPCAP`, so it must come before the uid change takes it away.
//! 7. [`switch_user`] with `keep_caps = true`: setgroups, setresgid, then
//!    setresuid last (once the uid is not 0 we could no longer change gids),
//!    under `PR_SET_KEEPCAPS` so the permitted set survives the uid change
//!    (capabilities(7), "Effect of user ID changes on capabilities").
//! 8. [`crate::capabilities::ProcessCaps::apply`]: the effective, permitted,
//!    inheritable and ambient sets; the ambient set must come after the uid
//!    change, which clears it.
//! 9. `HOME` from [`home_for_uid`] if the env lacks it, then [`lookup_path`]
//!    for `args[0]` with the container's `PATH` (after the user switch, so the
//!    permission check is the container user's), then exec.
//!
//! Getting the order wrong is how runtimes leaked privileges: the inheritable
//! set left non-empty gave exec'd binaries capabilities
//! (CVE-2022-29162, <https://github.com/opencontainers/runc/security/advisories/GHSA-f3fp-gc8g-vw66>);
//! supplementary groups not reset kept the runtime's groups
//! (CVE-2023-25173, containerd); see also setgroups(2), setresuid(2).

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{AccessFlags, Gid, Pid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType, User};
use rustix::process::{Resource, Rlimit};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// An rlimit type name that is not one of getrlimit(2)'s.
    #[error("process.rlimits: unknown rlimit type {name:?}")]
    UnknownRlimit {
        /// The name as written in the config.
        name: String,
    },
    /// A malformed `process.rlimits` entry.
    #[error("process.rlimits[{index}]: {reason}")]
    MalformedRlimit {
        /// Position in the array.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Soft limit above the hard limit.
    #[error("process.rlimits: {typ} soft limit {soft} is greater than its hard limit {hard}")]
    SoftAboveHard {
        /// The rlimit type.
        typ: PosixRlimitType,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
    /// The same rlimit type twice (the runtime spec requires an error).
    #[error("process.rlimits: {typ} is given more than once")]
    DuplicateRlimit {
        /// The rlimit type.
        typ: PosixRlimitType,
    },
    /// setrlimit/prlimit failed.
    #[error("setting {typ} to soft {soft}, hard {hard} on {target}: {source}{hint}")]
    SetRlimit {
        /// The rlimit type.
        typ: PosixRlimitType,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
        /// "this process" or "pid N".
        target: String,
        /// Extra explanation for EPERM.
        hint: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// oom_score_adj outside -1000..=1000.
    #[error("oom_score_adj {value} is outside the range -1000..=1000")]
    OomScoreAdjRange {
        /// The value asked for.
        value: i32,
    },
    /// Writing oom_score_adj failed.
    #[error("writing {value} to {path}: {source}{hint}")]
    OomScoreAdj {
        /// The value.
        value: i32,
        /// The proc file.
        path: String,
        /// Extra explanation for EACCES.
        hint: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A prctl failed.
    #[error("prctl({what}): {source}")]
    Prctl {
        /// Which option.
        what: &'static str,
        /// The errno.
        source: Errno,
    },
    /// Reading /proc/self/setgroups failed.
    #[error("reading /proc/self/setgroups: {0}")]
    ReadSetgroups(io::Error),
    /// Additional gids asked for where setgroups(2) is denied.
    #[error("cannot set additional gids {gids:?}: setgroups(2) is denied in this user namespace (/proc/self/setgroups says deny)")]
    SetgroupsDenied {
        /// The gids.
        gids: Vec<u32>,
    },
    /// An id-changing syscall failed.
    #[error("{syscall}({ids}): {source}")]
    SetId {
        /// Which syscall.
        syscall: &'static str,
        /// Its arguments.
        ids: String,
        /// The errno.
        source: Errno,
    },
    /// fchown of a stdio descriptor failed.
    #[error("changing the owner of stdio descriptor {fd} to uid {uid}: {source}")]
    StdioOwner {
        /// 0, 1 or 2.
        fd: i32,
        /// The uid.
        uid: u32,
        /// The errno.
        source: Errno,
    },
    /// `exec` of a program that is not in `$PATH` (exit 127 in Docker).
    #[error("exec: {program:?}: executable file not found in $PATH")]
    NotInPath {
        /// `args[0]`.
        program: String,
    },
    /// `exec` of a path that does not exist (exit 127 in Docker).
    #[error("exec: {program:?}: stat {program}: no such file or directory")]
    NoSuchFile {
        /// `args[0]`.
        program: String,
    },
    /// `exec` of a file the user may not execute (exit 126 in Docker).
    #[error("exec: {program:?}: permission denied")]
    PermissionDenied {
        /// `args[0]` (or the path it resolved to).
        program: String,
    },
    /// `exec` of a directory (exit 126 in Docker).
    #[error("exec: {program:?}: is a directory")]
    IsDirectory {
        /// `args[0]`.
        program: String,
    },
    /// `exec` with an empty `args[0]`.
    #[error("exec: process.args is empty or args[0] is an empty string")]
    EmptyProgram,
    /// Looking at a candidate program failed for another reason.
    #[error("exec: {program:?}: stat {path}: {source}")]
    Stat {
        /// `args[0]`.
        program: String,
        /// The candidate path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl IdentityError {
    /// The exit status Docker reports when this error stops the exec: 127 for
    /// a program that is not found, 126 for one that cannot be run, `None` for
    /// errors that are not about the program.
    pub fn exec_exit_code(&self) -> Option<i32> {
        match self {
            Self::NotInPath { .. } | Self::NoSuchFile { .. } | Self::EmptyProgram => Some(127),
            Self::PermissionDenied { .. } | Self::IsDirectory { .. } | Self::Stat { .. } => {
                Some(126)
            }
            _ => None,
        }
    }
}

/// Result of this module.
pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

// ---------------------------------------------------------------- rlimits

/// Parses an rlimit type name as the runtime spec writes it (`"RLIMIT_NOFILE"`).
pub fn parse_rlimit_type(name: &str) -> Result<PosixRlimitType> {
    name.parse::<PosixRlimitType>()
        .map_err(|_| IdentityError::UnknownRlimit {
            name: name.to_owned(),
        })
}

/// Parses and validates the raw `process.rlimits` JSON array, with an error
/// that names an unknown type. `oci-spec` rejects such a config too, but with
/// serde's generic message; call this on the raw config to report it well.
pub fn rlimits_from_json(rlimits: &serde_json::Value) -> Result<Vec<PosixRlimit>> {
    let Some(items) = rlimits.as_array() else {
        return Err(IdentityError::MalformedRlimit {
            index: 0,
            reason: "process.rlimits is not an array".into(),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let malformed = |reason: &str| IdentityError::MalformedRlimit {
            index,
            reason: reason.into(),
        };
        let name = item
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| malformed("\"type\" is missing or not a string"))?;
        let typ = parse_rlimit_type(name)?;
        let number = |key: &str| -> Result<u64> {
            match item.get(key) {
                None => Ok(0),
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| malformed(&format!("\"{key}\" is not an unsigned integer"))),
            }
        };
        let rlimit = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(number("soft")?)
            .hard(number("hard")?)
            .build()
            .map_err(|e| malformed(&e.to_string()))?;
        out.push(rlimit);
    }
    validate_rlimits(&out)?;
    Ok(out)
}

/// Checks rlimits before anything is created: soft must not exceed hard, and
/// no type may appear twice (the runtime spec requires an error for both).
pub fn validate_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    let mut seen = Vec::with_capacity(rlimits.len());
    for r in rlimits {
        if r.soft() > r.hard() {
            return Err(IdentityError::SoftAboveHard {
                typ: r.typ(),
                soft: r.soft(),
                hard: r.hard(),
            });
        }
        if seen.contains(&r.typ()) {
            return Err(IdentityError::DuplicateRlimit { typ: r.typ() });
        }
        seen.push(r.typ());
    }
    Ok(())
}

fn resource_of(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}

fn limit_value(v: u64) -> Option<u64> {
    // RLIM_INFINITY is all ones; rustix spells it None.
    (v != u64::MAX).then_some(v)
}

/// Sets each rlimit on this process (setrlimit(2)), after [`validate_rlimits`].
pub fn apply_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    apply_rlimits_inner(None, rlimits)
}

/// Sets each rlimit on process `pid` (prlimit(2)): what runc's parent does to
/// the init, because raising a hard limit needs `CAP_SYS_RESOURCE` in the
/// initial user namespace, which the init has lost once it is in its own.
pub fn apply_rlimits_to(pid: Pid, rlimits: &[PosixRlimit]) -> Result<()> {
    apply_rlimits_inner(Some(pid), rlimits)
}

fn apply_rlimits_inner(pid: Option<Pid>, rlimits: &[PosixRlimit]) -> Result<()> {
    validate_rlimits(rlimits)?;
    let rpid = pid.and_then(|p| rustix::process::Pid::from_raw(p.as_raw()));
    let target = match pid {
        Some(p) => format!("pid {p}"),
        None => "this process".to_owned(),
    };
    for r in rlimits {
        let new = Rlimit {
            current: limit_value(r.soft()),
            maximum: limit_value(r.hard()),
        };
        let res = match rpid {
            Some(p) => rustix::process::prlimit(Some(p), resource_of(r.typ()), new).map(|_| ()),
            None => rustix::process::setrlimit(resource_of(r.typ()), new),
        };
        if let Err(e) = res {
            let hint = if e == rustix::io::Errno::PERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE, which this process lacks)"
            } else {
                ""
            };
            return Err(IdentityError::SetRlimit {
                typ: r.typ(),
                soft: r.soft(),
                hard: r.hard(),
                target,
                hint,
                source: e.into(),
            });
        }
    }
    Ok(())
}

// ------------------------------------------------------- oom, prctl, umask

/// Writes `v` to `/proc/<pid>/oom_score_adj` (`/proc/self/...` for `None`).
/// Lowering the value needs `CAP_SYS_RESOURCE` (proc(5)); hosts whose
/// bounding set lacks it refuse negative values with EACCES, and the error
/// says so.
pub fn set_oom_score_adj(pid: Option<Pid>, v: i32) -> Result<()> {
    if !(-1000..=1000).contains(&v) {
        return Err(IdentityError::OomScoreAdjRange { value: v });
    }
    let path = match pid {
        Some(p) => format!("/proc/{p}/oom_score_adj"),
        None => "/proc/self/oom_score_adj".to_owned(),
    };
    fs::write(&path, v.to_string()).map_err(|source| {
        let hint = if source.raw_os_error() == Some(libc::EACCES) {
            " (lowering oom_score_adj needs CAP_SYS_RESOURCE, which this process does not \
             have: the host's capability bounding set may lack it; use a value >= the \
             current one)"
        } else {
            ""
        };
        IdentityError::OomScoreAdj {
            value: v,
            path,
            hint,
            source,
        }
    })
}

/// Sets `PR_SET_NO_NEW_PRIVS` (process.noNewPrivileges): execve can no longer
/// grant privileges (setuid bits, file capabilities). Irreversible.
pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(|source| IdentityError::Prctl {
        what: "PR_SET_NO_NEW_PRIVS",
        source,
    })
}

/// Sets the umask (process.user.umask); like umask(2), only the low 9 bits count.
pub fn set_umask(u: u32) {
    nix::sys::stat::umask(Mode::from_bits_truncate((u & 0o777) as libc::mode_t));
}

// ------------------------------------------------------------------ user

/// Whether setgroups(2) is allowed in this process's user namespace.
fn setgroups_allowed() -> Result<bool> {
    match fs::read_to_string("/proc/self/setgroups") {
        Ok(s) => Ok(s.trim() != "deny"),
        // Kernels before 3.19 have no such file: setgroups is allowed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(IdentityError::ReadSetgroups(e)),
    }
}

/// Makes stdio descriptors 0-2 owned by the container user, so a process that
/// is not root can still use its console and reopen `/proc/self/fd/N`
/// (runc's `fixStdioPermissions`). Only the owner changes, the group is
/// kept. `/dev/null` and descriptors we may not change (ids not mapped in
/// this user namespace, read-only file systems) are left alone.
fn fix_stdio_ownership(uid: u32) -> Result<()> {
    let null_rdev = fs::metadata("/dev/null").ok().map(|m| m.rdev());
    let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
    let fds: [(i32, BorrowedFd<'_>); 3] =
        [(0, stdin.as_fd()), (1, stdout.as_fd()), (2, stderr.as_fd())];
    for (n, fd) in fds {
        let err = |source| IdentityError::StdioOwner { fd: n, uid, source };
        let st = match fstat(fd) {
            Ok(st) => st,
            Err(Errno::EBADF) => continue,
            Err(source) => return Err(err(source)),
        };
        let is_char = (st.st_mode & libc::S_IFMT) == libc::S_IFCHR;
        if st.st_uid == uid || (is_char && Some(st.st_rdev) == null_rdev) {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) => {}
            // EINVAL: the id is not mapped in the fd's file system; EPERM:
            // its owner is not mapped in our user namespace; EROFS: a
            // read-only mount.
            Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(source) => return Err(err(source)),
        }
    }
    Ok(())
}

/// Switches to the container user: stdio ownership, setgroups(additionalGids),
/// setresgid, then setresuid. With `keep_caps`, `PR_SET_KEEPCAPS` is on across
/// the uid change so the permitted set survives it (effective is still
/// cleared by the kernel); the caller then sets the sets with
/// [`crate::capabilities::ProcessCaps::apply`]. The bounding set must be
/// dropped before this call (it needs `CAP_SETPCAP`).
///
/// Where setgroups(2) is denied (`/proc/self/setgroups` says `deny` in a user
/// namespace) the call is skipped if there are no additional gids, as runc
/// does, and is an error otherwise.
pub fn switch_user(user: &User, keep_caps: bool) -> Result<()> {
    let (uid, gid) = (user.uid(), user.gid());
    let extra: Vec<u32> = user.additional_gids().clone().unwrap_or_default();

    fix_stdio_ownership(uid)?;

    if setgroups_allowed()? {
        let gids: Vec<Gid> = extra.iter().map(|g| Gid::from_raw(*g)).collect();
        // Always called, also with an empty list: it drops the supplementary
        // groups the runtime itself runs with (CVE-2023-25173).
        nix::unistd::setgroups(&gids).map_err(|source| IdentityError::SetId {
            syscall: "setgroups",
            ids: format!("{extra:?}"),
            source,
        })?;
    } else if !extra.is_empty() {
        return Err(IdentityError::SetgroupsDenied { gids: extra });
    }

    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|source| IdentityError::SetId {
        syscall: "setresgid",
        ids: format!("{gid}, {gid}, {gid}"),
        source,
    })?;

    if keep_caps {
        nix::sys::prctl::set_keepcaps(true).map_err(|source| IdentityError::Prctl {
            what: "PR_SET_KEEPCAPS, 1",
            source,
        })?;
    }
    let u = Uid::from_raw(uid);
    let res = nix::unistd::setresuid(u, u, u).map_err(|source| IdentityError::SetId {
        syscall: "setresuid",
        ids: format!("{uid}, {uid}, {uid}"),
        source,
    });
    if keep_caps {
        // Cleared again (execve clears it too) so nothing later relies on it.
        nix::sys::prctl::set_keepcaps(false).map_err(|source| IdentityError::Prctl {
            what: "PR_SET_KEEPCAPS, 0",
            source,
        })?;
    }
    res
}

/// The home directory of `uid` in `/etc/passwd` of the current root (call
/// after pivot_root), for `HOME` when process.env lacks it. runc falls back
/// to `/` when there is no entry: the caller does that with `None`.
pub fn home_for_uid(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    home_in_passwd(&passwd, uid)
}

fn home_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        // name:password:uid:gid:gecos:home:shell
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[2].trim().parse::<u32>().ok()? != uid {
            return None;
        }
        Some(fields[5].to_owned())
    })
}

// ------------------------------------------------------------ PATH lookup

/// The search path execvp(3) uses when `PATH` is unset (glibc's `_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

enum Candidate {
    Executable,
    Missing,
    Denied,
    Directory,
}

fn check_candidate(program: &str, path: &Path) -> Result<Candidate> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Candidate::Missing),
        // ENOTDIR: a PATH entry or a prefix of the path is a file.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(Candidate::Missing),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(Candidate::Denied),
        Err(source) => {
            return Err(IdentityError::Stat {
                program: program.to_owned(),
                path: path.to_owned(),
                source,
            })
        }
    };
    if meta.is_dir() {
        return Ok(Candidate::Directory);
    }
    if !meta.is_file() {
        return Ok(Candidate::Denied);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Ok(Candidate::Denied);
    }
    // AT_EACCESS: the check is for the effective ids, the ones execve uses.
    match nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    ) {
        Ok(()) => Ok(Candidate::Executable),
        // glibc makes this check with faccessat2(2), which a seccomp
        // allowlist older than Linux 5.8 does not name and so refuses with
        // EPERM (or ENOSYS); the kernel itself never answers an X_OK check
        // with either. The mode bits above said yes, and the exec decides.
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::ENOSYS) => Ok(Candidate::Executable),
        Err(_) => Ok(Candidate::Denied),
    }
}

/// Resolves `program` (`process.args[0]`) as execvp(3) would, inside the
/// container (call after pivot_root and the user switch): a name with a `/`
/// is used as is; otherwise each `PATH` entry is tried in order (an empty
/// entry is the working directory; `None` means execvp's default
/// `/bin:/usr/bin`), skipping entries that cannot be executed. Errors use
/// Docker's wording; [`IdentityError::exec_exit_code`] gives 127 or 126.
pub fn lookup_path(program: &str, env_path: Option<&str>) -> Result<PathBuf> {
    if program.is_empty() {
        return Err(IdentityError::EmptyProgram);
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match check_candidate(program, &path)? {
            Candidate::Executable => Ok(path),
            Candidate::Missing => Err(IdentityError::NoSuchFile {
                program: program.to_owned(),
            }),
            Candidate::Denied => Err(IdentityError::PermissionDenied {
                program: program.to_owned(),
            }),
            Candidate::Directory => Err(IdentityError::IsDirectory {
                program: program.to_owned(),
            }),
        };
    }
    let mut denied = false;
    for dir in env_path.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let path = Path::new(dir).join(program);
        match check_candidate(program, &path)? {
            Candidate::Executable => return Ok(path),
            Candidate::Denied => denied = true,
            Candidate::Missing | Candidate::Directory => {}
        }
    }
    // Like execvp: a match we may not run is reported over "not found".
    if denied {
        Err(IdentityError::PermissionDenied {
            program: program.to_owned(),
        })
    } else {
        Err(IdentityError::NotInPath {
            program: program.to_owned(),
        })
    }
}

/// Runs a test's body in a fresh copy of the test binary, for tests that
/// change the process's own identity, limits or terminal.
#[cfg(test)]
pub(crate) mod test_child {
    use std::process::Command;

    const VAR: &str = "BERTH_RUNTIME_TEST_CHILD";

    /// In the child started for test `name`: true, run the body. Elsewhere:
    /// runs the child (through `wrapper`, e.g. `unshare -r`, if given),
    /// asserts that it ran the test and passed, and returns false.
    pub(crate) fn here(name: &str, wrapper: &[&str]) -> bool {
        if std::env::var(VAR).as_deref() == Ok(name) {
            return true;
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(VAR, name)
            .output()
            .expect("spawn the test binary as a child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child run of {name} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stdout.contains("1 passed"),
            "child run of {name} did not run the test:\n{stdout}\n{stderr}"
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::ProcessCaps;
    use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, UserBuilder};
    use std::process::{Command, Stdio};

    fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .expect("build rlimit")
    }

    /// A child process that blocks reading its stdin until the guard drops.
    struct Cat(std::process::Child);
    impl Cat {
        fn start() -> Cat {
            Cat(Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn cat"))
        }
        fn pid(&self) -> Pid {
            Pid::from_raw(self.0.id() as i32)
        }
    }
    impl Drop for Cat {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn have_sys_resource() -> bool {
        caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .expect("capget")
    }

    #[test]
    fn rlimit_validation() {
        let e = validate_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 10, 5)])
            .expect_err("soft > hard");
        assert_eq!(
            e.to_string(),
            "process.rlimits: RLIMIT_NOFILE soft limit 10 is greater than its hard limit 5"
        );
        let e = validate_rlimits(&[
            rlimit(PosixRlimitType::RlimitCore, 1, 1),
            rlimit(PosixRlimitType::RlimitCore, 2, 2),
        ])
        .expect_err("duplicate");
        assert!(e
            .to_string()
            .contains("RLIMIT_CORE is given more than once"));
        validate_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 5, u64::MAX)]).expect("valid");
    }

    #[test]
    fn rlimit_names_from_json() {
        let v = serde_json::json!([{"type": "RLIMIT_FOO", "soft": 1, "hard": 2}]);
        let e = rlimits_from_json(&v).expect_err("unknown type");
        assert_eq!(
            e.to_string(),
            "process.rlimits: unknown rlimit type \"RLIMIT_FOO\""
        );
        let v = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                                   {"type": "RLIMIT_RTTIME", "hard": 7}]);
        let r = rlimits_from_json(&v).expect("valid rlimits");
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r[0].soft(), r[0].hard()), (1024, 4096));
        assert_eq!((r[1].soft(), r[1].hard()), (0, 7));
        assert_eq!(
            parse_rlimit_type("RLIMIT_MSGQUEUE").expect("known"),
            PosixRlimitType::RlimitMsgqueue
        );
    }

    #[test]
    fn rlimits_on_self() {
        if !test_child::here("identity::tests::rlimits_on_self", &[]) {
            return;
        }
        apply_rlimits(&[
            rlimit(PosixRlimitType::RlimitNofile, 512, 1000),
            rlimit(
                PosixRlimitType::RlimitCore,
                0,
                rustix::process::getrlimit(Resource::Core)
                    .maximum
                    .unwrap_or(u64::MAX),
            ),
        ])
        .expect("lower rlimits");
        let got = rustix::process::getrlimit(Resource::Nofile);
        assert_eq!((got.current, got.maximum), (Some(512), Some(1000)));
        assert_eq!(rustix::process::getrlimit(Resource::Core).current, Some(0));
        // Raising the hard limit again needs CAP_SYS_RESOURCE.
        let res = apply_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 512, 2000)]);
        if have_sys_resource() {
            res.expect("raise with CAP_SYS_RESOURCE");
        } else {
            let e = res.expect_err("raise without CAP_SYS_RESOURCE");
            assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
        }
    }

    #[test]
    fn rlimits_on_another_process() {
        let cat = Cat::start();
        apply_rlimits_to(
            cat.pid(),
            &[rlimit(PosixRlimitType::RlimitNofile, 256, 300)],
        )
        .expect("prlimit on cat");
        let limits =
            fs::read_to_string(format!("/proc/{}/limits", cat.pid())).expect("read limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("nofile line");
        let nums: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&nums[3..5], ["256", "300"], "{line}");
    }

    #[test]
    fn oom_score_adj() {
        let cat = Cat::start();
        set_oom_score_adj(Some(cat.pid()), 500).expect("raise oom_score_adj");
        let got =
            fs::read_to_string(format!("/proc/{}/oom_score_adj", cat.pid())).expect("read back");
        assert_eq!(got.trim(), "500");
        let e = set_oom_score_adj(Some(cat.pid()), 1001).expect_err("out of range");
        assert!(e.to_string().contains("outside the range"), "{e}");
        let res = set_oom_score_adj(Some(cat.pid()), -500);
        if have_sys_resource() {
            res.expect("lower with CAP_SYS_RESOURCE");
        } else {
            let e = res.expect_err("lower without CAP_SYS_RESOURCE");
            let msg = e.to_string();
            assert!(msg.contains("CAP_SYS_RESOURCE"), "{msg}");
            assert!(
                msg.contains(&format!("/proc/{}/oom_score_adj", cat.pid())),
                "{msg}"
            );
        }
    }

    #[test]
    fn no_new_privs_and_umask() {
        if !test_child::here("identity::tests::no_new_privs_and_umask", &[]) {
            return;
        }
        set_no_new_privs().expect("set no_new_privs");
        assert!(nix::sys::prctl::get_no_new_privs().expect("read no_new_privs"));
        set_umask(0o027);
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        assert_eq!(old.bits(), 0o027);
    }

    #[test]
    fn passwd_home() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n\
                      # comment\n\
                      broken line\n\
                      app:x:1000:1000::/home/app:/bin/sh\n";
        assert_eq!(home_in_passwd(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_in_passwd(passwd, 1000).as_deref(), Some("/home/app"));
        assert_eq!(home_in_passwd(passwd, 7), None);
        assert_eq!(home_for_uid(0).as_deref(), Some("/root"));
    }

    fn write_file(path: &Path, mode: u32) {
        fs::write(path, "#!/bin/sh\n").expect("write file");
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn path_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            fs::create_dir(d).expect("mkdir");
        }
        write_file(&a.join("tool"), 0o644);
        write_file(&b.join("tool"), 0o755);
        write_file(&a.join("plain"), 0o600);
        fs::create_dir(c.join("adir")).expect("mkdir adir");
        let path = format!("{}:{}:{}", a.display(), b.display(), c.display());

        // A non-executable match is skipped for a later executable one.
        assert_eq!(
            lookup_path("tool", Some(&path)).expect("found"),
            b.join("tool")
        );

        let e = lookup_path("nope", Some(&path)).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(e.exec_exit_code(), Some(127));

        let e = lookup_path("plain", Some(&path)).expect_err("not executable");
        assert_eq!(e.to_string(), "exec: \"plain\": permission denied");
        assert_eq!(e.exec_exit_code(), Some(126));

        // A directory in PATH is not a program.
        let e = lookup_path("adir", Some(&path)).expect_err("directory");
        assert_eq!(e.exec_exit_code(), Some(127));

        let abs = b.join("tool");
        let abs_s = abs.to_str().expect("utf-8 path");
        assert_eq!(lookup_path(abs_s, None).expect("absolute"), abs);
        let e = lookup_path(&format!("{}/missing", b.display()), None).expect_err("gone");
        assert!(e.to_string().contains("no such file or directory"), "{e}");
        assert_eq!(e.exec_exit_code(), Some(127));
        let e = lookup_path(c.join("adir").to_str().expect("utf-8"), None).expect_err("dir");
        assert!(e.to_string().ends_with("is a directory"), "{e}");
        assert_eq!(e.exec_exit_code(), Some(126));

        assert_eq!(
            lookup_path("sh", None).expect("sh in /bin:/usr/bin"),
            Path::new("/bin/sh")
        );
        assert!(matches!(
            lookup_path("", None),
            Err(IdentityError::EmptyProgram)
        ));
    }

    fn caps_of(list: &[Capability]) -> oci_spec::runtime::Capabilities {
        list.iter().copied().collect()
    }

    /// The init's sequence: bounding drop, user switch with keepcaps, then the
    /// other sets; an exec'd program then has the ambient capability.
    #[test]
    fn init_sequence_to_unprivileged_user() {
        if !test_child::here("identity::tests::init_sequence_to_unprivileged_user", &[]) {
            return;
        }
        let keep = caps_of(&[
            Capability::NetBindService,
            Capability::Kill,
            Capability::Chown,
        ]);
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(keep.clone())
            .permitted(keep.clone())
            .effective(caps_of(&[Capability::NetBindService, Capability::Kill]))
            .inheritable(caps_of(&[Capability::NetBindService]))
            .ambient(caps_of(&[Capability::NetBindService]))
            .build()
            .expect("build caps");
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1001u32)
            .additional_gids(vec![1002u32, 1003])
            .build()
            .expect("build user");

        let plan = ProcessCaps::resolve(Some(&spec)).expect("resolve caps");
        plan.drop_bounding().expect("drop bounding");
        switch_user(&user, true).expect("switch user");
        plan.apply().expect("apply caps");

        let ids = nix::unistd::getresuid().expect("getresuid");
        assert_eq!(
            (
                ids.real.as_raw(),
                ids.effective.as_raw(),
                ids.saved.as_raw()
            ),
            (1000, 1000, 1000)
        );
        let gids = nix::unistd::getresgid().expect("getresgid");
        assert_eq!(gids.effective.as_raw(), 1001);
        let mut groups: Vec<u32> = nix::unistd::getgroups()
            .expect("getgroups")
            .iter()
            .map(|g| g.as_raw())
            .collect();
        groups.sort();
        assert_eq!(groups, [1002, 1003]);
        let read = |set| caps::read(None, set).expect("read caps");
        assert_eq!(read(caps::CapSet::Bounding), plan.bounding);
        assert_eq!(read(caps::CapSet::Permitted), plan.permitted);
        assert_eq!(read(caps::CapSet::Effective), plan.effective);
        assert_eq!(read(caps::CapSet::Inheritable), plan.inheritable);
        assert_eq!(read(caps::CapSet::Ambient), plan.ambient);
        assert!(!nix::sys::prctl::get_keepcaps().expect("keepcaps"));
        // stdio (the parent's pipes) now belongs to the user, the group is kept.
        let out = fstat(io::stdout().as_fd()).expect("fstat stdout");
        assert_eq!((out.st_uid, out.st_gid), (1000, 0));

        // execve as uid 1000: permitted and effective become the ambient set.
        let status = Command::new("/bin/sh")
            .args(["-c", "grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status"])
            .output()
            .expect("run sh");
        let text = String::from_utf8_lossy(&status.stdout);
        let bit = format!("{:016x}", 1u64 << 10); // CAP_NET_BIND_SERVICE
        for line in text.lines() {
            assert!(line.ends_with(&bit), "{line} (want {bit})\n{text}");
        }
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    /// Without keepcaps, the uid change empties the permitted set.
    #[test]
    fn switch_user_without_keepcaps_loses_caps() {
        if !test_child::here(
            "identity::tests::switch_user_without_keepcaps_loses_caps",
            &[],
        ) {
            return;
        }
        let user = UserBuilder::default()
            .uid(65534u32)
            .gid(65534u32)
            .build()
            .expect("user");
        switch_user(&user, false).expect("switch user");
        assert!(caps::read(None, caps::CapSet::Permitted)
            .expect("read")
            .is_empty());
        assert_eq!(nix::unistd::getgroups().expect("getgroups"), []);
        // Cannot become root again.
        assert!(
            nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_err()
        );
    }

    /// In a user namespace whose setgroups is denied (`unshare -r` writes
    /// deny), an empty additionalGids list is fine and a non-empty one is an
    /// error that says why.
    #[test]
    fn setgroups_denied_in_user_namespace() {
        if !test_child::here(
            "identity::tests::setgroups_denied_in_user_namespace",
            &["unshare", "--user", "--map-root-user"],
        ) {
            return;
        }
        let state = fs::read_to_string("/proc/self/setgroups").expect("read setgroups");
        assert_eq!(state.trim(), "deny");
        let with_groups = UserBuilder::default()
            .uid(0u32)
            .gid(0u32)
            .additional_gids(vec![0u32])
            .build()
            .expect("user");
        let e = switch_user(&with_groups, true).expect_err("groups where setgroups is denied");
        assert!(e.to_string().contains("setgroups(2) is denied"), "{e}");
        let plain = UserBuilder::default()
            .uid(0u32)
            .gid(0u32)
            .build()
            .expect("user");
        switch_user(&plain, true).expect("no groups: setgroups skipped");
    }
}
