//! Connection hijacking for attach and exec start.
//!
//! The docker CLI sends `Connection: Upgrade` and `Upgrade: tcp`; dockerd answers
//! `101 UPGRADED` and from then on the socket carries the process's stdin one way and its output
//! (framed without a TTY) the other. Half-close matters: the CLI shuts its write side when its
//! stdin ends, which must reach the process as EOF, and the server closes its write side when the
//! output ends, which ends the CLI's read loop.

use futures_util::StreamExt;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::{AttachSession, StdinSink};
use crate::http::{
    empty_body, encode_output, output_body, output_media_type, Reply, RequestContext,
};
use crate::ApiError;

/// Answers an attach or exec start with the session's streams: an upgrade when the client asked
/// for one, else the old form (a 200 whose body is the output; stdin is not connected).
pub fn reply(cx: &mut RequestContext, session: AttachSession) -> Result<Reply, ApiError> {
    if !cx.wants_upgrade() {
        // dockerd accepts a plain POST and streams the output as the response body; with no
        // upgrade there is no way for the client to send stdin, so it is closed at once.
        drop(session.stdin);
        return Ok(output_body(session.tty, cx.version, session.output));
    }
    let on_upgrade = cx.extensions.remove::<OnUpgrade>().ok_or_else(|| {
        ApiError::Internal("the connection cannot be upgraded (no upgrade handle)".to_string())
    })?;
    let content_type = output_media_type(session.tty, cx.version);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => pump(TokioIo::new(upgraded), session).await,
            Err(e) => tracing::warn!(error = %e, "hijacking the connection failed"),
        }
    });
    let mut resp = Response::new(empty_body());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("tcp"));
    Ok(resp)
}

/// Copies the client's bytes into stdin and the output to the client until the output ends.
async fn pump<S>(conn: S, session: AttachSession)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(conn);
    let AttachSession {
        tty,
        mut output,
        stdin,
    } = session;
    let stdin_task = tokio::spawn(async move {
        match stdin {
            Some(sink) => copy_stdin(&mut reader, sink).await,
            // Without stdin the client sends nothing, but reading keeps its half-close from
            // being mistaken for anything else; the bytes are dropped.
            None => {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut reader, &mut sink).await;
            }
        }
    });
    while let Some(chunk) = output.next().await {
        let bytes = match chunk
            .map_err(|e| e.to_string())
            .and_then(|c| encode_output(tty, c.stream, c.data).map_err(|e| e.to_string()))
        {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "attached output failed");
                break;
            }
        };
        if let Err(e) = writer.write_all(&bytes).await {
            tracing::debug!(error = %e, "client went away during attach");
            break;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
    stdin_task.abort();
}

async fn copy_stdin<R: tokio::io::AsyncRead + Unpin>(reader: &mut R, mut sink: StdinSink) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = sink.write_all(&buf[..n]).await {
                    tracing::debug!(error = %e, "the process's stdin is closed");
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the client's stdin failed");
                break;
            }
        }
    }
    // The client half-closed: pass the EOF on.
    if let Err(e) = sink.shutdown().await {
        tracing::debug!(error = %e, "closing the process's stdin failed");
    }
}
