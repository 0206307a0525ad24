//! `run`: create, start, and (unless detached) stay with the container:
//! forward the signals this process gets to the init, reap it, delete the
//! container, and return its exit status as a shell would (128+N for a
//! signal).

use nix::unistd::Pid;
use tracing::debug;

use crate::container::supervise::Supervisor;
use crate::container::{create::create, create::CreateOptions, delete::delete, start::start};
use crate::error::Result;
use crate::state::Root;

/// Runs a container; returns its exit status (0 at once when `detach`).
pub fn run(root: &Root, opts: &CreateOptions, detach: bool) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| debug!(elapsed_us = t0.elapsed().as_micros() as u64, "run: {what}");
    let supervisor = Supervisor::new()?;
    let record = create(root, opts)?;
    phase("created");
    let id = record.id.clone();
    if let Err(e) = start(root, &id) {
        let _ = delete(root, &id, true);
        return Err(e);
    }
    phase("started");
    if detach {
        return Ok(0);
    }
    let code = supervisor.wait(Pid::from_raw(record.pid))?;
    phase("exited");
    delete(root, &id, true)?;
    phase("deleted");
    Ok(code)
}
