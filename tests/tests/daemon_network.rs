//! berthd's networking driven by the real docker CLI: the default bridge with published ports
//! (from the host on 127.0.0.1 and on the bridge's address, from a container through the host:
//! hairpin), user-defined networks whose containers find each other by name and alias through
//! the embedded DNS server, `--internal` networks with no way out, isolation between networks,
//! connect and disconnect of a running container, and a berthd killed with -9 and restarted
//! that keeps a running container's published port working. Each berthd has its own bridge,
//! subnets and nftables table; traffic goes only to loopback and to the containers' addresses.
//! At the end: no veth on the test's bridges, no port rule and no address left in use.
//!
//! Needs root, the docker CLI, curl, nft and Debian's busybox-static, and the binaries built
//! first: `cargo build -p berthd -p berth-monitor`.

mod compat_common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use compat_common::berthd::{berthd_with_busybox, stderr, stdout, Berthd};
use compat_common::{require_tool, wait_until};

const HTTPD: &str =
    "mkdir /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 80 -h /www";

/// A TCP port free on the host right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port on loopback")
}

/// `curl -s` of a URL with a short bound; the body, or None when it cannot connect.
fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "2", url])
        .output()
        .expect("run curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The body of `url` once the server behind it answers (bounded wait).
fn wait_http(url: &str) -> String {
    wait_until(&format!("{url} to answer"), Duration::from_secs(20), || {
        curl(url)
    })
}

fn ip_of(d: &Berthd, container: &str, network: &str) -> String {
    d.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ])
    .trim()
    .to_string()
}

fn gateway(d: &Berthd) -> String {
    d.bip().trim_end_matches("/24").to_string()
}

/// The rules of this berthd's nftables table, as `nft` lists them.
fn table_text(d: &Berthd) -> String {
    for family in ["inet", "ip"] {
        let out = Command::new("nft")
            .args(["list", "table", family, &d.table()])
            .output()
            .expect("run nft");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }
    String::new()
}

/// Whether berthd's IPAM files still name `id` as an owner.
fn ipam_holds(d: &Berthd, id: &str) -> bool {
    let dir = d.sandbox.root.join("data/network/ipam");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(id)))
}

fn prepare(name: &str) -> Berthd {
    require_tool("curl", "curl");
    require_tool("nft", "nftables");
    berthd_with_busybox(name)
}

#[test]
fn published_port_reaches_busybox_httpd_from_host_and_containers() {
    let d = prepare("net-publish");
    let port = free_port();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "--expose",
            "8443",
            "busybox",
            "sh",
            "-c",
            HTTPD,
        ])
        .trim()
        .to_string();
    let ip = ip_of(&d, "web", "bridge");
    assert!(
        ip.starts_with(d.pool.trim_end_matches("0.0/16")),
        "address {ip} outside {}",
        d.pool
    );
    // The container's own address, straight over the bridge.
    assert_eq!(wait_http(&format!("http://{ip}/")), "hello-from-berth\n");
    // The published port on loopback (DNAT in the output hook, route_localnet on the bridge)
    // and on the bridge's own address.
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hello-from-berth\n")
    );
    assert_eq!(
        curl(&format!("http://{}:{port}/", gateway(&d))).as_deref(),
        Some("hello-from-berth\n")
    );
    // Hairpin: another container reaches it through the host's published port.
    // (busybox's nc: Debian's static busybox wget crashes in a bare image.)
    let got = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} {port}",
            gateway(&d)
        ),
    ]);
    assert!(got.ends_with("hello-from-berth\n"), "hairpin answer: {got}");
    assert_eq!(
        d.ok(&["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(d.ok(&["port", "web", "80"]), format!("0.0.0.0:{port}\n"));
    // berth prints what docker prints, against the same berthd.
    for args in [
        &["port", "web"][..],
        &["port", "web", "80/tcp"],
        &["ps", "--format", "{{.Names}} {{.Ports}}"],
        &["network", "ls"],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "bridge",
        ],
    ] {
        let b = d.berth(args);
        assert_eq!(stdout(&b), d.ok(args), "berth {args:?} differs from docker");
        assert_eq!(b.status.code(), Some(0), "berth {args:?}: {}", stderr(&b));
    }
    let ps = d.ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=web"]);
    assert!(
        ps.contains(&format!("0.0.0.0:{port}->80/tcp")),
        "ps said: {ps}"
    );
    assert!(ps.contains("8443/tcp"), "ps said: {ps}");
    // A port already published is refused before the second container runs.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("port is already allocated"),
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web2"]).trim(),
        "created"
    );
    // -P publishes exposed ports on ports the kernel picks.
    d.ok(&[
        "run", "-d", "--name", "auto", "-P", "--expose", "80", "busybox", "sh", "-c", HTTPD,
    ]);
    let mapped = d.ok(&["port", "auto", "80"]);
    let auto_port = mapped
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        wait_http(&format!("http://127.0.0.1:{auto_port}/")),
        "hello-from-berth\n"
    );
    assert!(table_text(&d).contains(&port.to_string()));
    d.ok(&["rm", "-f", "web", "web2", "auto"]);
    // Nothing of it is left: no rule naming the port, no address held, no answer.
    let table = table_text(&d);
    assert!(
        !table.contains(&format!("dport {port}")),
        "rules left:\n{table}"
    );
    assert!(
        !ipam_holds(&d, &id),
        "the address of {id} is still allocated"
    );
    assert_eq!(curl(&format!("http://127.0.0.1:{port}/")), None);
    d.finish();
}

