//! `/containers/…`.

use std::sync::Arc;

use api_types::models::{
    ContainerCreateBody, ContainerUpdateBody, ContainerWaitExitError, ContainerWaitResponse,
};
use api_types::query::{
    ContainerAttachQuery, ContainerCreateQuery, ContainerInspectQuery, ContainerKillQuery,
    ContainerListQuery, ContainerLogsQuery, ContainerRemoveQuery, ContainerRenameQuery,
    ContainerStartQuery, ContainerStatsQuery, ContainerStopQuery, ContainerTopQuery,
    ContainerWaitQuery, PruneQuery, ResizeQuery,
};
use hyper::StatusCode;

use crate::http::{deferred_json, empty, json, json_lines, output_body, Reply, RequestContext};
use crate::{hijack, ApiError, Backend};

/// dockerd's rule for container names: a letter or digit, then letters, digits, `_`, `.`, `-`.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && bare.len() >= 2 {
        Ok(())
    } else {
        Err(ApiError::InvalidParameter(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// `GET /containers/json`.
pub(super) async fn list<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerListQuery = cx.query()?;
    json(StatusCode::OK, &b.list(query).await?)
}

/// `POST /containers/create`.
pub(super) async fn create<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let query: ContainerCreateQuery = cx.query()?;
    // The body is read before the name is judged: answering first would close the connection
    // under a client still writing its body, which then sees a broken pipe, not the message.
    let body = cx.json::<serde_json::Value>().await;
    if let Some(name) = &query.name {
        validate_name(name)?;
    }
    let body = body?;
    // Read here, as the body model (the current API's) has no such field any more.
    if body["MacAddress"].as_str().is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::NotImplemented(
            "Config.MacAddress (--mac-address) is not supported by berthd yet".to_string(),
        ));
    }
    let body: ContainerCreateBody = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "" | "." => ApiError::InvalidParameter(format!("invalid JSON: {}", e.inner())),
            _ => ApiError::InvalidParameter(format!("invalid JSON: {path}: {}", e.inner())),
        }
    })?;
    json(StatusCode::CREATED, &b.create(query, body).await?)
}

/// `POST /containers/prune`.
pub(super) async fn prune<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: PruneQuery = cx.query()?;
    query.filters.validate(&["until", "label", "label!"])?;
    json(StatusCode::OK, &b.prune(query).await?)
}

/// `GET /containers/{id}/json`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerInspectQuery = cx.query()?;
    json(
        StatusCode::OK,
        &b.inspect(cx.param("id")?, query.size).await?,
    )
}

/// `GET /containers/{id}/top`.
pub(super) async fn top<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerTopQuery = cx.query()?;
    json(
        StatusCode::OK,
        &b.top(cx.param("id")?, query.ps_args).await?,
    )
}

/// `GET /containers/{id}/logs`.
pub(super) async fn logs<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerLogsQuery = cx.query()?;
    if !query.stdout && !query.stderr {
        return Err(ApiError::InvalidParameter(
            "Bad parameters: you must choose at least one stream".to_string(),
        ));
    }
    let logs = b.logs(cx.param("id")?, query).await?;
    Ok(output_body(logs.tty, cx.version, logs.output))
}

/// `GET /containers/{id}/stats`.
pub(super) async fn stats<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerStatsQuery = cx.query()?;
    Ok(json_lines(b.stats(cx.param("id")?, query).await?))
}

/// `POST /containers/{id}/resize`.
pub(super) async fn resize<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let size: ResizeQuery = cx.query()?;
    b.resize(cx.param("id")?, size).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /containers/{id}/start`. A body (a HostConfig) was removed in API 1.24, as in dockerd.
pub(super) async fn start<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let query: ContainerStartQuery = cx.query()?;
    let body: Option<serde_json::Value> = cx.json_opt().await?;
    if query.checkpoint.is_some() || query.checkpoint_dir.is_some() {
        return Err(ApiError::InvalidParameter(
            "checkpoint and checkpoint-dir (docker start --checkpoint) are not supported by berthd"
                .to_string(),
        ));
    }
    if body.is_some_and(|v| !v.is_null() && v != serde_json::json!({})) {
        return Err(ApiError::InvalidParameter(
            "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24".to_string(),
        ));
    }
    b.start(cx.param("id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/stop`.
pub(super) async fn stop<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerStopQuery = cx.query()?;
    b.stop(cx.param("id")?, query).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/restart`.
pub(super) async fn restart<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerStopQuery = cx.query()?;
    b.restart(cx.param("id")?, query).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill`.
pub(super) async fn kill<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerKillQuery = cx.query()?;
    b.kill(cx.param("id")?, query.signal).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/update`.
pub(super) async fn update<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let id = cx.param("id")?.to_string();
    let body: ContainerUpdateBody = cx.json().await?;
    json(StatusCode::OK, &b.update(&id, body).await?)
}

/// `POST /containers/{id}/rename`.
pub(super) async fn rename<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerRenameQuery = cx.query()?;
    if query.name.is_empty() {
        return Err(ApiError::InvalidParameter(
            "Neither old nor new names may be empty".to_string(),
        ));
    }
    validate_name(&query.name)?;
    b.rename(cx.param("id")?, &query.name).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/pause`.
pub(super) async fn pause<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    b.pause(cx.param("id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/unpause`.
pub(super) async fn unpause<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    b.unpause(cx.param("id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/attach`: hijacked when the client upgrades, streamed otherwise.
pub(super) async fn attach<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let query: ContainerAttachQuery = cx.query()?;
    let session = b.attach(cx.param("id")?, query).await?;
    hijack::reply(&mut cx, session)
}

/// `POST /containers/{id}/wait`: headers as soon as the wait is registered, the body at the exit.
pub(super) async fn wait<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerWaitQuery = cx.query()?;
    let exit = b.wait(cx.param("id")?, query.condition).await?;
    Ok(deferred_json(async move {
        exit.await.unwrap_or_else(|e| ContainerWaitResponse {
            // dockerd reports a failed wait in the body, the status having been sent already.
            status_code: -1,
            error: Some(ContainerWaitExitError {
                message: Some(e.to_string()),
            }),
        })
    }))
}

/// `DELETE /containers/{id}`.
pub(super) async fn remove<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ContainerRemoveQuery = cx.query()?;
    b.remove(cx.param("id")?, query).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names() {
        assert!(validate_name("web").is_ok());
        assert!(validate_name("/web-1.a_b").is_ok());
        assert!(validate_name("-web").is_err());
        assert!(validate_name("a").is_err());
        assert!(validate_name("we b").is_err());
    }
}
