//! Berth's image store: content-addressed blobs, OCI and Docker manifests,
//! layer unpacking into snapshots keyed by chain ID, OverlayFS mount
//! descriptions, archives (docker-archive, OCI layout) and the registry client.
#![forbid(unsafe_code)]

pub mod archive;
pub mod content;
pub mod digest;
mod durable;
pub mod manifest;
pub mod metadata;
pub mod progress;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod unpack;
