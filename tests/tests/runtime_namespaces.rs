//! Namespaces as a user sees them from inside: the hostname, `/proc/self/ns` links that differ
//! from the host's for each new namespace and equal the target's for a joined one, and a user
//! namespace's uid and gid maps.

use std::fs;
use std::time::Duration;

use berth_tests::{Bundle, Flavor, Runtime};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// The host's namespace link of `kind` (as `readlink /proc/self/ns/<kind>` prints it).
fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("the host's namespace link")
        .to_string_lossy()
        .into_owned()
}

/// A script printing `kind=<link>` for each namespace kind.
fn ns_script(kinds: &[&str]) -> String {
    kinds
        .iter()
        .map(|k| format!("echo {k}=$(readlink /proc/self/ns/{k})"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse_ns(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn hostname_is_set() {
    let rt = runtime();
    let name = format!("berth-h-{}", std::process::id());
    let out = rt
        .run_ok("host", &bundle().hostname(&name).args(&["hostname"]))
        .expect("run");
    assert_eq!(out.stdout.trim(), name);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("the host's hostname");
    assert_ne!(host.trim(), name, "the host's hostname is untouched");
}

#[test]
fn each_new_namespace_differs_from_the_hosts() {
    let rt = runtime();
    // "cgroup" is not in runc spec's default set: ask for it so that it is checked too.
    let b = bundle().namespace("cgroup", None);
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let out = rt.run_ok("ns", &b.shell(&ns_script(&kinds))).expect("run");
    let seen = parse_ns(&out.stdout);
    assert_eq!(seen.len(), kinds.len(), "{out:?}");
    for (kind, link) in seen {
        assert!(link.starts_with(&format!("{kind}:[")), "{kind}: {link}");
        assert_ne!(
            link,
            host_ns(&kind),
            "the container has its own {kind} namespace"
        );
    }
}

#[test]
fn an_omitted_namespace_is_the_hosts() {
    let rt = runtime();
    let b = bundle()
        .without_namespace("network")
        .without_namespace("ipc");
    let out = rt
        .run_ok("nons", &b.shell(&ns_script(&["net", "ipc", "uts"])))
        .expect("run");
    let seen = parse_ns(&out.stdout);
    assert_eq!(
        seen[0].1,
        host_ns("net"),
        "no network namespace asked: the host's is shared"
    );
    assert_eq!(seen[1].1, host_ns("ipc"));
    assert_ne!(seen[2].1, host_ns("uts"));
}

#[test]
fn a_namespace_given_by_path_is_joined() {
    // The bundles outlive the runtime, whose drop kills what a failed test left.
    let holder_bundle = bundle().args(&["sleep", "1000"]);
    let joiner = bundle();
    let rt = runtime();
    let holder = rt.new_id("nsholder");
    let pid = rt
        .create_and_start(&holder, &holder_bundle)
        .expect("the namespace holder runs");
    let net = format!("/proc/{pid}/ns/net");
    let uts = format!("/proc/{pid}/ns/uts");
    let mut joiner = joiner
        .namespace("network", Some(net.as_ref()))
        .namespace("uts", Some(uts.as_ref()))
        .shell(&ns_script(&["net", "uts", "ipc"]));
    // Setting a hostname would change the holder's joined uts namespace: leave it out.
    joiner
        .spec_mut()
        .as_object_mut()
        .expect("the spec is an object")
        .remove("hostname");
    let out = rt.run_ok("nsjoin", &joiner).expect("run the joiner");
    let seen = parse_ns(&out.stdout);
    let target = |p: &str| {
        fs::read_link(p)
            .expect("the holder's namespace")
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        seen[0].1,
        target(&net),
        "joined the holder's network namespace"
    );
    assert_eq!(seen[1].1, target(&uts), "joined the holder's uts namespace");
    assert_ne!(
        seen[2].1,
        target(&format!("/proc/{pid}/ns/ipc")),
        "a new ipc namespace of its own"
    );
    assert_ne!(seen[0].1, host_ns("net"));
    rt.kill(&holder, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the holder exits");
    rt.delete(&holder)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

#[test]
fn user_namespace_maps_ids_as_configured() {
    let rt = runtime();
    let b = bundle()
        .user_namespace(0, 100_000, 65_536)
        .shell("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let out = rt.run_ok("userns", &b).expect("run");
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0 100000 65536", "uid_map: {out:?}");
    assert_eq!(lines[1], "0 100000 65536", "gid_map: {out:?}");
    assert_eq!(lines[2], "0", "root inside the user namespace");
    assert_ne!(lines[3], host_ns("user"));
}

#[test]
fn time_namespace_is_new() {
    let rt = runtime();
    let b = bundle()
        .namespace("time", None)
        .shell("readlink /proc/self/ns/time");
    let id = rt.new_id("timens");
    let out = rt.run(&id, &b).expect("run");
    if rt.flavor() == Flavor::Runc {
        // runc 1.1.5 has no time namespace support (the test holds for berth; runc refuses).
        assert!(
            !out.success(),
            "runc 1.1.5 refuses the time namespace: {out:?}"
        );
        return;
    }
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("time:["), "{out:?}");
    assert_ne!(out.stdout.trim(), host_ns("time"));
}
