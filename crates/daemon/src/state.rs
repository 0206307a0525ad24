//! Container records and their persistence (`containers/<id>/config.v2.json`, atomic).

use std::path::Path;

use api_types::models::{ContainerConfig, HostConfig};
use monitor_protocol::RootfsMount;
use serde::{Deserialize, Serialize};

use crate::{io_err, DaemonError};

/// The file a container's record lives in.
pub const RECORD_FILE: &str = "config.v2.json";

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    Created,
    /// Its monitor runs it.
    Running,
    /// It ran and exited.
    Exited,
    /// Being removed.
    Removing,
}

/// A container's run state, as inspect shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The status.
    pub status: Status,
    /// The init's pid on the host while running.
    pub pid: i32,
    /// The last exit code.
    pub exit_code: i64,
    /// Why the last start failed, if it did.
    pub error: String,
    /// The last start (RFC 3339), or docker's zero time.
    pub started_at: String,
    /// The last exit (RFC 3339), or docker's zero time.
    pub finished_at: String,
    /// Whether the OOM killer struck in the last run.
    pub oom_killed: bool,
    /// Whether the container is paused (frozen).
    #[serde(default)]
    pub paused: bool,
    /// Waiting out the restart policy's back-off before the next start.
    #[serde(default)]
    pub restarting: bool,
    /// Its health, when it has a health check.
    #[serde(default)]
    pub health: Option<api_types::models::generated::Health>,
}

/// Docker's zero time, shown for events that have not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for RunState {
    fn default() -> Self {
        RunState {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
            paused: false,
            restarting: false,
            health: None,
        }
    }
}

/// Everything berthd keeps about a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The 64-hex-digit ID.
    pub id: String,
    /// The name, without docker's leading slash.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// The image as the client named it.
    pub image: String,
    /// The image ID (`sha256:…`).
    pub image_id: String,
    /// The program: entrypoint and command, resolved against the image.
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The container config as merged with the image's.
    pub config: ContainerConfig,
    /// The host config as the client sent it.
    pub host_config: HostConfig,
    /// The rootfs mount the image store described.
    pub rootfs: RootfsMount,
    /// The run state.
    pub state: RunState,
    /// How many times it was restarted by a policy.
    pub restart_count: i64,
    /// Stopped by the user (`docker stop`): the restart policy leaves it stopped.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The networks it was asked to join besides its `--network`, and how (`NetworkingConfig`
    /// at create, `docker network connect` later), by network name.
    #[serde(default)]
    pub endpoints_config:
        std::collections::HashMap<String, api_types::models::generated::EndpointSettings>,
    /// What networking gave it while it runs: endpoints, addresses, published ports.
    #[serde(default)]
    pub net: crate::networks::NetworkState,
    /// Disconnected from its `--network` (`docker network disconnect`): it joins only its
    /// other networks until connected to it again.
    #[serde(default)]
    pub primary_disconnected: bool,
    /// The mounts resolved at create (binds, volumes, tmpfs), in the order given.
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
}

/// One mount of a container, as resolved at create and shown by inspect's `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// The host path mounted (the volume's `_data` for volumes; empty for tmpfs).
    #[serde(default)]
    pub source: String,
    /// The path in the container, as given; resolved inside the rootfs by the runtime.
    pub destination: String,
    /// The volume's driver (volumes only).
    #[serde(default)]
    pub driver: String,
    /// The mode string as given (`ro`, `z`, …).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    pub rw: bool,
    /// The bind propagation (`rprivate` unless asked; empty for volumes).
    #[serde(default)]
    pub propagation: String,
    /// The image's content is not copied into a fresh volume (`nocopy`).
    #[serde(default)]
    pub nocopy: bool,
    /// An anonymous volume made for this container: `rm -v` and `--rm` remove it.
    #[serde(default)]
    pub anonymous: bool,
    /// The tmpfs mount options (tmpfs only).
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
}

/// Loads every record under `containers/`. A directory without a readable record (a create
/// interrupted before its record was written) is skipped with a warning, an unparsable record
/// with an error.
pub fn load_all(dir: &Path) -> Result<Vec<ContainerRecord>, DaemonError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path().join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<ContainerRecord>(&bytes) {
                Ok(r) => out.push(r),
                // Records are replaced atomically, so this is damage from outside berth:
                // one container is lost to it, not the daemon.
                Err(e) => tracing::error!(
                    "{}",
                    DaemonError::Record {
                        path,
                        message: e.to_string(),
                    }
                ),
            },
            Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
        }
    }
    Ok(out)
}

/// Saves a record atomically (temporary file, rename). `durable` also fsyncs it first: for what
/// must survive a power loss (a container's existence, its name, its configuration, a stop by
/// the user). Run-state changes (running, exited, paused) are not fsynced: a kill -9 cannot lose
/// a completed rename, and a power loss ends every container anyway, so an older state on disk
/// after one is corrected at the next start. That saves an fsync per start and per exit.
pub fn save(dir: &Path, record: &ContainerRecord, durable: bool) -> std::io::Result<()> {
    let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    crate::write_replace(&dir.join(RECORD_FILE), &json, durable)
}
