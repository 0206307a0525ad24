//! `/volumes/…`.

use std::future::Future;

use api_types::models::generated::{
    Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse,
};
use api_types::Filters;

use crate::ApiError;

/// What the volume routes need from the daemon.
pub trait VolumeBackend {
    /// `GET /volumes`: volumes matching `filters` (`name`, `label`, `dangling`, `driver`).
    fn volume_list(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumeListResponse, ApiError>> + Send;
    /// `POST /volumes/create`: makes a volume, or returns the one of that name.
    fn volume_create(
        &self,
        body: VolumeCreateRequest,
    ) -> impl Future<Output = Result<Volume, ApiError>> + Send;
    /// `GET /volumes/{name}`.
    fn volume_inspect(&self, name: &str) -> impl Future<Output = Result<Volume, ApiError>> + Send;
    /// `DELETE /volumes/{name}`: refused (409) while a container uses it; `force` makes a
    /// missing volume no error.
    fn volume_remove(
        &self,
        name: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /volumes/prune`: removes unused anonymous volumes (all unused ones with the
    /// `all=true` filter) matching the `label` filters.
    fn volume_prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumePruneResponse, ApiError>> + Send;
}
