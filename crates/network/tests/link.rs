//! Bridges and veths against the real kernel.
//!
//! Every test runs inside a private "host" network namespace of its own (a thread that
//! unshared CLONE_NEWNET), so the machine's own namespace is never touched: ensure_bridge's
//! ip_forward and the bridges all live and die there. Containers are further namespaces,
//! kept alive by an fd only (no mounts). Traffic goes only to addresses inside these.
//! Needs root; `ip`, `nsenter` and `ping` are used to look, never by the library.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use network::link::{
    attach, detach, ensure_bridge, mac_for, remove_bridge, set_loopback_up, BridgeSpec, Endpoint,
    LinkError,
};
use network::netlink::Netlink;
use network::sysctl;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (loudly) when not root; CI runs as root, where this never skips.
macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: needs root to make network namespaces, bridges and veths");
            return;
        }
    };
}

/// Runs `f` on a thread that sits in a new network namespace of its own: the "host" of the
/// test. Everything it made there goes with the namespace when the thread ends.
fn in_private_host<F: FnOnce() + Send>(f: F) {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare a network namespace for the test's host");
            f()
        });
        if let Err(panic) = h.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// A new network namespace held only by the returned fd (a container's, in the tests).
fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare a network namespace");
        OwnedFd::from(
            std::fs::File::open("/proc/thread-self/ns/net").expect("open the thread's netns"),
        )
    })
    .join()
    .expect("netns thread")
}

/// Names and a subnet for one test.
struct Names {
    bridge: String,
    host_if: String,
    third: u8,
}

fn names() -> Names {
    let n = next();
    let pid = std::process::id();
    Names {
        bridge: format!("bt{pid}{n}"),
        host_if: format!("vt{pid}{n}"),
        third: (n % 250) as u8 + 1,
    }
}

/// Deletes the bridge when the test ends, also on a panic.
struct BridgeGuard(String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        if let Ok(mut nl) = Netlink::open() {
            let _ = remove_bridge(&mut nl, &self.0);
        }
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test address")
}

fn bridge_spec(n: &Names) -> BridgeSpec {
    BridgeSpec {
        name: n.bridge.clone(),
        addresses: vec![net(&format!("10.213.{}.1/24", n.third))],
        mtu: None,
    }
}

fn endpoint(n: &Names, host_if: &str, last: u8) -> Endpoint {
    let ip = std::net::Ipv4Addr::new(10, 213, n.third, last);
    Endpoint {
        bridge: n.bridge.clone(),
        host_ifname: host_if.to_string(),
        ifname: "eth0".into(),
        mac: Some(mac_for(ip)),
        addresses: vec![IpNet::new(ip.into(), 24).expect("prefix")],
        gateway: Some(std::net::Ipv4Addr::new(10, 213, n.third, 1)),
        gateway6: None,
        mtu: None,
    }
}

