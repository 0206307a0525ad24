//! The container's log in docker's json-file format: one JSON object per line,
//! `{"log":"…","stream":"stdout","time":"RFC 3339 with nanoseconds"}`, rotated
//! by size into `<log>.1`, `<log>.2`, … (oldest has the highest number).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use monitor_protocol::LogEntry;

/// Docker splits a line longer than this into several entries (its 16 KiB buffer).
const MAX_ENTRY: usize = 16 * 1024;

/// A failure to write or rotate the log.
#[derive(Debug, thiserror::Error)]
#[error("container log {path}: {op}: {source}")]
pub struct LogError {
    /// The file.
    pub path: PathBuf,
    /// The operation.
    pub op: &'static str,
    /// The cause.
    pub source: std::io::Error,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (or the terminal).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The open json-file log.
#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    /// Opens (appending) the log at `path`.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Self, LogError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output; whole lines become entries, a trailing partial line waits for its end.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<(), LogError> {
        let i = stream as usize;
        self.partial[i].extend_from_slice(data);
        while let Some(pos) = self.partial[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=pos).collect();
            self.entry(stream, &line)?;
        }
        while self.partial[i].len() >= MAX_ENTRY {
            let piece: Vec<u8> = self.partial[i].drain(..MAX_ENTRY).collect();
            self.entry(stream, &piece)?;
        }
        Ok(())
    }

    /// Writes out partial lines (at the container's exit).
    pub fn flush(&mut self) -> Result<(), LogError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.entry(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), LogError> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.name().to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let line = monitor_protocol::to_line(&entry).map_err(|e| LogError {
            path: self.path.clone(),
            op: "encode entry",
            source: std::io::Error::other(e),
        })?;
        if self.max_size > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line).map_err(|e| LogError {
            path: self.path.clone(),
            op: "write",
            source: e,
        })?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let err = |path: &Path, op| {
            let path = path.to_path_buf();
            move |source| LogError { path, op, source }
        };
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))
                        .map_err(err(&from, "rotate"))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))
                .map_err(err(&self.path, "rotate"))?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0).map_err(err(&self.path, "truncate"))?;
        }
        self.size = 0;
        Ok(())
    }
}

/// The path of the `n`th rotated file (1 is the newest).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError {
            path: path.to_path_buf(),
            op: "open",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<LogEntry> {
        std::fs::read_to_string(path)
            .expect("read log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a json line"))
            .collect()
    }

    #[test]
    fn lines_become_entries_and_partials_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path, 0, 1).expect("open");
        log.write(Stream::Stdout, b"hello\nwor").expect("write");
        log.write(Stream::Stderr, b"oops\n").expect("write");
        log.write(Stream::Stdout, b"ld").expect("write");
        log.flush().expect("flush");
        let e = entries(&path);
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world")
            ]
        );
        assert!(chrono::DateTime::parse_from_rfc3339(&e[0].time).is_ok());
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path, 200, 3).expect("open");
        for i in 0..40 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .expect("write");
        }
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(std::fs::metadata(&p).expect("stat").len() <= 200);
        }
        let last = entries(&path);
        assert_eq!(last.last().expect("an entry").log, "line 39\n");
    }
}
