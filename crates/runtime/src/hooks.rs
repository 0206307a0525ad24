//! OCI hooks of every phase, with the container state on stdin and their
//! timeouts (runtime spec, config.md "POSIX-platform Hooks").
//!
//! # Where each phase runs (the runtime spec's order, as runc does it)
//!
//! | phase             | run by                         | namespaces           | on failure |
//! |-------------------|--------------------------------|----------------------|------------|
//! | `prestart`        | the runtime, after the init is made (deprecated) | runtime's | abort |
//! | `createRuntime`   | the runtime, same point        | runtime's            | abort      |
//! | `createContainer` | the init, after mounts, before pivot_root | container's | abort |
//! | `startContainer`  | the init on `start`, after the user switch, before exec | container's | abort |
//! | `poststart`       | the runtime, after `start`     | runtime's            | warn, go on |
//! | `poststop`        | the runtime, on `delete`       | runtime's            | warn, go on |
//!
//! [`HookPhase::aborts_on_failure`] says which is which: for the last two,
//! [`run_hooks`] runs every hook and reports all failures together, for the
//! others it stops at the first.
//!
//! # How a hook runs
//!
//! fork+exec of `path` with exactly `args` (`args[0]` is argv\[0\]) and
//! exactly `env` (a startContainer hook without one is given the container
//! process's by the init, as runc does), the state JSON on stdin, stdout and stderr captured for the
//! error message. The wait is a pidfd (pidfd_open(2)) in poll(2) together with
//! the pipes, bounded by `timeout`; a hook past its timeout is killed with
//! SIGKILL. No thread is started and no signal handler installed: the
//! container's init calls this before exec and must stay single-threaded
//! (a fork of a threaded process can inherit a lock held by another thread).
//! Output left in the pipes by a hook's own children after it exits is read
//! only as far as it is already there: such children are not waited for.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

/// How much of each of stdout and stderr is kept for the error message.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The lifecycle point at which a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookPhase {
    /// `prestart` (deprecated by the spec, still used by Docker).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

impl HookPhase {
    /// All phases, in lifecycle order.
    pub const ALL: [HookPhase; 6] = [
        HookPhase::Prestart,
        HookPhase::CreateRuntime,
        HookPhase::CreateContainer,
        HookPhase::StartContainer,
        HookPhase::Poststart,
        HookPhase::Poststop,
    ];

