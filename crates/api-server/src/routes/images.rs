//! `/images/…`.

use std::sync::Arc;

use api_types::query::{
    ImageCreateQuery, ImageInspectQuery, ImageListQuery, ImageLoadQuery, ImagePushQuery,
    ImageRemoveQuery, ImageSaveQuery, ImageTagQuery, PlatformSpec, PruneQuery,
};
use api_types::RegistryAuth;
use hyper::StatusCode;

use crate::http::{byte_body, empty, json, progress_lines, Reply, RequestContext};
use crate::{ApiError, Backend};

fn registry_auth(cx: &RequestContext) -> Result<RegistryAuth, ApiError> {
    RegistryAuth::from_header(cx.header("x-registry-auth").unwrap_or(""))
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

/// A `platform` parameter applied: berth keeps one platform per image, so the image named
/// must be of it (dockerd's 404 when the store has no such variant).
async fn require_platform<B: Backend>(
    b: &B,
    name: &str,
    platform: Option<&PlatformSpec>,
) -> Result<(), ApiError> {
    let Some(p) = platform else {
        return Ok(());
    };
    let image = b.image_inspect(name).await?;
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let (os, arch, variant) = (
        field(&image.os),
        field(&image.architecture),
        field(&image.variant),
    );
    if p.matches(&os, &arch, &variant) {
        return Ok(());
    }
    Err(ApiError::NotFound(format!(
        "image {name} is {os}/{arch}, not of the requested platform {p}"
    )))
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
    if let Some(p) = &query.platform {
        return Err(ApiError::InvalidParameter(format!(
            "platform={p} is not supported by berthd's image load: it loads the archive's one platform"
        )));
    }
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
    for n in &query.names {
        require_platform(&*b, n, query.platform.as_ref()).await?;
    }
    Ok(byte_body(
        "application/x-tar",
        b.image_save(query.names).await?,
    ))
}

/// `GET /images/{name}/get`.
pub(super) async fn save_one<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let name = cx.param("name")?.to_string();
    let query: ImageSaveQuery = cx.query()?;
    require_platform(&*b, &name, query.platform.as_ref()).await?;
    Ok(byte_body(
        "application/x-tar",
        b.image_save(vec![name]).await?,
    ))
}

/// `GET /images/{name}/json`.
pub(super) async fn inspect<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageInspectQuery = cx.query()?;
    if query.manifests {
        return Err(ApiError::InvalidParameter(
            "manifests=1 is not supported by berthd: it keeps one platform's manifest per image"
                .to_string(),
        ));
    }
    let name = cx.param("name")?;
    require_platform(&*b, name, query.platform.as_ref()).await?;
    json(StatusCode::OK, &b.image_inspect(name).await?)
}

/// `GET /images/{name}/history`.
pub(super) async fn history<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: ImageInspectQuery = cx.query()?;
    let name = cx.param("name")?;
    require_platform(&*b, name, query.platform.as_ref()).await?;
    json(StatusCode::OK, &b.image_history(name).await?)
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
    if !query.platforms.is_empty() {
        // One platform per image: removing "its" platform removes the image, any other is a 404.
        let name = cx.param("name")?;
        let mut last = Ok(());
        for p in &query.platforms {
            last = require_platform(&*b, name, Some(p)).await;
            if last.is_ok() {
                break;
            }
        }
        last?;
    }
    json(
        StatusCode::OK,
        &b.image_remove(cx.param("name")?, query).await?,
    )
}
