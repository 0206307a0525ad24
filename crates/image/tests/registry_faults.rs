//! Pulls and pushes against a faulty registry written here on raw TCP (so
//! it can cut a response off part-way): connections dropped mid-layer
//! (resumed with a Range request, or restarted when the registry ignores
//! ranges), 503s, 429 with Retry-After, 404, a resume that delivers wrong
//! bytes, and for pushes 5xx, 429 and connections closed unanswered on the
//! upload and manifest requests. Bound to 127.0.0.1 on a free port,
//! stopped when the test ends.

mod common;

use image::digest::Digest;
use image::reference::Reference;
use image::registry::{PullOutcome, PushOutcome, RegistryClient, RegistryError, RegistryOptions};
use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the registry does with the next request for a path.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer with this status (and `Retry-After`, if given).
    Status(u16, Option<u64>),
    /// Send the headers of a full answer and this many body bytes, then
    /// close the connection.
    DropAfter(usize),
    /// Answer a Range request with 206, but with every byte flipped.
    CorruptRange,
    /// Close the connection without answering.
    Hangup,
}

struct Fake {
    port: u16,
    /// What the registry serves, by tag or digest; pushes add to it.
    docs: Mutex<HashMap<String, (Vec<u8>, String)>>,
    /// Upload sessions in progress: their bytes so far.
    uploads: Mutex<HashMap<String, Vec<u8>>>,
    honour_range: bool,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    /// (path, Range header) of every request.
    log: Mutex<Vec<(String, Option<String>)>>,
    /// Ranges answered with the rest of the blob (206, whole bytes).
    resumed: std::sync::atomic::AtomicUsize,
}

impl Fake {
    fn inject(&self, key: &str, faults: &[Fault]) {
        self.faults
            .lock()
            .expect("lock")
            .entry(key.to_string())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// The next fault queued for `key`, taken from the queue.
    fn next_fault(&self, key: &str) -> Option<Fault> {
        self.faults
            .lock()
            .expect("lock")
            .get_mut(key)
            .and_then(|q| q.pop_front())
    }

    fn requests(&self, key: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p.ends_with(key))
            .map(|(_, r)| r.clone())
            .collect()
    }
}

async fn answer(fake: &Fake, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        // The client tries https first on loopback: a TLS hello is
        // refused by closing, as a plain-http server would.
        if !buf[0].is_ascii_uppercase() {
            return Ok(());
        }
    }
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    let text = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let header = |name: &str| {
        text.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let range = header("range");
    fake.log
        .lock()
        .expect("lock")
        .push((path.clone(), range.clone()));
    // The request body (pushes send one), by its Content-Length.
    let length = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }

    let simple = |status: u16, reason: &str, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    if path == "/v2/" {
        stream.write_all(&simple(200, "OK", "", b"{}")).await?;
        return stream.shutdown().await;
    }
    if method != "GET" {
        let reply = push_answer(fake, &method, &path, header("content-type"), body);
        if let Some(reply) = reply {
            stream.write_all(&reply).await?;
        }
        return stream.shutdown().await;
    }
    let key = path
        .strip_prefix("/v2/fake/a/manifests/")
        .or_else(|| path.strip_prefix("/v2/fake/a/blobs/"))
        .unwrap_or("")
        .to_string();
    let fault = fake.next_fault(&key);
    let doc = fake.docs.lock().expect("lock").get(&key).cloned();
    let Some((data, media_type)) = doc else {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        stream
            .write_all(&simple(404, "Not Found", "", body))
            .await?;
        return stream.shutdown().await;
    };
    let ct = format!("Content-Type: {media_type}\r\n");
    let offset = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match fault {
        Some(Fault::Status(code, after)) => {
            let extra = after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"try again later"}]}"#;
            stream
                .write_all(&simple(code, "Fault", &extra, body))
                .await?;
        }
        Some(Fault::DropAfter(n)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{ct}\r\n",
                data.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&data[..n.min(data.len())]).await?;
            stream.flush().await?;
            // Dropped without the rest: the client sees the body cut off.
            return Ok(());
        }
        Some(Fault::CorruptRange) if method == "GET" && offset.is_some() => {
            let from = offset.unwrap_or(0).min(data.len());
            let rest: Vec<u8> = data[from..].iter().map(|b| !b).collect();
            let extra = format!(
                "{ct}Content-Range: bytes {from}-{}/{}\r\n",
                data.len() - 1,
                data.len()
            );
            stream
                .write_all(&simple(206, "Partial Content", &extra, &rest))
                .await?;
        }
        _ => match offset {
            Some(from) if fake.honour_range && from < data.len() => {
                fake.resumed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let extra = format!(
                    "{ct}Content-Range: bytes {from}-{}/{}\r\n",
                    data.len() - 1,
                    data.len()
                );
                stream
                    .write_all(&simple(206, "Partial Content", &extra, &data[from..]))
                    .await?;
            }
            _ => stream.write_all(&simple(200, "OK", &ct, &data)).await?,
        },
    }
    stream.shutdown().await
}