/// `ip ARGS` in the calling thread's namespace.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip ARGS` inside the namespace `ns`.
fn ip_in(ns: &OwnedFd, args: &[&str]) -> String {
    use std::os::fd::AsRawFd;
    let path = format!("--net=/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
    let out = Command::new("nsenter")
        .arg(path)
        .arg("ip")
        .args(args)
        .output()
        .expect("run nsenter ip");
    assert!(out.status.success(), "nsenter ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `/proc/sys` value as seen inside the namespace `ns`.
fn sysctl_in(ns: &OwnedFd, path: &str) -> String {
    use std::os::fd::AsRawFd;
    let out = Command::new("nsenter")
        .arg(format!(
            "--net=/proc/{}/fd/{}",
            std::process::id(),
            ns.as_raw_fd()
        ))
        .args(["cat", path])
        .output()
        .expect("run nsenter cat");
    assert!(out.status.success(), "nsenter cat {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn host_link_count() -> usize {
    ip(&["-o", "link", "show"]).lines().count()
}

/// Waits (bounded) until `name` is gone from the calling thread's namespace.
fn wait_gone(nl: &mut Netlink, name: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if nl.link_index(name).expect("look up link").is_none() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn attach_gives_the_container_a_working_eth0() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let ns = new_netns();
        let ep = endpoint(&n, &n.host_if, 2);
        attach(&mut nl, ns.as_fd(), &ep).expect("attach");

        let link = ip_in(&ns, &["-o", "link", "show", "eth0"]);
        assert!(link.contains(",UP"), "eth0 is up: {link}");
        let mac = format!("02:42:0a:d5:{:02x}:02", n.third);
        assert!(link.contains(&mac), "eth0 has mac {mac}: {link}");
        let addr = ip_in(&ns, &["-o", "-4", "addr", "show", "dev", "eth0"]);
        let want = format!("10.213.{}.2/24", n.third);
        assert!(addr.contains(&want), "eth0 has {want}: {addr}");
        let route = ip_in(&ns, &["route", "show", "default"]);
        let want = format!("default via 10.213.{}.1 dev eth0", n.third);
        assert!(route.contains(&want), "default route {want}: {route}");
        let lo = ip_in(&ns, &["-o", "link", "show", "lo"]);
        assert!(lo.contains(",UP"), "lo is up: {lo}");
        // A v4-only endpoint has no IPv6 address, as with dockerd: not even a link-local one.
        assert_eq!(ip_in(&ns, &["-o", "-6", "addr", "show", "dev", "eth0"]), "");
        let accept_ra = sysctl_in(&ns, "/proc/sys/net/ipv6/conf/eth0/accept_ra");
        assert_eq!(accept_ra, "0", "eth0 ignores router advertisements");

        // The library's own view from inside agrees.
        let mut inside = Netlink::open_in(ns.as_fd()).expect("netlink inside");
        let idx = inside
            .link_index("eth0")
            .expect("look up eth0")
            .expect("eth0 exists");
        let mut addrs = inside.addresses(idx).expect("addresses");
        addrs.retain(|a| a.addr().is_ipv4());
        assert_eq!(addrs, vec![net(&format!("10.213.{}.2/24", n.third))]);
        assert!(inside.routes().expect("routes").contains(&net("0.0.0.0/0")));

        let host_end = ip(&["-o", "link", "show", &n.host_if]);
        assert!(
            host_end.contains(&format!("master {}", n.bridge)),
            "host end on the bridge: {host_end}"
        );
        assert!(host_end.contains(",UP"), "host end up: {host_end}");

        // The host reaches the container through the bridge.
        let target = format!("10.213.{}.2", n.third);
        match Command::new("ping").args(["-c1", "-W1", &target]).output() {
            Ok(out) => assert!(out.status.success(), "ping {target}: {out:?}"),
            Err(e) => {
                eprintln!("SKIPPED the ping check: cannot run ping ({e}); install iputils-ping")
            }
        }
    });
}

#[test]
fn a_second_attach_with_the_same_host_name_fails_and_leaves_nothing() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let ns1 = new_netns();
        attach(&mut nl, ns1.as_fd(), &endpoint(&n, &n.host_if, 2)).expect("first attach");
        let links = host_link_count();

        let ns2 = new_netns();
        let err = attach(&mut nl, ns2.as_fd(), &endpoint(&n, &n.host_if, 3))
            .expect_err("second attach with the same host name");
        let text = err.to_string();
        eprintln!("second attach: {text}");
        assert!(text.contains(&n.host_if), "error names the veth: {text}");
        assert!(text.contains(&n.bridge), "error names the bridge: {text}");
        assert!(text.contains("File exists"), "error says why: {text}");
        assert_eq!(host_link_count(), links, "no extra link on the host");
        let mut inside2 = Netlink::open_in(ns2.as_fd()).expect("netlink in ns2");
        assert_eq!(inside2.link_index("eth0").expect("look up"), None);
        // The first container keeps its link.
        let mut inside1 = Netlink::open_in(ns1.as_fd()).expect("netlink in ns1");
        assert!(inside1.link_index("eth0").expect("look up").is_some());
        assert!(nl.link_index(&n.host_if).expect("look up").is_some());
    });
}

#[test]
fn a_failure_after_the_veth_exists_removes_it() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let links = host_link_count();
        let ns = new_netns();
        let mut ep = endpoint(&n, &n.host_if, 2);
        // A gateway off the container's subnet: the route is refused after the veth exists.
        ep.gateway = Some(std::net::Ipv4Addr::new(10, 214, 0, 1));
        let err = attach(&mut nl, ns.as_fd(), &ep).expect_err("unreachable gateway");
        eprintln!("attach with an unreachable gateway: {err}");
        assert!(
            matches!(err, LinkError::Netlink(_)),
            "a netlink error, not a cleanup failure: {err}"
        );
        assert!(err.to_string().contains("10.214.0.1"), "{err}");
        assert_eq!(nl.link_index(&n.host_if).expect("look up"), None);
        assert_eq!(host_link_count(), links);
    });
}

