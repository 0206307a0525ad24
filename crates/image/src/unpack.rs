//! Applying a layer tar (plain, gzip or zstd, detected by magic bytes) to an
//! empty directory in the form OverlayFS expects of a lower layer.
//!
//! Whiteouts become what overlay itself writes: `.wh.NAME` a 0:0 character
//! device named NAME, and `.wh..wh..opq` the `trusted.overlay.opaque=y`
//! xattr on its directory. Ownership, modes (setuid, setgid, sticky), mtimes,
//! xattrs, hard links, symlinks, device nodes and fifos are kept.
//!
//! Safety against hostile layers does not rest on string checks: every
//! entry's parent directory is opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` relative to the layer root, so the kernel refuses
//! (EXDEV) any resolution that would leave it — through `..`, an absolute
//! symlink, or a chain of symlinks written earlier in the same layer — and the
//! final component is always created with `O_EXCL|O_NOFOLLOW`, `mknodat`,
//! `symlinkat` or `linkat` without following, after removing whatever was
//! there. Entry names are also cleaned lexically first, so that `..` that
//! climbs above the root and absolute names are refused with a clear message
//! before any syscall. `trusted.overlay.*` xattrs in a layer are refused:
//! only berth may speak to overlay (a forged redirect or metacopy xattr
//! could make overlay read outside the layer).
//!
//! Because each layer is unpacked into its own directory, a symlink that only
//! exists in a lower layer is not followed while unpacking (the entry is
//! created under a real directory of that name, which overlay then shows
//! instead of the lower symlink), as in other snapshotters that unpack layers
//! independently.

use crate::digest::{Digest, HashingReader};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, XattrFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

/// The size of the buffer a file's content is copied through.
const COPY_BUFFER: usize = 1 << 20;

/// Files at least this large have their writeback started as soon as
/// they are written.
const WRITEBACK_FROM: u64 = 1 << 20;

/// The prefix of whiteout entries in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlay reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => crate::manifest::OCI_LAYER_TAR,
            Compression::Gzip => crate::manifest::OCI_LAYER_GZIP,
            Compression::Zstd => crate::manifest::OCI_LAYER_ZSTD,
        }
    }
}

/// Looks at the first bytes of a buffered stream without consuming them.
pub fn detect_compression(reader: &mut impl BufRead) -> io::Result<Compression> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Returns a reader of the decompressed tar stream.
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    decompress_with(reader, true)
}

/// [`decompress`] for a stream whose decompressed bytes the caller hashes
/// and compares to a known digest (a layer's diff ID): gzip's CRC-32 is not
/// computed, the SHA-256 covers every byte (see `gzip`).
pub(crate) fn decompress_hashed<'a>(
    reader: impl Read + 'a,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    decompress_with(reader, false)
}

fn decompress_with<'a>(
    reader: impl Read + 'a,
    gzip_crc: bool,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let compression = detect_compression(&mut buffered)?;
    let r: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip if gzip_crc => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Gzip => Box::new(crate::gzip::UncheckedGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((compression, r))
}

