//! Just enough of `/proc/self/mountinfo` (proc(5)) for the rare paths that
//! need the mount table: a shared root propagation, `--no-pivot`, and a
//! container without a mount namespace (whose mounts are found and removed
//! by id).
//! The common path never reads it: the table is long on a busy host and
//! reading it takes the namespace lock.

use std::path::PathBuf;

/// One line of `/proc/self/mountinfo`, the fields berth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount's unique id (field 1); ids of live mounts are never shared.
    pub id: u64,
    /// The root of the mount within its filesystem (field 4).
    pub root: PathBuf,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// The per-mount options (field 6: `rw,nosuid,relatime`).
    pub options: Vec<String>,
    /// The optional fields (`shared:N`, `master:N`, …).
    pub optional: Vec<String>,
    /// The filesystem type.
    pub fs_type: String,
}

impl MountEntry {
    /// Whether the mount is in a shared peer group.
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Undoes the octal escapes (`\040` for a space) the kernel puts in paths.
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Parses the text of a mountinfo file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let _dev = fields.next()?;
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let options = fields.next()?.split(',').map(str::to_owned).collect();
    let mut optional = Vec::new();
    for f in fields.by_ref() {
        if f == "-" {
            break;
        }
        optional.push(f.to_owned());
    }
    let fs_type = fields.next()?.to_owned();
    Some(MountEntry {
        id,
        root,
        mount_point,
        options,
        optional,
        fs_type,
    })
}

/// Reads and parses this process's mount table.
pub fn read() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let text = "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n\
                    30 22 0:25 /sub /my\\040dir rw master:3 shared:9 - tmpfs tmpfs rw\n\
                    31 22 0:26 / /plain rw - ext4 /dev/sda1 rw\n\
                    garbage\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, PathBuf::from("/proc"));
        assert_eq!((m[0].id, m[1].id), (22, 30));
        assert!(m[0].is_shared());
        assert_eq!(m[0].fs_type, "proc");
        assert_eq!(m[0].options, vec!["rw", "nosuid"]);
        assert_eq!(m[1].mount_point, PathBuf::from("/my dir"));
        assert_eq!(m[1].root, PathBuf::from("/sub"));
        assert_eq!(m[1].optional, vec!["master:3", "shared:9"]);
        assert!(!m[2].is_shared());
        assert_eq!(m[2].fs_type, "ext4");
    }
}
