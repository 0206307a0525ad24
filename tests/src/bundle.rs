//! OCI bundles: a temporary directory with a busybox rootfs and a `config.json`.
//!
//! The spec is kept as a `serde_json::Value` rather than oci-spec's typed `Spec`, because the
//! bad-input tests must write what a typed spec cannot hold (a namespace of type "foo", a
//! capability "CAP_FOO", malformed JSON), and one representation serves both kinds of test.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::rootfs::{busybox_rootfs, RootfsError};

/// The OCI version the bundles declare: crun 1.8 rejects a version without "1.0" in it.
pub const OCI_VERSION: &str = "1.0.2";

/// The environment variable every bundle's process carries, set to the container's id, so
/// [`crate::HostSnapshot`] can find a leaked container process by its environment.
pub const ID_ENV: &str = "BERTH_TEST_ID";

/// Errors while making or writing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The temporary bundle directory could not be made.
    #[error("bundle: create a temporary directory under {dir}: {source}")]
    TempDir {
        /// The parent directory.
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The rootfs could not be made.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// `config.json` could not be written or removed.
    #[error("bundle: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The phases at which the OCI spec runs hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPhase {
    /// Deprecated `prestart`: after the namespaces exist, in the runtime's namespace.
    Prestart,
    /// `createRuntime`: during create, in the runtime's namespace.
    CreateRuntime,
    /// `createContainer`: during create, in the container's namespaces.
    CreateContainer,
    /// `startContainer`: during start, inside the container, before the user process.
    StartContainer,
    /// `poststart`: after the user process started, in the runtime's namespace.
    Poststart,
    /// `poststop`: at delete, in the runtime's namespace.
    Poststop,
}

impl HookPhase {
    /// Every phase, in the order a container's life reaches them.
    pub const ALL: [HookPhase; 6] = [
        HookPhase::Prestart,
        HookPhase::CreateRuntime,
        HookPhase::CreateContainer,
        HookPhase::StartContainer,
        HookPhase::Poststart,
        HookPhase::Poststop,
    ];

    /// The phase's key in `config.json`'s `hooks` object.
    pub fn key(self) -> &'static str {
        match self {
            HookPhase::Prestart => "prestart",
            HookPhase::CreateRuntime => "createRuntime",
            HookPhase::CreateContainer => "createContainer",
            HookPhase::StartContainer => "startContainer",
            HookPhase::Poststart => "poststart",
            HookPhase::Poststop => "poststop",
        }
    }
}

/// What `config.json` will hold when the bundle is written.
#[derive(Debug, Clone)]
enum Config {
    /// The spec, completed with the container's id at write time.
    Spec,
    /// These exact bytes, for malformed-input tests.
    Raw(String),
    /// No `config.json` at all.
    Missing,
}

/// A temporary OCI bundle: a busybox rootfs and a spec that becomes `config.json`.
///
/// The defaults are those `runc spec` writes (ociVersion 1.0.2, `sh`, no terminal, the default
/// mounts, masked and read-only paths, capabilities, a read-only root, new pid, network, ipc, uts
/// and mount namespaces). Builder methods change one part each. [`Bundle::write_config`] fills
/// in what ties the bundle to one container: a `cgroupsPath` of `/<id>` unless one was set, and
/// [`ID_ENV`]`=<id>` in the environment of the process and of every hook. The directory is removed on drop.
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    spec: Value,
    config: Config,
}

/// The default spec, as `runc spec` writes it, with `terminal` false.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "berth-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The path of `obj[key]` as an array, made if missing.
fn array<'a>(obj: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    match &mut obj[key] {
        Value::Array(items) => items,
        _ => unreachable!("the key was just set to an array"),
    }
}

/// `obj[key]` as an object, made if missing.
fn object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    if !obj[key].is_object() {
        obj[key] = json!({});
    }
    &mut obj[key]
}

impl Bundle {
    /// A bundle in a new temporary directory (under the system's temp dir) with a busybox
    /// rootfs and the default spec.
    pub fn new() -> Result<Bundle, BundleError> {
        Bundle::new_in(&std::env::temp_dir())
    }

