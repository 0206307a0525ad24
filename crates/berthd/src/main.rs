//! `berthd`: parses dockerd-style flags and the daemon.json file, opens the daemon's state and
//! serves the Docker Engine API until SIGTERM or SIGINT. Containers keep running when berthd
//! stops: each has its own monitor process. All behaviour lives in the `daemon` and
//! `api-server` crates.
// The flags' doc comments are their --help text, printed verbatim:
// `host[:port]` must stay unescaped there.
#![allow(rustdoc::broken_intra_doc_links)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use api_server::{ApiListener, ListenAddr, ServerConfig, ServerTls, SocketOptions, TlsFiles};
use clap::Parser;
use daemon::networks::NetworkConfig;
use daemon::{Daemon, DaemonConfig};

/// berthd's command line, named as dockerd's flags where they overlap.
#[derive(Debug, Parser)]
#[command(name = "berthd", version, about = "The berth container engine daemon")]
struct Args {
    /// Root of persistent state (images, containers, logs).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, bundles, monitors' sockets).
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Where to serve the API, repeatable: unix:///path, or tcp://HOST:PORT (only with
    /// --tlsverify).
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Serve tcp:// hosts with TLS and require client certificates signed by --tlscacert.
    #[arg(long)]
    tlsverify: bool,
    /// TLS without client verification: refused (see --tlsverify).
    #[arg(long)]
    tls: bool,
    /// The CA clients' certificates must be signed by (default ~/.docker/ca.pem).
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The server's TLS certificate (default ~/.docker/cert.pem).
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The server's TLS key (default ~/.docker/key.pem).
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Log level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// The runtime containers use unless they ask for another.
    #[arg(long)]
    default_runtime: Option<String>,
    /// An extra OCI runtime, NAME=PATH.
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// daemon.json: the same settings as a file.
    #[arg(long, default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// The static init `--init` runs as pid 1 (default: docker-init or tini-static on PATH).
    #[arg(long)]
    init_path: Option<PathBuf>,
    /// The cgroup containers' cgroups are made under.
    #[arg(long, default_value = "berth")]
    cgroup_parent: String,
    /// The berth-monitor binary (default: next to berthd).
    #[arg(long)]
    monitor_path: Option<PathBuf>,
    /// A registry (host[:port] or CIDR) spoken to without certificate checks, falling back
    /// to plain http; loopback always is.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// The default bridge's interface ("none": no default network).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. 172.18.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// A pool networks' subnets are taken from: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// The MTU of containers' interfaces.
    #[arg(long)]
    mtu: Option<u32>,
    /// A nameserver every container uses instead of the host's (repeatable).
    #[arg(long)]
    dns: Vec<String>,
}

/// One of daemon.json's `default-address-pools`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePool {
    base: String,
    size: u8,
}

/// daemon.json; unknown keys are refused, as dockerd refuses them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    log_level: Option<String>,
    default_runtime: Option<String>,
    runtimes: Option<BTreeMap<String, serde_json::Value>>,
    insecure_registries: Option<Vec<String>>,
    bridge: Option<String>,
    bip: Option<String>,
    default_address_pools: Option<Vec<FilePool>>,
    mtu: Option<u32>,
    dns: Option<Vec<String>>,
}

/// docker-init or tini-static from the usual places: a static reaper for `--init`.
fn find_init() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    [
        "/usr/libexec/docker",
        "/usr/local/bin",
        "/usr/bin",
        "/usr/sbin",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(path.split(':').filter(|d| !d.is_empty()).map(PathBuf::from))
    .flat_map(|d| [d.join("docker-init"), d.join("tini-static")])
    .find(|p| p.is_file())
}

