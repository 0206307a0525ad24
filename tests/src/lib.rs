//! End-to-end tests of berth's binaries and the fixtures they use.
//!
//! This crate owns the fixtures that the tests in `tests/tests/` share: a busybox rootfs
//! ([`busybox_rootfs`]), OCI bundles ([`Bundle`]), a wrapper around any runc-compatible runtime
//! binary ([`Runtime`]), a receiver for `--console-socket` ([`ConsoleSocket`]) and a record of the
//! host's mounts, cgroups and processes ([`HostSnapshot`]) to prove a test left nothing behind.
//!
//! Every runtime test is parameterised by the binary it drives: `BERTH_TEST_RUNTIME=/path/to/runc`
//! selects a peer; by default the tests drive the workspace's own `target/<profile>/berth-runtime`
//! and fail (never pass) when it is missing. The suites pass against runc before they count
//! against berth. Fixtures are made on this machine from Debian's `busybox-static`; nothing is
//! downloaded. This crate uses no `unsafe` and no other berth crate: it tests binaries from outside.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod console;
pub mod host;
pub mod names;
pub mod rootfs;
pub mod runtime;
pub mod wait;

pub use bundle::{Bundle, HookPhase};
pub use console::ConsoleSocket;
pub use host::HostSnapshot;
pub use names::unique_name;
pub use rootfs::busybox_rootfs;
pub use runtime::{Flavor, Output, Runtime};
