//! `/networks/…`.

use std::future::Future;

use api_types::models::generated::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkInspect, NetworkPruneResponse,
};
use api_types::query::{NetworkInspectQuery, NetworkListQuery, PruneQuery};

use crate::ApiError;

/// What the network routes need from the daemon.
pub trait NetworkBackend {
    /// `GET /networks`: every network matching the filters (validated by the server), without
    /// their containers, as dockerd lists them.
    fn network_list(
        &self,
        query: NetworkListQuery,
    ) -> impl Future<Output = Result<Vec<NetworkInspect>, ApiError>> + Send;
    /// `GET /networks/{id}`: one network by full ID, name or unique ID prefix, with its
    /// containers.
    fn network_inspect(
        &self,
        id: &str,
        query: NetworkInspectQuery,
    ) -> impl Future<Output = Result<NetworkInspect, ApiError>> + Send;
    /// `POST /networks/create`.
    fn network_create(
        &self,
        body: NetworkCreateRequest,
    ) -> impl Future<Output = Result<NetworkCreateResponse, ApiError>> + Send;
    /// `DELETE /networks/{id}`: refused with 403 for the predefined networks and 409 (dockerd
    /// says 403 too) while containers are connected.
    fn network_remove(&self, id: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /networks/{id}/connect`.
    fn network_connect(
        &self,
        id: &str,
        body: NetworkConnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /networks/{id}/disconnect`.
    fn network_disconnect(
        &self,
        id: &str,
        body: NetworkDisconnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /networks/prune`: removes user-defined networks no container uses.
    fn network_prune(
        &self,
        query: PruneQuery,
    ) -> impl Future<Output = Result<NetworkPruneResponse, ApiError>> + Send;
}
