//! The json-file log: its options (`--log-opt`, checked at create) and `docker logs` (the
//! files, then the live stream with `--follow`).

use std::path::PathBuf;

use api_server::{ApiError, LogStream, OutputChunk};
use api_types::models::*;
use api_types::query::*;
use api_types::StdStream;
use bytes::Bytes;
use futures_util::StreamExt;
use monitor_protocol::LogEntry;
use tokio::sync::mpsc;

use crate::state::Status;
use crate::{now, Daemon};

use super::attach::output_stream;
use super::{parse_time, PendingAttach};

/// Log options (`--log-opt`), checked at create as dockerd checks them.
pub(super) fn log_options(host: &HostConfig) -> Result<(u64, u32), ApiError> {
    let Some(lc) = &host.log_config else {
        return Ok((0, 1));
    };
    match lc.typ.as_deref() {
        None | Some("") | Some("json-file") => {}
        Some(other) => {
            return Err(ApiError::NotImplemented(format!(
                "log driver {other} is not supported by berthd yet (only json-file)"
            )))
        }
    }
    let mut max_size = 0u64;
    let mut max_file = 1u32;
    for (k, v) in lc.config.iter().flatten() {
        match k.as_str() {
            "max-size" => {
                max_size = parse_size(v).ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "invalid max-size {v:?}: expected a size like 10m"
                    ))
                })?
            }
            "max-file" => {
                max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "invalid max-file {v:?}: expected a number of at least 1"
                    ))
                })?
            }
            other => {
                return Err(ApiError::InvalidParameter(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )))
            }
        }
    }
    if max_file > 1 && max_size == 0 {
        return Err(ApiError::InvalidParameter(
            "max-file cannot be set without max-size".into(),
        ));
    }
    Ok((max_size, max_file))
}

/// A docker size (`10k`, `10m`, `1g`, plain bytes).
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

impl Daemon {
    pub(super) async fn container_logs(
        &self,
        id: &str,
        query: ContainerLogsQuery,
    ) -> Result<LogStream, ApiError> {
        let c = self.inner.resolve(id)?;
        let record = c.record();
        let tty = record.config.tty == Some(true);
        let parse = |s: &Option<String>| -> Result<Option<i64>, ApiError> {
            match s.as_deref().filter(|s| !s.is_empty() && *s != "0") {
                None => Ok(None),
                Some(s) => {
                    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
                    let secs: i64 = secs
                        .parse()
                        .map_err(|_| ApiError::InvalidParameter(format!("invalid time {s:?}")))?;
                    let nanos: i64 = if frac.is_empty() {
                        0
                    } else {
                        format!("{frac:0<9}")[..9].parse().unwrap_or(0)
                    };
                    Ok(Some(
                        secs.saturating_mul(1_000_000_000).saturating_add(nanos),
                    ))
                }
            }
        };
        let since = parse(&query.since)?;
        let until = parse(&query.until)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        // `until` in the past ends a follow at once; in the future, at that time (dockerd's).
        let live = query.follow
            && record.state.status == Status::Running
            && until.is_none_or(|u| u > now_ns);
        if live {
            // Attached first, so no line falls between the file and the live stream.
            let a = PendingAttach {
                tx: tx.clone(),
                stdin: None,
                stdout: query.stdout,
                stderr: query.stderr,
                detach: None,
            };
            if let Err(e) = self.inner.connect_attach(&c, a).await {
                tracing::debug!("container {}: follow: {e}", c.id);
            }
        }
        let log = self.inner.log_path(&c.id);
        let (max_files, timestamps, tail) = (
            log_options(&record.host_config)
                .map(|(_, n)| n)
                .unwrap_or(1),
            query.timestamps,
            query.tail,
        );
        let (want_out, want_err) = (query.stdout, query.stderr);
        let entries = tokio::task::spawn_blocking(move || {
            let mut files: Vec<PathBuf> = (1..max_files.max(1))
                .rev()
                .map(|n| {
                    let mut s = log.as_os_str().to_owned();
                    s.push(format!(".{n}"));
                    PathBuf::from(s)
                })
                .collect();
            files.push(log);
            let mut out = Vec::new();
            for f in files {
                let Ok(text) = std::fs::read_to_string(&f) else {
                    continue;
                };
                for line in text.lines() {
                    let Ok(e) = serde_json::from_str::<LogEntry>(line) else {
                        continue;
                    };
                    let t = parse_time(&e.time)
                        .and_then(|t| t.timestamp_nanos_opt())
                        .unwrap_or(0);
                    if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                        continue;
                    }
                    let stderr = e.stream == "stderr";
                    if (stderr && !want_err) || (!stderr && !want_out) {
                        continue;
                    }
                    out.push(e);
                }
            }
            if let LogTail::Lines(n) = tail {
                let n = n as usize;
                if out.len() > n {
                    out.drain(..out.len() - n);
                }
            }
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("read logs: {e}")))?;
        let mut chunks = Vec::with_capacity(entries.len());
        for e in entries {
            let stream = if e.stream == "stderr" {
                StdStream::Stderr
            } else {
                StdStream::Stdout
            };
            let data = if timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log
            };
            chunks.push(Ok(OutputChunk {
                stream,
                data: Bytes::from(data),
            }));
        }
        let past = futures_util::stream::iter(chunks);
        if live {
            drop(tx);
            let live = output_stream(rx).map(move |item| {
                item.map(|mut chunk| {
                    if timestamps {
                        let mut d = format!("{} ", now()).into_bytes();
                        d.extend_from_slice(&chunk.data);
                        chunk.data = Bytes::from(d);
                    }
                    chunk
                })
            });
            let live = match until {
                Some(u) => live
                    .take_until(tokio::time::sleep(std::time::Duration::from_nanos(
                        u.saturating_sub(now_ns).max(0) as u64,
                    )))
                    .boxed(),
                None => live.boxed(),
            };
            return Ok(LogStream {
                tty,
                output: past.chain(live).boxed(),
            });
        }
        Ok(LogStream {
            tty,
            output: past.boxed(),
        })
    }
}
