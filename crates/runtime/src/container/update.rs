//! `update`: changes the resource limits of a running container.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Applies `resources` to container `id`'s cgroup and records them.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let mut record = root.load(id)?;
    let status = record.status(root);
    if status == Status::Stopped {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "cannot update a stopped container".into(),
        });
    }
    record.cgroup.update(resources)?;
    if let Some(linux) = record.config.linux_mut() {
        linux.set_resources(Some(resources.clone()));
    }
    root.save(&record)
}