/// The fake's answer to a push request (`HEAD`, `POST`, `PATCH`, `PUT`)
/// of repository fake/a, after its fault if one is queued; `None` hangs
/// up. Fault keys: the blob digest (`HEAD`), `uploads` (`POST`), `upload`
/// (`PATCH` and `PUT` of an upload) and the tag (manifest `PUT`).
fn push_answer(
    fake: &Fake,
    method: &str,
    path: &str,
    content_type: Option<String>,
    body: Vec<u8>,
) -> Option<Vec<u8>> {
    let reply = |status: u16, extra: String, len: usize| {
        Some(
            format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
            )
            .into_bytes(),
        )
    };
    let blob = path.strip_prefix("/v2/fake/a/blobs/");
    let upload = path.strip_prefix("/v2/fake/a/blobs/uploads/");
    let tag = path.strip_prefix("/v2/fake/a/manifests/");
    let key = match (method, upload, blob, tag) {
        ("POST", Some(_), _, _) => "uploads".to_string(),
        ("PATCH" | "PUT", Some(_), _, _) => "upload".to_string(),
        ("HEAD", None, Some(d), _) => d.to_string(),
        ("PUT", None, None, Some(t)) => t.to_string(),
        _ => return reply(405, String::new(), 0),
    };
    let fault = fake.next_fault(&key);
    match fault {
        Some(Fault::Hangup) => return None,
        Some(Fault::Status(code, after)) => {
            let extra = after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            return reply(code, extra, 0);
        }
        _ => {}
    }
    let mut docs = fake.docs.lock().expect("lock");
    let mut uploads = fake.uploads.lock().expect("lock");
    match (method, upload, blob, tag) {
        ("HEAD", None, Some(d), _) => match docs.get(d) {
            // A HEAD answer announces the length but carries no body.
            Some((data, _)) => reply(200, String::new(), data.len()),
            None => reply(404, String::new(), 0),
        },
        ("POST", Some(_), _, _) => {
            // Unique: the number of requests seen so far only grows.
            let id = format!("u{}", fake.log.lock().expect("lock").len());
            uploads.insert(id.clone(), Vec::new());
            reply(
                202,
                format!("Location: /v2/fake/a/blobs/uploads/{id}\r\n"),
                0,
            )
        }
        (_, Some(rest), _, _) => {
            let (id, query) = rest.split_once('?').unwrap_or((rest, ""));
            let Some(data) = uploads.get_mut(id) else {
                return reply(404, String::new(), 0);
            };
            data.extend_from_slice(&body);
            if method == "PATCH" {
                return reply(
                    202,
                    format!("Location: /v2/fake/a/blobs/uploads/{id}\r\n"),
                    0,
                );
            }
            let digest = query
                .strip_prefix("digest=")
                .unwrap_or("")
                .replace("%3A", ":");
            let data = uploads.remove(id).unwrap_or_default();
            if Digest::of_bytes(&data).to_string() != digest {
                return reply(400, String::new(), 0);
            }
            docs.insert(digest.clone(), (data, "application/octet-stream".into()));
            reply(201, format!("Docker-Content-Digest: {digest}\r\n"), 0)
        }
        ("PUT", None, None, Some(t)) => {
            let digest = Digest::of_bytes(&body).to_string();
            let mt = content_type.unwrap_or_default();
            docs.insert(digest.clone(), (body.clone(), mt.clone()));
            docs.insert(t.to_string(), (body, mt));
            reply(201, format!("Docker-Content-Digest: {digest}\r\n"), 0)
        }
        _ => reply(405, String::new(), 0),
    }
}

