//! `berth-runtime`: a runc-compatible command line over berth's runtime library.
#![forbid(unsafe_code)]

fn main() {}
