//! Terminal mode (`process.terminal: true`): a pty whose master goes to the
//! console socket (SCM_RIGHTS), and whose slave becomes the process's
//! controlling terminal and stdio.
//!
//! # Order (the one runc uses)
//!
//! 1. The parent, still on the host, calls [`connect_console_socket`] with the
//!    `--console-socket` path (a host path the container cannot see) and
//!    hands the connected descriptor to the init.
//! 2. The init, after pivot_root, calls [`open_pty`]: `/dev/ptmx` is then the
//!    container's own devpts instance, so the pty belongs to the container
//!    and `/dev/pts/N` is the name the process sees. The slave is opened
//!    through the master with `TIOCGPTPEER` (Linux 4.13) and checked to be a
//!    devpts file, not looked up by path: a container that controls its
//!    `/dev` could otherwise make the runtime open something else
//!    (CVE-2025-52565, <https://github.com/opencontainers/runc/security/advisories/GHSA-qw9x-cqr3-wc7r>).
//! 3. [`set_window_size`] from `process.consoleSize`, before anything reads it.
//! 4. [`send_master_over`] sends the master to whoever listens on the console
//!    socket (containerd's shim, `berth`, `recvtty`), then the init closes its
//!    copy: only the receiver must hold it, or the terminal never hangs up.
//! 5. [`make_controlling_terminal`]: setsid, `TIOCSCTTY`, and the slave onto
//!    descriptors 0, 1 and 2 (tty_ioctl(4), setsid(2), credentials(7)).
//!
//! The message format is runc's (`utils.SendFile`): the data is the file's
//! name, `/dev/ptmx`, and the descriptor rides in one `SCM_RIGHTS` control
//! message (unix(7)); [`receive_master`] is the other end.

use std::fs::OpenOptions;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The name sent with the master, as runc sends it.
pub const MASTER_NAME: &str = "/dev/ptmx";

/// The major numbers of Unix98 pty slaves (devices.txt: 136-143).
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A step of opening the pty failed.
    #[error("opening a pty: {step}: {source}")]
    OpenPty {
        /// Which call.
        step: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// The slave is not a devpts pty slave.
    #[error("opening a pty: the slave {path} is not a devpts pty slave ({what})")]
    NotAPtySlave {
        /// ptsname.
        path: PathBuf,
        /// What did not match.
        what: String,
    },
    /// Connecting to the console socket failed.
    #[error("connecting to the console socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Sending the master failed.
    #[error("sending the pty master over the console socket: {0}")]
    Send(io::Error),
    /// Receiving the master failed.
    #[error("receiving the pty master from the console socket: {0}")]
    Receive(io::Error),
    /// The peer sent no descriptor.
    #[error("receiving the pty master from the console socket: {0}")]
    NoDescriptor(&'static str),
    /// A step of taking the terminal failed.
    #[error("making the pty slave the controlling terminal: {step}: {source}")]
    ControllingTerminal {
        /// Which call.
        step: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// TIOCSWINSZ failed.
    #[error("setting the console size to {rows} rows, {cols} columns: {source}")]
    WindowSize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
        /// The errno.
        source: io::Error,
    },
}

/// Result of this module.
pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A new pty pair.
#[derive(Debug)]
pub struct Pty {
    /// The master side, sent to the console socket.
    pub master: OwnedFd,
    /// `/dev/pts/N` as the process sees it.
    pub slave_path: PathBuf,
    /// The slave side, opened `O_NOCTTY`, for [`make_controlling_terminal`].
    pub slave: OwnedFd,
}

/// Opens a new pty from `/dev/ptmx` of the current root (call after
/// pivot_root, so it is the container's devpts instance). Both descriptors
/// are close-on-exec and neither becomes a controlling terminal yet.
pub fn open_pty() -> Result<Pty> {
    let open_err = |step| {
        move |e: Errno| ConsoleError::OpenPty {
            step,
            source: errno(e),
        }
    };
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(open_err("posix_openpt(/dev/ptmx)"))?;
    nix::pty::grantpt(&master).map_err(open_err("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(open_err("unlockpt"))?;
    let slave_path = PathBuf::from(nix::pty::ptsname_r(&master).map_err(open_err("ptsname"))?);
    let master = OwnedFd::from(master);

    let flags = rustix::pty::OpenptFlags::RDWR
        | rustix::pty::OpenptFlags::NOCTTY
        | rustix::pty::OpenptFlags::CLOEXEC;
    let slave = match rustix::pty::ioctl_tiocgptpeer(&master, flags) {
        Ok(fd) => fd,
        // Kernels before 4.13: fall back to the path, then check what we got.
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::INVAL) => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&slave_path)
            .map(OwnedFd::from)
            .map_err(|source| ConsoleError::OpenPty {
                step: "open(ptsname)",
                source,
            })?,
        Err(e) => {
            return Err(ConsoleError::OpenPty {
                step: "ioctl(TIOCGPTPEER)",
                source: e.into(),
            })
        }
    };
    check_slave(&slave, &slave_path)?;
    Ok(Pty {
        master,
        slave_path,
        slave,
    })
}

/// Checks that `slave` is a pty slave on devpts whose number is the one in
/// `path`.
fn check_slave(slave: &OwnedFd, path: &Path) -> Result<()> {
    let bad = |what: String| ConsoleError::NotAPtySlave {
        path: path.to_owned(),
        what,
    };
    let fs = nix::sys::statfs::fstatfs(slave).map_err(|e| ConsoleError::OpenPty {
        step: "fstatfs(slave)",
        source: errno(e),
    })?;
    if fs.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Err(bad(format!(
            "its file system is {:#x}, not devpts",
            fs.filesystem_type().0
        )));
    }
    let st = nix::sys::stat::fstat(slave).map_err(|e| ConsoleError::OpenPty {
        step: "fstat(slave)",
        source: errno(e),
    })?;
    let (major, minor) = (
        libc::major(st.st_rdev) as u64,
        libc::minor(st.st_rdev) as u64,
    );
    if (st.st_mode & libc::S_IFMT) != libc::S_IFCHR || !PTY_SLAVE_MAJORS.contains(&major) {
        return Err(bad(format!("device {major}:{minor} is not a pty slave")));
    }
    let number = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<u64>().ok());
    let pty_number = (major - PTY_SLAVE_MAJORS.start()) * 256 + minor;
    if number != Some(pty_number) {
        return Err(bad(format!("it is pty number {pty_number}")));
    }
    Ok(())
}

