//! The server driven by a plain HTTP client over the unix socket: the bytes and headers dockerd
//! clients depend on.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::Duration;

use api_server::{ApiError, ApiListener, ListenAddr, ServeError, SocketOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use test_double::{is_root, FakeDaemon, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

const LIMIT: Duration = Duration::from_secs(10);

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

async fn send_on(
    socket: &std::path::Path,
    req: Request<Full<Bytes>>,
) -> Response<hyper::body::Incoming> {
    let stream = UnixStream::connect(socket)
        .await
        .expect("connect to the API socket");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn.with_upgrades());
    sender.send_request(req).await.expect("send the request")
}

fn request(
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "docker");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("build the request")
}

fn call(server: &TestServer, req: Request<Full<Bytes>>) -> Answer {
    server.runtime.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let resp = send_on(server.path(), req).await;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("read the body")
                .to_bytes();
            Answer {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
        .await
        .expect("the server answers in time")
    })
}

fn get(server: &TestServer, path: &str) -> Answer {
    call(server, request(Method::GET, path, None, ""))
}

fn server() -> Option<TestServer> {
    if !is_root() {
        eprintln!("SKIPPED: the API socket is chowned to root; run as root");
        return None;
    }
    Some(TestServer::start(FakeDaemon::with_exited_container()))
}

#[test]
fn ping_headers_on_get_and_head() {
    let Some(server) = server() else { return };
    for method in [Method::GET, Method::HEAD] {
        let a = call(&server, request(method.clone(), "/_ping", None, ""));
        assert_eq!(a.status, StatusCode::OK);
        let h = |name: &str| {
            a.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(h("api-version"), "1.50");
        assert_eq!(h("docker-experimental"), "false");
        assert_eq!(h("ostype"), "linux");
        assert_eq!(h("builder-version"), "1");
        assert_eq!(h("cache-control"), "no-cache, no-store, must-revalidate");
        assert_eq!(h("pragma"), "no-cache");
        if method == Method::HEAD {
            assert_eq!(h("content-length"), "0");
            assert_eq!(a.body, "");
        } else {
            assert_eq!(a.body, "OK");
        }
    }
}

#[test]
fn version_negotiation() {
    let Some(server) = server() else { return };
    let a = get(&server, "/v1.99/version");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body,
        "{\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.50\"}\n"
    );
    let a = get(&server, "/v1.12/containers/json");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("client version 1.12 is too old. Minimum supported API version is 1.24"),
        "{}",
        a.body
    );
    // Even refused requests say which version the server speaks.
    assert_eq!(
        a.headers.get("api-version").map(|v| v.as_bytes()),
        Some(&b"1.50"[..])
    );

    for path in ["/version", "/v1.24/version", "/v1.50/version"] {
        let a = get(&server, path);
        assert_eq!(a.status, StatusCode::OK, "{path}");
        let v: serde_json::Value = serde_json::from_str(&a.body).expect("version JSON");
        assert_eq!(v["ApiVersion"], "1.50");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Os"], "linux");
    }
}

