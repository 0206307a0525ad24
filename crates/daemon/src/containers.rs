//! The container service: create, start, stop, kill, wait, remove, attach, logs, list, inspect,
//! and the exit watcher that learns each exit from the container's monitor.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_server::{
    ApiError, AttachSession, ContainerBackend, ExitWait, JsonStream, LogStream, OutputChunk,
    OutputStream,
};
use api_types::models::generated::{
    ContainerSummaryHostConfig, ContainerSummaryNetworkSettings, DriverData, HealthStatusEnum,
    NetworkSettings,
};
use api_types::models::*;
use api_types::query::*;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::{
    ExitStatus, FrameKind, LogEntry, MonitorConfig, MonitorState, Request, Response, RootfsMount,
    PROTOCOL_VERSION,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use crate::monitor_client::{self, Connection};
use crate::state::{self, ContainerRecord, RunState, Status};
use crate::{blocking, now, spec, Daemon, Inner};

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
}

impl Container {
    fn new(record: ContainerRecord) -> Arc<Self> {
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

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zealous", "bold",
];
const NOUNS: &[&str] = &[
    "anchor",
    "bollard",
    "cargo",
    "dock",
    "ferry",
    "galley",
    "harbor",
    "jetty",
    "keel",
    "lighthouse",
    "mooring",
    "pier",
    "quay",
    "rudder",
    "schooner",
    "tugboat",
    "wharf",
    "yacht",
    "buoy",
    "hull",
];

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker's human duration ("Less than a second", "5 seconds", "About a minute", …).
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = d.num_minutes();
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = d.num_hours();
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    let days = h / 24;
    if days < 14 {
        return format!("{days} days");
    }
    if days < 60 {
        return format!("{} weeks", days / 7);
    }
    if days < 730 {
        return format!("{} months", days / 30);
    }
    format!("{} years", days / 365)
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    let bad = || ApiError::InvalidParameter(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|sig| sig as i32)
            .map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad())
}

fn state_status(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
    }
}

/// The status text `docker ps` shows.
fn status_text(r: &ContainerRecord) -> String {
    let now = chrono::Utc::now();
    let since = |t: &str| {
        parse_time(t)
            .map(|t| human_duration(now - t))
            .unwrap_or_default()
    };
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running if r.state.paused => {
            format!("Up {} (Paused)", since(&r.state.started_at))
        }
        Status::Running => {
            let health = match r.state.health.as_ref().and_then(|h| h.status) {
                Some(HealthStatusEnum::STARTING) => " (health: starting)",
                Some(HealthStatusEnum::HEALTHY) => " (healthy)",
                Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(&r.state.started_at))
        }
        Status::Exited if r.state.restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Removing => "Removal In Progress".into(),
    }
}

fn command_text(r: &ContainerRecord) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().cloned());
    parts.join(" ")
}

/// Log options (`--log-opt`), checked at create as dockerd checks them.
fn log_options(host: &HostConfig) -> Result<(u64, u32), ApiError> {
    let Some(lc) = &host.log_config else {
        return Ok((0, 1));
    };
    match lc.typ.as_deref() {
        None | Some("") | Some("json-file") => {}
        Some(other) => {
            return Err(ApiError::NotImplemented(format!(
                "log driver {other} is not supported by berthd yet (only json-file)"
            )))
        }
    }
    let mut max_size = 0u64;
    let mut max_file = 1u32;
    for (k, v) in lc.config.iter().flatten() {
        match k.as_str() {
            "max-size" => {
                max_size = parse_size(v).ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "invalid max-size {v:?}: expected a size like 10m"
                    ))
                })?
            }
            "max-file" => {
                max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "invalid max-file {v:?}: expected a number of at least 1"
                    ))
                })?
            }
            other => {
                return Err(ApiError::InvalidParameter(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )))
            }
        }
    }
    if max_file > 1 && max_size == 0 {
        return Err(ApiError::InvalidParameter(
            "max-file cannot be set without max-size".into(),
        ));
    }
    Ok((max_size, max_file))
}

/// A docker size (`10k`, `10m`, `1g`, plain bytes).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

