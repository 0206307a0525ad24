//! Pull and push against Debian's docker-registry (the CNCF distribution
//! registry), started by each test on 127.0.0.1 with a free port, its own
//! config and storage in a temp dir, and stopped by a Drop guard. Without
//! /usr/bin/docker-registry (or without root, which the fixtures' device
//! nodes need) the tests say so and fail loudly in CI.

mod common;

use image::digest::Digest;
use image::reference::Reference;
use image::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

fn need_root_and_registry() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests unpack device nodes and need root (CI runs as root)"
    );
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} is missing: apt-get install docker-registry (listed in .ci/packages-registry)"
    );
}

/// A docker-registry process; killed and reaped on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port.
    fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Self::start_with(htpasswd, false)
    }

    /// With `tls`, the registry serves https with a self-signed
    /// certificate for 127.0.0.1 (made with the openssl command). The port is
    /// found by binding port 0 and closing it, so another test may take it
    /// before the registry binds it: a start that loses that race is tried
    /// again on a new port.
    fn start_with(htpasswd: Option<(&str, &str)>, tls: bool) -> Registry {
        need_root_and_registry();
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(htpasswd, tls) {
                Ok(reg) => return reg,
                Err(e) if e.contains("address already in use") => last = e,
                Err(e) => panic!("docker-registry did not start: {e}"),
            }
        }
        panic!("docker-registry did not start after 5 ports: {last}");
    }

    fn try_start(htpasswd: Option<(&str, &str)>, tls: bool) -> Result<Registry, String> {
        let dir = tempfile::tempdir().expect("registry tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) is needed for the auth tests");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let out = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("the openssl command (Debian's openssl) makes the test certificate");
            assert!(
                out.status.success(),
                "openssl req: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            config = config.replace(
                "  secret: berth-test\n",
                &format!(
                    "  secret: berth-test\n  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ),
            );
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let mut child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("registry stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") || line.contains("level=fatal") {
                    let _ = tx.send(line);
                }
            }
        });
        let mut reg = Registry { child, port, dir };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("listening on") => Ok(reg),
            other => {
                let _ = reg.child.kill();
                Err(format!("{other:?}"))
            }
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry keeps a blob in.
    fn blob_file(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open(root: &Path) -> Store {
    Store::open_with(
        root,
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open store")
}

fn client(credentials: Option<Credentials>) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        credentials,
        docker_config: None,
        certs_dir: None,
        ..RegistryOptions::default()
    })
}

/// A store holding the fixture images, loaded from an OCI layout.
fn store_with(root: &Path, images: &[&common::FixtureImage]) -> Store {
    let layout = root.with_extension("layout");
    common::write_oci_layout(&layout, images);
    let mut s = open(root);
    s.load_archive(&layout, &mut |_| {}).expect("load fixtures");
    s
}

/// Every entry under `dir` with its type, mode, owner, size and content
/// digest (or link target): what a container would see.
fn fingerprint(dir: &Path) -> Vec<String> {
    common::tree(dir)
        .into_iter()
        .map(|rel| {
            let p = dir.join(&rel);
            let m = std::fs::symlink_metadata(&p).expect("stat");
            let what = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).expect("readlink").display())
            } else if m.is_file() {
                Digest::of_bytes(&std::fs::read(&p).expect("read")).to_string()
            } else {
                format!("rdev {}", m.rdev())
            };
            format!(
                "{rel} {:o} {}:{} {} {what}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.len()
            )
        })
        .collect()
}

fn same_rootfs(a: &Store, b: &Store, name_a: &str, name_b: &str) {
    let ra = a.inspect(name_a).expect("inspect a").record;
    let rb = b.inspect(name_b).expect("inspect b").record;
    assert_eq!(ra.id, rb.id, "image IDs differ");
    assert_eq!(ra.layers.len(), rb.layers.len());
    for (la, lb) in ra.layers.iter().zip(&rb.layers) {
        assert_eq!(la.chain_id, lb.chain_id);
        assert_eq!(
            fingerprint(&a.snapshotter().fs_path(&la.chain_id)),
            fingerprint(&b.snapshotter().fs_path(&lb.chain_id)),
            "layer {} differs",
            la.chain_id
        );
    }
}

type Events = Vec<(String, String)>;