#[test]
fn unknown_routes_are_page_not_found() {
    let Some(server) = server() else { return };
    for (method, path) in [
        (Method::GET, "/nosuch"),
        (Method::GET, "/v1.50/containers/abc/nosuch"),
        (Method::DELETE, "/version"),
        (Method::GET, "/vx/version"),
        (Method::GET, "/v1.99/nosuch"),
    ] {
        let a = call(&server, request(method, path, None, ""));
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.body, "{\"message\":\"page not found\"}\n", "{path}");
        assert_eq!(
            a.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}

#[test]
fn container_create_validates_its_body() {
    let Some(server) = server() else { return };
    let post = |ct: Option<&str>, body: &str| {
        call(
            &server,
            request(Method::POST, "/v1.50/containers/create?name=x1", ct, body),
        )
    };
    let a = post(Some("application/json"), "{\"Image\": \"busybox\",");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.starts_with("{\"message\":\"invalid JSON: "),
        "{}",
        a.body
    );

    let a = post(Some("application/json"), "");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body,
        "{\"message\":\"invalid JSON: got EOF while reading request body\"}\n"
    );

    let a = post(
        Some("application/json"),
        "{\"Image\": \"busybox\", \"HostConfig\": {\"Memory\": \"lots\"}}",
    );
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("invalid JSON: HostConfig.Memory: invalid type: string \\\"lots\\\""),
        "{}",
        a.body
    );

    let a = post(Some("text/plain"), "{}");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("unsupported Content-Type header (text/plain): must be 'application/json'"),
        "{}",
        a.body
    );

    let a = call(
        &server,
        request(
            Method::POST,
            "/containers/create?name=-bad",
            Some("application/json"),
            "{}",
        ),
    );
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("Invalid container name (-bad)"),
        "{}",
        a.body
    );

    let a = post(Some("application/json"), "{\"Image\": \"busybox\"}");
    assert_eq!(a.status, StatusCode::CREATED);
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("create JSON");
    assert_eq!(v["Id"].as_str().map(str::len), Some(64));
    assert_eq!(v["Warnings"], serde_json::json!([]));
}

#[test]
fn errors_map_to_dockerd_statuses() {
    assert_eq!(
        ApiError::no_such_container("x").status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ApiError::Conflict(String::new()).status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        ApiError::InvalidParameter(String::new()).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(ApiError::NotModified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        ApiError::Forbidden(String::new()).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ApiError::Internal(String::new()).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let Some(server) = server() else { return };
    let a = get(&server, "/containers/nosuch/json");
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body, "{\"message\":\"No such container: nosuch\"}\n");
    let a = call(
        &server,
        request(Method::DELETE, "/images/reg:5000/a/b:1", None, ""),
    );
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body, "{\"message\":\"No such image: reg:5000/a/b:1\"}\n");
    let a = call(
        &server,
        request(Method::POST, "/containers/old/kill", None, ""),
    );
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = get(&server, "/containers/json?filters=%7Bnot+json");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = get(&server, "/containers/old/logs");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("you must choose at least one stream"));
    let a = get(&server, "/containers/old/top");
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED);
}

#[test]
fn pull_progress_ends_with_an_error_line() {
    let Some(server) = server() else { return };
    let a = call(
        &server,
        request(
            Method::POST,
            "/v1.50/images/create?fromImage=busybox&tag=latest",
            None,
            "",
        ),
    );
    assert_eq!(a.status, StatusCode::OK);
    let lines: Vec<&str> = a.body.lines().collect();
    assert_eq!(
        lines,
        [
            "{\"status\":\"Pulling from busybox\"}",
            "{\"id\":\"layer1\",\"status\":\"Downloading\",\"progressDetail\":{\"current\":5,\"total\":10}}",
            "{\"errorDetail\":{\"message\":\"the test backend has no registry for busybox\"},\"error\":\"the test backend has no registry for busybox\"}",
        ]
    );
    let a = call(
        &server,
        request(Method::POST, "/images/create?fromSrc=-", None, ""),
    );
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED);
    let bad_auth = Request::builder()
        .method(Method::POST)
        .uri("/images/create?fromImage=busybox")
        .header("x-registry-auth", "!!")
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(call(&server, bad_auth).status, StatusCode::BAD_REQUEST);
}

fn create(server: &TestServer, body: &str) -> String {
    let a = call(
        server,
        request(
            Method::POST,
            "/containers/create",
            Some("application/json"),
            body,
        ),
    );
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("create JSON");
    v["Id"].as_str().expect("Id").to_string()
}

/// The head of a hijack answer: status, reason phrase, headers.
struct Head {
    status: StatusCode,
    reason: Option<Vec<u8>>,
    headers: hyper::HeaderMap,
}

