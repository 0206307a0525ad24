//! Mount option strings (`"ro"`, `"nosuid"`, `"rbind"`, `"mode=755"` …) turned
//! into `mount(2)` flags, following the table runc uses so that a bundle means
//! the same thing to berth as to runc.
//!
//! The runtime spec says options are those of mount(8) and fstab(5)
//! (<https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts>):
//! a flag option sets or clears an `MS_*` bit, a propagation option becomes a
//! separate `mount(2)` call after the mount exists (the kernel refuses to mix
//! propagation with other flags), and anything unknown is handed to the
//! filesystem as its data string, as mount(8) does.

use nix::mount::MsFlags;

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix's `MsFlags` does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// `MOUNT_ATTR_*` bits of `mount_setattr(2)`, used by the recursive options
/// (`rro`, `rnosuid`, …); kernel ABI values from `include/uapi/linux/mount.h`.
pub mod attr {
    /// `MOUNT_ATTR_RDONLY`
    pub const RDONLY: u64 = 0x0000_0001;
    /// `MOUNT_ATTR_NOSUID`
    pub const NOSUID: u64 = 0x0000_0002;
    /// `MOUNT_ATTR_NODEV`
    pub const NODEV: u64 = 0x0000_0004;
    /// `MOUNT_ATTR_NOEXEC`
    pub const NOEXEC: u64 = 0x0000_0008;
    /// `MOUNT_ATTR__ATIME`: the mask covering the three atime modes.
    pub const ATIME_MASK: u64 = 0x0000_0070;
    /// `MOUNT_ATTR_RELATIME` (the value 0 inside `ATIME_MASK`).
    pub const RELATIME: u64 = 0x0000_0000;
    /// `MOUNT_ATTR_NOATIME`
    pub const NOATIME: u64 = 0x0000_0010;
    /// `MOUNT_ATTR_STRICTATIME`
    pub const STRICTATIME: u64 = 0x0000_0020;
    /// `MOUNT_ATTR_NODIRATIME`
    pub const NODIRATIME: u64 = 0x0000_0080;
    /// `MOUNT_ATTR_NOSYMFOLLOW`
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// A mount's options, parsed. Later options override earlier ones, so
/// `["ro", "rw"]` ends read-write, as with mount(8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    /// `MS_*` flags to set (includes `MS_BIND`/`MS_REC` for `bind`/`rbind`).
    pub flags: MsFlags,
    /// `MS_*` flags the options explicitly clear (`rw`, `suid`, `dev`, …). A
    /// bind mount in a user namespace must not silently keep a locked flag
    /// the user asked to clear.
    pub clear_flags: MsFlags,
    /// Propagation changes, in order, each one `mount(2)` call.
    pub propagation: Vec<MsFlags>,
    /// Unknown options, in order: the filesystem's data string (`mode=755`).
    pub data_options: Vec<String>,
    /// `MOUNT_ATTR_*` bits the recursive options (`rro`, …) set.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits the recursive options clear.
    pub attr_clear: u64,
    /// The recursive options given, by name (for messages).
    pub recursive_options: Vec<String>,
    /// `idmap` or `ridmap` was given (an ID-mapped mount).
    pub idmap: bool,
    /// `ridmap` was given: the mapping applies to every mount of an `rbind`.
    pub idmap_recursive: bool,
    /// runc's `tmpcopyup` extension was given.
    pub tmpcopyup: bool,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            clear_flags: MsFlags::empty(),
            propagation: Vec::new(),
            data_options: Vec::new(),
            attr_set: 0,
            attr_clear: 0,
            recursive_options: Vec::new(),
            idmap: false,
            idmap_recursive: false,
            tmpcopyup: false,
        }
    }
}

impl ParsedOptions {
    /// Whether `bind` or `rbind` was given.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Whether `rbind` was given (a recursive bind).
    pub fn is_recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    /// The filesystem data string: the unknown options joined by commas.
    pub fn data(&self) -> String {
        self.data_options.join(",")
    }

