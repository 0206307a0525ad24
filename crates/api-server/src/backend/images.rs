//! `/images/…`.

use std::future::Future;

use api_types::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect, ImagePruneResponse,
    ImageSummary,
};
use api_types::query::{
    ImageListQuery, ImagePullQuery, ImagePushQuery, ImageRemoveQuery, PruneQuery,
};
use api_types::{ProgressMessage, RegistryAuth};

use super::{ByteStream, JsonStream};
use crate::ApiError;

/// What the image routes need from the daemon.
pub trait ImageBackend {
    /// `GET /images/json`.
    fn image_list(
        &self,
        query: ImageListQuery,
    ) -> impl Future<Output = Result<Vec<ImageSummary>, ApiError>> + Send;
    /// `GET /images/{name}/json`: by name, reference, ID or ID prefix.
    fn image_inspect(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ImageInspect, ApiError>> + Send;
    /// `GET /images/{name}/history`.
    fn image_history(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ImageHistoryResponseItem>, ApiError>> + Send;
    /// `POST /images/{name}/tag`: adds `repo:tag` (tag `latest` when `None`) to the image.
    fn image_tag(
        &self,
        name: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `DELETE /images/{name}`: untags and deletes, reporting each step.
    fn image_remove(
        &self,
        name: &str,
        query: ImageRemoveQuery,
    ) -> impl Future<Output = Result<Vec<ImageDeleteResponseItem>, ApiError>> + Send;
    /// `POST /images/create?fromImage=…`: an error before the stream starts is the response's
    /// status; one during the stream becomes an error line, as dockerd sends it.
    fn image_pull(
        &self,
        query: ImagePullQuery,
        auth: RegistryAuth,
    ) -> impl Future<Output = Result<JsonStream<ProgressMessage>, ApiError>> + Send;
    /// `POST /images/{name}/push`.
    fn image_push(
        &self,
        name: &str,
        query: ImagePushQuery,
        auth: RegistryAuth,
    ) -> impl Future<Output = Result<JsonStream<ProgressMessage>, ApiError>> + Send;
    /// `POST /images/load`: reads a docker-archive or OCI-layout tarball from `archive`.
    fn image_load(
        &self,
        archive: ByteStream,
        quiet: bool,
    ) -> impl Future<Output = Result<JsonStream<ProgressMessage>, ApiError>> + Send;
    /// `GET /images/get` and `/images/{name}/get`: a docker-archive tarball of the images.
    fn image_save(
        &self,
        names: Vec<String>,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send;
    /// `POST /images/prune`.
    fn image_prune(
        &self,
        query: PruneQuery,
    ) -> impl Future<Output = Result<ImagePruneResponse, ApiError>> + Send;
}
