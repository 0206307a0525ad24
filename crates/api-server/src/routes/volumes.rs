//! `/volumes/…`.

use std::sync::Arc;

use api_types::models::generated::VolumeCreateRequest;
use api_types::query::FromQuery;
use api_types::{Filters, Query, QueryError};
use hyper::StatusCode;

use crate::http::{empty, json, Reply, RequestContext};
use crate::{ApiError, Backend};

/// The `filters` parameter alone (list and prune).
struct FiltersQuery(Filters);

impl FromQuery for FiltersQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(FiltersQuery(q.filters()?))
    }
}

/// `DELETE /volumes/{name}?force=`.
struct RemoveQuery {
    force: bool,
}

impl FromQuery for RemoveQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(RemoveQuery {
            force: q.bool("force"),
        })
    }
}

/// `GET /volumes`.
pub(super) async fn list<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let FiltersQuery(filters) = cx.query()?;
    filters.validate(&["name", "label", "label!", "dangling", "driver"])?;
    json(StatusCode::OK, &b.volume_list(filters).await?)
}

/// `POST /volumes/create`.
pub(super) async fn create<B: Backend>(
    b: Arc<B>,
    mut cx: RequestContext,
) -> Result<Reply, ApiError> {
    let body: VolumeCreateRequest = cx.json_opt().await?.unwrap_or_default();
    json(StatusCode::CREATED, &b.volume_create(body).await?)
}

/// `GET /volumes/{name}`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &b.volume_inspect(cx.param("name")?).await?)
}

/// `DELETE /volumes/{name}`.
pub(super) async fn remove<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: RemoveQuery = cx.query()?;
    b.volume_remove(cx.param("name")?, query.force).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`.
pub(super) async fn prune<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let FiltersQuery(filters) = cx.query()?;
    filters.validate(&["label", "label!", "all"])?;
    json(StatusCode::OK, &b.volume_prune(filters).await?)
}