#[test]
fn user_networks_resolve_names_and_stay_apart() {
    let d = prepare("net-user");
    d.ok(&["network", "create", "--subnet", &d.subnet(1), "front"]);
    d.ok(&["network", "create", "--subnet", &d.subnet(2), "back"]);
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &d.subnet(3),
        "sealed",
    ]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "front bridge",
        "sealed bridge",
    ] {
        assert!(ls.contains(want), "network ls said: {ls}");
    }
    d.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "--network-alias",
        "alpha",
        "busybox",
        "sleep",
        "600",
    ]);
    let a_ip = ip_of(&d, "app", "front");
    // By name and by alias, through the embedded DNS server named in resolv.conf.
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "app",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "alpha",
    ]);
    let looked = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "nslookup",
        "alpha",
    ]);
    assert!(looked.contains(&a_ip), "nslookup said: {looked}");
    let resolv = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let front_gw = d.subnet(1).replace(".0/24", ".1");
    assert!(
        resolv.contains(&format!("nameserver {front_gw}")),
        "resolv.conf: {resolv}"
    );
    // Another network cannot reach it.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &a_ip,
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "back reached front: {}",
        stdout(&out)
    );
    // An internal network has no route out.
    let routes = d.ok(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ip",
        "route",
    ]);
    assert!(
        !routes.contains("default"),
        "routes on an internal network: {routes}"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &gateway(&d),
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "sealed reached the default bridge"
    );
    // Connected to back while it runs, a is found there too; disconnected, it is gone again.
    d.ok(&["network", "connect", "--alias", "alpha-back", "back", "app"]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "alpha-back",
    ]);
    let inspect = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}{{end}}",
        "back",
    ]);
    assert_eq!(inspect.trim(), "app");
    d.ok(&["network", "disconnect", "back", "app"]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "alpha-back",
    ]);
    assert_ne!(out.status.code(), Some(0), "a is still on back");
    // A network in use is not removed; once free it is, with its bridge.
    let out = d.docker(&["network", "rm", "front"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("active endpoints"),
        "stderr: {}",
        stderr(&out)
    );
    d.ok(&["rm", "-f", "app"]);
    let bridges = d.bridges();
    d.ok(&["network", "rm", "front", "back", "sealed"]);
    for b in bridges.iter().filter(|b| **b != d.bridge) {
        let gone = Command::new("ip")
            .args(["link", "show", b])
            .output()
            .expect("run ip");
        assert!(!gone.status.success(), "bridge {b} is left");
    }
    d.finish();
}

