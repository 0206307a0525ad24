//! The test double shared by the API server's and the berth CLI's test suites: an in-memory
//! backend (a stand-in for the daemon, holding a list of fake containers that "run" a tiny
//! scripted program) and an in-process server on a temporary socket, with runners for the real
//! docker CLI. Dev-only: nothing here is berth's behaviour; it only gives the server something
//! to call.
//!
//! The fake program is driven by the container's Cmd, one word per action: `out:TEXT` writes
//! TEXT and a newline to stdout, `err:TEXT` to stderr, `cat` copies stdin to stdout until EOF,
//! `exit:N` sets the exit code. A first word `missing:NAME` or `denied:NAME` makes `start` fail
//! as runc's exec of such a command does.
//!
//! By default the daemon holds no image, takes any image name at create, and refuses `top` and
//! `stats` as not implemented; [`FakeDaemon::with_busybox_image`] and
//! [`FakeDaemon::with_process_table`] add what a client's own tests need (the CLI's tests use
//! both).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use api_server::{
    ApiError, ApiListener, AttachSession, ContainerBackend, EventsBackend, ExecBackend, ExitWait,
    ImageBackend, JsonStream, ListenAddr, LogStream, OutputChunk, ServerConfig, SocketOptions,
    SystemBackend,
};
use api_types::models::generated::{
    ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, ContainerPidsStats,
};
use api_types::models::*;
use api_types::query::*;
use api_types::{ProgressMessage, RegistryAuth, StdStream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

fn not_in_fixture(what: &str) -> ApiError {
    ApiError::NotImplemented(format!("the test backend does not implement {what}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Created,
    Running,
    Exited(i64),
}

struct FakeContainer {
    id: String,
    name: String,
    image: String,
    cmd: Vec<String>,
    tty: bool,
    state: watch::Sender<RunState>,
    /// Output channels of attached clients.
    attached: Vec<mpsc::UnboundedSender<Result<OutputChunk, ApiError>>>,
    /// The read end of stdin, when a client attached it.
    stdin: Option<tokio::io::DuplexStream>,
    /// Everything the program wrote, for `logs`.
    log: Arc<Mutex<Vec<OutputChunk>>>,
    /// The HostConfig the client sent, returned by inspect.
    host_config: HostConfig,
    /// The labels the client set, returned by list.
    labels: HashMap<String, String>,
}

struct FakeExec {
    cmd: Vec<String>,
    tty: bool,
    exit: Arc<Mutex<Option<i64>>>,
}

/// The in-memory daemon stand-in.
#[derive(Default)]
pub struct FakeDaemon {
    containers: Mutex<Vec<FakeContainer>>,
    execs: Mutex<HashMap<String, FakeExec>>,
    events: Mutex<Vec<EventMessage>>,
    counter: AtomicU64,
    /// Networks made with `network create`, in creation order.
    networks: Mutex<Vec<generated::NetworkInspect>>,
    volumes: Mutex<std::collections::BTreeMap<String, api_types::models::generated::Volume>>,
    /// Whether the image store holds busybox:latest (see [`FakeDaemon::with_busybox_image`]).
    busybox_image: bool,
    /// Whether `top` and `stats` answer (see [`FakeDaemon::with_process_table`]).
    process_table: bool,
}

impl FakeDaemon {
    /// A daemon with one exited container named "old".
    pub fn with_exited_container() -> Self {
        let d = Self::default();
        let (state, _) = watch::channel(RunState::Exited(0));
        d.containers
            .lock()
            .expect("fixture lock")
            .push(FakeContainer {
                id: format!("{:064x}", 0xabcdefu64),
                name: "old".to_string(),
                image: "busybox".to_string(),
                cmd: vec!["exit:0".to_string()],
                tty: false,
                state,
                attached: Vec::new(),
                stdin: None,
                log: Arc::default(),
                host_config: HostConfig::default(),
                labels: HashMap::new(),
            });
        d
    }

    /// The same daemon with one image, "busybox:latest" (so `images` has a row, and inspect,
    /// history, tag, save and load answer for it); `create` of any other image fails with 404
    /// as dockerd's does, so a client's `run` goes through its pull path. Removing "other:1"
    /// untags it.
    pub fn with_busybox_image(mut self) -> Self {
        self.busybox_image = true;
        self
    }

    /// The same daemon answering `top` with a fixed two-process table and `stats` with one
    /// fixed sample (25% of one of two CPUs, 10 MiB of 1 GiB, 3 processes).
    pub fn with_process_table(mut self) -> Self {
        self.process_table = true;
        self
    }

    /// Refuses a name the image store does not hold, with dockerd's 404.
    fn image_exists(&self, name: &str) -> Result<(), ApiError> {
        if self.busybox_image && (name == "busybox" || name == "busybox:latest") {
            Ok(())
        } else {
            Err(ApiError::no_such_image(name))
        }
    }

    fn record(&self, action: &str, id: &str, name: &str) {
        let mut attributes = HashMap::new();
        attributes.insert("name".to_string(), name.to_string());
        attributes.insert("image".to_string(), "busybox".to_string());
        self.events
            .lock()
            .expect("fixture lock")
            .push(EventMessage {
                typ: Some(EventMessageTypeEnum::CONTAINER),
                action: Some(action.to_string()),
                actor: Some(EventActor {
                    id: Some(id.to_string()),
                    attributes: Some(attributes),
                }),
                scope: Some(EventMessageScopeEnum::LOCAL),
                time: Some(1_700_000_000),
                time_nano: Some(1_700_000_000_000_000_000),
            });
    }

    fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut FakeContainer) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut list = self.containers.lock().expect("fixture lock");
        let c = list
            .iter_mut()
            .find(|c| c.id == id || c.name == id || (id.len() >= 3 && c.id.starts_with(id)))
            .ok_or_else(|| ApiError::no_such_container(id))?;
        f(c)
    }
}

async fn run_program(
    cmd: Vec<String>,
    tty: bool,
    outputs: &[mpsc::UnboundedSender<Result<OutputChunk, ApiError>>],
    mut stdin: Option<tokio::io::DuplexStream>,
    log: Arc<Mutex<Vec<OutputChunk>>>,
) -> i64 {
    let send = |stream: StdStream, data: Bytes| {
        log.lock().expect("fixture lock").push(OutputChunk {
            stream,
            data: data.clone(),
        });
        for tx in outputs {
            let _ = tx.send(Ok(OutputChunk {
                stream: if tty { StdStream::Stdout } else { stream },
                data: data.clone(),
            }));
        }
    };
    let mut code = 0;
    for word in cmd {
        if let Some(text) = word.strip_prefix("out:") {
            send(StdStream::Stdout, Bytes::from(format!("{text}\n")));
        } else if let Some(text) = word.strip_prefix("err:") {
            send(StdStream::Stderr, Bytes::from(format!("{text}\n")));
        } else if let Some(n) = word.strip_prefix("exit:") {
            code = n.parse().unwrap_or(255);
        } else if word == "cat" {
            if let Some(input) = stdin.as_mut() {
                let mut buf = [0u8; 4096];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => send(StdStream::Stdout, Bytes::copy_from_slice(&buf[..n])),
                    }
                }
            }
        }
    }
    code
}

