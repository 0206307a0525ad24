//! Signals and state changes after start: stop, restart, kill, wait, remove and prune.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_server::{ApiError, ExitWait};
use api_types::models::*;
use api_types::query::*;
use monitor_protocol::Request;

use super::{lock, parse_time, Container};
use crate::monitor_client::{self};
use crate::state::Status;
use crate::{blocking, Daemon, Inner};

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

impl Inner {
    pub(super) async fn send_signal(&self, c: &Container, signal: i32) -> Result<(), ApiError> {
        monitor_client::call(&self.socket(&c.id), &c.id, Request::Kill { signal })
            .await
            .map(|_| ())
    }

    /// Waits until the container has exited after `exits` exits, for at most `limit`.
    pub(super) async fn wait_exit(c: &Container, exits: u64, limit: Option<Duration>) -> bool {
        let mut rx = c.phase.subscribe();
        let done = rx.wait_for(|p| p.exits > exits || !p.running);
        match limit {
            Some(l) => matches!(tokio::time::timeout(l, done).await, Ok(Ok(_))),
            None => done.await.is_ok(),
        }
    }

    pub(super) async fn stop_container(
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
        lock(&self.network_index).forget(&c.id);
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
}

impl Daemon {
    pub(super) async fn restart_container(
        &self,
        id: &str,
        query: ContainerStopQuery,
    ) -> Result<(), ApiError> {
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

    pub(super) async fn kill_container(
        &self,
        id: &str,
        signal: Option<String>,
    ) -> Result<(), ApiError> {
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

    pub(super) async fn wait_container(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ExitWait, ApiError> {
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

    pub(super) async fn prune_containers(
        &self,
        query: PruneQuery,
    ) -> Result<ContainerPruneResponse, ApiError> {
        let f = &query.filters;
        // The names were checked (until, label, label!) by the API layer.
        let until = match f.get("until").next() {
            Some(v) => Some(crate::until_seconds(v)?),
            None => None,
        };
        let all: Vec<Arc<Container>> = lock(&self.inner.containers)
            .by_id
            .values()
            .cloned()
            .collect();
        let mut chosen = Vec::new();
        for c in all {
            let r = c.record();
            let labels = r.config.labels.clone().unwrap_or_default();
            let label = |k: &str| labels.get(k).map(String::as_str);
            let old_enough = until
                .is_none_or(|limit| parse_time(&r.created).is_some_and(|t| t.timestamp() < limit));
            if matches!(r.state.status, Status::Exited | Status::Created)
                && old_enough
                && f.labels_match("label", label)
                && !f.any_label_matches("label!", label)
            {
                chosen.push((c, r));
            }
        }
        // What each frees: its writable layer, measured before it goes.
        let records: Vec<_> = chosen.iter().map(|(_, r)| r.clone()).collect();
        let sizes = blocking(move || Ok(super::size::sizes(&records, &HashMap::new()))).await?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for (c, _) in chosen {
            self.inner.remove_container(&c, false, false).await?;
            reclaimed += sizes.get(&c.id).map_or(0, |s| s.0.max(0) as u64);
            deleted.push(c.id.clone());
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }
}
