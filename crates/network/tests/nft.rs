//! Berth's nftables table against the real kernel: what `sync`, `add_ports`, `remove_ports`
//! and `delete` leave in the ruleset (read back with `nft -j`, the tests' only use of the
//! binary), and a published port carrying real bytes from the host to a server inside a
//! network namespace.
//!
//! Needs root and the `nft` binary (Debian's `nftables`); without them each test says why and
//! does nothing. Every test uses its own table, bridge, namespace and subnet, and removes them
//! in a Drop guard, also when it fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use network::nft::{Firewall, NetworkRules, PortMapping, Proto};
use network::ports;
use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

fn pid() -> u32 {
    std::process::id()
}

/// Why this test cannot run here, if it cannot.
fn cannot_run() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (CAP_NET_ADMIN) to change nftables");
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("needs the nft binary to read the ruleset back (apt-get install nftables)");
    }
    None
}

macro_rules! require_kernel {
    ($name:literal) => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIPPED {}: {}", $name, why);
            return;
        }
    };
}

/// Deletes the table (through the binary, independent of the code under test) on drop.
struct TableGuard(String);

impl TableGuard {
    fn new() -> TableGuard {
        TableGuard(format!("berth_t{}_{}", pid(), next()))
    }
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.0])
            .output();
    }
}

fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .expect("run nft")
        .status
        .success()
}

fn listing(table: &str) -> Value {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", table])
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft list table inet {table}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nft -j prints JSON")
}

fn objects<'a>(v: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v["nftables"]
        .as_array()
        .expect("nftables array")
        .iter()
        .filter_map(move |o| o.get(kind))
}

fn chain<'a>(v: &'a Value, name: &str) -> &'a Value {
    objects(v, "chain")
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("chain {name} in {v}"))
}

fn rules<'a>(v: &'a Value, chain: &str) -> Vec<&'a Value> {
    objects(v, "rule").filter(|r| r["chain"] == chain).collect()
}

fn comments(v: &Value, chain: &str) -> Vec<String> {
    rules(v, chain)
        .iter()
        .map(|r| r["comment"].as_str().unwrap_or("").to_string())
        .collect()
}

// serde_json sorts object keys, so the JSON text of an expression below is in key order.

/// The listing without handles, which change on every replace.
fn without_handles(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "handle")
                .map(|(k, v)| (k.clone(), without_handles(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_handles).collect()),
        other => other.clone(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn mapping(host_port: u16, container: &str, container_port: u16) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port,
        proto: Proto::Tcp,
        container_ip: ip(container),
        container_port,
    }
}

/// A subnet for this test process: 10.(150 + pid % 100).N.0/24, N from the counter.
fn subnet_octets() -> (u8, u8) {
    (150 + (pid() % 100) as u8, (next() % 250) as u8)
}

fn network(bridge: &str, subnets: &[String], internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.to_string(),
        subnets: subnets.iter().map(|s| s.parse().expect("subnet")).collect(),
        internal,
        masquerade: true,
    }
}