impl SystemBackend for FakeDaemon {
    async fn info(&self) -> Result<SystemInfo, ApiError> {
        let list = self.containers.lock().expect("fixture lock");
        let running = list
            .iter()
            .filter(|c| *c.state.borrow() == RunState::Running)
            .count() as i64;
        Ok(SystemInfo {
            id: Some("fake-daemon".to_string()),
            name: Some("testhost".to_string()),
            containers: Some(list.len() as i64),
            containers_running: Some(running),
            containers_paused: Some(0),
            containers_stopped: Some(list.len() as i64 - running),
            images: Some(0),
            driver: Some("overlay2".to_string()),
            server_version: Some("0.1.0-test".to_string()),
            operating_system: Some("Berth test fixture".to_string()),
            os_type: Some("linux".to_string()),
            architecture: Some("x86_64".to_string()),
            ncpu: Some(2),
            mem_total: Some(1 << 30),
            docker_root_dir: Some("/var/lib/berth-test".to_string()),
            ..SystemInfo::default()
        })
    }

    async fn version(&self) -> Result<SystemVersion, ApiError> {
        Ok(SystemVersion {
            version: Some("0.1.0-test".to_string()),
            arch: Some("amd64".to_string()),
            kernel_version: Some("6.18-test".to_string()),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".to_string(),
                version: "0.1.0-test".to_string(),
                details: None,
            }]),
            ..SystemVersion::default()
        })
    }

    async fn disk_usage(&self) -> Result<api_types::models::DiskUsage, ApiError> {
        Err(not_in_fixture("system df"))
    }

    /// One account, `alice` / `s3cret`, on every registry; anything else is refused as
    /// dockerd refuses it.
    async fn auth(
        &self,
        config: api_types::models::generated::AuthConfig,
    ) -> Result<api_types::models::generated::AuthResponse, ApiError> {
        let server = config.serveraddress.unwrap_or_default();
        if config.username.as_deref() == Some("alice")
            && config.password.as_deref() == Some("s3cret")
        {
            return Ok(api_types::models::generated::AuthResponse {
                status: "Login Succeeded".to_string(),
                identity_token: Some(String::new()),
            });
        }
        Err(ApiError::Unauthorized(format!(
            "Get \"https://{server}/v2/\": unauthorized: incorrect username or password"
        )))
    }
}