fn recorder(events: &mut Events) -> impl FnMut(image::progress::Progress) + Send + '_ {
    move |p| events.push((p.id, p.status))
}

fn has(events: &Events, status: &str) -> bool {
    events.iter().any(|(_, s)| s.starts_with(status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trips() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let b = common::image_b();
    let mut src = store_with(&tmp.path().join("src"), &[&a, &b]);
    let name_a = format!("{}/berth/a:latest", reg.host());
    src.tag("berth-test/a:latest", &name_a).expect("tag a");

    // Small chunks, so the base layer goes up in PATCH requests.
    let chunked = RegistryClient::new(RegistryOptions {
        upload_chunk_size: 256 << 10,
        docker_config: None,
        certs_dir: None,
        ..RegistryOptions::default()
    });
    let mut ev = Events::new();
    let pushed = src
        .push(&chunked, &name_a, &mut recorder(&mut ev))
        .await
        .expect("push a");
    assert!(
        has(&ev, "Preparing") && has(&ev, "Pushing") && has(&ev, "Pushed"),
        "{ev:?}"
    );
    // One "Pushing" per 256 KiB chunk: the busybox layer went up in PATCHes.
    assert!(
        ev.iter().filter(|(_, s)| s == "Pushing").count() > 6,
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|(_, s)| s.starts_with("latest: digest: sha256:")),
        "{ev:?}"
    );

    // A second push finds every layer there.
    let mut ev = Events::new();
    src.push(&chunked, &name_a, &mut recorder(&mut ev))
        .await
        .expect("push again");
    assert_eq!(
        ev.iter()
            .filter(|(_, s)| s == "Layer already exists")
            .count(),
        3,
        "{ev:?}"
    );

    // Pushing to another repository of the same registry mounts the blobs.
    let name_c = format!("{}/berth/c:v1", reg.host());
    src.tag(&name_a, &name_c).expect("tag c");
    let mut ev = Events::new();
    src.push(&chunked, &name_c, &mut recorder(&mut ev))
        .await
        .expect("push c");
    assert_eq!(
        ev.iter()
            .filter(|(_, s)| s == "Mounted from berth/a")
            .count(),
        3,
        "{ev:?}"
    );

    // Pull into a fresh store: the same image, the same files.
    let mut dst = open(&tmp.path().join("dst"));
    let mut ev = Events::new();
    let out = dst
        .pull(
            &client(None),
            &Reference::parse(&name_a).expect("ref"),
            None,
            &mut recorder(&mut ev),
        )
        .await
        .expect("pull a");
    assert_eq!(out.digest, pushed.digest);
    assert_eq!(out.record.id.0, a.id());
    assert!(out.updated);
    for s in [
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(has(&ev, s), "no {s:?} in {ev:?}");
    }
    assert!(
        ev.iter()
            .any(|(_, s)| *s == format!("Digest: {}", pushed.digest)),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|(_, s)| *s == format!("Status: Downloaded newer image for {name_a}")),
        "{ev:?}"
    );
    same_rootfs(&src, &dst, "berth-test/a:latest", &name_a);
    assert_eq!(
        dst.inspect(&name_a).expect("inspect").record.repo_digests,
        vec![format!("{}/berth/a@{}", reg.host(), pushed.digest)]
    );

    // Pulling again downloads nothing.
    let mut ev = Events::new();
    let again = dst
        .pull(
            &client(None),
            &Reference::parse(&name_a).expect("ref"),
            None,
            &mut recorder(&mut ev),
        )
        .await
        .expect("pull again");
    assert!(!again.updated);
    assert_eq!(
        ev.iter().filter(|(_, s)| s == "Already exists").count(),
        3,
        "{ev:?}"
    );
    assert!(!has(&ev, "Downloading"), "{ev:?}");
    assert!(has(&ev, "Status: Image is up to date for"), "{ev:?}");

    // Image B shares nothing compressed the same way; pull it by digest too.
    let name_b = format!("{}/berth/b:1.0", reg.host());
    src.tag("berth-test/b:1.0", &name_b).expect("tag b");
    let pb = src
        .push(&client(None), &name_b, &mut |_| {})
        .await
        .expect("push b");
    let by_digest =
        Reference::parse(&format!("{}/berth/b@{}", reg.host(), pb.digest)).expect("ref");
    let out = dst
        .pull(&client(None), &by_digest, None, &mut |_| {})
        .await
        .expect("pull b by digest");
    assert_eq!(out.record.id.0, b.id());
    same_rootfs(&src, &dst, "berth-test/b:1.0", &out.record.id.to_string());

    // A tag that does not exist is a clear error.
    let missing = Reference::parse(&format!("{}/berth/a:nope", reg.host())).expect("ref");
    let err = dst
        .pull(&client(None), &missing, None, &mut |_| {})
        .await
        .expect_err("no such tag");
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_auth_from_config_and_explicit_credentials() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let mut src = store_with(&tmp.path().join("src"), &[&a]);
    let name = format!("{}/private/a:latest", reg.host());
    src.tag("berth-test/a:latest", &name).expect("tag");

    // Anonymous: refused.
    let err = src
        .push(&client(None), &name, &mut |_| {})
        .await
        .expect_err("anonymous push");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    // Wrong password: an authentication error, not a hang or a 500.
    let err = src
        .push(
            &client(Some(Credentials::new("alice", "wrong"))),
            &name,
            &mut |_| {},
        )
        .await
        .expect_err("wrong password");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("unauthorized"), "{err}");

    // docker login's config.json.
    let config = tmp.path().join("config.json");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .expect("write config.json");
    let from_config = RegistryClient::new(RegistryOptions {
        docker_config: Some(config),
        certs_dir: None,
        ..RegistryOptions::default()
    });
    src.push(&from_config, &name, &mut |_| {})
        .await
        .expect("push with config.json credentials");

    // The daemon's X-Registry-Auth.
    let header = base64::engine::general_purpose::URL_SAFE.encode(format!(
        r#"{{"username":"alice","password":"s3cret","serveraddress":"{}"}}"#,
        reg.host()
    ));
    let creds = Credentials::from_x_registry_auth(&header).expect("decode header");
    let mut dst = open(&tmp.path().join("dst"));
    let out = dst
        .pull(
            &client(creds),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect("pull with explicit credentials");
    assert_eq!(out.record.id.0, a.id());
    same_rootfs(&src, &dst, "berth-test/a:latest", &name);

    let err = dst
        .pull(
            &client(Some(Credentials::new("alice", "nope"))),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect_err("pull with a wrong password");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
}

fn no_debris(root: &Path) {
    for dir in ["content/blobs/sha256", "snapshots", "metadata", "tmp"] {
        for e in std::fs::read_dir(root.join(dir)).expect("list").flatten() {
            assert!(
                !e.file_name().to_string_lossy().starts_with(".tmp-"),
                "debris {:?} in {dir}",
                e.file_name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_layer_stores_nothing() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let mut src = store_with(&tmp.path().join("src"), &[&a]);
    let name = format!("{}/berth/corrupt:latest", reg.host());
    src.tag("berth-test/a:latest", &name).expect("tag");
    src.push(&client(None), &name, &mut |_| {})
        .await
        .expect("push");

    // Flip a byte in the middle of the (uncompressed) base layer as the
    // registry stores it: same length, another digest.
    let base = Digest::of_bytes(&a.blobs[0].0);
    let file = reg.blob_file(&base);
    let mut data = std::fs::read(&file).expect("read the registry's blob");
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&file, &data).expect("corrupt the blob");

    let root = tmp.path().join("dst");
    let mut dst = open(&root);
    let err = dst
        .pull(
            &client(None),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect_err("a corrupted layer must fail the pull");
    eprintln!("pull of a corrupted layer: {err}");
    assert!(err.to_string().contains("sha256:"), "{err}");
    assert!(dst.list().is_empty(), "no image may be visible");
    assert!(
        !dst.content().contains(&base),
        "the corrupted blob was stored"
    );
    let chain = Digest::of_bytes(&a.tars[0]);
    assert!(
        !dst.snapshotter().exists(&chain),
        "a snapshot of the corrupted layer exists"
    );
    drop(dst);
    let dst = open(&root);
    no_debris(&root);
    assert!(dst.list().is_empty());
}

const CRASH_ROOT: &str = "BERTH_REGISTRY_CRASH_ROOT";
const CRASH_REF: &str = "BERTH_REGISTRY_CRASH_REF";

/// The child: pulls, and freezes (with a layer half downloaded) at the
/// first "Downloading" event so the parent can kill it there.
#[test]
#[ignore = "helper: re-executed by a_killed_pull_leaves_a_loadable_store_and_a_retry_completes"]
fn pull_crash_child() {
    let root = PathBuf::from(std::env::var_os(CRASH_ROOT).expect("run only by the crash test"));
    let name = std::env::var(CRASH_REF).expect("reference");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut store = open(&root);
    rt.block_on(async {
        let _ = store
            .pull(
                &client(None),
                &Reference::parse(&name).expect("ref"),
                None,
                &mut |p| {
                    println!("EVENT {} {}", p.id, p.status);
                    if p.status == "Downloading" {
                        println!("EVENT frozen");
                        // Hold the only runtime thread: the downloads stop
                        // mid-blob until the parent's kill -9.
                        loop {
                            std::thread::park();
                        }
                    }
                },
            )
            .await;
    });
}

fn big_layer() -> Vec<u8> {
    // 8 MiB that do not compress, so the download cannot finish before the
    // first progress event.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..8 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    common::layer_tar(&[common::Item::File("big.bin", 0o644, data)])
}

/// A loopback TCP proxy in front of a registry that counts what the
/// registry sends and the Range requests clients make, so a test can tell
/// what a pull fetched. Plain threads (not the test's runtime, whose
/// workers a test may block); stopped on drop.
struct CountingProxy {
    port: u16,
    from_registry: Arc<AtomicU64>,
    ranges: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CountingProxy {
    fn start(upstream: String) -> CountingProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let from_registry = Arc::new(AtomicU64::new(0));
        let ranges = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (bytes, rng, stopped) = (from_registry.clone(), ranges.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone client"),
                    server.try_clone().expect("clone server"),
                );
                let (mut s_read, mut c_write) = (server, client);
                let rng = rng.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let text = buf[..n].to_ascii_lowercase();
                        let found = text.windows(13).filter(|w| w == b"range: bytes=").count();
                        rng.fetch_add(found as u64, Ordering::SeqCst);
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let bytes = bytes.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        bytes.fetch_add(n as u64, Ordering::SeqCst);
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CountingProxy {
            port,
            from_registry,
            ranges,
            stop,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes the registry sent and Range requests made since the last call.
    fn take(&self) -> (u64, u64) {
        (
            self.from_registry.swap(0, Ordering::SeqCst),
            self.ranges.swap(0, Ordering::SeqCst),
        )
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The ingest files (downloads kept for resuming) of a store, with sizes.
fn ingest_files(root: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(root.join("content/ingest"))
        .expect("list ingest files")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("stat ingest file").len(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pull_leaves_a_loadable_store_and_a_retry_completes() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = common::FixtureImage::new(
        "berth-test/big:latest",
        vec![common::base_layer(), big_layer()],
        &["gzip", "plain"],
    );
    let mut src = store_with(&tmp.path().join("src"), &[&img]);
    let pushed = format!("{}/berth/big:latest", reg.host());
    src.tag("berth-test/big:latest", &pushed).expect("tag");
    src.push(&client(None), &pushed, &mut |_| {})
        .await
        .expect("push");
    // Every pull goes through the counting proxy.
    let proxy = CountingProxy::start(reg.host());
    let name = format!("{}/berth/big:latest", proxy.host());
    src.tag("berth-test/big:latest", &name).expect("tag");

    // What a whole pull fetches, for comparison.
    let mut fresh = open(&tmp.path().join("fresh"));
    fresh
        .pull(
            &client(None),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect("a whole pull");
    drop(fresh);
    let (whole, _) = proxy.take();

    let root = tmp.path().join("dst");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "pull_crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ROOT, &root)
        .env(CRASH_REF, &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the pulling child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("EVENT") && tx.send(line).is_err() {
                break;
            }
        }
    });
    let frozen = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l == "EVENT frozen" => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    child.kill().expect("kill -9 the child");
    child.wait().expect("reap the child");
    drop(rx);
    let _ = reader.join();
    assert!(frozen, "the child never reached a download");

    let mut store = open(&root);
    no_debris(&root);
    assert!(store.list().is_empty(), "a half-pulled image is visible");
    // What the killed pull had fetched survives the next open.
    let kept = ingest_files(&root);
    let kept_bytes: u64 = kept.iter().map(|(_, n)| n).sum();
    assert!(kept_bytes > 0, "the killed pull left nothing to resume");
    let sizes: std::collections::HashMap<String, u64> = img
        .blobs
        .iter()
        .map(|(b, _)| (Digest::of_bytes(b).hex().to_string(), b.len() as u64))
        .collect();
    let partial = kept
        .iter()
        .any(|(name, n)| *n > 0 && sizes.get(name).is_some_and(|size| n < size));
    proxy.take();
    let out = store
        .pull(
            &client(None),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect("the retried pull completes");
    let (retry, ranges) = proxy.take();
    eprintln!(
        "whole pull {whole} bytes; killed pull kept {kept_bytes} bytes in {kept:?}; retry {retry} bytes, {ranges} Range requests"
    );
    assert!(
        retry + kept_bytes <= whole + (16 << 10),
        "the retry fetched {retry} bytes: more than the {whole} of a whole pull less the {kept_bytes} kept"
    );
    if partial {
        assert!(
            ranges >= 1,
            "a partial blob was not resumed with a Range request"
        );
    }
    assert_eq!(out.record.id.0, img.id());
    same_rootfs(&src, &store, "berth-test/big:latest", &name);
    assert!(
        ingest_files(&root).is_empty(),
        "the published blobs left ingest files behind"
    );
    drop(store);
    let store = open(&root);
    assert!(store.resolve(&name).is_ok());
}

fn skopeo_available() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo; CI installs it)");
    }
    ok
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushed_images_pull_and_berth_pushed_images_copy() {
    assert!(
        skopeo_available() || std::env::var_os("CI").is_none(),
        "CI must have skopeo"
    );
    if !skopeo_available() {
        return;
    }
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let layout = tmp.path().join("layout");
    common::write_oci_layout(&layout, &[&a]);
    let dest = format!("docker://{}/skopeo/a:latest", reg.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:berth-test/a:latest", layout.display()),
        &dest,
    ]);
    let mut dst = open(&tmp.path().join("dst"));
    let name = format!("{}/skopeo/a:latest", reg.host());
    let out = dst
        .pull(
            &client(None),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut |_| {},
        )
        .await
        .expect("pull what skopeo pushed");
    let inspect = dst.inspect(&name).expect("inspect");
    let ours: serde_json::Value = serde_json::from_slice(&a.config).expect("fixture config");
    assert_eq!(inspect.config_json, ours);
    let diff_ids: Vec<_> = a.tars.iter().map(|t| Digest::of_bytes(t)).collect();
    assert_eq!(inspect.diff_ids, diff_ids);
    eprintln!("skopeo-pushed image pulled as {}", out.record.id);

    // What berth pushes, skopeo reads back whole.
    let back = format!("{}/berth/back:latest", reg.host());
    dst.tag(&name, &back).expect("tag");
    dst.push(&client(None), &back, &mut |_| {})
        .await
        .expect("push");
    let copy = tmp.path().join("copy");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{back}"),
        &format!("oci:{}:x", copy.display()),
    ]);
    let mut index = String::new();
    std::fs::File::open(copy.join("index.json"))
        .and_then(|mut f| f.read_to_string(&mut index))
        .expect("skopeo wrote an OCI layout");
    assert!(index.contains("\"x\""), "{index}");
}

/// The daemon spawns pulls and pushes on a multi-threaded runtime: their
/// futures must be Send. (Checked at compile time; never run.)
#[allow(dead_code)]
fn pull_and_push_futures_are_send(store: &mut Store, c: &RegistryClient, r: &Reference) {
    fn is_send<T: Send>(_: &T) {}
    let mut cb = |_p: image::progress::Progress| {};
    let f = store.pull(c, r, None, &mut cb);
    is_send(&f);
    drop(f);
    let f = store.push(c, "x", &mut cb);
    is_send(&f);
    drop(f);
    // The network half needs only a shared reference.
    let shared: &Store = store;
    let f = shared.download(c, r, None, &mut cb);
    is_send(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_platform_index_gives_the_asked_platform() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let amd = common::image_a();
    let mut arm = common::image_b();
    let mut cfg: serde_json::Value = serde_json::from_slice(&arm.config).expect("config");
    cfg["architecture"] = "arm64".into();
    arm.config = serde_json::to_vec(&cfg).expect("config json");
    let mut src = store_with(&tmp.path().join("src"), &[&amd, &arm]);
    let mut manifests = Vec::new();
    for (local, tag, arch) in [
        ("berth-test/a:latest", "amd64", "amd64"),
        ("berth-test/b:1.0", "arm64", "arm64"),
    ] {
        let name = format!("{}/berth/multi:{tag}", reg.host());
        src.tag(local, &name).expect("tag");
        let p = src
            .push(&client(None), &name, &mut |_| {})
            .await
            .expect("push");
        manifests.push(serde_json::json!({
            "mediaType": image::manifest::OCI_MANIFEST,
            "digest": p.digest.to_string(),
            "size": p.size,
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::manifest::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("index json");
    let top = Reference::parse(&format!("{}/berth/multi:latest", reg.host())).expect("ref");
    let session = client(None)
        .session(&top, image::registry::Access::Push, &[])
        .await
        .expect("session");
    let index_digest = session
        .put_manifest("latest", image::manifest::OCI_INDEX, index)
        .await
        .expect("put the index");

    let mut dst = open(&tmp.path().join("dst"));
    let out = dst
        .pull(&client(None), &top, None, &mut |_| {})
        .await
        .expect("pull default platform");
    assert_eq!(out.record.id.0, amd.id(), "linux/amd64 is the default");
    assert_eq!(
        out.digest, index_digest,
        "the repo digest is the index's, as docker records it"
    );
    let arm64: image::manifest::Platform = "linux/arm64".parse().expect("platform");
    let out = dst
        .pull(&client(None), &top, Some(&arm64), &mut |_| {})
        .await
        .expect("pull arm64");
    assert_eq!(out.record.id.0, arm.id());
    assert_eq!(out.record.platform.architecture, "arm64");
    let s390x: image::manifest::Platform = "linux/s390x".parse().expect("platform");
    let err = dst
        .pull(&client(None), &top, Some(&s390x), &mut |_| {})
        .await
        .expect_err("no s390x");
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_empty_layers_are_fetched_once() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = common::layer_tar(&[]);
    let img = common::FixtureImage::new(
        "berth-test/empty:latest",
        vec![
            common::base_layer(),
            empty.clone(),
            common::other_layer(),
            empty,
        ],
        &["gzip", "gzip", "plain", "gzip"],
    );
    let mut src = store_with(&tmp.path().join("src"), &[&img]);
    let name = format!("{}/berth/empty:latest", reg.host());
    src.tag("berth-test/empty:latest", &name).expect("tag");
    let mut ev = Events::new();
    src.push(&client(None), &name, &mut recorder(&mut ev))
        .await
        .expect("push");
    assert_eq!(
        ev.iter().filter(|(_, s)| s == "Pushed").count(),
        3,
        "{ev:?}"
    );
    let mut dst = open(&tmp.path().join("dst"));
    let mut ev = Events::new();
    let out = dst
        .pull(
            &client(None),
            &Reference::parse(&name).expect("ref"),
            None,
            &mut recorder(&mut ev),
        )
        .await
        .expect("pull");
    assert_eq!(out.record.id.0, img.id());
    assert_eq!(out.record.layers.len(), 4);
    assert_eq!(
        ev.iter().filter(|(_, s)| s == "Pulling fs layer").count(),
        3,
        "{ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|(_, s)| s == "Pull complete").count(),
        4,
        "{ev:?}"
    );
    same_rootfs(&src, &dst, "berth-test/empty:latest", &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_on_loopback_is_spoken_to_over_tls() {
    let reg = Registry::start_with(None, true);
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = common::image_a();
    let mut src = store_with(&tmp.path().join("src"), &[&a]);
    let name = format!("{}/berth/tls:latest", reg.host());
    src.tag("berth-test/a:latest", &name).expect("tag");
    let r = Reference::parse(&name).expect("ref");
    // Loopback is insecure as in dockerd: https first, certificate unchecked.
    let session = client(None)
        .session(&r, image::registry::Access::Pull, &[])
        .await
        .expect("session");
    assert_eq!(session.base_url().scheme(), "https");
    src.push(&client(None), &name, &mut |_| {})
        .await
        .expect("push over TLS");
    let mut dst = open(&tmp.path().join("dst"));
    let out = dst
        .pull(&client(None), &r, None, &mut |_| {})
        .await
        .expect("pull over TLS");
    assert_eq!(out.record.id.0, a.id());
}