#[test]
fn dropping_the_namespace_frees_the_host_veth() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let ns = new_netns();
        attach(&mut nl, ns.as_fd(), &endpoint(&n, &n.host_if, 2)).expect("attach");
        assert!(nl.link_index(&n.host_if).expect("look up").is_some());
        drop(ns);
        assert!(
            wait_gone(&mut nl, &n.host_if, Duration::from_secs(20)),
            "the host end outlived its peer's namespace"
        );
    });
}

#[test]
fn detach_removes_the_pair_and_refuses_what_is_not_a_veth() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let ns = new_netns();
        attach(&mut nl, ns.as_fd(), &endpoint(&n, &n.host_if, 2)).expect("attach");
        detach(&mut nl, &n.host_if).expect("detach");
        assert_eq!(nl.link_index(&n.host_if).expect("look up"), None);
        let mut inside = Netlink::open_in(ns.as_fd()).expect("netlink inside");
        assert_eq!(inside.link_index("eth0").expect("look up"), None);
        detach(&mut nl, &n.host_if).expect("detaching again is fine");
        let err = detach(&mut nl, &n.bridge).expect_err("a bridge is not a veth");
        assert!(matches!(err, LinkError::WrongKind { .. }), "{err}");
    });
}

#[test]
fn ensure_bridge_is_idempotent_and_sets_what_dockerd_sets() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        let mut spec = bridge_spec(&n);
        spec.addresses
            .push(net(&format!("fd42:213:{}::1/64", n.third)));
        spec.mtu = Some(1400);
        let first = ensure_bridge(&mut nl, &spec).expect("ensure bridge");
        let second = ensure_bridge(&mut nl, &spec).expect("ensure bridge again");
        assert_eq!(first, second);
        let mut addrs = nl.addresses(first).expect("addresses");
        addrs.retain(|a| !a.addr().is_ipv6() || !a.to_string().starts_with("fe80"));
        addrs.sort();
        let mut want = spec.addresses.clone();
        want.sort();
        assert_eq!(addrs, want, "each address once");
        let link = ip(&["-d", "-o", "link", "show", &n.bridge]);
        assert!(link.contains(",UP"), "{link}");
        assert!(link.contains("mtu 1400"), "{link}");
        assert!(link.contains("stp_state 0"), "{link}");
        assert!(link.contains("forward_delay 0"), "{link}");
        let rd = |p: std::path::PathBuf| sysctl::read(&p).expect("read sysctl");
        assert_eq!(rd(sysctl::ipv4_forward()), "1");
        assert_eq!(rd(sysctl::ipv4_conf(&n.bridge, "route_localnet")), "1");
        assert_eq!(rd(sysctl::ipv6_conf(&n.bridge, "accept_ra")), "0");
        assert_eq!(rd(sysctl::ipv6_conf("all", "forwarding")), "1");
        assert_eq!(rd(sysctl::ipv6_conf("default", "forwarding")), "1");
        let routes = nl.routes().expect("routes");
        assert!(
            routes.contains(&net(&format!("10.213.{}.0/24", n.third))),
            "{routes:?}"
        );
        assert!(
            routes.contains(&net(&format!("fd42:213:{}::/64", n.third))),
            "{routes:?}"
        );

        remove_bridge(&mut nl, &n.bridge).expect("remove");
        assert_eq!(nl.link_index(&n.bridge).expect("look up"), None);
        remove_bridge(&mut nl, &n.bridge).expect("removing again is fine");
    });
}

#[test]
fn ensure_bridge_refuses_a_link_that_is_not_a_bridge() {
    require_root!();
    in_private_host(|| {
        let n = names();
        ip(&[
            "link", "add", "name", &n.bridge, "type", "veth", "peer", "name", &n.host_if,
        ]);
        let mut nl = Netlink::open().expect("netlink");
        let err = ensure_bridge(&mut nl, &bridge_spec(&n)).expect_err("a veth is no bridge");
        assert!(err.to_string().contains("is a veth, not a bridge"), "{err}");
        let err = remove_bridge(&mut nl, &n.bridge).expect_err("nor removable as one");
        assert!(matches!(err, LinkError::WrongKind { .. }), "{err}");
        nl.delete_link(&n.bridge).expect("delete the veth");
        nl.delete_link(&n.bridge)
            .expect("a missing link counts as deleted");
    });
}