    /// A bundle in a new temporary directory under `parent`, as [`Bundle::new`].
    pub fn new_in(parent: &Path) -> Result<Bundle, BundleError> {
        let parent = parent.to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir_in(&parent)
            .map_err(|source| BundleError::TempDir {
                dir: parent,
                source,
            })?;
        busybox_rootfs(dir.path())?;
        Ok(Bundle {
            dir,
            spec: default_spec(),
            config: Config::Spec,
        })
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The spec as it stands.
    pub fn spec(&self) -> &Value {
        &self.spec
    }

    /// The spec, for a change no builder method covers.
    pub fn spec_mut(&mut self) -> &mut Value {
        &mut self.spec
    }

    /// Replaces the whole spec.
    pub fn with_spec(mut self, spec: Value) -> Self {
        self.spec = spec;
        self
    }

    /// `config.json` will hold exactly `text` (for malformed-input tests).
    pub fn raw_config(mut self, text: &str) -> Self {
        self.config = Config::Raw(text.to_owned());
        self
    }

    /// The bundle will have no `config.json`.
    pub fn without_config(mut self) -> Self {
        self.config = Config::Missing;
        self
    }

    /// Sets `process.args`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.spec["process"]["args"] = json!(args);
        self
    }

    /// Runs `script` with the container's `sh -c`.
    pub fn shell(self, script: &str) -> Self {
        self.args(&["sh", "-c", script])
    }

