//! End-to-end tests of berth's binaries and the fixtures they use.
#![forbid(unsafe_code)]
