//! `update`: new resource limits from flags or from a JSON file (`-r FILE`,
//! `-` for stdin) in the spec's `linux.resources` shape, as containerd sends them.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use runtime::state::Root;

/// `update`'s flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The container's id.
    id: String,
    /// A JSON file with the new linux.resources ("-" reads stdin).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long)]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds per period.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPUs the container may use (e.g. 0-1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000).
    #[arg(long)]
    blkio_weight: Option<u16>,
}

/// `update`.
pub fn update(root: &Root, args: UpdateArgs) -> Result<i32> {
    let resources = match &args.resources {
        Some(path) => {
            let mut bytes = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .context("read resources from stdin")?;
            } else {
                bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            }
            runtime::spec::parse_json::<LinuxResources>(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let record = root.load(&args.id)?;
            let mut r = record
                .config
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .unwrap_or_default();
            let mut mem = r.memory().unwrap_or_default();
            set(&mut mem, args.memory, LinuxMemory::set_limit);
            set(
                &mut mem,
                args.memory_reservation,
                LinuxMemory::set_reservation,
            );
            set(&mut mem, args.memory_swap, LinuxMemory::set_swap);
            r.set_memory(Some(mem));
            let mut cpu = r.cpu().clone().unwrap_or_default();
            set(&mut cpu, args.cpu_shares, LinuxCpu::set_shares);
            set(&mut cpu, args.cpu_quota, LinuxCpu::set_quota);
            set(&mut cpu, args.cpu_period, LinuxCpu::set_period);
            set(&mut cpu, args.cpuset_cpus.clone(), LinuxCpu::set_cpus);
            set(&mut cpu, args.cpuset_mems.clone(), LinuxCpu::set_mems);
            r.set_cpu(Some(cpu));
            if let Some(limit) = args.pids_limit {
                let mut pids = LinuxPids::default();
                pids.set_limit(limit);
                r.set_pids(Some(pids));
            }
            if let Some(w) = args.blkio_weight {
                let mut blkio = r.block_io().clone().unwrap_or_else(LinuxBlockIo::default);
                blkio.set_weight(Some(w));
                r.set_block_io(Some(blkio));
            }
            r
        }
    };
    runtime::container::update(root, &args.id, &resources)?;
    Ok(0)
}

fn set<T, V>(target: &mut T, value: Option<V>, setter: impl Fn(&mut T, Option<V>) -> &mut T) {
    if let Some(v) = value {
        setter(target, Some(v));
    }
}
