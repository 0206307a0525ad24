//! The errors of volume operations and of mount specifications, worded as dockerd words them
//! where a client may match on the text.

use std::path::PathBuf;

/// A failed volume operation.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The name does not match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    #[error("create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// No volume has this name.
    #[error("get {name}: no such volume")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A driver other than `local` was asked for (berth has no volume plugins).
    #[error("create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found (berth has only the local driver)")]
    UnknownDriver {
        /// The volume.
        name: String,
        /// The driver asked for.
        driver: String,
    },
    /// Driver options (`--opt`) other than a bind of a host directory
    /// (`type=none,o=bind,device=/path`), which berthd does not mount yet.
    #[error("create {name}: volume driver options ({options}) are not supported by berthd yet: the local driver takes only type=none,o=bind,device=/absolute/path")]
    UnsupportedOptions {
        /// The volume.
        name: String,
        /// The options given, `key=value` comma-separated.
        options: String,
    },
    /// The host directory of a `type=none,o=bind` volume is missing when a container mounts it.
    #[error("error while mounting volume '{mountpoint}': failed to mount local volume: mount {device}:{mountpoint}, flags: 0x1000: no such file or directory")]
    MissingDevice {
        /// The directory the volume binds (`device=`).
        device: PathBuf,
        /// The volume's `_data`.
        mountpoint: PathBuf,
    },
    /// A volume exists under this name with another driver.
    #[error(
        "create {name}: a volume with the name {name} already exists with driver \"{existing}\""
    )]
    DriverConflict {
        /// The volume.
        name: String,
        /// Its driver.
        existing: String,
    },
    /// A file-system call on the volume directory failed.
    #[error("volume {name}: {op} {path}: {source}")]
    Io {
        /// The volume (or the store).
        name: String,
        /// The operation.
        op: &'static str,
        /// Its object.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A mount specification that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A `-v` string that does not parse.
    #[error("invalid volume specification: '{0}'")]
    InvalidSpec(String),
    /// An unknown or misplaced mode in a `-v` string.
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// A destination that is not absolute.
    #[error("invalid mount config for type \"{kind}\": invalid mount path: '{path}' mount path must be absolute")]
    RelativeDestination {
        /// `bind`, `volume` or `tmpfs`.
        kind: String,
        /// The destination given.
        path: String,
    },
    /// The destination `/`.
    #[error(
        "invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
    )]
    RootDestination {
        /// `bind`, `volume` or `tmpfs`.
        kind: String,
    },
    /// A `--mount type=bind` whose source is missing (dockerd creates it only for `-v`).
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    MissingBindSource(String),
    /// A bind source that is not absolute.
    #[error("invalid mount config for type \"bind\": invalid mount path: '{0}' mount path must be absolute")]
    RelativeSource(String),
    /// An unknown bind propagation.
    #[error("invalid mount config: invalid propagation mode: {0}")]
    InvalidPropagation(String),
}
