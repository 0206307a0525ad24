//! containerd runs containers through the runtime under test: Debian's containerd 1.6,
//! started by hand on a private root, state dir and socket, with `ctr run --runc-binary`.
//!
//! Run: `cargo test -p berth-tests --test compat_containerd` as root, with
//! `BERTH_TEST_RUNTIME=/path/to/runtime` (default: target/<profile>/berth-runtime).
//! Needs the Debian packages containerd and busybox-static.

mod compat_common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use compat_common::image::BusyboxImage;
use compat_common::{
    assert_cgroup_path, host_hostname, require_root, require_tool, run, run_ok, runtime_binary,
    try_run, wait_until, Daemon, Sandbox, IMAGE_REPO,
};

/// The name the image is imported under.
const IMAGE: &str = "docker.io/library/busybox-test:latest";

/// Bound on one `ctr` command (an import unpacks a 2 MB layer; a run starts a shim).
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// A private containerd and what the test made with it. Dropping it, also on a failed
/// assertion, kills the tasks, stops containerd and removes mounts, cgroups and dirs.
struct Containerd {
    daemon: Daemon,
    socket: PathBuf,
    runtime: PathBuf,
    runc_root: PathBuf,
    fifo_dir: PathBuf,
    sandbox: Sandbox,
}

impl Containerd {
    /// Writes the config (no CRI plugin, cgroupfs, everything under the sandbox), starts
    /// containerd and waits until `ctr version` answers through its socket.
    fn start(runtime: PathBuf) -> Containerd {
        let mut sandbox = Sandbox::new("containerd");
        // containerd 1.6 puts its shims' sockets in /run/containerd/s, whatever its state dir.
        sandbox.host_paths(&["/run/containerd/s", "/run/containerd"]);
        let root = sandbox.dir("root");
        let state = sandbox.dir("state");
        let opt = sandbox.dir("opt");
        let runc_root = sandbox.dir("runc");
        let fifo_dir = sandbox.dir("fifo");
        let socket = sandbox.root.join("containerd.sock");
        // The runc v2 shim uses cgroupfs unless SystemdCgroup is set, so nothing to say here
        // about the cgroup driver; CRI, and the snapshotters this host cannot use, are off.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = root.display(),
            state = state.display(),
            socket = socket.display(),
            opt = opt.display(),
        );
        let config_path = sandbox.root.join("config.toml");
        fs::write(&config_path, config)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config_path.display()));
        let daemon = Daemon::spawn(
            "containerd",
            Command::new("containerd").arg("--config").arg(&config_path),
            &sandbox.root.join("containerd.log"),
        );
        let mut containerd = Containerd {
            daemon,
            socket,
            runtime,
            runc_root,
            fifo_dir,
            sandbox,
        };
        wait_until(
            "containerd to answer `ctr version`",
            Duration::from_secs(30),
            || {
                containerd.daemon.assert_running();
                let out = run(containerd.ctr().arg("version"), Duration::from_secs(10));
                out.status.success().then_some(())
            },
        );
        containerd
    }

    /// `ctr` talking to this containerd, in the test's own namespace.
    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.sandbox.tag);
        cmd
    }

    /// `ctr run` with the runtime under test, its state root and the fifos in the sandbox.
    fn ctr_run(&self) -> Command {
        let mut cmd = self.ctr();
        cmd.arg("run")
            .arg("--runc-binary")
            .arg(&self.runtime)
            .arg("--runc-root")
            .arg(&self.runc_root)
            .arg("--fifo-dir")
            .arg(&self.fifo_dir);
        cmd
    }

    /// The state of task `id` as `ctr task ls` shows it (RUNNING, STOPPED, ...), if listed.
    fn task_status(&self, id: &str) -> Option<String> {
        let out = run_ok(self.ctr().args(["task", "ls"]), CTR_TIMEOUT);
        out.lines().skip(1).find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.first() == Some(&id)).then(|| fields.last().unwrap_or(&"").to_string())
        })
    }

    /// Kills and deletes every task and container, the way a user would, before stopping.
    fn remove_all(&self) {
        let tasks = try_run(self.ctr().args(["task", "ls", "-q"]), CTR_TIMEOUT);
        for id in tasks
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = try_run(
                self.ctr().args(["task", "kill", "-s", "SIGKILL", id]),
                CTR_TIMEOUT,
            );
            let _ = try_run(self.ctr().args(["task", "delete", "-f", id]), CTR_TIMEOUT);
        }
        let containers = try_run(self.ctr().args(["container", "ls", "-q"]), CTR_TIMEOUT);
        for id in containers
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = try_run(self.ctr().args(["container", "rm", id]), CTR_TIMEOUT);
        }
    }

    /// Stops containerd gracefully and returns what was left behind, before forced cleanup.
    fn finish(mut self) -> Vec<String> {
        self.remove_all();
        let mut left = Vec::new();
        if let Err(e) = self.daemon.stop(Duration::from_secs(30)) {
            left.push(e);
        }
        left.extend(
            self.sandbox
                .processes_naming_root()
                .iter()
                .map(|p| format!("process {p} still runs after containerd stopped")),
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

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.pid().is_some() {
            self.remove_all();
        }
    }
}

