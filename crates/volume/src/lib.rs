//! Volumes for berthd: named volumes of the `local` driver and the checks of bind mounts.
//!
//! Owns: the volume directory `<data-root>/volumes/` ([`VolumeStore`]): one directory per volume,
//! `<name>/_data` (what containers see) and `<name>/opts.json` (its metadata, replaced
//! atomically); volume names as dockerd accepts them ([`validate_name`]); the parsing of `-v`
//! specifications and the checks of mount destinations ([`parse_bind`], [`check_destination`]);
//! the copy of an image's content into a fresh volume ([`copy_up`]).
//!
//! Must never: know which containers use a volume (berthd counts references from its container
//! records), mount anything, or resolve a container's mount destination on the host (the runtime
//! does that inside the rootfs). Plain blocking code: no tokio. May use: rustix, serde.
#![forbid(unsafe_code)]

mod copy;
mod error;
mod spec;
mod store;

pub use copy::copy_up;
pub use error::{MountError, VolumeError};
pub use spec::{check_destination, parse_bind, parse_propagation, MountSource, MountSpec};
pub use store::{is_anonymous_name, validate_name, Volume, VolumeStore, ANONYMOUS_LABEL, DRIVER};
