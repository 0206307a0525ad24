//! Start: the network attachment, the OCI config, the monitor spawned and told to run the
//! container; a start that fails is recorded as an exit.

use std::path::PathBuf;
use std::sync::Arc;

use api_server::ApiError;
use monitor_protocol::{MonitorConfig, Request, Response, PROTOCOL_VERSION};

use crate::monitor_client::{self};
use crate::state::{RunState, Status};
use crate::{blocking, now, spec, Inner};

use super::logs::log_options;
use super::{lock, Container, PendingAttach};

impl Inner {
    pub(super) fn runtime_binary(
        &self,
        name: Option<&str>,
    ) -> Option<monitor_protocol::RuntimeBinary> {
        let name = name?;
        let path = self.config.runtimes.get(name)?;
        Some(monitor_protocol::RuntimeBinary {
            path: path.clone(),
            root: self.config.exec_root.join("runtimes").join(name),
        })
    }

    /// Records a start that failed before the user's program ran: the error and exit code in
    /// the record, streams of clients attached for this start ended, waiters woken as by an
    /// exit (dockerd does the same, so `docker run` returns), and `--rm` honoured.
    pub(super) fn failed_start(self: &Arc<Self>, c: &Arc<Container>, message: &str, code: i64) {
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

    pub(super) async fn start_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
    ) -> Result<(), ApiError> {
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
        let pid_ns = match spec::host::pid_container(&record.host_config) {
            Some(other) => {
                let o = self.resolve(other)?.record();
                if o.state.status != Status::Running {
                    return Err(ApiError::Conflict(format!(
                        "cannot join PID namespace of a non running container: {}",
                        o.id
                    )));
                }
                Some(PathBuf::from(format!("/proc/{}/ns/pid", o.state.pid)))
            }
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
                    pid_ns: pid_ns.as_deref(),
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
}
