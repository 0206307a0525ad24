//! Berth's image store: content-addressed blobs, OCI and Docker manifests,
//! layer unpacking into snapshots keyed by chain ID, OverlayFS mount
//! descriptions, archives (docker-archive, OCI layout) and the registry client.
//!
//! Must never: mount anything (it describes mounts; the runtime performs them
//! inside the container's mount namespace), or know about containers'
//! processes.
//!
//! May use: oci-spec, an HTTP client, tar, flate2, zstd, sha2.
#![forbid(unsafe_code)]
