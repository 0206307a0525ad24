//! `/images/…`.

use std::sync::Arc;

use api_types::query::{
    ImageCreateQuery, ImageListQuery, ImageLoadQuery, ImagePushQuery, ImageRemoveQuery,
    ImageSaveQuery, ImageTagQuery, PruneQuery,
};
use api_types::RegistryAuth;
use hyper::StatusCode;

use crate::http::{byte_body, empty, json, progress_lines, Reply, RequestContext};
use crate::{ApiError, Backend};

fn registry_auth(cx: &RequestContext) -> Result<RegistryAuth, ApiError> {
    RegistryAuth::from_header(cx.header("x-registry-auth").unwrap_or(""))
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

/// `GET /images/json`.
pub(super) async fn list<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageListQuery = cx.query()?;
    json(StatusCode::OK, &b.image_list(query).await?)
}

/// `POST /images/create`: pull (`fromImage`); import (`fromSrc`) is refused.
pub(super) async fn create<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    match cx.query::<ImageCreateQuery>()? {
        ImageCreateQuery::Pull(query) => {
            let auth = registry_auth(&cx)?;
            Ok(progress_lines(b.image_pull(query, auth).await?))
        }
        ImageCreateQuery::Import { .. } => Err(ApiError::NotImplemented(
            "importing a root filesystem tarball (docker import, fromSrc) is not supported by berth yet".to_string(),
        )),
    }
}

/// `POST /images/load`: the archive streams in, progress streams out.
pub(super) async fn load<B: Backend>(b: Arc<B>, mut cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageLoadQuery = cx.query()?;
    let archive = cx.byte_stream()?;
    Ok(progress_lines(b.image_load(archive, query.quiet).await?))
}

/// `POST /images/prune`.
pub(super) async fn prune<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: PruneQuery = cx.query()?;
    query
        .filters
        .validate(&["dangling", "until", "label", "label!"])?;
    json(StatusCode::OK, &b.image_prune(query).await?)
}

/// `GET /images/get?names=…`.
pub(super) async fn save<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageSaveQuery = cx.query()?;
    if query.names.is_empty() {
        return Err(ApiError::InvalidParameter(
            "no image names given: expected ?names=IMAGE".to_string(),
        ));
    }
    Ok(byte_body(
        "application/x-tar",
        b.image_save(query.names).await?,
    ))
}

/// `GET /images/{name}/get`.
pub(super) async fn save_one<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let name = cx.param("name")?.to_string();
    Ok(byte_body(
        "application/x-tar",
        b.image_save(vec![name]).await?,
    ))
}

/// `GET /images/{name}/json`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &b.image_inspect(cx.param("name")?).await?)
}

/// `GET /images/{name}/history`.
pub(super) async fn history<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &b.image_history(cx.param("name")?).await?)
}

/// `POST /images/{name}/push`.
pub(super) async fn push<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImagePushQuery = cx.query()?;
    let auth = registry_auth(&cx)?;
    Ok(progress_lines(
        b.image_push(cx.param("name")?, query, auth).await?,
    ))
}

/// `POST /images/{name}/tag`.
pub(super) async fn tag<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageTagQuery = cx.query()?;
    if query.repo.is_empty() {
        return Err(ApiError::InvalidParameter(
            "repository name must have at least one component".to_string(),
        ));
    }
    b.image_tag(cx.param("name")?, &query.repo, query.tag.as_deref())
        .await?;
    Ok(empty(StatusCode::CREATED))
}

/// `DELETE /images/{name}`.
pub(super) async fn remove<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageRemoveQuery = cx.query()?;
    json(
        StatusCode::OK,
        &b.image_remove(cx.param("name")?, query).await?,
    )
}
