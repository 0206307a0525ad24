//! What the runtime remembers of each container between commands: one
//! directory per container under the runtime root, holding `state.json`
//! (written atomically) and, until the container is started, `exec.fifo`.
//!
//! A container's status is not stored but observed: its init process is alive
//! (same pid *and* same start time, so a reused pid is not mistaken for it), the
//! fifo still exists (created), the freezer says frozen (paused).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};

/// The file that holds a container's record.
pub const STATE_FILE: &str = "state.json";
/// The fifo the init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
/// The fifo the init holds open (close-on-exec) until it execs: `start` reads
/// it to end-of-file, so it returns, and runs the poststart hooks, only once
/// the user's program runs.
pub const EXEC_DONE_FIFO: &str = "exec.done";

/// The status of a container, as the OCI runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created: the record exists, the init is not ready yet.
    Creating,
    /// Created: the init waits for `start`.
    Created,
    /// Running the user's program.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// A container's record, as stored in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The container's id.
    pub id: String,
    /// The init's pid in the runtime's pid namespace (0 until known).
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), to tell it from a reused pid.
    pub pid_start_time: u64,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// When the container was created, RFC 3339.
    pub created: String,
    /// The user who created it ("" for root, as runc).
    pub owner: String,
    /// The config the container was created from.
    pub config: Spec,
    /// The container's cgroup.
    pub cgroup: Cgroup,
    /// Set when the container has no mount namespace: its mounts are in the
    /// host's, under the rootfs, and `delete` removes them. Absent from the
    /// file otherwise, so the records of other containers are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts: Option<HostMounts>,
}

/// What `delete` needs to remove the mounts of a container that has no mount
/// namespace: they were made in the host's, at or below [`Record::rootfs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMounts {
    /// The ids of the mounts at or below the rootfs before the container
    /// was created (the rootfs's own mount, if it is one): they are left in
    /// place; every other mount there is the container's.
    pub kept: Vec<u64>,
}

/// The runtime's root directory (`--root`), holding one directory per container.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// Opens (creating if needed, mode 0700) the runtime root.
    pub fn open(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create runtime root", dir, e))?;
        Ok(Root {
            dir: dir.to_path_buf(),
        })
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directory of container `id` (which must have been validated).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Claims the directory for a new container; fails if the id is taken.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.into()))
            }
            Err(e) => Err(Error::io("create container directory", &dir, e)),
        }
    }

    /// Loads container `id`'s record.
    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()))
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            path,
            message: format!("corrupt container state: {e}"),
        })
    }

    /// Writes a record atomically: a temporary file renamed over the old one,
    /// so a runtime killed at any moment leaves the old record or the new one.
    /// No fsync: the runtime root lives in /run (a tmpfs), and a container's
    /// runtime state means nothing after a reboot anyway; an fsync here would
    /// cost milliseconds per container on a root placed on disk.
    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Invalid(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::io("write", &path, e))
    }

    /// The ids of every container under this root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if entry.path().join(STATE_FILE).exists() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes container `id`'s directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &dir, e)),
        }
    }
}

/// Container ids as runc accepts them: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.into()))
    }
}

/// A process's start time in clock ticks since boot (field 22 of
/// /proc/PID/stat), or None if it does not exist or is a zombie.
pub fn process_start_time(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Record {
    /// Whether the init process is still the one we created.
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && process_start_time(Pid::from_raw(self.pid)) == Some(self.pid_start_time)
    }

    /// The container's status as observed now.
    pub fn status(&self, root: &Root) -> Status {
        if self.pid <= 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if root.container_dir(&self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The state the OCI runtime spec defines (what `state` prints and hooks read).
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
        }
    }
}

/// The OCI state of a container, in runc's JSON shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// The spec version the container was created with.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// The init's pid (0 once stopped).
    pub pid: i32,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The owner ("" for root).
    pub owner: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_runc_accepts_them() {
        for ok in ["a", "abc-1.2_3+x", "A9"] {
            validate_id(ok).expect(ok);
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn start_time_of_self_is_known_and_stable() {
        let me = Pid::this();
        let a = process_start_time(me).expect("own start time");
        assert_eq!(process_start_time(me), Some(a));
        assert_eq!(process_start_time(Pid::from_raw(i32::MAX)), None);
    }
}
