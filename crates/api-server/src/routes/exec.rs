//! `/containers/{id}/exec`, `/exec/{id}/…`.

use std::sync::Arc;

use api_types::models::{ExecConfig, ExecStartConfig};
use api_types::query::ResizeQuery;
use hyper::StatusCode;

use crate::http::{empty, json, Reply, RequestContext};
use crate::{hijack, ApiError, Backend};

/// `POST /containers/{id}/exec`.
pub(super) async fn create<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let id = cx.param("id")?.to_string();
    let config: ExecConfig = cx.json().await?;
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::InvalidParameter(
            "No exec command specified".to_string(),
        ));
    }
    let created = b.exec_create(&id, config).await?;
    // bollard-stubs' IdResponse serializes its field as "id"; dockerd answers "Id", and
    // case-sensitive clients (bollard itself) need that spelling.
    json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": created.id }),
    )
}

/// `POST /exec/{id}/start`: detached (200, nothing more) or hijacked like attach.
pub(super) async fn start<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let id = cx.param("id")?.to_string();
    let config: ExecStartConfig = cx.json_opt().await?.unwrap_or_default();
    let detach = config.detach.unwrap_or(false);
    match b.exec_start(&id, config).await? {
        None if detach => Ok(empty(StatusCode::OK)),
        None => Err(ApiError::Internal(format!(
            "exec {id}: the backend started it detached though the client asked to attach"
        ))),
        Some(session) => hijack::reply(&mut cx, session),
    }
}

/// `POST /exec/{id}/resize`.
pub(super) async fn resize<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let size: ResizeQuery = cx.query()?;
    b.exec_resize(cx.param("id")?, size).await?;
    Ok(empty(StatusCode::OK))
}

/// `GET /exec/{id}/json`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &b.exec_inspect(cx.param("id")?).await?)
}
