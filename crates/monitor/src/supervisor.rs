//! The container's supervisor: made before any thread exists, then one `poll(2)` loop until the
//! container exits.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_protocol::{
    encode_frame, Envelope, ExitStatus, FrameKind, MonitorConfig, MonitorState, Request, Response,
    PROTOCOL_VERSION,
};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime::container::{CreateOptions, ExecOptions};
use runtime::process::finalize::Stdio;

use crate::engine::Engine;
use crate::log::{JsonLog, Stream};
use crate::{write_state, MonitorError};

/// How long a client may take to send its request line, and to take a frame.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the monitor waits after its last request before it gives back the memory the work
/// touched (see [`Supervisor::settle`]): long enough that `docker run`'s create-then-start and
/// an exec's start-then-inspect do not pay for it in between, short enough that an idle
/// monitor is small within a second.
const SETTLE_AFTER: Duration = Duration::from_secs(1);

/// A client receiving the container's output.
struct Attach {
    sock: UnixStream,
    stdout: bool,
    stderr: bool,
    /// Still reading the client's input for the container's stdin.
    stdin: bool,
}

/// A process started by `exec`, with its own pipes and client.
struct Exec {
    pid: Pid,
    sock: UnixStream,
    stdin: Option<OwnedFd>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// The client still sends input.
    reading: bool,
}

/// What a poll slot stands for.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Signals,
    Lifeline,
    Out,
    Err,
    Pty,
    AttachInput(usize),
    ExecOut(usize),
    ExecErr(usize),
    ExecInput(usize),
}

/// One supervised container.
pub struct Supervisor {
    config: MonitorConfig,
    engine: Engine,
    init: Pid,
    listener: UnixListener,
    signals: SignalFd,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    log: JsonLog,
    attaches: Vec<Attach>,
    waiters: Vec<UnixStream>,
    execs: Vec<Exec>,
    state: MonitorState,
    exec_count: u64,
    /// Readable end of berthd's lifeline pipe, until the start: end-of-file on it means
    /// berthd died before starting the container.
    lifeline: Option<OwnedFd>,
    /// When to give back the memory the last burst of work touched, if it is still to do.
    settle_at: Option<Instant>,
}

fn rootfs_dir(config: &MonitorConfig) -> PathBuf {
    config.bundle.join("rootfs")
}

fn pipe() -> Result<(OwnedFd, OwnedFd), MonitorError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| MonitorError::sys("pipe2", e))
}

fn nonblocking(fd: &OwnedFd) -> Result<(), MonitorError> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(|_| ())
        .map_err(|e| MonitorError::sys("fcntl(O_NONBLOCK)", e))
}

/// A process's stdio as pipes: the child's ends, and the monitor's (its output ends
/// non-blocking for the poll loop; stdin only when the process gets one, else /dev/null).
struct StdioPipes {
    child: Arc<Stdio>,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl StdioPipes {
    fn new(with_stdin: bool) -> Result<Self, MonitorError> {
        let (in_r, in_w) = if with_stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (dev_null()?, None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        nonblocking(&out_r)?;
        nonblocking(&err_r)?;
        Ok(StdioPipes {
            child: Arc::new(Stdio {
                stdin: in_r,
                stdout: out_w,
                stderr: err_w,
            }),
            stdin: in_w,
            stdout: out_r,
            stderr: err_r,
        })
    }
}

fn dev_null() -> Result<OwnedFd, MonitorError> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| MonitorError::io("open", Path::new("/dev/null"), e))
}

/// Moves the monitor into a mount namespace of its own whose mounts are slaves of the host's:
/// mounts made on the host still reach it (and the container), the rootfs mount made here never
/// reaches the host, and it goes with the monitor whatever way the monitor ends.
fn own_mount_namespace() -> Result<(), MonitorError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| MonitorError::sys("unshare a mount namespace for the monitor", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| MonitorError::sys("make the monitor's mounts slaves of the host's", e))
}