#[test]
fn sync_makes_the_chains_and_rules_and_is_idempotent() {
    require_kernel!("sync_makes_the_chains_and_rules_and_is_idempotent");
    let table = TableGuard::new();
    let n = next();
    let (br_a, br_i) = (format!("bta{}_{n}", pid()), format!("bti{}_{n}", pid()));
    let (x, y) = subnet_octets();
    let a = network(
        &br_a,
        &[
            format!("10.{x}.{y}.0/24"),
            format!("fd00:b{x:x}:{y:x}::/64"),
        ],
        false,
    );
    let internal = network(&br_i, &[format!("10.{x}.{y}.128/25")], true);
    let ports = vec![(
        "c1".to_string(),
        vec![
            mapping(18080, &format!("10.{x}.{y}.2"), 80),
            PortMapping {
                host_ip: Some(ip("127.0.0.1")),
                host_port: 15353,
                proto: Proto::Udp,
                container_ip: ip(&format!("10.{x}.{y}.2")),
                container_port: 53,
            },
        ],
    )];
    let mut fw = Firewall::new(&table.0).expect("firewall");
    fw.sync(&[a.clone(), internal.clone()], &ports)
        .expect("first sync");

    let v = listing(&table.0);
    for (name, kind, hook, prio) in [
        ("prerouting", "nat", "prerouting", -100),
        ("output", "nat", "output", -100),
        ("postrouting", "nat", "postrouting", 100),
        ("forward", "filter", "forward", 0),
    ] {
        let c = chain(&v, name);
        assert_eq!(c["type"], kind, "{c}");
        assert_eq!(c["hook"], hook, "{c}");
        assert_eq!(c["prio"], prio, "{c}");
        assert_eq!(c["policy"], "accept", "{c}");
    }
    chain(&v, "ports");
    chain(&v, "isolate");

    // prerouting and output: fib daddr type local jump ports.
    for name in ["prerouting", "output"] {
        let r = rules(&v, name);
        assert_eq!(r.len(), 1, "{name}: {r:?}");
        let text = r[0]["expr"].to_string();
        assert!(
            text.contains(r#""fib":{"flags":["daddr"],"result":"type"}"#),
            "{text}"
        );
        assert!(text.contains(r#""right":"local""#), "{text}");
        assert!(text.contains(r#""jump":{"target":"ports"}"#), "{text}");
    }

    // postrouting: masquerade per subnet, localhost and hairpin per bridge; nothing for the
    // internal network.
    let post = rules(&v, "postrouting");
    assert_eq!(post.len(), 5, "{post:?}");
    let post_text: Vec<String> = post.iter().map(|r| r["expr"].to_string()).collect();
    assert!(post_text.iter().all(|t| t.contains("masquerade")));
    assert!(post_text.iter().all(|t| !t.contains(&br_i)));
    assert!(
        post_text.iter().any(|t| t.contains(&format!(
            r#"{{"match":{{"left":{{"meta":{{"key":"oifname"}}}},"op":"!=","right":"{br_a}"}}}}"#
        )) && t
            .contains(&format!(r#""prefix":{{"addr":"10.{x}.{y}.0","len":24}}"#))),
        "egress masquerade of the v4 subnet: {post_text:#?}"
    );
    assert!(
        post_text
            .iter()
            .any(|t| t.contains("fd00:b") && t.contains(r#""op":"!=""#) && t.contains("oifname")),
        "egress masquerade of the v6 subnet: {post_text:#?}"
    );
    assert!(
        post_text.iter().any(
            |t| t.contains(r#""fib":{"flags":["saddr"],"result":"type"}"#) && t.contains("dnat")
        ),
        "localhost masquerade: {post_text:#?}"
    );

    // forward: established, within each bridge, the internal one cut off, isolation.
    let fwd: Vec<String> = rules(&v, "forward")
        .iter()
        .map(|r| r["expr"].to_string())
        .collect();
    assert_eq!(fwd.len(), 8, "{fwd:#?}");
    assert!(
        fwd[0].contains("established") && fwd[0].contains("related") && fwd[0].contains("accept")
    );
    assert!(fwd
        .iter()
        .any(|t| t.contains(&br_i) && t.contains("drop") && t.contains("iifname")));
    assert!(fwd
        .iter()
        .any(|t| t.contains(&br_i) && t.contains("drop") && t.contains("oifname")));
    assert!(fwd
        .iter()
        .any(|t| t.contains(&br_a) && t.contains(r#""jump":{"target":"isolate"}"#)));
    let isolate: Vec<String> = rules(&v, "isolate")
        .iter()
        .map(|r| r["expr"].to_string())
        .collect();
    assert_eq!(isolate.len(), 3, "{isolate:#?}");
    assert!(isolate[2].contains("accept"));

    // ports: the DNAT rules, tagged with their owner.
    assert_eq!(comments(&v, "ports"), vec!["c1", "c1"]);
    let dnat: Vec<String> = rules(&v, "ports")
        .iter()
        .map(|r| r["expr"].to_string())
        .collect();
    assert!(dnat[0].contains(&format!(
        r#"{{"dnat":{{"addr":"10.{x}.{y}.2","family":"ip","port":80}}}}"#
    )));
    assert!(dnat[0].contains("18080") && dnat[0].contains("tcp"));
    assert!(dnat[1].contains(r#""right":"127.0.0.1""#) && dnat[1].contains("udp"));

    // A second sync with the same input leaves the same table.
    fw.sync(&[a, internal], &ports).expect("second sync");
    assert_eq!(without_handles(&listing(&table.0)), without_handles(&v));

    // A sync with fewer networks replaces the table: nothing of the old ones remains.
    fw.sync(&[], &[]).expect("empty sync");
    let empty = listing(&table.0);
    assert_eq!(
        objects(&empty, "rule").count(),
        3,
        "only the two jumps to ports and the established rule: {empty}"
    );
}

#[test]
fn add_and_remove_ports_touch_only_their_owner() {
    require_kernel!("add_and_remove_ports_touch_only_their_owner");
    let table = TableGuard::new();
    let bridge = format!("btp{}_{}", pid(), next());
    let (x, y) = subnet_octets();
    let c = |last: u8| format!("10.{x}.{y}.{last}");
    let net = network(&bridge, &[format!("10.{x}.{y}.0/24")], false);
    let mut fw = Firewall::new(&table.0).expect("firewall");

    // Before the table exists, adding ports says which table is missing and why.
    let err = fw
        .add_ports("early", &[mapping(20000, &c(9), 80)])
        .expect_err("no table yet");
    assert_eq!(err.errno(), Some(2), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&table.0) && text.contains("chain ports"),
        "{text}"
    );

    fw.sync(&[net], &[("a".into(), vec![mapping(20001, &c(2), 80)])])
        .expect("sync");
    let before = listing(&table.0);

    fw.add_ports(
        "b",
        &[mapping(20002, &c(3), 80), mapping(20003, &c(3), 443)],
    )
    .expect("add b");
    fw.add_ports("c", &[mapping(20004, &c(4), 80)])
        .expect("add c");
    assert_eq!(
        comments(&listing(&table.0), "ports"),
        vec!["a", "b", "b", "c"]
    );

    fw.remove_ports("b").expect("remove b");
    let after = listing(&table.0);
    assert_eq!(comments(&after, "ports"), vec!["a", "c"]);
    for name in ["prerouting", "output", "postrouting", "forward", "isolate"] {
        assert_eq!(
            without_handles(&Value::Array(
                rules(&after, name).into_iter().cloned().collect()
            )),
            without_handles(&Value::Array(
                rules(&before, name).into_iter().cloned().collect()
            )),
            "chain {name} changed"
        );
    }
    // The remaining rules are the very same rules (same handles), not copies.
    let handles = |v: &Value| -> Vec<Value> {
        rules(v, "ports")
            .iter()
            .filter(|r| r["comment"] != "b")
            .map(|r| r["handle"].clone())
            .collect()
    };
    assert_eq!(handles(&after)[0], handles(&before)[0]);

    fw.remove_ports("nobody")
        .expect("an owner without ports is fine");
    fw.remove_ports("b").expect("removing twice is fine");
    fw.remove_ports("a").expect("remove a");
    fw.remove_ports("c").expect("remove c");
    assert!(comments(&listing(&table.0), "ports").is_empty());

    fw.delete().expect("delete");
    fw.remove_ports("a").expect("no table: nothing to remove");
}

#[test]
fn a_large_sync_commits_in_one_transaction() {
    require_kernel!("a_large_sync_commits_in_one_transaction");
    let table = TableGuard::new();
    let (x, y) = subnet_octets();
    let ports: Vec<(String, Vec<PortMapping>)> = (0..2000u16)
        .map(|i| {
            (
                format!("c{i}"),
                vec![mapping(
                    30000 + i,
                    &format!("10.{x}.{y}.{}", 2 + i % 250),
                    80,
                )],
            )
        })
        .collect();
    let mut fw = Firewall::new(&table.0).expect("firewall");
    fw.sync(&[], &ports).expect("sync 2000 published ports");
    assert_eq!(comments(&listing(&table.0), "ports").len(), 2000);
    fw.remove_ports("c1999")
        .expect("remove one owner among many");
    let left = comments(&listing(&table.0), "ports");
    assert_eq!(left.len(), 1999);
    assert_eq!(left.last().map(String::as_str), Some("c1998"));
}

#[test]
fn delete_leaves_no_table_and_other_tables_alone() {
    require_kernel!("delete_leaves_no_table_and_other_tables_alone");
    let table = TableGuard::new();
    // Someone else's table, with a chain named like berth's and a rule in it.
    let other = TableGuard::new();
    run(&["nft", "add", "table", "inet", &other.0]);
    run(&["nft", "add", "chain", "inet", &other.0, "ports"]);
    run(&[
        "nft", "add", "rule", "inet", &other.0, "ports", "tcp", "dport", "22", "accept", "comment",
        "\"x\"",
    ]);
    let other_before = without_handles(&listing(&other.0));
    let mut fw = Firewall::new(&table.0).expect("firewall");
    fw.delete().expect("deleting a missing table is fine");
    fw.sync(&[], &[("x".into(), vec![mapping(20010, "10.0.0.2", 80)])])
        .expect("sync");
    assert!(table_exists(&table.0));
    fw.delete().expect("delete");
    assert!(!table_exists(&table.0), "table {} is still there", table.0);
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft list tables");
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&table.0));
    fw.delete().expect("deleting twice is fine");
    fw.sync(&[], &[]).expect("sync again");
    fw.remove_ports("x").expect("remove x");
    fw.delete().expect("delete again");
    assert_eq!(without_handles(&listing(&other.0)), other_before);
}

#[test]
fn bad_names_are_refused_before_the_kernel_sees_them() {
    let err = Firewall::new("no spaces").expect_err("refused");
    assert!(err.to_string().contains("\"no spaces\""), "{err}");
    let Ok(mut fw) = Firewall::new("berth_t_unused") else {
        panic!("a valid name opens a socket, even without root");
    };
    let err = fw
        .sync(&[network("a-bridge-name-too-long", &[], false)], &[])
        .expect_err("refused");
    assert!(err.to_string().contains("at most 15 bytes"), "{err}");
    let err = fw.add_ports("", &[]).expect_err("refused");
    assert!(err.to_string().contains("owner"), "{err}");
}

/// A bridge with an address, a network namespace with a veth on the bridge, removed on drop.
struct TestNet {
    bridge: String,
    veth: String,
    netns: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestNet {
    fn new(bridge_cidr: &str, container_cidr: &str) -> TestNet {
        let n = next();
        // Made before anything else, so a failing step still cleans up what came before it.
        let net = TestNet {
            bridge: format!("btb{}_{n}", pid()),
            veth: format!("btv{}_{n}", pid()),
            netns: format!("berth-nft-{}-{n}", pid()),
        };
        let veth = net.veth.as_str();
        run(&["ip", "link", "add", &net.bridge, "type", "bridge"]);
        run(&["ip", "addr", "add", bridge_cidr, "dev", &net.bridge]);
        run(&["ip", "link", "set", &net.bridge, "up"]);
        // What the link module does for every bridge: 127.0.0.1 may be routed out of it.
        std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )
        .expect("set route_localnet");
        run(&["ip", "netns", "add", &net.netns]);
        run(&[
            "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", &net.netns,
        ]);
        run(&["ip", "link", "set", veth, "master", &net.bridge, "up"]);
        run(&[
            "ip",
            "-n",
            &net.netns,
            "addr",
            "add",
            container_cidr,
            "dev",
            "eth0",
        ]);
        run(&["ip", "-n", &net.netns, "link", "set", "eth0", "up"]);
        run(&["ip", "-n", &net.netns, "link", "set", "lo", "up"]);
        net
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleted by hand, the pair goes at once; left to the namespace's teardown, it would
        // outlive the test for as long as anything keeps the namespace alive.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

const GREETING: &[u8] = b"hello from inside the namespace\n";

/// Moves the current thread into network namespace `netns` (setns changes only the calling
/// thread's namespace).
fn enter(netns: &str) -> Result<(), String> {
    let path = format!("/run/netns/{netns}");
    let ns = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {path}: {e}"))
}

/// Runs `f` on a thread inside network namespace `netns`.
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = netns.to_string();
    std::thread::spawn(move || {
        enter(&netns).expect("enter the namespace");
        f()
    })
    .join()
    .expect("the thread in the namespace panicked")
}

/// A TCP server inside `netns` on `port` that greets `connections` clients, then returns;
/// each client's address arrives on the receiver as it connects. Returns once it listens.
fn serve_in(
    netns: &str,
    port: u16,
    connections: usize,
) -> (std::thread::JoinHandle<()>, mpsc::Receiver<SocketAddr>) {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (peer_tx, peer_rx) = mpsc::channel();
    let netns = netns.to_string();
    let handle = std::thread::spawn(move || {
        let listener = enter(&netns).and_then(|()| {
            // [::] without IPV6_V6ONLY takes IPv4 clients too.
            TcpListener::bind(("::", port)).map_err(|e| format!("listen on {port}: {e}"))
        });
        let listener = match listener {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        for _ in 0..connections {
            if let Ok((mut stream, peer)) = listener.accept() {
                let _ = peer_tx.send(peer);
                let _ = stream.write_all(GREETING);
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server starts within 10 s")
        .expect("the server listens");
    (handle, peer_rx)
}

/// The address the server saw the last client come from.
fn peer(peers: &mpsc::Receiver<SocketAddr>) -> IpAddr {
    peers
        .recv_timeout(Duration::from_secs(5))
        .expect("the server reports its client")
        .ip()
        .to_canonical()
}

fn fetch(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    got
}

#[test]
fn a_published_port_reaches_the_container_from_localhost_and_the_bridge_address() {
    require_kernel!("a_published_port_reaches_the_container_from_localhost_and_the_bridge_address");
    let (x, y) = subnet_octets();
    let gateway: Ipv4Addr = format!("10.{x}.{y}.1").parse().expect("gateway");
    let container: Ipv4Addr = format!("10.{x}.{y}.2").parse().expect("container");
    let table = TableGuard::new();
    let net = TestNet::new(&format!("{gateway}/24"), &format!("{container}/24"));

    let reservation = ports::reserve(None, Proto::Tcp, 0).expect("reserve a host port");
    let host_port = reservation.port();
    let err = ports::reserve(None, Proto::Tcp, host_port).expect_err("the port is taken");
    assert_eq!(
        err.to_string(),
        format!("Bind for 0.0.0.0:{host_port} failed: port is already allocated")
    );

    let (server, _peers) = serve_in(&net.netns, 8000, 2);
    let mut fw = Firewall::new(&table.0).expect("firewall");
    fw.sync(
        &[network(&net.bridge, &[format!("10.{x}.{y}.0/24")], false)],
        &[],
    )
    .expect("sync");
    fw.add_ports(
        "web",
        &[PortMapping {
            host_ip: None,
            host_port,
            proto: Proto::Tcp,
            container_ip: IpAddr::V4(container),
            container_port: 8000,
        }],
    )
    .expect("publish");

    let localhost = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port);
    assert_eq!(fetch(localhost), GREETING, "through 127.0.0.1:{host_port}");
    let bridge_addr = SocketAddr::new(IpAddr::V4(gateway), host_port);
    assert_eq!(fetch(bridge_addr), GREETING, "through {bridge_addr}");
    server.join().expect("server thread");

    // Unpublished, the port is only the reservation's bound socket: refused at once.
    fw.remove_ports("web").expect("unpublish");
    let refused = TcpStream::connect_timeout(&localhost, Duration::from_secs(5))
        .expect_err("nothing listens on the host port");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    drop(reservation);
}

/// Network namespaces removed on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, role: &str) -> String {
        let name = format!("berth-nft-{}-{}-{role}", pid(), next());
        run(&["ip", "netns", "add", &name]);
        self.0.push(name.clone());
        // Interfaces made here skip duplicate address detection, so IPv6 works at once.
        in_netns(&name, || {
            std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0").expect("turn off DAD")
        });
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.0.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Puts a veth named `eth0` with `cidr` (and a default route via `gateway`) into `netns`,
/// its peer `host_end` into `host` on `bridge` (or, without one, with address `host_cidr`).
fn plug(host: &str, host_end: &str, bridge: Option<&str>, netns: &str, cidr: &str, gateway: &str) {
    run(&[
        "ip", "-n", host, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns",
        netns,
    ]);
    match bridge {
        Some(bridge) => run(&[
            "ip", "-n", host, "link", "set", host_end, "master", bridge, "up",
        ]),
        None => run(&["ip", "-n", host, "link", "set", host_end, "up"]),
    }
    run(&["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0"]);
    run(&["ip", "-n", netns, "link", "set", "eth0", "up"]);
    run(&["ip", "-n", netns, "link", "set", "lo", "up"]);
    run(&["ip", "-n", netns, "route", "add", "default", "via", gateway]);
}

fn connect_in(netns: &str, addr: &str) -> std::io::Result<Vec<u8>> {
    let addr: SocketAddr = addr.parse().expect("socket address");
    in_netns(netns, move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got)?;
        Ok(got)
    })
}

/// A whole host in a namespace of its own, so forwarding can be turned on without touching
/// the machine: two bridges with containers, and an "outside" host behind an uplink.
#[test]
fn forwarding_hairpin_isolation_and_egress_in_a_private_host() {
    require_kernel!("forwarding_hairpin_isolation_and_egress_in_a_private_host");
    let mut ns = Namespaces(Vec::new());
    let host = ns.add("host");
    let (c1, c2, c3, outside) = (ns.add("c1"), ns.add("c2"), ns.add("c3"), ns.add("out"));
    let c4 = ns.add("c4");
    for (bridge, cidr) in [
        ("b1", "10.1.1.1/24"),
        ("b2", "10.1.2.1/24"),
        ("b3", "10.1.3.1/24"),
    ] {
        run(&["ip", "-n", &host, "link", "add", bridge, "type", "bridge"]);
        run(&["ip", "-n", &host, "addr", "add", cidr, "dev", bridge]);
        run(&["ip", "-n", &host, "link", "set", bridge, "up"]);
    }
    plug(&host, "v1", Some("b1"), &c1, "10.1.1.2/24", "10.1.1.1");
    plug(&host, "v2", Some("b1"), &c2, "10.1.1.3/24", "10.1.1.1");
    plug(&host, "v3", Some("b2"), &c3, "10.1.2.2/24", "10.1.2.1");
    plug(&host, "v4", Some("b3"), &c4, "10.1.3.2/24", "10.1.3.1");
    plug(&host, "up0", None, &outside, "10.99.0.2/24", "10.99.0.1");
    run(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "10.99.0.1/24",
        "dev",
        "up0",
    ]);
    for (netns, dev, cidr, gateway) in [
        (&host, "b1", "fd01:1::1/64", None),
        (&c1, "eth0", "fd01:1::2/64", Some("fd01:1::1")),
        (&host, "up0", "fd99::1/64", None),
        (&outside, "eth0", "fd99::2/64", Some("fd99::1")),
    ] {
        run(&["ip", "-n", netns, "addr", "add", cidr, "dev", dev, "nodad"]);
        if let Some(gateway) = gateway {
            run(&[
                "ip", "-n", netns, "-6", "route", "add", "default", "via", gateway,
            ]);
        }
    }
    in_netns(&host, || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("enable forwarding");
        std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1")
            .expect("enable IPv6 forwarding");
    });

    let (c1_server, c1_peers) = serve_in(&c1, 8000, 6);
    // Without berth's table, the host routes between its bridges.
    assert_eq!(
        connect_in(&c3, "10.1.1.2:8000").expect("b2 to b1 before sync"),
        GREETING
    );
    assert_eq!(peer(&c1_peers), ip("10.1.2.2"));

    // The firewall's socket belongs to the namespace it was opened in.
    let mut fw = in_netns(&host, || Firewall::new("berth").expect("firewall"));
    let networks = [
        network(
            "b1",
            &["10.1.1.0/24".to_string(), "fd01:1::/64".to_string()],
            false,
        ),
        network("b2", &["10.1.2.0/24".to_string()], false),
        network("b3", &["10.1.3.0/24".to_string()], true),
    ];
    fw.sync(&networks, &[]).expect("sync");
    fw.add_ports(
        "c1",
        &[PortMapping {
            host_ip: None,
            host_port: 9000,
            proto: Proto::Tcp,
            container_ip: ip("10.1.1.2"),
            container_port: 8000,
        }],
    )
    .expect("publish");
    fw.add_ports(
        "c1-v6",
        &[PortMapping {
            host_ip: None,
            host_port: 9000,
            proto: Proto::Tcp,
            container_ip: ip("fd01:1::2"),
            container_port: 8000,
        }],
    )
    .expect("publish over IPv6");

    // Isolation: b2 no longer reaches b1 directly; the SYN is dropped.
    let err = connect_in(&c3, "10.1.1.2:8000").expect_err("isolated");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");

    // Hairpin: c2 reaches its neighbour through the host's address, masqueraded so the
    // reply comes back through the host.
    assert_eq!(connect_in(&c2, "10.1.1.1:9000").expect("hairpin"), GREETING);
    assert_eq!(peer(&c1_peers), ip("10.1.1.1"));

    // From another host: DNATed, the client's own address preserved.
    assert_eq!(
        connect_in(&outside, "10.99.0.1:9000").expect("from outside"),
        GREETING
    );
    assert_eq!(peer(&c1_peers), ip("10.99.0.2"));
    assert_eq!(
        connect_in(&outside, "[fd99::1]:9000").expect("IPv6 from outside"),
        GREETING
    );
    assert_eq!(peer(&c1_peers), ip("fd99::2"));

    // A container of another network reaches the published port too; leaving its own
    // bridge, it is masqueraded like any egress of its network.
    assert_eq!(connect_in(&c3, "10.1.2.1:9000").expect("from b2"), GREETING);
    assert_eq!(peer(&c1_peers), ip("10.1.1.1"));

    // Egress: c1 reaches the outside host, masqueraded behind the uplink's address.
    let (out_server, out_peers) = serve_in(&outside, 7000, 2);
    // b3 is internal: nothing leaves it (the outside host routes back through the host,
    // so only the firewall stops this)...
    let err = connect_in(&c4, "10.99.0.2:7000").expect_err("internal");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    // ...and nothing enters it: nothing listens in c4, so a SYN that arrived would be
    // refused at once; dropped, it times out.
    let err = connect_in(&outside, "10.1.3.2:8000").expect_err("internal");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert_eq!(connect_in(&c1, "10.99.0.2:7000").expect("egress"), GREETING);
    assert_eq!(peer(&out_peers), ip("10.99.0.1"));
    assert_eq!(
        connect_in(&c1, "[fd99::2]:7000").expect("IPv6 egress"),
        GREETING
    );
    assert_eq!(peer(&out_peers), ip("fd99::1"));
    out_server.join().expect("outside server");

    // The last connection lets c1's server finish.
    assert_eq!(
        connect_in(&c2, "10.1.1.2:8000").expect("within b1"),
        GREETING
    );
    assert_eq!(peer(&c1_peers), ip("10.1.1.3"));
    c1_server.join().expect("c1 server");
}