#[test]
fn containerd_runs_containers_through_the_runtime() {
    require_root("containerd");
    let runtime = runtime_binary();
    require_tool("containerd", "containerd");
    require_tool("ctr", "containerd");
    require_tool("containerd-shim-runc-v2", "containerd");
    eprintln!("runtime under test: {}", runtime.display());

    let containerd = Containerd::start(runtime);
    let ns = containerd.sandbox.tag.clone();

    // The image, made here and imported: never pulled.
    let archive = BusyboxImage::build().write_oci_archive(&containerd.sandbox.root, IMAGE);
    run_ok(
        containerd.ctr().args(["images", "import"]).arg(&archive),
        CTR_TIMEOUT,
    );
    let images = run_ok(containerd.ctr().args(["images", "ls", "-q"]), CTR_TIMEOUT);
    assert!(
        images.lines().any(|l| l == IMAGE),
        "`ctr images import` did not create {IMAGE} ({IMAGE_REPO} from busybox-static); \
         images now: {images}"
    );

    // A foreground run: its output comes back, in the cgroup containerd asked for.
    let id = format!("fg-{}", std::process::id());
    let out = run_ok(
        containerd.ctr_run().args([
            "--rm",
            IMAGE,
            &id,
            "sh",
            "-c",
            "echo hello from $(hostname); cat /proc/self/cgroup",
        ]),
        CTR_TIMEOUT,
    );
    eprintln!("foreground container said:\n{out}");
    assert!(
        out.contains(&format!("hello from {}", host_hostname())),
        "unexpected output of the foreground container:\n{out}"
    );
    assert_cgroup_path(&out, &format!("/{ns}"), &id);
    assert!(
        containerd.task_status(&id).is_none(),
        "`ctr run --rm` left task {id} behind"
    );
    assert!(
        containerd.runc_root.join(&ns).is_dir(),
        "the runtime kept no state under --runc-root {}: was it used at all?",
        containerd.runc_root.display()
    );

    // A detached container: exec into it, kill it, delete it, following its state.
    let id = format!("bg-{}", std::process::id());
    run_ok(
        containerd
            .ctr_run()
            .args(["-d", IMAGE, &id, "sleep", "3600"]),
        CTR_TIMEOUT,
    );
    assert_eq!(
        containerd.task_status(&id).as_deref(),
        Some("RUNNING"),
        "task {id} after `ctr run -d`"
    );
    let out = run_ok(
        containerd.ctr().args([
            "task",
            "exec",
            "--exec-id",
            "probe",
            "--fifo-dir",
            &containerd.fifo_dir.to_string_lossy(),
            &id,
            "sh",
            "-c",
            "echo exec in pid $$ sees; tr '\\0' ' ' < /proc/1/cmdline",
        ]),
        CTR_TIMEOUT,
    );
    eprintln!("exec said:\n{out}");
    assert!(
        out.contains("sleep 3600"),
        "`ctr task exec` did not see the container's init (sleep 3600) as pid 1:\n{out}"
    );
    // sleep as pid 1 has no SIGTERM handler, so only SIGKILL ends it.
    run_ok(
        containerd
            .ctr()
            .args(["task", "kill", "-s", "SIGKILL", &id]),
        CTR_TIMEOUT,
    );
    wait_until(
        &format!("task {id} to be STOPPED after SIGKILL"),
        Duration::from_secs(20),
        || (containerd.task_status(&id).as_deref() == Some("STOPPED")).then_some(()),
    );
    run_ok(containerd.ctr().args(["task", "delete", &id]), CTR_TIMEOUT);
    assert!(
        containerd.task_status(&id).is_none(),
        "`ctr task delete` left task {id} listed"
    );
    run_ok(containerd.ctr().args(["container", "rm", &id]), CTR_TIMEOUT);
    let leaf_cgroups: Vec<PathBuf> = containerd
        .sandbox
        .cgroup_dirs()
        .into_iter()
        .filter(|d| d.ends_with(&id))
        .collect();
    assert!(
        leaf_cgroups.is_empty(),
        "the runtime left the container's cgroups after delete: {leaf_cgroups:?}"
    );

    let left = containerd.finish();
    assert!(left.is_empty(), "containerd test left behind: {left:#?}");
}
