//! `GET /events`.

use std::sync::Arc;

use api_types::query::EventsQuery;

use crate::http::{json_lines, Reply, RequestContext};
use crate::{ApiError, Backend};

/// Streams events as JSON lines until the backend ends the stream or the client goes away.
pub(super) async fn events<B: Backend>(b: Arc<B>, cx: RequestContext) -> Result<Reply, ApiError> {
    let query: EventsQuery = cx.query()?;
    Ok(json_lines(b.subscribe(query).await?))
}
