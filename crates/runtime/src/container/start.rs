//! `start`: lets a created container's init exec the user's program, then
//! runs the poststart hooks.

use std::io::Write;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::hooks::{self, HookPhase};
use crate::state::{Record, Root, Status, EXEC_FIFO};

/// Starts container `id`.
pub fn start(root: &Root, id: &str) -> Result<Record> {
    let mut record = root.load(id)?;
    let status = record.status(root);
    if status != Status::Created {
        return Err(Error::State {
            id: id.into(),
            status: status.to_string(),
            message: "cannot start a container that is not created".into(),
        });
    }
    let fifo = root.container_dir(id).join(EXEC_FIFO);
    // Non-blocking: if the init died there is no reader and open fails with
    // ENXIO instead of hanging.
    let fd = open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENXIO => Error::State {
            id: id.into(),
            status: "stopped".into(),
            message: "its init process exited before start".into(),
        },
        e => Error::sys(format!("open exec fifo {}", fifo.display()), e),
    })?;
    std::fs::File::from(fd)
        .write_all(b"0")
        .map_err(|e| Error::io("write", &fifo, e))?;
    std::fs::remove_file(&fifo).map_err(|e| Error::io("remove", &fifo, e))?;
    record.started = true;
    root.save(&record)?;
    if let Some(list) = record
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
    {
        let json = serde_json::to_vec(&record.oci_state(Status::Running)).unwrap_or_default();
        hooks::run_hooks(HookPhase::Poststart, &list, &json)?;
    }
    Ok(record)
}
