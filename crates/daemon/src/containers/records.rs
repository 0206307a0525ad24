//! Where a container's files are, and how its record is found (name, ID, prefix), saved, and
//! announced on the events bus; removal of what a run left in the exec root.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use api_server::ApiError;
use api_types::models::*;

use super::{lock, Container};
use crate::state::{self, ContainerRecord};
use crate::Inner;

impl Inner {
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }
    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }
    /// The monitor's socket: short (`<exec-root>/s/<16 hex>.sock`), because a unix socket's
    /// path must fit in 108 bytes and the bundle's path is long.
    pub(crate) fn socket(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("s")
            .join(format!("{}.sock", &id[..16.min(id.len())]))
    }
    pub(super) fn state_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor-state.json")
    }
    pub(super) fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Finds a container by full ID, name or unique ID prefix.
    pub(crate) fn resolve(&self, name: &str) -> Result<Arc<Container>, ApiError> {
        let reg = lock(&self.containers);
        let key = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = reg.by_id.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = reg.by_name.get(key) {
            if let Some(c) = reg.by_id.get(id) {
                return Ok(c.clone());
            }
        }
        if !key.is_empty() {
            let mut range = reg
                .by_id
                .range(key.to_string()..)
                .take_while(|(id, _)| id.starts_with(key));
            if let Some((_, c)) = range.next() {
                if range.next().is_some() {
                    return Err(ApiError::InvalidParameter(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(c.clone());
            }
        }
        Err(ApiError::no_such_container(name))
    }

    pub(crate) fn persist_record(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.persist(record)
    }

    pub(crate) fn container_event(&self, action: &str, r: &ContainerRecord) {
        self.event(action, r, &[]);
    }

    pub(crate) fn container_event_with(
        &self,
        action: &str,
        r: &ContainerRecord,
        extra: &[(&str, String)],
    ) {
        self.event(action, r, extra);
    }

    /// Saves a record durably (configuration, existence, a user's stop).
    pub(super) fn persist(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.save_record(record, true)
    }

    /// Saves a run-state change (not fsynced; see [`state::save`]).
    pub(crate) fn persist_state(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        self.save_record(record, false)
    }

    pub(super) fn save_record(
        &self,
        record: &ContainerRecord,
        durable: bool,
    ) -> Result<(), ApiError> {
        state::save(&self.container_dir(&record.id), record, durable).map_err(|e| {
            ApiError::Internal(format!(
                "container {}: save its record in {}: {e}",
                record.id,
                self.container_dir(&record.id).display()
            ))
        })
    }

    pub(super) fn event(&self, action: &str, r: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attrs: HashMap<String, String> = r.config.labels.clone().unwrap_or_default();
        attrs.insert("name".into(), r.name.clone());
        attrs.insert("image".into(), r.image.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, action, &r.id, attrs);
    }

    /// Removes what a run left in the exec root: the bundle's files, and the rootfs mount if
    /// its monitor could not unmount it. Never deletes through a mount: `rmdir` only.
    pub(super) fn clean_bundle(&self, id: &str) {
        let dir = self.bundle_dir(id);
        let rootfs = dir.join("rootfs");
        match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => tracing::warn!("container {id}: unmount {}: {e}", rootfs.display()),
        }
        for f in [
            "config.json",
            "monitor.json",
            "runtime.log",
            "init.pid",
            "resources.json",
        ] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let socket = self.socket(id);
        let _ = std::fs::remove_file(socket.with_extension("tty"));
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_dir(&dir);
    }
}
