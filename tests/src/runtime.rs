//! A runc-compatible runtime binary driven as a user drives it: `<binary> --root <dir> <verb> ...`.
//!
//! The binary is `BERTH_TEST_RUNTIME` when set (runc, crun or any other), else the workspace's
//! `target/<profile>/berth-runtime` next to the test executable. Each [`Runtime`] has its own
//! state root, so tests run in parallel; dropping it kills and force-deletes every container it
//! created and removes the root, also when the test failed half-way.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;
use tempfile::TempDir;

use crate::bundle::{Bundle, BundleError};
use crate::names::unique_name;
use crate::wait::{self, WaitError};

/// The variable that selects the runtime binary under test.
pub const RUNTIME_ENV: &str = "BERTH_TEST_RUNTIME";

/// How long one invocation of the runtime may take before the test fails.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a started container may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors while driving the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The tests were not run as root.
    #[error(
        "runtime tests need root (they create namespaces, cgroups and mounts); run them as root"
    )]
    NotRoot,
    /// The binary to test does not exist.
    #[error("runtime binary {path} does not exist: build it first (`cargo build -p berth-runtime`) or set {RUNTIME_ENV}=/path/to/runtime")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The binary exists but `--version` failed.
    #[error("runtime binary {path} does not run: `{path} --version` {detail}")]
    DoesNotRun {
        /// The binary.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// The binary under test is missing or does not run (the probe's message).
    #[error("{0}")]
    Unavailable(String),
    /// A temporary directory or output file could not be made or read.
    #[error("runtime fixture: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The runtime could not be started.
    #[error("spawn {binary} {args}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Its arguments.
        args: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// An invocation did not finish in time.
    #[error(
        "`{command}` did not finish within {timeout:?}; it was killed. stderr so far: {stderr}"
    )]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
        /// Its stderr up to then.
        stderr: String,
    },
    /// An invocation exited non-zero where success was needed.
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit code or signal.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// An invocation's output was not the JSON expected.
    #[error("`{command}` printed no valid JSON ({source}): {stdout}")]
    BadJson {
        /// The command line.
        command: String,
        /// The parser's error.
        source: serde_json::Error,
        /// What it printed.
        stdout: String,
    },
    /// The bundle could not be written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A bounded wait failed.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Which runtime the binary is, from its name and `--version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// berth-runtime.
    Berth,
    /// runc.
    Runc,
    /// crun.
    Crun,
    /// Another runc-compatible runtime.
    Other,
}

