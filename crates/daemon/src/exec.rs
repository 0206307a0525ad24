//! `docker exec`: processes run in a running container by its monitor.

use std::sync::{Arc, Mutex};

use api_server::{ApiError, AttachSession, ExecBackend, OutputChunk};
use api_types::models::generated::ProcessConfig;
use api_types::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, IdResponse};
use api_types::query::ResizeQuery;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::{FrameKind, Request, Response};
use tokio::sync::mpsc;

use crate::monitor_client::{self, Connection};
use crate::state::Status;
use crate::{spec, Daemon};

/// An exec instance.
pub struct ExecEntry {
    id: String,
    container: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Default, Clone)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i64,
    exit_code: Option<i64>,
}

impl Daemon {
    async fn resize_exec(
        &self,
        entry: &ExecEntry,
        height: u32,
        width: u32,
    ) -> Result<(), ApiError> {
        let pid = lock(&entry.state).pid as i32;
        if pid == 0 {
            return Ok(());
        }
        let socket = self.inner.socket(&entry.container);
        monitor_client::call(
            &socket,
            &entry.container,
            Request::ResizeExec {
                pid,
                height: height.min(u16::MAX as u32) as u16,
                width: width.min(u16::MAX as u32) as u16,
            },
        )
        .await
        .map(|_| ())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExecBackend for Daemon {
    async fn exec_create(
        &self,
        container: &str,
        config: ExecConfig,
    ) -> Result<IdResponse, ApiError> {
        if let Some(keys) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            crate::containers::detach_keys(keys)?;
        }
        let c = self.inner.resolve(container)?;
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "container {} is not running",
                c.id()
            )));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::InvalidParameter(
                "No exec command specified".into(),
            ));
        }
        let id = crate::new_id()?;
        let entry = Arc::new(ExecEntry {
            id: id.clone(),
            container: c.id().to_string(),
            config,
            state: Mutex::new(ExecState::default()),
        });
        let cmd = entry.config.cmd.clone().unwrap_or_default().join(" ");
        lock(&self.inner.execs).insert(id.clone(), entry);
        self.inner.container_event_with(
            &format!("exec_create: {cmd}"),
            &record,
            &[("execID", id.clone())],
        );
        Ok(IdResponse { id })
    }

    async fn exec_start(
        &self,
        id: &str,
        start: ExecStartConfig,
    ) -> Result<Option<AttachSession>, ApiError> {
        let entry = lock(&self.inner.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such_exec(id))?;
        {
            let mut st = lock(&entry.state);
            if st.started {
                return Err(ApiError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
        }
        let c = self.inner.resolve(&entry.container)?;
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "container {} is not running",
                c.id()
            )));
        }
        let cfg = &entry.config;
        let tty = cfg.tty == Some(true) || start.tty == Some(true);
        // Checked at exec create; read before the process starts all the same.
        let keys = crate::containers::detach_keys(
            cfg.detach_keys
                .as_deref()
                .filter(|k| !k.is_empty())
                .unwrap_or(crate::containers::DEFAULT_DETACH_KEYS),
        )?;
        let mut rec = record.clone();
        if cfg.privileged == Some(true) {
            rec.host_config.privileged = Some(true);
        }
        let process = spec::process(
            &rec,
            cfg.cmd.clone().unwrap_or_default(),
            cfg.env.as_deref().unwrap_or(&[]),
            cfg.user.as_deref(),
            cfg.working_dir.as_deref(),
            tty,
            &spec::hostname(&record),
        )?;
        let process = serde_json::from_value(process)
            .map_err(|e| ApiError::Internal(format!("exec {id}: build its OCI process: {e}")))?;
        let with_stdin = cfg.attach_stdin == Some(true) && start.detach != Some(true);
        let detach = start.detach == Some(true);
        let (tx, rx) = mpsc::unbounded_channel::<Result<OutputChunk, ApiError>>();
        let (client_in, our_in) = if with_stdin {
            let (a, b) = tokio::io::duplex(64 * 1024);
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
        let run = ExecRun {
            daemon: self.clone(),
            entry: entry.clone(),
            container: c.id().to_string(),
            record,
            process,
            with_stdin,
            detach,
            tty,
            keys,
            console: start.console_size.clone().or(cfg.console_size.clone()),
            tx: tx.clone(),
            input: our_in,
            signal: signal_tx,
        };
        if detach {
            drop((tx, rx));
            return run.go().await.map(|()| None);
        }
        // The process starts when the client is first asked for output, which for an upgraded
        // connection is after the 101 has gone out. Started sooner, a fast command's output
        // followed the 101 so closely that a client reading the response through a buffer
        // (docker-py's `exec_start(socket=True)`, so docker-compose exec) took it in with the
        // headers and lost it when it took the bare socket. dockerd starts the process after
        // the 101 as well.
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            if go_rx.await.is_ok() {
                if let Err(e) = run.go().await {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let go = futures_util::stream::once(async move {
            let _ = go_tx.send(());
        })
        .filter_map(|()| async { None::<Result<OutputChunk, ApiError>> });
        let received =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|i| (i, rx)) },
            );
        let output = crate::containers::until_detached(go.chain(received).boxed(), signal_rx);
        Ok(Some(AttachSession {
            tty,
            output,
            stdin: client_in.map(|s| Box::pin(s) as api_server::StdinSink),
        }))
    }

    async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, ApiError> {
        let entry = lock(&self.inner.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such_exec(id))?;
        let st = lock(&entry.state).clone();
        let cfg = &entry.config;
        let mut cmd = cfg.cmd.clone().unwrap_or_default();
        let entrypoint = if cmd.is_empty() {
            String::new()
        } else {
            cmd.remove(0)
        };
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(String::new()),
            id: Some(entry.id.clone()),
            running: Some(st.running),
            exit_code: st.exit_code,
            process_config: Some(ProcessConfig {
                privileged: cfg.privileged,
                user: cfg.user.clone(),
                tty: cfg.tty,
                entrypoint: Some(entrypoint),
                arguments: Some(cmd),
            }),
            open_stdin: cfg.attach_stdin,
            open_stderr: cfg.attach_stderr,
            open_stdout: cfg.attach_stdout,
            container_id: Some(entry.container.clone()),
            pid: Some(st.pid),
        })
    }

    async fn exec_resize(&self, id: &str, size: ResizeQuery) -> Result<(), ApiError> {
        let entry = lock(&self.inner.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such_exec(id))?;
        if entry.config.tty != Some(true) {
            return Ok(());
        }
        self.resize_exec(&entry, size.height, size.width).await
    }
}