impl ContainerBackend for FakeDaemon {
    async fn create(
        &self,
        query: ContainerCreateQuery,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        if self.busybox_image {
            self.image_exists(body.image.as_deref().unwrap_or_default())?;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{:064x}", 0x1000 + n);
        let name = query.name.clone().unwrap_or_else(|| format!("fake_{n}"));
        let mut list = self.containers.lock().expect("fixture lock");
        if list.iter().any(|c| c.name == name) {
            return Err(ApiError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use"
            )));
        }
        let (state, _) = watch::channel(RunState::Created);
        list.push(FakeContainer {
            id: id.clone(),
            name,
            image: body.image.unwrap_or_default(),
            cmd: body.cmd.unwrap_or_default(),
            tty: body.tty.unwrap_or(false),
            state,
            attached: Vec::new(),
            stdin: None,
            log: Arc::default(),
            host_config: body.host_config.unwrap_or_default(),
            labels: body.labels.unwrap_or_default(),
        });
        drop(list);
        self.record("create", &id, query.name.as_deref().unwrap_or(""));
        Ok(ContainerCreateResponse {
            id,
            warnings: Vec::new(),
        })
    }

    async fn inspect(&self, id: &str, _size: bool) -> Result<ContainerInspectResponse, ApiError> {
        self.with(id, |c| {
            let state = *c.state.borrow();
            Ok(ContainerInspectResponse {
                id: Some(c.id.clone()),
                name: Some(format!("/{}", c.name)),
                image: Some(c.image.clone()),
                state: Some(ContainerState {
                    status: Some(match state {
                        RunState::Created => ContainerStateStatusEnum::CREATED,
                        RunState::Running => ContainerStateStatusEnum::RUNNING,
                        RunState::Exited(_) => ContainerStateStatusEnum::EXITED,
                    }),
                    running: Some(state == RunState::Running),
                    exit_code: Some(match state {
                        RunState::Exited(code) => code,
                        _ => 0,
                    }),
                    ..ContainerState::default()
                }),
                config: Some(ContainerConfig {
                    image: Some(c.image.clone()),
                    cmd: Some(c.cmd.clone()),
                    tty: Some(c.tty),
                    ..ContainerConfig::default()
                }),
                host_config: Some(c.host_config.clone()),
                ..ContainerInspectResponse::default()
            })
        })
    }

    async fn list(&self, query: ContainerListQuery) -> Result<Vec<ContainerSummary>, ApiError> {
        let list = self.containers.lock().expect("fixture lock");
        Ok(list
            .iter()
            .filter(|c| query.all || *c.state.borrow() == RunState::Running)
            .map(|c| {
                let state = *c.state.borrow();
                ContainerSummary {
                    id: Some(c.id.clone()),
                    names: Some(vec![format!("/{}", c.name)]),
                    image: Some(c.image.clone()),
                    command: Some(c.cmd.join(" ")),
                    created: Some(1_700_000_000),
                    labels: Some(c.labels.clone()),
                    state: Some(match state {
                        RunState::Created => ContainerSummaryStateEnum::CREATED,
                        RunState::Running => ContainerSummaryStateEnum::RUNNING,
                        RunState::Exited(_) => ContainerSummaryStateEnum::EXITED,
                    }),
                    status: Some(match state {
                        RunState::Created => "Created".to_string(),
                        RunState::Running => "Up".to_string(),
                        RunState::Exited(code) => format!("Exited ({code})"),
                    }),
                    ..ContainerSummary::default()
                }
            })
            .collect())
    }

    async fn start(&self, id: &str) -> Result<(), ApiError> {
        let (cmd, tty, outputs, stdin, state, log, full_id, name) = self.with(id, |c| {
            if *c.state.borrow() == RunState::Running {
                return Err(ApiError::NotModified);
            }
            // `missing:NAME` and `denied:NAME` fail as runc's exec of such a command does.
            if let Some(word) = c.cmd.first() {
                if let Some(name) = word.strip_prefix("missing:") {
                    return Err(ApiError::Internal(format!(
                        "failed to create task for container: OCI runtime create failed: exec: \"{name}\": executable file not found in $PATH: unknown"
                    )));
                }
                if let Some(name) = word.strip_prefix("denied:") {
                    return Err(ApiError::Internal(format!(
                        "failed to create task for container: OCI runtime create failed: exec: \"{name}\": permission denied: unknown"
                    )));
                }
            }
            c.state.send_replace(RunState::Running);
            Ok((
                c.cmd.clone(),
                c.tty,
                std::mem::take(&mut c.attached),
                c.stdin.take(),
                c.state.clone(),
                Arc::clone(&c.log),
                c.id.clone(),
                c.name.clone(),
            ))
        })?;
        self.record("start", &full_id, &name);
        tokio::spawn(async move {
            let code = run_program(cmd, tty, &outputs, stdin, log).await;
            state.send_replace(RunState::Exited(code));
            // Attached clients see EOF only once the exit is recorded, as with a real process.
            drop(outputs);
        });
        Ok(())
    }

    async fn stop(&self, _id: &str, _q: ContainerStopQuery) -> Result<(), ApiError> {
        Err(not_in_fixture("stop"))
    }
    async fn restart(&self, _id: &str, _q: ContainerStopQuery) -> Result<(), ApiError> {
        Err(not_in_fixture("restart"))
    }
    async fn kill(&self, id: &str, _signal: Option<String>) -> Result<(), ApiError> {
        self.with(id, |c| {
            if *c.state.borrow() != RunState::Running {
                return Err(ApiError::Conflict(format!(
                    "Cannot kill container: {id}: Container {} is not running",
                    c.id
                )));
            }
            Err(not_in_fixture("kill of a running container"))
        })
    }

    async fn wait(&self, id: &str, condition: WaitCondition) -> Result<ExitWait, ApiError> {
        let mut rx = self.with(id, |c| Ok(c.state.subscribe()))?;
        let current = *rx.borrow_and_update();
        Ok(Box::pin(async move {
            if let (WaitCondition::NotRunning, RunState::Exited(code)) = (condition, current) {
                return Ok(ContainerWaitResponse {
                    status_code: code,
                    error: None,
                });
            }
            loop {
                rx.changed()
                    .await
                    .map_err(|_| ApiError::Internal("the container went away".to_string()))?;
                if let RunState::Exited(code) = *rx.borrow_and_update() {
                    return Ok(ContainerWaitResponse {
                        status_code: code,
                        error: None,
                    });
                }
            }
        }))
    }

    async fn remove(&self, id: &str, query: ContainerRemoveQuery) -> Result<(), ApiError> {
        let mut list = self.containers.lock().expect("fixture lock");
        let pos = list
            .iter()
            .position(|c| c.id == id || c.name == id)
            .ok_or_else(|| ApiError::no_such_container(id))?;
        if *list[pos].state.borrow() == RunState::Running && !query.force {
            return Err(ApiError::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                list[pos].name
            )));
        }
        list.remove(pos);
        Ok(())
    }

    async fn logs(&self, id: &str, q: ContainerLogsQuery) -> Result<LogStream, ApiError> {
        let (tty, chunks) = self.with(id, |c| {
            Ok((c.tty, c.log.lock().expect("fixture lock").clone()))
        })?;
        let wanted = chunks
            .into_iter()
            .filter(move |c| match c.stream {
                StdStream::Stderr => q.stderr,
                _ => q.stdout,
            })
            .map(Ok);
        Ok(LogStream {
            tty,
            output: futures_util::stream::iter(wanted).boxed(),
        })
    }

    async fn attach(
        &self,
        id: &str,
        query: ContainerAttachQuery,
    ) -> Result<AttachSession, ApiError> {
        self.with(id, |c| {
            let (tx, rx) = mpsc::unbounded_channel();
            c.attached.push(tx);
            let stdin: Option<api_server::StdinSink> = if query.stdin {
                let (writer, reader) = tokio::io::duplex(64 * 1024);
                c.stdin = Some(reader);
                Some(Box::pin(writer))
            } else {
                None
            };
            let output = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            })
            .boxed();
            Ok(AttachSession {
                tty: c.tty,
                output,
                stdin,
            })
        })
    }

    async fn resize(&self, id: &str, _size: ResizeQuery) -> Result<(), ApiError> {
        self.with(id, |_| Ok(()))
    }
    async fn top(&self, id: &str, _ps: Option<String>) -> Result<ContainerTopResponse, ApiError> {
        if !self.process_table {
            return Err(not_in_fixture("top"));
        }
        self.with(id, |_| Ok(()))?;
        let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(ContainerTopResponse {
            titles: Some(row(&[
                "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD",
            ])),
            processes: Some(vec![
                row(&[
                    "root",
                    "4242",
                    "4200",
                    "0",
                    "12:00",
                    "?",
                    "00:00:00",
                    "sleep 1000",
                ]),
                row(&[
                    "nobody",
                    "4243",
                    "4242",
                    "0",
                    "12:00",
                    "pts/0",
                    "00:00:01",
                    "sh -c true",
                ]),
            ]),
        })
    }
    async fn stats(
        &self,
        id: &str,
        _q: ContainerStatsQuery,
    ) -> Result<JsonStream<ContainerStatsResponse>, ApiError> {
        if !self.process_table {
            return Err(not_in_fixture("stats"));
        }
        // One fixed sample: 25% of one of two CPUs, 10 MiB of 1 GiB, 3 processes.
        let (full, name) = self.with(id, |c| Ok((c.id.clone(), c.name.clone())))?;
        let cpu = |container: u64, system: u64| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(container),
                ..ContainerCpuUsage::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..ContainerCpuStats::default()
        };
        let sample = ContainerStatsResponse {
            id: Some(full),
            name: Some(format!("/{name}")),
            cpu_stats: Some(cpu(2_000_000_000, 20_000_000_000)),
            precpu_stats: Some(cpu(1_000_000_000, 12_000_000_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10 << 20),
                limit: Some(1 << 30),
                ..ContainerMemoryStats::default()
            }),
            pids_stats: Some(ContainerPidsStats {
                current: Some(3),
                limit: None,
            }),
            ..ContainerStatsResponse::default()
        };
        Ok(futures_util::stream::iter(vec![Ok(sample)]).boxed())
    }
    async fn rename(&self, id: &str, new_name: &str) -> Result<(), ApiError> {
        self.with(id, |c| {
            c.name = new_name.to_string();
            Ok(())
        })
    }
    async fn pause(&self, _id: &str) -> Result<(), ApiError> {
        Err(not_in_fixture("pause"))
    }
    async fn unpause(&self, _id: &str) -> Result<(), ApiError> {
        Err(not_in_fixture("unpause"))
    }
    async fn update(
        &self,
        _id: &str,
        _body: ContainerUpdateBody,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        Err(not_in_fixture("update"))
    }
    async fn prune(&self, _q: PruneQuery) -> Result<ContainerPruneResponse, ApiError> {
        Err(not_in_fixture("container prune"))
    }
}

