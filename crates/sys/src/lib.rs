//! Small, documented wrappers around the Linux syscalls that neither `nix` nor
//! `rustix` wrap safely, and the only place in berth where `unsafe` is allowed.
//!
//! Owns: raw `clone(2)` with namespace flags (fork semantics, no new stack),
//! `execveat(2)` on a file descriptor, `close_range(2)`, `seccomp(2)` filter
//! loading, `bpf(2)` for cgroup v2 device programs, `mount_setattr(2)` for
//! ID-mapped mounts, `madvise(2)` and `malloc_trim(3)` to give back what a
//! burst of work left mapped, the sealed
//! in-memory exec trampoline that keeps containers away from the runtime's own
//! binary (CVE-2019-5736), and ISA-L's DEFLATE decoder ([`inflate`]) for the
//! image store's layers: a C library called through raw pointers, which is
//! why it lives here.
//!
//! Must never: hold policy. Every function here does one syscall (or a fixed,
//! short sequence of them, or one library call) and returns the error
//! untouched (`nix::Error`, or the library's status as a typed error); callers
//! add the context (which container, which path, which layer).
//!
//! May use: `libc`, `nix`, `isal-sys` (bindings to the system's libisal).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bpf;
pub mod inflate;
pub mod memory;
pub mod misc;
pub mod mount;
pub mod process;
pub mod seccomp;
pub mod trampoline;

pub use nix;
