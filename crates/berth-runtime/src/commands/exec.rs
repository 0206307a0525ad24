//! `exec`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use oci_spec::runtime::{Capability, Process};

use runtime::container::ExecOptions;
use runtime::state::Root;

/// `exec`'s flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The container's id.
    id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// A process.json describing the process (as the spec's `process`).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// A unix socket that receives the pty master.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE).
    #[arg(short, long)]
    env: Vec<String>,
    /// The working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// The user, as UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets.
    #[arg(short = 'c', long)]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// Return once the process runs.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Pass this many descriptors after stdio to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Exec into a paused container too: the process starts when the
    /// container is resumed, and exec waits until then.
    #[arg(long)]
    ignore_paused: bool,
    /// The AppArmor profile of the new process (refused on a host without
    /// AppArmor, unless it is "unconfined").
    #[arg(long)]
    apparmor: Option<String>,
    /// The SELinux label of the new process (refused on a host without
    /// SELinux).
    #[arg(long)]
    process_label: Option<String>,
}

/// `exec`.
pub fn exec(root: &Root, args: ExecArgs) -> Result<i32> {
    let mut process = match &args.process {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            runtime::spec::parse_process(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => process_from_flags(root, &args)?,
    };
    // As runc: the flags override the process's own fields; whether the
    // host can apply them is decided by the library, as for any process.
    if let Some(profile) = &args.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        process.set_selinux_label(Some(label.clone()));
    }
    let opts = ExecOptions {
        console_socket: args.console_socket,
        pid_file: args.pid_file,
        detach: args.detach,
        preserve_fds: args.preserve_fds,
        stdio: None,
        ignore_paused: args.ignore_paused,
    };
    Ok(runtime::container::exec(root, &args.id, &process, &opts)?)
}

/// The container's own process, with the flags' changes, as runc builds it.
fn process_from_flags(root: &Root, args: &ExecArgs) -> Result<Process> {
    if args.command.is_empty() {
        bail!("exec: give a command to run, or --process FILE");
    }
    let record = root.load(&args.id)?;
    let mut p = record
        .config
        .process()
        .clone()
        .context("the container has no process")?;
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &args.env {
        let name = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(name));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let u = p.user_mut();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("--user {user:?}: UID must be a number"))?,
        );
        if let Some(g) = gid {
            u.set_gid(
                g.parse()
                    .with_context(|| format!("--user {user:?}: GID must be a number"))?,
            );
        }
    }
    if !args.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
                .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
