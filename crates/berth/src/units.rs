//! Sizes and durations written the way docker writes them (go-units: decimal sizes with three
//! significant digits, "About a minute", "3 weeks").

use std::time::Duration;

/// `4.26MB`, `1.23kB`, `0B`: decimal units and three significant digits, as docker's
/// `HumanSizeWithPrecision(size, 3)`.
pub fn human_size(size: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, 3), UNITS[unit])
}

/// Go's `%.{precision}g`: the shortest of fixed and exponent notation with `precision`
/// significant digits and no trailing zeros.
pub fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let exp = value.abs().log10().floor() as i32;
    // Rounding may carry into the next power of ten (999.6 -> 1e+03).
    let sci = format!("{:.*e}", precision.saturating_sub(1), value);
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp_rounded: i32 = e.parse().unwrap_or(exp);
    if exp_rounded < -4 || exp_rounded >= precision as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp_rounded < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp_rounded.abs());
    }
    let decimals = (precision as i32 - 1 - exp_rounded).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `Less than a second`, `About a minute`, `5 hours`, `2 weeks`: docker's `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// How long ago a Unix time was, as docker's "CREATED" column: `2 minutes ago`.
pub fn since(unix_seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let secs = now.saturating_sub(unix_seconds).max(0) as u64;
    format!("{} ago", human_duration(Duration::from_secs(secs)))
}

/// Go's `time.Time.String()` of a Unix time in local time: `2023-11-14 22:13:20 +0000 UTC`.
pub fn go_time_string(unix_seconds: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix_seconds, 0).single() {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                t.format("%Z").to_string()
            };
            format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => String::new(),
    }
}

/// Parses docker's memory sizes (`512m`, `1g`, `1024`, `1.5GB`): binary multiples, as
/// `RAMInBytes`.
pub fn parse_ram(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((value * mult) as i64)
}

/// The first 12 hex digits of an ID, without its `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(7_000_000_000), "7GB");
        assert_eq!(human_size(999_600), "1e+03kB");
    }

    #[test]
    fn durations_read_as_docker_prints_them() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(5), "5 seconds");
        assert_eq!(d(65), "About a minute");
        assert_eq!(d(125), "2 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
        assert_eq!(d(800 * 86400), "2 years");
    }

    #[test]
    fn memory_sizes_parse_as_binary_multiples() {
        assert_eq!(parse_ram("512m"), Some(512 << 20));
        assert_eq!(parse_ram("1g"), Some(1 << 30));
        assert_eq!(parse_ram("100"), Some(100));
        assert_eq!(parse_ram("lots"), None);
    }
}
