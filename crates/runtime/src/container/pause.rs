//! `pause` and `resume`: freeze and thaw every process of a container through
//! its cgroup's freezer.

use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Freezes container `id`.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    let record = root.load(id)?;
    let status = record.status(root);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "container not running".into(),
        });
    }
    Ok(record.cgroup.freeze()?)
}

/// Thaws container `id`.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    let record = root.load(id)?;
    let status = record.status(root);
    if status != Status::Paused {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "container not paused".into(),
        });
    }
    Ok(record.cgroup.thaw()?)
}