/// Attaches with an upgrade, starts the container, writes `stdin` and half-closes, and returns
/// the answer's head and every byte the server sent on the hijacked connection.
fn attach_upgraded(
    server: &TestServer,
    version: &str,
    id: &str,
    stdin: Option<&[u8]>,
) -> (Head, Vec<u8>) {
    server.runtime.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let q = if stdin.is_some() {
                "stream=1&stdout=1&stderr=1&stdin=1"
            } else {
                "stream=1&stdout=1&stderr=1"
            };
            let req = Request::builder()
                .method(Method::POST)
                .uri(format!("/v{version}/containers/{id}/attach?{q}"))
                .header("host", "docker")
                .header("connection", "Upgrade")
                .header("upgrade", "tcp")
                .body(Full::new(Bytes::new()))
                .expect("attach request");
            let resp = send_on(server.path(), req).await;
            let head = Head {
                status: resp.status(),
                reason: resp
                    .extensions()
                    .get::<hyper::ext::ReasonPhrase>()
                    .map(|r| r.as_bytes().to_vec()),
                headers: resp.headers().clone(),
            };
            let upgraded = hyper::upgrade::on(resp)
                .await
                .expect("the connection is upgraded");
            let mut io = TokioIo::new(upgraded);
            let start = send_on(
                server.path(),
                request(Method::POST, &format!("/containers/{id}/start"), None, ""),
            )
            .await;
            assert_eq!(start.status(), StatusCode::NO_CONTENT);
            if let Some(input) = stdin {
                test_double::write_and_close(&mut io, input).await;
            }
            let mut out = Vec::new();
            io.read_to_end(&mut out)
                .await
                .expect("read the hijacked stream");
            (head, out)
        })
        .await
        .expect("the attach session ends in time")
    })
}

#[test]
fn attach_hijacks_with_exact_multiplexed_frames() {
    let Some(server) = server() else { return };
    let id = create(
        &server,
        r#"{"Image":"busybox","Cmd":["out:hi","err:oops","exit:0"]}"#,
    );
    let (head, bytes) = attach_upgraded(&server, "1.50", &id, None);
    assert_eq!(head.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(head.reason.as_deref(), Some(&b"UPGRADED"[..]));
    let h = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(
        h("content-type"),
        "application/vnd.docker.multiplexed-stream"
    );
    assert_eq!(h("connection"), "Upgrade");
    assert_eq!(h("upgrade"), "tcp");
    assert_eq!(
        bytes,
        [
            &[1u8, 0, 0, 0, 0, 0, 0, 3][..],
            b"hi\n",
            &[2u8, 0, 0, 0, 0, 0, 0, 5][..],
            b"oops\n"
        ]
        .concat()
    );

    // Before 1.42 the same frames are announced as a raw stream.
    let id = create(&server, r#"{"Image":"busybox","Cmd":["out:x"]}"#);
    let (head, bytes) = attach_upgraded(&server, "1.41", &id, None);
    assert_eq!(
        head.headers["content-type"],
        "application/vnd.docker.raw-stream"
    );
    assert_eq!(bytes, [&[1u8, 0, 0, 0, 0, 0, 0, 2][..], b"x\n"].concat());
}

#[test]
fn attach_with_tty_is_raw_and_stdin_eof_is_passed_through() {
    let Some(server) = server() else { return };
    let id = create(
        &server,
        r#"{"Image":"busybox","Tty":true,"OpenStdin":true,"Cmd":["out:a","cat","out:z"]}"#,
    );
    let (head, bytes) = attach_upgraded(&server, "1.50", &id, Some(b"typed\n"));
    assert_eq!(
        head.headers["content-type"],
        "application/vnd.docker.raw-stream"
    );
    // "z" comes only after cat saw EOF, which only the client's half-close can cause.
    assert_eq!(String::from_utf8_lossy(&bytes), "a\ntyped\nz\n");
}

#[test]
fn attach_without_upgrade_streams_the_output_in_the_body() {
    let Some(server) = server() else { return };
    let id = create(&server, r#"{"Image":"busybox","Cmd":["out:plain"]}"#);
    let (status, ct, body) = server.runtime.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let resp = send_on(
                server.path(),
                request(
                    Method::POST,
                    &format!("/containers/{id}/attach?stream=1&stdout=1"),
                    None,
                    "",
                ),
            )
            .await;
            let status = resp.status();
            let ct = resp.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_string();
            let start = send_on(
                server.path(),
                request(Method::POST, &format!("/containers/{id}/start"), None, ""),
            )
            .await;
            assert_eq!(start.status(), StatusCode::NO_CONTENT);
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            (status, ct, body)
        })
        .await
        .expect("in time")
    });
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "application/vnd.docker.multiplexed-stream");
    assert_eq!(
        body.as_ref(),
        [&[1u8, 0, 0, 0, 0, 0, 0, 6][..], b"plain\n"].concat()
    );

    // The container has exited: a wait for "not-running" answers at once.
    let a = call(
        &server,
        request(Method::POST, &format!("/containers/{id}/wait"), None, ""),
    );
    assert_eq!(a.body, "{\"StatusCode\":0}\n");
}

