//! `/info`, `/version`, `/system/df`, `/auth`.

use std::future::Future;

use api_types::models::generated::{AuthConfig, AuthResponse};
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
    /// `POST /auth`: checks the credentials against the registry `serveraddress` names (Docker
    /// Hub when empty) and answers `Login Succeeded`; a refusal is a 401 whose text the docker
    /// CLI prints. The daemon keeps nothing: the client stores the credentials.
    fn auth(
        &self,
        config: AuthConfig,
    ) -> impl Future<Output = Result<AuthResponse, ApiError>> + Send;
}