/// The networking settings, flags over daemon.json.
fn network_config(args: &Args, file: &FileConfig) -> anyhow::Result<NetworkConfig> {
    let bridge = args
        .bridge
        .clone()
        .or_else(|| file.bridge.clone())
        .unwrap_or_else(|| "berth0".into());
    if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
        bail!("--bridge {bridge:?}: an interface name has 1 to 15 characters, no '/' or spaces");
    }
    let bip = match args.bip.clone().or_else(|| file.bip.clone()) {
        Some(b) => {
            let net: ipnet::IpNet = b
                .parse()
                .with_context(|| format!("--bip {b}: not an address with a prefix length"))?;
            if !net.addr().is_ipv4() || net.addr() == net.network() {
                bail!("--bip {b}: give the bridge's IPv4 address and prefix, e.g. 172.18.0.1/16");
            }
            Some(net)
        }
        None => None,
    };
    let mut pools = Vec::new();
    for p in &args.default_address_pool {
        pools.push(
            network::pools::parse_pool(p)
                .map_err(|e| anyhow::anyhow!("--default-address-pool {p}: {e}"))?,
        );
    }
    if pools.is_empty() {
        for p in file.default_address_pools.iter().flatten() {
            let text = format!("base={},size={}", p.base, p.size);
            pools.push(
                network::pools::parse_pool(&text)
                    .map_err(|e| anyhow::anyhow!("default-address-pools {text}: {e}"))?,
            );
        }
    }
    let dns_text: Vec<String> = if args.dns.is_empty() {
        file.dns.clone().unwrap_or_default()
    } else {
        args.dns.clone()
    };
    let dns = dns_text
        .iter()
        .map(|d| {
            d.parse()
                .with_context(|| format!("--dns {d}: not an IP address"))
        })
        .collect::<anyhow::Result<Vec<std::net::IpAddr>>>()?;
    Ok(NetworkConfig {
        bridge,
        bip,
        pools,
        mtu: args.mtu.or(file.mtu),
        dns,
    })
}

/// The listeners to bind: every `-H`, parsed, with the TLS files loaded when a tcp:// host is
/// among them. A tcp:// host without --tlsverify is refused: the API gives root on the host, so
/// berth serves no plain TCP and no TLS without client certificates (dockerd's --tls).
fn listen_plan(
    args: &Args,
    file: &FileConfig,
    hosts: &[String],
) -> anyhow::Result<(Vec<ListenAddr>, Option<ServerTls>)> {
    let addrs = hosts
        .iter()
        .map(|h| ListenAddr::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(tcp) = addrs.iter().find(|a| matches!(a, ListenAddr::Tcp(_))) else {
        return Ok((addrs, None));
    };
    let verify = args.tlsverify || file.tlsverify == Some(true);
    if !verify {
        let refused = Err(api_server::ServeError::PlainTcpRefused(tcp.to_string()));
        if args.tls || file.tls == Some(true) {
            return refused.context(
                "--tls without --tlsverify is not offered: it encrypts but accepts any client",
            );
        }
        return Ok(refused?);
    }
    // dockerd's defaults: the files in ~/.docker.
    let dot_docker = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".docker"))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"));
    let pick = |flag: &Option<PathBuf>, key: &Option<PathBuf>, name: &str| {
        flag.clone()
            .or_else(|| key.clone())
            .unwrap_or_else(|| dot_docker.join(name))
    };
    let files = TlsFiles {
        ca: pick(&args.tlscacert, &file.tlscacert, "ca.pem"),
        cert: pick(&args.tlscert, &file.tlscert, "cert.pem"),
        key: pick(&args.tlskey, &file.tlskey, "key.pem"),
    };
    let tls = ServerTls::load(&files).with_context(|| format!("-H {tcp} with --tlsverify"))?;
    Ok((addrs, Some(tls)))
}

