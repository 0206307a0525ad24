//! Giving back the memory a burst of work left mapped, for long-lived processes that do their
//! heavy work once (the monitor makes a container, then sits in a `poll(2)` loop for days).
//!
//! Two kinds of pages stay counted against such a process after the burst:
//!
//! - heap pages that were freed but that glibc's allocator keeps for reuse ([`trim_heap`]);
//! - page-table entries for the code and read-only data the burst ran through: clean pages of
//!   files (the binary, libc), which stay in the page cache, shared by every process that maps
//!   them, but count in this process's RSS for as long as its page tables point at them
//!   ([`drop_clean_file_pages`]). Dropping the entries frees nothing of the files; the next
//!   touch of such a page maps it again from the page cache, without I/O.

use std::fs;

/// Hands the free pages of the heap back to the kernel (`malloc_trim(0)`: glibc releases every
/// whole free page, not only the top of the heap). Returns whether any memory was released.
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks glibc's own allocator state under its own lock; it takes
    // no pointers from us.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// One mapping of `/proc/self/smaps` that holds only clean pages of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CleanMapping {
    start: usize,
    end: usize,
}

/// The mappings of `smaps` text whose pages are all clean copies of a file: mapped from a
/// file, not writable (so no private copy can appear in them later), and with no anonymous
/// (private, copied-on-write) page now — a relocated read-only segment (`.data.rel.ro` after
/// RELRO) is read-only yet holds such pages, and dropping those would lose the relocations.
fn clean_file_mappings(smaps: &str) -> Vec<CleanMapping> {
    let mut found = Vec::new();
    let mut current: Option<CleanMapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            // A mapping's header: range, perms, offset, dev, inode, path.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            current = (perms.len() == 4
                && !perms.contains('w')
                && path.starts_with('/')
                && !line.ends_with("(deleted)"))
            .then_some(CleanMapping { start, end });
            continue;
        }
        if first == "Anonymous:" {
            if let Some(m) = current.take() {
                if fields.next() == Some("0") {
                    found.push(m);
                }
            }
        }
    }
    found
}

/// Drops this process's page-table entries for the clean pages of read-only file mappings
/// (see the module doc), leaving every page in the page cache. Returns the bytes of address
/// space released. The process must not have other threads that could change its mappings
/// meanwhile (the caller's single-threaded loop).
pub fn drop_clean_file_pages() -> std::io::Result<usize> {
    let smaps = fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for m in clean_file_mappings(&smaps) {
        // SAFETY: the range is one whole mapping of a file that is not writable and holds no
        // private page, so MADV_DONTNEED only unmaps page-cache pages that the kernel maps
        // again, with the same contents, on the next access; no memory the program wrote is
        // lost. Nothing else maps or unmaps in this process meanwhile (caller's contract).
        let r = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            released += m.end - m.start;
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0200000 r--p 00000000 fd:01 123 /usr/bin/berth-monitor
Rss:                 448 kB
Anonymous:             0 kB
55d0c0200000-55d0c0500000 r-xp 00200000 fd:01 123 /usr/bin/berth-monitor
Rss:                2304 kB
Anonymous:             0 kB
55d0c0500000-55d0c0540000 r--p 00500000 fd:01 123 /usr/bin/berth-monitor
Rss:                 200 kB
Anonymous:           200 kB
55d0c0540000-55d0c0542000 rw-p 00540000 fd:01 123 /usr/bin/berth-monitor
Anonymous:             8 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           992 kB
7f0000000000-7f0000001000 r--p 00000000 00:01 77 /memfd:x (deleted)
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_chosen() {
        assert_eq!(
            clean_file_mappings(SMAPS),
            vec![
                CleanMapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0200000
                },
                CleanMapping {
                    start: 0x55d0c0200000,
                    end: 0x55d0c0500000
                },
            ]
        );
    }

    /// Read-only data of this test binary, to read back after its pages were dropped.
    static TABLE: [u64; 4096] = {
        let mut t = [0u64; 4096];
        let mut i = 0;
        while i < t.len() {
            t[i] = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            i += 1;
        }
        t
    };

    fn checksum() -> u64 {
        TABLE.iter().fold(0u64, |a, v| a.rotate_left(5) ^ v)
    }

    #[test]
    fn dropped_pages_come_back_with_the_same_contents() {
        // Other test threads never unmap this binary's or libc's file mappings, so the
        // single-thread contract holds for the mappings this touches.
        let before = checksum();
        let released = drop_clean_file_pages().expect("read /proc/self/smaps");
        assert!(released > 0, "this test binary maps its own code");
        assert_eq!(
            checksum(),
            before,
            "read-only data read back after the drop"
        );
        trim_heap();
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
