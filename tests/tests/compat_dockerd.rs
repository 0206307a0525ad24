//! dockerd runs containers through the runtime under test: Debian's docker.io 20.10, started
//! by hand with its own data root, exec root, socket, cgroup parent and containerd, the runtime
//! added as `berth` (`--add-runtime berth=PATH`) and chosen with `docker run --runtime berth`.
//! No bridge, no iptables, no forwarding: dockerd changes nothing in the host's network.
//!
//! Run: `cargo test -p berth-tests --test compat_dockerd` as root, with
//! `BERTH_TEST_RUNTIME=/path/to/runtime` (default: target/<profile>/berth-runtime).
//! Needs the Debian packages docker.io, containerd and busybox-static; the docker CLI is
//! whichever `docker` is first on PATH (API version negotiated).

mod compat_common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use compat_common::image::BusyboxImage;
use compat_common::{
    assert_cgroup_path, require_root, require_tool, run, run_ok, runtime_binary, try_run,
    wait_until, Daemon, Sandbox,
};

/// The tag the image is loaded under.
const IMAGE: &str = "busybox-test:latest";

/// The name the runtime under test is registered under.
const RUNTIME_NAME: &str = "berth";

/// Bound on one docker command (`docker stop` waits out its grace period).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(90);

/// A private dockerd. Dropping it, also on a failed assertion, removes its containers, stops
/// it, and then the sandbox's teardown removes processes, mounts, cgroups and dirs.
struct Dockerd {
    daemon: Daemon,
    host: String,
    cli_config: PathBuf,
    sandbox: Sandbox,
}

impl Dockerd {
    /// Starts dockerd on the sandbox and waits until `docker version` reaches the daemon.
    fn start(runtime: &std::path::Path) -> Dockerd {
        let mut sandbox = Sandbox::new("dockerd");
        // dockerd 20.10 makes /run/docker/plugins whatever its exec root; its containerd puts
        // the shims' sockets in /run/containerd/s.
        sandbox.host_paths(&[
            "/run/docker/plugins",
            "/run/docker",
            "/run/containerd/s",
            "/run/containerd",
        ]);
        let data = sandbox.dir("data");
        let exec = sandbox.dir("exec");
        let cli_config = sandbox.dir("cli");
        let socket = sandbox.root.join("docker.sock");
        // An empty daemon.json of our own, so /etc/docker/daemon.json decides nothing.
        let config = sandbox.root.join("daemon.json");
        fs::write(&config, "{}\n").unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(&data)
            .arg("--exec-root")
            .arg(&exec)
            .arg("--pidfile")
            .arg(sandbox.root.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            // No network changes on the host: no docker0, no iptables rules, no forwarding
            // or masquerading sysctls.
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args([
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
            ])
            .arg("--cgroup-parent")
            .arg(sandbox.cgroup_parent())
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            // dockerd 20.10 starts and supervises its own containerd under the exec root;
            // private namespaces keep it apart from any other containerd's data anyway.
            .arg("--containerd-namespace")
            .arg(&sandbox.tag)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{}-plugins", sandbox.tag))
            .arg("--add-runtime")
            .arg(format!("{RUNTIME_NAME}={}", runtime.display()));
        let daemon = Daemon::spawn("dockerd", &mut cmd, &sandbox.root.join("dockerd.log"));
        let mut dockerd = Dockerd {
            daemon,
            host: format!("unix://{}", socket.display()),
            cli_config,
            sandbox,
        };
        wait_until(
            "dockerd to answer `docker version`",
            Duration::from_secs(60),
            || {
                dockerd.daemon.assert_running();
                let out = run(
                    dockerd
                        .docker()
                        .args(["version", "--format", "{{.Server.Version}}"]),
                    Duration::from_secs(10),
                );
                out.status.success().then_some(())
            },
        );
        dockerd
    }

    /// The docker CLI talking to this dockerd only, with its own (empty) CLI config.
    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env_remove("DOCKER_CONTEXT")
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.cli_config);
        cmd
    }

    /// `docker inspect --format FORMAT name`.
    fn inspect(&self, name: &str, format: &str) -> String {
        run_ok(
            self.docker().args(["inspect", "--format", format, name]),
            DOCKER_TIMEOUT,
        )
        .trim()
        .to_owned()
    }

    /// Removes every container, forcibly.
    fn remove_all(&self) {
        let all = try_run(self.docker().args(["ps", "-a", "-q"]), DOCKER_TIMEOUT);
        let ids: Vec<String> = all
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let _ = try_run(self.docker().args(["rm", "-f"]).args(&ids), DOCKER_TIMEOUT);
        }
    }

    /// Stops dockerd (SIGTERM, bounded wait) and returns what it left behind: processes,
    /// mounts under its roots, processes in its cgroups; then the forced cleanup's problems.
    fn finish(mut self) -> Vec<String> {
        self.remove_all();
        let mut left = Vec::new();
        if let Err(e) = self.daemon.stop(Duration::from_secs(30)) {
            left.push(format!("{e}; its log:\n{}", self.daemon.log_tail()));
        }
        // dockerd stops its containerd on the way out, but does not wait for it to exit.
        let stragglers = self.sandbox.processes_naming_root();
        let stragglers = compat_common::wait_gone(&stragglers, Duration::from_secs(15));
        left.extend(
            stragglers
                .iter()
                .map(|p| format!("process {p} still runs after dockerd stopped")),
        );
        left.extend(
            self.sandbox
                .cgroup_pids()
                .iter()
                .map(|p| format!("process {p} still in the test's cgroups")),
        );
        left.extend(
            self.sandbox
                .mounts()
                .iter()
                .map(|m| format!("mount left: {}", m.display())),
        );
        left.extend(self.sandbox.teardown());
        left
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.daemon.pid().is_some() {
            self.remove_all();
        }
    }
}