/// Forgets the exec instances of a removed container, so the table does not keep every exec
/// ever run.
pub(crate) fn forget(inner: &crate::Inner, container: &str) {
    lock(&inner.execs).retain(|_, e| e.container != container);
}

/// An exec's start, made when its client is ready (or at once when detached).
struct ExecRun {
    daemon: Daemon,
    entry: Arc<ExecEntry>,
    container: String,
    record: crate::state::ContainerRecord,
    process: oci_spec::runtime::Process,
    with_stdin: bool,
    detach: bool,
    tty: bool,
    keys: Vec<u8>,
    console: Option<Vec<usize>>,
    /// Where the output goes (unused when detached).
    tx: mpsc::UnboundedSender<Result<OutputChunk, ApiError>>,
    /// The client's input, when the exec takes stdin.
    input: Option<tokio::io::DuplexStream>,
    /// Fires when the client types the detach keys.
    signal: tokio::sync::oneshot::Sender<()>,
}

impl ExecRun {
    /// Starts the process in the container's monitor and pumps its output and input. A start
    /// the runtime refuses is an error when detached, and the stream's stderr (with 126 or 127
    /// as the exit code) when attached, as dockerd has it.
    async fn go(self) -> Result<(), ApiError> {
        let ExecRun {
            daemon,
            entry,
            container,
            record,
            process,
            with_stdin,
            detach,
            tty,
            keys,
            console,
            tx,
            input,
            signal,
        } = self;
        let id = entry.id.clone();
        let inner = daemon.inner.clone();
        let conn = monitor_client::connect(
            &inner.socket(&container),
            &container,
            Request::Exec {
                process: Box::new(process),
                stdin: with_stdin,
            },
        )
        .await?;
        let pid = match conn.response {
            Response::ExecStarted { pid } => pid,
            Response::Error { message } => {
                let code = if message.contains("executable file not found")
                    || message.contains("no such file")
                {
                    127
                } else {
                    126
                };
                let text = format!("OCI runtime exec failed: exec failed: {message}: unknown");
                {
                    let mut st = lock(&entry.state);
                    st.exit_code = Some(code);
                    st.running = false;
                }
                if detach {
                    return Err(ApiError::InvalidParameter(text));
                }
                let _ = tx.send(Ok(OutputChunk {
                    stream: StdStream::Stderr,
                    data: Bytes::from(format!("{text}\n")),
                }));
                return Ok(());
            }
            other => {
                return Err(ApiError::Internal(format!(
                    "exec {id}: monitor answered {other:?}"
                )));
            }
        };
        {
            let mut st = lock(&entry.state);
            st.running = true;
            st.pid = pid as i64;
        }
        let cfg = &entry.config;
        let cmd = cfg.cmd.clone().unwrap_or_default().join(" ");
        inner.container_event_with(
            &format!("exec_start: {cmd}"),
            &record,
            &[("execID", entry.id.clone())],
        );
        let Connection {
            mut reader, writer, ..
        } = conn;
        let (want_out, want_err) = (
            cfg.attach_stdout == Some(true),
            cfg.attach_stderr == Some(true),
        );
        let e2 = entry.clone();
        // On the detach keys the client's stream ends and the exec runs on; its connection's
        // input half waits in `keep_rx` (this task holds it) until the exec exits.
        let (keep_tx, keep_rx) = tokio::sync::oneshot::channel();
        let inner2 = inner.clone();
        tokio::spawn(async move {
            let _keep = keep_rx;
            let mut code = None;
            while let Ok(Some((kind, data))) = monitor_client::next_frame(&mut reader).await {
                let stream = match kind {
                    FrameKind::Exit => {
                        code = data
                            .get(..4)
                            .and_then(|b| b.try_into().ok())
                            .map(|b| i32::from_be_bytes(b) as i64);
                        break;
                    }
                    FrameKind::Stdout if want_out => StdStream::Stdout,
                    FrameKind::Stderr if want_err => StdStream::Stderr,
                    _ => continue,
                };
                if !detach {
                    let _ = tx.send(Ok(OutputChunk {
                        stream,
                        data: Bytes::from(data),
                    }));
                }
            }
            let mut st = lock(&e2.state);
            st.running = false;
            let code = code.unwrap_or(126);
            st.exit_code = Some(code);
            drop(st);
            inner2.container_event_with(
                "exec_die",
                &record,
                &[("execID", e2.id.clone()), ("exitCode", code.to_string())],
            );
            drop(tx);
        });
        if detach {
            return Ok(());
        }
        // As dockerd, only a tty exec's input is watched for the detach keys.
        let escape = crate::containers::Escape::new(if tty { keys } else { Vec::new() });
        let detach = crate::containers::Detach {
            keep: keep_tx,
            signal,
        };
        tokio::spawn(async move {
            if let Some(input) = input {
                crate::containers::copy_input(input, writer, escape, Some(detach)).await;
            } else {
                let _keep = writer;
                std::future::pending::<()>().await
            }
        });
        if let Some(size) = console {
            if let (Some(&h), Some(&w)) = (size.first(), size.get(1)) {
                if h > 0 && w > 0 {
                    let _ = daemon.resize_exec(&entry, h as u32, w as u32).await;
                }
            }
        }
        Ok(())
    }
}
