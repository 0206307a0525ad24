//! The OCI runtime spec as a library: berth's containers are made here.
//!
//! Owns: reading and validating a bundle's `config.json`; the lifecycle verbs
//! (one file each under `container/`); the process set-up chain (clone into
//! namespaces, sync with the parent, rootfs, user, capabilities, seccomp,
//! exec); cgroups on v1, v2 and hybrid hosts behind one interface
//! (`cgroups/`); hooks; the on-disk state of each container under the runtime
//! root.
//!
//! Must never: know about images, the Docker API, or the daemon; start threads
//! or an async runtime (it forks); shell out to a helper binary - with one
//! exception: running rootless, id maps other than the caller's own id are
//! written by the setuid `newuidmap`/`newgidmap` (see `rootless`), since the
//! kernel lets only such a helper map ranges for an unprivileged user.
//!
//! May use: `oci-spec`, `libseccomp`, `berth-sys` (the only crate with unsafe
//! code) and `nix`/`caps` for the syscalls they wrap safely.
#![forbid(unsafe_code)]

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod identity;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;

pub use error::{Error, Result};