/// A running fake; dropping it stops the server, also when a test fails.
struct Server {
    fake: Arc<Fake>,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for Server {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.fake
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fake serving image A.
async fn serve(fixture: &common::FixtureImage, honour_range: bool) -> Server {
    let mut docs = HashMap::new();
    let manifest = fixture.manifest();
    let mt = image::manifest::OCI_MANIFEST.to_string();
    docs.insert("latest".to_string(), (manifest.clone(), mt.clone()));
    docs.insert(Digest::of_bytes(&manifest).to_string(), (manifest, mt));
    let octets = "application/octet-stream".to_string();
    docs.insert(
        fixture.id().to_string(),
        (fixture.config.clone(), octets.clone()),
    );
    for (b, _) in &fixture.blobs {
        docs.insert(Digest::of_bytes(b).to_string(), (b.clone(), octets.clone()));
    }
    serve_docs(docs, honour_range).await
}

/// A fake serving `docs` (empty for a push) on a free loopback port.
async fn serve_docs(docs: HashMap<String, (Vec<u8>, String)>, honour_range: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let fake = Arc::new(Fake {
        port,
        docs: Mutex::new(docs),
        uploads: Mutex::new(HashMap::new()),
        honour_range,
        faults: Mutex::new(HashMap::new()),
        log: Mutex::new(Vec::new()),
        resumed: Default::default(),
    });
    let f2 = fake.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = f2.clone();
            tokio::spawn(async move {
                let _ = answer(&fake, stream).await;
            });
        }
    });
    Server { fake, task }
}

/// Retries in milliseconds, so the tests wait only as long as the code's
/// own backoff (and a Retry-After they set) makes them.
fn client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        docker_config: None,
        certs_dir: None,
        retry_base_delay: Duration::from_millis(5),
        max_retry_delay: Duration::from_secs(5),
        ..RegistryOptions::default()
    })
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

fn need_root() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: the fixtures' device nodes need root");
        return false;
    }
    true
}

/// Pulls `fake/a:<tag>`, collecting the progress statuses.
async fn pull(
    store: &mut Store,
    fake: &Fake,
    tag: &str,
) -> (Result<PullOutcome, RegistryError>, Vec<String>) {
    let r = Reference::parse(&format!("127.0.0.1:{}/fake/a:{tag}", fake.port)).expect("ref");
    let mut events = Vec::new();
    let out = store
        .pull(&client(), &r, None, &mut |p| events.push(p.status))
        .await;
    (out, events)
}

fn no_debris(root: &Path) {
    for dir in ["content/blobs/sha256", "snapshots"] {
        for e in std::fs::read_dir(root.join(dir)).expect("list") {
            let name = e.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().starts_with(".tmp-"),
                "temporary {name:?} left in {dir}"
            );
        }
    }
}

/// How many retries the progress statuses announce.
fn retries(events: &[String]) -> usize {
    events
        .iter()
        .filter(|e| e.starts_with("Retrying in"))
        .count()
}

fn assert_not_retried(events: &[String]) {
    assert!(
        !events.iter().any(|e| e.starts_with("Retrying")),
        "{events:?}"
    );
}

