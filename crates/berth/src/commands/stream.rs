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

/// Copies `output` to stdout/stderr until it ends; meanwhile copies stdin to `input` when asked
/// (closing the container's stdin at our EOF).
pub async fn pump(
    mut output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    send_stdin: bool,
) -> Result<()> {
    let stdin_task = if send_stdin {
        Some(tokio::spawn(copy_stdin(input)))
    } else {
        drop(input);
        None
    };
    while let Some(frame) = output.next().await {
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
    Ok(())
}

async fn copy_stdin(mut input: Pin<Box<dyn AsyncWrite + Send>>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if input.write_all(&buf[..n]).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
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