/// Mounts the container's rootfs as the image store described it.
fn mount_rootfs(config: &MonitorConfig) -> Result<(), MonitorError> {
    let target = rootfs_dir(config);
    std::fs::create_dir_all(&target).map_err(|e| MonitorError::io("create", &target, e))?;
    let m = &config.rootfs;
    let (fstype, flags, data) = match m.typ.as_str() {
        "bind" => (None, MsFlags::MS_BIND | MsFlags::MS_REC, None),
        typ => (Some(typ), MsFlags::empty(), Some(m.options.join(","))),
    };
    nix::mount::mount(
        Some(m.source.as_str()),
        &target,
        fstype,
        flags,
        data.as_deref(),
    )
    .map_err(|e| {
        MonitorError::sys(
            format!("mount {} ({}) on {}", m.typ, m.source, target.display()),
            e,
        )
    })
}

/// Unmounts the rootfs; absent is fine.
pub fn unmount_rootfs(dir: &Path) -> Result<(), MonitorError> {
    match nix::mount::umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(MonitorError::sys(format!("unmount {}", dir.display()), e)),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn reply(sock: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let line = monitor_protocol::to_line(response).map_err(std::io::Error::other)?;
    sock.write_all(&line)
}

/// Reads one request line, byte by byte so that stdin bytes after it stay in the socket.
fn read_request(sock: &mut UnixStream) -> Result<Envelope, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match sock.read(&mut b) {
            Ok(0) => return Err("the client closed the connection before its request".into()),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the request: {e}")),
        }
        if line.len() > 1 << 20 {
            return Err("the request is longer than 1 MiB".into());
        }
    }
    serde_json::from_slice(&line).map_err(|e| format!("malformed request: {e}"))
}

/// Reads what is available; `None` at end of file (or a pty whose other side is gone).
fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Some(0),
            Err(_) => return None,
        }
    }
}

