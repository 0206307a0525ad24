//! Which failures a pull or a push retries, how long it waits in between,
//! and the loop that does it ([`with_retries`]), shared by both.
//!
//! Transient: the connection failed, was reset or timed out (reqwest's
//! connect, request, body and timeout errors), and statuses that say "try
//! later" (408, 429, 5xx, as [`RegistryError::Unavailable`]). Everything
//! else is final: 401/403/404 will not change by asking again, and a digest
//! or size mismatch or a bad manifest means the registry serves something
//! else than it names.
//!
//! The delay doubles from [`RegistryOptions::retry_base_delay`] with each
//! attempt, is capped at [`RegistryOptions::max_retry_delay`], and is drawn
//! at random from its upper half so that many clients failing together do
//! not come back together. A 429's `Retry-After` replaces it (capped too).

use super::client::RegistryOptions;
use super::RegistryError;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Whether asking again may succeed.
pub(crate) fn is_transient(e: &RegistryError) -> bool {
    match e {
        RegistryError::Http { source, .. } => {
            source.is_timeout() || source.is_connect() || source.is_request() || source.is_body()
                // A body cut off inside a chunked or compressed stream.
                || source.is_decode()
        }
        RegistryError::Unavailable { .. } => true,
        _ => false,
    }
}

/// Whether a failure of the first contact (the `/v2/` ping) is worth
/// retrying: "try later" statuses and timeouts are, a refused connection
/// is not (no registry listens there; failing at once is what docker does).
pub(crate) fn is_transient_at_start(e: &RegistryError) -> bool {
    match e {
        RegistryError::Http { source, .. } => source.is_timeout(),
        RegistryError::Unavailable { .. } => true,
        _ => false,
    }
}

/// A random number from the standard library's per-process random keys
/// (no extra dependency for a jitter).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// How long to wait before attempt `attempt + 1` (`attempt` counts from 1)
/// after `e`.
pub(crate) fn delay(options: &RegistryOptions, attempt: u32, e: &RegistryError) -> Duration {
    let cap = options.max_retry_delay;
    if let RegistryError::Unavailable {
        retry_after: Some(after),
        ..
    } = e
    {
        return (*after).min(cap);
    }
    let exp = attempt.saturating_sub(1).min(20);
    let full = options
        .retry_base_delay
        .saturating_mul(1u32 << exp)
        .min(cap);
    let half = full / 2;
    let spread = (full - half).as_nanos() as u64;
    let jitter = if spread == 0 {
        0
    } else {
        random() % (spread + 1)
    };
    half + Duration::from_nanos(jitter)
}

/// Whether to try again after `e`, and after how long: `None` when `e` is
/// final or the retries in `options` are spent. `tries` counts the retries
/// made so far and is incremented when one is granted.
pub(crate) fn next_wait(
    options: &RegistryOptions,
    transient: fn(&RegistryError) -> bool,
    tries: &mut u32,
    e: &RegistryError,
) -> Option<Duration> {
    if *tries >= options.max_retries || !transient(e) {
        return None;
    }
    *tries += 1;
    let wait = delay(options, *tries, e);
    tracing::info!(error = %e, attempt = *tries, ?wait, "transient registry failure; retrying");
    Some(wait)
}

/// Runs `attempt` until it succeeds, fails for good, or the retries in
/// `options` are spent; `notify` hears docker's "Retrying in N seconds"
/// before each wait.
pub(crate) async fn with_retries<T, Fut>(
    options: &RegistryOptions,
    transient: fn(&RegistryError) -> bool,
    mut notify: impl FnMut(String),
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, RegistryError>
where
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => match next_wait(options, transient, &mut tries, &e) {
                Some(wait) => {
                    notify(message(wait));
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
        }
    }
}

/// Docker's wording for the wait, in whole seconds rounded up.
pub(crate) fn message(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if secs == 1 {
        "Retrying in 1 second".to_string()
    } else {
        format!("Retrying in {secs} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_honours_the_cap_and_retry_after() {
        let o = RegistryOptions {
            retry_base_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_millis(1000),
            ..RegistryOptions::default()
        };
        let e = RegistryError::Unavailable {
            registry: "r".into(),
            op: "op".into(),
            status: 503,
            message: String::new(),
            retry_after: None,
        };
        for attempt in 1..=6u32 {
            let full = Duration::from_millis(100 * (1u64 << (attempt - 1))).min(o.max_retry_delay);
            for _ in 0..20 {
                let d = delay(&o, attempt, &e);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        let throttled = RegistryError::Unavailable {
            registry: "r".into(),
            op: "op".into(),
            status: 429,
            message: String::new(),
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(delay(&o, 1, &throttled), o.max_retry_delay);
        assert_eq!(
            message(Duration::from_millis(1500)),
            "Retrying in 2 seconds"
        );
        assert_eq!(message(Duration::from_millis(300)), "Retrying in 1 second");
    }

    #[test]
    fn final_errors_are_not_retried() {
        let nf = RegistryError::NotFound {
            registry: "r".into(),
            op: "op".into(),
            message: "blob unknown".into(),
        };
        assert!(!is_transient(&nf));
        let bad = RegistryError::BadImage {
            reference: "x".into(),
            reason: "y".into(),
        };
        assert!(!is_transient(&bad));
    }
}
