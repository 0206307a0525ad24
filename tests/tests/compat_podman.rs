//! podman runs containers through the runtime under test: Debian's podman 4.3 with
//! `--runtime PATH`, on a private storage root, run root, tmp dir and config files, cgroupfs,
//! no network and never a pull.
//!
//! Run: `cargo test -p berth-tests --test compat_podman` as root, with
//! `BERTH_TEST_RUNTIME=/path/to/runtime` (default: target/<profile>/berth-runtime).
//! Needs the Debian packages podman, conmon and busybox-static.

mod compat_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use compat_common::image::BusyboxImage;
use compat_common::{
    assert_cgroup_path, require_root, require_tool, run_ok, runtime_binary, try_run, Sandbox,
};

/// The name the image is loaded under.
const IMAGE: &str = "docker.io/library/busybox-test:latest";

/// Bound on one podman command.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(90);

/// A podman confined to the sandbox. Dropping it, also on a failed assertion, removes its
/// containers, then the sandbox's teardown removes mounts, cgroups and dirs.
struct Podman {
    runtime: PathBuf,
    policy: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
    sandbox: Sandbox,
}

impl Podman {
    /// Writes the config files podman reads (containers.conf, storage.conf, registries.conf,
    /// a signature policy) so that no host file under /etc/containers decides anything.
    fn new(runtime: PathBuf) -> Podman {
        let mut sandbox = Sandbox::new("podman");
        // Podman 4.3 (containers/image 5.23) keeps its blob-info cache in
        // /var/lib/containers/cache as root, whatever --root says; and the runtime keeps its
        // state in its default root, /run/<name> by runc's convention (see podman()).
        sandbox.host_paths(&[
            "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
            "/var/lib/containers/cache",
            "/var/lib/containers",
        ]);
        if let Some(name) = runtime.file_name() {
            let default_root = Path::new("/run").join(name);
            sandbox.host_paths(&[&default_root.to_string_lossy()]);
        }
        let root = sandbox.dir("root");
        let runroot = sandbox.dir("runroot");
        let tmp = sandbox.dir("tmp");
        let volumes = sandbox.dir("volumes");
        let net = sandbox.dir("net");
        let copy_tmp = sandbox.dir("copy-tmp");
        let write = |name: &str, text: String| {
            let path = sandbox.root.join(name);
            fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            path
        };
        let containers_conf = write(
            "containers.conf",
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n\
                 tmp_dir = \"{}\"\nvolume_path = \"{}\"\nimage_copy_tmp_dir = \"{}\"\n\n\
                 [network]\nnetwork_config_dir = \"{}\"\n",
                tmp.display(),
                volumes.display(),
                copy_tmp.display(),
                net.display()
            ),
        );
        let storage_conf = write(
            "storage.conf",
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                runroot.display(),
                root.display()
            ),
        );
        // No registry at all: a short name can never turn into a pull.
        let registries_conf = write(
            "registries.conf",
            "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n".to_owned(),
        );
        let policy = write(
            "policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#.to_owned(),
        );
        Podman {
            runtime,
            policy,
            env: vec![
                // Image copies put their temporary files in TMPDIR (else /var/tmp). `podman
                // load` still probes the archive as an oci-archive in a short-lived
                // /var/tmp/oci* dir: containers/image 5.23 hard-codes that one.
                ("TMPDIR", copy_tmp),
                ("CONTAINERS_CONF", containers_conf),
                ("CONTAINERS_STORAGE_CONF", storage_conf),
                ("CONTAINERS_REGISTRIES_CONF", registries_conf),
            ],
            sandbox,
        }
    }

    /// `podman` with every root in the sandbox and the runtime under test.
    fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let root = &self.sandbox.root;
        cmd.arg("--root")
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("runroot"))
            .arg("--tmpdir")
            .arg(root.join("tmp"))
            .args(["--storage-driver", "overlay"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "none"])
            .arg("--runtime")
            .arg(&self.runtime);
        // The runtime keeps its state in its default root (/run/runc for runc): podman 4.3
        // does not pass `--runtime-flag root=...` on to the `podman container cleanup` that
        // conmon runs when a container exits, whose `delete` then misses the container and
        // leaves its cgroups. Container ids are unique, so the shared root is harmless.
        cmd
    }

    /// `podman run` as this host needs it: explicit ulimits (shared/design/testing.md: podman's
    /// default rlimits fail on these VMs, whose bounding set lacks CAP_SYS_RESOURCE), no
    /// network, never a pull, and the sandbox's cgroup parent.
    fn podman_run(&self) -> Command {
        let mut cmd = self.podman();
        cmd.args(["run", "--pull", "never", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(self.sandbox.cgroup_parent());
        cmd
    }

    /// `{{.State.Status}}` of container `name`.
    fn status(&self, name: &str) -> String {
        run_ok(
            self.podman()
                .args(["inspect", "--format", "{{.State.Status}}", name]),
            PODMAN_TIMEOUT,
        )
        .trim()
        .to_owned()
    }

    /// Removes every container, forcibly.
    fn remove_all(&self) {
        let _ = try_run(
            self.podman()
                .args(["rm", "--all", "--force", "--time", "0"]),
            PODMAN_TIMEOUT,
        );
    }

    /// What podman left after its containers are gone, then the forced cleanup's problems.
    fn finish(mut self) -> Vec<String> {
        // conmon (a container's, and an exec session's) exits on its own after the container
        // or exec it watched, running podman's cleanup first: `podman rm` does not wait for
        // it. Give it a bounded while before counting it as left behind.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !self.sandbox.processes_naming_root().is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut left: Vec<String> = self
            .sandbox
            .processes_naming_root()
            .iter()
            .map(|p| format!("process {p} (conmon?) still runs after `podman rm`"))
            .collect();
        left.extend(
            self.sandbox
                .cgroup_pids()
                .iter()
                .map(|p| format!("process {p} still in the test's cgroups")),
        );
        // c/storage keeps its overlay home bind-mounted (private) while it has layers; that
        // mount is podman's own, not a container's, so only the others count.
        let overlay_home = self.sandbox.root.join("root").join("overlay");
        left.extend(
            self.sandbox
                .mounts()
                .iter()
                .filter(|m| **m != overlay_home)
                .map(|m| format!("mount left: {}", m.display())),
        );
        left.extend(self.sandbox.teardown());
        left
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.remove_all();
    }
}

#[test]
fn podman_runs_containers_through_the_runtime() {
    require_root("podman");
    let runtime = runtime_binary();
    require_tool("podman", "podman");
    require_tool("conmon", "conmon");
    eprintln!("runtime under test: {}", runtime.display());

    let podman = Podman::new(runtime);
    let parent = podman.sandbox.cgroup_parent();

    // The image, made here and loaded: never pulled.
    let archive = BusyboxImage::build().write_docker_archive(&podman.sandbox.root, IMAGE);
    let out = run_ok(
        podman
            .podman()
            .arg("load")
            .arg("--signature-policy")
            .arg(&podman.policy)
            .arg("--input")
            .arg(&archive),
        PODMAN_TIMEOUT,
    );
    assert!(
        out.contains(IMAGE),
        "`podman load` did not load {IMAGE}: {out}"
    );

    // A foreground run: its output comes back, in the cgroup podman asked for.
    let cidfile = podman.sandbox.root.join("fg.cid");
    let out = run_ok(
        podman
            .podman_run()
            .args(["--rm", "--hostname", "compat-podman", "--cidfile"])
            .arg(&cidfile)
            .args([
                IMAGE,
                "sh",
                "-c",
                "echo hello from $(hostname); cat /proc/self/cgroup",
            ]),
        PODMAN_TIMEOUT,
    );
    eprintln!("foreground container said:\n{out}");
    assert!(
        out.contains("hello from compat-podman"),
        "unexpected output of the foreground container:\n{out}"
    );
    let id = fs::read_to_string(&cidfile)
        .unwrap_or_else(|e| panic!("reading the cidfile {}: {e}", cidfile.display()));
    assert_cgroup_path(&out, &parent, id.trim());
    let all = run_ok(podman.podman().args(["ps", "-a", "-q"]), PODMAN_TIMEOUT);
    assert!(all.trim().is_empty(), "`podman run --rm` left: {all}");

    // A detached container: exec into it, stop it, remove it, following its state.
    let name = format!("bg-{}", std::process::id());
    let id = run_ok(
        podman
            .podman_run()
            .args(["-d", "--name", &name, IMAGE, "sleep", "3600"]),
        PODMAN_TIMEOUT,
    )
    .trim()
    .to_owned();
    assert_eq!(
        podman.status(&name),
        "running",
        "{name} after `podman run -d`"
    );
    let monitors: Vec<String> = podman
        .sandbox
        .processes_naming_root()
        .iter()
        .filter_map(|p| fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&id))
        .collect();
    let runtime_arg = format!(" -r {} ", podman.runtime.display());
    assert!(
        monitors.iter().any(|c| c.contains(&runtime_arg)),
        "no conmon for {id} runs the runtime under test (`{runtime_arg}`): {monitors:#?}"
    );
    let out = run_ok(
        podman.podman().args([
            "exec",
            &name,
            "sh",
            "-c",
            "echo exec in pid $$ sees; tr '\\0' ' ' < /proc/1/cmdline",
        ]),
        PODMAN_TIMEOUT,
    );
    eprintln!("exec said:\n{out}");
    assert!(
        out.contains("sleep 3600"),
        "`podman exec` did not see the container's init (sleep 3600) as pid 1:\n{out}"
    );
    // sleep as pid 1 ignores SIGTERM: podman sends SIGKILL after the 2 s grace period.
    run_ok(
        podman.podman().args(["stop", "--time", "2", &name]),
        PODMAN_TIMEOUT,
    );
    assert_eq!(podman.status(&name), "exited", "{name} after `podman stop`");
    run_ok(podman.podman().args(["rm", &name]), PODMAN_TIMEOUT);
    let all = run_ok(podman.podman().args(["ps", "-a", "-q"]), PODMAN_TIMEOUT);
    assert!(all.trim().is_empty(), "`podman rm` left: {all}");
    let leaf_cgroups: Vec<PathBuf> = podman
        .sandbox
        .cgroup_dirs()
        .into_iter()
        .filter(|d| d.to_string_lossy().contains(&id))
        .collect();
    assert!(
        leaf_cgroups.is_empty(),
        "the container's cgroups remain after `podman rm`: {leaf_cgroups:?}"
    );

    let left = podman.finish();
    assert!(left.is_empty(), "podman test left behind: {left:#?}");
}