    /// Adds `key=value` to `process.env`, replacing an earlier value of `key`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let env = array(&mut self.spec["process"], "env");
        let prefix = format!("{key}=");
        env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
        env.push(json!(format!("{key}={value}")));
        self
    }

    /// Sets `process.cwd`.
    pub fn cwd(mut self, cwd: &str) -> Self {
        self.spec["process"]["cwd"] = json!(cwd);
        self
    }

    /// Sets `process.user`: uid, gid and additional gids.
    pub fn user(mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> Self {
        self.spec["process"]["user"] =
            json!({ "uid": uid, "gid": gid, "additionalGids": additional_gids });
        self
    }

    /// Sets `process.user.umask`.
    pub fn umask(mut self, umask: u32) -> Self {
        self.spec["process"]["user"]["umask"] = json!(umask);
        self
    }

    /// Sets `process.noNewPrivileges`.
    pub fn no_new_privileges(mut self, on: bool) -> Self {
        self.spec["process"]["noNewPrivileges"] = json!(on);
        self
    }

    /// Sets `process.terminal`.
    pub fn terminal(mut self, on: bool) -> Self {
        self.spec["process"]["terminal"] = json!(on);
        self
    }

    /// Adds or replaces an rlimit, e.g. `("RLIMIT_NOFILE", 512, 768)`.
    pub fn rlimit(mut self, kind: &str, soft: u64, hard: u64) -> Self {
        let rlimits = array(&mut self.spec["process"], "rlimits");
        rlimits.retain(|r| r["type"] != kind);
        rlimits.push(json!({ "type": kind, "soft": soft, "hard": hard }));
        self
    }

    /// Removes `cap` from every capability set.
    pub fn drop_capability(mut self, cap: &str) -> Self {
        if let Some(sets) = self.spec["process"]["capabilities"].as_object_mut() {
            for set in sets.values_mut() {
                if let Some(list) = set.as_array_mut() {
                    list.retain(|c| c != cap);
                }
            }
        }
        self
    }

    /// Adds `cap` to every capability set.
    pub fn add_capability(mut self, cap: &str) -> Self {
        let caps = object(&mut self.spec["process"], "capabilities");
        for set in ["bounding", "effective", "permitted", "ambient"] {
            let list = array(caps, set);
            if !list.iter().any(|c| c == cap) {
                list.push(json!(cap));
            }
        }
        self
    }

    /// Sets `hostname`.
    pub fn hostname(mut self, name: &str) -> Self {
        self.spec["hostname"] = json!(name);
        self
    }

    /// Adds a namespace of `kind` (new, or joined at `path`), replacing one of the same kind.
    pub fn namespace(mut self, kind: &str, path: Option<&Path>) -> Self {
        let namespaces = array(&mut self.spec["linux"], "namespaces");
        namespaces.retain(|n| n["type"] != kind);
        let mut ns = json!({ "type": kind });
        if let Some(path) = path {
            ns["path"] = json!(path);
        }
        namespaces.push(ns);
        self
    }

    /// Removes the namespace of `kind`: the container shares the runtime's.
    pub fn without_namespace(mut self, kind: &str) -> Self {
        array(&mut self.spec["linux"], "namespaces").retain(|n| n["type"] != kind);
        self
    }

    /// Adds a user namespace mapping `size` ids from `container_id` to `host_id`, for uids and
    /// gids alike.
    pub fn user_namespace(self, container_id: u32, host_id: u32, size: u32) -> Self {
        let mut this = self.namespace("user", None);
        let mapping = json!([{ "containerID": container_id, "hostID": host_id, "size": size }]);
        this.spec["linux"]["uidMappings"] = mapping.clone();
        this.spec["linux"]["gidMappings"] = mapping;
        this
    }

    /// Sets `linux.cgroupsPath`; without it, [`Bundle::write_config`] uses `/<id>`.
    pub fn cgroups_path(mut self, path: &str) -> Self {
        self.spec["linux"]["cgroupsPath"] = json!(path);
        self
    }

    /// Merges `resources` (an object like `{"memory": {"limit": 1}}`) into `linux.resources`.
    pub fn resources(mut self, resources: Value) -> Self {
        let target = object(&mut self.spec["linux"], "resources");
        if let (Some(target), Value::Object(add)) = (target.as_object_mut(), resources) {
            target.extend(add);
        }
        self
    }

    /// Sets the memory limit in bytes.
    pub fn memory_limit(self, bytes: i64) -> Self {
        self.resources(json!({ "memory": { "limit": bytes } }))
    }

    /// Sets the pids limit.
    pub fn pids_limit(self, max: i64) -> Self {
        self.resources(json!({ "pids": { "limit": max } }))
    }

    /// Sets the cpu shares.
    pub fn cpu_shares(self, shares: u64) -> Self {
        self.resources(json!({ "cpu": { "shares": shares } }))
    }

    /// Adds a hook to `phase`: `path` run with `args` (argv, including argv\[0\]), with an
    /// optional timeout in seconds.
    pub fn hook(
        mut self,
        phase: HookPhase,
        path: &str,
        args: &[&str],
        timeout: Option<u32>,
    ) -> Self {
        let hooks = object(&mut self.spec, "hooks");
        let mut hook = json!({ "path": path, "args": args });
        if let Some(timeout) = timeout {
            hook["timeout"] = json!(timeout);
        }
        array(hooks, phase.key()).push(hook);
        self
    }

    /// Adds a mount entry.
    pub fn mount(mut self, mount: Value) -> Self {
        array(&mut self.spec, "mounts").push(mount);
        self
    }

    /// Bind-mounts host `source` at `destination`, read-only if `readonly`.
    pub fn bind(self, source: &Path, destination: &str, readonly: bool) -> Self {
        let mut options = vec!["rbind", "nosuid", "nodev"];
        options.push(if readonly { "ro" } else { "rw" });
        self.mount(json!({ "destination": destination, "type": "bind", "source": source, "options": options }))
    }

    /// Mounts a fresh tmpfs at `destination`.
    pub fn tmpfs(self, destination: &str) -> Self {
        self.mount(json!({
            "destination": destination, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"]
        }))
    }

    /// Adds paths to `linux.maskedPaths`.
    pub fn masked_paths(mut self, paths: &[&str]) -> Self {
        let list = array(&mut self.spec["linux"], "maskedPaths");
        list.extend(paths.iter().map(|p| json!(p)));
        self
    }

    /// Adds paths to `linux.readonlyPaths`.
    pub fn readonly_paths(mut self, paths: &[&str]) -> Self {
        let list = array(&mut self.spec["linux"], "readonlyPaths");
        list.extend(paths.iter().map(|p| json!(p)));
        self
    }

    /// Sets `root.readonly`.
    pub fn readonly_root(mut self, on: bool) -> Self {
        self.spec["root"]["readonly"] = json!(on);
        self
    }

    /// Sets `root.path` (relative to the bundle or absolute).
    pub fn root_path(mut self, path: &str) -> Self {
        self.spec["root"]["path"] = json!(path);
        self
    }

    /// Keeps the bundle directory after drop (for benchmarks) and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    /// Writes the spec to `config.json` exactly as it stands, with no container's id in it:
    /// each runtime then picks its own default cgroup per container.
    pub fn write_spec(&self) -> Result<(), BundleError> {
        let path = self.config_path();
        // A Value always serialises.
        let text = serde_json::to_string_pretty(&self.spec).unwrap_or_default();
        fs::write(&path, text).map_err(|source| BundleError::Io {
            op: "write",
            path,
            source,
        })
    }

    /// The `config.json` path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Writes `config.json` for container `id`: the spec with `cgroupsPath` defaulted to
    /// `/<id>` and [`ID_ENV`]`=<id>` added (or the raw text, or no file, if so chosen).
    pub fn write_config(&self, id: &str) -> Result<(), BundleError> {
        let path = self.config_path();
        let text = match &self.config {
            Config::Missing => {
                return match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BundleError::Io {
                        op: "remove",
                        path,
                        source: e,
                    }),
                    _ => Ok(()),
                };
            }
            Config::Raw(text) => text.clone(),
            Config::Spec => {
                let mut spec = self.spec.clone();
                if spec["linux"]["cgroupsPath"].is_null() && spec["linux"].is_object() {
                    spec["linux"]["cgroupsPath"] = json!(format!("/{id}"));
                }
                if spec["process"].is_object() {
                    array(&mut spec["process"], "env").push(json!(format!("{ID_ENV}={id}")));
                }
                // Hooks carry the id too, so a hook process left running is found.
                if let Some(phases) = spec["hooks"].as_object_mut() {
                    for hook in phases
                        .values_mut()
                        .filter_map(Value::as_array_mut)
                        .flatten()
                    {
                        let env = array(hook, "env");
                        env.push(json!("PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
                        env.push(json!(format!("{ID_ENV}={id}")));
                    }
                }
                // A Value always serialises.
                serde_json::to_string_pretty(&spec).unwrap_or_default()
            }
        };
        fs::write(&path, text).map_err(|source| BundleError::Io {
            op: "write",
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(bundle: &Bundle, id: &str) -> Value {
        bundle.write_config(id).expect("write config.json");
        let text = fs::read_to_string(bundle.config_path()).expect("read config.json");
        serde_json::from_str(&text).expect("config.json is JSON")
    }

    #[test]
    fn default_bundle_has_a_busybox_rootfs_and_runcs_defaults() {
        let b = Bundle::new().expect("bundle");
        let rootfs = b.rootfs();
        assert!(rootfs.join("bin/busybox").is_file());
        assert_eq!(
            fs::read_link(rootfs.join("bin/sh")).expect("sh applet"),
            Path::new("busybox")
        );
        assert!(fs::read_to_string(rootfs.join("etc/passwd"))
            .expect("passwd")
            .contains("nobody:x:65534"));
        let spec = written(&b, "c1");
        assert_eq!(spec["ociVersion"], OCI_VERSION);
        assert_eq!(spec["process"]["terminal"], false);
        assert_eq!(
            spec["linux"]["namespaces"].as_array().map(Vec::len),
            Some(5)
        );
        assert_eq!(
            spec["linux"]["cgroupsPath"], "/c1",
            "the id's cgroup by default"
        );
        assert!(spec["process"]["env"]
            .as_array()
            .expect("env")
            .contains(&json!("BERTH_TEST_ID=c1")));
    }

    #[test]
    fn builders_change_one_part_each() {
        let b = Bundle::new()
            .expect("bundle")
            .env("A", "1")
            .env("A", "2")
            .rlimit("RLIMIT_NOFILE", 10, 20)
            .drop_capability("CAP_KILL")
            .namespace("network", Some(Path::new("/proc/1/ns/net")))
            .without_namespace("ipc")
            .user_namespace(0, 1000, 10)
            .memory_limit(5)
            .pids_limit(6)
            .cgroups_path("/mine")
            .hook(HookPhase::Poststop, "/bin/true", &["true"], Some(3));
        let spec = written(&b, "c2");
        let env = spec["process"]["env"].as_array().expect("env");
        assert!(env.contains(&json!("A=2")) && !env.contains(&json!("A=1")));
        assert_eq!(
            spec["process"]["rlimits"],
            json!([{ "type": "RLIMIT_NOFILE", "soft": 10, "hard": 20 }])
        );
        assert!(!spec["process"]["capabilities"]["bounding"]
            .as_array()
            .expect("set")
            .contains(&json!("CAP_KILL")));
        let ns = spec["linux"]["namespaces"].as_array().expect("namespaces");
        assert!(ns.contains(&json!({ "type": "network", "path": "/proc/1/ns/net" })));
        assert!(!ns.iter().any(|n| n["type"] == "ipc"));
        assert!(ns.iter().any(|n| n["type"] == "user"));
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 5);
        assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 6);
        assert!(
            spec["linux"]["resources"]["devices"].is_array(),
            "resources merge, not replace"
        );
        assert_eq!(spec["linux"]["cgroupsPath"], "/mine");
        assert_eq!(spec["hooks"]["poststop"][0]["timeout"], 3);
        assert!(spec["hooks"]["poststop"][0]["env"]
            .as_array()
            .expect("hook env")
            .contains(&json!("BERTH_TEST_ID=c2")));
    }

    #[test]
    fn raw_and_missing_configs_are_written_as_asked() {
        let b = Bundle::new().expect("bundle").raw_config("{ nope");
        b.write_config("c3").expect("write");
        assert_eq!(fs::read_to_string(b.config_path()).expect("read"), "{ nope");
        let b = b.without_config();
        b.write_config("c3").expect("remove");
        assert!(!b.config_path().exists());
    }

    #[test]
    fn unique_names_differ() {
        let a = crate::unique_name("x");
        let b = crate::unique_name("x");
        assert_ne!(a, b);
        assert!(a.contains(&std::process::id().to_string()));
    }
}
