//! Debian's `docker-registry` (the CNCF distribution registry) for push, pull and login tests:
//! on 127.0.0.1 only, with a free port, optionally behind htpasswd Basic auth.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::berthd::T;
use super::{require_tool, run};

/// Debian's docker-registry on 127.0.0.1 with a free port and its storage in `dir`; killed and
/// reaped on drop.
pub struct LocalRegistry {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl LocalRegistry {
    /// The port comes from binding port 0 and closing it; a start that loses the port to
    /// someone else in between is tried again on another.
    pub fn start(dir: &Path, user: Option<(&str, &str)>) -> LocalRegistry {
        let bin = require_tool("docker-registry", "docker-registry");
        let mut auth = String::new();
        if let Some((name, password)) = user {
            let out = run(
                Command::new(require_tool("htpasswd", "apache2-utils"))
                    .args(["-Bbn", name, password]),
                T,
            );
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            let file = dir.join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            );
        }
        let mut last = String::new();
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let cfg = dir.join(format!("config-{attempt}.yml"));
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n{auth}",
                    dir.join("data").display()
                ),
            )
            .expect("write the registry's config");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start docker-registry");
            let stderr = child.stderr.take().expect("the registry's stderr is piped");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on") || line.contains("level=fatal") {
                        let _ = tx.send(line);
                    }
                }
            });
            let mut reg = LocalRegistry { child, port };
            match rx.recv_timeout(T) {
                Ok(line) if line.contains("listening on") => return reg,
                other => {
                    let _ = reg.child.kill();
                    let _ = reg.child.wait();
                    last = format!("{other:?}");
                    if !last.contains("address already in use") {
                        panic!("docker-registry did not start: {last}");
                    }
                }
            }
        }
        panic!("docker-registry did not start on 5 ports: {last}");
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
