//! `/_ping`, `/version`, `/info`, `/system/df`, `/auth`.

use std::sync::Arc;

use api_types::models::{SystemVersion, SystemVersionComponents};
use api_types::ApiVersion;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA};
use hyper::{Method, Response, StatusCode};

use crate::http::{empty_body, json, Reply, RequestContext};
use crate::{ApiError, Backend};

/// `GET|HEAD /_ping`: how clients learn the API version before anything else; never cached.
pub(super) async fn ping<B: Backend>(_b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let head = cx.method == Method::HEAD;
    let body = if head {
        empty_body()
    } else {
        http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            http_body_util::Full::new(bytes::Bytes::from_static(b"OK")),
            |never: std::convert::Infallible| match never {},
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    if let Ok(v) = HeaderValue::from_str(&cx.config.builder_version) {
        h.insert("builder-version", v);
    }
    if head {
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    Ok(resp)
}

/// `GET /version`: the backend's versions with the API range filled in here.
pub(super) async fn version<B: Backend>(b: Arc<B>, _cx: RequestContext) -> Result<Reply, ApiError> {
    let mut v = b.version().await?;
    v.api_version = Some(ApiVersion::CURRENT.to_string());
    v.min_api_version = Some(ApiVersion::MINIMUM.to_string());
    if v.os.is_none() {
        v.os = Some(std::env::consts::OS.to_string());
    }
    fill_engine_component(&mut v);
    json(StatusCode::OK, &v)
}

/// The docker CLI prints the server's details from the "Engine" component, not from the
/// top-level fields; dockerd repeats them there, and so does this (without overriding what the
/// backend put in the component itself).
fn fill_engine_component(v: &mut SystemVersion) {
    let top: Vec<(&str, Option<String>)> = vec![
        ("ApiVersion", v.api_version.clone()),
        ("MinAPIVersion", v.min_api_version.clone()),
        ("Os", v.os.clone()),
        ("Arch", v.arch.clone()),
        ("KernelVersion", v.kernel_version.clone()),
        ("GitCommit", v.git_commit.clone()),
        ("GoVersion", v.go_version.clone()),
        ("BuildTime", v.build_time.clone()),
        (
            "Experimental",
            Some(v.experimental.unwrap_or(false).to_string()),
        ),
    ];
    let version = v.version.clone().unwrap_or_default();
    let components = v.components.get_or_insert_with(Vec::new);
    let engine = match components.iter().position(|c| c.name == "Engine") {
        Some(i) => &mut components[i],
        None => {
            components.insert(
                0,
                SystemVersionComponents {
                    name: "Engine".to_string(),
                    version,
                    details: None,
                },
            );
            &mut components[0]
        }
    };
    let details = engine.details.get_or_insert_with(Default::default);
    for (key, value) in top {
        if let Some(value) = value {
            details.entry(key.to_string()).or_insert(value);
        }
    }
}

/// `GET /info`.
pub(super) async fn info<B: Backend>(b: Arc<B>, _cx: RequestContext) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &b.info().await?)
}

/// `GET /system/df`.
pub(super) async fn disk_usage<B: Backend>(
    b: Arc<B>,
    cx: RequestContext,
) -> Result<Reply, ApiError> {
    let query: api_types::query::DiskUsageQuery = cx.query()?;
    let mut usage = b.disk_usage().await?;
    // `type=` narrows the answer, as dockerd's: what was not asked for is left empty.
    if !query.types.is_empty() {
        let asked = |t: &str| query.types.iter().any(|q| q == t);
        if !asked("container") {
            usage.containers.clear();
        }
        if !asked("image") {
            usage.images.clear();
            usage.layers_size = 0;
        }
        if !asked("volume") {
            usage.volumes.clear();
        }
        if !asked("build-cache") {
            usage.build_cache.clear();
        }
    }
    json(StatusCode::OK, &usage)
}

/// `POST /auth`: what `docker login` sends; the body's problems are 400s in dockerd's words.
pub(super) async fn auth<B: Backend>(b: Arc<B>, mut cx: RequestContext) -> Result<Reply, ApiError> {
    let config: api_types::models::generated::AuthConfig = cx.json().await?;
    json(StatusCode::OK, &b.auth(config).await?)
}