#[test]
fn bad_network_input_is_refused_cleanly() {
    let d = prepare("net-bad");
    let out = d.docker(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("network nosuch not found"),
        "stderr: {}",
        stderr(&out)
    );
    let out = d.docker(&["network", "create", "--subnet", "10.1.2.3/33", "x"]);
    assert_ne!(out.status.code(), Some(0));
    let out = d.docker(&["network", "create", "--subnet", &d.bip(), "x"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a subnet with host bits was accepted"
    );
    d.ok(&["network", "create", "--subnet", &d.subnet(7), "seven"]);
    let out = d.docker(&["network", "create", "--subnet", &d.subnet(7), "again"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "an overlapping subnet was accepted"
    );
    let out = d.docker(&["network", "rm", "bridge"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the default network was removed"
    );
    let out = d.docker(&["run", "--rm", "--ip", "10.9.9.9", "busybox", "true"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "an --ip on the default bridge was accepted"
    );
    // A chosen MAC address is refused, not ignored.
    let out = d.docker(&[
        "run",
        "--rm",
        "--mac-address",
        "02:42:0a:00:00:99",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "a --mac-address was accepted");
    assert!(
        stderr(&out).contains("--mac-address"),
        "stderr: {}",
        stderr(&out)
    );
    let ps = d.ok(&["ps", "-a", "-q"]);
    assert!(ps.trim().is_empty(), "half-made containers: {ps}");
    d.ok(&["network", "rm", "seven"]);
    let ls = d.ok(&["network", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 3, "networks left: {ls}");
    d.finish();
}

#[test]
fn published_port_survives_berthd_kill_9() {
    let mut d = prepare("net-restart");
    let port = free_port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(
        wait_http(&format!("http://127.0.0.1:{port}/")),
        "hello-from-berth\n"
    );
    d.kill9();
    d.spawn();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hello-from-berth\n"),
        "the published port stopped working after berthd restarted"
    );
    assert_eq!(
        d.ok(&["port", "web"]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    // The reservation was taken back: the port is still refused to others.
    let out = d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "stderr: {}", stderr(&out));
    let ps = d.ok(&["ps", "-aq"]);
    for id in ps.split_whitespace() {
        d.ok(&["rm", "-f", id]);
    }
    assert_eq!(curl(&format!("http://127.0.0.1:{port}/")), None);
    d.finish();
}

#[test]
fn ipv6_network_gives_both_families_and_names() {
    let d = prepare("net-v6");
    let octet = d.pool.split('.').nth(1).unwrap_or("0").to_string();
    let v6 = format!("fd00:be:{octet}::/64");
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.subnet(4),
        "--subnet",
        &v6,
        "dual",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "one",
        "--network",
        "dual",
        "busybox",
        "sleep",
        "600",
    ]);
    let v6_addr = d
        .ok(&[
            "inspect",
            "-f",
            "{{(index .NetworkSettings.Networks \"dual\").GlobalIPv6Address}}",
            "one",
        ])
        .trim()
        .to_string();
    assert!(
        v6_addr.starts_with(&format!("fd00:be:{octet}::")),
        "IPv6 address: {v6_addr}"
    );
    let addrs = d.ok(&["exec", "one", "ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&v6_addr), "eth0 inside: {addrs}");
    // Another container reaches it over IPv6, by address and by name (an AAAA answer).
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "ping",
        "-6",
        "-c1",
        "-W2",
        &v6_addr,
    ]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "ping",
        "-6",
        "-c1",
        "-W2",
        "one",
    ]);
    d.ok(&["rm", "-f", "one"]);
    d.ok(&["network", "rm", "dual"]);
    d.finish();
}

#[test]
fn container_mode_static_ips_and_prune() {
    let d = prepare("net-modes");
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &d.subnet(5),
        "--label",
        "keep=no",
        "fixed",
    ]);
    let want = d.subnet(5).replace(".0/24", ".77");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "base",
        "--network",
        "fixed",
        "--ip",
        &want,
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(ip_of(&d, "base", "fixed"), want);
    // --network container: shares base's namespace: the same eth0 address, nothing of its own.
    let addrs = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
    ]);
    assert!(
        addrs.contains(&format!("{want}/24")),
        "addresses in base's namespace: {addrs}"
    );
    // The same address again is refused before anything runs.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "fixed",
        "--ip",
        &want,
        "busybox",
        "true",
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "an address in use was handed out twice"
    );
    // A malformed address, or one of the other family, is refused at create (400; `docker run`
    // exits 125), naming the field, as dockerd does; nothing is created.
    for (flag, bad, field) in [
        ("--ip", "10.9.9.300", "IPv4"),
        ("--ip", "fd00::77", "IPv4"),
        ("--ip6", "10.9.9.9", "IPv6"),
    ] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--name",
            "badip",
            "--network",
            "fixed",
            flag,
            bad,
            "busybox",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{flag} {bad}: {out:?}");
        assert!(
            stderr(&out).contains(&format!("invalid {field} address: {bad}")),
            "{flag} {bad} said: {}",
            stderr(&out)
        );
        let out = d.docker(&["inspect", "badip"]);
        assert_ne!(out.status.code(), Some(0), "{flag} {bad} left a container");
    }
    // A stopped container's static address is given back and taken again at its next start.
    d.ok(&["stop", "-t", "1", "base"]);
    d.ok(&["start", "base"]);
    assert_eq!(ip_of(&d, "base", "fixed"), want);
    d.ok(&["rm", "-f", "base"]);
    // prune removes networks no container uses, and only those matching its filter.
    d.ok(&["network", "create", "--subnet", &d.subnet(6), "spare"]);
    let pruned = d.ok(&["network", "prune", "-f", "--filter", "label=keep=no"]);
    assert!(
        pruned.contains("fixed") && !pruned.contains("spare"),
        "prune said: {pruned}"
    );
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("spare"), "prune said: {pruned}");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().count(), 3, "networks left: {ls}");
    d.finish();
}

#[test]
fn disconnect_and_reconnect_the_default_network() {
    let d = prepare("net-primary");
    d.ok(&["run", "-d", "--name", "lone", "busybox", "sleep", "600"]);
    let ip = ip_of(&d, "lone", "bridge");
    assert!(!ip.is_empty());
    d.ok(&["network", "disconnect", "bridge", "lone"]);
    let links = d.ok(&["exec", "lone", "ls", "/sys/class/net"]);
    assert_eq!(
        links.trim(),
        "lo",
        "interfaces after the disconnect: {links}"
    );
    let nets = d.ok(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "lone"]);
    assert_eq!(nets.trim(), "0");
    // Still disconnected after a restart, until connected again.
    d.ok(&["restart", "-t", "1", "lone"]);
    assert_eq!(d.ok(&["exec", "lone", "ls", "/sys/class/net"]).trim(), "lo");
    d.ok(&["network", "connect", "bridge", "lone"]);
    let links = d.ok(&["exec", "lone", "ls", "/sys/class/net"]);
    assert!(
        links.contains("eth"),
        "interfaces after the connect: {links}"
    );
    assert!(!ip_of(&d, "lone", "bridge").is_empty());
    d.ok(&["rm", "-f", "lone"]);
    d.finish();
}
