//! Which OCI runtime makes the container: berth's own, called in-process (the default: no
//! helper binary on the run path), or another runtime binary (runc, crun, runsc, kata…, named
//! with berthd's `--add-runtime`), driven through runc's command line.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};

use monitor_protocol::CgroupStats;
use nix::unistd::Pid;
use runtime::container::{CreateOptions, ExecOptions};
use runtime::state::Root;

use crate::MonitorError;

/// The runtime of one container.
pub enum Engine {
    /// berth's runtime library.
    InProcess {
        /// Its state directory.
        root: Root,
        /// The container's cgroup, once created.
        cgroup: Option<runtime::cgroups::Cgroup>,
    },
    /// A runc-compatible binary.
    Binary {
        /// The binary.
        path: PathBuf,
        /// Its `--root`.
        root: PathBuf,
        /// Its `--log`, where its errors are read from.
        log: PathBuf,
    },
}

fn dup(fd: &OwnedFd) -> Result<ProcStdio, MonitorError> {
    nix::unistd::dup(fd)
        .map(ProcStdio::from)
        .map_err(|e| MonitorError::sys("dup a stdio descriptor for the runtime", e))
}

fn read_pid(path: &Path) -> Result<Pid, MonitorError> {
    let text = std::fs::read_to_string(path).map_err(|e| MonitorError::io("read", path, e))?;
    let _ = std::fs::remove_file(path);
    text.trim()
        .parse::<i32>()
        .map(Pid::from_raw)
        .map_err(|_| MonitorError::Config {
            path: path.to_path_buf(),
            message: format!("not a pid: {text:?}"),
        })
}

impl Engine {
    /// berth's runtime, in-process.
    pub fn in_process(root: &Path) -> Result<Self, MonitorError> {
        Ok(Engine::InProcess {
            root: Root::open(root)?,
            cgroup: None,
        })
    }

    /// A runtime binary with its own state directory.
    pub fn binary(path: &Path, root: &Path, bundle: &Path) -> Result<Self, MonitorError> {
        std::fs::create_dir_all(root).map_err(|e| MonitorError::io("create", root, e))?;
        // The runtime binary forks the init and exits: as a subreaper this monitor inherits
        // the init, and so can wait for it.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| MonitorError::sys("prctl(PR_SET_CHILD_SUBREAPER)", e))?;
        Ok(Engine::Binary {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            log: bundle.join("runtime.log"),
        })
    }

    /// Runs the binary; its stdio as given (or /dev/null), its errors from its log.
    fn run(&self, args: &[&str], stdio: Option<[ProcStdio; 3]>) -> Result<(), MonitorError> {
        let Engine::Binary { path, root, log } = self else {
            return Ok(());
        };
        let mut cmd = Command::new(path);
        cmd.arg("--root").arg(root).arg("--log").arg(log).args(args);
        match stdio {
            Some([i, o, e]) => cmd.stdin(i).stdout(o).stderr(e),
            None => cmd
                .stdin(ProcStdio::null())
                .stdout(ProcStdio::null())
                .stderr(ProcStdio::null()),
        };
        let status = cmd
            .status()
            .map_err(|e| MonitorError::io("run the OCI runtime", path, e))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .to_string();
        Err(MonitorError::Config {
            path: path.clone(),
            message: format!("{} {} failed ({status}): {last}", path.display(), args[0]),
        })
    }

    /// Creates the container; returns its init's pid.
    pub fn create(&mut self, opts: &CreateOptions) -> Result<Pid, MonitorError> {
        match self {
            Engine::InProcess { root, cgroup } => {
                let record = runtime::container::create(root, opts)?;
                *cgroup = Some(record.cgroup);
                Ok(Pid::from_raw(record.pid))
            }
            Engine::Binary { .. } => {
                let pid_file = opts.bundle.join("init.pid");
                let bundle = opts.bundle.display().to_string();
                let pid_arg = pid_file.display().to_string();
                let mut args = vec!["create", "--bundle", &bundle, "--pid-file", &pid_arg];
                let console = opts
                    .console_socket
                    .as_ref()
                    .map(|p| p.display().to_string());
                if let Some(c) = &console {
                    args.extend(["--console-socket", c]);
                }
                args.push(&opts.id);
                let stdio = match &opts.stdio {
                    Some(s) => Some([dup(&s.stdin)?, dup(&s.stdout)?, dup(&s.stderr)?]),
                    None => None,
                };
                self.run(&args, stdio)?;
                read_pid(&pid_file)
            }
        }
    }

    /// Starts the user's program.
    pub fn start(&self, id: &str) -> Result<(), MonitorError> {
        match self {
            Engine::InProcess { root, .. } => Ok(runtime::container::start(root, id).map(|_| ())?),
            Engine::Binary { .. } => self.run(&["start", id], None),
        }
    }

