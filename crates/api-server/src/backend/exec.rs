//! `/containers/{id}/exec` and `/exec/{id}/…`.

use std::future::Future;

use api_types::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, IdResponse};
use api_types::query::ResizeQuery;

use super::AttachSession;
use crate::ApiError;

/// What the exec routes need from the daemon.
pub trait ExecBackend {
    /// `POST /containers/{id}/exec`: registers a process to run in a running container.
    fn exec_create(
        &self,
        container: &str,
        config: ExecConfig,
    ) -> impl Future<Output = Result<IdResponse, ApiError>> + Send;
    /// `POST /exec/{id}/start`: starts it. With `config.detach` the backend returns `None` once
    /// the process runs; otherwise the session whose streams the server hands to the client.
    fn exec_start(
        &self,
        id: &str,
        config: ExecStartConfig,
    ) -> impl Future<Output = Result<Option<AttachSession>, ApiError>> + Send;
    /// `GET /exec/{id}/json`.
    fn exec_inspect(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ExecInspectResponse, ApiError>> + Send;
    /// `POST /exec/{id}/resize`: the exec's TTY size.
    fn exec_resize(
        &self,
        id: &str,
        size: ResizeQuery,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}
