//! `docker login`, `berth login` and `berth logout` against berthd, with Debian's
//! docker-registry behind htpasswd Basic auth on 127.0.0.1: berthd checks the credentials with
//! the registry (`POST /auth`) and keeps nothing; each CLI keeps them in its own docker config
//! (DOCKER_CONFIG), and berth's file must be what docker writes. berth's push and pull send the
//! stored login and fail without it.
//!
//! Needs root, the docker CLI, Debian's busybox-static, docker-registry and apache2-utils
//! (htpasswd), and the binaries built first: `cargo build -p berthd -p berth-monitor -p berth`.

mod compat_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use compat_common::berthd::{berthd_with_busybox, stderr, stdout, workspace_binary, Berthd};
use compat_common::registry::LocalRegistry;

const USER: &str = "berthtester";
const PASSWORD: &str = "c0rrect-h0rse";

/// Runs the berth CLI against `d` with its own docker config directory, stdin from `input`,
/// bounded by `timeout 60`.
fn berth(d: &Berthd, config: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("60")
        .arg(workspace_binary("berth"))
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", config)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start berth");
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("write berth's stdin");
    }
    let out = child.wait_with_output().expect("wait for berth");
    eprintln!(
        "$ berth {}\n-> {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

fn config_of(dir: &Path) -> serde_json::Value {
    let path = dir.join("config.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn auth_field(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn docker_login_is_checked_by_berthd_and_kept_by_the_cli() {
    let d = berthd_with_busybox("dlogin");
    let reg = LocalRegistry::start(&d.sandbox.dir("registry"), Some((USER, PASSWORD)));
    let server = format!("127.0.0.1:{}", reg.port);

    let out = d.docker_with_input(
        &["login", &server, "-u", USER, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(0), "docker login: {}", stderr(&out));
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    let config = config_of(&d.docker_config);
    assert_eq!(
        config["auths"][server.as_str()]["auth"],
        auth_field(USER, PASSWORD),
        "docker's config: {config}"
    );

    // A wrong password: the registry refuses, berthd says so in dockerd's words, exit 1.
    let out = d.docker_with_input(
        &["login", &server, "-u", USER, "--password-stdin"],
        Some("wrong\n"),
    );
    assert_eq!(out.status.code(), Some(1), "docker login, wrong password");
    let want = format!(
        "Error response from daemon: login attempt to http://{server}/v2/ failed with status: 401 Unauthorized"
    );
    assert!(stderr(&out).contains(&want), "stderr: {}", stderr(&out));

    // A registry nobody listens on: an error naming it, exit 1.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let out = d.docker_with_input(
        &[
            "login",
            &format!("127.0.0.1:{dead}"),
            "-u",
            USER,
            "--password-stdin",
        ],
        Some("x\n"),
    );
    assert_eq!(out.status.code(), Some(1), "login to a closed port");
    assert!(
        stderr(&out).contains(&format!(
            "Error response from daemon: Get \"http://127.0.0.1:{dead}/v2/\": "
        )) && stderr(&out).to_lowercase().contains("connection refused"),
        "stderr: {}",
        stderr(&out)
    );

    // The docker CLI's stored login works for its pulls and pushes through berthd.
    let name = format!("{server}/dockerbb:1");
    d.ok(&["tag", "busybox:latest", &name]);
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    d.ok(&["pull", &name]);

    let out = d.docker(&["logout", &server]);
    assert_eq!(out.status.code(), Some(0), "docker logout");
    assert!(
        stdout(&out).contains(&format!("Removing login credentials for {server}")),
        "{}",
        stdout(&out)
    );
    let config = config_of(&d.docker_config);
    assert!(
        config["auths"].get(server.as_str()).is_none(),
        "docker logout left {config}"
    );
    drop(reg);
    d.finish();
}

#[test]
fn berth_login_writes_what_docker_writes_and_push_pull_use_it() {
    let d = berthd_with_busybox("blogin");
    let reg = LocalRegistry::start(&d.sandbox.dir("registry"), Some((USER, PASSWORD)));
    let server = format!("127.0.0.1:{}", reg.port);
    let cfg: PathBuf = d.sandbox.dir("berth-config");
    let empty: PathBuf = d.sandbox.dir("berth-empty-config");
    // A key berth does not know, which it must keep.
    std::fs::write(
        cfg.join("config.json"),
        r#"{"psFormat":"table {{.ID}}","auths":{"other.example:1":{"auth":"eDp5"}}}"#,
    )
    .expect("write berth's config");

    // docker's file, for comparison.
    let out = d.docker_with_input(
        &["login", &server, "-u", USER, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(0), "docker login: {}", stderr(&out));

    let out = berth(
        &d,
        &cfg,
        &["login", &server, "-u", USER, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(0), "berth login");
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    let ours = config_of(&cfg);
    let docker = config_of(&d.docker_config);
    assert_eq!(
        ours["auths"][server.as_str()],
        docker["auths"][server.as_str()],
        "berth's entry against docker's"
    );
    assert_eq!(
        ours["auths"][server.as_str()],
        serde_json::json!({"auth": auth_field(USER, PASSWORD)})
    );
    assert_eq!(ours["psFormat"], "table {{.ID}}", "other keys kept: {ours}");
    assert_eq!(ours["auths"]["other.example:1"]["auth"], "eDp5");
    let mode = std::fs::metadata(cfg.join("config.json"))
        .expect("stat berth's config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "berth's config mode");

    // -p on the command line: docker's warning, and a wrong password is the daemon's refusal.
    let out = berth(
        &d,
        &cfg,
        &["login", &server, "-u", USER, "-p", "wrong"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "berth login, wrong password");
    assert!(
        stderr(&out)
            .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."),
        "stderr: {}",
        stderr(&out)
    );
    let want = format!(
        "Error response from daemon: login attempt to http://{server}/v2/ failed with status: 401 Unauthorized"
    );
    assert!(stderr(&out).contains(&want), "stderr: {}", stderr(&out));
    assert_eq!(config_of(&cfg), ours, "a refused login changes nothing");

    // No terminal and no password: refused as docker refuses it.
    let out = berth(&d, &empty, &["login", &server, "-u", USER], None);
    assert_eq!(out.status.code(), Some(1), "berth login without a password");
    assert!(
        stderr(&out).contains("Cannot perform an interactive login from a non TTY device"),
        "stderr: {}",
        stderr(&out)
    );

    // push and pull with the stored login, and without it.
    let name = format!("{server}/berthbb:1");
    d.ok(&["tag", "busybox:latest", &name]);
    let out = berth(&d, &empty, &["push", &name], None);
    assert_eq!(out.status.code(), Some(1), "berth push without a login");
    let out = berth(&d, &cfg, &["push", &name], None);
    assert_eq!(out.status.code(), Some(0), "berth push with the login");
    d.ok(&["rmi", &name]);
    let out = berth(&d, &empty, &["pull", &name], None);
    assert_eq!(out.status.code(), Some(1), "berth pull without a login");
    let out = berth(&d, &cfg, &["pull", &name], None);
    assert_eq!(out.status.code(), Some(0), "berth pull with the login");
    let out = d.docker(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(stdout(&out).trim(), "pulled");

    // logout: the entry goes, the rest stays; a second logout finds nothing.
    let out = berth(&d, &cfg, &["logout", &server], None);
    assert_eq!(out.status.code(), Some(0), "berth logout");
    assert_eq!(
        stdout(&out),
        format!("Removing login credentials for {server}\n")
    );
    let after = config_of(&cfg);
    assert!(after["auths"].get(server.as_str()).is_none(), "{after}");
    assert_eq!(after["psFormat"], "table {{.ID}}");
    assert_eq!(after["auths"]["other.example:1"]["auth"], "eDp5");
    let out = berth(&d, &cfg, &["logout", &server], None);
    assert_eq!(out.status.code(), Some(0), "second berth logout");
    assert_eq!(stdout(&out), format!("Not logged in to {server}\n"));

    // A credential helper in the config: refused, naming it, and the file untouched.
    let helper_cfg: PathBuf = d.sandbox.dir("berth-helper-config");
    let text = r#"{"credsStore":"berthtestnosuch"}"#;
    std::fs::write(helper_cfg.join("config.json"), text).expect("write the helper config");
    let out = berth(
        &d,
        &helper_cfg,
        &["login", &server, "-u", USER, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(1), "berth login beside a helper");
    assert!(
        stderr(&out).contains("docker-credential-berthtestnosuch"),
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(helper_cfg.join("config.json")).expect("read"),
        text
    );
    drop(reg);
    d.finish();
}

/// Reads `rx` into `seen` until `needle` shows, for at most a minute.
fn wait_for(rx: &std::sync::mpsc::Receiver<Vec<u8>>, seen: &mut String, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(e) => panic!("waiting for {needle:?} ({e}); the terminal showed: {seen:?}"),
        }
    }
}

#[test]
fn berth_login_prompts_on_a_terminal_and_hides_the_password() {
    compat_common::require_tool("script", "bsdutils");
    let d = berthd_with_busybox("plogin");
    let reg = LocalRegistry::start(&d.sandbox.dir("registry"), Some((USER, PASSWORD)));
    let server = format!("127.0.0.1:{}", reg.port);
    let cfg: PathBuf = d.sandbox.dir("berth-pty-config");
    // script gives berth a terminal; what the test writes to script is what a user types.
    let line = format!("{} login {server}", workspace_binary("berth").display());
    let mut child = Command::new("timeout")
        .args(["60", "script", "-qec", &line, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", &cfg)
        .env_remove("BERTH_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start script");
    let mut keys = child.stdin.take().expect("piped stdin");
    let mut screen = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = screen.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    {
        use std::io::Write;
        wait_for(&rx, &mut seen, "Username: ");
        keys.write_all(format!("{USER}\n").as_bytes())
            .expect("type the user name");
        wait_for(&rx, &mut seen, "Password: ");
        keys.write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("type the password");
        wait_for(&rx, &mut seen, "Login Succeeded");
    }
    drop(keys);
    let status = child.wait().expect("wait for script");
    let _ = reader.join();
    assert!(
        status.success(),
        "berth login on a terminal: {status}; showed {seen:?}"
    );
    assert!(seen.contains(USER), "the user name is echoed: {seen:?}");
    assert!(
        !seen.contains(PASSWORD),
        "the password was echoed: {seen:?}"
    );
    assert_eq!(
        config_of(&cfg)["auths"][server.as_str()]["auth"],
        auth_field(USER, PASSWORD)
    );
    drop(reg);
    d.finish();
}
