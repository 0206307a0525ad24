//! Streams to a client: attach (before or after start) through the monitor, and the tty
//! resize.

use api_server::{ApiError, AttachSession, OutputChunk, OutputStream};
use api_types::query::*;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::{FrameKind, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

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
            mut reader,
            mut writer,
            ..
        } = conn;
        let tx = a.tx;
        // On the detach keys the stdin task hands its half of the connection over here: the
        // client's output ends, and the connection is kept (and drained) until the container
        // exits, since closing it would read as the end of the container's stdin.
        let (detached_tx, mut detached) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    f = monitor_client::next_frame(&mut reader) => f,
                    kept = &mut detached => {
                        drop(tx);
                        let _kept = kept;
                        while let Ok(Some(_)) = monitor_client::next_frame(&mut reader).await {}
                        return;
                    }
                };
                let Ok(Some((kind, data))) = frame else {
                    break;
                };
                let stream = match kind {
                    FrameKind::Stderr => StdStream::Stderr,
                    _ => StdStream::Stdout,
                };
                if tx
                    .send(Ok(OutputChunk {
                        stream,
                        data: Bytes::from(data),
                    }))
                    .is_err()
                {
                    break;
                }
            }
        });
        if let Some(mut input) = a.stdin {
            let mut escape = Escape::new(a.detach_keys.unwrap_or_default());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let (pass, detach) = escape.feed(&buf[..n]);
                    if writer.write_all(&pass).await.is_err() {
                        break;
                    }
                    if detach {
                        let _ = detached_tx.send(writer);
                        return;
                    }
                }
                let _ = writer.shutdown().await;
            });
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

/// dockerd's default detach sequence.
pub(super) const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

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
            detach_keys: tty.then_some(keys),
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
        let live = output_stream(rx);
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
