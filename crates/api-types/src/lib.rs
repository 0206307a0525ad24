//! The Docker Engine API as data: the request and response models, the query parameters of the
//! main endpoints, the error body, the framing of attach/logs streams, the JSON progress messages
//! of pull/push/load, and API version negotiation.
//!
//! Owns: what goes over the wire between a Docker client and berthd, and nothing else. The large
//! generated models (container config, inspect, info, events, …) come from `bollard-stubs` and are
//! re-exported from [`models`] rather than written again; this crate adds what a server needs
//! around them (types that deserialize query strings, dockerd's filter encoding, frame encoders).
//!
//! Must never: do I/O, depend on tokio, hyper or any async runtime, or hold behaviour that belongs
//! to a service (it is a contract shared by `api-server`, the daemon and clients). Depends on serde,
//! serde_json, thiserror and bollard-stubs only.
#![forbid(unsafe_code)]

pub mod auth;
pub mod capabilities;
pub mod error;
pub mod filters;
pub mod models;
pub mod progress;
pub mod query;
pub mod stream;
pub mod version;

pub use auth::{AuthError, RegistryAuth};
pub use error::ErrorBody;
pub use filters::{Filters, FiltersError};
pub use progress::ProgressMessage;
pub use query::{Query, QueryError};
pub use stream::{FrameDecoder, FrameError, FrameHeader, StdStream};
pub use version::{ApiVersion, VersionError};
