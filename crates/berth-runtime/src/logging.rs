//! Logging as runc's callers expect it: text or JSON lines, to stderr or to
//! the `--log` file (containerd reads the last "error" line of that file to
//! tell its user why a create failed).

use std::io::Write;
use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Where errors are reported besides stderr.
static LOG_FILE: std::sync::OnceLock<(std::path::PathBuf, bool)> = std::sync::OnceLock::new();

/// Sets up tracing; `--debug` logs each phase with its timing.
pub fn init(log: Option<&Path>, format: &str, debug: bool) -> Option<()> {
    let level = if debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = format == "json";
    if let Some(path) = log {
        let _ = LOG_FILE.set((path.to_path_buf(), json));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false);
        if json {
            builder.json().flatten_event(true).init();
        } else {
            builder.init();
        }
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Some(())
}

/// Reports a fatal error (on stderr, and as an error line in the log file)
/// and exits with status 1.
///
/// The stderr line says `error:` as runc's `level=error` line does: callers
/// and test suites (youki's contest among them) tell a failed command from
/// that word as well as from the exit status.
pub fn fail(err: &anyhow::Error) -> ! {
    let msg = format!("{err:#}");
    if let Some((path, json)) = LOG_FILE.get() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let line = if *json {
                serde_json::json!({
                    "level": "error",
                    "msg": msg,
                    "time": chrono::Utc::now().to_rfc3339(),
                })
                .to_string()
            } else {
                format!("level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
    eprintln!("berth-runtime: error: {msg}");
    std::process::exit(1)
}
