//! berth and the real docker CLI 28 run against the same API server (the test backend of
//! crates/test-double): where docker's formats must match, their stdout and exit codes must match.

mod common;

use common::BerthCli;
use test_double::{FakeDaemon, TestServer};

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn err(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Runs both CLIs and asserts the same stdout and exit code.
fn same(server: &TestServer, args: &[&str]) -> String {
    let d = server.docker(args, None);
    let b = server.berth(args, None);
    assert_eq!(text(&b), text(&d), "stdout of `{}`", args.join(" "));
    assert_eq!(
        b.status.code(),
        d.status.code(),
        "exit code of `{}`",
        args.join(" ")
    );
    text(&b)
}

fn server() -> Option<TestServer> {
    if !test_double::is_root() {
        eprintln!("SKIP: the API socket is root-only; run these tests as root");
        return None;
    }
    Some(TestServer::start(
        FakeDaemon::with_exited_container()
            .with_busybox_image()
            .with_process_table(),
    ))
}

#[test]
fn ps_tables_and_formats_match_docker() {
    let Some(s) = server() else { return };
    let out = same(&s, &["ps", "-a"]);
    assert!(out.starts_with("CONTAINER ID   IMAGE"), "{out}");
    same(&s, &["ps"]);
    same(&s, &["ps", "-a", "-q"]);
    same(&s, &["ps", "-a", "--no-trunc"]);
    same(
        &s,
        &[
            "ps",
            "-a",
            "--format",
            "{{.ID}} {{.Names}} {{.Image}} {{.Status}}",
        ],
    );
    same(
        &s,
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\\t{{.Names}}\\t{{.State}}",
        ],
    );
    same(
        &s,
        &[
            "ps",
            "-a",
            "--format",
            "{{.Command}} {{.RunningFor}} {{.CreatedAt}}",
        ],
    );
    let labelled = s.docker(&["create", "-l", "tier=web", "-l", "a=b", "busybox"], None);
    assert_eq!(labelled.status.code(), Some(0));
    same(
        &s,
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}} [{{.Label \"tier\"}}] {{.Labels}}",
        ],
    );
    same(&s, &["ps", "-a", "--format", "{{json .Labels}}"]);
}

#[test]
fn ps_json_has_docker_keys() {
    let Some(s) = server() else { return };
    let d = s.docker(&["ps", "-a", "--format", "{{json .}}"], None);
    let b = s.berth(&["ps", "-a", "--format", "{{json .}}"], None);
    let dv: serde_json::Value = serde_json::from_slice(&d.stdout).expect("docker's json");
    let bv: serde_json::Value = serde_json::from_slice(&b.stdout).expect("berth's json");
    for key in [
        "ID",
        "Names",
        "Image",
        "Status",
        "State",
        "Command",
        "RunningFor",
    ] {
        assert_eq!(bv[key], dv[key], "{key}");
    }
    same(&s, &["ps", "-a", "--format", "json"]);
    same(&s, &["images", "--format", "json"]);
}

#[test]
fn images_match_docker() {
    let Some(s) = server() else { return };
    let out = same(&s, &["images"]);
    assert!(out.contains("4.26MB"), "{out}");
    same(&s, &["images", "-q"]);
    same(&s, &["images", "--no-trunc"]);
    same(
        &s,
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
    );
}

#[test]
fn inspect_format_matches_docker() {
    let Some(s) = server() else { return };
    same(
        &s,
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{.Name}} {{.Config.Image}}",
            "old",
        ],
    );
    same(
        &s,
        &["container", "inspect", "-f", "{{json .Config.Cmd}}", "old"],
    );
    let out = same(&s, &["inspect", "old"]);
    assert!(out.starts_with("[\n    {\n        \"Id\": "), "{out}");
    same(&s, &["inspect", "old", "busybox"]);
    same(&s, &["image", "inspect", "busybox"]);
    for args in [
        &["container", "inspect", "nosuch"][..],
        &["image", "inspect", "nosuch"],
    ] {
        let (b, d) = (s.berth(args, None), s.docker(args, None));
        assert_eq!(
            (b.status.code(), err(&b)),
            (d.status.code(), err(&d)),
            "{args:?}"
        );
    }
    let b = s.berth(&["inspect", "nosuch"], None);
    let d = s.docker(&["inspect", "nosuch"], None);
    assert_eq!(b.status.code(), d.status.code());
    assert!(err(&b).contains("No such object: nosuch"), "{}", err(&b));
}