#[test]
fn socket_is_root_only_and_stale_sockets_are_replaced() {
    let Some(server) = server() else { return };
    let meta = std::fs::metadata(server.path()).expect("socket metadata");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // The private directory the socket was bound in is gone: only the socket is left.
    let entries: Vec<String> = std::fs::read_dir(server.path().parent().expect("socket dir"))
        .expect("list the socket's directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["api.sock"]);

    let _guard = server.runtime.enter();
    // A live socket is not taken over.
    let again = ApiListener::bind(
        &ListenAddr::Unix(server.path().to_path_buf()),
        SocketOptions::default(),
    );
    assert!(matches!(again, Err(ServeError::InUse(_))), "{again:?}");

    // A socket nobody listens on is replaced.
    let stale = server.dir.path().join("stale/api.sock");
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind a socket and drop it"));
    let listener = ApiListener::bind(&ListenAddr::Unix(stale.clone()), SocketOptions::default())
        .expect("replace the stale socket");
    drop(listener);
    assert!(!stale.exists(), "the socket is removed with its listener");

    // A regular file is never removed.
    let file = server.dir.path().join("file.sock");
    std::fs::write(&file, "keep me").expect("write");
    let r = ApiListener::bind(&ListenAddr::Unix(file.clone()), SocketOptions::default());
    assert!(matches!(r, Err(ServeError::NotASocket(_))), "{r:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");

    // TCP is read, but bound only with mutual TLS (bind_tls): never in clear.
    let tcp = ListenAddr::parse("tcp://127.0.0.1:2375").expect("a tcp:// address");
    let r = ApiListener::bind(&tcp, SocketOptions::default());
    assert!(r
        .expect_err("plain TCP is refused")
        .to_string()
        .contains("refusing to listen on tcp://127.0.0.1:2375"));
}

#[test]
fn auth_checks_its_body_and_answers_like_dockerd() {
    let Some(server) = server() else { return };
    let post = |body: &str| {
        call(
            &server,
            request(Method::POST, "/v1.50/auth", Some("application/json"), body),
        )
    };
    let a = post("");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body,
        "{\"message\":\"invalid JSON: got EOF while reading request body\"}\n"
    );
    let a = post("{\"username\": 7}");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .starts_with("{\"message\":\"invalid JSON: username: "),
        "{}",
        a.body
    );

    let a = post(
        r#"{"username":"alice","password":"s3cret","serveraddress":"r.example:5000","email":""}"#,
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&a.body).expect("JSON"),
        serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""})
    );
    let a = post(r#"{"username":"alice","password":"no","serveraddress":"r.example:5000"}"#);
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.body
            .contains("unauthorized: incorrect username or password"),
        "{}",
        a.body
    );
}
