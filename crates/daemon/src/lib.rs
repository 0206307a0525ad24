//! berthd's services: the containers and images a Docker client sees, and their state.
//!
//! Owns: the container object model (records with their config, host config and run state,
//! names, ID prefixes), its persistence (one `config.v2.json` per container, replaced
//! atomically), the OCI config each container runs with ([`spec`]), the image service over the
//! image store, the events bus, and the implementations of the api-server backend traits
//! ([`Daemon`]). Containers are reached only through their monitor (one `berth-monitor`
//! process each, spoken to over its unix socket with the `monitor-protocol` messages), so
//! berthd can be killed and restarted without touching a running container.
//!
//! On disk (`--data-root`, default `/var/lib/berth`):
//! - `volumes/<name>/_data`, `volumes/<name>/opts.json`: named and anonymous volumes;
//! - `image/`: the image store (content, snapshots with the containers' writable layers);
//! - `containers/<id>/config.v2.json`: the container's record; `<id>-json.log` (and `.1`, `.2`,
//!   … after rotation): its log; `monitor-state.json`: what its monitor recorded (pid, exit);
//!   `hostname`, `hosts`: the files bind-mounted into it.
//!
//! In the exec root (`--exec-root`, default `/run/berth`): `berth.sock` (the API, by default),
//! `runtime/` (the runtime's state), `containers/<id>/` (the OCI bundle: `config.json`, `rootfs/`
//! where the monitor mounts the overlay, `monitor.json`), `s/<first 16 hex of the id>.sock`: the
//! monitor's socket (and `.tty`, the console socket while a `-t` container is made), kept short
//! because a unix socket path must fit in 108 bytes.
//!
//! Must never: link the runtime (it forks; berthd is multithreaded), or fork. May use:
//! api-types, api-server, image, monitor-protocol, tokio.
#![forbid(unsafe_code)]

mod containers;
mod events;
mod exec;
mod health;
mod images;
mod live;
mod monitor_client;
mod network_api;
pub mod networks;
mod restart;
pub mod spec;
mod state;
mod system;
mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use api_server::ApiError;

pub use state::{ContainerRecord, MountRecord, RunState};

/// How berthd was configured.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Persistent state (`--data-root`).
    pub data_root: PathBuf,
    /// Runtime state, sockets, bundles (`--exec-root`).
    pub exec_root: PathBuf,
    /// The `berth-monitor` binary.
    pub monitor_path: PathBuf,
    /// The OCI runtime containers use unless they name another: `berth` (in-process) or a
    /// name of `runtimes`.
    pub default_runtime: String,
    /// Other OCI runtime binaries by name (`--add-runtime NAME=PATH`).
    pub runtimes: std::collections::BTreeMap<String, PathBuf>,
    /// The init `--init` runs as the container's pid 1 (a static reaper such as tini-static,
    /// bind-mounted at /sbin/docker-init as dockerd does); `--init` is refused without one.
    pub init_path: Option<PathBuf>,
    /// The cgroup every container's cgroup is made under (`--cgroup-parent`, default `berth`).
    pub cgroup_parent: String,
    /// Registries pulled from and pushed to without certificate checks, falling back to plain
    /// http (`--insecure-registry`, `host[:port]` or a CIDR); loopback is always insecure.
    pub insecure_registries: Vec<String>,
    /// The default bridge, address pools, MTU and nameservers.
    pub network: networks::NetworkConfig,
}

/// A failure to open the daemon's state.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A directory or file of the daemon's state could not be made or read.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// Its object.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The image store could not be opened.
    #[error("image store {path}: {message}")]
    Images {
        /// Its root.
        path: PathBuf,
        /// The store's error.
        message: String,
    },
    /// Networking could not be set up (bridges, the nftables table, IPAM state).
    #[error("networking: {0}")]
    Network(String),
    /// The volume directory could not be opened.
    #[error("volume directory {path}: {message}")]
    Volumes {
        /// Its root.
        path: PathBuf,
        /// The volume store's error.
        message: String,
    },
    /// A container record could not be loaded.
    #[error("container record {path}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |source| DaemonError::Io { op, path, source }
}

/// berthd's state; implements every api-server backend trait.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: DaemonConfig,
    images: Arc<tokio::sync::RwLock<image::store::Store>>,
    containers: Mutex<containers::Registry>,
    /// Containers by the networks their records name (see [`containers::NetworkIndex`]).
    network_index: Arc<Mutex<containers::NetworkIndex>>,
    execs: Mutex<HashMap<String, Arc<exec::ExecEntry>>>,
    events: events::Bus,
    networks: Arc<networks::Networks>,
    volumes: volumes::Volumes,
}

