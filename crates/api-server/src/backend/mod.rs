//! The traits a daemon implements, one per route group (moby's pattern: a router declares the
//! backend it needs). The server only parses, validates, calls these and formats the answer.
//!
//! Methods return `impl Future + Send` so an implementation writes plain `async fn`s; the server is
//! generic over one type implementing them all ([`Backend`]), with no boxing per call.

mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod system;
mod volumes;

use std::pin::Pin;
use std::task::{Context, Poll};

use api_types::StdStream;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::io::AsyncWrite;

pub use containers::ContainerBackend;
pub use events::EventsBackend;
pub use exec::ExecBackend;
pub use images::ImageBackend;
pub use networks::NetworkBackend;
pub use system::SystemBackend;
pub use volumes::VolumeBackend;

use crate::ApiError;

/// Everything berthd's API needs; implemented for any type implementing every group's trait.
pub trait Backend:
    SystemBackend
    + ContainerBackend
    + ExecBackend
    + ImageBackend
    + EventsBackend
    + NetworkBackend
    + VolumeBackend
    + Send
    + Sync
    + 'static
{
}

impl<T> Backend for T where
    T: SystemBackend
        + ContainerBackend
        + ExecBackend
        + ImageBackend
        + EventsBackend
        + NetworkBackend
        + VolumeBackend
        + Send
        + Sync
        + 'static
{
}

/// A piece of a container's or exec's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Stdout or stderr; ignored with a TTY, where there is one stream.
    pub stream: StdStream,
    /// The bytes, as produced.
    pub data: Bytes,
}

/// Output that the server frames (multiplexed without a TTY, raw with one) and sends.
pub type OutputStream = BoxStream<'static, Result<OutputChunk, ApiError>>;

/// A stream of values the server sends as JSON lines.
pub type JsonStream<T> = BoxStream<'static, Result<T, ApiError>>;

/// Bytes in or out of the server (image archives).
pub type ByteStream = BoxStream<'static, Result<Bytes, ApiError>>;

/// Where the client's input goes: the container's or exec's stdin. The server writes what the
/// client sends and calls `shutdown` when the client half-closes its side (stdin EOF).
pub type StdinSink = Pin<Box<dyn AsyncWrite + Send>>;

/// The exit a `wait` call resolves to, once the awaited condition is met.
pub type ExitWait = BoxFuture<'static, Result<api_types::models::ContainerWaitResponse, ApiError>>;

/// A connection to a container's or exec's streams, as attach and exec start hand it over.
///
/// The server answers the client (101 UPGRADED, or 200 for the old non-upgrade form), then
/// copies the client's input into `stdin` and the `output` chunks to the client, framed unless
/// `tty`. When `output` ends the server closes the connection: end it when the process exits or
/// the client detaches.
pub struct AttachSession {
    /// Whether the process has a TTY: raw output, one stream.
    pub tty: bool,
    /// The process's output, from the moment of the call (and the log first when asked).
    pub output: OutputStream,
    /// The process's stdin, when the client asked to attach it.
    pub stdin: Option<StdinSink>,
}

impl std::fmt::Debug for AttachSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachSession")
            .field("tty", &self.tty)
            .field("stdin", &self.stdin.is_some())
            .finish_non_exhaustive()
    }
}

/// Logs of a container: framed like attach output.
pub struct LogStream {
    /// Whether the container has a TTY (logs are then sent raw).
    pub tty: bool,
    /// The log lines, in order; ends unless following.
    pub output: OutputStream,
}

/// An [`AsyncWrite`] that discards everything; for backends that accept stdin they do not use.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardStdin;

impl AsyncWrite for DiscardStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
