//! Attached streams: the container's output to our stdout and stderr, our stdin to the
//! container (closed on EOF), the terminal in raw mode with resizes forwarded for `-t`.

use std::io::Write;
use std::pin::Pin;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{CliError, Result};

/// The terminal in raw mode until dropped (docker's `-t` on a terminal).
pub struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Result<Option<Self>> {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return Ok(None);
        }
        let saved = rustix::termios::tcgetattr(&stdin).map_err(|e| {
            CliError::io("read the terminal's settings (tcgetattr on stdin)")(e.into())
        })?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).map_err(
            |e| CliError::io("put the terminal in raw mode (tcsetattr on stdin)")(e.into()),
        )?;
        Ok(Some(Self { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The size of our terminal (rows, columns), if stdout is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    if !rustix::termios::isatty(&out) {
        return None;
    }
    let ws = rustix::termios::tcgetwinsize(&out).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Whether stdout is a terminal (progress bars, `-t` checks).
pub fn stdout_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdout())
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}

/// Output frames from the daemon.
pub type Output =
    Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;

/// docker's default detach keys: Ctrl-P then Ctrl-Q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended (it exited or closed its streams).
    Output,
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// Copies `output` to stdout/stderr until it ends; meanwhile copies stdin to `input` when asked
/// (closing the container's stdin at our EOF). With `detach_keys`, Ctrl-P Ctrl-Q on stdin ends
/// the session and leaves the container running, as docker's attach does on a terminal.
pub async fn pump(
    mut output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    send_stdin: bool,
    detach_keys: bool,
) -> Result<Ended> {
    // An mpsc rather than a oneshot: a finished oneshot must not be polled again in the loop.
    let (detach_tx, mut detach_rx) = tokio::sync::mpsc::channel::<()>(1);
    let stdin_task = if send_stdin {
        Some(tokio::spawn(copy_stdin(
            input,
            detach_keys.then_some(detach_tx),
        )))
    } else {
        drop(input);
        drop(detach_tx);
        None
    };
    let mut ended = Ended::Output;
    loop {
        let frame = tokio::select! {
            frame = output.next() => frame,
            Some(()) = detach_rx.recv() => {
                ended = Ended::Detached;
                break;
            }
        };
        let Some(frame) = frame else { break };
        match frame? {
            LogOutput::StdErr { message } => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&message);
                let _ = err.flush();
            }
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(&message).and_then(|()| out.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break;
                    }
                    return Err(CliError::io("write the container's output to stdout")(e));
                }
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    if let Some(task) = stdin_task {
        task.abort();
    }
    Ok(ended)
}

/// The bytes to pass on from `input`, holding back a partial detach sequence across reads
/// (`matched` carries it); true once the whole sequence was typed.
fn filter_detach_keys(input: &[u8], matched: &mut usize) -> (Vec<u8>, bool) {
    let mut send = Vec::with_capacity(input.len());
    for &b in input {
        if b == DETACH_KEYS[*matched] {
            *matched += 1;
            if *matched == DETACH_KEYS.len() {
                return (send, true);
            }
        } else {
            send.extend_from_slice(&DETACH_KEYS[..*matched]);
            *matched = 0;
            if b == DETACH_KEYS[0] {
                *matched = 1;
            } else {
                send.push(b);
            }
        }
    }
    (send, false)
}

async fn copy_stdin(
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    mut detach: Option<tokio::sync::mpsc::Sender<()>>,
) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    // How much of the detach sequence the last bytes matched (held back until it is decided).
    let mut matched = 0usize;
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let send = if detach.is_some() {
            let (send, hit) = filter_detach_keys(&buf[..n], &mut matched);
            if hit {
                if let Some(tx) = detach.take() {
                    let _ = tx.send(()).await;
                }
                return;
            }
            send
        } else {
            buf[..n].to_vec()
        };
        if input.write_all(&send).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    // Our EOF becomes the container's: half-close the hijacked connection.
    let _ = input.shutdown().await;
}

/// Forwards our terminal's size now and on every SIGWINCH, through `resize` (container or exec).
pub fn forward_resizes<F, Fut>(resize: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn(u16, u16) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    terminal_size()?;
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()?;
    Some(tokio::spawn(async move {
        loop {
            if let Some((rows, cols)) = terminal_size() {
                resize(rows, cols).await;
            }
            if winch.recv().await.is_none() {
                break;
            }
        }
    }))
}

/// Forwards the signals a user sends to the CLI (Ctrl-C, kill) to the container, as docker's
/// `--sig-proxy` does for attached containers without a terminal.
pub fn proxy_signals(
    docker: bollard::Docker,
    container: String,
) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        let mut s = signal(kind).ok()?;
        streams.push(
            futures_util::stream::poll_fn(move |cx| s.poll_recv(cx).map(|o| o.map(|()| name)))
                .boxed(),
        );
    }
    let mut all = futures_util::stream::select_all(streams);
    Some(tokio::spawn(async move {
        while let Some(name) = all.next().await {
            let _ = docker
                .kill_container(
                    &container,
                    Some(bollard::query_parameters::KillContainerOptions {
                        signal: name.to_string(),
                    }),
                )
                .await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::filter_detach_keys;

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_other_bytes_pass() {
        let mut m = 0;
        assert_eq!(filter_detach_keys(b"ab", &mut m), (b"ab".to_vec(), false));
        assert_eq!(filter_detach_keys(b"x\x10", &mut m), (b"x".to_vec(), false));
        assert_eq!(filter_detach_keys(b"\x11", &mut m), (Vec::new(), true));
        let mut m = 0;
        assert_eq!(
            filter_detach_keys(b"\x10y\x10\x10", &mut m),
            (b"\x10y\x10".to_vec(), false)
        );
        assert_eq!(m, 1);
    }
}
