//! `/containers/…`.

use std::future::Future;

use api_types::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerPruneResponse,
    ContainerStatsResponse, ContainerSummary, ContainerTopResponse, ContainerUpdateBody,
    ContainerUpdateResponse,
};
use api_types::query::{
    ContainerAttachQuery, ContainerCreateQuery, ContainerListQuery, ContainerLogsQuery,
    ContainerRemoveQuery, ContainerStatsQuery, ContainerStopQuery, PruneQuery, ResizeQuery,
    WaitCondition,
};

use super::{AttachSession, ExitWait, JsonStream, LogStream};
use crate::ApiError;

/// What the container routes need from the daemon. `id` is whatever the client sent: a full ID,
/// a unique ID prefix or a name; resolving it is the backend's job.
pub trait ContainerBackend {
    /// `POST /containers/create`.
    fn create(
        &self,
        query: ContainerCreateQuery,
        body: ContainerCreateBody,
    ) -> impl Future<Output = Result<ContainerCreateResponse, ApiError>> + Send;
    /// `GET /containers/{id}/json`.
    fn inspect(
        &self,
        id: &str,
        size: bool,
    ) -> impl Future<Output = Result<ContainerInspectResponse, ApiError>> + Send;
    /// `GET /containers/json`; filter names are validated by the server.
    fn list(
        &self,
        query: ContainerListQuery,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, ApiError>> + Send;
    /// `POST /containers/{id}/start`; [`ApiError::NotModified`] when already running.
    fn start(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/stop`; [`ApiError::NotModified`] when not running.
    fn stop(
        &self,
        id: &str,
        query: ContainerStopQuery,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/restart`.
    fn restart(
        &self,
        id: &str,
        query: ContainerStopQuery,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/kill`; `signal` as the client sent it (name or number), SIGKILL
    /// when `None`.
    fn kill(
        &self,
        id: &str,
        signal: Option<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/wait`, in two steps: the outer future checks the container and
    /// registers the wait (the server then sends the response headers, so a client may start the
    /// container knowing the exit will be seen); the returned [`ExitWait`] resolves at the exit.
    fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> impl Future<Output = Result<ExitWait, ApiError>> + Send;
    /// `DELETE /containers/{id}`.
    fn remove(
        &self,
        id: &str,
        query: ContainerRemoveQuery,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `GET /containers/{id}/logs`; the server checks that stdout or stderr is asked for.
    fn logs(
        &self,
        id: &str,
        query: ContainerLogsQuery,
    ) -> impl Future<Output = Result<LogStream, ApiError>> + Send;
    /// `POST /containers/{id}/attach`: the streams the server connects to the hijacked socket.
    fn attach(
        &self,
        id: &str,
        query: ContainerAttachQuery,
    ) -> impl Future<Output = Result<AttachSession, ApiError>> + Send;
    /// `POST /containers/{id}/resize`: the container's TTY size.
    fn resize(
        &self,
        id: &str,
        size: ResizeQuery,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `GET /containers/{id}/top`.
    fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> impl Future<Output = Result<ContainerTopResponse, ApiError>> + Send;
    /// `GET /containers/{id}/stats`: one sample when `query.stream` is false, else one per
    /// second until the client goes away.
    fn stats(
        &self,
        id: &str,
        query: ContainerStatsQuery,
    ) -> impl Future<Output = Result<JsonStream<ContainerStatsResponse>, ApiError>> + Send;
    /// `POST /containers/{id}/rename`; the server checks the new name is not empty.
    fn rename(&self, id: &str, new_name: &str)
        -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/pause`.
    fn pause(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/unpause`.
    fn unpause(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /containers/{id}/update`: new resource limits or restart policy.
    fn update(
        &self,
        id: &str,
        body: ContainerUpdateBody,
    ) -> impl Future<Output = Result<ContainerUpdateResponse, ApiError>> + Send;
    /// `POST /containers/prune`.
    fn prune(
        &self,
        query: PruneQuery,
    ) -> impl Future<Output = Result<ContainerPruneResponse, ApiError>> + Send;
}
