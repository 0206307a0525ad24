//! `ps`: the processes of a container, from its cgroup.

use nix::unistd::Pid;

use crate::error::Result;
use crate::state::Root;

/// The pids (in the runtime's pid namespace) of every process in container `id`.
pub fn pids(root: &Root, id: &str) -> Result<Vec<Pid>> {
    let record = root.load(id)?;
    let mut pids = record.cgroup.pids()?;
    pids.sort();
    Ok(pids)
}