    /// Runs a process in the container, detached; its pid goes to `opts.pid_file`.
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        opts: &ExecOptions,
        bundle: &Path,
        n: u64,
    ) -> Result<(), MonitorError> {
        match self {
            Engine::InProcess { root, .. } => {
                runtime::container::exec(root, id, process, opts)?;
                Ok(())
            }
            Engine::Binary { .. } => {
                let json = bundle.join(format!("exec-{n}.json"));
                let bytes = serde_json::to_vec(process).map_err(|e| MonitorError::Config {
                    path: json.clone(),
                    message: e.to_string(),
                })?;
                std::fs::write(&json, bytes).map_err(|e| MonitorError::io("write", &json, e))?;
                let pid_arg = opts
                    .pid_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let json_arg = json.display().to_string();
                let mut args = vec!["exec", "-d", "--pid-file", &pid_arg, "--process", &json_arg];
                let console = opts
                    .console_socket
                    .as_ref()
                    .map(|p| p.display().to_string());
                if let Some(c) = &console {
                    args.extend(["--console-socket", c]);
                }
                args.push(id);
                let stdio = match &opts.stdio {
                    Some(s) => Some([dup(&s.stdin)?, dup(&s.stdout)?, dup(&s.stderr)?]),
                    None => None,
                };
                let r = self.run(&args, stdio);
                let _ = std::fs::remove_file(&json);
                r
            }
        }
    }

    /// Deletes the container (its cgroup with it).
    pub fn delete(&self, id: &str) -> Result<(), MonitorError> {
        match self {
            Engine::InProcess { root, .. } => Ok(runtime::container::delete(root, id, true)?),
            Engine::Binary { .. } => self.run(&["delete", "--force", id], None),
        }
    }

    /// Freezes or thaws the container.
    pub fn freeze(&self, id: &str, on: bool) -> Result<(), MonitorError> {
        match self {
            Engine::InProcess { root, .. } if on => Ok(runtime::container::pause(root, id)?),
            Engine::InProcess { root, .. } => Ok(runtime::container::resume(root, id)?),
            Engine::Binary { .. } => self.run(&[if on { "pause" } else { "resume" }, id], None),
        }
    }

    /// New resource limits.
    pub fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
        bundle: &Path,
    ) -> Result<(), MonitorError> {
        match self {
            Engine::InProcess { root, .. } => Ok(runtime::container::update(root, id, resources)?),
            Engine::Binary { .. } => {
                let json = bundle.join("resources.json");
                let bytes = serde_json::to_vec(resources).map_err(|e| MonitorError::Config {
                    path: json.clone(),
                    message: e.to_string(),
                })?;
                std::fs::write(&json, bytes).map_err(|e| MonitorError::io("write", &json, e))?;
                let arg = json.display().to_string();
                self.run(&["update", "--resources", &arg, id], None)
            }
        }
    }

    /// The cgroup counters.
    pub fn stats(&self, id: &str) -> Result<CgroupStats, MonitorError> {
        match self {
            Engine::InProcess { root, .. } => {
                let ev = runtime::container::events::stats(root, id)?;
                let st = ev.data.ok_or_else(|| MonitorError::Config {
                    path: PathBuf::from(id),
                    message: "the runtime returned no statistics".into(),
                })?;
                Ok(CgroupStats {
                    cpu_total_ns: st.cpu.usage.total,
                    cpu_percpu_ns: st.cpu.usage.percpu.clone(),
                    cpu_user_ns: st.cpu.usage.user,
                    cpu_kernel_ns: st.cpu.usage.kernel,
                    memory_usage: st.memory.usage.usage,
                    memory_max_usage: st.memory.usage.max,
                    memory_limit: st.memory.usage.limit,
                    memory_failcnt: st.memory.usage.failcnt,
                    memory_cache: st.memory.cache,
                    pids_current: st.pids.current,
                    pids_limit: st.pids.limit,
                })
            }
            Engine::Binary { path, root, .. } => {
                let out = Command::new(path)
                    .arg("--root")
                    .arg(root)
                    .args(["events", "--stats", id])
                    .stdin(ProcStdio::null())
                    .stderr(ProcStdio::null())
                    .output()
                    .map_err(|e| MonitorError::io("run the OCI runtime", path, e))?;
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| MonitorError::Config {
                        path: path.clone(),
                        message: format!("events --stats: {e}"),
                    })?;
                let d = &v["data"];
                let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
                Ok(CgroupStats {
                    cpu_total_ns: n(&d["cpu"]["usage"]["total"]),
                    cpu_percpu_ns: d["cpu"]["usage"]["percpu"]
                        .as_array()
                        .map(|a| a.iter().map(n).collect())
                        .unwrap_or_default(),
                    cpu_user_ns: n(&d["cpu"]["usage"]["user"]),
                    cpu_kernel_ns: n(&d["cpu"]["usage"]["kernel"]),
                    memory_usage: n(&d["memory"]["usage"]["usage"]),
                    memory_max_usage: n(&d["memory"]["usage"]["max"]),
                    memory_limit: n(&d["memory"]["usage"]["limit"]),
                    memory_failcnt: n(&d["memory"]["usage"]["failcnt"]),
                    memory_cache: n(&d["memory"]["cache"]),
                    pids_current: n(&d["pids"]["current"]),
                    pids_limit: n(&d["pids"]["limit"]),
                })
            }
        }
    }

    /// The host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, MonitorError> {
        match self {
            Engine::InProcess { cgroup, .. } => match cgroup {
                Some(c) => Ok(c
                    .pids()
                    .map_err(runtime::Error::from)?
                    .iter()
                    .map(|p| p.as_raw())
                    .collect()),
                None => Ok(Vec::new()),
            },
            Engine::Binary { path, root, .. } => {
                let out = Command::new(path)
                    .arg("--root")
                    .arg(root)
                    .args(["ps", "--format", "json", id])
                    .stdin(ProcStdio::null())
                    .stderr(ProcStdio::null())
                    .output()
                    .map_err(|e| MonitorError::io("run the OCI runtime", path, e))?;
                serde_json::from_slice(&out.stdout).map_err(|e| MonitorError::Config {
                    path: path.clone(),
                    message: format!("ps --format json: {e}"),
                })
            }
        }
    }

    /// Whether the OOM killer struck (known for berth's runtime only).
    pub fn oom_killed(&self) -> bool {
        match self {
            Engine::InProcess {
                cgroup: Some(c), ..
            } => c.oom_kill_count().map(|n| n > 0).unwrap_or(false),
            _ => false,
        }
    }
}