/// The client waited for a `Retry-After: 1` rather than only its own
/// backoff (which waits milliseconds), and said so.
fn assert_waited_retry_after(started: Instant, events: &[String]) {
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        events.iter().any(|e| e == "Retrying in 1 second"),
        "{events:?}"
    );
}

/// What every fault test starts from: image A, a fake registry on
/// loopback (faults are injected into `fake`), and a store to pull into
/// or push from.
struct Case {
    a: common::FixtureImage,
    /// The biggest layer (the plain busybox base) of image A, as a key.
    layer: String,
    /// That layer's length in bytes.
    len: usize,
    fake: Server,
    store: Store,
    /// `fake/a:latest` at the fake.
    name: String,
    tmp: tempfile::TempDir,
}

impl Case {
    /// An empty store and a fake serving image A; `None` (said loudly)
    /// without root.
    async fn pull_from(honour_range: bool) -> Option<Case> {
        if !need_root() {
            return None;
        }
        let a = common::image_a();
        let fake = serve(&a, honour_range).await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = open(tmp.path());
        Some(Case::new(a, fake, store, tmp))
    }

    /// An empty fake and a store holding image A, tagged as `name`;
    /// `None` (said loudly) without root.
    async fn push_to() -> Option<Case> {
        if !need_root() {
            return None;
        }
        let fake = serve_docs(HashMap::new(), true).await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("src");
        let a = common::image_a();
        let archive = root.with_extension("tar");
        common::write_docker_archive(&archive, &[&a]);
        let mut store = open(&root);
        store
            .load_archive(&archive, &mut |_| {})
            .expect("load image A");
        let mut case = Case::new(a, fake, store, tmp);
        case.store
            .tag("berth-test/a:latest", &case.name)
            .expect("tag");
        Some(case)
    }

    fn new(a: common::FixtureImage, fake: Server, store: Store, tmp: tempfile::TempDir) -> Case {
        let (b, _) = &a.blobs[0];
        let (layer, len) = (Digest::of_bytes(b).to_string(), b.len());
        let name = format!("127.0.0.1:{}/fake/a:latest", fake.port);
        Case {
            a,
            layer,
            len,
            fake,
            store,
            name,
            tmp,
        }
    }

    async fn pull(&mut self) -> (Result<PullOutcome, RegistryError>, Vec<String>) {
        pull(&mut self.store, &self.fake, "latest").await
    }

    async fn push(&mut self) -> (Result<PushOutcome, RegistryError>, Vec<String>) {
        let mut events = Vec::new();
        let out = self
            .store
            .push(&client(), &self.name, &mut |p| events.push(p.status))
            .await;
        (out, events)
    }

