//! `/info`, `/version`, `/system/df`.

use std::future::Future;

use api_types::models::{DiskUsage, SystemInfo, SystemVersion};

use crate::ApiError;

/// What the system routes need from the daemon.
pub trait SystemBackend {
    /// `GET /info`: the daemon's state and configuration.
    fn info(&self) -> impl Future<Output = Result<SystemInfo, ApiError>> + Send;
    /// `GET /version`: the daemon's version and components. The server fills `ApiVersion` and
    /// `MinAPIVersion` itself, from what it negotiates.
    fn version(&self) -> impl Future<Output = Result<SystemVersion, ApiError>> + Send;
    /// `GET /system/df`: disk used by images, containers, volumes and the build cache.
    fn disk_usage(&self) -> impl Future<Output = Result<DiskUsage, ApiError>> + Send;
}
