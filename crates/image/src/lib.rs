//! Berth's image store: content-addressed blobs, OCI and Docker manifests,
//! layer unpacking into snapshots keyed by chain ID, OverlayFS mount
//! descriptions, archives (docker-archive, OCI layout) and the registry
//! client (pull and push over the OCI distribution protocol).
//!
//! Owns, under one data root:
//! - `content/blobs/sha256/<hex>`: blobs, verified before they get their name
//!   ([`content`], digests in [`digest`]), and `content/ingest/<hex>`:
//!   downloads kept across processes so that a pull resumes them
//!   (re-hashed before use; removed by garbage collection);
//! - `snapshots/<chainid-hex>/fs`: each layer unpacked once ([`unpack`],
//!   [`snapshot`]), shared by every image and container using it, and
//!   `snapshots/active/<container-id>/`: containers' writable layers;
//! - `metadata/images.json`: image records and tags, replaced atomically
//!   ([`metadata`]);
//! - `pending/`: one marker per pull or load whose names are given but not
//!   yet flushed to disk (see [`store::Settler`]); removed by the
//!   settle that follows, or, after a crash, used to drop what may be torn;
//! - `tmp/`: scratch space for archives being loaded; `lock`: one process
//!   at a time.
//!
//! The [`store::Store`] ties them together with Docker's verbs (load, save,
//! tag, untag, remove, inspect, history, list, prune, disk usage);
//! [`mod@reference`] parses image names the way Docker does, [`manifest`] reads
//! OCI and Docker schema 2 documents and picks a platform, [`archive`] reads
//! and writes docker-archive tarballs and OCI layouts, [`export`] writes
//! layer tars from directories (a container's diff, a flattened rootfs)
//! without mounting, [`progress`] carries per-layer progress to a
//! callback, and [`registry`] pulls and pushes
//! ([`store::Store::pull`], [`store::Store::push`]).
//!
//! Must never: mount anything for a container (it describes mounts in a
//! [`snapshot::MountSpec`]; the runtime performs them inside the container's
//! mount namespace; the one mount made here is the overlay probe at open, in
//! a throwaway directory), know about containers' processes (removal asks the
//! caller's `in_use` predicate), write outside its data root while
//! unpacking a layer, or give a blob, snapshot or image record its final
//! name before it is complete, and durable or covered by a durable
//! pending-names marker (so that a crash never leaves a torn image visible).
//!
//! Synchronous by design: unpacking and snapshotting are blocking syscalls;
//! only the [`registry`] module is async (tokio), and it runs unpacking on
//! blocking threads.
//!
//! May use: oci-spec (image types: manifests, indexes, configs), tar, flate2,
//! zstd, sha2, serde_json, rustix (openat2, *at syscalls, xattrs, mknod,
//! flock, the probe mount: all safe wrappers, so no `unsafe` here); for the
//! registry: tokio, reqwest (rustls with ring; no OpenSSL), base64.
//!
//! Written by hand, and why: the reference grammar (a few rules; a regex
//! engine would be the largest dependency); the digest type (oci-spec's
//! accepts any algorithm, berth verifies only sha256 and wants that refused
//! at parse time); the layer applier (the tar crate's own unpack resolves
//! paths by string checks and knows nothing of overlay whiteouts; berth
//! resolves every path with openat2 beneath the layer root); archive
//! indexing (entries are read in place by offset instead of extracting the
//! archive to disk).
#![forbid(unsafe_code)]

pub mod archive;
pub mod content;
pub mod digest;
mod durable;
pub mod export;
mod gzip;
pub mod manifest;
pub mod metadata;
mod pending;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;
