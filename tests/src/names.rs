//! Names unique to one test, so tests run in parallel threads and processes without meeting.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name made of `tag`, this process's pid and a per-process counter: `bt-<tag>-<pid>-<n>`.
///
/// Every container id, cgroup path and socket a test makes carries such a name, so a
/// [`crate::HostSnapshot`] can find what the test left behind and nothing a neighbour made.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("bt-{tag}-{}-{n}", std::process::id())
}
