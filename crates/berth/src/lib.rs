//! The berth command line: docker's commands, flags, defaults, output formats and exit codes,
//! talking to berthd through the Docker Engine API with the `bollard` client (whose models are
//! the same bollard-stubs the API server uses, so client and server cannot drift).
//!
//! Layout: a library with the logic and a thin binary (`src/main.rs` parses and calls
//! [`main_with_args`]), so the commands, the `--format` engine and the table writer are unit
//! tested without a process, and completions are generated from the same clap definitions.
//! `cli` holds the clap definitions; `connect` finds and pings the daemon (`-H`, `BERTH_HOST`,
//! `DOCKER_HOST`, `/_ping` negotiation); `commands/` has one module per group of verbs
//! (`run` for create/run/start/attach/exec, `container`, `ps`, `image`, `system`, `stream` for
//! attached I/O and the raw terminal); `template` is a hand-written Go-template subset (gtmpl is
//! unmaintained since 2021, gotmpl needs a newer Rust than the workspace's 1.85, and docker's
//! `table` directive is docker's, not Go's); `table` aligns
//! columns as Go's tabwriter; `units` writes sizes and durations as docker does.
//!
//! Must never: hold daemon logic, or use `unsafe` (the terminal goes through rustix).
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod connect;
pub mod error;
pub mod output;
pub mod table;
pub mod template;
pub mod units;

use clap::{CommandFactory, Parser};

use cli::{
    Cli, Command, ContainerCommand, ImageCommand, NetworkCommand, SystemCommand, VolumeCommand,
};
use commands::{container, image, network, ps, run, system, volume};
use error::CliError;

/// Parses `args` (argv), runs the command and returns the process exit code, having printed
/// any error as one line on stderr.
pub fn main_with_args(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // A read of stdin blocked in tokio's blocking pool (attach, -i) cannot be
    // cancelled; dropping the runtime would wait for it, so a session whose
    // container exited could hang until the user pressed a key.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(CliError::Status(code)) => code,
        Err(e) => {
            let text = e.to_string();
            match &e {
                CliError::NoDaemon { .. } => eprintln!("berth: {text}"),
                CliError::BadHost(_) | CliError::Message(..) => {
                    if text.starts_with("berth") || text.starts_with("Error") {
                        eprintln!("{text}");
                    } else {
                        eprintln!("Error: {text}");
                    }
                }
                _ => eprintln!("{text}"),
            }
            e.exit_code()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let host = &connect::HostFlags {
        host: cli.host.clone(),
        tlsverify: cli.tlsverify,
        tlscacert: cli.tlscacert.clone(),
        tlscert: cli.tlscert.clone(),
        tlskey: cli.tlskey.clone(),
    };
    // Commands that need no daemon first.
    match &cli.command {
        Command::Completion(args) => {
            let mut cmd = Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "berth", &mut out);
            output::write_stdout(&String::from_utf8_lossy(&out))?;
            return Ok(0);
        }
        Command::Version(args) => {
            system::version(host, args).await?;
            return Ok(0);
        }
        Command::Logout(args) => {
            commands::login::logout(args)?;
            return Ok(0);
        }
        _ => {}
    }
    let conn = connect::connect(host).await?;
    let conn = &conn;
    match &cli.command {
        Command::Completion(_) | Command::Version(_) | Command::Logout(_) => {}
        Command::Login(a) => commands::login::login(conn, a).await?,
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(conn, a).await?,
        Command::System(SystemCommand::Df(a)) => system::df(conn, a).await?,
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            system::events(conn, a).await?
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::ps(conn, a).await?,
        Command::Run(a) => return run::run(conn, a).await,
        Command::Create(a) => run::create_command(conn, a).await?,
        Command::Start(a) => return run::start(conn, a).await,
        Command::Attach(a) => return run::attach(conn, a).await,
        Command::Exec(a) => return run::exec(conn, a).await,
        Command::Stop(a) => container::stop(conn, a).await?,
        Command::Restart(a) => container::restart(conn, a).await?,
        Command::Kill(a) => container::kill(conn, a).await?,
        Command::Wait(a) => container::wait(conn, a).await?,
        Command::Rm(a) => container::rm(conn, a).await?,
        Command::Logs(a) => container::logs(conn, a).await?,
        Command::Top(a) => container::top(conn, a).await?,
        Command::Xray(a) => commands::xray::xray(conn, a).await?,
        Command::Stats(a) => container::stats(conn, a).await?,
        Command::Inspect(a) => container::inspect(conn, a, None).await?,
        Command::Container(ContainerCommand::Inspect(a)) => {
            container::inspect(conn, a, Some("container")).await?
        }
        Command::Image(ImageCommand::Inspect(a)) => {
            container::inspect(conn, a, Some("image")).await?
        }
        Command::Rename(a) => container::rename(conn, a).await?,
        Command::Pause(a) => container::pause(conn, a).await?,
        Command::Unpause(a) => container::unpause(conn, a).await?,
        Command::Update(a) => container::update(conn, a).await?,
        Command::Container(ContainerCommand::Prune(a)) => container::prune(conn, a).await?,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(conn, a).await?,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            image::history(conn, a).await?
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(conn, a).await?,
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(conn, a).await?,
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(conn, a).await?,
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(conn, a).await?,
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => image::pull(conn, a).await?,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => image::push(conn, a).await?,
        Command::Image(ImageCommand::Prune(a)) => image::prune(conn, a).await?,
        Command::Network(cmd) => match cmd {
            NetworkCommand::Create(a) => network::create(conn, a).await?,
            NetworkCommand::Ls(a) => network::ls(conn, a).await?,
            NetworkCommand::Inspect(a) => network::inspect(conn, a).await?,
            NetworkCommand::Rm(a) => network::rm(conn, a).await?,
            NetworkCommand::Prune(a) => network::prune(conn, a).await?,
            NetworkCommand::Connect(a) => network::connect(conn, a).await?,
            NetworkCommand::Disconnect(a) => network::disconnect(conn, a).await?,
        },
        Command::Port(a) => network::port(conn, a).await?,
        Command::Volume(VolumeCommand::Create(a)) => volume::create(conn, a).await?,
        Command::Volume(VolumeCommand::Ls(a)) => volume::ls(conn, a).await?,
        Command::Volume(VolumeCommand::Inspect(a)) => {
            volume::inspect(conn, &a.volumes, a.format.as_deref()).await?
        }
        Command::Volume(VolumeCommand::Rm(a)) => volume::rm(conn, a).await?,
        Command::Volume(VolumeCommand::Prune(a)) => volume::prune(conn, a).await?,
    }
    Ok(0)
}