fn read_file_config(path: &Path, explicit: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "unable to configure the daemon with file {}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("read config file {}", path.display())),
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let explicit = std::env::args().any(|a| a.starts_with("--config-file"));
    let file = read_file_config(&args.config_file, explicit)?;
    let network = network_config(&args, &file)?;
    let mut hosts = if args.host.is_empty() {
        file.hosts.clone().unwrap_or_default()
    } else {
        args.host.clone()
    };
    if hosts.is_empty() {
        let exec_root = args
            .exec_root
            .clone()
            .or_else(|| file.exec_root.clone())
            .unwrap_or_else(|| "/run/berth".into());
        hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
    }
    // Before anything else: a refused host or a bad certificate stops berthd at once.
    let (addrs, tls) = listen_plan(&args, &file, &hosts)?;
    let level = args
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| "info".into());
    let filter = match level.as_str() {
        "debug" | "info" | "warn" | "error" => level.clone(),
        "fatal" => "error".into(),
        other => bail!("--log-level {other:?}: expected debug, info, warn, error or fatal"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let mut runtimes = BTreeMap::new();
    for (name, v) in file.runtimes.iter().flatten() {
        let path = v["path"].as_str().with_context(|| {
            format!("daemon.json: runtimes.{name}: expected {{\"path\": \"/path/to/runtime\"}}")
        })?;
        runtimes.insert(name.clone(), PathBuf::from(path));
    }
    for r in &args.add_runtime {
        let Some((name, path)) = r.split_once('=') else {
            bail!("--add-runtime {r:?}: expected NAME=PATH");
        };
        runtimes.insert(name.to_string(), PathBuf::from(path));
    }
    for (name, path) in &runtimes {
        if name == "berth" {
            bail!("runtime name \"berth\" is reserved for berth's own in-process runtime");
        }
        if !path.is_file() {
            bail!("runtime {name}: {} is not a file", path.display());
        }
    }
    let default_runtime = args
        .default_runtime
        .or(file.default_runtime)
        .unwrap_or_else(|| "berth".into());
    if default_runtime != "berth"
        && default_runtime != "runc"
        && !runtimes.contains_key(&default_runtime)
    {
        bail!("--default-runtime {default_runtime}: no such runtime (add it with --add-runtime NAME=PATH)");
    }
    let data_root = args
        .data_root
        .or(file.data_root)
        .unwrap_or_else(|| "/var/lib/berth".into());
    let exec_root = args
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| "/run/berth".into());
    let monitor_path = match args.monitor_path {
        Some(p) => p,
        None => std::env::current_exe()
            .context("find berthd's own path")?
            .with_file_name("berth-monitor"),
    };
    if !monitor_path.exists() {
        bail!(
            "the monitor binary {} does not exist (set --monitor-path)",
            monitor_path.display()
        );
    }
    if let Some(p) = &args.init_path {
        if !p.is_file() {
            bail!("--init-path {}: no such file", p.display());
        }
    }
    let config = DaemonConfig {
        data_root,
        exec_root,
        monitor_path,
        default_runtime,
        runtimes,
        init_path: args.init_path.or_else(find_init),
        cgroup_parent: args.cgroup_parent,
        // dockerd merges the flag's entries with the file's.
        insecure_registries: file
            .insecure_registries
            .unwrap_or_default()
            .into_iter()
            .chain(args.insecure_registry)
            .collect(),
        network,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let mut listeners = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            let listener = match (addr, &tls) {
                (ListenAddr::Tcp(a), Some(tls)) => ApiListener::bind_tls(*a, tls.clone()),
                _ => ApiListener::bind(addr, SocketOptions::default()),
            };
            listeners.push(listener.with_context(|| format!("-H {addr}"))?);
        }
        let daemon = Daemon::open(config).await?;
        let bound: Vec<String> = listeners.iter().map(|l| l.addr().to_string()).collect();
        tracing::info!(hosts = %bound.join(", "), "berthd is serving the Docker Engine API");
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("berthd is stopping; containers keep running under their monitors");
        };
        api_server::serve_all(
            listeners,
            Arc::new(daemon),
            ServerConfig::default(),
            shutdown,
        )
        .await?;
        Ok(())
    })
}