#[test]
fn attach_with_ipv6_adds_the_v6_default_route() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        let mut spec = bridge_spec(&n);
        spec.addresses
            .push(net(&format!("fd42:213:{}::1/64", n.third)));
        ensure_bridge(&mut nl, &spec).expect("ensure bridge");
        let ns = new_netns();
        let mut ep = endpoint(&n, &n.host_if, 2);
        ep.addresses
            .push(net(&format!("fd42:213:{}::2/64", n.third)));
        ep.gateway6 = Some(format!("fd42:213:{}::1", n.third).parse().expect("v6"));
        ep.mtu = Some(1400);
        attach(&mut nl, ns.as_fd(), &ep).expect("attach");
        let route = ip_in(&ns, &["-6", "route", "show", "default"]);
        let want = format!("default via fd42:213:{}::1 dev eth0", n.third);
        assert!(route.contains(&want), "{want}: {route}");
        let addr = ip_in(&ns, &["-o", "-6", "addr", "show", "dev", "eth0"]);
        let line = addr
            .lines()
            .find(|l| l.contains(&format!("fd42:213:{}::2/64", n.third)))
            .unwrap_or_else(|| panic!("eth0 has its v6 address: {addr}"));
        assert!(!line.contains("tentative"), "no DAD wait: {line}");
        let link = ip_in(&ns, &["-o", "link", "show", "eth0"]);
        assert!(link.contains("mtu 1400"), "{link}");
        let accept_ra = sysctl_in(&ns, "/proc/sys/net/ipv6/conf/eth0/accept_ra");
        assert_eq!(accept_ra, "0", "eth0 ignores router advertisements");
    });
}

#[test]
fn set_loopback_up_brings_lo_up() {
    require_root!();
    let ns = new_netns();
    assert!(!ip_in(&ns, &["-o", "link", "show", "lo"]).contains(",UP"));
    set_loopback_up(ns.as_fd()).expect("lo up");
    let lo = ip_in(&ns, &["-o", "link", "show", "lo"]);
    assert!(lo.contains(",UP"), "{lo}");
}

#[test]
fn errors_name_the_operation_and_the_object() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let ns = new_netns();
        let err =
            attach(&mut nl, ns.as_fd(), &endpoint(&n, &n.host_if, 2)).expect_err("no such bridge");
        assert!(matches!(err, LinkError::NoBridge { .. }), "{err}");
        let err = nl
            .add_address(999_999, net("10.213.0.2/24"))
            .expect_err("no such link");
        let text = err.to_string();
        assert!(
            text.contains("add address 10.213.0.2/24 to link 999999"),
            "{text}"
        );
        assert_eq!(err.errno(), Some(19), "{text}");
        // A file that is not a network namespace: the kernel refuses the veth, nothing is left.
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let links = host_link_count();
        let not_a_netns = OwnedFd::from(std::fs::File::open("/dev/null").expect("open /dev/null"));
        let err = attach(&mut nl, not_a_netns.as_fd(), &endpoint(&n, &n.host_if, 2))
            .expect_err("not a netns");
        assert!(err.to_string().contains("create veth"), "{err}");
        assert_eq!(host_link_count(), links);
        let mut ep = endpoint(&n, "a-name-much-too-long", 2);
        ep.bridge = n.bridge.clone();
        let err = attach(&mut nl, ns.as_fd(), &ep).expect_err("long name");
        assert!(matches!(err, LinkError::InvalidName { .. }), "{err}");
    });
}

/// Not a benchmark (benchmarks live in bench/): prints the median time of one attach so a
/// reader sees the order of magnitude. Asserts nothing about time.
#[test]
fn attach_time_is_printed() {
    require_root!();
    in_private_host(|| {
        let n = names();
        let mut nl = Netlink::open().expect("netlink");
        let _guard = BridgeGuard(n.bridge.clone());
        ensure_bridge(&mut nl, &bridge_spec(&n)).expect("ensure bridge");
        let namespaces: Vec<OwnedFd> = (0..50).map(|_| new_netns()).collect();
        let mut times = Vec::new();
        for (i, ns) in namespaces.iter().enumerate() {
            let host_if = format!("vt{}m{i}", std::process::id());
            let ep = endpoint(&n, &host_if, 10 + i as u8);
            let start = Instant::now();
            attach(&mut nl, ns.as_fd(), &ep).expect("attach");
            times.push(start.elapsed());
        }
        times.sort();
        eprintln!(
            "attach: median {:?}, min {:?}, max {:?} over {} runs",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
    });
}
