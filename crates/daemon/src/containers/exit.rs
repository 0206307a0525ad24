//! Exits: the watcher that learns each exit from the container's monitor (or from its state
//! file when the monitor is gone), the restart policy, and `--rm`.

use std::sync::Arc;
use std::time::Duration;

use monitor_protocol::{ExitStatus, MonitorState, Response};

use super::{lock, parse_time, Container};
use crate::monitor_client::{self, Connection};
use crate::state::Status;
use crate::{now, Inner};

impl Inner {
    /// Records an exit seen by the monitor (or reconstructed when it is gone).
    pub(super) fn on_exit(self: &Arc<Self>, c: &Arc<Container>, exit: ExitStatus) {
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
    pub(super) fn exit_from_state_file(&self, id: &str) -> Option<ExitStatus> {
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
    pub(super) fn watch_exit(
        self: &Arc<Self>,
        c: Arc<Container>,
        pending: monitor_client::Pending,
    ) {
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

    /// `--rm`: removes the container (and its anonymous volumes) in the background.
    pub(super) fn auto_remove(self: &Arc<Self>, c: &Arc<Container>) {
        let inner = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.remove_container(&c, true, true).await {
                tracing::warn!("container {}: auto-remove: {e}", c.id);
            }
        });
    }
}
