//! `GET /events`.

use std::future::Future;

use api_types::models::EventMessage;
use api_types::query::EventsQuery;

use super::JsonStream;
use crate::ApiError;

/// What the events route needs from the daemon.
pub trait EventsBackend {
    /// Events matching the query's filters: first those recorded since `since`, then live ones
    /// until `until` (or for as long as the client listens). Filters are validated by the server.
    fn subscribe(
        &self,
        query: EventsQuery,
    ) -> impl Future<Output = Result<JsonStream<EventMessage>, ApiError>> + Send;
}