impl Inner {
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }
    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }
    /// The monitor's socket: short (`<exec-root>/s/<16 hex>.sock`), because a unix socket's
    /// path must fit in 108 bytes and the bundle's path is long.
    pub(crate) fn socket(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("s")
            .join(format!("{}.sock", &id[..16.min(id.len())]))
    }
    fn state_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor-state.json")
    }
    fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The runtime a container asks for, checked: `berth` (also for `runc` unless a runtime
    /// of that name was added), or a name given to `--add-runtime`.
    fn runtime_name(&self, asked: Option<&str>) -> Result<String, ApiError> {
        let name = asked
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.config.default_runtime);
        if self.config.runtimes.contains_key(name) || name == "berth" {
            return Ok(name.to_string());
        }
        if name == "runc" {
            return Ok("berth".into());
        }
        Err(ApiError::InvalidParameter(format!(
            "unknown or invalid runtime name: {name}"
        )))
    }

    fn runtime_binary(&self, name: Option<&str>) -> Option<monitor_protocol::RuntimeBinary> {
        let name = name?;
        let path = self.config.runtimes.get(name)?;
        Some(monitor_protocol::RuntimeBinary {
            path: path.clone(),
            root: self.config.exec_root.join("runtimes").join(name),
        })
    }

    /// Finds a container by full ID, name or unique ID prefix.
    pub(crate) fn resolve(&self, name: &str) -> Result<Arc<Container>, ApiError> {
        let reg = lock(&self.containers);
        let key = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = reg.by_id.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = reg.by_name.get(key) {
            if let Some(c) = reg.by_id.get(id) {
                return Ok(c.clone());
            }
        }
        if !key.is_empty() {
            let mut range = reg
                .by_id
                .range(key.to_string()..)
                .take_while(|(id, _)| id.starts_with(key));
            if let Some((_, c)) = range.next() {
                if range.next().is_some() {
                    return Err(ApiError::InvalidParameter(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(c.clone());
            }
        }
        Err(ApiError::no_such_container(name))
    }

    /// Every container.
    pub(crate) fn all_containers(&self) -> Vec<Arc<Container>> {
        lock(&self.containers).by_id.values().cloned().collect()
    }

    pub(crate) fn persist_record(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.persist(record)
    }

    pub(crate) fn container_event(&self, action: &str, r: &ContainerRecord) {
        self.event(action, r, &[]);
    }

    pub(crate) fn container_event_with(
        &self,
        action: &str,
        r: &ContainerRecord,
        extra: &[(&str, String)],
    ) {
        self.event(action, r, extra);
    }

    /// Saves a record durably (configuration, existence, a user's stop).
    fn persist(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.save_record(record, true)
    }

    /// Saves a run-state change (not fsynced; see [`state::save`]).
    pub(crate) fn persist_state(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.save_record(record, false)
    }

    fn save_record(&self, record: &ContainerRecord, durable: bool) -> Result<(), ApiError> {
        state::save(&self.container_dir(&record.id), record, durable).map_err(|e| {
            ApiError::Internal(format!(
                "container {}: save its record in {}: {e}",
                record.id,
                self.container_dir(&record.id).display()
            ))
        })
    }

    fn event(&self, action: &str, r: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attrs: HashMap<String, String> = r.config.labels.clone().unwrap_or_default();
        attrs.insert("name".into(), r.name.clone());
        attrs.insert("image".into(), r.image.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, action, &r.id, attrs);
    }

    /// Removes what a run left in the exec root: the bundle's files, and the rootfs mount if
    /// its monitor could not unmount it. Never deletes through a mount: `rmdir` only.
    fn clean_bundle(&self, id: &str) {
        let dir = self.bundle_dir(id);
        let rootfs = dir.join("rootfs");
        match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => tracing::warn!("container {id}: unmount {}: {e}", rootfs.display()),
        }
        for f in [
            "config.json",
            "monitor.json",
            "runtime.log",
            "init.pid",
            "resources.json",
        ] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let socket = self.socket(id);
        let _ = std::fs::remove_file(socket.with_extension("tty"));
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_dir(&dir);
    }

    /// Records an exit seen by the monitor (or reconstructed when it is gone).
    fn on_exit(self: &Arc<Self>, c: &Arc<Container>, exit: ExitStatus) {
        let net = c.record().net;
        self.networks.release(&c.id, &net);
        let record = c.update(|r| {
            r.net = Default::default();
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = exit.code as i64;
            r.state.finished_at = exit.finished_at.clone();
            r.state.oom_killed = exit.oom_killed;
            r.state.paused = false;
        });
        if let Err(e) = self.persist_state(&record) {
            tracing::error!("{e}");
        }
        self.clean_bundle(&c.id);
        if exit.oom_killed {
            self.event("oom", &record, &[]);
        }
        self.event("die", &record, &[("exitCode", exit.code.to_string())]);
        c.phase.send_modify(|p| {
            p.exits += 1;
            p.running = false;
            p.exit_code = exit.code as i64;
        });
        if record.host_config.auto_remove == Some(true) {
            self.auto_remove(c);
        } else if crate::restart::should_restart(&record, exit.code as i64) {
            let ran = match (
                parse_time(&record.state.started_at),
                parse_time(&exit.finished_at),
            ) {
                (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            };
            let record = c.update(|r| r.state.restarting = true);
            let _ = self.persist_state(&record);
            let delay = {
                let mut d = lock(&c.restart_delay);
                let next = crate::restart::next_delay(*d, ran);
                *d = Some(next);
                next
            };
            let inner = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                // The policy's back-off delay (docker's), not a wait for an event.
                tokio::time::sleep(delay).await;
                let record = c.record();
                if record.manually_stopped
                    || c.phase.borrow().removed
                    || record.state.status != Status::Exited
                {
                    let record = c.update(|r| r.state.restarting = false);
                    let _ = inner.persist_state(&record);
                    return;
                }
                match inner.start_container(&c).await {
                    Ok(()) => {
                        let record = c.update(|r| r.restart_count += 1);
                        let _ = inner.persist_state(&record);
                        inner.event("restart", &record, &[]);
                    }
                    Err(e) => {
                        let record = c.update(|r| r.state.restarting = false);
                        let _ = inner.persist_state(&record);
                        tracing::warn!("container {}: restart policy: {e}", c.id)
                    }
                }
            });
        }
    }

    /// The exit the monitor left in its state file, or, if the monitor is gone without one,
    /// an exit that says so.
    fn exit_from_state_file(&self, id: &str) -> Option<ExitStatus> {
        let path = self.state_file(id);
        let state: Option<MonitorState> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(exit) = state.as_ref().and_then(|s| s.exit.clone()) {
            return Some(exit);
        }
        let alive = state.as_ref().is_some_and(|s| {
            s.monitor_pid > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.monitor_pid), None).is_ok()
        });
        (!alive).then(|| ExitStatus {
            code: 255,
            finished_at: now(),
            oom_killed: false,
        })
    }

    /// Waits for the answer to a `Wait` sent to the monitor, then records the exit.
    fn watch_exit(self: &Arc<Self>, c: Arc<Container>, pending: monitor_client::Pending) {
        let inner = self.clone();
        tokio::spawn(async move {
            let exit = match pending.answer().await {
                Ok(Connection {
                    response: Response::Exited(exit),
                    ..
                }) => Some(exit),
                Ok(other) => {
                    tracing::warn!(
                        "container {}: monitor answered wait with {:?}",
                        c.id,
                        other.response
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!("container {}: {e}", c.id);
                    None
                }
            };
            let exit = exit
                .or_else(|| inner.exit_from_state_file(&c.id))
                .unwrap_or(ExitStatus {
                    code: 255,
                    finished_at: now(),
                    oom_killed: false,
                });
            inner.on_exit(&c, exit);
        });
    }

    async fn send_signal(&self, c: &Container, signal: i32) -> Result<(), ApiError> {
        monitor_client::call(&self.socket(&c.id), &c.id, Request::Kill { signal })
            .await
            .map(|_| ())
    }

    /// Waits until the container has exited after `exits` exits, for at most `limit`.
    async fn wait_exit(c: &Container, exits: u64, limit: Option<Duration>) -> bool {
        let mut rx = c.phase.subscribe();
        let done = rx.wait_for(|p| p.exits > exits || !p.running);
        match limit {
            Some(l) => matches!(tokio::time::timeout(l, done).await, Ok(Ok(_))),
            None => done.await.is_ok(),
        }
    }

    async fn stop_container(
        &self,
        c: &Container,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::NotModified);
        }
        let exits = c.phase.borrow().exits;
        let record = c.update(|r| r.manually_stopped = true);
        self.persist(&record)?;
        let sig = parse_signal(
            signal
                .or(record.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let timeout = timeout.or(record.config.stop_timeout).unwrap_or(10);
        if self.send_signal(c, sig).await.is_err() {
            // The monitor is gone or going: its exit is on the way.
        }
        if record.state.paused {
            // A frozen process cannot act on a signal: thaw it (dockerd does the same).
            let _ = monitor_client::call(&self.socket(&c.id), &c.id, Request::Resume).await;
        }
        let limit = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
        if Self::wait_exit(c, exits, limit).await {
            return Ok(());
        }
        let _ = self.send_signal(c, 9).await;
        if Self::wait_exit(c, exits, Some(Duration::from_secs(30))).await {
            Ok(())
        } else {
            Err(ApiError::Internal(format!(
                "container {}: did not exit 30 s after SIGKILL",
                c.id
            )))
        }
    }

    /// Removes a container; with `volumes` (`rm -v`, `--rm`) its anonymous volumes too, when
    /// no other container uses them.
    pub(crate) async fn remove_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        let record = c.record();
        if c.phase.borrow().removed {
            return Ok(());
        }
        match record.state.status {
            Status::Running if !force => {
                return Err(ApiError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    record.name
                )))
            }
            Status::Running => {
                let exits = c.phase.borrow().exits;
                let _ = self.send_signal(c, 9).await;
                if !Self::wait_exit(c, exits, Some(Duration::from_secs(30))).await {
                    return Err(ApiError::Internal(format!(
                        "container {}: did not exit 30 s after SIGKILL",
                        c.id
                    )));
                }
            }
            Status::Removing => {}
            _ => {}
        }
        let record = c.update(|r| r.state.status = Status::Removing);
        let _ = self.persist_state(&record);
        self.clean_bundle(&c.id);
        let images = self.images.clone();
        let id = c.id.clone();
        let mut failures = Vec::new();
        if let Err(e) = blocking(move || {
            crate::store_read(&images)
                .remove_container(&id)
                .map_err(|e| {
                    ApiError::Internal(format!("container {id}: remove its writable layer: {e}"))
                })
        })
        .await
        {
            failures.push(e.to_string());
        }
        let dir = self.container_dir(&c.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                failures.push(format!("remove {}: {e}", dir.display()));
            }
        }
        {
            let mut reg = lock(&self.containers);
            reg.by_id.remove(&c.id);
            if reg.by_name.get(&record.name) == Some(&c.id) {
                reg.by_name.remove(&record.name);
            }
        }
        crate::exec::forget(self, &c.id);
        let inner = self.clone();
        let (cid, mounts) = (c.id.clone(), record.mounts.clone());
        match blocking(move || Ok(inner.release_volumes(&cid, &mounts, volumes))).await {
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(e.to_string()),
        }
        c.phase.send_modify(|p| p.removed = true);
        self.event("destroy", &record, &[]);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Internal(failures.join("; ")))
        }
    }

    /// Connects an attached client to the running container's monitor.
    async fn connect_attach(&self, c: &Container, a: PendingAttach) -> Result<(), ApiError> {
        let conn = monitor_client::connect(
            &self.socket(&c.id),
            &c.id,
            Request::Attach {
                stdout: a.stdout,
                stderr: a.stderr,
                stdin: a.stdin.is_some(),
            },
        )
        .await?;
        if let Response::Error { message } = conn.response {
            return Err(ApiError::Internal(message));
        }
        let Connection {
            mut reader,
            mut writer,
            ..
        } = conn;
        let tx = a.tx;
        tokio::spawn(async move {
            while let Ok(Some((kind, data))) = monitor_client::next_frame(&mut reader).await {
                let stream = match kind {
                    FrameKind::Stderr => StdStream::Stderr,
                    _ => StdStream::Stdout,
                };
                if tx
                    .send(Ok(OutputChunk {
                        stream,
                        data: Bytes::from(data),
                    }))
                    .is_err()
                {
                    break;
                }
            }
        });
        if let Some(mut input) = a.stdin {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut input, &mut writer).await;
                let _ = writer.shutdown().await;
            });
        } else {
            // Kept open: closing it would read as nothing, but the monitor ignores input here.
            tokio::spawn(async move {
                let _keep = writer;
                std::future::pending::<()>().await
            });
        }
        Ok(())
    }

    /// Records a start that failed before the user's program ran: the error and exit code in
    /// the record, streams of clients attached for this start ended, waiters woken as by an
    /// exit (dockerd does the same, so `docker run` returns), and `--rm` honoured.
    fn failed_start(self: &Arc<Self>, c: &Arc<Container>, message: &str, code: i64) {
        let record = c.update(|r| {
            r.state.error = message.to_string();
            r.state.exit_code = code;
        });
        let _ = self.persist_state(&record);
        self.clean_bundle(&c.id);
        lock(&c.pending).clear();
        c.phase.send_modify(|p| {
            p.exits += 1;
            p.exit_code = code;
        });
        if record.host_config.auto_remove == Some(true) {
            self.auto_remove(c);
        }
    }

    /// `--rm`: removes the container (and its anonymous volumes) in the background.
    fn auto_remove(self: &Arc<Self>, c: &Arc<Container>) {
        let inner = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.remove_container(&c, true, true).await {
                tracing::warn!("container {}: auto-remove: {e}", c.id);
            }
        });
    }

    async fn start_container(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        let record = c.record();
        match record.state.status {
            Status::Running => return Err(ApiError::NotModified),
            Status::Removing => {
                return Err(ApiError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        let id = c.id.clone();
        let bundle = self.bundle_dir(&id);
        let dir = self.container_dir(&id);
        let io = |what: &str, e: std::io::Error| {
            ApiError::Internal(format!("container {id}: {what}: {e}"))
        };
        std::fs::create_dir_all(&bundle)
            .map_err(|e| io(&format!("create {}", bundle.display()), e))?;
        let netns_of = |other: &str| -> Result<(PathBuf, PathBuf), ApiError> {
            let o = self.resolve(other)?.record();
            if o.state.status != Status::Running {
                return Err(ApiError::Conflict(format!(
                    "cannot join network namespace of a non running container: {}",
                    o.id
                )));
            }
            Ok((
                PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)),
                self.container_dir(&o.id),
            ))
        };
        let joined = match record
            .host_config
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            Some(other) => Some(netns_of(other)?),
            None => None,
        };
        let networks = self.networks.clone();
        let rec = record.clone();
        let attachment = match blocking(move || networks.attach(&rec)).await {
            Ok(a) => a,
            Err(e) => {
                self.failed_start(c, &e.to_string(), 128);
                return Err(e);
            }
        };
        let net_state = attachment.state.clone();
        let record = c.update(|r| r.net = net_state);
        let release = |this: &Self| {
            c.update(|r| r.net = Default::default());
            this.networks.release(&id, &record.net);
        };
        let files = if joined.is_none() {
            let networks = self.networks.clone();
            let (rec, d, dns) = (record.clone(), dir.clone(), attachment.embedded_dns);
            let hostname = spec::hostname(&record);
            networks.write_name_files(&rec, &hostname, &d, dns)
        } else {
            Ok(())
        };
        let built = files.and_then(|_| {
            spec::build(
                &record,
                &self.config.cgroup_parent,
                self.config.init_path.as_deref(),
                &spec::NetJoin {
                    netns: joined.as_ref().map(|(p, _)| p.as_path()),
                    files_dir: joined.as_ref().map(|(_, d)| d.as_path()).unwrap_or(&dir),
                },
            )
        });
        let config = match built {
            Ok(config) => config,
            Err(e) => {
                release(self);
                self.failed_start(c, &e.to_string(), 128);
                return Err(e);
            }
        };
        let spawned = async {
            let config_json = serde_json::to_vec_pretty(&config)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            std::fs::write(bundle.join("config.json"), config_json)
                .map_err(|e| io("write config.json", e))?;
            let _ = std::fs::remove_file(self.state_file(&id));
            let (max_size, max_files) = log_options(&record.host_config)?;
            let mc = MonitorConfig {
                version: PROTOCOL_VERSION,
                id: id.clone(),
                bundle: bundle.clone(),
                runtime_root: self.config.exec_root.join("runtime"),
                rootfs: record.rootfs.clone(),
                log_path: self.log_path(&id),
                log_max_size: max_size,
                log_max_files: max_files,
                state_path: self.state_file(&id),
                socket_path: self.socket(&id),
                open_stdin: record.config.open_stdin == Some(true),
                stdin_once: record.config.stdin_once == Some(true),
                tty: record.config.tty == Some(true),
                runtime: self.runtime_binary(record.host_config.runtime.as_deref()),
                interfaces: attachment.interfaces,
                own_mount_namespace: !record
                    .mounts
                    .iter()
                    .any(|m| m.propagation.contains("shared")),
            };
            let mc_path = bundle.join("monitor.json");
            std::fs::write(
                &mc_path,
                serde_json::to_vec(&mc).map_err(|e| ApiError::Internal(e.to_string()))?,
            )
            .map_err(|e| io("write monitor.json", e))?;
            // The monitor's stdin is a lifeline: berthd holds the other end until the container
            // is started, so a monitor whose berthd died before the start sees end-of-file and
            // removes the container instead of waiting for a start that will never come.
            let mut child = tokio::process::Command::new(&self.config.monitor_path)
                .arg(&mc_path)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| io(&format!("run {}", self.config.monitor_path.display()), e))?;
            let lifeline = child.stdin.take();
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| io(&format!("run {}", self.config.monitor_path.display()), e))?;
            Ok::<_, ApiError>((out, lifeline))
        }
        .await;
        let (out, lifeline) = match spawned {
            Ok(x) => x,
            Err(e) => {
                release(self);
                self.failed_start(c, &e.to_string(), 128);
                return Err(e);
            }
        };
        if !out.status.success() {
            release(self);
            let cause = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let code = if cause.contains("executable file not found")
                || cause.contains("no such file or directory")
            {
                127
            } else if cause.contains("permission denied") {
                126
            } else {
                128
            };
            let message = format!(
                "failed to create task for container: OCI runtime create failed: {cause}: unknown"
            );
            self.failed_start(c, &message, code);
            return Err(if code == 128 {
                ApiError::Internal(message)
            } else {
                ApiError::InvalidParameter(message)
            });
        }
        let socket = self.socket(&id);
        let pending: Vec<PendingAttach> = std::mem::take(&mut *lock(&c.pending));
        for a in pending {
            if let Err(e) = self.connect_attach(c, a).await {
                tracing::warn!("container {id}: attach: {e}");
            }
        }
        let waiter = monitor_client::send(&socket, &id, Request::Wait).await;
        let started = monitor_client::call(&socket, &id, Request::Start).await;
        drop(lifeline);
        let failed = match started {
            Ok(Response::Started { pid }) => Ok(pid),
            Ok(other) => Err(ApiError::Internal(format!(
                "container {id}: monitor answered start with {other:?}"
            ))),
            Err(e) => Err(e),
        };
        let pid = match failed {
            Ok(pid) => pid,
            Err(e) => {
                // The made container is killed; its exit is recorded like any other, so
                // waiters return and the monitor's cleanup is seen.
                let _ = self.send_signal(c, 9).await;
                if let Ok(w) = waiter {
                    self.watch_exit(c.clone(), w);
                }
                return Err(e);
            }
        };
        let record = c.update(|r| {
            r.manually_stopped = false;
            r.state = RunState {
                status: Status::Running,
                pid,
                exit_code: 0,
                error: String::new(),
                started_at: now(),
                finished_at: r.state.finished_at.clone(),
                oom_killed: false,
                paused: false,
                restarting: false,
                health: None,
            };
        });
        self.persist_state(&record)?;
        c.phase.send_modify(|p| p.running = true);
        // Only now, after the record says Running, is the exit read: an exit that came
        // first waits in the socket, so it can never be overwritten by this start.
        crate::health::start(self.clone(), c.clone(), c.exit_count());
        match waiter {
            Ok(w) => self.watch_exit(c.clone(), w),
            Err(e) => tracing::warn!("container {id}: cannot watch its exit: {e}"),
        }
        self.event("start", &record, &[]);
        Ok(())
    }

    fn inspect_record(&self, r: &ContainerRecord) -> ContainerInspectResponse {
        let mut data = HashMap::new();
        for o in &r.rootfs.options {
            for (k, key) in [
                ("lowerdir=", "LowerDir"),
                ("upperdir=", "UpperDir"),
                ("workdir=", "WorkDir"),
            ] {
                if let Some(v) = o.strip_prefix(k) {
                    data.insert(key.to_string(), v.to_string());
                }
            }
        }
        data.insert(
            "MergedDir".into(),
            self.bundle_dir(&r.id).join("rootfs").display().to_string(),
        );
        let dir = self.container_dir(&r.id);
        let mut config = r.config.clone();
        config.image = Some(r.image.clone());
        if config.hostname.as_ref().is_none_or(|h| h.is_empty()) {
            config.hostname = Some(spec::hostname(r));
        }
        ContainerInspectResponse {
            id: Some(r.id.clone()),
            created: Some(r.created.clone()),
            path: Some(r.path.clone()),
            args: Some(r.args.clone()),
            state: Some(ContainerState {
                status: Some(if r.state.paused {
                    ContainerStateStatusEnum::PAUSED
                } else if r.state.restarting {
                    ContainerStateStatusEnum::RESTARTING
                } else {
                    state_status(r.state.status)
                }),
                running: Some(r.state.status == Status::Running),
                paused: Some(r.state.paused),
                restarting: Some(r.state.restarting),
                oom_killed: Some(r.state.oom_killed),
                dead: Some(false),
                pid: Some(r.state.pid as i64),
                exit_code: Some(r.state.exit_code),
                error: Some(r.state.error.clone()),
                started_at: Some(r.state.started_at.clone()),
                finished_at: Some(r.state.finished_at.clone()),
                health: r.state.health.clone(),
            }),
            image: Some(r.image_id.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            network_settings: Some(NetworkSettings {
                sandbox_id: Some(String::new()),
                sandbox_key: Some(
                    if r.state.status == Status::Running
                        && r.host_config.network_mode.as_deref() != Some("host")
                    {
                        format!("/proc/{}/ns/net", r.state.pid)
                    } else {
                        String::new()
                    },
                ),
                ports: Some(crate::networks::port_map(r)),
                networks: Some(crate::networks::endpoint_settings(r, &self.networks)),
            }),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(self.log_path(&r.id).display().to_string()),
            name: Some(format!("/{}", r.name)),
            restart_count: Some(r.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            host_config: Some(r.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data,
            }),
            mounts: Some(crate::volumes::mount_points(&r.mounts)),
            config: Some(config),
            ..Default::default()
        }
    }
}

