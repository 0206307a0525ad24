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
    no_cgroup(&record, "pause")?;
    Ok(record.cgroup.freeze()?)
}

/// Refuses to freeze a container that has no cgroup (made rootless where
/// no cgroup was delegated), naming why instead of a missing controller.
fn no_cgroup(record: &crate::state::Record, verb: &str) -> Result<()> {
    if record.cgroup.hierarchies().is_empty() {
        return Err(Error::State {
            id: record.id.clone(),
            status: "without a cgroup".into(),
            message: format!(
                "{verb} needs the freezer of the container's own cgroup, and it was created \
                 rootless where no cgroup is delegated to its user"
            ),
        });
    }
    Ok(())
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
    no_cgroup(&record, "resume")?;
    Ok(record.cgroup.thaw()?)
}
