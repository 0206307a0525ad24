//! `events`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use runtime::state::Root;

/// `events`' flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The container's id.
    id: String,
    /// Print the statistics once and exit.
    #[arg(long)]
    stats: bool,
    /// How often to print statistics when streaming (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    interval: String,
}

/// `events`.
pub fn events(root: &Root, args: EventsArgs) -> Result<i32> {
    if args.stats {
        let event = runtime::container::events::stats(root, &args.id)?;
        println!("{}", serde_json::to_string(&event)?);
        return Ok(0);
    }
    let interval = parse_duration(&args.interval).with_context(|| {
        format!(
            "--interval {:?}: give a duration such as 5s or 500ms",
            args.interval
        )
    })?;
    runtime::container::events::stream(root, &args.id, interval, |event| {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
        }
    })?;
    Ok(0)
}

/// Parses Go-style durations as runc's flag takes them: 5s, 500ms, 1m, 1h.
fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("0s"), None);
    }
}
