//! One file per subcommand; each parses its flags and calls the runtime library.

mod create;
mod events;
mod exec;
mod list;
mod ps;
mod spec;
mod update;

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;

use runtime::state::Root;

/// The subcommands, as runc names them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (everything but running its program).
    Create(create::CreateArgs),
    /// Run the program of a created container.
    Start {
        /// The container's id.
        id: String,
    },
    /// Create and start a container, and wait for it unless detached.
    Run(create::RunArgs),
    /// Print a container's state as JSON.
    State {
        /// The container's id.
        id: String,
    },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        /// The container's id.
        id: String,
        /// The signal, by name (KILL, SIGKILL) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it holds.
    Delete {
        /// The container's id.
        id: String,
        /// Kill the container first if it is running.
        #[arg(short, long)]
        force: bool,
    },
    /// List containers.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Show a container's processes.
    Ps(ps::PsArgs),
    /// Freeze every process of a container.
    Pause {
        /// The container's id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container's id.
        id: String,
    },
    /// Run another process in a running container.
    Exec(exec::ExecArgs),
    /// Print a container's resource statistics and OOM events.
    Events(events::EventsArgs),
    /// Change a running container's resource limits.
    Update(update::UpdateArgs),
    /// Write a default config.json.
    Spec(spec::SpecArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// runc's checkpoint (CRIU): not supported, refused with a message.
    Checkpoint(NotSupportedArgs),
    /// runc's restore (CRIU): not supported, refused with a message.
    Restore(NotSupportedArgs),
}

/// The arguments of a command berth-runtime refuses: any of runc's flags
/// are taken, so the caller gets the reason rather than a usage error.
#[derive(Debug, clap::Args)]
pub struct NotSupportedArgs {
    /// runc's flags and the container's id.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs one subcommand; returns the process's exit status.
pub fn run(root: &Path, command: Command) -> Result<i32> {
    let open = || Root::open(root);
    match command {
        Command::Create(args) => create::create(&open()?, args),
        Command::Run(args) => create::run(&open()?, args),
        Command::Start { id } => {
            runtime::container::start(&open()?, &id)?;
            Ok(0)
        }
        Command::State { id } => {
            let state = runtime::container::state(&open()?, &id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = runtime::container::parse_signal(&signal)?;
            runtime::container::kill(&open()?, &id, sig, all)?;
            Ok(0)
        }
        Command::Delete { id, force } => {
            runtime::container::delete(&open()?, &id, force)?;
            Ok(0)
        }
        Command::List(args) => list::list(&open()?, args),
        Command::Ps(args) => ps::ps(&open()?, args),
        Command::Pause { id } => {
            runtime::container::pause(&open()?, &id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            runtime::container::resume(&open()?, &id)?;
            Ok(0)
        }
        Command::Exec(args) => exec::exec(&open()?, args),
        Command::Events(args) => events::events(&open()?, args),
        Command::Update(args) => update::update(&open()?, args),
        Command::Spec(args) => spec::spec(args),
        Command::Checkpoint(_) => anyhow::bail!(
            "checkpoint is not supported: berth-runtime has no checkpoint/restore (it does not use CRIU)"
        ),
        Command::Restore(_) => anyhow::bail!(
            "restore is not supported: berth-runtime has no checkpoint/restore (it does not use CRIU)"
        ),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&runtime::features::features())?
            );
            Ok(0)
        }
    }
}
