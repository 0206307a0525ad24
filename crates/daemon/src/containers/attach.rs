//! Streams to a client: attach (before or after start) through the monitor, and the tty
//! resize.

use api_server::{ApiError, AttachSession, OutputChunk, OutputStream};
use api_types::query::*;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::{FrameKind, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use super::{lock, Container, PendingAttach};
use crate::monitor_client::{self, Connection};
use crate::state::Status;
use crate::{Daemon, Inner};

impl Inner {
    /// Connects an attached client to the running container's monitor.
    pub(super) async fn connect_attach(
        &self,
        c: &Container,
        a: PendingAttach,
    ) -> Result<(), ApiError> {
        let conn = monitor_client::connect(
            &self.socket(&c.id),
            &c.id,
            Request::Attach {
                stdout: a.stdout,
                stderr: a.stderr,
                stdin: a.stdin.is_some(),
            },
        )
        .await?;
        if let Response::Error { message } = conn.response {
            return Err(ApiError::Internal(message));
        }
        let Connection {
            mut reader, writer, ..
        } = conn;
        let tx = a.tx;
        let (keep_tx, mut keep_rx) = oneshot::channel();
        tokio::spawn(async move {
            let mut kept = None;
            while let Ok(Some((kind, data))) = monitor_client::next_frame(&mut reader).await {
                let stream = match kind {
                    FrameKind::Stderr => StdStream::Stderr,
                    _ => StdStream::Stdout,
                };
                let gone = tx
                    .send(Ok(OutputChunk {
                        stream,
                        data: Bytes::from(data),
                    }))
                    .is_err();
                if gone {
                    // A client that detached leaves the connection open (closing it would
                    // end the container's stdin): drained until the container exits.
                    kept = kept.or_else(|| keep_rx.try_recv().ok());
                    if kept.is_none() {
                        break;
                    }
                }
            }
        });
        if let Some(input) = a.stdin {
            let (keys, signal) = a.detach.unzip();
            let detach = signal.map(|signal| Detach {
                keep: keep_tx,
                signal,
            });
            tokio::spawn(copy_input(
                input,
                writer,
                Escape::new(keys.unwrap_or_default()),
                detach,
            ));
        } else {
            // Kept open: closing it would read as nothing, but the monitor ignores input here.
            tokio::spawn(async move {
                let _keep = writer;
                std::future::pending::<()>().await
            });
        }
        Ok(())
    }
}

/// Where the input task reports the detach keys: `keep` takes the connection's input half
/// (held until the process exits), then `signal` ends the client's stream.
pub(crate) struct Detach {
    /// Receives the input half of the monitor connection.
    pub(crate) keep: oneshot::Sender<OwnedWriteHalf>,
    /// Fires on the keys only (dropped otherwise).
    pub(crate) signal: oneshot::Sender<()>,
}

/// Copies a client's input to the process, watching for the detach keys; at the client's end
/// of input the process's stdin is closed, at the keys it is left open.
pub(crate) async fn copy_input(
    mut input: tokio::io::DuplexStream,
    mut writer: OwnedWriteHalf,
    mut escape: Escape,
    detach: Option<Detach>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (pass, keys) = escape.feed(&buf[..n]);
        if writer.write_all(&pass).await.is_err() {
            break;
        }
        if keys {
            if let Some(d) = detach {
                // The connection first, so the reader holds it before the client is gone.
                let _ = d.keep.send(writer);
                let _ = d.signal.send(());
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
}

/// The client's output, ended when the detach keys are typed (not when input merely ends).
pub(crate) fn until_detached(output: OutputStream, signal: oneshot::Receiver<()>) -> OutputStream {
    output
        .take_until(async move {
            if signal.await.is_err() {
                std::future::pending::<()>().await
            }
        })
        .boxed()
}

/// dockerd's default detach sequence.
pub(crate) const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses a detach sequence as dockerd does: comma-separated keys, each one character or
/// `ctrl-` and one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`.
pub(crate) fn detach_keys(spec: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::InvalidParameter(format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad()),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Finds the detach sequence in a client's input, holding back a partial match until it is
/// either completed (detach) or broken (the held bytes go to the container after all).
pub(crate) struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

impl Escape {
    /// A matcher for `keys` (none: never detaches).
    pub(crate) fn new(keys: Vec<u8>) -> Self {
        Escape { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence has been typed (the bytes after it are
    /// dropped, the attach ending there).
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut pass = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                pass.push(b);
                continue;
            }
            if b != self.keys[self.matched] {
                pass.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b != self.keys[0] {
                    pass.push(b);
                    continue;
                }
            }
            self.matched += 1;
            if self.matched == self.keys.len() {
                self.matched = 0;
                return (pass, true);
            }
        }
        (pass, false)
    }
}

pub(super) fn output_stream(
    rx: mpsc::UnboundedReceiver<Result<OutputChunk, ApiError>>,
) -> OutputStream {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

impl Daemon {
    pub(super) async fn attach_container(
        &self,
        id: &str,
        query: ContainerAttachQuery,
    ) -> Result<AttachSession, ApiError> {
        let c = self.inner.resolve(id)?;
        let record = c.record();
        let tty = record.config.tty == Some(true);
        let keys = detach_keys(
            query
                .detach_keys
                .as_deref()
                .filter(|k| !k.is_empty())
                .unwrap_or(DEFAULT_DETACH_KEYS),
        )?;
        // `logs=1`: the log so far comes first, as dockerd replays it.
        let replay = if query.logs {
            let logs = ContainerLogsQuery {
                stdout: query.stdout,
                stderr: query.stderr,
                ..Default::default()
            };
            if query.stdout || query.stderr {
                Some(self.container_logs(id, logs).await?.output)
            } else {
                None
            }
        } else {
            None
        };
        // `stream=0`: nothing live, only the replay (dockerd returns after it).
        if !query.stream {
            return Ok(AttachSession {
                tty,
                output: replay.unwrap_or_else(|| futures_util::stream::empty().boxed()),
                stdin: None,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (signal_tx, signal_rx) = oneshot::channel();
        let want_stdin = query.stdin && record.config.open_stdin == Some(true);
        let (client_in, our_in) = if want_stdin {
            let (a, b) = tokio::io::duplex(64 * 1024);
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let a = PendingAttach {
            tx,
            stdin: our_in,
            stdout: query.stdout,
            stderr: query.stderr,
            detach: tty.then_some((keys, signal_tx)),
        };
        match record.state.status {
            Status::Running => self.inner.connect_attach(&c, a).await?,
            Status::Created => lock(&c.pending).push(a),
            _ => {
                return Err(ApiError::Conflict(
                    "You cannot attach to a stopped container, start it first".into(),
                ))
            }
        }
        let live = until_detached(output_stream(rx), signal_rx);
        Ok(AttachSession {
            tty,
            output: match replay {
                Some(past) => past.chain(live).boxed(),
                None => live,
            },
            stdin: client_in.map(|s| Box::pin(s) as api_server::StdinSink),
        })
    }

    pub(super) async fn resize_tty(&self, id: &str, size: ResizeQuery) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        let record = c.record();
        if record.state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if record.config.tty != Some(true) {
            return Ok(());
        }
        monitor_client::call(
            &self.inner.socket(&c.id),
            &c.id,
            Request::Resize {
                height: size.height.min(u16::MAX as u32) as u16,
                width: size.width.min(u16::MAX as u32) as u16,
            },
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_dockerd() {
        assert_eq!(detach_keys(DEFAULT_DETACH_KEYS).expect("default"), [16, 17]);
        assert_eq!(
            detach_keys("ctrl-@,a,ctrl-_").expect("valid"),
            [0, b'a', 31]
        );
        for bad in ["ctrl-", "ctrl-1", "ab", "", "ctrl-p,,"] {
            assert!(detach_keys(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_holds_partial_matches_and_detaches() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"ls\x10"), (b"ls".to_vec(), false));
        // A broken sequence gives the held byte back.
        assert_eq!(e.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(e.feed(&[16, 16]), (vec![16], false));
        assert_eq!(e.feed(&[17, b'z']), (Vec::new(), true));
        let mut none = Escape::new(Vec::new());
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
        let mut one = Escape::new(vec![b'q']);
        assert_eq!(one.feed(b"aqb"), (b"a".to_vec(), true));
    }
}
