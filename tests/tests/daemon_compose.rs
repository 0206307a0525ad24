//! berthd driven by docker-compose (Debian's 1.29, which speaks the Engine API through the
//! docker SDK for Python): a project with two services on the project's own network, a named
//! volume and a published port, brought up, inspected and taken down as a user would, and
//! nothing left behind (no container, network, volume, bridge or nftables rule).
//!
//! Needs root, docker-compose, Debian's busybox-static, and the binaries built first:
//! `cargo build -p berthd -p berth-monitor`.

mod compat_common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use compat_common::berthd::{berthd_with_busybox, stderr, stdout, Berthd, T};
use compat_common::{require_tool, run};

/// Runs docker-compose in `dir` against the test's berthd.
fn compose(d: &Berthd, dir: &Path, project: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(require_tool("docker-compose", "docker-compose"));
    cmd.current_dir(dir)
        .arg("--project-name")
        .arg(project)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", &d.docker_config)
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .env_remove("DOCKER_CONTEXT");
    run(&mut cmd, T)
}

fn compose_ok(d: &Berthd, dir: &Path, project: &str, args: &[&str]) -> String {
    let out = compose(d, dir, project, args);
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A free port on 127.0.0.1 for the published port (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn compose_brings_a_project_up_and_down() {
    let d = berthd_with_busybox("daemon-compose");
    let dir = d.sandbox.root.join("project");
    std::fs::create_dir_all(&dir).expect("project dir");
    let port = free_port();
    let project = format!("c{}", std::process::id());
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.8"
services:
  web:
    image: busybox
    command: sh -c 'echo hello-from-web > /www/index.html; echo "$$GREETING" > /data/greeting; exec httpd -f -p 8080 -h /www'
    tmpfs: /www
    ports:
      - "127.0.0.1:{port}:8080"
    volumes:
      - data:/data
    environment:
      GREETING: hi-there
    labels:
      tier: front
  client:
    image: busybox
    command: sh -c 'until printf "GET / HTTP/1.0\r\n\r\n" | nc web 8080; do sleep 0.2; done; exec sleep 600'
    depends_on: [web]
volumes:
  data:
"#
        ),
    )
    .expect("write docker-compose.yml");

    compose_ok(&d, &dir, &project, &["up", "-d"]);
    // Each service once, numbered 1 (compose numbers a new container past the ones its label
    // filters find, so a filter that widened would show here).
    let ps = compose_ok(
        &d,
        &dir,
        &project,
        &["ps", "--services", "--filter", "status=running"],
    );
    let mut services: Vec<&str> = ps.lines().collect();
    services.sort_unstable();
    assert_eq!(services, ["client", "web"], "running services");
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [format!("{project}_client_1"), format!("{project}_web_1")]
    );

    // The published port, the service name on the project network, the volume, the labels.
    assert!(http_get(port).contains("hello-from-web"), "published port");
    let deadline = Instant::now() + Duration::from_secs(30);
    let logs = loop {
        let logs = compose_ok(&d, &dir, &project, &["logs", "--no-color", "client"]);
        if logs.contains("hello-from-web") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        logs.contains("hello-from-web"),
        "client reached web by name: {logs}"
    );
    let exec = compose_ok(
        &d,
        &dir,
        &project,
        &["exec", "-T", "web", "cat", "/data/greeting"],
    );
    assert_eq!(exec.trim(), "hi-there");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"tier\"}}",
            &format!("{project}_web_1")
        ])
        .trim(),
        "front"
    );
    let networks = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        networks.lines().any(|n| n == format!("{project}_default")),
        "project network: {networks}"
    );

    compose_ok(&d, &dir, &project, &["down", "-v", "-t", "1"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "", "containers left");
    let networks = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.contains(&project),
        "network left after down: {networks}"
    );
    assert!(
        d.volumes().iter().all(|v| !v.contains(&project)),
        "volume left after down -v: {:?}",
        d.volumes()
    );
    d.finish();
}