/// Connects to the `--console-socket` unix socket (in the parent, on the
/// host, before the init pivots). Paths longer than `sun_path` (108 bytes)
/// are reached through their directory's `/proc/self/fd` entry.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let connect_err = |source| ConsoleError::Connect {
        path: path.to_owned(),
        source,
    };
    match UnixStream::connect(path) {
        Ok(s) => Ok(OwnedFd::from(s)),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(connect_err(e));
            };
            let dir_fd = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })
                .map(OwnedFd::from)
                .map_err(connect_err)?;
            let via = Path::new("/proc/self/fd")
                .join(std::os::fd::AsRawFd::as_raw_fd(&dir_fd).to_string())
                .join(name);
            UnixStream::connect(via)
                .map(OwnedFd::from)
                .map_err(connect_err)
        }
        Err(e) => Err(connect_err(e)),
    }
}

/// Sends `master` over a connected console socket: the data is
/// [`MASTER_NAME`], the descriptor one `SCM_RIGHTS` message.
pub fn send_master_over(socket: impl AsFd, master: &OwnedFd) -> Result<()> {
    let fds = [master.as_fd()];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(ConsoleError::Send(io::Error::other(
            "the control message does not fit its buffer",
        )));
    }
    let data = [IoSlice::new(MASTER_NAME.as_bytes())];
    // NOSIGNAL: a receiver that went away is an error, not a SIGPIPE.
    let sent = rustix::net::sendmsg(socket, &data, &mut control, SendFlags::NOSIGNAL)
        .map_err(|e| ConsoleError::Send(e.into()))?;
    if sent != MASTER_NAME.len() {
        return Err(ConsoleError::Send(io::Error::other(format!(
            "sent {sent} of {} bytes",
            MASTER_NAME.len()
        ))));
    }
    Ok(())
}

/// [`connect_console_socket`] then [`send_master_over`], for callers that
/// can still see the socket path.
pub fn send_master(console_socket: &Path, master: &OwnedFd) -> Result<()> {
    let socket = connect_console_socket(console_socket)?;
    send_master_over(&socket, master)
}

