//! `/networks/…`.

use std::sync::Arc;

use api_types::models::generated::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use api_types::query::{NetworkInspectQuery, NetworkListQuery, PruneQuery};
use hyper::StatusCode;

use crate::http::{empty, json, Reply, RequestContext};
use crate::{ApiError, Backend};

/// `GET /networks`.
pub(super) async fn list<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: NetworkListQuery = cx.query()?;
    json(StatusCode::OK, &b.network_list(query).await?)
}

/// `GET /networks/{id}`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: NetworkInspectQuery = cx.query()?;
    json(
        StatusCode::OK,
        &b.network_inspect(cx.param("id")?, query).await?,
    )
}

/// `POST /networks/create`.
pub(super) async fn create<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let body: NetworkCreateRequest = cx.json().await?;
    if body.name.is_empty() {
        return Err(ApiError::InvalidParameter(
            "network name must not be empty".to_string(),
        ));
    }
    json(StatusCode::CREATED, &b.network_create(body).await?)
}

/// `DELETE /networks/{id}`.
pub(super) async fn remove<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    b.network_remove(cx.param("id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /networks/{id}/connect`.
pub(super) async fn connect<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let body: NetworkConnectRequest = cx.json().await?;
    b.network_connect(cx.param("id")?, body).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect`.
pub(super) async fn disconnect<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let body: NetworkDisconnectRequest = cx.json().await?;
    b.network_disconnect(cx.param("id")?, body).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/prune`.
pub(super) async fn prune<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: PruneQuery = cx.query()?;
    query.filters.validate(&["until", "label", "label!"])?;
    json(StatusCode::OK, &b.network_prune(query).await?)
}
