//! A private berthd for end-to-end tests: its own data root, exec root, socket, cgroup parent,
//! default bridge, subnet, address pool and nftables table, so that tests run side by side and
//! never touch the host's berth or each other. `finish` kills it and checks nothing is left:
//! mounts, cgroups, monitors, writable layers, veths on its bridges; the teardown (also on
//! failure, from `Drop`) removes its bridges and its nftables table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::image::BusyboxImage;
use super::{require_root, require_tool, run, Sandbox};

/// How long any one docker command or start-up may take.
pub const T: Duration = Duration::from_secs(60);

/// A binary of this workspace beside the test executable (target/<profile>/NAME).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test> has a grandparent");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: build it first (`cargo build -p berthd -p berth-monitor`)",
        path.display()
    );
    path
}

/// A berthd on the sandbox's roots; killed (SIGKILL) on drop, before the sandbox cleans up.
pub struct Berthd {
    child: Option<Child>,
    /// The sandbox holding its roots.
    pub sandbox: Sandbox,
    /// Its API socket.
    pub socket: PathBuf,
    /// The docker CLI's config directory (DOCKER_CONFIG).
    pub docker_config: PathBuf,
    /// Flags added to berthd's command line at the next spawn.
    pub extra_args: Vec<String>,
    /// Its default bridge.
    pub bridge: String,
    /// The /16 its default bridge (x.y.0.1/24) and its networks' subnets come from.
    pub pool: String,
}

static BERTHDS: AtomicU32 = AtomicU32::new(0);

/// Names and addresses of one test berthd: unique across the test processes running at once
/// (pid and counter), in 10.0.0.0/8, which no test sends traffic out of.
fn network_identity() -> (String, String) {
    let n = BERTHDS.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let h = (pid.wrapping_mul(31).wrapping_add(n)) & 0xff;
    let bridge = format!("bb{:x}x{n}", pid & 0xfffff);
    // 10.<100..227>.0.0/16: the second octet from the pid and counter.
    let pool = format!("10.{}.0.0/16", 100 + (h & 0x7f));
    (bridge, pool)
}

impl Berthd {
    /// Starts berthd on the sandbox's roots and waits until it serves.
    pub fn start(sandbox: Sandbox) -> Berthd {
        Self::start_with(sandbox, Vec::new())
    }

    /// Starts berthd with extra flags (after the fixture's own) and waits until it serves.
    pub fn start_with(sandbox: Sandbox, extra_args: Vec<String>) -> Berthd {
        let socket = sandbox.root.join("exec").join("berth.sock");
        let docker_config = sandbox.dir("docker-config");
        std::fs::create_dir_all(&docker_config).expect("create the docker CLI's config dir");
        let (bridge, pool) = network_identity();
        let mut d = Berthd {
            child: None,
            sandbox,
            socket,
            docker_config,
            extra_args,
            bridge,
            pool,
        };
        d.spawn();
        d
    }

    /// The default bridge's gateway address with its prefix (x.y.0.1/24).
    pub fn bip(&self) -> String {
        let base = self.pool.trim_end_matches(".0.0/16");
        format!("{base}.0.1/24")
    }

    /// A subnet of this berthd's pool for a test's own network (x.y.N.0/24, N from 1).
    pub fn subnet(&self, n: u8) -> String {
        let base = self.pool.trim_end_matches(".0.0/16");
        format!("{base}.{n}.0/24")
    }

    /// (Re)starts berthd with the same roots and flags.
    pub fn spawn(&mut self) {
        let mut child = Command::new(workspace_binary("berthd"))
            .arg("--data-root")
            .arg(self.sandbox.dir("data"))
            .arg("--exec-root")
            .arg(self.sandbox.dir("exec"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--cgroup-parent")
            .arg(&self.sandbox.tag)
            .arg("--log-level")
            .arg("info")
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--bip")
            .arg(self.bip())
            .arg("--default-address-pool")
            .arg(format!("base={},size=24", self.pool))
            // Names the tests' containers look up never leave the machine.
            .arg("--dns")
            .arg("127.0.0.1")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berthd");
        // Ready when it says it serves: the line is written after the socket is bound.
        let stderr = child.stderr.take().expect("berthd's stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut said = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("berthd: {line}");
                if !said && line.contains("serving the Docker Engine API") {
                    said = true;
                    let _ = tx.send(());
                }
            }
        });
        self.child = Some(child);
        rx.recv_timeout(T)
            .expect("berthd did not start serving within 60 s (its log is above)");
    }