fn write_all_fd(fd: &OwnedFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

impl Supervisor {
    /// Mounts the rootfs and creates the container (its init waits for `Start`), then opens the
    /// log and the socket. Must be called while the process has one thread.
    pub fn create(config: MonitorConfig, lifeline: OwnedFd) -> Result<Self, MonitorError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGPIPE);
        mask.thread_block()
            .map_err(|e| MonitorError::sys("sigprocmask", e))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| MonitorError::sys("signalfd", e))?;
        let engine = match &config.runtime {
            None => Engine::in_process(&config.runtime_root)?,
            Some(b) => Engine::binary(&b.path, &b.root, &config.bundle)?,
        };
        if config.own_mount_namespace {
            own_mount_namespace()?;
        }
        mount_rootfs(&config)?;
        let made = Self::make(config.clone(), engine, signals, lifeline);
        if made.is_err() {
            let _ = unmount_rootfs(&rootfs_dir(&config));
        }
        made
    }

    fn make(
        config: MonitorConfig,
        mut engine: Engine,
        signals: SignalFd,
        lifeline: OwnedFd,
    ) -> Result<Self, MonitorError> {
        let mut opts = CreateOptions {
            id: config.id.clone(),
            bundle: config.bundle.clone(),
            ..CreateOptions::default()
        };
        let (mut out, mut err, mut stdin, mut console) = (None, None, None, None);
        if config.tty {
            let path = config.socket_path.with_extension("tty");
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .map_err(|e| MonitorError::io("listen on console socket", &path, e))?;
            opts.console_socket = Some(path.clone());
            console = Some((l, path));
        } else {
            let pipes = StdioPipes::new(config.open_stdin)?;
            opts.stdio = Some(pipes.child);
            out = Some(pipes.stdout);
            err = Some(pipes.stderr);
            stdin = pipes.stdin;
        }
        let init = engine.create(&opts)?;
        let net = if config.interfaces.is_empty() {
            crate::loopback::bring_up(init)
        } else {
            crate::network::attach_all(init, &config.interfaces)
        };
        if let Err(e) = net {
            let _ = engine.delete(&config.id);
            return Err(e);
        }
        // The container's ends of the pipes now belong to its init alone, so the monitor
        // sees end-of-file when the container's last writer goes.
        drop(opts);
        let undo = |engine: &Engine| {
            let _ = engine.delete(&config.id);
        };
        let pty = match console {
            Some((listener, path)) => {
                let got = listener
                    .accept()
                    .map_err(|e| MonitorError::io("accept on console socket", &path, e))
                    .and_then(|(s, _)| {
                        runtime::console::receive_master(&s)
                            .map_err(|e| MonitorError::Runtime(e.into()))
                    });
                let _ = std::fs::remove_file(&path);
                match got {
                    Ok(m) => {
                        nonblocking(&m.master)?;
                        Some(m.master)
                    }
                    Err(e) => {
                        undo(&engine);
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let rest = (|| {
            let log = JsonLog::open(&config.log_path, config.log_max_size, config.log_max_files)?;
            let _ = std::fs::remove_file(&config.socket_path);
            let listener = UnixListener::bind(&config.socket_path)
                .map_err(|e| MonitorError::io("listen on", &config.socket_path, e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| MonitorError::io("set non-blocking", &config.socket_path, e))?;
            let state = MonitorState {
                monitor_pid: std::process::id() as i32,
                pid: init.as_raw(),
                started_at: None,
                exit: None,
                error: None,
            };
            write_state(&config.state_path, &state)?;
            Ok((log, listener, state))
        })();
        let (log, listener, state) = match rest {
            Ok(v) => v,
            Err(e) => {
                undo(&engine);
                return Err(e);
            }
        };
        Ok(Supervisor {
            config,
            engine,
            init,
            listener,
            signals,
            out,
            err,
            stdin,
            pty,
            log,
            attaches: Vec::new(),
            waiters: Vec::new(),
            execs: Vec::new(),
            state,
            exec_count: 0,
            lifeline: Some(lifeline),
            settle_at: Some(Instant::now() + SETTLE_AFTER),
        })
    }

    /// Serves until the container has exited and everything is cleaned up.
    pub fn run(&mut self) -> Result<(), MonitorError> {
        loop {
            let ready = self.poll()?;
            if ready.is_empty() {
                self.settle();
                continue;
            }
            let mut exited = None;
            for (slot, flags) in ready {
                if matches!(slot, Slot::Listener) {
                    self.settle_at = Some(Instant::now() + SETTLE_AFTER);
                }
                if let Some(code) = self.handle(slot, flags)? {
                    exited = Some(code);
                }
            }
            self.execs.retain(|e| e.pid.as_raw() != 0);
            if let Some(code) = exited {
                return self.finish(code);
            }
        }
    }

    /// Gives back what the last burst of work left mapped: the heap's free pages, and the page
    /// table entries for the code and read-only data that making the container (the runtime,
    /// libseccomp, serde) or serving a request ran through. Those pages stay in the page cache,
    /// shared by every monitor; the loop maps again only the few it runs. Without this an idle
    /// monitor's RSS stays at the high-water mark of its set-up (about 5 MiB), with it about
    /// the loop's own working set.
    fn settle(&mut self) {
        self.settle_at = None;
        berth_sys::memory::trim_heap();
        let _ = berth_sys::memory::drop_clean_file_pages();
    }

    fn poll(&self) -> Result<Vec<(Slot, PollFlags)>, MonitorError> {
        let mut slots: Vec<(Slot, BorrowedFd<'_>)> = vec![
            (Slot::Listener, self.listener.as_fd()),
            (Slot::Signals, self.signals.as_fd()),
        ];
        if let Some(fd) = &self.lifeline {
            slots.push((Slot::Lifeline, fd.as_fd()));
        }
        if let Some(fd) = &self.out {
            slots.push((Slot::Out, fd.as_fd()));
        }
        if let Some(fd) = &self.err {
            slots.push((Slot::Err, fd.as_fd()));
        }
        if let Some(fd) = &self.pty {
            slots.push((Slot::Pty, fd.as_fd()));
        }
        for (i, a) in self.attaches.iter().enumerate() {
            if a.stdin {
                slots.push((Slot::AttachInput(i), a.sock.as_fd()));
            }
        }
        for (i, e) in self.execs.iter().enumerate() {
            if let Some(fd) = &e.out {
                slots.push((Slot::ExecOut(i), fd.as_fd()));
            }
            if let Some(fd) = &e.err {
                slots.push((Slot::ExecErr(i), fd.as_fd()));
            }
            if e.reading {
                slots.push((Slot::ExecInput(i), e.sock.as_fd()));
            }
        }
        let mut fds: Vec<PollFd<'_>> = slots
            .iter()
            .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        loop {
            let timeout = match self.settle_at {
                None => PollTimeout::NONE,
                Some(at) => {
                    let ms = at.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(MonitorError::sys("poll", e)),
            }
        }
        Ok(slots
            .iter()
            .zip(fds.iter())
            .filter_map(|((slot, _), fd)| {
                let r = fd.revents().unwrap_or(PollFlags::empty());
                (!r.is_empty()).then_some((*slot, r))
            })
            .collect())
    }

    /// Handles one ready descriptor; returns the init's exit code once it has exited.
    fn handle(&mut self, slot: Slot, _flags: PollFlags) -> Result<Option<i32>, MonitorError> {
        let mut buf = vec![0u8; 32 * 1024];
        match slot {
            Slot::Listener => self.accept_all(),
            Slot::Signals => return self.reap(),
            Slot::Lifeline => {
                // Any event here is end-of-file (berthd writes nothing): berthd is gone and
                // will never start this container. Killing the init ends it the usual way.
                self.lifeline = None;
                if self.state.started_at.is_none() {
                    let _ = nix::sys::signal::kill(self.init, Signal::SIGKILL);
                }
            }
            Slot::Out | Slot::Err | Slot::Pty => self.pump_output(slot, &mut buf)?,
            Slot::AttachInput(i) => self.attach_input(i, &mut buf),
            Slot::ExecOut(i) | Slot::ExecErr(i) => {
                let kind = if matches!(slot, Slot::ExecOut(_)) {
                    FrameKind::Stdout
                } else {
                    FrameKind::Stderr
                };
                self.exec_output(i, kind, &mut buf)
            }
            Slot::ExecInput(i) => self.exec_input(i, &mut buf),
        }
        Ok(None)
    }

    fn pump_output(&mut self, slot: Slot, buf: &mut [u8]) -> Result<(), MonitorError> {
        let (fd, stream) = match slot {
            Slot::Out => (&mut self.out, Stream::Stdout),
            Slot::Err => (&mut self.err, Stream::Stderr),
            _ => (&mut self.pty, Stream::Stdout),
        };
        let Some(f) = fd.as_ref() else {
            return Ok(());
        };
        match read_some(f, buf) {
            None => *fd = None,
            Some(0) => {}
            Some(n) => self.output(stream, &buf[..n])?,
        }
        Ok(())
    }

    fn output(&mut self, stream: Stream, data: &[u8]) -> Result<(), MonitorError> {
        self.log.write(stream, data)?;
        let kind = match stream {
            Stream::Stdout => FrameKind::Stdout,
            Stream::Stderr => FrameKind::Stderr,
        };
        let frame = encode_frame(kind, data);
        self.attaches.retain_mut(|a| {
            let wanted = match stream {
                Stream::Stdout => a.stdout,
                Stream::Stderr => a.stderr,
            };
            !wanted || a.sock.write_all(&frame).is_ok()
        });
        Ok(())
    }

    fn attach_input(&mut self, i: usize, buf: &mut [u8]) {
        let Some(a) = self.attaches.get_mut(i) else {
            return;
        };
        let n = a.sock.read(buf).unwrap_or(0);
        if n == 0 {
            a.stdin = false;
            if self.config.stdin_once {
                self.stdin = None;
            }
            return;
        }
        let target = self.pty.as_ref().or(self.stdin.as_ref());
        if let Some(fd) = target {
            if !write_all_fd(fd, &buf[..n]) {
                self.stdin = None;
            }
        }
    }

    fn exec_output(&mut self, i: usize, kind: FrameKind, buf: &mut [u8]) {
        let Some(e) = self.execs.get_mut(i) else {
            return;
        };
        let fd = if kind == FrameKind::Stdout {
            &mut e.out
        } else {
            &mut e.err
        };
        let Some(f) = fd.as_ref() else {
            return;
        };
        match read_some(f, buf) {
            None => *fd = None,
            Some(0) => {}
            Some(n) => {
                // A client that went away loses its output; the process runs on.
                let _ = e.sock.write_all(&encode_frame(kind, &buf[..n]));
            }
        }
    }

    fn exec_input(&mut self, i: usize, buf: &mut [u8]) {
        let Some(e) = self.execs.get_mut(i) else {
            return;
        };
        let n = e.sock.read(buf).unwrap_or(0);
        if n == 0 {
            e.reading = false;
            e.stdin = None;
            return;
        }
        if let Some(fd) = &e.stdin {
            if !write_all_fd(fd, &buf[..n]) {
                e.stdin = None;
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => self.serve(sock),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn serve(&mut self, mut sock: UnixStream) {
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_read_timeout(Some(CLIENT_TIMEOUT));
        let _ = sock.set_write_timeout(Some(CLIENT_TIMEOUT));
        let envelope = match read_request(&mut sock) {
            Ok(e) => e,
            Err(message) => {
                let _ = reply(&mut sock, &Response::Error { message });
                return;
            }
        };
        if envelope.version != PROTOCOL_VERSION {
            let message = format!(
                "monitor protocol version {} is not the {PROTOCOL_VERSION} this monitor speaks",
                envelope.version
            );
            let _ = reply(&mut sock, &Response::Error { message });
            return;
        }
        let _ = sock.set_read_timeout(None);
        let response = match envelope.request {
            Request::Start => self.start(),
            Request::Attach {
                stdout,
                stderr,
                stdin,
            } => {
                if reply(&mut sock, &Response::Ok).is_ok() {
                    self.attaches.push(Attach {
                        sock,
                        stdout,
                        stderr,
                        stdin: stdin && (self.stdin.is_some() || self.pty.is_some()),
                    });
                }
                return;
            }
            Request::Resize { height, width } => match &self.pty {
                Some(m) => match runtime::console::set_window_size(m, height, width) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: e.to_string(),
                    },
                },
                None => Response::Error {
                    message: format!("container {} has no terminal to resize", self.config.id),
                },
            },
            Request::ResizeExec { pid, height, width } => {
                match self.execs.iter().find(|e| e.pid.as_raw() == pid) {
                    Some(Exec {
                        out: Some(m),
                        err: None,
                        ..
                    }) => match runtime::console::set_window_size(m, height, width) {
                        Ok(()) => Response::Ok,
                        Err(e) => Response::Error {
                            message: e.to_string(),
                        },
                    },
                    _ => Response::Error {
                        message: format!("no exec with a terminal has pid {pid}"),
                    },
                }
            }
            Request::Update { resources } => {
                match self
                    .engine
                    .update(&self.config.id, &resources, &self.config.bundle)
                {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: e.to_string(),
                    },
                }
            }
            Request::Connect { interface } => {
                match crate::network::attach_all(self.init, std::slice::from_ref(&interface)) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: e.to_string(),
                    },
                }
            }
            Request::Disconnect { host_ifname } => match crate::network::detach(&host_ifname) {
                Ok(()) => Response::Ok,
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Request::Pause => self.freeze(true),
            Request::Resume => self.freeze(false),
            Request::Stats => match self.engine.stats(&self.config.id) {
                Ok(st) => Response::Stats(st),
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Request::Pids => match self.engine.pids(&self.config.id) {
                Ok(pids) => Response::Pids { pids },
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Request::Kill { signal } => self.kill(signal),
            Request::Wait => match &self.state.exit {
                Some(exit) => Response::Exited(exit.clone()),
                None => {
                    self.waiters.push(sock);
                    return;
                }
            },
            Request::State => Response::State(self.state.clone()),
            Request::Exec { process, stdin } => match self.exec(&process, stdin) {
                Ok((pid, exec_stdin, out, err)) => {
                    if reply(&mut sock, &Response::ExecStarted { pid: pid.as_raw() }).is_ok() {
                        let _ = sock.set_write_timeout(Some(CLIENT_TIMEOUT));
                        self.execs.push(Exec {
                            pid,
                            sock,
                            stdin: exec_stdin,
                            out: Some(out),
                            err,
                            reading: stdin,
                        });
                    } else {
                        self.execs.push(Exec {
                            pid,
                            sock,
                            stdin: None,
                            out: Some(out),
                            err,
                            reading: false,
                        });
                    }
                    return;
                }
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
        };
        let _ = reply(&mut sock, &response);
    }

    fn start(&mut self) -> Response {
        if self.state.started_at.is_some() {
            return Response::Started {
                pid: self.init.as_raw(),
            };
        }
        match self.engine.start(&self.config.id) {
            Ok(_) => {
                self.lifeline = None;
                self.state.started_at = Some(now());
                if let Err(e) = write_state(&self.config.state_path, &self.state) {
                    return Response::Error {
                        message: e.to_string(),
                    };
                }
                Response::Started {
                    pid: self.init.as_raw(),
                }
            }
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    fn freeze(&self, on: bool) -> Response {
        let done = self.engine.freeze(&self.config.id, on);
        match done {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    fn kill(&self, signal: i32) -> Response {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => {
                return Response::Error {
                    message: format!("invalid signal {signal}"),
                }
            }
        };
        match nix::sys::signal::kill(self.init, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Response::Ok,
            Err(e) => Response::Error {
                message: format!(
                    "kill {} with {sig} (container {}): {e}",
                    self.init, self.config.id
                ),
            },
        }
    }

    /// Runs a process in the container; the runtime forks, which is safe here because this
    /// process has one thread.
    #[allow(clippy::type_complexity)]
    fn exec(
        &mut self,
        process: &oci_spec::runtime::Process,
        with_stdin: bool,
    ) -> Result<(Pid, Option<OwnedFd>, OwnedFd, Option<OwnedFd>), MonitorError> {
        self.exec_count += 1;
        let pid_file = self
            .config
            .bundle
            .join(format!("exec-{}.pid", self.exec_count));
        let read_pid = |pid_file: &Path| -> Result<Pid, MonitorError> {
            let text = std::fs::read_to_string(pid_file)
                .map_err(|e| MonitorError::io("read", pid_file, e))?;
            let _ = std::fs::remove_file(pid_file);
            let pid: i32 = text.trim().parse().map_err(|_| MonitorError::Config {
                path: pid_file.to_path_buf(),
                message: format!("not a pid: {text:?}"),
            })?;
            Ok(Pid::from_raw(pid))
        };
        if process.terminal() == Some(true) {
            // The pty master arrives on a console socket, as for a `-t` container; it
            // carries both directions, so it is the exec's output and (a duplicate) its input.
            let path = self
                .config
                .socket_path
                .with_extension(format!("e{}.tty", self.exec_count));
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)
                .map_err(|e| MonitorError::io("listen on console socket", &path, e))?;
            let opts = ExecOptions {
                pid_file: Some(pid_file.clone()),
                detach: true,
                console_socket: Some(path.clone()),
                ..ExecOptions::default()
            };
            let ran = self.engine.exec(
                &self.config.id,
                process,
                &opts,
                &self.config.bundle,
                self.exec_count,
            );
            let master = ran.and_then(|_| {
                let (s, _) = listener
                    .accept()
                    .map_err(|e| MonitorError::io("accept on console socket", &path, e))?;
                runtime::console::receive_master(&s).map_err(|e| MonitorError::Runtime(e.into()))
            });
            let _ = std::fs::remove_file(&path);
            let master = master?.master;
            nonblocking(&master)?;
            let input = if with_stdin {
                Some(
                    nix::unistd::dup(&master)
                        .map_err(|e| MonitorError::sys("dup pty master", e))?,
                )
            } else {
                None
            };
            return Ok((read_pid(&pid_file)?, input, master, None));
        }
        let pipes = StdioPipes::new(with_stdin)?;
        let opts = ExecOptions {
            pid_file: Some(pid_file.clone()),
            detach: true,
            stdio: Some(pipes.child),
            ..ExecOptions::default()
        };
        self.engine.exec(
            &self.config.id,
            process,
            &opts,
            &self.config.bundle,
            self.exec_count,
        )?;
        drop(opts);
        Ok((
            read_pid(&pid_file)?,
            pipes.stdin,
            pipes.stdout,
            Some(pipes.stderr),
        ))
    }

    /// Reaps exited children; returns the init's exit code if it was among them.
    fn reap(&mut self) -> Result<Option<i32>, MonitorError> {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        let mut init_code = None;
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) => (p, c),
                Ok(WaitStatus::Signaled(p, s, _)) => (p, 128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(MonitorError::sys("waitpid", e)),
            };
            if pid == self.init {
                init_code = Some(code);
            } else if let Some(i) = self.execs.iter().position(|e| e.pid == pid) {
                self.end_exec(i, code);
            }
        }
        Ok(init_code)
    }

    fn end_exec(&mut self, i: usize, code: i32) {
        let mut buf = vec![0u8; 32 * 1024];
        for kind in [FrameKind::Stdout, FrameKind::Stderr] {
            while self.execs[i].out.is_some() || self.execs[i].err.is_some() {
                let e = &mut self.execs[i];
                let fd = if kind == FrameKind::Stdout {
                    &mut e.out
                } else {
                    &mut e.err
                };
                let Some(f) = fd.as_ref() else { break };
                match read_some(f, &mut buf) {
                    None | Some(0) => {
                        *fd = None;
                        break;
                    }
                    Some(n) => {
                        let _ = e.sock.write_all(&encode_frame(kind, &buf[..n]));
                    }
                }
            }
        }
        let e = &mut self.execs[i];
        let _ = e
            .sock
            .write_all(&encode_frame(FrameKind::Exit, &code.to_be_bytes()));
        let _ = e.sock.shutdown(std::net::Shutdown::Both);
        e.pid = Pid::from_raw(0);
    }

    /// After the init's exit: drain, record, clean up, answer, exit.
    fn finish(&mut self, code: i32) -> Result<(), MonitorError> {
        let mut buf = vec![0u8; 32 * 1024];
        for slot in [Slot::Out, Slot::Err, Slot::Pty] {
            loop {
                let open = match slot {
                    Slot::Out => self.out.is_some(),
                    Slot::Err => self.err.is_some(),
                    _ => self.pty.is_some(),
                };
                if !open {
                    break;
                }
                let fd = match slot {
                    Slot::Out => &mut self.out,
                    Slot::Err => &mut self.err,
                    _ => &mut self.pty,
                };
                let Some(f) = fd.as_ref() else { break };
                match read_some(f, &mut buf) {
                    None | Some(0) => *fd = None,
                    Some(n) => {
                        let stream = if matches!(slot, Slot::Err) {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        };
                        self.output(stream, &buf[..n])?;
                    }
                }
            }
        }
        let mut failures = Vec::new();
        if let Err(e) = self.log.flush() {
            failures.push(e.to_string());
        }
        for a in self.attaches.drain(..) {
            let _ = a.sock.shutdown(std::net::Shutdown::Both);
        }
        let oom_killed = self.engine.oom_killed();
        for e in self.execs.drain(..) {
            let _ = e.sock.shutdown(std::net::Shutdown::Both);
        }
        if let Err(e) = self.engine.delete(&self.config.id) {
            failures.push(e.to_string());
        }
        if let Err(e) = unmount_rootfs(&rootfs_dir(&self.config)) {
            failures.push(e.to_string());
        }
        let exit = ExitStatus {
            code,
            finished_at: now(),
            oom_killed,
        };
        self.state.exit = Some(exit.clone());
        if !failures.is_empty() {
            self.state.error = Some(failures.join("; "));
        }
        if let Err(e) = write_state(&self.config.state_path, &self.state) {
            failures.push(e.to_string());
        }
        let _ = std::fs::remove_file(&self.config.socket_path);
        for mut w in self.waiters.drain(..) {
            let _ = reply(&mut w, &Response::Exited(exit.clone()));
        }
        // Children the container left behind (re-parented to this subreaper) are reaped.
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
            waitpid(None, Some(WaitPidFlag::WNOHANG))
        {}
        if failures.is_empty() {
            Ok(())
        } else {
            Err(MonitorError::Config {
                path: self.config.bundle.clone(),
                message: failures.join("; "),
            })
        }
    }
}