    /// The flags that a bind mount needs a second, remounting call for
    /// (everything but `MS_BIND`, `MS_REC` and `MS_REMOUNT`).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Every mount option berth applies (what `features` reports): the
/// `mount(8)` flags, propagation, the recursive `mount_setattr(2)` attributes
/// and `idmap`/`ridmap`. Anything else is filesystem data, except runc's
/// `tmpcopyup`, which is refused.
pub const KNOWN_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// What one known option does.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    /// A recursive attribute: (bits to set, bits to clear).
    Attr(u64, u64),
    /// `idmap`, or with `true` `ridmap`.
    Idmap(bool),
    TmpCopyUp,
    /// Known and meaningless here (`defaults`).
    Nothing,
}

/// runc's option table. `MS_REC` on a propagation option makes it apply to
/// the whole subtree; atime options are mutually exclusive in the kernel, so
/// the recursive ones clear the whole `MOUNT_ATTR__ATIME` mask first.
fn effect(option: &str) -> Option<Effect> {
    use Effect::*;
    let e = match option {
        "defaults" => Nothing,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "iversion" => Set(MsFlags::MS_I_VERSION),
        "noiversion" => Clear(MsFlags::MS_I_VERSION),
        "acl" => Set(MsFlags::MS_POSIXACL),
        "noacl" => Clear(MsFlags::MS_POSIXACL),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "shared" => Propagation(MsFlags::MS_SHARED),
        "rshared" => Propagation(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
        "slave" => Propagation(MsFlags::MS_SLAVE),
        "rslave" => Propagation(MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
        "private" => Propagation(MsFlags::MS_PRIVATE),
        "rprivate" => Propagation(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
        "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
        "runbindable" => Propagation(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
        "rro" => Attr(attr::RDONLY, 0),
        "rrw" => Attr(0, attr::RDONLY),
        "rnosuid" => Attr(attr::NOSUID, 0),
        "rsuid" => Attr(0, attr::NOSUID),
        "rnodev" => Attr(attr::NODEV, 0),
        "rdev" => Attr(0, attr::NODEV),
        "rnoexec" => Attr(attr::NOEXEC, 0),
        "rexec" => Attr(0, attr::NOEXEC),
        "rnodiratime" => Attr(attr::NODIRATIME, 0),
        "rdiratime" => Attr(0, attr::NODIRATIME),
        "rrelatime" => Attr(attr::RELATIME, attr::ATIME_MASK),
        "rnorelatime" => Attr(0, attr::ATIME_MASK),
        "rnoatime" => Attr(attr::NOATIME, attr::ATIME_MASK),
        "ratime" => Attr(0, attr::ATIME_MASK),
        "rstrictatime" => Attr(attr::STRICTATIME, attr::ATIME_MASK),
        "rnostrictatime" => Attr(0, attr::ATIME_MASK),
        "rnosymfollow" => Attr(attr::NOSYMFOLLOW, 0),
        "rsymfollow" => Attr(0, attr::NOSYMFOLLOW),
        "idmap" => Idmap(false),
        "ridmap" => Idmap(true),
        "tmpcopyup" => TmpCopyUp,
        _ => return None,
    };
    Some(e)
}

/// Parses a mount's options (pure; no syscall).
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> ParsedOptions {
    let mut p = ParsedOptions::default();
    for option in options {
        let option = option.as_ref();
        match effect(option) {
            Some(Effect::Set(f)) => {
                p.flags |= f;
                p.clear_flags &= !f;
            }
            Some(Effect::Clear(f)) => {
                p.flags &= !f;
                p.clear_flags |= f;
            }
            Some(Effect::Propagation(f)) => p.propagation.push(f),
            Some(Effect::Attr(set, clear)) => {
                p.attr_set &= !clear;
                p.attr_clear |= clear;
                p.attr_set |= set;
                // An atime mode is set by clearing the whole atime mask and
                // setting one value inside it, so the mask stays cleared.
                p.attr_clear &= !(set & !attr::ATIME_MASK);
                p.recursive_options.push(option.to_owned());
            }
            Some(Effect::Idmap(recursive)) => {
                p.idmap = true;
                p.idmap_recursive |= recursive;
            }
            Some(Effect::TmpCopyUp) => p.tmpcopyup = true,
            Some(Effect::Nothing) => {}
            None => p.data_options.push(option.to_owned()),
        }
    }
    p
}

/// Parses `linux.rootfsPropagation` into the flags of one `mount(2)` call.
/// Returns `None` for a value runc does not accept.
pub fn parse_propagation(value: &str) -> Option<MsFlags> {
    match effect(value) {
        Some(Effect::Propagation(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(o: &str) -> ParsedOptions {
        parse_options(&[o])
    }

    #[test]
    fn every_flag_option_of_runcs_table() {
        let set = [
            ("ro", MsFlags::MS_RDONLY),
            ("nosuid", MsFlags::MS_NOSUID),
            ("nodev", MsFlags::MS_NODEV),
            ("noexec", MsFlags::MS_NOEXEC),
            ("sync", MsFlags::MS_SYNCHRONOUS),
            ("dirsync", MsFlags::MS_DIRSYNC),
            ("remount", MsFlags::MS_REMOUNT),
            ("mand", MsFlags::MS_MANDLOCK),
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("bind", MsFlags::MS_BIND),
            ("rbind", MsFlags::MS_BIND | MsFlags::MS_REC),
            ("relatime", MsFlags::MS_RELATIME),
            ("strictatime", MsFlags::MS_STRICTATIME),
            ("lazytime", MsFlags::MS_LAZYTIME),
            ("iversion", MsFlags::MS_I_VERSION),
            ("acl", MsFlags::MS_POSIXACL),
            ("silent", MsFlags::MS_SILENT),
            ("nosymfollow", MS_NOSYMFOLLOW),
        ];
        for (name, flag) in set {
            let p = one(name);
            assert_eq!(p.flags, flag, "{name} sets");
            assert!(p.clear_flags.is_empty(), "{name} clears nothing");
            assert!(p.data_options.is_empty(), "{name} is known");
        }
        let clear = [
            ("rw", MsFlags::MS_RDONLY),
            ("suid", MsFlags::MS_NOSUID),
            ("dev", MsFlags::MS_NODEV),
            ("exec", MsFlags::MS_NOEXEC),
            ("async", MsFlags::MS_SYNCHRONOUS),
            ("nomand", MsFlags::MS_MANDLOCK),
            ("atime", MsFlags::MS_NOATIME),
            ("diratime", MsFlags::MS_NODIRATIME),
            ("norelatime", MsFlags::MS_RELATIME),
            ("nostrictatime", MsFlags::MS_STRICTATIME),
            ("nolazytime", MsFlags::MS_LAZYTIME),
            ("noiversion", MsFlags::MS_I_VERSION),
            ("noacl", MsFlags::MS_POSIXACL),
            ("loud", MsFlags::MS_SILENT),
            ("symfollow", MS_NOSYMFOLLOW),
        ];
        for (name, flag) in clear {
            let p = one(name);
            assert!(p.flags.is_empty(), "{name} sets nothing");
            assert_eq!(p.clear_flags, flag, "{name} clears");
        }
        assert_eq!(one("defaults"), ParsedOptions::default());
    }

    #[test]
    fn propagation_options_are_separate_calls_in_order() {
        let p = parse_options(&[
            "shared",
            "rshared",
            "slave",
            "rslave",
            "private",
            "rprivate",
            "unbindable",
            "runbindable",
        ]);
        assert!(p.flags.is_empty());
        let rec = MsFlags::MS_REC;
        assert_eq!(
            p.propagation,
            vec![
                MsFlags::MS_SHARED,
                MsFlags::MS_SHARED | rec,
                MsFlags::MS_SLAVE,
                MsFlags::MS_SLAVE | rec,
                MsFlags::MS_PRIVATE,
                MsFlags::MS_PRIVATE | rec,
                MsFlags::MS_UNBINDABLE,
                MsFlags::MS_UNBINDABLE | rec,
            ]
        );
        assert_eq!(parse_propagation("rslave"), Some(MsFlags::MS_SLAVE | rec));
        assert_eq!(parse_propagation("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(parse_propagation("ro"), None);
        assert_eq!(parse_propagation("sideways"), None);
    }

    #[test]
    fn later_options_win() {
        let p = parse_options(&["ro", "rw"]);
        assert!(p.flags.is_empty());
        assert_eq!(p.clear_flags, MsFlags::MS_RDONLY);
        let p = parse_options(&["rw", "ro"]);
        assert_eq!(p.flags, MsFlags::MS_RDONLY);
        assert!(p.clear_flags.is_empty());
        let p = parse_options(&["nosuid", "suid", "nodev"]);
        assert_eq!(p.flags, MsFlags::MS_NODEV);
        assert_eq!(p.clear_flags, MsFlags::MS_NOSUID);
    }

    #[test]
    fn unknown_options_become_data_in_order() {
        let p = parse_options(&["nosuid", "mode=755", "size=65536k", "newinstance"]);
        assert_eq!(p.flags, MsFlags::MS_NOSUID);
        assert_eq!(p.data(), "mode=755,size=65536k,newinstance");
        assert!(!p.is_bind());
    }

    #[test]
    fn default_devpts_options() {
        let p = parse_options(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(p.data(), "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn bind_and_remount_flags() {
        let p = parse_options(&["rbind", "ro", "nosuid", "rprivate"]);
        assert!(p.is_bind() && p.is_recursive_bind());
        assert_eq!(p.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let p = parse_options(&["bind"]);
        assert!(p.is_bind() && !p.is_recursive_bind());
        assert!(p.remount_flags().is_empty());
    }

    #[test]
    fn recursive_attributes() {
        let p = parse_options(&["rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime"]);
        assert_eq!(
            p.attr_set,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC | attr::NODIRATIME
        );
        assert_eq!(p.attr_clear, 0);
        assert!(p.flags.is_empty() && p.data_options.is_empty());
        assert_eq!(p.recursive_options.len(), 5);

        let p = parse_options(&["rro", "rrw", "rsuid", "rdev", "rexec", "rdiratime"]);
        assert_eq!(p.attr_set, 0);
        assert_eq!(
            p.attr_clear,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC | attr::NODIRATIME
        );

        for (name, set) in [
            ("rnoatime", attr::NOATIME),
            ("rstrictatime", attr::STRICTATIME),
            ("rrelatime", attr::RELATIME),
        ] {
            let p = parse_options(&["rnoatime", name]);
            assert_eq!(p.attr_set, set, "{name}");
            assert_eq!(p.attr_clear & attr::ATIME_MASK, attr::ATIME_MASK, "{name}");
        }
        for name in ["ratime", "rnorelatime", "rnostrictatime"] {
            let p = parse_options(&["rstrictatime", name]);
            assert_eq!(p.attr_set, 0, "{name}");
            assert_eq!(p.attr_clear, attr::ATIME_MASK, "{name}");
        }
        let p = parse_options(&["rnosymfollow"]);
        assert_eq!(p.attr_set, attr::NOSYMFOLLOW);
        let p = parse_options(&["rnosymfollow", "rsymfollow"]);
        assert_eq!((p.attr_set, p.attr_clear), (0, attr::NOSYMFOLLOW));
    }

    #[test]
    fn extensions() {
        assert!(one("idmap").idmap);
        assert!(one("ridmap").idmap && one("ridmap").idmap_recursive);
        assert!(!one("idmap").idmap_recursive);
        assert!(one("tmpcopyup").tmpcopyup);
    }

    #[test]
    fn every_reported_option_is_known() {
        for o in KNOWN_OPTIONS {
            assert!(effect(o).is_some(), "{o} is reported but not applied");
        }
        assert!(!KNOWN_OPTIONS.contains(&"tmpcopyup"));
    }
}
