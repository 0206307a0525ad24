//! End-to-end tests of berth's binaries and the fixtures they use.
//!
//! This crate owns the fixtures that the tests in `tests/tests/` share: a busybox rootfs
//! ([`busybox_rootfs`]), OCI bundles ([`Bundle`]), a wrapper around any runc-compatible runtime
//! binary ([`Runtime`]), a receiver for `--console-socket` ([`ConsoleSocket`]) and a record of the
//! host's mounts, cgroups and processes ([`HostSnapshot`]) to prove a test left nothing behind.
//!
//! Every runtime test is parameterised by the binary it drives: `BERTH_TEST_RUNTIME=/path/to/runc`
//! selects a peer; by default the tests drive the workspace's own `target/<profile>/berth-runtime`
//! and fail (never pass) when it is missing or does not run. The suites pass against runc before
//! they count against berth. Fixtures are made on this machine from Debian's `busybox-static`;
//! nothing is downloaded. This crate uses no `unsafe` and no other berth crate: it tests
//! binaries from outside, as root.
//!
//! How to run the runtime suites (`tests/tests/runtime_*.rs`), as root:
//!
//! ```text
//! # against runc, the reference (the suites must pass here first):
//! BERTH_TEST_RUNTIME=$(which runc) cargo test -p berth-tests -- --test-threads=2
//! # against berth-runtime: build it in the same profile first (cargo does not build another
//! # package's binary for these tests), or point BERTH_TEST_RUNTIME at it:
//! cargo build -p berth-runtime && cargo test -p berth-tests -- --test-threads=2
//! BERTH_TEST_RUNTIME=$PWD/target/release/berth-runtime cargo test -p berth-tests
//! # crun 1.8 refuses this hybrid cgroup layout; run it with the cgroup2 mount hidden:
//! BERTH_TEST_RUNTIME=$(which crun) unshare -m sh -c \
//!     'umount /sys/fs/cgroup/unified && mount -t tmpfs none /sys/fs/cgroup/unified && cargo test -p berth-tests'
//! # only the runtime suites (the package also holds other suites):
//! BERTH_TEST_RUNTIME=$(which runc) cargo test -p berth-tests --test 'runtime_*' -- --test-threads=2
//! ```
//!
//! Where runc 1.1.5 deviates from the spec or lacks a feature, the test says so in a comment
//! and checks runc's documented behaviour when the runtime is runc ([`Flavor::Runc`]); every
//! other runtime, berth-runtime included, is held to the spec.
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
pub use runtime::{Flavor, Output, Runtime, Spawned};