/// What one invocation did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// The exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    /// What it printed on stdout (until it exited).
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// The file that received stdout; a detached container keeps writing to it.
    pub stdout_path: PathBuf,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Itself if it exited 0, else an error with its stderr.
    pub fn ok(self) -> Result<Output, RuntimeError> {
        if self.success() {
            Ok(self)
        } else {
            Err(RuntimeError::Failed {
                status: self.status(),
                command: self.command,
                stderr: self.stderr,
            })
        }
    }

    /// The exit status in words.
    pub fn status(&self) -> String {
        match self.code {
            Some(code) => format!("exit code {code}"),
            None => "a signal".to_owned(),
        }
    }

    /// Everything written to stdout so far, including what a container wrote after the
    /// runtime exited.
    pub fn stdout_now(&self) -> String {
        fs::read(&self.stdout_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Result<Value, RuntimeError> {
        serde_json::from_str(&self.stdout).map_err(|source| RuntimeError::BadJson {
            command: self.command.clone(),
            source,
            stdout: self.stdout.clone(),
        })
    }
}

/// Options for one invocation.
#[derive(Debug, Default, Clone)]
pub struct Invocation {
    /// The working directory of the runtime process.
    pub cwd: Option<PathBuf>,
    /// Files to open read-only at these fd numbers (>= 3) in the runtime process.
    pub open_fds: Vec<(u32, PathBuf)>,
    /// A timeout other than [`INVOCATION_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// A runtime process started by [`Runtime::spawn_with`], not yet waited for.
#[derive(Debug)]
pub struct Spawned {
    child: std::process::Child,
    command: String,
    timeout: Duration,
    /// The file receiving its stdout (and a container's, when it passes stdio through).
    pub stdout_path: PathBuf,
    stderr_path: PathBuf,
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Spawned {
    /// The runtime process's pid.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// Waits for it to exit, within its invocation's timeout (else kills it and fails).
    pub fn wait(mut self) -> Result<Output, RuntimeError> {
        if let Err(e) = wait::process_exit(self.pid(), self.timeout) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(match e {
                WaitError::Timeout { .. } => RuntimeError::Timeout {
                    command: self.command,
                    timeout: self.timeout,
                    stderr: read_lossy(&self.stderr_path),
                },
                other => RuntimeError::Wait(other),
            });
        }
        let status = self.child.wait().map_err(|source| RuntimeError::Io {
            op: "wait for",
            path: PathBuf::from(&self.command),
            source,
        })?;
        Ok(Output {
            command: self.command,
            code: status.code(),
            stdout: read_lossy(&self.stdout_path),
            stderr: read_lossy(&self.stderr_path),
            stdout_path: self.stdout_path,
        })
    }
}

/// A runtime binary with its own state root.
#[derive(Debug)]
pub struct Runtime {
    binary: PathBuf,
    flavor: Flavor,
    root: TempDir,
    scratch: TempDir,
    containers: Mutex<Vec<String>>,
    invocations: AtomicU32,
}

/// The binary under test and its flavour, checked once per test process.
fn selected_binary() -> Result<(PathBuf, Flavor), RuntimeError> {
    static SELECTED: OnceLock<Result<(PathBuf, Flavor), String>> = OnceLock::new();
    SELECTED
        .get_or_init(|| probe(&default_binary()).map_err(|e| e.to_string()))
        .clone()
        .map_err(RuntimeError::Unavailable)
}

/// `BERTH_TEST_RUNTIME`, else `target/<profile>/berth-runtime` beside this test executable
/// (which lives in `target/<profile>/deps/`).
pub fn default_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(RUNTIME_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .map(|deps| {
            if deps.ends_with("deps") {
                deps.parent().unwrap_or(deps)
            } else {
                deps
            }
        })
        .unwrap_or_else(|| Path::new("target/debug"));
    profile_dir.join("berth-runtime")
}

fn probe(binary: &Path) -> Result<(PathBuf, Flavor), RuntimeError> {
    if !binary.exists() {
        return Err(RuntimeError::Missing {
            path: binary.to_path_buf(),
        });
    }
    let does_not_run = |detail: String| RuntimeError::DoesNotRun {
        path: binary.to_path_buf(),
        detail,
    };
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| does_not_run(format!("could not start: {e}")))?;
    // A version fits in the pipes' buffers: waiting before reading cannot deadlock.
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    if let Err(e) = wait::process_exit(pid, Duration::from_secs(10)) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(does_not_run(format!("did not finish: {e}")));
    }
    let out = child
        .wait_with_output()
        .map_err(|e| does_not_run(format!("could not be waited for: {e}")))?;
    if !out.status.success() {
        return Err(does_not_run(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let version = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let flavor = if name.contains("berth") || version.starts_with("berth") {
        Flavor::Berth
    } else if version.starts_with("runc") {
        Flavor::Runc
    } else if version.starts_with("crun") {
        Flavor::Crun
    } else {
        Flavor::Other
    };
    Ok((binary.to_path_buf(), flavor))
}

fn temp_dir(prefix: &str) -> Result<TempDir, RuntimeError> {
    let parent = std::env::temp_dir();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(|source| RuntimeError::Io {
            op: "create a temporary directory in",
            path: parent,
            source,
        })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Runtime {
    /// The runtime under test (see the module doc), with a fresh state root. Fails clearly when
    /// not root, or when the binary is missing or does not run.
    pub fn new() -> Result<Runtime, RuntimeError> {
        if !rustix::process::geteuid().is_root() {
            return Err(RuntimeError::NotRoot);
        }
        let (binary, flavor) = selected_binary()?;
        Runtime::with(binary, flavor)
    }

    /// A runtime for an explicit binary (probed with `--version`), with a fresh state root.
    pub fn with_binary(binary: &Path) -> Result<Runtime, RuntimeError> {
        let (binary, flavor) = probe(binary)?;
        Runtime::with(binary, flavor)
    }

    fn with(binary: PathBuf, flavor: Flavor) -> Result<Runtime, RuntimeError> {
        Ok(Runtime {
            binary,
            flavor,
            root: temp_dir("berth-state-")?,
            scratch: temp_dir("berth-out-")?,
            containers: Mutex::new(Vec::new()),
            invocations: AtomicU32::new(0),
        })
    }

    /// Which runtime the tests drive (`BERTH_TEST_RUNTIME` or berth-runtime), without making
    /// a state root.
    pub fn flavor_under_test() -> Result<Flavor, RuntimeError> {
        Ok(selected_binary()?.1)
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Which runtime it is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Whether it is berth-runtime (whose error messages the tests may hold to berth's rules).
    pub fn is_berth(&self) -> bool {
        self.flavor == Flavor::Berth
    }

    /// The state root passed as `--root`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A scratch directory for the test's own files, removed on drop.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// A new container id, unique to this test.
    pub fn new_id(&self, tag: &str) -> String {
        unique_name(tag)
    }

    /// Remembers `id` so that drop kills and deletes it.
    pub fn track(&self, id: &str) {
        let mut containers = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        if !containers.iter().any(|c| c == id) {
            containers.push(id.to_owned());
        }
    }

    /// Runs `<binary> --root <root> args...`, stdio to files, stdin from /dev/null.
    pub fn invoke(&self, args: &[&str]) -> Result<Output, RuntimeError> {
        self.invoke_with(args, &Invocation::default())
    }

    /// Runs `<binary> --root <root> args...` with `options`.
    pub fn invoke_with(&self, args: &[&str], options: &Invocation) -> Result<Output, RuntimeError> {
        self.spawn_with(args, options)?.wait()
    }

    /// Starts `<binary> --root <root> args...` with `options` and returns at once, so a test
    /// can signal the runtime process (as a shell's Ctrl-C would) before waiting for it.
    pub fn spawn_with(&self, args: &[&str], options: &Invocation) -> Result<Spawned, RuntimeError> {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let stdout_path = self.scratch.path().join(format!("{n}.stdout"));
        let stderr_path = self.scratch.path().join(format!("{n}.stderr"));
        let create = |path: &Path| {
            File::create(path).map_err(|source| RuntimeError::Io {
                op: "create",
                path: path.to_path_buf(),
                source,
            })
        };
        let root = self.root.path().to_string_lossy().into_owned();
        let mut argv: Vec<String> = vec!["--root".into(), root];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let command_line = format!("{} {}", self.binary.display(), argv.join(" "));
        let mut command = if options.open_fds.is_empty() {
            let mut c = Command::new(&self.binary);
            c.args(&argv);
            c
        } else {
            // The shell opens the files at the wanted numbers, then becomes the runtime: no
            // unsafe pre_exec in the test process.
            let redirections: Vec<String> = options
                .open_fds
                .iter()
                .map(|(fd, path)| format!("{fd}<{}", shell_quote(&path.to_string_lossy())))
                .collect();
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("exec {} \"$@\"", redirections.join(" ")))
                .arg("sh")
                .arg(&self.binary)
                .args(&argv);
            c
        };
        if let Some(cwd) = &options.cwd {
            command.current_dir(cwd);
        }
        command
            .stdin(Stdio::null())
            .stdout(create(&stdout_path)?)
            .stderr(create(&stderr_path)?);
        let child = command.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            args: argv.join(" "),
            source,
        })?;
        Ok(Spawned {
            child,
            command: command_line,
            timeout: options.timeout.unwrap_or(INVOCATION_TIMEOUT),
            stdout_path,
            stderr_path,
        })
    }

    /// `create --bundle <bundle> <id>` after writing the bundle's config for `id`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Result<Output, RuntimeError> {
        self.create_with(id, bundle, &[], &Invocation::default())
    }

    /// `create` with extra flags (before the id) and invocation options.
    pub fn create_with(
        &self,
        id: &str,
        bundle: &Bundle,
        flags: &[&str],
        options: &Invocation,
    ) -> Result<Output, RuntimeError> {
        bundle.write_config(id)?;
        self.track(id);
        let path = bundle.path().to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &path];
        args.extend_from_slice(flags);
        args.push(id);
        self.invoke_with(&args, options)
    }

    /// `run --bundle <bundle> <id>`: waits for the container and returns its exit code.
    pub fn run(&self, id: &str, bundle: &Bundle) -> Result<Output, RuntimeError> {
        self.run_with(id, bundle, &[], &Invocation::default())
    }

    /// `run` with extra flags (`-d`, `--preserve-fds N`, ...) and invocation options.
    pub fn run_with(
        &self,
        id: &str,
        bundle: &Bundle,
        flags: &[&str],
        options: &Invocation,
    ) -> Result<Output, RuntimeError> {
        bundle.write_config(id)?;
        self.track(id);
        let path = bundle.path().to_string_lossy().into_owned();
        let mut args = vec!["run", "--bundle", &path];
        args.extend_from_slice(flags);
        args.push(id);
        self.invoke_with(&args, options)
    }

    /// Runs `bundle` in a new container tagged `tag`, requires exit 0, returns the output.
    pub fn run_ok(&self, tag: &str, bundle: &Bundle) -> Result<Output, RuntimeError> {
        let id = self.new_id(tag);
        self.run(&id, bundle)?.ok()
    }

    /// Starts `run [flags...] --bundle <bundle> <id>` and returns at once.
    pub fn spawn_run(
        &self,
        id: &str,
        bundle: &Bundle,
        flags: &[&str],
    ) -> Result<Spawned, RuntimeError> {
        bundle.write_config(id)?;
        self.track(id);
        let path = bundle.path().to_string_lossy().into_owned();
        let mut args = vec!["run", "--bundle", &path];
        args.extend_from_slice(flags);
        args.push(id);
        self.spawn_with(&args, &Invocation::default())
    }

    /// `create` then `start`, both required to succeed; returns the init's pid.
    pub fn create_and_start(&self, id: &str, bundle: &Bundle) -> Result<i32, RuntimeError> {
        self.create(id, bundle)?.ok()?;
        self.start(id)?.ok()?;
        self.pid(id)
    }

    /// `create` then `start`, then waits until the container has written `ready` to its
    /// stdout (so a test knows its processes are set up); returns the init's pid.
    pub fn start_until(&self, id: &str, bundle: &Bundle, ready: &str) -> Result<i32, RuntimeError> {
        let created = self.create(id, bundle)?.ok()?;
        self.start(id)?.ok()?;
        wait::file_contains(&created.stdout_path, ready, READY_TIMEOUT)?;
        self.pid(id)
    }

    /// `start <id>`.
    pub fn start(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["start", id])
    }

    /// `state <id>`, required to succeed, parsed.
    pub fn state(&self, id: &str) -> Result<Value, RuntimeError> {
        self.invoke(&["state", id])?.ok()?.json()
    }

    /// The container's `status` from `state`.
    pub fn status(&self, id: &str) -> Result<String, RuntimeError> {
        Ok(self.state(id)?["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The init process's pid on the host, from `state`.
    pub fn pid(&self, id: &str) -> Result<i32, RuntimeError> {
        let state = self.state(id)?;
        Ok(state["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0))
    }

    /// `kill <id> <signal>`.
    pub fn kill(&self, id: &str, signal: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["kill", id, signal])
    }

    /// `kill --all <id> <signal>`.
    pub fn kill_all(&self, id: &str, signal: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["kill", "--all", id, signal])
    }

    /// `delete <id>`.
    pub fn delete(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["delete", id])
    }

    /// `delete --force <id>`.
    pub fn delete_force(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["delete", "--force", id])
    }

    /// `exec <id> args...`.
    pub fn exec(&self, id: &str, args: &[&str]) -> Result<Output, RuntimeError> {
        let mut argv = vec!["exec", id];
        argv.extend_from_slice(args);
        self.invoke(&argv)
    }

    /// `exec [flags...] <id> args...`.
    pub fn exec_with(
        &self,
        id: &str,
        flags: &[&str],
        args: &[&str],
    ) -> Result<Output, RuntimeError> {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(flags);
        argv.push(id);
        argv.extend_from_slice(args);
        self.invoke(&argv)
    }

    /// `list`.
    pub fn list(&self) -> Result<Output, RuntimeError> {
        self.invoke(&["list"])
    }

    /// `list --format json`, parsed.
    pub fn list_json(&self) -> Result<Value, RuntimeError> {
        self.invoke(&["list", "--format", "json"])?.ok()?.json()
    }

    /// `ps <id>` (table).
    pub fn ps(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["ps", id])
    }

    /// `ps --format json <id>`, parsed.
    pub fn ps_json(&self, id: &str) -> Result<Value, RuntimeError> {
        self.invoke(&["ps", "--format", "json", id])?.ok()?.json()
    }

    /// `pause <id>`.
    pub fn pause(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["pause", id])
    }

    /// `resume <id>`.
    pub fn resume(&self, id: &str) -> Result<Output, RuntimeError> {
        self.invoke(&["resume", id])
    }

    /// `events --stats <id>`, parsed.
    pub fn events_stats(&self, id: &str) -> Result<Value, RuntimeError> {
        self.invoke(&["events", "--stats", id])?.ok()?.json()
    }

    /// Waits until the container's init (pid from `state`) has exited.
    pub fn wait_exit(&self, pid: i32, timeout: Duration) -> Result<(), RuntimeError> {
        Ok(wait::process_exit(pid, timeout)?)
    }

    /// Kills and force-deletes `id`, and SIGKILLs its init directly if the runtime failed to.
    pub fn destroy(&self, id: &str) {
        let pid = self.pid(id).ok().filter(|p| *p > 0);
        let _ = self.kill(id, "KILL");
        let _ = self.delete_force(id);
        if let Some(pid) = pid.filter(|p| wait::is_alive(*p)) {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let containers =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|p| p.into_inner()));
        for id in containers {
            self.destroy(&id);
        }
    }
}