    /// berthd killed with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_with_input(args, None)
    }

    pub fn docker_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT");
        match input {
            None => run(&mut cmd, T),
            Some(text) => {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start docker");
                {
                    use std::io::Write;
                    let mut stdin = child.stdin.take().expect("piped stdin");
                    stdin
                        .write_all(text.as_bytes())
                        .expect("write docker's stdin");
                }
                child.wait_with_output().expect("wait for docker")
            }
        }
    }

    /// Runs the berth CLI against this berthd.
    pub fn berth(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(workspace_binary("berth"));
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_CONTEXT");
        run(&mut cmd, T)
    }

    /// The volume names `docker volume ls -q` shows.
    pub fn volumes(&self) -> Vec<String> {
        self.ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Runs docker and returns stdout; fails with both streams unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Monitor processes of this sandbox still alive.
    pub fn monitors(&self) -> Vec<i32> {
        self.sandbox
            .processes_naming_root()
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("berth-monitor"))
            })
            .collect()
    }

    /// The bridges of this berthd's networks (the default one and those tests made).
    pub fn bridges(&self) -> Vec<String> {
        let mut out = vec![self.bridge.clone()];
        let dir = self.sandbox.root.join("data/network/networks");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(b) = v["bridge"].as_str().filter(|b| !b.is_empty()) {
                if !out.iter().any(|o| o == b) {
                    out.push(b.to_string());
                }
            }
        }
        out
    }

    /// Its nftables table (named after its default bridge, as berthd names it).
    pub fn table(&self) -> String {
        format!("berth_{}", self.bridge.replace(['-', '.'], "_"))
    }

    /// Veths still enslaved to this berthd's bridges (a container's goes with its network
    /// namespace, which the kernel frees asynchronously: waited for, bounded).
    pub fn veths_left(&self) -> Vec<String> {
        let probe = || {
            let mut left = Vec::new();
            for b in self.bridges() {
                let out = Command::new("ip")
                    .args(["-o", "link", "show", "master", &b])
                    .output();
                if let Ok(o) = out {
                    for line in String::from_utf8_lossy(&o.stdout).lines() {
                        if let Some(name) = line.split(':').nth(1) {
                            left.push(name.trim().split('@').next().unwrap_or("").to_string());
                        }
                    }
                }
            }
            left
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = probe();
            if left.is_empty() || std::time::Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Removes this berthd's bridges and nftables table (berthd leaves them, as dockerd
    /// leaves docker0 and its chains). Returns what failed.
    pub fn remove_network_state(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for b in self.bridges() {
            let exists = Command::new("ip")
                .args(["link", "show", &b])
                .output()
                .is_ok_and(|o| o.status.success());
            if exists {
                let out = Command::new("ip").args(["link", "del", &b]).output();
                if !out.is_ok_and(|o| o.status.success()) {
                    problems.push(format!("deleting bridge {b}"));
                }
            }
        }
        for family in ["inet", "ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.table()])
                .stderr(Stdio::null())
                .output();
        }
        problems
    }

    /// Stops berthd and checks nothing is left: mounts, cgroups, monitors, veths.
    pub fn finish(mut self) {
        self.kill9();
        let veths = self.veths_left();
        let mounts = self.sandbox.mounts();
        // The parent itself stays, as dockerd's /docker does; no container's cgroup may.
        let tag = self.sandbox.tag.clone();
        let cgroups: Vec<PathBuf> = self
            .sandbox
            .cgroup_dirs()
            .into_iter()
            .filter(|d| d.file_name().is_none_or(|n| n.to_string_lossy() != tag))
            .collect();
        let monitors = self.monitors();
        // Every container's writable layer went with it.
        let active: Vec<String> =
            std::fs::read_dir(self.sandbox.root.join("data/image/snapshots/active"))
                .map(|r| {
                    r.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
        let mut problems = self.remove_network_state();
        problems.extend(self.sandbox.teardown());
        assert!(veths.is_empty(), "veths left behind: {veths:?}");
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        assert!(cgroups.is_empty(), "cgroups left behind: {cgroups:?}");
        assert!(monitors.is_empty(), "monitors left behind: {monitors:?}");
        assert!(active.is_empty(), "writable layers left behind: {active:?}");
        assert!(problems.is_empty(), "cleanup problems: {problems:?}");
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.kill9();
        for p in self.remove_network_state() {
            eprintln!("cleanup: {p}");
        }
    }
}

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A berthd with the busybox image loaded (`docker load`, checked).
pub fn berthd_with_busybox(name: &str) -> Berthd {
    require_root("berthd");
    require_tool("docker", "docker-cli");
    berthd_with_busybox_in(Sandbox::new(name), Vec::new())
}

/// A berthd on a sandbox the test prepared, with extra flags, the busybox image loaded.
pub fn berthd_with_busybox_in(sandbox: Sandbox, extra_args: Vec<String>) -> Berthd {
    let archive = BusyboxImage::build().write_docker_archive(&sandbox.root, "busybox:latest");
    let d = Berthd::start_with(sandbox, extra_args);
    let loaded = d.ok(&["load", "-i", archive.to_str().expect("utf-8 path")]);
    assert!(
        loaded.contains("Loaded image: busybox:latest"),
        "docker load said: {loaded}"
    );
    d
}
