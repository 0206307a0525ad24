//! What a user checks after a container is gone: `findmnt`, `/sys/fs/cgroup/*/`, `ps`, and the
//! runtime's state directory. A [`HostSnapshot`] taken before a test lists what the test then
//! left behind.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bundle::ID_ENV;
use crate::runtime::Runtime;
use crate::wait::is_alive;

/// The host as it was before a test, and the names that mark what the test makes.
#[derive(Debug)]
pub struct HostSnapshot {
    mounts: HashSet<String>,
    before: HashSet<String>,
    ids: Vec<String>,
    paths: Vec<String>,
    state_root: Option<PathBuf>,
}

/// The mount lines of this process's mount namespace (the host's).
fn mountinfo() -> HashSet<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Directories under `dir`, `depth` levels down, whose name contains one of `ids`.
fn find_dirs(dir: &Path, ids: &[String], depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ids.iter().any(|id| name.contains(id.as_str())) {
            found.push(path);
        } else if depth > 0 {
            find_dirs(&path, ids, depth - 1, found);
        }
    }
}

/// Files and directories under `dir`, `depth` levels down, whose name contains one of `ids`.
fn find_entries(dir: &Path, ids: &[String], depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ids.iter().any(|id| name.contains(id.as_str())) {
            found.push(path);
        } else if depth > 0 && entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_entries(&path, ids, depth - 1, found);
        }
    }
}

impl HostSnapshot {
    /// Records the host now. `ids` are the container ids the test will use; `paths` are its
    /// bundle and scratch directories; both mark the test's mounts, cgroups and processes.
    /// `runtime`'s state root is checked for the ids' state directories.
    pub fn take(runtime: Option<&Runtime>, ids: &[&str], paths: &[&Path]) -> HostSnapshot {
        let mut snapshot = HostSnapshot {
            mounts: mountinfo(),
            before: HashSet::new(),
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            paths: paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            state_root: runtime.map(|r| r.root().to_path_buf()),
        };
        // Cgroups, processes and state directories of these ids that exist already are not
        // the test's leftovers (ids are unique per test, so this is normally empty).
        snapshot.before = snapshot.marked().into_iter().collect();
        snapshot
    }

    /// What the test left behind, one line per thing, empty when the host is clean.
    pub fn leftovers(&self) -> Vec<String> {
        self.marked()
            .into_iter()
            .filter(|l| !self.before.contains(l))
            .collect()
    }

    /// Every mount new since the snapshot, and every cgroup, live process and state directory,
    /// that carries one of the test's marks.
    fn marked(&self) -> Vec<String> {
        let mut left = Vec::new();
        let marks: Vec<&str> = self
            .ids
            .iter()
            .chain(&self.paths)
            .map(String::as_str)
            .collect();
        for line in mountinfo().difference(&self.mounts) {
            if marks.iter().any(|m| line.contains(m)) {
                left.push(format!("mount: {line}"));
            }
        }
        let mut cgroups = Vec::new();
        find_dirs(Path::new("/sys/fs/cgroup"), &self.ids, 4, &mut cgroups);
        left.extend(cgroups.iter().map(|c| format!("cgroup: {}", c.display())));
        if let Ok(entries) = fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if pid == std::process::id() as i32 || !is_alive(pid) {
                    continue;
                }
                let read = |f: &str| {
                    fs::read(format!("/proc/{pid}/{f}"))
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                let (environ, cgroup, cmdline) = (read("environ"), read("cgroup"), read("cmdline"));
                let hit = self.ids.iter().any(|id| {
                    environ.split('\0').any(|e| e == format!("{ID_ENV}={id}"))
                        || cgroup.contains(id.as_str())
                        || cmdline.contains(id.as_str())
                });
                if hit {
                    left.push(format!(
                        "process {pid}: {}",
                        cmdline.replace('\0', " ").trim()
                    ));
                }
            }
        }
        if let Some(root) = &self.state_root {
            // Wherever in its root the runtime keeps a container's state, nothing named after
            // the id may remain.
            let mut state = Vec::new();
            find_entries(root, &self.ids, 3, &mut state);
            left.extend(state.iter().map(|p| format!("state: {}", p.display())));
        }
        left
    }

    /// Panics listing every leftover, if any.
    pub fn assert_clean(&self) {
        let left = self.leftovers();
        assert!(
            left.is_empty(),
            "the test left these behind on the host:\n  {}",
            left.join("\n  ")
        );
    }
}
