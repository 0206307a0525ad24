//! The API over TCP with mutual TLS (dockerd's `--tlsverify`), driven by the real docker CLI:
//! a private berthd serving its unix socket and `tcp://127.0.0.1:PORT` at once; certificates
//! (a CA, a server certificate for 127.0.0.1, a client certificate, and a second CA with its own
//! client) are made with the `openssl` CLI in the test's sandbox at test time. A client with the
//! CA's certificate is served, attach included; a client without a certificate or with another
//! CA's is refused in the handshake; `tcp://` without `--tlsverify` and a port in use stop berthd
//! at start with a clear message. Loopback only.
//!
//! Needs root, the docker CLI, openssl, Debian's busybox-static, and the binaries built first:
//! `cargo build -p berthd -p berth-monitor -p berth`.

mod compat_common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use compat_common::berthd::{berthd_with_busybox_in, stderr, stdout, workspace_binary, Berthd, T};
use compat_common::{require_root, require_tool, run, Sandbox};

/// Runs openssl, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = run(Command::new("openssl").current_dir(dir).args(args), T);
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// The PEM files of one test: `ca.pem` signs `server-*.pem` (SAN 127.0.0.1) and
/// `client-*.pem`; `other-ca.pem` signs `other-client-*.pem`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(sandbox: &Sandbox) -> Certs {
        let dir = sandbox.dir("certs");
        let ca = |name: &str| {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    &format!("/CN=berth test {name}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                    &format!("{name}-key.pem"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        ca("ca");
        ca("other-ca");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write the server's extensions");
        std::fs::write(
            dir.join("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write the client's extensions");
        let leaf = |name: &str, ca: &str, ext: &str| {
            openssl(
                &dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-subj",
                    &format!("/CN={name}"),
                    "-keyout",
                    &format!("{name}-key.pem"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-days",
                    "1",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}-key.pem"),
                    "-set_serial",
                    "0x1234",
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}-cert.pem"),
                ],
            );
        };
        leaf("server", "ca", "server.ext");
        leaf("client", "ca", "client.ext");
        leaf("other-client", "other-ca", "client.ext");
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// berthd's TLS flags.
    fn server_args(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.path("ca.pem"),
            "--tlscert".into(),
            self.path("server-cert.pem"),
            "--tlskey".into(),
            self.path("server-key.pem"),
        ]
    }
}

/// A port free on loopback now (the kernel's choice, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

/// The docker CLI against `tcp://127.0.0.1:port` with exactly the TLS flags given (no
/// DOCKER_HOST, an empty DOCKER_CONFIG so no default certificate is picked up).
fn docker_tcp(d: &Berthd, port: u16, tls: &[String], args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    cmd.args(tls)
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", &d.docker_config)
        .stdin(Stdio::null());
    run(&mut cmd, T)
}

/// The berth CLI against `tcp://127.0.0.1:port` with exactly the TLS flags given.
fn berth_tcp(port: u16, tls: &[String], args: &[&str]) -> Output {
    let mut cmd = Command::new(workspace_binary("berth"));
    cmd.args(tls)
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    run(&mut cmd, T)
}

fn client_flags(certs: &Certs, cert: &str, key: &str) -> Vec<String> {
    vec![
        "--tlsverify".into(),
        "--tlscacert".into(),
        certs.path("ca.pem"),
        "--tlscert".into(),
        certs.path(cert),
        "--tlskey".into(),
        certs.path(key),
    ]
}

