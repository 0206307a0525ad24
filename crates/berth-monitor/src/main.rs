//! `berth-monitor CONFIG`: the per-container monitor berthd starts. It reads the monitor
//! configuration berthd wrote, makes the container and detaches (the process berthd started
//! exits 0 once the container is made, or 1 with the cause on stderr); the detached monitor
//! supervises the container until it exits. All behaviour lives in the `monitor` crate.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(config), None) = (args.next(), args.next()) else {
        eprintln!("usage: berth-monitor CONFIG.json");
        return ExitCode::from(2);
    };
    match monitor::launch(&PathBuf::from(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