fn output_stream(rx: mpsc::UnboundedReceiver<Result<OutputChunk, ApiError>>) -> OutputStream {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

impl Daemon {
    /// Registers the records loaded at start-up and reconnects to the monitors of running
    /// containers (or records the exits they saw while berthd was down).
    pub(crate) async fn restore(&self, records: Vec<ContainerRecord>) {
        let inner = &self.inner;
        for record in records {
            if record.rootfs.typ.is_empty() {
                // A create cut off by a crash: no one was told of this container.
                let images = inner.images.clone();
                let id = record.id.clone();
                let _ = blocking(move || {
                    let _ = crate::store_read(&images).remove_container(&id);
                    Ok(())
                })
                .await;
                let _ = std::fs::remove_dir_all(inner.container_dir(&record.id));
                for f in inner.release_volumes(&record.id, &record.mounts, true) {
                    tracing::warn!("container {}: {f}", record.id);
                }
                continue;
            }
            let status = record.state.status;
            let c = Container::new(record.clone());
            {
                let mut reg = lock(&inner.containers);
                reg.by_name.insert(record.name.clone(), record.id.clone());
                reg.by_id.insert(record.id.clone(), c.clone());
            }
            let socket = inner.socket(&record.id);
            match status {
                Status::Running => match monitor_client::send(&socket, &record.id, Request::Wait)
                    .await
                {
                    Ok(w) => {
                        crate::health::start(inner.clone(), c.clone(), c.exit_count());
                        inner.watch_exit(c, w)
                    }
                    Err(_) => {
                        let exit = inner
                            .exit_from_state_file(&record.id)
                            .unwrap_or(ExitStatus {
                                code: 255,
                                finished_at: now(),
                                oom_killed: false,
                            });
                        inner.on_exit(&c, exit);
                    }
                },
                Status::Created if socket.exists() => {
                    // berthd died between making the container and starting it: the monitor
                    // holds a container nobody asked to run any more.
                    let _ = monitor_client::call(&socket, &record.id, Request::Kill { signal: 9 })
                        .await;
                    inner.clean_bundle(&record.id);
                }
                Status::Removing => {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        if let Err(e) = inner.remove_container(&c, true, false).await {
                            tracing::warn!("container {}: finishing its removal: {e}", c.id);
                        }
                    });
                }
                Status::Exited if crate::restart::start_with_daemon(&record) => {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        if let Err(e) = inner.start_container(&c).await {
                            tracing::warn!("container {}: restart policy at start-up: {e}", c.id);
                        }
                    });
                }
                _ => {}
            }
        }
    }
}

