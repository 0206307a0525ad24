//! Container sizes as `docker ps -s`, `inspect -s`, `system df` and `container prune` report
//! them: `SizeRw`, the bytes in the container's writable layer, and `SizeRootFs`, that plus its
//! image. Measured by a walk of the upper directory when asked for, as dockerd does: nothing
//! keeps a running total of a layer that the container writes to behind the daemon's back.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::state::ContainerRecord;
use crate::Inner;

impl Inner {
    /// Each image's unpacked size, by image ID.
    pub(crate) fn image_sizes(&self) -> HashMap<String, u64> {
        crate::store_read(&self.images)
            .list()
            .into_iter()
            .map(|i| (i.id.to_string(), i.size))
            .collect()
    }
}

/// Bytes of the files under `dir` (regular files and symlinks by their length, each inode
/// once, however many links it has), without following symlinks or crossing into other
/// filesystems. A directory that cannot be read counts what could be: sizes are advisory.
pub(crate) fn tree_size(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(md) = entry.metadata() else { continue };
            if md.dev() != top.dev() {
                continue;
            }
            if md.is_dir() {
                stack.push(entry.path());
            } else if (md.nlink() <= 1 || seen.insert(md.ino())) && !md.file_type().is_char_device()
            {
                // Whiteouts are 0:0 character devices: no bytes of their own.
                total += md.len();
            }
        }
    }
    total
}

/// `SizeRw` of each record (its upper directory; 0 for a bind rootfs, which is the user's
/// directory, not a layer) and `SizeRootFs` (that plus its image's unpacked size).
pub(crate) fn sizes(
    records: &[ContainerRecord],
    image_sizes: &HashMap<String, u64>,
) -> HashMap<String, (i64, i64)> {
    records
        .iter()
        .map(|r| {
            let rw = r
                .rootfs
                .upper_dir()
                .map(|u| tree_size(Path::new(u)))
                .unwrap_or(0);
            let image = image_sizes.get(&r.image_id).copied().unwrap_or(0);
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            (r.id.clone(), (as_i64(rw), as_i64(rw.saturating_add(image))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_inode_once_and_follows_no_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("a"), vec![0u8; 1000]).expect("write a");
        std::fs::hard_link(d.join("a"), d.join("a-link")).expect("hard link");
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        std::fs::write(d.join("sub/b"), vec![0u8; 24]).expect("write b");
        // A symlink counts its own length, not the 10 GB file it might point at.
        std::os::unix::fs::symlink("/etc/hostname", d.join("sub/link")).expect("symlink");
        assert_eq!(tree_size(d), 1000 + 24 + "/etc/hostname".len() as u64);
        assert_eq!(tree_size(&d.join("missing")), 0);
    }
}