impl ExecBackend for FakeDaemon {
    async fn exec_create(
        &self,
        container: &str,
        config: ExecConfig,
    ) -> Result<IdResponse, ApiError> {
        self.with(container, |_| Ok(()))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{:064x}", 0xe000 + n);
        self.execs.lock().expect("fixture lock").insert(
            id.clone(),
            FakeExec {
                cmd: config.cmd.unwrap_or_default(),
                tty: config.tty.unwrap_or(false),
                exit: Arc::default(),
            },
        );
        Ok(IdResponse { id })
    }
    async fn exec_start(
        &self,
        id: &str,
        config: ExecStartConfig,
    ) -> Result<Option<AttachSession>, ApiError> {
        let (cmd, tty, exit) = {
            let execs = self.execs.lock().expect("fixture lock");
            let e = execs.get(id).ok_or_else(|| ApiError::no_such_exec(id))?;
            (e.cmd.clone(), e.tty, Arc::clone(&e.exit))
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (writer, reader) = tokio::io::duplex(64 * 1024);
        let detach = config.detach.unwrap_or(false);
        tokio::spawn(async move {
            let outputs = if detach { Vec::new() } else { vec![tx] };
            let code = run_program(cmd, tty, &outputs, Some(reader), Arc::default()).await;
            *exit.lock().expect("fixture lock") = Some(code);
            // The client inspects the exit code after EOF: record it first.
            drop(outputs);
        });
        if detach {
            return Ok(None);
        }
        let output = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        Ok(Some(AttachSession {
            tty,
            output,
            stdin: Some(Box::pin(writer)),
        }))
    }
    async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, ApiError> {
        let execs = self.execs.lock().expect("fixture lock");
        let e = execs.get(id).ok_or_else(|| ApiError::no_such_exec(id))?;
        let exit = *e.exit.lock().expect("fixture lock");
        Ok(ExecInspectResponse {
            id: Some(id.to_string()),
            running: Some(exit.is_none()),
            exit_code: exit,
            ..ExecInspectResponse::default()
        })
    }
    async fn exec_resize(&self, id: &str, _size: ResizeQuery) -> Result<(), ApiError> {
        Err(ApiError::no_such_exec(id))
    }
}

impl ImageBackend for FakeDaemon {
    async fn image_list(&self, _q: ImageListQuery) -> Result<Vec<ImageSummary>, ApiError> {
        if !self.busybox_image {
            return Ok(Vec::new());
        }
        Ok(vec![ImageSummary {
            id: format!("sha256:{:064x}", 0xb0b0u64),
            parent_id: String::new(),
            repo_tags: vec!["busybox:latest".to_string()],
            repo_digests: Vec::new(),
            created: 1_700_000_000,
            size: 4_260_000,
            shared_size: -1,
            labels: HashMap::new(),
            containers: -1,
            ..ImageSummary::default()
        }])
    }
    async fn image_inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        self.image_exists(name)?;
        Ok(ImageInspect {
            id: Some(format!("sha256:{:064x}", 0xb0b0u64)),
            repo_tags: Some(vec!["busybox:latest".to_string()]),
            architecture: Some("amd64".to_string()),
            os: Some("linux".to_string()),
            size: Some(4_260_000),
            ..ImageInspect::default()
        })
    }
    async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, ApiError> {
        self.image_exists(name)?;
        Ok(vec![
            ImageHistoryResponseItem {
                id: format!("sha256:{:064x}", 0xb0b0u64),
                created: 1_700_000_000,
                created_by: "/bin/sh -c #(nop)  CMD [\"sh\"] and a long tail of words to truncate"
                    .to_string(),
                tags: vec!["busybox:latest".to_string()],
                size: 0,
                comment: String::new(),
            },
            ImageHistoryResponseItem {
                id: "<missing>".to_string(),
                created: 1_699_999_000,
                created_by: "/bin/sh -c #(nop) ADD file:abc in /".to_string(),
                tags: Vec::new(),
                size: 4_260_000,
                comment: "layer".to_string(),
            },
        ])
    }
    async fn image_tag(&self, name: &str, _repo: &str, _tag: Option<&str>) -> Result<(), ApiError> {
        self.image_exists(name)?;
        Ok(())
    }
    async fn image_remove(
        &self,
        name: &str,
        _q: ImageRemoveQuery,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        if !self.busybox_image || name != "other:1" {
            return Err(ApiError::no_such_image(name));
        }
        Ok(vec![ImageDeleteResponseItem {
            untagged: Some("other:1".to_string()),
            deleted: None,
        }])
    }
    async fn image_pull(
        &self,
        query: ImagePullQuery,
        _auth: RegistryAuth,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        // Two lines of progress, then the failure a daemon without a registry would report.
        let name = query.from_image;
        let lines = vec![
            Ok(ProgressMessage::status(
                None,
                format!("Pulling from {name}"),
            )),
            Ok(ProgressMessage::progress(
                "layer1",
                "Downloading",
                5,
                Some(10),
            )),
            Err(ApiError::Unavailable(format!(
                "the test backend has no registry for {name}"
            ))),
        ];
        Ok(futures_util::stream::iter(lines).boxed())
    }
    async fn image_push(
        &self,
        name: &str,
        _q: ImagePushQuery,
        _auth: RegistryAuth,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        Err(ApiError::no_such_image(name))
    }
    async fn image_load(
        &self,
        mut archive: api_server::ByteStream,
        _quiet: bool,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        if !self.busybox_image {
            return Err(not_in_fixture("image load"));
        }
        // Reads the whole archive, then reports one layer loaded and the image's name, as
        // dockerd's load does.
        let mut size = 0i64;
        while let Some(chunk) = archive.next().await {
            size += chunk?.len() as i64;
        }
        let lines = vec![
            Ok(ProgressMessage::progress(
                "0123456789ab",
                "Loading layer",
                size / 2,
                Some(size),
            )),
            Ok(ProgressMessage::progress(
                "0123456789ab",
                "Loading layer",
                size,
                Some(size),
            )),
            Ok(ProgressMessage {
                stream: Some("Loaded image: busybox:latest\n".to_string()),
                ..ProgressMessage::default()
            }),
        ];
        Ok(futures_util::stream::iter(lines).boxed())
    }
    async fn image_save(&self, names: Vec<String>) -> Result<api_server::ByteStream, ApiError> {
        if !self.busybox_image || names.iter().any(|n| self.image_exists(n).is_err()) {
            return Err(ApiError::no_such_image(&names.join(", ")));
        }
        let chunks = vec![
            Ok(Bytes::from_static(b"fake archive: ")),
            Ok(Bytes::from(names.join(","))),
        ];
        Ok(futures_util::stream::iter(chunks).boxed())
    }
    async fn image_prune(&self, _q: PruneQuery) -> Result<ImagePruneResponse, ApiError> {
        Err(not_in_fixture("image prune"))
    }
}