#[test]
fn version_server_part_and_format_match_docker() {
    let Some(s) = server() else { return };
    same(
        &s,
        &[
            "version",
            "--format",
            "{{.Server.Version}} {{.Server.KernelVersion}} {{.Server.Arch}}",
        ],
    );
    let d = text(&s.docker(&["version"], None));
    let b = text(&s.berth(&["version"], None));
    let server_part = |t: &str| t.split_once("\nServer:").map(|(_, s)| s.to_string());
    assert_eq!(server_part(&b), server_part(&d));
    // The client's API version line says what was negotiated (docker 28.2 defaults to the
    // server's 1.50 already; berth speaks up to 1.51 and says it came down, in docker's words).
    let api_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with(" API version:"))
            .map(str::to_string)
    };
    assert_eq!(api_line(&d).as_deref(), Some(" API version:       1.50"));
    assert_eq!(
        api_line(&b).as_deref(),
        Some(" API version:       1.50 (downgraded from 1.51)")
    );
}

#[test]
fn run_exit_codes_and_output_match_docker() {
    let Some(s) = server() else { return };
    same(&s, &["run", "busybox", "out:hello", "exit:3"]);
    same(&s, &["run", "--rm", "busybox", "out:a", "exit:0"]);
    let b = s.berth(&["run", "-i", "busybox", "cat", "exit:7"], Some("piped\n"));
    assert_eq!(text(&b), "piped\n");
    assert_eq!(b.status.code(), Some(7));
    // A missing image: docker tries to pull, the pull fails, exit 125.
    let b = s.berth(&["run", "nosuchimage", "out:x"], None);
    let d = s.docker(&["run", "nosuchimage", "out:x"], None);
    assert_eq!(b.status.code(), Some(125));
    assert_eq!(b.status.code(), d.status.code());
    assert!(err(&b).contains("Unable to find image 'nosuchimage:latest' locally"));
    // A command that cannot be found or run: 127 and 126, as docker maps the start error.
    same(&s, &["run", "busybox", "missing:nosuch"]);
    same(&s, &["run", "busybox", "denied:/etc"]);
    let (d, b) = (
        s.docker(&["run", "-d", "busybox", "missing:nosuch"], None),
        s.berth(&["run", "-d", "busybox", "missing:nosuch"], None),
    );
    assert_eq!(b.status.code(), d.status.code());
    assert_eq!(
        text(&b).len(),
        text(&d).len(),
        "the ID is printed before the start fails"
    );
    assert_eq!(
        s.berth(&["run", "busybox", "missing:x"], None)
            .status
            .code(),
        Some(127)
    );
    assert_eq!(
        s.berth(&["run", "busybox", "denied:x"], None).status.code(),
        Some(126)
    );
    // -d prints the full ID.
    let b = s.berth(&["run", "-d", "--name", "bg", "busybox", "exit:0"], None);
    assert_eq!(b.status.code(), Some(0));
    assert_eq!(text(&b).trim().len(), 64);
}

#[test]
fn container_errors_match_docker() {
    let Some(s) = server() else { return };
    for args in [
        &["rm", "nosuch"][..],
        &["logs", "nosuch"],
        &["start", "nosuch"],
    ] {
        let d = s.docker(args, None);
        let b = s.berth(args, None);
        assert_eq!(b.status.code(), d.status.code(), "{args:?}");
        assert!(err(&b).contains("No such container: nosuch"), "{}", err(&b));
        assert_eq!(err(&b).trim(), err(&d).trim(), "{args:?}");
    }
    same(&s, &["wait", "old"]);
    same(&s, &["logs", "old"]);
}