    /// The spec's name (`createRuntime`).
    pub fn name(self) -> &'static str {
        match self {
            HookPhase::Prestart => "prestart",
            HookPhase::CreateRuntime => "createRuntime",
            HookPhase::CreateContainer => "createContainer",
            HookPhase::StartContainer => "startContainer",
            HookPhase::Poststart => "poststart",
            HookPhase::Poststop => "poststop",
        }
    }

    /// Whether a failing hook stops the operation (the spec: yes for all
    /// phases but `poststart` and `poststop`, which only warn).
    pub fn aborts_on_failure(self) -> bool {
        !matches!(self, HookPhase::Poststart | HookPhase::Poststop)
    }

    /// This phase's hooks in `hooks` (empty if none).
    pub fn hooks_in(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            HookPhase::Prestart => hooks.prestart(),
            HookPhase::CreateRuntime => hooks.create_runtime(),
            HookPhase::CreateContainer => hooks.create_container(),
            HookPhase::StartContainer => hooks.start_container(),
            HookPhase::Poststart => hooks.poststart(),
            HookPhase::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook's config is invalid.
    #[error("{phase} hook {path}: {reason}")]
    Invalid {
        /// The phase.
        phase: HookPhase,
        /// hook.path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// fork/exec of the hook failed.
    #[error("{phase} hook {path}: starting it: {source}")]
    Spawn {
        /// The phase.
        phase: HookPhase,
        /// hook.path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Waiting for the hook or moving its data failed.
    #[error("{phase} hook {path}: {operation}: {source}")]
    Wait {
        /// The phase.
        phase: HookPhase,
        /// hook.path.
        path: PathBuf,
        /// What failed.
        operation: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The hook exited unsuccessfully.
    #[error("{phase} hook {path} failed: {status}{output}")]
    Failed {
        /// The phase.
        phase: HookPhase,
        /// hook.path.
        path: PathBuf,
        /// "exit status 3" or "killed by signal 9".
        status: String,
        /// The captured output, formatted for the message.
        output: HookOutput,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{phase} hook {path} ran past its timeout of {timeout}s and was killed{output}")]
    TimedOut {
        /// The phase.
        phase: HookPhase,
        /// hook.path.
        path: PathBuf,
        /// The timeout in seconds.
        timeout: i64,
        /// The output it wrote until then.
        output: HookOutput,
    },
    /// Several hooks of a phase that does not abort failed.
    #[error("{}", join(.0))]
    Several(Vec<HookError>),
}

fn join(errors: &[HookError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result of this module.
pub type Result<T, E = HookError> = std::result::Result<T, E>;

/// What a hook wrote to stdout and stderr (at most 64 KiB of each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookOutput {
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Whether either was cut at the limit.
    pub truncated: bool,
}

impl fmt::Display for HookOutput {
    /// `, stderr: "...", stdout: "..."` for what is not empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, bytes) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            if !text.is_empty() {
                write!(f, ", {name}: {text:?}")?;
            }
        }
        if self.truncated {
            f.write_str(" (output truncated)")?;
        }
        Ok(())
    }
}

/// Checks hooks before anything is created: absolute path, a positive
/// timeout, `KEY=VALUE` environment entries.
pub fn validate(phase: HookPhase, hooks: &[Hook]) -> Result<()> {
    for hook in hooks {
        let invalid = |reason: String| HookError::Invalid {
            phase,
            path: hook.path().clone(),
            reason,
        };
        if !hook.path().is_absolute() {
            return Err(invalid("path must be absolute".into()));
        }
        if let Some(t) = hook.timeout() {
            if t <= 0 {
                return Err(invalid(format!(
                    "timeout must be a positive number of seconds, not {t}"
                )));
            }
        }
        for entry in hook.env().as_deref().unwrap_or(&[]) {
            if !entry.contains('=') || entry.starts_with('=') {
                return Err(invalid(format!(
                    "environment entry {entry:?} is not KEY=VALUE"
                )));
            }
        }
    }
    Ok(())
}

/// Runs `hooks` of `phase` in order with `state_json` (the container's state,
/// runtime spec `state`) on each one's stdin. For phases that abort on
/// failure, the first failing hook stops the run and is the error; for
/// `poststart` and `poststop` every hook runs and the failures are returned
/// together, for the caller to log as warnings.
pub fn run_hooks(phase: HookPhase, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    validate(phase, hooks)?;
    let mut failures = Vec::new();
    for hook in hooks {
        let span = tracing::debug_span!("hook", %phase, path = %hook.path().display());
        let _enter = span.enter();
        match run_hook(phase, hook, state_json) {
            Ok(_) => {}
            Err(e) if phase.aborts_on_failure() => return Err(e),
            Err(e) => {
                tracing::warn!("{e}");
                failures.push(e);
            }
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        _ => Err(HookError::Several(failures)),
    }
}

/// Runs one hook to completion and returns what it wrote (see the module
/// doc). A non-zero exit, a death by signal and a timeout are errors that
/// carry the output.
pub fn run_hook(phase: HookPhase, hook: &Hook, state_json: &[u8]) -> Result<HookOutput> {
    validate(phase, std::slice::from_ref(hook))?;
    let path = hook.path().clone();
    let wait_err = |operation: &'static str| {
        let path = path.clone();
        move |e: io::Error| HookError::Wait {
            phase,
            path,
            operation,
            source: e,
        }
    };

    let mut cmd = Command::new(&path);
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = entry.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        phase,
        path: path.clone(),
        source,
    })?;

    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let mut output = HookOutput::default();
    let waited = wait_with_io(&mut child, state_json, deadline, &mut output);
    let exited = match waited {
        Ok(exited) => exited,
        Err((operation, e)) => {
            // Never leave a running hook or a zombie behind.
            let _ = child.kill();
            let _ = child.wait();
            return Err(wait_err(operation)(e));
        }
    };
    if !exited {
        // The hook has not been reaped, so its pid cannot have been reused.
        let killed = child.kill();
        let _ = child.wait();
        killed.map_err(wait_err("killing it with SIGKILL after its timeout"))?;
        return Err(HookError::TimedOut {
            phase,
            path,
            timeout: hook.timeout().unwrap_or_default(),
            output,
        });
    }
    let status = child.wait().map_err(wait_err("reaping it"))?;
    if status.success() {
        Ok(output)
    } else {
        Err(HookError::Failed {
            phase,
            path,
            status: describe(status),
            output,
        })
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({s})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => status.to_string(),
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// Appends what can be read now, at most 1 MiB per call so that a writer
/// that never stops (a child the hook left behind) cannot keep us here;
/// returns false at end of file.
fn read_available(
    pipe: &mut impl Read,
    into: &mut Vec<u8>,
    truncated: &mut bool,
) -> io::Result<bool> {
    const PER_CALL: usize = 1 << 20;
    let mut buf = [0u8; 8192];
    let mut taken = 0;
    while taken < PER_CALL {
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                taken += n;
                let room = OUTPUT_LIMIT.saturating_sub(into.len());
                if n > room {
                    *truncated = true;
                }
                into.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

type IoResult<T> = std::result::Result<T, (&'static str, io::Error)>;

/// Feeds stdin, collects stdout and stderr and waits for the child's exit
/// until `deadline`. Returns whether it exited (false: timed out).
fn wait_with_io(
    child: &mut Child,
    input: &[u8],
    deadline: Option<Instant>,
    output: &mut HookOutput,
) -> IoResult<bool> {
    let pid = rustix::process::Pid::from_child(child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| ("pidfd_open", io::Error::from(e)))?;
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut stdout: Option<ChildStdout> = child.stdout.take();
    let mut stderr: Option<ChildStderr> = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|p| p.as_fd()),
        stdout.as_ref().map(|p| p.as_fd()),
        stderr.as_ref().map(|p| p.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_nonblocking(fd).map_err(|e| ("making its pipes non-blocking", e))?;
    }
    let mut written = 0usize;
    if input.is_empty() {
        stdin = None;
    }

    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Round up so we never wake just before the deadline and spin.
                let ms = left.as_micros().div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let (exited, in_ready, out_ready, err_ready) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let in_idx = stdin.as_ref().map(|p| {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLOUT));
                fds.len() - 1
            });
            let out_idx = stdout.as_ref().map(|p| {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let err_idx = stderr.as_ref().map(|p| {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(("poll", e.into())),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            (
                ready(Some(0)),
                ready(in_idx),
                ready(out_idx),
                ready(err_idx),
            )
        };

        if in_ready {
            if let Some(pipe) = stdin.as_mut() {
                match pipe.write(&input[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The hook closed its stdin without reading it all: its choice.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = input.len(),
                    Err(e) => return Err(("writing the state to its stdin", e)),
                }
                if written >= input.len() {
                    stdin = None; // EOF for the hook
                }
            }
        }
        if out_ready {
            if let Some(pipe) = stdout.as_mut() {
                let open = read_available(pipe, &mut output.stdout, &mut output.truncated)
                    .map_err(|e| ("reading its stdout", e))?;
                if !open {
                    stdout = None;
                }
            }
        }
        if err_ready {
            if let Some(pipe) = stderr.as_mut() {
                let open = read_available(pipe, &mut output.stderr, &mut output.truncated)
                    .map_err(|e| ("reading its stderr", e))?;
                if !open {
                    stderr = None;
                }
            }
        }
        if exited {
            // Take what is already in the pipes; a child the hook left behind
            // may hold them open, and we do not wait for it.
            if let Some(pipe) = stdout.as_mut() {
                read_available(pipe, &mut output.stdout, &mut output.truncated)
                    .map_err(|e| ("reading its stdout", e))?;
            }
            if let Some(pipe) = stderr.as_mut() {
                read_available(pipe, &mut output.stderr, &mut output.truncated)
                    .map_err(|e| ("reading its stderr", e))?;
            }
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(path: &str, args: &[&str], env: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path(path)
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().expect("build hook")
    }

    const STATE: &[u8] =
        br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;

    #[test]
    fn phase_names() {
        let names: Vec<String> = HookPhase::ALL.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
        assert!(HookPhase::StartContainer.aborts_on_failure());
        assert!(!HookPhase::Poststop.aborts_on_failure());
    }

    #[test]
    fn state_goes_to_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("state.json");
        let env = format!("OUT={}", out.display());
        let h = hook(
            "/bin/sh",
            &["sh", "-c", "cat > \"$OUT\""],
            &[&env],
            Some(10),
        );
        run_hooks(HookPhase::CreateRuntime, &[h], STATE).expect("run hook");
        assert_eq!(std::fs::read(&out).expect("read output"), STATE);
    }

    #[test]
    fn exactly_the_given_env_and_argv() {
        let h = hook("/usr/bin/env", &["env"], &["A=1", "B=two words"], None);
        let out = run_hook(HookPhase::Prestart, &h, STATE).expect("run env");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "A=1\nB=two words\n");

        let h = hook("/usr/bin/env", &[], &[], None);
        let out = run_hook(HookPhase::Prestart, &h, STATE).expect("run env");
        assert!(
            out.stdout.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&out.stdout)
        );

        // args[0] is argv[0]; the rest follow it.
        let script = "tr '\\0' ' ' < /proc/$$/cmdline";
        let h = hook("/bin/sh", &["my-argv0", "-c", script, "x"], &[], None);
        let out = run_hook(HookPhase::Prestart, &h, STATE).expect("run sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("my-argv0 -c {script} x ")
        );
    }

    #[test]
    fn failure_names_phase_path_status_and_stderr() {
        let h = hook("/bin/sh", &["sh", "-c", "echo oops >&2; exit 3"], &[], None);
        let e = run_hooks(HookPhase::CreateContainer, &[h], STATE).expect_err("exit 3");
        assert_eq!(
            e.to_string(),
            "createContainer hook /bin/sh failed: exit status 3, stderr: \"oops\""
        );
        let h = hook("/bin/sh", &["sh", "-c", "kill -TERM $$"], &[], None);
        let e = run_hooks(HookPhase::Prestart, &[h], STATE).expect_err("signal");
        assert!(
            e.to_string().contains("killed by signal 15 (SIGTERM)"),
            "{e}"
        );

        let h = hook("/nonexistent/hook", &[], &[], None);
        let e = run_hooks(HookPhase::Prestart, &[h], STATE).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("prestart hook /nonexistent/hook: starting it"),
            "{e}"
        );
    }

    #[test]
    fn aborting_phase_stops_at_first_failure_warning_phase_runs_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mark = dir.path().join("ran");
        let env = format!("M={}", mark.display());
        let fail = hook("/bin/false", &[], &[], None);
        let touch = hook("/bin/sh", &["sh", "-c", "echo >> \"$M\""], &[&env], None);
        let hooks = [fail.clone(), touch.clone(), fail];

        run_hooks(HookPhase::StartContainer, &hooks, STATE).expect_err("first fails");
        assert!(
            !mark.exists(),
            "a hook ran after a failure in an aborting phase"
        );

        let e = run_hooks(HookPhase::Poststop, &hooks, STATE).expect_err("two fail");
        assert!(matches!(&e, HookError::Several(v) if v.len() == 2), "{e}");
        assert_eq!(std::fs::read_to_string(&mark).expect("mark"), "\n");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook("/bin/sleep", &["sleep", "10"], &[], Some(1));
        let start = Instant::now();
        let e = run_hooks(HookPhase::Poststart, &[h], STATE).expect_err("timeout");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(took >= Duration::from_millis(900), "took {took:?}");
        assert!(
            e.to_string()
                .starts_with("poststart hook /bin/sleep ran past its timeout of 1s and was killed"),
            "{e}"
        );
    }

    /// A hook that never reads its stdin, with a state bigger than a pipe.
    #[test]
    fn hook_that_ignores_stdin() {
        let big = vec![b'x'; 1 << 20];
        let h = hook("/bin/true", &[], &[], Some(10));
        run_hooks(HookPhase::Prestart, &[h], &big).expect("true ignores stdin");
        // And a big output is kept up to the limit.
        let h = hook(
            "/bin/sh",
            &["sh", "-c", "head -c 200000 /dev/zero; exit 1"],
            &[],
            Some(10),
        );
        match run_hook(HookPhase::Prestart, &h, STATE) {
            Err(HookError::Failed { output, .. }) => {
                assert_eq!(output.stdout.len(), OUTPUT_LIMIT);
                assert!(output.truncated);
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A hook that leaves a child holding its stdout: the wait ends with the hook.
    #[test]
    fn background_child_does_not_hold_the_wait() {
        let h = hook("/bin/sh", &["sh", "-c", "sleep 5 & echo $!"], &[], Some(10));
        let start = Instant::now();
        let out = run_hook(HookPhase::Poststart, &h, STATE).expect("hook exits 0");
        let took = start.elapsed();
        // Clean up the hook's child before asserting.
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the background pid");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert!(took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn validation() {
        let e =
            validate(HookPhase::Prestart, &[hook("bin/x", &[], &[], None)]).expect_err("relative");
        assert!(e.to_string().contains("must be absolute"), "{e}");
        let e =
            validate(HookPhase::Prestart, &[hook("/bin/x", &[], &[], Some(0))]).expect_err("0 s");
        assert!(e.to_string().contains("positive"), "{e}");
        let e = validate(
            HookPhase::Prestart,
            &[hook("/bin/x", &[], &["NOVALUE"], None)],
        )
        .expect_err("env");
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
    }
}
