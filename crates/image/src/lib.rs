//! Berth's image store: content-addressed blobs, OCI and Docker manifests,
//! layer unpacking into snapshots keyed by chain ID, OverlayFS mount
//! descriptions, archives (docker-archive, OCI layout) and the registry client.
#![forbid(unsafe_code)]

pub mod content;
pub mod digest;
mod durable;
pub mod manifest;
pub mod reference;
pub mod unpack;
pub mod snapshot;
pub mod metadata;