#[test]
fn no_daemon_says_how_to_start_one_in_one_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sock = dir.path().join("none.sock");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "-H",
            &format!("unix://{}", sock.display()),
            "run",
            "busybox",
        ])
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let e = err(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("is berthd running? Start it with: sudo berthd &"),
        "{e}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["ps"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .env_remove("BERTH_HOST")
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("TLS"), "{}", err(&out));
}

#[test]
fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["completion", shell])
            .output()
            .expect("run berth completion");
        assert_eq!(out.status.code(), Some(0));
        assert!(text(&out).contains("berth"), "{shell}");
        assert!(text(&out).contains("no-trunc"), "{shell}");
    }
}

#[test]
fn unsupported_flags_are_refused() {
    let Some(s) = server() else { return };
    for args in [
        &["run", "--gpus", "all", "busybox"][..],
        &["run", "--mount", "type=tmpfs", "busybox"],
        &["run", "--no-such-flag", "busybox"],
    ] {
        let out = s.berth(args, None);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert!(!err(&out).is_empty(), "{args:?}");
    }
    assert!(
        test_double::names(&s.backend).len() == 1,
        "nothing was created"
    );
}

#[test]
fn run_with_a_tty_matches_docker() {
    let Some(s) = server() else { return };
    let d = s.docker_in_pty(&["run", "-t", "busybox", "out:tty", "exit:4"]);
    let b = s.berth_in_pty(&["run", "-t", "busybox", "out:tty", "exit:4"]);
    assert_eq!(b.status.code(), d.status.code());
    assert_eq!(text(&b), text(&d));
    // -it: raw terminal and stdin attached; the exit ends the session.
    let d = s.docker_in_pty(&["run", "-it", "busybox", "out:done", "exit:6"]);
    let b = s.berth_in_pty(&["run", "-it", "busybox", "out:done", "exit:6"]);
    assert_eq!(b.status.code(), d.status.code());
    assert!(text(&b).contains("done"), "{:?}", text(&b));
    // exec -t in a pty.
    let d = s.docker_in_pty(&["exec", "-t", "old", "out:inexec", "exit:1"]);
    let b = s.berth_in_pty(&["exec", "-t", "old", "out:inexec", "exit:1"]);
    assert_eq!(b.status.code(), d.status.code());
    assert_eq!(text(&b), text(&d));
}

#[test]
fn create_flags_reach_the_daemon_as_dockers_do() {
    let Some(s) = server() else { return };
    let flags = [
        "--memory",
        "512m",
        "--memory-swap",
        "1g",
        "--cpus",
        "1.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "64",
        "--ulimit",
        "nofile=1024:2048",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "MKNOD",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--tmpfs",
        "/run:size=1m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--log-opt",
        "max-size=1m",
        "--restart",
        "on-failure:3",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/xnull:r",
    ];
    let mut d: Vec<&str> = vec!["create", "--name", "viadocker"];
    d.extend(flags);
    d.extend(["busybox", "exit:0"]);
    let mut b: Vec<&str> = vec!["create", "--name", "viaberth"];
    b.extend(flags);
    b.extend(["busybox", "exit:0"]);
    assert_eq!(s.docker(&d, None).status.code(), Some(0));
    assert_eq!(s.berth(&b, None).status.code(), Some(0));
    let (dv, bv) = (s.recorded("viadocker"), s.recorded("viaberth"));
    for key in [
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "CpuShares",
        "CpusetCpus",
        "PidsLimit",
        "Ulimits",
        "CapAdd",
        "CapDrop",
        "SecurityOpt",
        "ReadonlyRootfs",
        "Tmpfs",
        "Sysctls",
        "RestartPolicy",
        "NetworkMode",
        "Devices",
    ] {
        assert_eq!(bv[key], dv[key], "HostConfig.{key}");
    }
    assert_eq!(bv["LogConfig"]["Config"], dv["LogConfig"]["Config"]);
}

