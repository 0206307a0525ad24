//! `create` and `run`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use runtime::container::CreateOptions;
use runtime::state::Root;

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The container's id.
    id: String,
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the init's pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty master (when process.terminal is true).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Pass this many descriptors after stdio to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Do not give the container a session keyring of its own.
    #[arg(long)]
    no_new_keyring: bool,
}

impl CreateArgs {
    fn options(self) -> CreateOptions {
        CreateOptions {
            id: self.id,
            bundle: self.bundle,
            pid_file: self.pid_file,
            console_socket: self.console_socket,
            console_stream: None,
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            stdio: None,
        }
    }
}

/// `run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once the container runs, without waiting for it.
    #[arg(short, long)]
    detach: bool,
}

/// `create`.
pub fn create(root: &Root, args: CreateArgs) -> Result<i32> {
    runtime::container::create(root, &args.options())?;
    Ok(0)
}

/// `run`.
pub fn run(root: &Root, args: RunArgs) -> Result<i32> {
    Ok(runtime::container::run(
        root,
        &args.create.options(),
        args.detach,
    )?)
}
