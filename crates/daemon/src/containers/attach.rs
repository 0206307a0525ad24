//! Streams to a client: attach (before or after start) through the monitor, and the tty
//! resize.

use api_server::{ApiError, AttachSession, OutputChunk, OutputStream};
use api_types::query::*;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::{FrameKind, Request, Response};
use tokio::io::AsyncWriteExt;
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
        tokio::spawn(async move {
            while let Ok(Some((kind, data))) = monitor_client::next_frame(&mut reader).await {
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
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut input, &mut writer).await;
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
        Ok(AttachSession {
            tty,
            output: output_stream(rx),
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
