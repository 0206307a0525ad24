//! The real docker CLI (28, on the PATH) against the server with the test backend.

use test_double::{is_root, FakeDaemon, TestServer};

fn skip_unless_ready() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: the API socket is chowned to root; run as root");
        return false;
    }
    if std::process::Command::new("docker")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no docker CLI on the PATH");
        return false;
    }
    true
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn docker_version_negotiates_and_prints_the_server() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(&["version"], None);
    assert_eq!(out.status.code(), Some(0), "docker version failed");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Server:"), "{stdout}");
    assert!(stdout.contains("0.1.0-test"), "{stdout}");
    assert!(stdout.contains("1.50 (minimum version 1.24)"), "{stdout}");
}

#[test]
fn docker_info_prints_the_backend_info() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::with_exited_container());
    let out = server.docker(&["info"], None);
    assert_eq!(out.status.code(), Some(0), "docker info failed");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Server Version: 0.1.0-test"), "{stdout}");
    assert!(stdout.contains("Containers: 1"), "{stdout}");
    assert!(stdout.contains("Storage Driver: overlay2"), "{stdout}");
    assert!(stdout.contains("Name: testhost"), "{stdout}");
}

#[test]
fn docker_ps_lists_containers_with_filters_and_formats() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::with_exited_container());
    let out = server.docker(&["ps"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains("old"),
        "ps without -a shows only running ones"
    );

    let out = server.docker(
        &["ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Image}}"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), "old Exited (0) busybox");

    let out = server.docker(&["ps", "-a", "-q", "--filter", "status=exited"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        "0000000000000000000000000000000000000000000000000000000000abcdef"[..12].to_string()
    );

    let out = server.docker(&["ps", "-a", "--filter", "bogus=1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid filter 'bogus'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_inspect_of_a_missing_object_fails_like_dockerd() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(&["inspect", "nosuch"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("No such object: nosuch"),
        "{}",
        text(&out.stderr)
    );

    let out = server.docker(&["container", "inspect", "nosuch"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_run_prints_the_output_and_exits_with_the_code() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(
        &[
            "run",
            "--name",
            "echo",
            "busybox",
            "out:hello from berth",
            "err:to stderr",
            "exit:3",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "docker run exits with the container's code"
    );
    assert_eq!(text(&out.stdout), "hello from berth\n");
    assert_eq!(text(&out.stderr), "to stderr\n");

    // The same name again is a conflict: the CLI's exit code for a daemon error is 125.
    let out = server.docker(&["run", "--name", "echo", "busybox", "exit:0"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is already in use"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_run_interactive_passes_stdin_and_its_eof() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(
        &[
            "run",
            "-i",
            "--rm",
            "busybox",
            "out:start",
            "cat",
            "out:end",
            "exit:0",
        ],
        Some("line one\nline two\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "start\nline one\nline two\nend\n");
}

#[test]
fn docker_logs_and_events_stream_what_the_backend_gives() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(
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
    assert_eq!(out.status.code(), Some(0));

    let out = server.docker(&["logs", "talker"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "one\nthree\n");
    assert_eq!(text(&out.stderr), "two\n");

    let out = server.docker(&["logs", "nosuch"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No such container: nosuch"));

    let out = server.docker(
        &[
            "events",
            "--since",
            "0",
            "--until",
            "1",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "container create talker\ncontainer start talker\n"
    );
}

#[test]
fn docker_exec_runs_through_the_hijacked_connection() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::with_exited_container());
    let out = server.docker(&["exec", "old", "out:inside", "exit:4"], None);
    assert_eq!(
        out.status.code(),
        Some(4),
        "docker exec exits with the process's code"
    );
    assert_eq!(text(&out.stdout), "inside\n");

    let out = server.docker(&["exec", "-i", "old", "cat", "out:done"], Some("piped\n"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "piped\ndone\n");

    let out = server.docker(&["exec", "-d", "old", "out:ignored"], None);
    assert_eq!(out.status.code(), Some(0));

    let out = server.docker(&["exec", "nosuch", "x"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_run_with_a_tty_gets_the_raw_stream() {
    if !skip_unless_ready() {
        return;
    }
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `script` (util-linux) is needed to give docker a terminal");
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker_in_pty(&["run", "-t", "busybox", "out:on-a-tty", "exit:2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("on-a-tty"),
        "{:?}",
        text(&out.stdout)
    );
}

#[test]
fn docker_lifecycle_commands_reach_the_backend() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::with_exited_container());
    let out = server.docker(&["wait", "old"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "0\n".to_string())
    );

    let out = server.docker(&["kill", "old"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );

    let out = server.docker(&["rename", "old", "renamed"], None);
    assert_eq!(out.status.code(), Some(0));
    let out = server.docker(&["rm", "renamed"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "renamed\n".to_string())
    );
    let out = server.docker(&["rm", "renamed"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("No such container: renamed"),
        "{}",
        text(&out.stderr)
    );

    let out = server.docker(&["images", "-q"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), String::new())
    );

    let out = server.docker(&["pull", "busybox"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("the test backend has no registry for docker.io/library/busybox"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_create_with_many_flags_sends_a_body_the_models_read() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(
        &[
            "create",
            "--name",
            "full",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-h",
            "box",
            "--entrypoint",
            "/bin/sh",
            "--init",
            "-l",
            "k=v",
            "--restart",
            "on-failure:3",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "100",
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
            "/run",
            "--device",
            "/dev/null",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--stop-signal",
            "SIGTERM",
            "--stop-timeout",
            "5",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--log-opt",
            "max-size=1m",
            "--runtime",
            "runc",
            "--network",
            "none",
            "--privileged",
            "busybox",
            "out:x",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = server.docker(
        &[
            "inspect",
            "--format",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}} {{.HostConfig.Runtime}} {{.HostConfig.CapAdd}} {{.HostConfig.Init}}",
            "full",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "67108864 1500000000 on-failure:3 100 true true none runc [CAP_NET_ADMIN] true"
    );
}

#[test]
fn docker_volume_commands_reach_the_volume_routes() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(&["volume", "create", "--label", "k=v", "data"], None);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("data\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let out = server.docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"], None);
    assert_eq!(text(&out.stdout), "local data\n");
    let out = server.docker(
        &["volume", "inspect", "-f", "{{.Name}} {{.Labels.k}}", "data"],
        None,
    );
    assert_eq!(text(&out.stdout), "data v\n");
    let out = server.docker(&["volume", "ls", "--filter", "bogus=1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid filter 'bogus'"),
        "{}",
        text(&out.stderr)
    );
    let out = server.docker(&["volume", "rm", "data"], None);
    assert_eq!(text(&out.stdout), "data\n");
    let out = server.docker(&["volume", "rm", "data"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "Error response from daemon: get data: no such volume"
    );
}

#[test]
fn docker_login_posts_auth_and_keeps_the_credentials_itself() {
    if !skip_unless_ready() {
        return;
    }
    let server = TestServer::start(FakeDaemon::default());
    let out = server.docker(
        &["login", "127.0.0.1:5999", "-u", "alice", "--password-stdin"],
        Some("s3cret\n"),
    );
    assert_eq!(out.status.code(), Some(0), "docker login failed");
    assert!(text(&out.stdout).contains("Login Succeeded"));
    let config = std::fs::read_to_string(server.dir.path().join("docker-config/config.json"))
        .expect("docker wrote its config");
    let config: serde_json::Value = serde_json::from_str(&config).expect("JSON config");
    // base64 of alice:s3cret
    assert_eq!(
        config["auths"]["127.0.0.1:5999"]["auth"],
        "YWxpY2U6czNjcmV0"
    );

    let out = server.docker(
        &["login", "127.0.0.1:5999", "-u", "alice", "--password-stdin"],
        Some("wrong\n"),
    );
    assert_eq!(out.status.code(), Some(1), "a refused login exits 1");
    assert!(
        text(&out.stderr).contains(
            "Error response from daemon: Get \"https://127.0.0.1:5999/v2/\": unauthorized: incorrect username or password"
        ),
        "{}",
        text(&out.stderr)
    );
}
