//! Layer tars made from directories, without mounting anything: the diff of
//! a container's writable layer (overlay's upper directory, its whiteout
//! devices and opaque xattrs turned back into `.wh.` entries, as image
//! layers carry them), and the flattened filesystem of a layer stack (what
//! `docker export` writes), merged here with overlay's rules.
//!
//! Entries are written in sorted order with PAX xattrs, so the same tree
//! always gives the same tar and hence the same diff ID (build caches rely
//! on that). Overlay's own `trusted.overlay.*` xattrs are never exported.

use crate::digest::{Digest, HashingWriter};
use crate::unpack::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Errors writing a layer tar from a directory.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the tree or writing the tar failed.
    #[error("exporting {path}: {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ExportError + 'a {
    move |source| ExportError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What writing a layer tar produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportStats {
    /// SHA-256 of the tar written (its diff ID).
    pub diff_id: Digest,
    /// Bytes of tar written.
    pub size: u64,
    /// Entries written.
    pub entries: u64,
}

struct Writer<W: Write> {
    builder: tar::Builder<HashingWriter<W>>,
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    let len = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let n = rustix::fs::lgetxattr(path, name, &mut value[..])?;
        out.push((name.to_string(), value[..n].to_vec()));
    }
    Ok(out)
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    rustix::fs::lgetxattr(dir, OVERLAY_OPAQUE_XATTR, &mut buf[..])
        .is_ok_and(|n| n == 1 && buf[0] == b'y')
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>, ExportError> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        names.push(e.map_err(io_err("list directory", dir))?.file_name());
    }
    names.sort();
    Ok(names)
}

impl<W: Write> Writer<W> {
    fn new(w: W) -> Self {
        Writer {
            builder: tar::Builder::new(HashingWriter::new(w)),
            links: HashMap::new(),
            entries: 0,
        }
    }

    fn header(m: &Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(u64::from(m.uid()));
        h.set_gid(u64::from(m.gid()));
        h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Writes the entry at `src` (already lstat'ed as `m`) under the name `rel`.
    fn entry(&mut self, src: &Path, rel: &Path, m: &Metadata) -> Result<(), ExportError> {
        let xa = xattrs(src).map_err(io_err("read xattrs", src))?;
        if !xa.is_empty() {
            let keys: Vec<(String, &[u8])> = xa
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), &v[..]))
                .collect();
            self.builder
                .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
                .map_err(io_err("write PAX header for", src))?;
        }
        self.entries += 1;
        let ft = m.file_type();
        let w = |e| ExportError::Io {
            op: "write tar entry for",
            path: src.to_path_buf(),
            source: e,
        };
        if ft.is_dir() {
            let mut h = Self::header(m, tar::EntryType::Directory);
            let mut name = rel.as_os_str().as_bytes().to_vec();
            name.push(b'/');
            return self
                .builder
                .append_data(
                    &mut h,
                    Path::new(std::ffi::OsStr::from_bytes(&name)),
                    io::empty(),
                )
                .map_err(w);
        }
        if ft.is_symlink() {
            let target = fs::read_link(src).map_err(io_err("read symlink", src))?;
            let mut h = Self::header(m, tar::EntryType::Symlink);
            return self.builder.append_link(&mut h, rel, target).map_err(w);
        }
        if m.nlink() > 1 && !ft.is_dir() {
            let key = (m.dev(), m.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = Self::header(m, tar::EntryType::Link);
                return self.builder.append_link(&mut h, rel, first).map_err(w);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            let mut h = Self::header(m, tar::EntryType::Regular);
            h.set_size(m.len());
            let f = File::open(src).map_err(io_err("open", src))?;
            return self
                .builder
                .append_data(&mut h, rel, io::Read::take(f, m.len()))
                .map_err(w);
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets cannot be carried in a tar; docker skips them too.
            self.entries -= 1;
            return Ok(());
        };
        let mut h = Self::header(m, kind);
        let dev = m.rdev();
        let _ = h.set_device_major(rustix::fs::major(dev));
        let _ = h.set_device_minor(rustix::fs::minor(dev));
        self.builder
            .append_data(&mut h, rel, io::empty())
            .map_err(w)
    }