    /// The requests for the base layer, by their Range headers.
    fn layer_requests(&self) -> Vec<Option<String>> {
        self.fake.requests(&self.layer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_cut_off_resumes_with_a_range_request() {
    let Some(mut t) = Case::pull_from(true).await else {
        return;
    };
    let cut = t.len / 3;
    t.fake.inject(&t.layer, &[Fault::DropAfter(cut)]);
    let (out, events) = t.pull().await;
    let out = out.expect("the pull resumes and completes");
    assert_eq!(out.record.id.0, t.a.id());
    let reqs = t.layer_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0], None);
    assert_eq!(reqs[1].as_deref(), Some(format!("bytes={cut}-").as_str()));
    // And the registry answered it with the rest only (206): a resume, not
    // a second whole download.
    assert_eq!(
        t.fake.resumed.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the retry was answered 206 from byte {cut}"
    );
    assert!(retries(&events) > 0, "{events:?}");
    // The unpacked layer is whole: its diff ID was checked, and the files
    // are there.
    let blob = t
        .store
        .content()
        .read(&Digest::parse(&t.layer).expect("digest"))
        .expect("the resumed blob is stored");
    assert_eq!(blob, t.a.blobs[0].0);
    no_debris(t.tmp.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_ignores_ranges_gets_the_layer_again_from_the_start() {
    let Some(mut t) = Case::pull_from(false).await else {
        return;
    };
    let cut = t.len / 2;
    t.fake.inject(&t.layer, &[Fault::DropAfter(cut)]);
    let (out, _) = t.pull().await;
    let out = out.expect("the pull restarts the layer and completes");
    assert_eq!(out.record.id.0, t.a.id());
    let reqs = t.layer_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].as_deref(), Some(format!("bytes={cut}-").as_str()));
    // Pulled again into a fresh store without faults, the rootfs is the same.
    let tmp2 = tempfile::tempdir().expect("tempdir");
    let mut clean = open(tmp2.path());
    let (out2, _) = pull(&mut clean, &t.fake, "latest").await;
    let out2 = out2.expect("a clean pull");
    let tree = |s: &Store, o: &PullOutcome| {
        let chain = &o.record.layers[0].chain_id;
        common::tree(&s.snapshotter().snapshot_dir(chain).join("fs"))
    };
    assert_eq!(tree(&t.store, &out), tree(&clean, &out2));
    no_debris(t.tmp.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_twice_then_served_is_retried() {
    let Some(mut t) = Case::pull_from(true).await else {
        return;
    };
    t.fake.inject(
        &t.layer,
        &[Fault::Status(503, None), Fault::Status(503, None)],
    );
    t.fake.inject("latest", &[Fault::Status(502, None)]);
    let (out, events) = t.pull().await;
    out.expect("retried past the 503s");
    assert_eq!(t.layer_requests().len(), 3);
    assert_eq!(t.fake.requests("/manifests/latest").len(), 2);
    assert_eq!(retries(&events), 3, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_as_long_as_retry_after_says() {
    let Some(mut t) = Case::pull_from(true).await else {
        return;
    };
    t.fake.inject(&t.layer, &[Fault::Status(429, Some(1))]);
    let started = Instant::now();
    let (out, events) = t.pull().await;
    out.expect("retried after the 429");
    assert_waited_retry_after(started, &events);
    assert_eq!(t.layer_requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_not_retried() {
    let Some(mut t) = Case::pull_from(true).await else {
        return;
    };
    let (out, _) = pull(&mut t.store, &t.fake, "nope").await;
    let err = out.expect_err("no such tag");
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(t.fake.requests("/manifests/nope").len(), 1);

    // A layer the registry does not have: one request, a clear error.
    t.fake.inject(&t.layer, &[Fault::Status(404, None)]);
    let (out, events) = t.pull().await;
    let err = out.expect_err("a missing layer fails the pull");
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&t.layer), "{err}");
    assert_eq!(t.layer_requests().len(), 1);
    assert_not_retried(&events);
    no_debris(t.tmp.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_with_wrong_bytes_stores_nothing() {
    let Some(mut t) = Case::pull_from(true).await else {
        return;
    };
    let cut = t.len / 4;
    t.fake
        .inject(&t.layer, &[Fault::DropAfter(cut), Fault::CorruptRange]);
    let (out, _) = t.pull().await;
    let err = out.expect_err("the corrupted resume must fail the pull");
    let text = err.to_string();
    assert!(
        text.contains("hashed to") || text.contains("diff ID"),
        "the error names the mismatch: {text}"
    );
    let reqs = t.layer_requests();
    assert_eq!(reqs.len(), 2, "a mismatch is not retried: {reqs:?}");
    assert!(!t
        .store
        .content()
        .contains(&Digest::parse(&t.layer).expect("digest")));
    assert!(t.store.list().is_empty(), "no image may be visible");
    assert!(
        t.store.snapshotter().list().expect("list").is_empty(),
        "no snapshot may be named"
    );
    no_debris(t.tmp.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_retries_5xx_429_and_dropped_connections() {
    let Some(mut t) = Case::push_to().await else {
        return;
    };
    t.fake.inject(&t.layer, &[Fault::Status(502, None)]);
    t.fake
        .inject("uploads", &[Fault::Status(503, None), Fault::Hangup]);
    t.fake.inject("upload", &[Fault::Hangup]);
    t.fake.inject(
        "latest",
        &[Fault::Status(429, Some(1)), Fault::Status(500, None)],
    );
    let started = Instant::now();
    let (out, events) = t.push().await;
    let out = out.expect("the push is retried past every fault");
    assert_waited_retry_after(started, &events);
    // The retries of layers and of the manifest are reported (the
    // config's are silent, as its progress is).
    assert!(retries(&events) >= 3, "{events:?}");
    assert_eq!(t.fake.requests("/manifests/latest").len(), 3);
    assert!(
        t.fake
            .faults
            .lock()
            .expect("lock")
            .values()
            .all(|q| q.is_empty()),
        "every fault was met"
    );
    let docs = t.fake.docs.lock().expect("lock").clone();
    for (b, _) in &t.a.blobs {
        assert!(
            docs.contains_key(&Digest::of_bytes(b).to_string()),
            "a layer is missing"
        );
    }
    assert!(
        docs.contains_key(&t.a.id().to_string()),
        "the config is missing"
    );
    assert_eq!(
        docs.get(&out.digest.to_string()).map(|d| d.0.len() as u64),
        Some(out.size)
    );

    // What was pushed pulls back whole.
    let mut dst = open(&t.tmp.path().join("dst"));
    let (pulled, _) = pull(&mut dst, &t.fake, "latest").await;
    let pulled = pulled.expect("pull what was pushed");
    assert_eq!(pulled.record.id.0, t.a.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_refused_for_good_is_not_retried() {
    let Some(mut t) = Case::push_to().await else {
        return;
    };
    t.fake.inject("latest", &[Fault::Status(400, None)]);
    let (out, events) = t.push().await;
    let err = out.expect_err("a 400 on the manifest fails the push");
    assert!(err.to_string().contains("manifest"), "{err}");
    assert_eq!(t.fake.requests("/manifests/latest").len(), 1);
    assert_not_retried(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema1_manifests_are_refused_naming_the_image() {
    let schema1 = br#"{"schemaVersion":1,"name":"fake/a","tag":"signed","architecture":"amd64",
        "fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
        "history":[{"v1Compatibility":"{}"}]}"#;
    // Each tag serves the manifest under its media type ("plain" without a
    // schema 1 one: recognised by its content), and the error shows it.
    let cases = [
        (
            "signed",
            image::manifest::DOCKER_SCHEMA1_SIGNED,
            image::manifest::DOCKER_SCHEMA1_SIGNED,
        ),
        (
            "unsigned",
            image::manifest::DOCKER_SCHEMA1,
            image::manifest::DOCKER_SCHEMA1,
        ),
        ("plain", "application/json", "schemaVersion 1"),
    ];
    let docs = cases
        .iter()
        .map(|(tag, mt, _)| (tag.to_string(), (schema1.to_vec(), mt.to_string())))
        .collect();
    let fake = serve_docs(docs, true).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = open(tmp.path());
    for (tag, _, shown) in cases {
        let name = format!("127.0.0.1:{}/fake/a:{tag}", fake.port);
        let (out, _) = pull(&mut store, &fake, tag).await;
        let err = out.expect_err("a schema 1 manifest is refused");
        assert!(matches!(err, RegistryError::Schema1 { .. }), "{err:?}");
        let text = err.to_string();
        eprintln!("{text}");
        assert!(text.contains(&name), "the error names the image: {text}");
        assert!(
            text.contains("schema 1") && text.contains("not supported"),
            "{text}"
        );
        assert!(text.contains(shown), "{text}");
    }
    assert!(store.list().is_empty());
    assert!(store.content().list().expect("blobs").is_empty());
}
