//! `berth-runtime`: a runc-compatible command line over berth's runtime
//! library. It parses arguments, sets up logging, calls one library function
//! and turns its result into output and an exit status; all behaviour lives in
//! the `runtime` crate.
#![forbid(unsafe_code)]
// The commands' doc comments are their --help text, printed verbatim:
// runc's `UID[:GID]` notation must stay unescaped there.
#![allow(rustdoc::broken_intra_doc_links)]

mod commands;
mod logging;

use std::path::PathBuf;

use clap::Parser;

/// A runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version = version(), about, long_about = None)]
struct Cli {
    /// Where the runtime keeps container state [default: /run/berth-runtime;
    /// for an ordinary user $XDG_RUNTIME_DIR/berth, else /run/user/UID/berth].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// The log's format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log each phase of the work with its timing.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported: refused).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: commands::Command,
}

fn version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0")
}

fn main() {
    let cli = Cli::parse();
    let _guard = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    if cli.systemd_cgroup {
        logging::fail(&anyhow::anyhow!(
            "--systemd-cgroup: berth-runtime has no systemd cgroup driver; configure the caller to use cgroupfs"
        ));
    }
    let root = cli.root.unwrap_or_else(|| {
        if runtime::rootless::is_rootless() {
            runtime::rootless::default_root_dir()
        } else {
            PathBuf::from("/run/berth-runtime")
        }
    });
    let code = match commands::run(&root, cli.command) {
        Ok(code) => code,
        Err(e) => logging::fail(&e),
    };
    std::process::exit(code);
}
