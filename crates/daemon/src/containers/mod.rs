//! The container service: create, start, stop, kill, wait, remove, attach, logs, list, inspect,
//! and the exit watcher that learns each exit from the container's monitor.
//!
//! This file holds the in-memory container (its record, the phase waiters watch) and the
//! registry of containers by ID and name, and maps the API's container calls onto the modules
//! below, one per concern.

mod attach;
mod create;
mod exit;
mod inspect;
mod lifecycle;
mod list;
mod logs;
mod names;
pub(crate) mod network_index;
mod records;
mod restore;
mod size;
mod start;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_server::{
    ApiError, AttachSession, ContainerBackend, ExitWait, JsonStream, LogStream, OutputChunk,
};
use api_types::models::*;
use api_types::query::*;
use tokio::sync::{mpsc, watch};

use crate::state::{ContainerRecord, Status};
use crate::Daemon;

pub(crate) use attach::{
    copy_input, detach_keys, until_detached, Detach, Escape, DEFAULT_DETACH_KEYS,
};
pub(crate) use network_index::NetworkIndex;

/// What waiters watch: a count of exits, so "the next exit" is well defined.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    exits: u64,
    running: bool,
    exit_code: i64,
    removed: bool,
}

/// A client attached before the container started: connected to the monitor at start.
struct PendingAttach {
    tx: mpsc::UnboundedSender<Result<OutputChunk, ApiError>>,
    stdin: Option<tokio::io::DuplexStream>,
    stdout: bool,
    stderr: bool,
    /// The key sequence that ends this attach without touching the container (a tty
    /// container's stdin only, as dockerd), and where to report it.
    detach: Option<(Vec<u8>, tokio::sync::oneshot::Sender<()>)>,
}

/// A container in memory.
pub struct Container {
    id: String,
    record: Mutex<ContainerRecord>,
    phase: watch::Sender<Phase>,
    pending: Mutex<Vec<PendingAttach>>,
    /// The last restart-policy delay, for the back-off.
    restart_delay: Mutex<Option<Duration>>,
    /// Serialises start and remove of this container.
    pub(crate) op: tokio::sync::Mutex<()>,
    /// The daemon's index of containers by network, kept in step with this record.
    network_index: Arc<Mutex<NetworkIndex>>,
}