/// A pty master received from a console socket.
#[derive(Debug)]
pub struct ReceivedMaster {
    /// The master, close-on-exec.
    pub master: OwnedFd,
    /// The name the sender gave it (`/dev/ptmx` from runc and berth).
    pub name: String,
}

/// Receives a master sent by [`send_master_over`] (or by runc): what the
/// listener on `--console-socket` does.
pub fn receive_master(socket: impl AsFd) -> Result<ReceivedMaster> {
    let mut name = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut name)];
    let msg = rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| ConsoleError::Receive(e.into()))?;
    let mut master = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            // Extra descriptors are closed as they drop.
            for fd in fds {
                if master.is_none() {
                    master = Some(fd);
                }
            }
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) && master.is_none() {
        return Err(ConsoleError::NoDescriptor(
            "the control message was truncated",
        ));
    }
    let Some(master) = master else {
        return Err(ConsoleError::NoDescriptor(if msg.bytes == 0 {
            "the peer closed the socket without sending one"
        } else {
            "the message carried no descriptor"
        }));
    };
    let bytes = msg.bytes.min(name.len());
    Ok(ReceivedMaster {
        master,
        name: String::from_utf8_lossy(&name[..bytes]).into_owned(),
    })
}

/// Makes `slave` this process's controlling terminal and its stdin, stdout
/// and stderr: setsid(2) (unless this process already leads its session),
/// `TIOCSCTTY`, then dup2 onto 0, 1 and 2. The caller may close `slave`
/// afterwards.
pub fn make_controlling_terminal(slave: &OwnedFd) -> Result<()> {
    let ctty_err = |step| {
        move |e: Errno| ConsoleError::ControllingTerminal {
            step,
            source: errno(e),
        }
    };
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).map_err(ctty_err("getsid"))? != me {
        nix::unistd::setsid().map_err(ctty_err("setsid"))?;
    }
    rustix::process::ioctl_tiocsctty(slave).map_err(|e| ConsoleError::ControllingTerminal {
        step: "ioctl(TIOCSCTTY)",
        source: e.into(),
    })?;
    nix::unistd::dup2_stdin(slave).map_err(ctty_err("dup2 onto stdin"))?;
    nix::unistd::dup2_stdout(slave).map_err(ctty_err("dup2 onto stdout"))?;
    nix::unistd::dup2_stderr(slave).map_err(ctty_err("dup2 onto stderr"))?;
    Ok(())
}

