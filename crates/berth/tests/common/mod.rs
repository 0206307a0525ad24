//! What only the CLI's tests add to the shared test double (crates/test-double): runners for
//! the berth binary built with these tests, beside the double's docker runners.

use std::process::Output;

use test_double::{run_logged, run_logged_in_pty, TestServer};

/// Runs the berth CLI built for these tests against a [`TestServer`], as its `docker` runners
/// run docker.
pub trait BerthCli {
    /// Runs berth with `args` and `stdin` (or none), bounded by `timeout`.
    fn berth(&self, args: &[&str], stdin: Option<&str>) -> Output;
    /// Runs berth in a pseudo-terminal (through `script`), as `docker_in_pty`.
    fn berth_in_pty(&self, args: &[&str]) -> Output;
}

impl BerthCli for TestServer {
    fn berth(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args).env_remove("BERTH_HOST");
        run_logged(cmd, &format!("berth {}", args.join(" ")), stdin)
    }

    fn berth_in_pty(&self, args: &[&str]) -> Output {
        let line = format!("{} {}", env!("CARGO_BIN_EXE_berth"), args.join(" "));
        let mut cmd = self.in_pty(&line);
        cmd.env_remove("BERTH_HOST");
        run_logged_in_pty(cmd)
    }
}
