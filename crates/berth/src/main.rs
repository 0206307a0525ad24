//! The `berth` binary: all behaviour lives in the `berth_cli` library.
#![forbid(unsafe_code)]

fn main() {
    let code = berth_cli::main_with_args(std::env::args().collect());
    // exit() rather than returning: a blocked read of stdin (attach) must not hold the process.
    std::process::exit(code);
}
