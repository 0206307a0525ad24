//! Berth's Docker Engine API server: HTTP/1.1 on a unix socket, speaking the API that the docker
//! CLI, the docker SDKs and docker-compose speak.
//!
//! Owns: the routing table (`src/routes/mod.rs`: method, path pattern, handler, in one list), version
//! negotiation (the `/vX.Y` prefix, `/_ping`'s headers), request parsing and validation with
//! dockerd's status codes and messages, error mapping ([`ApiError`] → 4xx/5xx with
//! `{"message": …}`), streamed responses (JSON lines, framed output, archives), connection
//! hijacking for attach and exec, and the listeners themselves (a root-only, stale-socket safe
//! unix socket; TCP only with mutual TLS).
//!
//! Must never: hold business logic or state (it parses, validates, calls a backend trait and
//! formats the answer), depend on the daemon crate (the daemon depends on it and implements the
//! [`backend`] traits), or touch containers, images or the kernel. May use api-types, tokio,
//! hyper, serde.
//!
//! A daemon plugs in with one call:
//! `serve(ApiListener::bind(&ListenAddr::parse(addr)?, SocketOptions::default())?, backend, config, shutdown)`.
#![forbid(unsafe_code)]

pub mod backend;
mod error;
mod hijack;
mod http;
mod listener;
mod router;
mod routes;
mod server;
mod tls;

pub use backend::VolumeBackend;
pub use backend::{
    AttachSession, Backend, ByteStream, ContainerBackend, DiscardStdin, EventsBackend, ExecBackend,
    ExitWait, ImageBackend, JsonStream, LogStream, NetworkBackend, OutputChunk, OutputStream,
    StdinSink, SystemBackend,
};
pub use error::{ApiError, ServeError};
pub use listener::{ApiListener, ListenAddr, SocketOptions, DEFAULT_TLS_PORT};
pub use router::PathParams;
pub use server::{serve, serve_all, ServerConfig};
pub use tls::{ServerTls, TlsError, TlsFiles};