impl Container {
    /// A container joining the registry, entered in the index of containers by network.
    fn new(record: ContainerRecord, network_index: &Arc<Mutex<NetworkIndex>>) -> Arc<Self> {
        lock(network_index).register(&record);
        let phase = Phase {
            exits: 0,
            running: record.state.status == Status::Running,
            exit_code: record.state.exit_code,
            removed: false,
        };
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            phase: watch::channel(phase).0,
            pending: Mutex::new(Vec::new()),
            restart_delay: Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
            network_index: network_index.clone(),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> ContainerRecord {
        self.record
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Changes the record in memory (the caller persists it).
    pub(crate) fn update_record(&self, f: impl FnOnce(&mut ContainerRecord)) -> ContainerRecord {
        self.update(f)
    }

    fn update(&self, f: impl FnOnce(&mut ContainerRecord)) -> ContainerRecord {
        let mut guard = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
        // Every endpoint attached or detached (start, exit, connect, disconnect) is a record
        // update: the index follows here, under the record's lock, so it never lags a record.
        lock(&self.network_index).update(&self.id, NetworkIndex::networks_of(&guard));
        guard.clone()
    }

    /// Replaces the host config (after `docker update`); returns the record.
    pub fn set_host_config(&self, host: HostConfig) -> ContainerRecord {
        self.update(|r| r.host_config = host)
    }

    /// How many times the container has exited (a run ends when this changes).
    pub fn exit_count(&self) -> u64 {
        self.phase.borrow().exits
    }

    /// Records the container's health; returns the record.
    pub fn set_health(&self, health: api_types::models::generated::Health) -> ContainerRecord {
        self.update(|r| r.state.health = Some(health))
    }

    /// Records whether the container is paused; returns the record.
    pub fn set_paused(&self, on: bool) -> ContainerRecord {
        self.update(|r| r.state.paused = on)
    }

    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Containers by ID (ordered, so an ID prefix is a range lookup) and by name.
#[derive(Default)]
pub struct Registry {
    by_id: BTreeMap<String, Arc<Container>>,
    by_name: HashMap<String, String>,
}

impl Registry {
    /// The image IDs of all containers (for image removal and listing).
    pub fn image_ids(&self) -> std::collections::HashSet<String> {
        self.by_id.values().map(|c| c.record().image_id).collect()
    }

    /// How many containers there are, and how many run.
    pub fn counts(&self) -> (usize, usize) {
        let running = self
            .by_id
            .values()
            .filter(|c| c.phase.borrow().running)
            .count();
        (self.by_id.len(), running)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl ContainerBackend for Daemon {
    async fn create(
        &self,
        query: ContainerCreateQuery,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        self.create_container(query, body).await
    }

    async fn inspect(&self, id: &str, size: bool) -> Result<ContainerInspectResponse, ApiError> {
        let c = self.inner.resolve(id)?;
        let r = c.record();
        let mut out = self.inner.inspect_record(&r);
        if size {
            let inner = self.inner.clone();
            let sizes = crate::blocking(move || {
                Ok(size::sizes(std::slice::from_ref(&r), &inner.image_sizes()))
            })
            .await?;
            if let Some((rw, root)) = sizes.values().next() {
                out.size_rw = Some(*rw);
                out.size_root_fs = Some(*root);
            }
        }
        Ok(out)
    }

    async fn list(&self, query: ContainerListQuery) -> Result<Vec<ContainerSummary>, ApiError> {
        self.list_containers(query).await
    }

    async fn start(&self, id: &str) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner.start_container(&c).await
    }

    async fn stop(&self, id: &str, query: ContainerStopQuery) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner
            .stop_container(&c, query.signal.as_deref(), query.timeout)
            .await
    }

    async fn restart(&self, id: &str, query: ContainerStopQuery) -> Result<(), ApiError> {
        self.restart_container(id, query).await
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ApiError> {
        self.kill_container(id, signal).await
    }

    async fn wait(&self, id: &str, condition: WaitCondition) -> Result<ExitWait, ApiError> {
        self.wait_container(id, condition).await
    }

    async fn remove(&self, id: &str, query: ContainerRemoveQuery) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        if query.link {
            return Err(ApiError::NotImplemented(
                "links are not supported by berthd".into(),
            ));
        }
        self.inner
            .remove_container(&c, query.force, query.volumes)
            .await
    }

    async fn logs(&self, id: &str, query: ContainerLogsQuery) -> Result<LogStream, ApiError> {
        self.container_logs(id, query).await
    }

    async fn attach(
        &self,
        id: &str,
        query: ContainerAttachQuery,
    ) -> Result<AttachSession, ApiError> {
        self.attach_container(id, query).await
    }

    async fn resize(&self, id: &str, size: ResizeQuery) -> Result<(), ApiError> {
        self.resize_tty(id, size).await
    }

    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner.top(&c, ps_args.as_deref()).await
    }

    async fn stats(
        &self,
        id: &str,
        query: ContainerStatsQuery,
    ) -> Result<JsonStream<ContainerStatsResponse>, ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner
            .stats(c, query.stream && !query.one_shot, self.inner.clone())
            .await
    }

    async fn rename(&self, id: &str, new_name: &str) -> Result<(), ApiError> {
        self.rename_container(id, new_name).await
    }

    async fn pause(&self, id: &str) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner.freeze(&c, true).await
    }

    async fn unpause(&self, id: &str) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner.freeze(&c, false).await
    }

    async fn update(
        &self,
        id: &str,
        body: ContainerUpdateBody,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        let c = self.inner.resolve(id)?;
        self.inner.update_container(&c, body).await?;
        Ok(ContainerUpdateResponse {
            warnings: Some(Vec::new()),
        })
    }

    async fn prune(&self, query: PruneQuery) -> Result<ContainerPruneResponse, ApiError> {
        self.prune_containers(query).await
    }
}
