//! `ps`: like runc, the table comes from the host's `ps` (with the given
//! options, `-ef` by default) filtered to the container's processes; JSON is
//! the list of pids.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use clap::Args;

use runtime::state::Root;

/// `ps`'s flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// The container's id.
    id: String,
    /// Options for ps(1).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// `ps`.
pub fn ps(root: &Root, args: PsArgs) -> Result<i32> {
    let pids = runtime::container::ps::pids(root, &args.id)?;
    if args.format == "json" {
        let raw: Vec<i32> = pids.iter().map(|p| p.as_raw()).collect();
        println!("{}", serde_json::to_string(&raw)?);
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let wanted: HashSet<String> = pids.iter().map(|p| p.to_string()).collect();
    println!("{header}");
    for line in lines {
        if line
            .split_whitespace()
            .nth(col)
            .is_some_and(|p| wanted.contains(p))
        {
            println!("{line}");
        }
    }
    Ok(0)
}