/// Sets the terminal's size (`TIOCSWINSZ`) from `process.consoleSize`
/// (height is `rows`, width is `cols`); works on the master or the slave.
pub fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) -> Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, size).map_err(|e| ConsoleError::WindowSize {
        rows,
        cols,
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::test_child;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    /// Reads from `fd` until `want` has arrived, waiting at most 5 s per read.
    fn read_until(fd: &OwnedFd, want: &str) -> String {
        let mut file = File::from(fd.try_clone().expect("dup"));
        let mut got = String::new();
        while !got.contains(want) {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, PollTimeout::from(5000u16)).expect("poll");
            assert!(n > 0, "nothing to read after 5 s; so far {got:?}");
            let mut buf = [0u8; 256];
            let n = file.read(&mut buf).expect("read");
            assert!(n > 0, "end of file; so far {got:?}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    }

    #[test]
    fn master_travels_over_a_socketpair_and_the_tty_works() {
        let pty = open_pty().expect("open pty");
        assert!(
            pty.slave_path.starts_with("/dev/pts"),
            "{}",
            pty.slave_path.display()
        );
        let (a, b) = UnixStream::pair().expect("socketpair");
        send_master_over(&a, &pty.master).expect("send master");
        let received = receive_master(&b).expect("receive master");
        assert_eq!(received.name, MASTER_NAME);
        drop(pty.master); // only the received copy remains

        // slave -> master (the line discipline turns \n into \r\n).
        File::from(pty.slave.try_clone().expect("dup"))
            .write_all(b"hello\n")
            .expect("write slave");
        assert!(read_until(&received.master, "hello\r\n").contains("hello"));
        // master -> slave, a full line in canonical mode.
        File::from(received.master.try_clone().expect("dup"))
            .write_all(b"ping\n")
            .expect("write master");
        assert!(read_until(&pty.slave, "ping\n").starts_with("ping"));
    }

    #[test]
    fn window_size() {
        let pty = open_pty().expect("open pty");
        set_window_size(&pty.master, 40, 132).expect("set size");
        let size = rustix::termios::tcgetwinsize(&pty.slave).expect("get size");
        assert_eq!((size.ws_row, size.ws_col), (40, 132));
    }

    #[test]
    fn a_non_pty_is_refused() {
        let null = OwnedFd::from(File::open("/dev/null").expect("open /dev/null"));
        let e = check_slave(&null, Path::new("/dev/pts/0")).expect_err("/dev/null");
        assert!(e.to_string().contains("not a devpts pty slave"), "{e}");
    }

    #[test]
    fn nothing_sent_is_an_error() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        drop(a);
        let e = receive_master(&b).expect_err("peer closed");
        assert!(e.to_string().contains("without sending"), "{e}");
    }

    #[test]
    fn a_gone_receiver_is_an_error_not_sigpipe() {
        let pty = open_pty().expect("open pty");
        let (a, b) = UnixStream::pair().expect("socketpair");
        drop(b);
        let e = send_master_over(&a, &pty.master).expect_err("peer closed");
        assert!(e.to_string().starts_with("sending the pty master"), "{e}");
    }

    /// A console socket path longer than sun_path (108 bytes) still works.
    #[test]
    fn long_console_socket_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).expect("mkdir");
        let sock = deep.join("console.sock");
        assert!(sock.as_os_str().len() > 108);
        // Bind through the directory's descriptor too: bind(2) has the same limit.
        let dir_fd = File::open(&deep).expect("open dir");
        let short = format!(
            "/proc/self/fd/{}/console.sock",
            std::os::fd::AsRawFd::as_raw_fd(&dir_fd)
        );
        let listener = UnixListener::bind(&short).expect("bind");

        let pty = open_pty().expect("open pty");
        send_master(&sock, &pty.master).expect("send over long path");
        let (conn, _) = listener.accept().expect("accept");
        let got = receive_master(&conn).expect("receive");
        assert_eq!(got.name, "/dev/ptmx");

        let missing = deep.join("nobody-listens.sock");
        let e = connect_console_socket(&missing).expect_err("no socket");
        assert!(e.to_string().contains("nobody-listens.sock"), "{e}");
    }

    /// setsid + TIOCSCTTY + dup2: the pty is the controlling terminal and stdio.
    #[test]
    fn controlling_terminal() {
        if !test_child::here("console::tests::controlling_terminal", &[]) {
            return;
        }
        let saved: Vec<OwnedFd> = [
            io::stdin().as_fd(),
            io::stdout().as_fd(),
            io::stderr().as_fd(),
        ]
        .iter()
        .map(|fd| fd.try_clone_to_owned().expect("save stdio"))
        .collect();
        // Closing the master of a session leader's controlling terminal hangs
        // it up (SIGHUP, also on a failed assertion): keep the pty open until
        // this child process exits.
        let pty = std::mem::ManuallyDrop::new(open_pty().expect("open pty"));
        make_controlling_terminal(&pty.slave).expect("make controlling terminal");
        let tty0 = nix::unistd::ttyname(io::stdin().as_fd()).map_err(|e| e.to_string());
        let tty2 = nix::unistd::ttyname(io::stderr().as_fd()).map_err(|e| e.to_string());
        let sid = nix::unistd::getsid(None).expect("getsid");
        let fg = nix::unistd::tcgetpgrp(io::stdin().as_fd()).map_err(|e| e.to_string());
        // Restore stdio so the harness's report (and any panic) reaches the parent.
        nix::unistd::dup2_stdin(&saved[0]).expect("restore stdin");
        nix::unistd::dup2_stdout(&saved[1]).expect("restore stdout");
        nix::unistd::dup2_stderr(&saved[2]).expect("restore stderr");

        assert_eq!(tty0.as_deref(), Ok(pty.slave_path.as_path()));
        assert_eq!(tty2.as_deref(), Ok(pty.slave_path.as_path()));
        assert_eq!(sid, nix::unistd::getpid());
        assert_eq!(fg, Ok(nix::unistd::getpgrp()));
    }
}