/// The directories named `name` at most `depth` levels under `dir`.
fn find_dirs_named(dir: &std::path::Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name().to_string_lossy() == name {
            found.push(path.clone());
        }
        if depth > 0 {
            find_dirs_named(&path, name, depth - 1, found);
        }
    }
}

#[test]
fn dockerd_runs_containers_through_the_runtime() {
    require_root("dockerd");
    let runtime = runtime_binary();
    require_tool("dockerd", "docker.io");
    require_tool("docker", "docker.io");
    require_tool("containerd", "containerd");
    require_tool("containerd-shim-runc-v2", "containerd");
    eprintln!("runtime under test: {}", runtime.display());

    let dockerd = Dockerd::start(&runtime);
    let parent = dockerd.sandbox.cgroup_parent();
    let info = run_ok(
        dockerd
            .docker()
            .args(["info", "--format", "{{json .Runtimes}}"]),
        DOCKER_TIMEOUT,
    );
    assert!(
        info.contains(&format!("\"{RUNTIME_NAME}\"")) && info.contains(&*runtime.to_string_lossy()),
        "dockerd does not list the runtime {RUNTIME_NAME}={}: {info}",
        runtime.display()
    );

    // The image, made here and loaded: never pulled.
    let archive = BusyboxImage::build().write_docker_archive(&dockerd.sandbox.root, IMAGE);
    let out = run_ok(
        dockerd.docker().arg("load").arg("--input").arg(&archive),
        DOCKER_TIMEOUT,
    );
    assert!(
        out.contains(IMAGE),
        "`docker load` did not load {IMAGE}: {out}"
    );

    // A foreground run: its output comes back, in the cgroup dockerd asked for.
    let cidfile = dockerd.sandbox.root.join("fg.cid");
    let out = run_ok(
        dockerd
            .docker()
            .args(["run", "--rm", "--pull", "never", "--runtime", RUNTIME_NAME])
            .args(["--network", "none", "--hostname", "compat-dockerd"])
            .arg("--cidfile")
            .arg(&cidfile)
            .args([
                IMAGE,
                "sh",
                "-c",
                "echo hello from $(hostname); cat /proc/self/cgroup",
            ]),
        DOCKER_TIMEOUT,
    );
    eprintln!("foreground container said:\n{out}");
    assert!(
        out.contains("hello from compat-dockerd"),
        "unexpected output of the foreground container:\n{out}"
    );
    let id = fs::read_to_string(&cidfile)
        .unwrap_or_else(|e| panic!("reading the cidfile {}: {e}", cidfile.display()));
    assert_cgroup_path(&out, &parent, id.trim());

    // A detached container: exec into it, stop it, remove it, following its state.
    let name = format!("bg-{}", std::process::id());
    let id = run_ok(
        dockerd
            .docker()
            .args(["run", "-d", "--pull", "never", "--runtime", RUNTIME_NAME])
            .args(["--network", "none", "--name", &name, IMAGE, "sleep", "3600"]),
        DOCKER_TIMEOUT,
    )
    .trim()
    .to_owned();
    assert_eq!(
        dockerd.inspect(&name, "{{.State.Status}} {{.HostConfig.Runtime}}"),
        format!("running {RUNTIME_NAME}"),
        "{name} after `docker run -d`"
    );
    // dockerd 20.10 gives the runc v2 shim a state root under the exec root
    // (<exec-root>/runtime-runc/<namespace>, whatever the runtime's name), so the state must
    // be found there and nowhere on the host.
    let runtime_root = dockerd.sandbox.root.join("exec");
    let mut found = Vec::new();
    find_dirs_named(&runtime_root, &id, 3, &mut found);
    let state = found
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/runtime-"));
    assert!(
        state.is_some(),
        "the runtime keeps no state for {id} under {}: was it used at all?",
        runtime_root.display()
    );
    eprintln!(
        "runtime state of {name}: {}",
        state.unwrap_or_default().display()
    );
    let out = run_ok(
        dockerd.docker().args([
            "exec",
            &name,
            "sh",
            "-c",
            "echo exec in pid $$ sees; tr '\\0' ' ' < /proc/1/cmdline",
        ]),
        DOCKER_TIMEOUT,
    );
    eprintln!("exec said:\n{out}");
    assert!(
        out.contains("sleep 3600"),
        "`docker exec` did not see the container's init (sleep 3600) as pid 1:\n{out}"
    );
    // sleep as pid 1 ignores SIGTERM: docker sends SIGKILL after the 2 s grace period.
    run_ok(
        dockerd.docker().args(["stop", "--time", "2", &name]),
        DOCKER_TIMEOUT,
    );
    assert_eq!(
        dockerd.inspect(&name, "{{.State.Status}}"),
        "exited",
        "{name} after `docker stop`"
    );
    run_ok(dockerd.docker().args(["rm", &name]), DOCKER_TIMEOUT);
    let all = run_ok(dockerd.docker().args(["ps", "-a", "-q"]), DOCKER_TIMEOUT);
    assert!(all.trim().is_empty(), "`docker rm` left: {all}");
    let leaf_cgroups: Vec<PathBuf> = dockerd
        .sandbox
        .cgroup_dirs()
        .into_iter()
        .filter(|d| d.to_string_lossy().contains(&id))
        .collect();
    assert!(
        leaf_cgroups.is_empty(),
        "the container's cgroups remain after `docker rm`: {leaf_cgroups:?}"
    );

    let left = dockerd.finish();
    assert!(left.is_empty(), "dockerd test left behind: {left:#?}");
}