impl ContainerBackend for Daemon {
    async fn create(
        &self,
        query: ContainerCreateQuery,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        let inner = &self.inner;
        let host = body.host_config.clone().unwrap_or_default();
        spec::refuse_unsupported(&host)?;
        log_options(&host)?;
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ApiError::InvalidParameter(
                    "config cannot be empty in order to create a container: no image given".into(),
                )
            })?;
        let name = match query.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(ApiError::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => String::new(),
        };
        let images = inner.images.clone();
        let lookup = image_name.clone();
        let (image_id, image_json) = blocking(move || {
            let store = crate::store_read(&images);
            let (id, _) = store
                .resolve(&lookup)
                .map_err(|_| ApiError::no_such_image(&lookup))?;
            let inspect = store
                .inspect(&id.to_string())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((id, inspect.config_json))
        })
        .await?;
        let config = ContainerConfig {
            hostname: body.hostname.clone(),
            domainname: body.domainname.clone(),
            user: body.user.clone(),
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
            exposed_ports: body.exposed_ports.clone(),
            tty: body.tty,
            open_stdin: body.open_stdin,
            stdin_once: body.stdin_once,
            env: body.env.clone(),
            cmd: body.cmd.clone(),
            healthcheck: body.healthcheck.clone(),
            args_escaped: body.args_escaped,
            image: body.image.clone(),
            volumes: body.volumes.clone(),
            working_dir: body.working_dir.clone(),
            entrypoint: body.entrypoint.clone(),
            network_disabled: body.network_disabled,
            on_build: body.on_build.clone(),
            labels: body.labels.clone(),
            stop_signal: body.stop_signal.clone(),
            stop_timeout: body.stop_timeout,
            shell: body.shell.clone(),
        };
        if let Some(s) = &config.stop_signal {
            parse_signal(s)?;
        }
        let (config, path, args) = spec::merge_config(config, &image_json)?;
        let mut host = host;
        host.runtime = Some(inner.runtime_name(host.runtime.as_deref())?);
        if let Some(h) = &config.healthcheck {
            crate::health::validate(h)?;
        }
        let id = crate::new_id()?;
        let mut record = ContainerRecord {
            id: id.clone(),
            name,
            created: now(),
            image: image_name,
            image_id: image_id.to_string(),
            path,
            args,
            config,
            host_config: host,
            rootfs: RootfsMount {
                typ: String::new(),
                source: String::new(),
                options: Vec::new(),
            },
            state: RunState::default(),
            restart_count: 0,
            manually_stopped: false,
            endpoints_config: body
                .networking_config
                .clone()
                .and_then(|n| n.endpoints_config)
                .unwrap_or_default(),
            net: Default::default(),
            mounts: Vec::new(),
            primary_disconnected: false,
        };
        let mut warnings = Vec::new();
        {
            let mut mode = record.host_config.network_mode.clone().unwrap_or_default();
            if mode.is_empty() || mode == "default" {
                // dockerd records the default network by its name.
                mode = crate::networks::DEFAULT_NETWORK.to_string();
                record.host_config.network_mode = Some(mode.clone());
            }
            match mode.as_str() {
                "host" | "none" => {}
                m if m.starts_with("container:") => {
                    inner.resolve(&m["container:".len()..])?;
                }
                m => {
                    // Refused here, not at the first start as dockerd does, so a bad --network
                    // leaves no container behind; not a 404, which the docker CLI would take for
                    // a missing image and pull.
                    let net = inner.networks.find(m).map_err(|_| {
                        ApiError::InvalidParameter(format!("network {m} not found"))
                    })?;
                    // Kept by name, so a later inspect shows the name as dockerd does.
                    if net.id == m || (net.id.starts_with(m) && net.name != m) {
                        record.host_config.network_mode = Some(net.name.clone());
                    }
                }
            }
            if (mode == "host" || mode == "none" || mode.starts_with("container:"))
                && (record.host_config.publish_all_ports == Some(true)
                    || record
                        .host_config
                        .port_bindings
                        .as_ref()
                        .is_some_and(|p| !p.is_empty()))
            {
                if mode == "host" {
                    warnings.push(
                        "Published ports are discarded when using host network mode".to_string(),
                    );
                } else {
                    return Err(ApiError::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
            }
            let primary = match mode.as_str() {
                "" | "default" => crate::networks::DEFAULT_NETWORK.to_string(),
                m => m.to_string(),
            };
            // The docker CLI names the --network's own endpoint too ("default" for none given).
            if let Some(settings) = record.endpoints_config.remove("default") {
                record.endpoints_config.insert(primary.clone(), settings);
            }
            for (key, settings) in &record.endpoints_config {
                crate::networks::refuse_unsupported_endpoint(key, settings)?;
                let fixed = settings.ipam_config.as_ref().is_some_and(|c| {
                    c.ipv4_address.as_deref().is_some_and(|a| !a.is_empty())
                        || c.ipv6_address.as_deref().is_some_and(|a| !a.is_empty())
                });
                let predefined = matches!(key.as_str(), "bridge" | "host" | "none")
                    || (key == &primary && primary == crate::networks::DEFAULT_NETWORK);
                if fixed && predefined {
                    return Err(ApiError::InvalidParameter(
                        "user specified IP address is supported on user defined networks only"
                            .into(),
                    ));
                }
            }
            for key in record.endpoints_config.keys() {
                if key != &primary {
                    inner.networks.find(key).map_err(|_| {
                        ApiError::InvalidParameter(format!("network {key} not found"))
                    })?;
                }
            }
            if let Some(keys) = record.host_config.port_bindings.as_ref() {
                for k in keys.keys() {
                    crate::networks::parse_port_key(k)?;
                }
            }
        }
        let c;
        {
            let mut reg = lock(&inner.containers);
            if record.name.is_empty() {
                let b = id.as_bytes();
                let mut n = format!(
                    "{}_{}",
                    ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
                    NOUNS[b[1] as usize % NOUNS.len()]
                );
                if reg.by_name.contains_key(&n) {
                    n = format!("{n}_{}", &id[..6]);
                }
                record.name = n;
            }
            if let Some(other) = reg.by_name.get(&record.name) {
                return Err(ApiError::Conflict(format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name.",
                    record.name
                )));
            }
            c = Container::new(record.clone());
            reg.by_name.insert(record.name.clone(), id.clone());
            reg.by_id.insert(id.clone(), c.clone());
        }
        let made = async {
            // The record is on disk before the writable layer exists, so a berthd killed in
            // between leaves a record (with no rootfs yet) that start-up removes with its layer.
            let dir = inner.container_dir(&id);
            std::fs::create_dir_all(&dir).map_err(|e| {
                ApiError::Internal(format!("container {id}: create {}: {e}", dir.display()))
            })?;
            let mounts = {
                let (inner, cid) = (inner.clone(), id.clone());
                let (host, config) = (record.host_config.clone(), record.config.clone());
                let image_json = image_json.clone();
                blocking(move || {
                    let mut made = Vec::new();
                    match crate::volumes::resolve_mounts(
                        &inner,
                        &cid,
                        &host,
                        &config,
                        &image_json,
                        &mut made,
                    ) {
                        Ok(()) => Ok(made),
                        Err(e) => {
                            for f in inner.release_volumes(&cid, &made, true) {
                                tracing::warn!("container {cid}: {f}");
                            }
                            Err(e)
                        }
                    }
                })
                .await?
            };
            let record = c.update(|r| r.mounts = mounts);
            inner.persist_state(&record)?;
            let images = inner.images.clone();
            let (iid, cid) = (image_id.clone(), id.clone());
            let mount = blocking(move || {
                crate::store_read(&images)
                    .prepare_container(&iid, &cid)
                    .map_err(|e| {
                        ApiError::Internal(format!("container {cid}: prepare its rootfs: {e}"))
                    })
            })
            .await?;
            let record = c.update(|r| {
                r.rootfs = RootfsMount {
                    typ: mount.typ,
                    source: mount.source,
                    options: mount.options,
                }
            });
            {
                let (inner, record) = (inner.clone(), record.clone());
                blocking(move || {
                    crate::volumes::copy_up(&inner, &record.id, &record.rootfs, &record.mounts)
                })
                .await?;
            }
            // Everything the start would refuse is refused now, before anything runs.
            spec::build(
                &record,
                &inner.config.cgroup_parent,
                inner.config.init_path.as_deref(),
                &spec::NetJoin {
                    netns: None,
                    files_dir: &inner.container_dir(&id),
                },
            )?;
            inner.persist(&record)?;
            Ok::<_, ApiError>(record)
        }
        .await;
        match made {
            Ok(record) => {
                inner.event("create", &record, &[]);
                Ok(ContainerCreateResponse { id, warnings })
            }
            Err(e) => {
                {
                    let mut reg = lock(&inner.containers);
                    reg.by_id.remove(&id);
                    reg.by_name.remove(&record.name);
                }
                let images = inner.images.clone();
                let cid = id.clone();
                let _ = blocking(move || {
                    let _ = crate::store_read(&images).remove_container(&cid);
                    Ok(())
                })
                .await;
                let _ = std::fs::remove_dir_all(inner.container_dir(&id));
                let (inner, mounts) = (inner.clone(), c.record().mounts);
                let _ = blocking(move || {
                    for f in inner.release_volumes(&id, &mounts, true) {
                        tracing::warn!("{f}");
                    }
                    Ok(())
                })
                .await;
                Err(e)
            }
        }
    }

    async fn inspect(&self, id: &str, _size: bool) -> Result<ContainerInspectResponse, ApiError> {
        let c = self.inner.resolve(id)?;
        Ok(self.inner.inspect_record(&c.record()))
    }

    async fn list(&self, query: ContainerListQuery) -> Result<Vec<ContainerSummary>, ApiError> {
        let all: Vec<Arc<Container>> = lock(&self.inner.containers)
            .by_id
            .values()
            .cloned()
            .collect();
        let f = &query.filters;
        let check = |name: &str, ok: &dyn Fn(&str) -> bool| {
            let mut values = f.get(name).peekable();
            values.peek().is_none() || values.any(ok)
        };
        let mut records: Vec<ContainerRecord> = all
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                let status = match r.state.status {
                    Status::Created => "created",
                    Status::Running => "running",
                    Status::Exited => "exited",
                    Status::Removing => "removing",
                };
                let labels = r.config.labels.clone().unwrap_or_default();
                (query.all || r.state.status == Status::Running || f.contains("status"))
                    && check("id", &|v| r.id.starts_with(v))
                    && check("name", &|v| r.name.contains(v.trim_start_matches('/')))
                    && check("status", &|v| v == status)
                    && check("exited", &|v| {
                        r.state.status == Status::Exited && v.parse() == Ok(r.state.exit_code)
                    })
                    && check("ancestor", &|v| r.image == v || r.image_id.contains(v))
                    && f.labels_match("label", |k| labels.get(k).map(String::as_str))
            })
            .collect();
        records.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(limit) = query.limit.filter(|l| *l > 0) {
            records.truncate(limit as usize);
        }
        Ok(records
            .iter()
            .map(|r| ContainerSummary {
                id: Some(r.id.clone()),
                names: Some(vec![format!("/{}", r.name)]),
                image: Some(r.image.clone()),
                image_id: Some(r.image_id.clone()),
                command: Some(command_text(r)),
                created: parse_time(&r.created).map(|t| t.timestamp()),
                ports: Some(crate::networks::port_summaries(r)),
                network_settings: Some(ContainerSummaryNetworkSettings {
                    networks: Some(crate::networks::endpoint_settings(r, &self.inner.networks)),
                }),
                labels: Some(r.config.labels.clone().unwrap_or_default()),
                state: Some(if r.state.paused {
                    ContainerSummaryStateEnum::PAUSED
                } else if r.state.restarting {
                    ContainerSummaryStateEnum::RESTARTING
                } else {
                    summary_state(r.state.status)
                }),
                status: Some(status_text(r)),
                host_config: Some(ContainerSummaryHostConfig {
                    network_mode: Some(
                        r.host_config
                            .network_mode
                            .clone()
                            .unwrap_or_else(|| "bridge".into()),
                    ),
                    annotations: None,
                }),
                mounts: Some(crate::volumes::mount_points(&r.mounts)),
                ..Default::default()
            })
            .collect())
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
        let c = self.inner.resolve(id)?;
        match self
            .inner
            .stop_container(&c, query.signal.as_deref(), query.timeout)
            .await
        {
            Ok(()) | Err(ApiError::NotModified) => {}
            Err(e) => return Err(e),
        }
        let record = c.record();
        self.inner.start_container(&c).await?;
        self.inner.event("restart", &record, &[]);
        Ok(())
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        let sig = parse_signal(signal.as_deref().unwrap_or("SIGKILL"))?;
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "cannot kill container: {id}: container {} is not running",
                c.id
            )));
        }
        self.inner.send_signal(&c, sig).await?;
        self.inner
            .event("kill", &record, &[("signal", sig.to_string())]);
        Ok(())
    }

    async fn wait(&self, id: &str, condition: WaitCondition) -> Result<ExitWait, ApiError> {
        let c = self.inner.resolve(id)?;
        let mut rx = c.phase.subscribe();
        let now = rx.borrow().clone();
        let fut = async move {
            let p = match condition {
                WaitCondition::NotRunning if !now.running => now,
                WaitCondition::NotRunning | WaitCondition::NextExit => {
                    match rx.wait_for(|p| p.exits > now.exits).await {
                        Ok(p) => p.clone(),
                        Err(_) => c.phase.borrow().clone(),
                    }
                }
                WaitCondition::Removed => match rx.wait_for(|p| p.removed).await {
                    Ok(p) => p.clone(),
                    Err(_) => c.phase.borrow().clone(),
                },
            };
            drop(c);
            Ok(ContainerWaitResponse {
                status_code: p.exit_code,
                error: None,
            })
        };
        Ok(Box::pin(fut))
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
        let c = self.inner.resolve(id)?;
        let record = c.record();
        let tty = record.config.tty == Some(true);
        let parse = |s: &Option<String>| -> Result<Option<i64>, ApiError> {
            match s.as_deref().filter(|s| !s.is_empty() && *s != "0") {
                None => Ok(None),
                Some(s) => {
                    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
                    let secs: i64 = secs
                        .parse()
                        .map_err(|_| ApiError::InvalidParameter(format!("invalid time {s:?}")))?;
                    let nanos: i64 = if frac.is_empty() {
                        0
                    } else {
                        format!("{frac:0<9}")[..9].parse().unwrap_or(0)
                    };
                    Ok(Some(
                        secs.saturating_mul(1_000_000_000).saturating_add(nanos),
                    ))
                }
            }
        };
        let since = parse(&query.since)?;
        let until = parse(&query.until)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let live = query.follow && record.state.status == Status::Running;
        if live {
            // Attached first, so no line falls between the file and the live stream.
            let a = PendingAttach {
                tx: tx.clone(),
                stdin: None,
                stdout: query.stdout,
                stderr: query.stderr,
            };
            if let Err(e) = self.inner.connect_attach(&c, a).await {
                tracing::debug!("container {}: follow: {e}", c.id);
            }
        }
        let log = self.inner.log_path(&c.id);
        let (max_files, timestamps, tail) = (
            log_options(&record.host_config)
                .map(|(_, n)| n)
                .unwrap_or(1),
            query.timestamps,
            query.tail,
        );
        let (want_out, want_err) = (query.stdout, query.stderr);
        let entries = tokio::task::spawn_blocking(move || {
            let mut files: Vec<PathBuf> = (1..max_files.max(1))
                .rev()
                .map(|n| {
                    let mut s = log.as_os_str().to_owned();
                    s.push(format!(".{n}"));
                    PathBuf::from(s)
                })
                .collect();
            files.push(log);
            let mut out = Vec::new();
            for f in files {
                let Ok(text) = std::fs::read_to_string(&f) else {
                    continue;
                };
                for line in text.lines() {
                    let Ok(e) = serde_json::from_str::<LogEntry>(line) else {
                        continue;
                    };
                    let t = parse_time(&e.time)
                        .and_then(|t| t.timestamp_nanos_opt())
                        .unwrap_or(0);
                    if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                        continue;
                    }
                    let stderr = e.stream == "stderr";
                    if (stderr && !want_err) || (!stderr && !want_out) {
                        continue;
                    }
                    out.push(e);
                }
            }
            if let LogTail::Lines(n) = tail {
                let n = n as usize;
                if out.len() > n {
                    out.drain(..out.len() - n);
                }
            }
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("read logs: {e}")))?;
        let mut chunks = Vec::with_capacity(entries.len());
        for e in entries {
            let stream = if e.stream == "stderr" {
                StdStream::Stderr
            } else {
                StdStream::Stdout
            };
            let data = if timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log
            };
            chunks.push(Ok(OutputChunk {
                stream,
                data: Bytes::from(data),
            }));
        }
        let past = futures_util::stream::iter(chunks);
        if live {
            drop(tx);
            let live = output_stream(rx).map(move |item| {
                item.map(|mut chunk| {
                    if timestamps {
                        let mut d = format!("{} ", now()).into_bytes();
                        d.extend_from_slice(&chunk.data);
                        chunk.data = Bytes::from(d);
                    }
                    chunk
                })
            });
            return Ok(LogStream {
                tty,
                output: past.chain(live).boxed(),
            });
        }
        Ok(LogStream {
            tty,
            output: past.boxed(),
        })
    }

    async fn attach(
        &self,
        id: &str,
        query: ContainerAttachQuery,
    ) -> Result<AttachSession, ApiError> {
        let c = self.inner.resolve(id)?;
        let record = c.record();
        let tty = record.config.tty == Some(true);
        let (tx, rx) = mpsc::unbounded_channel();
        let want_stdin = query.stdin && record.config.open_stdin == Some(true);
        let (client_in, our_in) = if want_stdin {
            let (a, b) = tokio::io::duplex(64 * 1024);
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let a = PendingAttach {
            tx,
            stdin: our_in,
            stdout: query.stdout,
            stderr: query.stderr,
        };
        match record.state.status {
            Status::Running => self.inner.connect_attach(&c, a).await?,
            Status::Created => lock(&c.pending).push(a),
            _ => {
                return Err(ApiError::Conflict(
                    "You cannot attach to a stopped container, start it first".into(),
                ))
            }
        }
        Ok(AttachSession {
            tty,
            output: output_stream(rx),
            stdin: client_in.map(|s| Box::pin(s) as api_server::StdinSink),
        })
    }

    async fn resize(&self, id: &str, size: ResizeQuery) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if record.config.tty != Some(true) {
            return Ok(());
        }
        monitor_client::call(
            &self.inner.socket(&c.id),
            &c.id,
            Request::Resize {
                height: size.height.min(u16::MAX as u32) as u16,
                width: size.width.min(u16::MAX as u32) as u16,
            },
        )
        .await
        .map(|_| ())
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
        let c = self.inner.resolve(id)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name).to_string();
        if !valid_name(&new_name) {
            return Err(ApiError::InvalidParameter(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = c.record().name;
        {
            let mut reg = lock(&self.inner.containers);
            if let Some(other) = reg.by_name.get(&new_name) {
                return Err(ApiError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            reg.by_name.remove(&old);
            reg.by_name.insert(new_name.clone(), c.id.clone());
        }
        let record = c.update(|r| r.name = new_name.clone());
        self.inner.persist(&record)?;
        self.inner
            .event("rename", &record, &[("oldName", format!("/{old}"))]);
        Ok(())
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
        if !query.filters.is_empty() {
            return Err(ApiError::NotImplemented(
                "container prune filters are not supported by berthd yet".into(),
            ));
        }
        let all: Vec<Arc<Container>> = lock(&self.inner.containers)
            .by_id
            .values()
            .cloned()
            .collect();
        let mut deleted = Vec::new();
        for c in all {
            if matches!(c.record().state.status, Status::Exited | Status::Created) {
                self.inner.remove_container(&c, false, false).await?;
                deleted.push(c.id.clone());
            }
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(0),
        })
    }
}