#[test]
fn network_flags_send_what_docker_sends() {
    let Some(s) = server() else { return };
    let flags = [
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9090:90/udp",
        "-p",
        "443",
        "-p",
        "4000-4010:22",
        "-P",
        "--expose",
        "7000-7001",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:192.0.2.10",
        "--network",
        "backend",
    ];
    let mut d: Vec<&str> = vec!["create", "--name", "netdocker"];
    d.extend(flags);
    d.extend(["busybox", "exit:0"]);
    let mut b: Vec<&str> = vec!["create", "--name", "netberth"];
    b.extend(flags);
    b.extend(["busybox", "exit:0"]);
    let dout = s.docker(&d, None);
    assert_eq!(dout.status.code(), Some(0), "{}", err(&dout));
    let bout = s.berth(&b, None);
    assert_eq!(bout.status.code(), Some(0), "{}", err(&bout));
    let (dv, bv) = (s.recorded("netdocker"), s.recorded("netberth"));
    for key in [
        "PortBindings",
        "PublishAllPorts",
        "Dns",
        "DnsSearch",
        "DnsOptions",
        "ExtraHosts",
        "NetworkMode",
    ] {
        assert_eq!(bv[key], dv[key], "HostConfig.{key}");
    }
}

#[test]
fn other_container_commands_match_docker() {
    let Some(s) = server() else { return };
    let d = s.docker(&["rename", "old", "older"], None);
    let b = s.berth(&["rename", "older", "old"], None);
    assert_eq!((b.status.code(), text(&b)), (d.status.code(), text(&d)));
    same(
        &s,
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}",
        ],
    );
    same(&s, &["kill", "old"]);
    same(&s, &["exec", "old", "out:fromexec", "exit:2"]);
    same(
        &s,
        &["info", "--format", "{{.Name}} {{.Containers}} {{.Driver}}"],
    );
    same(
        &s,
        &[
            "events",
            "--until",
            "1700000001",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    same(&s, &["events", "--until", "1700000001"]);
}

#[test]
fn image_commands_match_docker() {
    let Some(s) = server() else { return };
    same(&s, &["pull", "busybox"]);
    same(&s, &["history", "nosuch"]);
    same(&s, &["tag", "nosuch", "other:1"]);
    same(&s, &["rmi", "nosuch"]);
    same(&s, &["image", "inspect", "nosuch"]);
    same(&s, &["history", "busybox"]);
    same(&s, &["history", "--no-trunc", "busybox"]);
    same(&s, &["history", "-q", "busybox"]);
    same(
        &s,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Os}}/{{.Architecture}} {{.Size}}",
            "busybox",
        ],
    );
    same(
        &s,
        &["inspect", "--format", "{{json .RepoTags}}", "busybox"],
    );
    same(&s, &["tag", "busybox", "other:1"]);
    same(&s, &["rmi", "other:1"]);
}

#[test]
fn start_attached_matches_docker() {
    let Some(s) = server() else { return };
    for (cli, name) in [("docker", "sd"), ("berth", "sb")] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                s.docker(args, None)
            } else {
                s.berth(args, None)
            }
        };
        let created = run(&["create", "--name", name, "busybox", "out:started", "exit:5"]);
        assert_eq!(created.status.code(), Some(0));
        let started = run(&["start", "-a", name]);
        assert_eq!(text(&started), "started\n", "{cli}");
        assert_eq!(started.status.code(), Some(5), "{cli}");
        let waited = run(&["wait", name]);
        assert_eq!(text(&waited), "5\n", "{cli}");
    }
}

