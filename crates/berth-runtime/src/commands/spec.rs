//! `spec`: writes a default config.json into the bundle, refusing to
//! overwrite one.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

/// `spec`'s flags.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// A config for an unprivileged user: a user namespace mapping them to root.
    #[arg(long)]
    rootless: bool,
}

/// `spec`.
pub fn spec(args: SpecArgs) -> Result<i32> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = runtime::spec::default_spec(args.rootless);
    let json = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