impl Daemon {
    /// Opens (creating if needed) the data and exec roots, loads every container record, and
    /// re-attaches to the monitors of running containers (or records the exits they saw while
    /// berthd was down). Must be called inside a tokio runtime.
    pub async fn open(config: DaemonConfig) -> Result<Self, DaemonError> {
        for dir in [
            config.data_root.join("containers"),
            config.exec_root.join("containers"),
            config.exec_root.join("runtime"),
            config.exec_root.join("s"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        let image_root = config.data_root.join("image");
        let store = tokio::task::spawn_blocking({
            let root = image_root.clone();
            move || image::store::Store::open(&root)
        })
        .await
        .map_err(|e| DaemonError::Images {
            path: image_root.clone(),
            message: e.to_string(),
        })?
        .map_err(|e| DaemonError::Images {
            path: image_root.clone(),
            message: e.to_string(),
        })?;
        let records = state::load_all(&config.data_root.join("containers"))?;
        let networks = tokio::task::spawn_blocking({
            let root = config.data_root.clone();
            let net = config.network.clone();
            move || networks::Networks::open(&root, net)
        })
        .await
        .map_err(|e| DaemonError::Network(e.to_string()))??;
        let running: Vec<ContainerRecord> = records
            .iter()
            .filter(|r| r.state.status == state::Status::Running)
            .cloned()
            .collect();
        networks.release_stale(&running.iter().map(|r| r.id.clone()).collect());
        networks.restore_running(&running);
        let volume_root = config.data_root.join("volumes");
        let volumes = volumes::Volumes::open(&volume_root).map_err(|e| DaemonError::Volumes {
            path: volume_root.clone(),
            message: e.to_string(),
        })?;
        for r in &records {
            volumes.add_users(&r.id, &r.mounts);
        }
        let daemon = Daemon {
            inner: Arc::new(Inner {
                config,
                images: Arc::new(tokio::sync::RwLock::new(store)),
                containers: Mutex::new(containers::Registry::default()),
                network_index: Arc::default(),
                execs: Mutex::new(HashMap::new()),
                events: events::Bus::new(),
                networks: Arc::new(networks),
                volumes,
            }),
        };
        daemon.restore(records).await;
        Ok(daemon)
    }

    /// The daemon's configuration.
    pub fn config(&self) -> &DaemonConfig {
        &self.inner.config
    }
}

/// The image store, exclusively: called on a blocking thread only. A pull's download holds
/// the store shared (`read`) so other reads go on meanwhile; writers wait for it.
pub(crate) fn store_write(
    images: &tokio::sync::RwLock<image::store::Store>,
) -> tokio::sync::RwLockWriteGuard<'_, image::store::Store> {
    images.blocking_write()
}

/// The image store, shared: reads and containers' writable layers (which the snapshotter
/// makes and removes under `&self`, in per-container directories). Blocking threads only.
pub(crate) fn store_read(
    images: &tokio::sync::RwLock<image::store::Store>,
) -> tokio::sync::RwLockReadGuard<'_, image::store::Store> {
    images.blocking_read()
}

/// Runs blocking work (the image store) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a blocking task failed: {e}")))?
}

/// A new random 64-hex-digit ID, as docker makes them.
pub(crate) fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| ApiError::Internal(format!("open /dev/urandom: {e}")))?;
    std::io::Read::read_exact(&mut f, &mut bytes)
        .map_err(|e| ApiError::Internal(format!("read /dev/urandom: {e}")))?;
    // Docker avoids all-digit short IDs, which could be mistaken for numbers.
    let id = hex::encode(bytes);
    if id[..12].bytes().all(|b| b.is_ascii_digit()) {
        return new_id();
    }
    Ok(id)
}

/// Now, as the API writes times (RFC 3339 with nanoseconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Writes a file atomically: temporary file, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_replace(path, bytes, true)
}

/// Replaces a file by renaming a temporary one over it, fsyncing it first when `durable`.
pub(crate) fn write_replace(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A prune's `until`: a timestamp (RFC 3339 or Unix seconds) or a duration before now
/// (`24h`, `10m`, `30s`), in Unix seconds.
pub(crate) fn until_seconds(v: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::InvalidParameter(format!("invalid filter 'until={v}'"));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    if let Ok(secs) = v.split('.').next().unwrap_or(v).parse::<i64>() {
        return Ok(secs);
    }
    let unit = v.chars().last().ok_or_else(bad)?;
    let n: f64 = v[..v.len() - 1].parse().map_err(|_| bad())?;
    let secs = match unit {
        'h' => n * 3600.0,
        'm' => n * 60.0,
        's' => n,
        _ => return Err(bad()),
    };
    Ok(chrono::Utc::now().timestamp() - secs as i64)
}