#[test]
fn requests_carry_the_version_the_daemon_pinged() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sock = dir.path().join("old.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind a socket");
    let server = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..2 {
            let (mut c, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).expect("read a request");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            lines.push(text.lines().next().unwrap_or("").to_string());
            c.write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]")
                .expect("answer");
        }
        lines
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", &format!("unix://{}", sock.display()), "ps", "-q"])
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let lines = server.join().expect("the fake daemon thread");
    assert!(lines[0].starts_with("GET /_ping "), "{lines:?}");
    assert!(
        lines[1].starts_with("GET /v1.45/containers/json"),
        "{lines:?}"
    );
}

#[test]
fn save_and_load_match_docker() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (d_out, b_out) = (dir.path().join("d.tar"), dir.path().join("b.tar"));
    let d = s.docker(
        &["save", "-o", d_out.to_str().expect("utf-8 path"), "busybox"],
        None,
    );
    let b = s.berth(
        &["save", "-o", b_out.to_str().expect("utf-8 path"), "busybox"],
        None,
    );
    assert_eq!(b.status.code(), d.status.code());
    assert_eq!(
        std::fs::read(&b_out).expect("berth's archive"),
        std::fs::read(&d_out).expect("docker's archive")
    );
    same(&s, &["save", "-o", "/dev/null", "nosuch"]);
    // Not on a terminal: no progress bars, the status lines only.
    let out = same(&s, &["load", "-i", d_out.to_str().expect("utf-8 path")]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    same(
        &s,
        &["load", "-q", "-i", d_out.to_str().expect("utf-8 path")],
    );
    // On a terminal: a bar per layer, then the daemon's lines.
    let b = s.berth_in_pty(&["load", "-i", d_out.to_str().expect("utf-8 path")]);
    assert_eq!(b.status.code(), Some(0));
    let out = text(&b);
    assert!(out.contains("0123456789ab: Loading layer"), "{out:?}");
    assert!(out.contains("Loaded image: busybox:latest"), "{out:?}");
}

#[test]
fn logs_and_refusals_by_the_daemon_match_docker() {
    let Some(s) = server() else { return };
    let d = s.docker(
        &[
            "run",
            "--name",
            "talker",
            "busybox",
            "out:one",
            "err:two",
            "out:three",
        ],
        None,
    );
    let b = s.berth(
        &[
            "run",
            "--name",
            "talker2",
            "busybox",
            "out:one",
            "err:two",
            "out:three",
        ],
        None,
    );
    assert_eq!(
        (text(&b), err(&b), b.status.code()),
        (text(&d), err(&d), d.status.code())
    );
    // Same name twice: a conflict, exit 125 for both.
    same(&s, &["run", "--name", "talker", "busybox", "out:one"]);
    same(&s, &["logs", "talker"]);
    same(&s, &["logs", "--tail", "1", "talker"]);
    same(&s, &["logs", "--since", "10m", "talker"]);
    // What the test daemon does not implement is an error for both, with the same exit code.
    for args in [
        &["stop", "talker"][..],
        &["restart", "talker"],
        &["pause", "talker"],
        &["unpause", "talker"],
        &["update", "--memory", "64m", "talker"],
        &["container", "prune", "-f"],
        &["image", "prune", "-f"],
        &["push", "busybox"],
        &["system", "df"],
    ] {
        same(&s, args);
    }
}

#[test]
fn info_lines_are_dockers() {
    let Some(s) = server() else { return };
    let d = text(&s.docker(&["info"], None));
    let b = text(&s.berth(&["info"], None));
    let server_lines = |t: &str| -> Vec<String> {
        t.split_once("Server:")
            .map(|(_, rest)| rest.lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    // Every line berth prints is docker's, in docker's order (berth leaves out swarm, plugins
    // and the containerd/runc versions it does not have).
    let docker_lines = server_lines(&d);
    let mut at = 0;
    for line in server_lines(&b) {
        let found = docker_lines[at..].iter().position(|l| *l == line);
        assert!(
            found.is_some(),
            "berth's info line {line:?} is not docker's (after line {at})"
        );
        at += found.unwrap_or(0) + 1;
    }
}

#[test]
fn stats_match_docker() {
    let Some(s) = server() else { return };
    let out = same(&s, &["stats", "--no-stream", "old"]);
    assert!(out.contains("25.00%"), "{out}");
    same(&s, &["top", "old"]);
    same(
        &s,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
            "old",
        ],
    );
}

#[test]
fn berth_host_wins_over_docker_host() {
    let Some(s) = server() else { return };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["ps", "-a", "-q"])
        .env("BERTH_HOST", s.docker_host())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert_eq!(text(&out), "000000000000\n");
}

