//! `start`: lets a created container's init exec the user's program, then
//! runs the poststart hooks.

use std::io::Write;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::hooks::{self, HookPhase};
use crate::state::{Record, Root, Status, EXEC_DONE_FIFO, EXEC_FIFO};

/// Starts container `id`.
pub fn start(root: &Root, id: &str) -> Result<Record> {
    let record = root.load(id)?;
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
    wait_for_exec(&root.container_dir(id).join(EXEC_DONE_FIFO))?;
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

/// Waits until the init has exec'd the program (or died): the init holds the
/// exec-done fifo open close-on-exec and no one writes to it, so a read sees
/// end-of-file exactly when the init's descriptor goes away.
fn wait_for_exec(done: &std::path::Path) -> Result<()> {
    // Opening the read side without O_NONBLOCK would wait for a writer, which
    // an init that already exec'd no longer is.
    let fd = open(
        done,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", done.display()), e))?;
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| Error::sys("fcntl(F_GETFL)", e))?;
    let blocking = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(blocking))
        .map_err(|e| Error::sys("fcntl(F_SETFL)", e))?;
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("read {}", done.display()), e)),
        }
    }
    std::fs::remove_file(done).map_err(|e| Error::io("remove", done, e))
}
