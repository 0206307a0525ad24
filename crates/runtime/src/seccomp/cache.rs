//! Compiled filters kept under the runtime root, so a profile is compiled
//! once, not at every container start: libseccomp 2.5 takes about 9 ms to
//! generate the BPF of a Docker-sized allowlist, several times what the rest
//! of a container start costs, and nearly every container uses the same
//! profile.
//!
//! An entry is named by the SHA-256 of everything the program depends on:
//! the section's JSON, libseccomp's version and API level, the architecture,
//! and berth's version and this format's. The directory lives in the runtime root (mode
//! 0700, the same trust as the containers' state), under a name no container
//! id can take. Entries are written to a temporary file and renamed, so a
//! reader sees a whole entry or none; a bad or unreadable entry is compiled
//! again, and a cache that cannot be written is only a lost speed-up.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{compile, Filter, Result, SeccompError};

/// The cache's directory name in the runtime root: '@' is not allowed in a
/// container id, so no container's directory can collide with it.
const DIR: &str = "@seccomp-cache";

/// Bumped whenever the entry format or what `compile` makes of a section
/// changes; the key also holds berth's version.
const FORMAT: &str = concat!("berth-seccomp-cache-v3/", env!("CARGO_PKG_VERSION"));

/// More entries than this and the others are dropped when one is added.
const MAX_ENTRIES: usize = 64;

/// The entry's path for `seccomp` under `root`.
fn entry(seccomp: &LinuxSeccomp, root: &Path) -> Result<PathBuf> {
    let json = serde_json::to_vec(seccomp)
        .map_err(|e| SeccompError::Invalid(format!("linux.seccomp: cannot be encoded: {e}")))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        FORMAT.as_bytes(),
        version.as_bytes(),
        &libseccomp::get_api().to_le_bytes(),
        std::env::consts::ARCH.as_bytes(),
        &json,
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    Ok(root
        .join(DIR)
        .join(format!("{}.bpf", hex::encode(hash.finalize()))))
}

/// An entry is the flags (u32, little endian) then the program.
fn decode(bytes: &[u8]) -> Option<Filter> {
    if bytes.len() < 12 || !(bytes.len() - 4).is_multiple_of(8) {
        return None;
    }
    let flags = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Some(Filter::from_parts(bytes[4..].to_vec(), flags))
}

fn encode(filter: &Filter) -> Vec<u8> {
    let mut bytes = filter.flags().to_le_bytes().to_vec();
    bytes.extend_from_slice(filter.bpf());
    bytes
}

/// [`compile`], through the cache under the runtime root `root`.
pub fn compile_cached(seccomp: &LinuxSeccomp, root: &Path) -> Result<Filter> {
    let path = entry(seccomp, root)?;
    if let Ok(bytes) = std::fs::read(&path) {
        if let Some(filter) = decode(&bytes) {
            return Ok(filter);
        }
        debug!(path = %path.display(), "seccomp: bad cache entry, compiling again");
    }
    let filter = compile(seccomp)?;
    if let Err(e) = store(&path, &encode(&filter)) {
        debug!(path = %path.display(), "seccomp: cannot cache the compiled filter: {e}");
    }
    Ok(filter)
}

fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    if entries.len() >= MAX_ENTRIES {
        for old in entries {
            let _ = std::fs::remove_file(old);
        }
    }
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_compiled_once_and_read_back_the_same() {
        let root = tempfile::tempdir().expect("a root");
        let profile = super::super::default_profile(&crate::capabilities::default_set());
        let first = compile_cached(&profile, root.path()).expect("compiles");
        let path = entry(&profile, root.path()).expect("an entry");
        assert!(path.exists(), "the entry is written");
        let again = compile_cached(&profile, root.path()).expect("from the cache");
        assert_eq!(again.bpf(), first.bpf());
        assert_eq!(again.flags(), first.flags());

        let mut other = profile.clone();
        other.set_default_errno_ret(Some(38));
        assert_ne!(
            entry(&other, root.path()).expect("an entry"),
            path,
            "another section, another entry"
        );

        std::fs::write(&path, b"garbage").expect("spoil the entry");
        let rebuilt = compile_cached(&profile, root.path()).expect("compiled again");
        assert_eq!(rebuilt.bpf(), first.bpf());
    }

    #[test]
    fn an_unwritable_cache_only_costs_time() {
        let root = tempfile::tempdir().expect("a root");
        std::fs::write(root.path().join(DIR), b"not a directory").expect("block the cache");
        let profile = super::super::default_profile(&crate::capabilities::default_set());
        compile_cached(&profile, root.path()).expect("compiles without the cache");
    }
}
