//! The runtime's error type: every variant names the object and the operation.

use std::path::PathBuf;

/// What went wrong in a runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A container id that runc would also refuse.
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId(String),
    /// `create` with an id already in use under this root.
    #[error("container {0} already exists")]
    Exists(String),
    /// No container of that id under this root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The bundle's config.json cannot be read or parsed.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with the JSON path of the bad field.
        message: String,
    },
    /// The config parses but asks for something invalid; the message names the field.
    #[error("config.json: {0}")]
    Invalid(String),
    /// The container is in the wrong state for the operation.
    #[error("container {id} is {status}: {message}")]
    State {
        /// The container.
        id: String,
        /// Its status now.
        status: String,
        /// What could not be done.
        message: String,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A syscall failed.
    #[error("{op}: {source}")]
    Sys {
        /// The syscall and its object.
        op: String,
        /// The errno.
        source: nix::Error,
    },
    /// The container's init process reported an error while setting up.
    #[error("container init: {0}")]
    Init(String),
    /// Cgroup set-up or control failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::Error),
    /// Rootfs set-up failed.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// A hook failed.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// Capabilities could not be parsed or applied.
    #[error(transparent)]
    Capabilities(#[from] crate::capabilities::CapabilityError),
    /// The process identity (user, rlimits, …) could not be applied.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The console could not be set up.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// The seccomp section is invalid or its filter could not be loaded.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// A security module label is refused on this host or could not be set.
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    /// Running as an unprivileged user: refused, or an id map could not be written.
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Sys`] for the syscall described by `op`.
    pub fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            op: op.into(),
            source,
        }
    }
}
