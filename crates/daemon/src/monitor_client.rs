//! berthd's side of the monitor protocol, over tokio's unix sockets.

use std::path::Path;

use api_server::ApiError;
use monitor_protocol::{Envelope, FrameHeader, FrameKind, Request, Response, PROTOCOL_VERSION};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// A connection after the monitor's answer: frames come on `reader`, stdin goes to `writer`.
pub struct Connection {
    /// The monitor's answer.
    pub response: Response,
    /// Frames from the monitor (buffered).
    pub reader: BufReader<OwnedReadHalf>,
    /// Input to the monitor; shut down to close the process's stdin.
    pub writer: OwnedWriteHalf,
}

fn unavailable(id: &str, what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("container {id}: monitor {what}: {e}"))
}

/// A sent request whose answer has not been read yet.
pub struct Pending {
    id: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// Connects and sends one request, without waiting for the answer (a `Wait` is answered only
/// at the exit, but must be registered before the container starts).
pub async fn send(socket: &Path, id: &str, request: Request) -> Result<Pending, ApiError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| unavailable(id, &format!("connect to {}", socket.display()), e))?;
    let (r, mut writer) = stream.into_split();
    let line = monitor_protocol::to_line(&Envelope {
        version: PROTOCOL_VERSION,
        request,
    })
    .map_err(|e| ApiError::Internal(format!("encode monitor request: {e}")))?;
    writer
        .write_all(&line)
        .await
        .map_err(|e| unavailable(id, "send request", e))?;
    Ok(Pending {
        id: id.to_string(),
        reader: BufReader::new(r),
        writer,
    })
}

impl Pending {
    /// Reads the answer line.
    pub async fn answer(mut self) -> Result<Connection, ApiError> {
        let id = self.id;
        let mut answer = String::new();
        let n = self
            .reader
            .read_line(&mut answer)
            .await
            .map_err(|e| unavailable(&id, "read answer", e))?;
        if n == 0 {
            return Err(unavailable(
                &id,
                "read answer",
                "the monitor closed the connection",
            ));
        }
        let response: Response =
            serde_json::from_str(&answer).map_err(|e| unavailable(&id, "parse answer", e))?;
        Ok(Connection {
            response,
            reader: self.reader,
            writer: self.writer,
        })
    }
}

/// Sends one request and reads the answer line.
pub async fn connect(socket: &Path, id: &str, request: Request) -> Result<Connection, ApiError> {
    send(socket, id, request).await?.answer().await
}

/// A one-shot request: the answer, with an `Error` answer turned into an error.
pub async fn call(socket: &Path, id: &str, request: Request) -> Result<Response, ApiError> {
    match connect(socket, id, request).await?.response {
        Response::Error { message } => Err(ApiError::Internal(message)),
        other => Ok(other),
    }
}

/// The next frame; `None` when the monitor closed the stream.
pub async fn next_frame(
    reader: &mut BufReader<OwnedReadHalf>,
) -> std::io::Result<Option<(FrameKind, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let h = FrameHeader::decode(header).map_err(std::io::Error::other)?;
    let mut payload = vec![0u8; h.len as usize];
    reader.read_exact(&mut payload).await?;
    Ok(Some((h.kind, payload)))
}