#[test]
fn exec_kill_and_rm_flags_match_docker() {
    let Some(s) = server() else { return };
    same(&s, &["exec", "-d", "old", "out:x"]);
    same(
        &s,
        &[
            "exec",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "old",
            "out:flags",
            "exit:3",
        ],
    );
    let b = s.berth(
        &["exec", "-i", "old", "cat", "exit:4"],
        Some("through exec\n"),
    );
    assert_eq!(
        (text(&b).as_str(), b.status.code()),
        ("through exec\n", Some(4))
    );
    same(&s, &["kill", "-s", "HUP", "old"]);
    same(&s, &["logs", "-f", "-t", "old"]);
    for (cli, name) in [("docker", "rd"), ("berth", "rb")] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                s.docker(args, None)
            } else {
                s.berth(args, None)
            }
        };
        assert_eq!(
            run(&["create", "--name", name, "busybox", "exit:0"])
                .status
                .code(),
            Some(0)
        );
        let removed = run(&["rm", "-f", name]);
        assert_eq!(
            (text(&removed), removed.status.code()),
            (format!("{name}\n"), Some(0)),
            "{cli}"
        );
    }
}

#[test]
fn streaming_stats_print_a_table_per_sample() {
    let Some(s) = server() else { return };
    // The test daemon sends one sample and ends the stream: one table, then exit 0.
    let b = s.berth(&["stats", "old"], None);
    assert_eq!(b.status.code(), Some(0), "{}", err(&b));
    let out = text(&b);
    assert_eq!(out.matches("CONTAINER ID").count(), 1, "{out}");
    assert!(out.contains("25.00%"), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no screen control off a terminal: {out:?}"
    );
}

#[test]
fn network_commands_match_docker() {
    let Some(s) = server() else { return };
    let d = s.docker(&["network", "create", "--label", "team=a", "front"], None);
    assert_eq!(d.status.code(), Some(0), "{}", err(&d));
    let b = s.berth(&["network", "create", "--label", "team=b", "back"], None);
    assert_eq!(b.status.code(), Some(0), "{}", err(&b));
    assert_eq!(text(&b).trim().len(), 64, "create prints the ID");
    let table = same(&s, &["network", "ls"]);
    assert!(table.starts_with("NETWORK ID"), "{table}");
    assert!(table.contains("front") && table.contains("back"), "{table}");
    same(&s, &["network", "ls", "-q"]);
    same(
        &s,
        &[
            "network",
            "ls",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
    );
    same(&s, &["network", "inspect", "front"]);
    same(
        &s,
        &["network", "inspect", "-f", "{{.Name}} {{.Labels}}", "back"],
    );
    same(&s, &["network", "inspect", "nosuch"]);
    let d = s.docker(&["network", "create", "front"], None);
    let b = s.berth(&["network", "create", "front"], None);
    assert_eq!((b.status.code(), err(&b)), (d.status.code(), err(&d)));
    let d = s.docker(&["network", "rm", "front"], None);
    let b = s.berth(&["network", "rm", "back"], None);
    assert_eq!(text(&d), "front\n");
    assert_eq!(text(&b), "back\n");
    let d = s.docker(&["network", "rm", "front"], None);
    let b = s.berth(&["network", "rm", "front"], None);
    assert_eq!((b.status.code(), err(&b)), (d.status.code(), err(&d)));
}
