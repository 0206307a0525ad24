//! Health checks (`--health-cmd`, `--health-interval`, …, or the image's HEALTHCHECK): a probe
//! run through the container's monitor like an exec, every interval while the container runs;
//! the status (starting, healthy, unhealthy) and the last five results go to the record, and
//! each change of status is an event (`health_status: healthy`).

use std::sync::Arc;
use std::time::Duration;

use api_server::ApiError;
use api_types::models::generated::{Health, HealthConfig, HealthStatusEnum, HealthcheckResult};
use monitor_protocol::{FrameKind, Request, Response};

use crate::containers::Container;
use crate::state::Status;
use crate::{monitor_client, now, spec, Inner};

/// Docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Output kept per probe, as dockerd keeps it.
const MAX_OUTPUT: usize = 4096;
/// Results kept in the log.
const MAX_LOG: usize = 5;

fn duration(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe's command line, or `None` when health checks are off.
pub fn probe_args(h: &HealthConfig) -> Result<Option<Vec<String>>, ApiError> {
    let Some(test) = h.test.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match test[0].as_str() {
        "NONE" => Ok(None),
        "CMD" if test.len() > 1 => Ok(Some(test[1..].to_vec())),
        "CMD-SHELL" if test.len() == 2 => Ok(Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            test[1].clone(),
        ])),
        _ => Err(ApiError::InvalidParameter(format!(
            "invalid health check test {test:?}: expected [\"CMD\", …], [\"CMD-SHELL\", cmd] or [\"NONE\"]"
        ))),
    }
}

/// Checks a health config as dockerd does (durations of at least 1 ms, retries not negative).
pub fn validate(h: &HealthConfig) -> Result<(), ApiError> {
    probe_args(h)?;
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(v) = v.filter(|v| *v != 0) {
            if v < 1_000_000 {
                return Err(ApiError::InvalidParameter(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
    }
    if h.retries.is_some_and(|r| r < 0) {
        return Err(ApiError::InvalidParameter(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// Runs one probe; returns (exit code, output).
async fn probe(
    inner: &Inner,
    c: &Container,
    args: Vec<String>,
    timeout: Duration,
) -> (i64, String) {
    let record = c.record();
    let process = match spec::process(
        &record,
        args,
        &[],
        None,
        None,
        false,
        &spec::hostname(&record),
    )
    .and_then(|p| serde_json::from_value(p).map_err(|e| ApiError::Internal(e.to_string())))
    {
        Ok(p) => p,
        Err(e) => return (-1, e.to_string()),
    };
    let run = async {
        let conn = monitor_client::connect(
            &inner.socket(c.id()),
            c.id(),
            Request::Exec {
                process: Box::new(process),
                stdin: false,
            },
        )
        .await?;
        if let Response::Error { message } = conn.response {
            return Ok((-1, message));
        }
        let mut reader = conn.reader;
        let mut output = Vec::new();
        let mut code = -1i64;
        while let Ok(Some((kind, data))) = monitor_client::next_frame(&mut reader).await {
            match kind {
                FrameKind::Exit => {
                    if let Some(b) = data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                        code = i32::from_be_bytes(b) as i64;
                    }
                    break;
                }
                _ if output.len() < MAX_OUTPUT => output.extend_from_slice(&data),
                _ => {}
            }
        }
        output.truncate(MAX_OUTPUT);
        Ok::<_, ApiError>((code, String::from_utf8_lossy(&output).into_owned()))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => (-1, e.to_string()),
        Err(_) => (-1, format!("Health check exceeded timeout ({timeout:?})")),
    }
}

/// Starts the checks of a container that just started (`run` is its start count, so the
/// loop ends when this run ends).
pub fn start(inner: Arc<Inner>, c: Arc<Container>, run: u64) {
    let record = c.record();
    let Some(h) = record.config.healthcheck.clone() else {
        return;
    };
    let Ok(Some(args)) = probe_args(&h) else {
        return;
    };
    let interval = duration(h.interval, DEFAULT_INTERVAL);
    let start_interval = duration(h.start_interval, Duration::from_secs(5));
    let start_period = duration(h.start_period, Duration::ZERO);
    let timeout = duration(h.timeout, DEFAULT_TIMEOUT);
    let retries = h.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
    c.set_health(Health {
        status: Some(HealthStatusEnum::STARTING),
        failing_streak: Some(0),
        log: Some(Vec::new()),
    });
    tokio::spawn(async move {
        let began = std::time::Instant::now();
        loop {
            let in_start_period = began.elapsed() < start_period;
            // The check's own schedule (docker's interval), not a wait for an event.
            tokio::time::sleep(if in_start_period {
                start_interval
            } else {
                interval
            })
            .await;
            let rec = c.record();
            if rec.state.status != Status::Running || c.exit_count() != run || rec.state.paused {
                if rec.state.status != Status::Running || c.exit_count() != run {
                    return;
                }
                continue;
            }
            let started = now();
            let (code, output) = probe(&inner, &c, args.clone(), timeout).await;
            if c.exit_count() != run {
                return;
            }
            let before = rec.state.health.clone().unwrap_or_default();
            let mut log = before.log.clone().unwrap_or_default();
            log.push(HealthcheckResult {
                start: Some(started),
                end: Some(now()),
                exit_code: Some(code),
                output: Some(output),
            });
            if log.len() > MAX_LOG {
                log.drain(..log.len() - MAX_LOG);
            }
            let mut streak = before.failing_streak.unwrap_or(0);
            let old = before.status.unwrap_or(HealthStatusEnum::STARTING);
            let status = if code == 0 {
                streak = 0;
                HealthStatusEnum::HEALTHY
            } else if in_start_period && old == HealthStatusEnum::STARTING {
                old
            } else {
                streak += 1;
                if streak >= retries {
                    HealthStatusEnum::UNHEALTHY
                } else {
                    old
                }
            };
            let record = c.set_health(Health {
                status: Some(status),
                failing_streak: Some(streak),
                log: Some(log),
            });
            let _ = inner.persist_state(&record);
            if status != old {
                inner.container_event(&format!("health_status: {status}"), &record);
            }
        }
    });
}
