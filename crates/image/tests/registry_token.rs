//! The Bearer token flow, against a small registry written here (the
//! Debian registry's token auth needs a JWT-minting token server): `/v2/`
//! answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`,
//! `/token` checks Basic credentials and hands out a token, and manifests
//! and blobs are served only with `Authorization: Bearer <token>`. Bound to
//! 127.0.0.1 on a free port, stopped when the test ends.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use image::digest::Digest;
use image::reference::Reference;
use image::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use image::snapshot::SnapshotterKind;
use image::store::{Store, StoreOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "berth-test-token";

struct Fake {
    port: u16,
    blobs: HashMap<String, (Vec<u8>, &'static str)>,
    token_queries: Mutex<Vec<String>>,
}

fn respond(status: StatusCode, body: Vec<u8>, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn handle(fake: &Fake, req: &hyper::http::request::Parts, body: &[u8]) -> Response<Full<Bytes>> {
    use base64::Engine as _;
    let path = req.uri.path().to_string();
    let auth = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if path == "/token" {
        fake.token_queries
            .lock()
            .expect("lock")
            .push(req.uri.query().unwrap_or("").to_string());
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("carol:pa55")
        );
        let refresh = req.method == hyper::Method::POST
            && String::from_utf8_lossy(body)
                .contains("grant_type=refresh_token&refresh_token=refresh-me");
        if refresh {
            return respond(
                StatusCode::OK,
                format!(r#"{{"access_token":"{TOKEN}"}}"#).into_bytes(),
                &[],
            );
        }
        if auth != good {
            return respond(
                StatusCode::UNAUTHORIZED,
                br#"{"details":"incorrect username or password"}"#.to_vec(),
                &[],
            );
        }
        return respond(
            StatusCode::OK,
            format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#).into_bytes(),
            &[],
        );
    }
    if auth != format!("Bearer {TOKEN}") {
        let challenge = format!(
            r#"Bearer realm="http://127.0.0.1:{}/token",service="fake-registry",scope="repository:fake/a:pull""#,
            fake.port
        );
        return respond(
            StatusCode::UNAUTHORIZED,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
            &[("www-authenticate", challenge)],
        );
    }
    if path == "/v2/" {
        return respond(StatusCode::OK, b"{}".to_vec(), &[]);
    }
    let key = path
        .strip_prefix("/v2/fake/a/manifests/")
        .or_else(|| path.strip_prefix("/v2/fake/a/blobs/"));
    match key.and_then(|k| fake.blobs.get(k)) {
        Some((data, mt)) => respond(
            StatusCode::OK,
            data.clone(),
            &[("content-type", mt.to_string())],
        ),
        None => respond(
            StatusCode::NOT_FOUND,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
            &[],
        ),
    }
}

async fn serve(fixture: &common::FixtureImage) -> (Arc<Fake>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let mut blobs = HashMap::new();
    let manifest = fixture.manifest();
    blobs.insert(
        "latest".to_string(),
        (manifest.clone(), image::manifest::OCI_MANIFEST),
    );
    blobs.insert(
        Digest::of_bytes(&manifest).to_string(),
        (manifest, image::manifest::OCI_MANIFEST),
    );
    blobs.insert(
        fixture.id().to_string(),
        (fixture.config.clone(), "application/octet-stream"),
    );
    for (b, _) in &fixture.blobs {
        blobs.insert(
            Digest::of_bytes(b).to_string(),
            (b.clone(), "application/octet-stream"),
        );
    }
    let fake = Arc::new(Fake {
        port,
        blobs,
        token_queries: Mutex::new(Vec::new()),
    });
    let f2 = fake.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = f2.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let fake = fake.clone();
                        async move {
                            use http_body_util::BodyExt as _;
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, std::convert::Infallible>(handle(&fake, &parts, &body))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (fake, server)
}

fn client(credentials: Option<Credentials>) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        credentials,
        docker_config: None,
        certs_dir: None,
        ..RegistryOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_from_the_challenge_realm() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the fixtures' device nodes need root (CI runs as root)"
    );
    let a = common::image_a();
    let (fake, server) = serve(&a).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open_with(
        tmp.path(),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open store");
    let r = Reference::parse(&format!("127.0.0.1:{}/fake/a:latest", fake.port)).expect("ref");

    let err = store
        .pull(
            &client(Some(Credentials::new("carol", "wrong"))),
            &r,
            None,
            &mut |_| {},
        )
        .await
        .expect_err("a wrong password");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string().contains("incorrect username or password"),
        "{err}"
    );

    let out = store
        .pull(
            &client(Some(Credentials::new("carol", "pa55"))),
            &r,
            None,
            &mut |_| {},
        )
        .await
        .expect("pull with a token");
    assert_eq!(out.record.id.0, a.id());
    let queries = fake.token_queries.lock().expect("lock").clone();
    let last = queries.last().expect("a token was asked for");
    assert!(last.contains("service=fake-registry"), "{last}");
    assert!(
        last.contains("scope=repository%3Afake%2Fa%3Apull"),
        "{last}"
    );

    // docker login's identity token: exchanged for an access token.
    let tmp2 = tempfile::tempdir().expect("tempdir");
    let mut fresh = Store::open_with(
        tmp2.path(),
        StoreOptions {
            snapshotter: Some(SnapshotterKind::Copy),
            ..Default::default()
        },
    )
    .expect("open store");
    let refresh = Credentials {
        username: "<token>".into(),
        password: String::new(),
        identity_token: Some("refresh-me".into()),
    };
    let out = fresh
        .pull(&client(Some(refresh)), &r, None, &mut |_| {})
        .await
        .expect("pull with an identity token");
    assert_eq!(out.record.id.0, a.id());
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_follows_the_bearer_challenge_and_words_refusals_as_dockerd() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the fixtures' device nodes need root (CI runs as root)"
    );
    let a = common::image_a();
    let (fake, server) = serve(&a).await;
    let registry = format!("127.0.0.1:{}", fake.port);
    let c = client(None);

    c.check_login(&registry, &Credentials::new("carol", "pa55"))
        .await
        .expect("good credentials log in");
    let query = fake
        .token_queries
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .unwrap_or_default();
    assert!(
        query.contains("service=fake-registry") && query.contains("account=carol"),
        "token query: {query}"
    );

    let err = c
        .check_login(&registry, &Credentials::new("carol", "wrong"))
        .await
        .expect_err("a wrong password is refused");
    assert!(matches!(err, RegistryError::LoginRefused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{registry}/v2/\": unauthorized: incorrect username or password")
    );

    let mut refresh = Credentials::new("carol", "");
    refresh.identity_token = Some("refresh-me".to_string());
    c.check_login(&registry, &refresh)
        .await
        .expect("an identity token is exchanged by the refresh grant");
    server.abort();
}