#[test]
fn docker_cli_over_mutual_tls() {
    require_root("berthd");
    require_tool("docker", "docker-cli");
    require_tool("openssl", "openssl");
    let sandbox = Sandbox::new("tls");
    let certs = Certs::make(&sandbox);
    let port = free_port();
    let mut args = vec!["-H".to_string(), format!("tcp://127.0.0.1:{port}")];
    args.extend(certs.server_args());
    let d = berthd_with_busybox_in(sandbox, args);

    let good = client_flags(&certs, "client-cert.pem", "client-key.pem");
    let out = docker_tcp(
        &d,
        port,
        &good,
        &["version", "--format", "{{.Server.Version}}"],
    );
    assert!(
        out.status.success(),
        "docker version over TLS: {}",
        stderr(&out)
    );
    assert!(!stdout(&out).trim().is_empty(), "no server version");

    // Attach (a hijacked connection) over TLS, and the unix socket still serves alongside.
    let out = docker_tcp(&d, port, &good, &["run", "--rm", "busybox", "echo", "hi"]);
    assert!(
        out.status.success(),
        "docker run over TLS: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "hi\n");
    let out = d.docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        out.status.success(),
        "docker over the unix socket: {}",
        stderr(&out)
    );

    // The berth CLI: the same flags, the same answers.
    let out = berth_tcp(port, &good, &["version", "--format", "{{.Server.Version}}"]);
    assert!(
        out.status.success(),
        "berth version over TLS: {}",
        stderr(&out)
    );
    assert!(
        !stdout(&out).trim().is_empty(),
        "no server version from berth"
    );
    let out = berth_tcp(port, &good, &["run", "--rm", "busybox", "echo", "hi"]);
    assert!(out.status.success(), "berth run over TLS: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    let out = berth_tcp(port, &good, &["inspect", "--format", "{{.Id}}", "busybox"]);
    assert!(
        out.status.success(),
        "berth inspect over TLS: {}",
        stderr(&out)
    );
    let other = client_flags(&certs, "other-client-cert.pem", "other-client-key.pem");
    let out = berth_tcp(port, &other, &["ps"]);
    assert!(
        !out.status.success(),
        "berth was served with another CA's client certificate"
    );
    let out = berth_tcp(port, &[], &["ps"]);
    assert!(
        !out.status.success(),
        "berth reached tcp:// without --tlsverify"
    );
    assert!(stderr(&out).contains("--tlsverify"), "{}", stderr(&out));
    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them.
    let env_dir = d.sandbox.dir("env-certs");
    for (from, to) in [
        ("ca.pem", "ca.pem"),
        ("client-cert.pem", "cert.pem"),
        ("client-key.pem", "key.pem"),
    ] {
        std::fs::copy(certs.dir.join(from), env_dir.join(to)).expect("copy a client file");
    }
    let out = run(
        Command::new(workspace_binary("berth"))
            .args(["-H", &format!("tcp://127.0.0.1:{port}"), "ps", "-q"])
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &env_dir)
            .stdin(Stdio::null()),
        T,
    );
    assert!(
        out.status.success(),
        "berth with DOCKER_TLS_VERIFY: {}",
        stderr(&out)
    );

    // No client certificate: the handshake is refused.
    let no_cert = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        certs.path("ca.pem"),
    ];
    let out = docker_tcp(
        &d,
        port,
        &no_cert,
        &["version", "--format", "{{.Server.Version}}"],
    );
    assert!(
        !out.status.success(),
        "served a client without a certificate: {}",
        stdout(&out)
    );
    assert!(stdout(&out).trim().is_empty(), "answered: {}", stdout(&out));

    // A client certificate from another CA: refused.
    let out = docker_tcp(
        &d,
        port,
        &other,
        &["version", "--format", "{{.Server.Version}}"],
    );
    assert!(
        !out.status.success(),
        "served another CA's client: {}",
        stdout(&out)
    );
    assert!(stdout(&out).trim().is_empty(), "answered: {}", stdout(&out));

    d.finish();
}

/// berthd run directly with `config` as its daemon.json, expected to stop at start: its
/// stderr.
fn berthd_refuses_with(sandbox: &Sandbox, config: &str, args: &[String]) -> String {
    let file = sandbox.root.join("daemon.json");
    std::fs::write(&file, config).expect("write daemon.json");
    let out = run(
        Command::new(workspace_binary("berthd"))
            .arg("--data-root")
            .arg(sandbox.dir("data"))
            .arg("--exec-root")
            .arg(sandbox.dir("exec"))
            .arg("--config-file")
            .arg(&file)
            .args(args)
            .stdin(Stdio::null()),
        T,
    );
    assert!(!out.status.success(), "berthd started with {args:?}");
    stderr(&out)
}

fn berthd_refuses(sandbox: &Sandbox, args: &[String]) -> String {
    berthd_refuses_with(sandbox, "{}", args)
}

#[test]
fn tcp_without_tlsverify_and_a_busy_port_are_refused_at_start() {
    require_root("berthd");
    require_tool("openssl", "openssl");
    let sandbox = Sandbox::new("tls-refused");
    let port = free_port();

    let tcp = vec!["-H".to_string(), format!("tcp://127.0.0.1:{port}")];
    let err = berthd_refuses(&sandbox, &tcp);
    assert!(err.contains("without --tlsverify"), "{err}");
    assert!(err.contains("root"), "{err}");

    let mut server_only = tcp.clone();
    server_only.push("--tls".into());
    let err = berthd_refuses(&sandbox, &server_only);
    assert!(err.contains("--tls without --tlsverify"), "{err}");

    let certs = Certs::make(&sandbox);
    let busy = TcpListener::bind("127.0.0.1:0").expect("hold a loopback port");
    let busy_port = busy.local_addr().expect("its address").port();
    let mut args = vec!["-H".to_string(), format!("tcp://127.0.0.1:{busy_port}")];
    args.extend(certs.server_args());
    let err = berthd_refuses(&sandbox, &args);
    assert!(err.contains("already in use"), "{err}");

    // A key that is not the certificate's, given in daemon.json's keys: named, with the
    // certificate.
    let config = serde_json::json!({
        "hosts": [format!("tcp://127.0.0.1:{port}")],
        "tlsverify": true,
        "tlscacert": certs.path("ca.pem"),
        "tlscert": certs.path("server-cert.pem"),
        "tlskey": certs.path("client-key.pem"),
    });
    let err = berthd_refuses_with(&sandbox, &config.to_string(), &[]);
    assert!(
        err.contains("does not match") && err.contains("client-key.pem"),
        "{err}"
    );
    drop(busy);
}
