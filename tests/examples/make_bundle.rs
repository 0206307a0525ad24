//! Makes a persistent busybox bundle for benchmarks: `make_bundle DIR [ARG...]` writes
//! `DIR/rootfs` and `DIR/config.json` (the tests' default spec running ARG..., `true` if none).
//! DIR must not exist yet. Used by bench/runtime.sh so that the benchmark runs the same bundle
//! the tests do.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_tests::Bundle;

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(target) = argv.next().map(PathBuf::from) else {
        eprintln!("usage: make_bundle DIR [ARG...]");
        return ExitCode::from(2);
    };
    let args: Vec<String> = argv.collect();
    let args: Vec<&str> = if args.is_empty() {
        vec!["true"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    if target.exists() {
        eprintln!(
            "make_bundle: {} already exists; give a new directory",
            target.display()
        );
        return ExitCode::FAILURE;
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let made = Bundle::new_in(&parent).and_then(|b| {
        let b = b.args(&args);
        b.write_spec()?;
        Ok(b.keep())
    });
    let dir = match made {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("make_bundle: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Made beside the target, so the rename stays on one filesystem.
    if let Err(e) = std::fs::rename(&dir, &target) {
        eprintln!(
            "make_bundle: move {} to {}: {e}",
            dir.display(),
            target.display()
        );
        return ExitCode::FAILURE;
    }
    println!("{}", target.display());
    ExitCode::SUCCESS
}