/// Errors applying a layer. Every variant names the tar entry involved.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry would write outside the layer directory, or is otherwise hostile.
    #[error("layer entry {entry:?} refused: {reason}")]
    Unsafe {
        /// The entry's name as written in the tar.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A filesystem operation for the entry failed.
    #[error("layer entry {entry:?}: {op}: {source}")]
    Io {
        /// The entry's name as written in the tar.
        entry: String,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The tar stream itself could not be read or decompressed.
    #[error("reading layer tar stream (after {after}): {source}")]
    Stream {
        /// The last entry read, or "start of stream".
        after: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry type berth cannot apply.
    #[error("layer entry {entry:?}: unsupported tar entry type {kind:?}")]
    Unsupported {
        /// The entry's name.
        entry: String,
        /// The tar type byte, shown.
        kind: String,
    },
    /// The destination directory cannot be opened.
    #[error("opening layer directory {path}: {source}")]
    Destination {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What applying a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// SHA-256 of the uncompressed tar stream (the layer's diff ID).
    pub diff_id: Digest,
    /// Compression detected on the blob.
    pub compression: Compression,
    /// Bytes of regular-file content written.
    pub size: u64,
    /// Tar entries applied.
    pub entries: u64,
}

/// Counts bytes read, reporting the running total.
struct Counting<'a, R> {
    inner: R,
    count: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        (self.report)(self.count);
        Ok(n)
    }
}

/// Applies the layer read from `blob` to `dest`, an existing empty directory.
/// `progress` receives the count of (compressed) bytes consumed. On error,
/// `dest` may hold a partial tree: the caller (the snapshotter) unpacks into a
/// temporary directory and removes it.
pub fn apply_layer(
    blob: impl Read,
    dest: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<UnpackStats, UnpackError> {
    apply_layer_with(blob, dest, progress, Writeback::Early)
}

/// When the files an unpacking writes are sent to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writeback {
    /// Each file of 1 MiB or more has its writeback started as soon as it
    /// is written, so that a flush right after the unpacking finds little
    /// left to write.
    Early,
    /// Left to the kernel (and to a later flush): nothing waits on the
    /// disk, and no CPU goes to starting writeback while the unpacking runs.
    Lazy,
}

/// [`apply_layer`], choosing when the written files go to the disk.
pub fn apply_layer_with(
    blob: impl Read,
    dest: &Path,
    progress: &mut dyn FnMut(u64),
    writeback: Writeback,
) -> Result<UnpackStats, UnpackError> {
    let root: OwnedFd = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Destination {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let counting = Counting {
        inner: blob,
        count: 0,
        report: progress,
    };
    // The caller compares the returned diff ID with the expected one.
    let (compression, tar_stream) =
        decompress_hashed(counting).map_err(|source| UnpackError::Stream {
            after: "start of stream".into(),
            source,
        })?;
    let mut archive = tar::Archive::new(HashingReader::new(tar_stream));
    let mut applier = Applier {
        root: root.as_fd(),
        dir_times: Vec::new(),
        parent_cache: None,
        size: 0,
        entries: 0,
        buf: Vec::new(),
        writeback,
    };
    let mut last = "start of stream".to_string();
    let entries = archive.entries().map_err(|source| UnpackError::Stream {
        after: last.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| UnpackError::Stream {
            after: last.clone(),
            source,
        })?;
        last = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        applier.apply(entry)?;
    }
    applier.finish_dir_times()?;
    let (diff_id, _) = archive
        .into_inner()
        .finish()
        .map_err(|source| UnpackError::Stream {
            after: "end of archive".into(),
            source,
        })?;
    Ok(UnpackStats {
        diff_id,
        compression,
        size: applier.size,
        entries: applier.entries,
    })
}

/// Cleans an entry name into components; refuses absolute names and `..`
/// that climbs above the root.
fn clean(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("absolute path");
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path climbs out of the layer directory with ..");
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn timestamps(mtime: u64) -> rfs::Timestamps {
    let t = rfs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    rfs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}

struct Applier<'a> {
    root: BorrowedFd<'a>,
    dir_times: Vec<(Vec<u8>, u64)>,
    parent_cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    size: u64,
    entries: u64,
    /// The buffer file contents go through (allocated on the first file).
    buf: Vec<u8>,
    writeback: Writeback,
}

/// Metadata every entry carries.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_err = |reason: &str| UnpackError::Unsafe {
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let io_err = |op: &'static str| {
            let entry = name.clone();
            move |e: Errno| UnpackError::Io {
                entry,
                op,
                source: e.into(),
            }
        };
        let comps = clean(&raw).map_err(unsafe_err)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        self.entries += 1;
        let meta = self.meta(&mut entry, &name)?;
        let Some((last, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): take its metadata.
            if kind.is_dir() {
                let fd = rfs::openat(
                    self.root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open layer root"))?;
                self.set_fd_meta(&fd, &meta, &name)?;
                self.dir_times.push((b".".to_vec(), meta.mtime));
                return Ok(());
            }
            return Err(unsafe_err("a non-directory entry names the layer root"));
        };
        let last: &[u8] = last;

        if let Some(hidden) = last.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let parent = self.open_parent(parent_comps, &name)?;
            if last == OPAQUE_MARKER.as_bytes() {
                rfs::fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(io_err("set trusted.overlay.opaque on its directory"))?;
                return Ok(());
            }
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to apply.
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(unsafe_err("whiteout names no file in its directory"));
            }
            self.replace(&parent, hidden, || {
                rfs::mknodat(
                    &parent,
                    OsStr::from_bytes(hidden),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )
            })
            .map_err(io_err("create whiteout device"))?;
            return Ok(());
        }

        let parent = self.open_parent(parent_comps, &name)?;
        let last_os = OsStr::from_bytes(last);
        match kind {
            tar::EntryType::Directory => {
                match rfs::mkdirat(&parent, last_os, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let is_dir = rfs::statat(&parent, last_os, AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| {
                                FileType::from_raw_mode(st.st_mode) == FileType::Directory
                            });
                        if !is_dir {
                            self.replace(&parent, last, || {
                                rfs::mkdirat(&parent, last_os, Mode::from_raw_mode(0o700))
                            })
                            .map_err(io_err("create directory"))?;
                        }
                    }
                    Err(e) => return Err(io_err("create directory")(e)),
                }
                let fd = rfs::openat(
                    &parent,
                    last_os,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open directory"))?;
                self.set_fd_meta(&fd, &meta, &name)?;
                self.dir_times.push((join(&comps), meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = self
                    .replace(&parent, last, || {
                        rfs::openat(
                            &parent,
                            last_os,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                    })
                    .map_err(io_err("create file"))?;
                let mut file = File::from(fd);
                let n =
                    self.copy_content(&mut entry, &mut file)
                        .map_err(|source| UnpackError::Io {
                            entry: name.clone(),
                            op: "write file content",
                            source,
                        })?;
                self.size += n;
                if n >= WRITEBACK_FROM && self.writeback == Writeback::Early {
                    crate::durable::start_writeback(&file);
                }
                self.set_fd_meta(&file, &meta, &name)?;
                rfs::futimens(&file, &timestamps(meta.mtime)).map_err(io_err("set mtime"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("symlink without a target"))?
                    .into_owned();
                self.replace(&parent, last, || {
                    rfs::symlinkat(OsStr::from_bytes(&target), &parent, last_os)
                })
                .map_err(io_err("create symlink"))?;
                self.set_path_meta(&parent, last, &meta, &name, false)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("hard link without a target"))?
                    .into_owned();
                let tcomps = clean(&target).map_err(|r| {
                    unsafe_err(&format!(
                        "hard link target {:?} is outside the layer: {r}",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                let Some((tlast, tparent)) = tcomps.split_last() else {
                    return Err(unsafe_err("hard link to the layer root"));
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tparent_fd = self.resolve(tparent, &name, false)?;
                self.replace(&parent, last, || {
                    rfs::linkat(
                        &tparent_fd,
                        OsStr::from_bytes(tlast),
                        &parent,
                        last_os,
                        AtFlags::empty(),
                    )
                })
                .map_err(|e| {
                    if e == Errno::NOENT {
                        unsafe_err(&format!(
                            "hard link target {:?} does not exist in this layer",
                            String::from_utf8_lossy(&target)
                        ))
                    } else {
                        UnpackError::Io {
                            entry: name.clone(),
                            op: "create hard link",
                            source: e.into(),
                        }
                    }
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.replace(&parent, last, || {
                    rfs::mknodat(
                        &parent,
                        last_os,
                        ft,
                        Mode::from_raw_mode(0o600),
                        rfs::makedev(major, minor),
                    )
                })
                .map_err(io_err("create device node or fifo"))?;
                self.set_path_meta(&parent, last, &meta, &name, true)?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    entry: name,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    /// Copies a file's content through one large reused buffer: it is
    /// decompressed into it and written from it in a few big calls
    /// (`io::copy`'s 8 KiB stack buffer made a pull spend more time in
    /// write calls and small inflate calls than in the bytes themselves).
    fn copy_content(&mut self, from: &mut impl Read, to: &mut File) -> io::Result<u64> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BUFFER];
        }
        let mut total = 0u64;
        loop {
            let n = match from.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            to.write_all(&self.buf[..n])?;
            total += n as u64;
        }
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let bad = |what: &str| UnpackError::Unsafe {
            entry: name.to_string(),
            reason: format!("unreadable {what} in tar header"),
        };
        // Some writers leave numeric fields empty (all NUL); GNU tar reads
        // those as 0, and so does berth. Anything else unparsable is refused.
        let old = h.as_old();
        let num = |v: io::Result<u64>, raw: &[u8], what: &str| -> Result<u64, UnpackError> {
            match v {
                Ok(n) => Ok(n),
                Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
                Err(_) => Err(bad(what)),
            }
        };
        let mut uid = num(h.uid(), &old.uid, "uid")?;
        let mut gid = num(h.gid(), &old.gid, "gid")?;
        let mode = num(h.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777;
        let mut mtime = num(h.mtime(), &old.mtime, "mtime")?;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|source| UnpackError::Io {
            entry: name.to_string(),
            op: "read PAX extensions",
            source,
        })? {
            for ext in exts {
                let ext = ext.map_err(|source| UnpackError::Io {
                    entry: name.to_string(),
                    op: "read PAX extension",
                    source,
                })?;
                let Ok(key) = ext.key() else { continue };
                // PAX carries what the octal header fields cannot hold
                // (ids above 2097151, sub-second or far-future times).
                let pax_num = |v: &[u8]| -> Result<u64, UnpackError> {
                    let text = std::str::from_utf8(v).map_err(|_| bad(key))?;
                    if text.starts_with('-') {
                        // Before 1970: clamp rather than refuse.
                        return Ok(0);
                    }
                    let whole = text.split('.').next().unwrap_or(text);
                    whole.parse::<u64>().map_err(|_| bad(key))
                };
                match key {
                    "uid" => uid = pax_num(ext.value_bytes())?,
                    "gid" => gid = pax_num(ext.value_bytes())?,
                    "mtime" => mtime = pax_num(ext.value_bytes())?,
                    _ => {}
                }
                if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                    if xname.starts_with("trusted.overlay.") {
                        return Err(UnpackError::Unsafe {
                            entry: name.to_string(),
                            reason: format!("carries overlay's own xattr {xname}"),
                        });
                    }
                    xattrs.push((xname.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let uid = u32::try_from(uid).map_err(|_| bad("uid"))?;
        let gid = u32::try_from(gid).map_err(|_| bad("gid"))?;
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Owner, then mode (chown clears setuid/setgid), then xattrs, on an open fd.
    fn set_fd_meta(&self, fd: &impl AsFd, meta: &Meta, name: &str) -> Result<(), UnpackError> {
        let io = |op: &'static str| {
            move |e: Errno| UnpackError::Io {
                entry: name.to_string(),
                op,
                source: e.into(),
            }
        };
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
        )
        .map_err(io("change owner"))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(io("change mode"))?;
        for (k, v) in &meta.xattrs {
            rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty()).map_err(io("set xattr"))?;
        }
        Ok(())
    }

    /// The same for entries that cannot be opened (symlinks, devices, fifos):
    /// everything goes through the parent's fd and a single name, never followed.
    fn set_path_meta(
        &self,
        parent: &OwnedFd,
        last: &[u8],
        meta: &Meta,
        name: &str,
        chmod: bool,
    ) -> Result<(), UnpackError> {
        let io = |op: &'static str| {
            move |e: Errno| UnpackError::Io {
                entry: name.to_string(),
                op,
                source: e.into(),
            }
        };
        let last_os = OsStr::from_bytes(last);
        rfs::chownat(
            parent,
            last_os,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io("change owner"))?;
        if chmod {
            rfs::chmodat(
                parent,
                last_os,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(io("change mode"))?;
        }
        if !meta.xattrs.is_empty() {
            // The parent is reached through its own fd's proc link; the last
            // component is not followed by l*xattr.
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(last);
            let p = OsStr::from_bytes(&p);
            for (k, v) in &meta.xattrs {
                rfs::lsetxattr(p, k.as_str(), v, XattrFlags::empty()).map_err(io("set xattr"))?;
            }
        }
        rfs::utimensat(
            parent,
            last_os,
            &timestamps(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io("set mtime"))?;
        Ok(())
    }

    /// Opens (creating if needed) an entry's parent directory. Tar writers
    /// group entries by directory, so the last parent is kept open; it is
    /// forgotten whenever anything is removed, since a removal may have
    /// replaced a directory on its path.
    fn open_parent(&mut self, comps: &[&[u8]], name: &str) -> Result<Rc<OwnedFd>, UnpackError> {
        let key = join(comps);
        if let Some((k, fd)) = &self.parent_cache {
            if *k == key {
                return Ok(Rc::clone(fd));
            }
        }
        let fd = Rc::new(self.resolve(comps, name, true)?);
        self.parent_cache = Some((key, Rc::clone(&fd)));
        Ok(fd)
    }

    /// Runs `create`; if the name is taken, removes what is there (a whole
    /// tree for a directory) and runs it again. Trying first saves a stat
    /// per entry in the common case of a fresh name.
    fn replace<T>(
        &mut self,
        parent: &OwnedFd,
        last: &[u8],
        create: impl Fn() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match create() {
            Err(Errno::EXIST) => {}
            other => return other,
        }
        self.parent_cache = None;
        Self::remove_existing(parent, last)?;
        create()
    }

    /// Opens the directory `comps` beneath the root, creating missing
    /// directories (0755, root-owned, as Docker does) when `create`.
    fn resolve(&self, comps: &[&[u8]], name: &str, create: bool) -> Result<OwnedFd, UnpackError> {
        let open = |c: &[&[u8]]| -> Result<OwnedFd, Errno> {
            let path = if c.is_empty() { b".".to_vec() } else { join(c) };
            rfs::openat2(
                self.root,
                OsStr::from_bytes(&path),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            )
        };
        let refuse = |e: Errno, c: &[&[u8]]| -> UnpackError {
            let at = String::from_utf8_lossy(&join(c)).into_owned();
            match e {
                Errno::XDEV => UnpackError::Unsafe {
                    entry: name.to_string(),
                    reason: format!("resolving {at:?} goes through a symlink that leads outside the layer directory"),
                },
                Errno::LOOP => UnpackError::Unsafe {
                    entry: name.to_string(),
                    reason: format!("resolving {at:?} goes through a symlink loop"),
                },
                Errno::NOTDIR => UnpackError::Unsafe {
                    entry: name.to_string(),
                    reason: format!("{at:?} on its path is not a directory"),
                },
                Errno::NOENT if !create => UnpackError::Unsafe {
                    entry: name.to_string(),
                    reason: format!("directory {at:?} does not exist in this layer"),
                },
                Errno::NOENT => UnpackError::Unsafe {
                    entry: name.to_string(),
                    reason: format!("resolving {at:?} goes through a dangling symlink"),
                },
                other => UnpackError::Io {
                    entry: name.to_string(),
                    op: "open parent directory beneath the layer root",
                    source: other.into(),
                },
            }
        };
        match open(comps) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(refuse(e, comps)),
        }
        let mut cur = open(&[]).map_err(|e| refuse(e, &[]))?;
        for i in 0..comps.len() {
            match open(&comps[..=i]) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    let comp = OsStr::from_bytes(comps[i]);
                    match rfs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(UnpackError::Io {
                                entry: name.to_string(),
                                op: "create missing parent directory",
                                source: e.into(),
                            })
                        }
                    }
                    cur = open(&comps[..=i]).map_err(|e| refuse(e, &comps[..=i]))?;
                    // mkdir's mode went through the umask; Docker's implicit dirs are 0755.
                    rfs::fchmod(&cur, Mode::from_raw_mode(0o755)).map_err(|e| UnpackError::Io {
                        entry: name.to_string(),
                        op: "set mode of missing parent directory",
                        source: e.into(),
                    })?;
                }
                Err(e) => return Err(refuse(e, &comps[..=i])),
            }
        }
        Ok(cur)
    }

    /// Removes whatever is at `parent/last` (a whole tree for a directory);
    /// absence is fine.
    fn remove_existing(parent: &OwnedFd, last: &[u8]) -> Result<(), Errno> {
        let last_os = OsStr::from_bytes(last);
        let st = match rfs::statat(parent, last_os, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree_at(parent.as_fd(), last_os)
        } else {
            rfs::unlinkat(parent, last_os, AtFlags::empty())
        }
    }

    /// Directory mtimes are set last, deepest first, since creating entries
    /// inside a directory changes its mtime.
    fn finish_dir_times(&mut self) -> Result<(), UnpackError> {
        for (path, mtime) in self.dir_times.drain(..).rev() {
            let shown = String::from_utf8_lossy(&path).into_owned();
            let fd = rfs::openat2(
                self.root,
                OsStr::from_bytes(&path),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            );
            // A later entry may have replaced the directory; nothing to date then.
            let Ok(fd) = fd else { continue };
            rfs::futimens(&fd, &timestamps(mtime)).map_err(|e| UnpackError::Io {
                entry: shown,
                op: "set directory mtime",
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// Removes the directory `name` inside `parent` and all it holds, without
/// following symlinks.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let fd = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rfs::Dir::read_from(&fd)?;
    while let Some(ent) = dir.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let n = OsStr::from_bytes(n);
        if ent.file_type() == FileType::Directory {
            remove_tree_at(fd.as_fd(), n)?;
        } else {
            match rfs::unlinkat(&fd, n, AtFlags::empty()) {
                Err(Errno::ISDIR) => remove_tree_at(fd.as_fd(), n)?,
                other => other?,
            }
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}