    /// An empty marker file (`.wh.NAME`, `.wh..wh..opq`).
    fn marker(&mut self, rel: &Path) -> Result<(), ExportError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(0);
        h.set_mtime(0);
        self.entries += 1;
        self.builder
            .append_data(&mut h, rel, io::empty())
            .map_err(io_err("write whiteout entry", rel))
    }

    fn finish(self) -> Result<ExportStats, ExportError> {
        let entries = self.entries;
        let hw = self
            .builder
            .into_inner()
            .map_err(io_err("finish tar", Path::new("-")))?;
        let (mut w, diff_id, size) = hw.finish();
        w.flush().map_err(io_err("flush", Path::new("-")))?;
        Ok(ExportStats {
            diff_id,
            size,
            entries,
        })
    }
}

/// Writes overlay's upper directory `upper` as a layer tar: whiteout devices
/// become `.wh.NAME` entries and opaque directories get a `.wh..wh..opq`
/// entry, so the tar applies on the image's layers like any other layer.
pub fn write_layer_diff(upper: &Path, writer: impl Write) -> Result<ExportStats, ExportError> {
    let mut w = Writer::new(writer);
    diff_dir(&mut w, upper, Path::new(""))?;
    w.finish()
}

fn diff_dir<W: Write>(w: &mut Writer<W>, root: &Path, rel: &Path) -> Result<(), ExportError> {
    let dir = root.join(rel);
    for name in sorted_names(&dir)? {
        let src = dir.join(&name);
        let r = rel.join(&name);
        let m = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        if is_whiteout(&m) {
            let mut wh = OsString::from(WHITEOUT_PREFIX);
            wh.push(&name);
            w.marker(&rel.join(wh))?;
            continue;
        }
        w.entry(&src, &r, &m)?;
        if m.is_dir() {
            if is_opaque(&src) {
                w.marker(&r.join(OPAQUE_MARKER))?;
            }
            diff_dir(w, root, &r)?;
        }
    }
    Ok(())
}

/// Writes the merged view of a layer stack (`layers`, top layer first:
/// a container's upper directory, then its image's layers from the top) as
/// one tar without whiteouts, merging the directories the way overlay does.
pub fn write_flattened(layers: &[PathBuf], writer: impl Write) -> Result<ExportStats, ExportError> {
    let mut w = Writer::new(writer);
    let all: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    merge_dir(&mut w, &all, Path::new(""))?;
    w.finish()
}

/// `layers` are the layers (top first) in which `rel` is a directory that
/// is visible (no whiteout, no opaque directory and no non-directory above).
fn merge_dir<W: Write>(w: &mut Writer<W>, layers: &[&Path], rel: &Path) -> Result<(), ExportError> {
    // Each name comes from the topmost layer that has it; a whiteout hides it.
    let mut chosen: BTreeMap<OsString, Option<usize>> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let dir = layer.join(rel);
        for name in sorted_names(&dir)? {
            if chosen.contains_key(&name) {
                continue;
            }
            let p = dir.join(&name);
            let m = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
            chosen.insert(name, if is_whiteout(&m) { None } else { Some(i) });
        }
        if is_opaque(&dir) {
            break;
        }
    }
    for (name, top) in chosen {
        let Some(top) = top else { continue };
        let src = layers[top].join(rel).join(&name);
        let r = rel.join(&name);
        let m = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        w.entry(&src, &r, &m)?;
        if m.is_dir() {
            // Lower layers take part while they hold a directory here; a
            // non-directory or a whiteout ends the stack below.
            let mut below: Vec<&Path> = Vec::new();
            for layer in &layers[top..] {
                let p = layer.join(&r);
                match fs::symlink_metadata(&p) {
                    Ok(lm) if lm.is_dir() => below.push(layer),
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("stat", &p)(e)),
                }
            }
            merge_dir(w, &below, &r)?;
        }
    }
    Ok(())
}