impl EventsBackend for FakeDaemon {
    async fn subscribe(&self, _q: EventsQuery) -> Result<JsonStream<EventMessage>, ApiError> {
        // The recorded events, then the end of the stream (a real daemon would stay open until
        // `until`; tests ask with an `until`).
        let events = self.events.lock().expect("fixture lock").clone();
        Ok(futures_util::stream::iter(events.into_iter().map(Ok)).boxed())
    }
}

impl api_server::NetworkBackend for FakeDaemon {
    async fn network_list(
        &self,
        _q: NetworkListQuery,
    ) -> Result<Vec<generated::NetworkInspect>, ApiError> {
        Ok(self.networks.lock().expect("fixture lock").clone())
    }
    async fn network_inspect(
        &self,
        id: &str,
        _q: NetworkInspectQuery,
    ) -> Result<generated::NetworkInspect, ApiError> {
        self.networks
            .lock()
            .expect("fixture lock")
            .iter()
            .find(|n| n.name.as_deref() == Some(id) || n.id.as_deref() == Some(id))
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("network {id} not found")))
    }
    async fn network_create(
        &self,
        body: generated::NetworkCreateRequest,
    ) -> Result<generated::NetworkCreateResponse, ApiError> {
        let mut nets = self.networks.lock().expect("fixture lock");
        if nets
            .iter()
            .any(|n| n.name.as_deref() == Some(body.name.as_str()))
        {
            return Err(ApiError::Conflict(format!(
                "network with name {} already exists",
                body.name
            )));
        }
        let id = format!(
            "{:064x}",
            self.counter.fetch_add(1, Ordering::Relaxed) + 0x1000
        );
        nets.push(generated::NetworkInspect {
            name: Some(body.name),
            id: Some(id.clone()),
            driver: Some(body.driver.unwrap_or_else(|| "bridge".into())),
            scope: Some("local".into()),
            labels: body.labels,
            ..Default::default()
        });
        Ok(generated::NetworkCreateResponse {
            id,
            warning: String::new(),
        })
    }
    async fn network_remove(&self, id: &str) -> Result<(), ApiError> {
        let mut nets = self.networks.lock().expect("fixture lock");
        let before = nets.len();
        nets.retain(|n| n.name.as_deref() != Some(id) && n.id.as_deref() != Some(id));
        if nets.len() == before {
            return Err(ApiError::NotFound(format!("network {id} not found")));
        }
        Ok(())
    }
    async fn network_connect(
        &self,
        _id: &str,
        _body: generated::NetworkConnectRequest,
    ) -> Result<(), ApiError> {
        Err(not_in_fixture("network connect"))
    }
    async fn network_disconnect(
        &self,
        _id: &str,
        _body: generated::NetworkDisconnectRequest,
    ) -> Result<(), ApiError> {
        Err(not_in_fixture("network disconnect"))
    }
    async fn network_prune(
        &self,
        _q: PruneQuery,
    ) -> Result<generated::NetworkPruneResponse, ApiError> {
        let removed: Vec<String> =
            std::mem::take(&mut *self.networks.lock().expect("fixture lock"))
                .into_iter()
                .filter_map(|n| n.name)
                .collect();
        Ok(generated::NetworkPruneResponse {
            networks_deleted: Some(removed),
        })
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A server on a temporary socket, in its own runtime; stopped and cleaned up on drop.
pub struct TestServer {
    /// The runtime the server runs on; tests use it to drive their own clients.
    pub runtime: tokio::runtime::Runtime,
    /// The API socket.
    pub socket: PathBuf,
    /// The temporary directory holding the socket and the CLIs' config.
    pub dir: tempfile::TempDir,
    /// The fake daemon behind the server, for assertions on what it recorded.
    pub backend: Arc<FakeDaemon>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

/// Whether we run as root (the socket is chowned to root); read from /proc, no unsafe needed.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

impl TestServer {
    /// Serves `backend` on a fresh socket in a fresh temporary directory.
    pub fn start(backend: FakeDaemon) -> Self {
        let _ = tracing_init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a tokio runtime for the test server");
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "berth-api-{}-{}-",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ))
            .tempdir()
            .expect("make a temporary directory");
        let socket = dir.path().join("run/api.sock");
        let listener = {
            let _guard = runtime.enter();
            ApiListener::bind(&ListenAddr::Unix(socket.clone()), SocketOptions::default())
                .expect("bind the test API socket")
        };
        let backend = Arc::new(backend);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let b = Arc::clone(&backend);
        runtime.spawn(async move {
            let result = api_server::serve(listener, b, ServerConfig::default(), async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = result {
                eprintln!("test server failed: {e}");
            }
            let _ = done_tx.send(());
        });
        Self {
            runtime,
            socket,
            dir,
            backend,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// The socket as a DOCKER_HOST value.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A command running `program` under `timeout 30`, its DOCKER_HOST aimed at this server.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("30")
            .arg(program)
            .env("DOCKER_HOST", self.docker_host());
        cmd
    }

    /// Points a docker CLI command at this server's own client config, with no hints and no
    /// version or context from the caller's environment.
    fn docker_env(&self, cmd: &mut Command) {
        cmd.env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT");
    }

    /// Runs the real docker CLI against this server (bounded by `timeout`).
    pub fn docker(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command("docker");
        cmd.args(args);
        self.docker_env(&mut cmd);
        run_logged(cmd, &format!("docker {}", args.join(" ")), stdin)
    }

    /// Runs the docker CLI with a pseudo-terminal as its stdin and stdout (through `script`), so
    /// that `-t` works; the words of `args` must need no shell quoting.
    pub fn docker_in_pty(&self, args: &[&str]) -> Output {
        let mut cmd = self.in_pty(&format!("docker {}", args.join(" ")));
        self.docker_env(&mut cmd);
        run_logged_in_pty(cmd)
    }

    /// A command running the shell command `line` under `script`, so that it has a
    /// pseudo-terminal as its stdin and stdout; run it with [`run_logged_in_pty`].
    pub fn in_pty(&self, line: &str) -> Command {
        let mut cmd = self.command("script");
        cmd.args(["-qec", line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::null());
        cmd
    }

    /// The HostConfig and Config the fake daemon recorded for a container, as JSON.
    pub fn recorded(&self, name: &str) -> serde_json::Value {
        let list = self.backend.containers.lock().expect("fixture lock");
        let c = list
            .iter()
            .find(|c| c.name == name)
            .expect("the container was created");
        serde_json::to_value(&c.host_config).expect("HostConfig as JSON")
    }

    /// The API socket's path.
    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

/// Runs `cmd` with `stdin` (or none) as its input, and logs the command (`shown`), its exit
/// code and its output for the test's report.
pub fn run_logged(mut cmd: Command, shown: &str, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run `{shown}`: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("the CLI's stdin pipe");
        pipe.write_all(input.as_bytes())
            .expect("write the CLI's stdin");
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for `{shown}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    log_run(shown, &out, stdout);
    out
}

/// Runs a command made by [`TestServer::in_pty`] and logs it with its exit code and output.
pub fn run_logged_in_pty(mut cmd: Command) -> Output {
    let line = cmd
        .get_args()
        .nth(3)
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run `{line}` under script: {e}"));
    // A terminal's output is shown escaped: its control characters would garble the report.
    let stdout = format!("{:?}", String::from_utf8_lossy(&out.stdout));
    log_run(&format!("{line} (in a pty)"), &out, stdout);
    out
}

/// Logs a finished command for the test's report.
fn log_run(shown: &str, out: &Output, stdout: String) {
    eprintln!(
        "$ {shown}\n-> {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tracing_init() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "api_server=debug".into()),
        )
        .with_test_writer()
        .try_init()
}

/// The fake containers' names, for assertions.
pub fn names(d: &FakeDaemon) -> HashMap<String, String> {
    d.containers
        .lock()
        .expect("fixture lock")
        .iter()
        .map(|c| (c.name.clone(), c.id.clone()))
        .collect()
}

/// Writes all of `data` then half-closes, for raw hijack tests.
pub async fn write_and_close<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, data: &[u8]) {
    w.write_all(data)
        .await
        .expect("write to the hijacked connection");
    w.shutdown()
        .await
        .expect("half-close the hijacked connection");
}

impl api_server::VolumeBackend for FakeDaemon {
    async fn volume_list(
        &self,
        filters: api_types::Filters,
    ) -> Result<api_types::models::generated::VolumeListResponse, ApiError> {
        let names: Vec<String> = filters.get("name").map(str::to_owned).collect();
        let volumes = self
            .volumes
            .lock()
            .expect("fixture lock")
            .values()
            .filter(|v| names.is_empty() || names.iter().any(|n| v.name.contains(n.as_str())))
            .cloned()
            .collect();
        Ok(api_types::models::generated::VolumeListResponse {
            volumes: Some(volumes),
            warnings: None,
        })
    }

    async fn volume_create(
        &self,
        body: api_types::models::generated::VolumeCreateRequest,
    ) -> Result<api_types::models::generated::Volume, ApiError> {
        let name = body
            .name
            .unwrap_or_else(|| format!("{:064x}", self.counter.fetch_add(1, Ordering::SeqCst)));
        let mut map = self.volumes.lock().expect("fixture lock");
        let v = map
            .entry(name.clone())
            .or_insert_with(|| api_types::models::generated::Volume {
                name: name.clone(),
                driver: "local".into(),
                mountpoint: format!("/fake/volumes/{name}/_data"),
                labels: body.labels.unwrap_or_default(),
                scope: Some(api_types::models::generated::VolumeScopeEnum::LOCAL),
                ..Default::default()
            });
        Ok(v.clone())
    }

    async fn volume_inspect(
        &self,
        name: &str,
    ) -> Result<api_types::models::generated::Volume, ApiError> {
        self.volumes
            .lock()
            .expect("fixture lock")
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("get {name}: no such volume")))
    }

    async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ApiError> {
        match self.volumes.lock().expect("fixture lock").remove(name) {
            Some(_) => Ok(()),
            None if force => Ok(()),
            None => Err(ApiError::NotFound(format!("get {name}: no such volume"))),
        }
    }

    async fn volume_prune(
        &self,
        _filters: api_types::Filters,
    ) -> Result<api_types::models::generated::VolumePruneResponse, ApiError> {
        Err(not_in_fixture("volume prune"))
    }
}
