//! Requests in, replies out: reading query strings and JSON bodies the way dockerd validates
//! them, and writing JSON, JSON-line streams, framed output and error bodies.

use std::convert::Infallible;

use api_types::query::FromQuery;
use api_types::stream::encode_frame;
use api_types::{ApiVersion, ErrorBody, ProgressMessage, Query, StdStream};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::{ByteStream, JsonStream, OutputStream};
use crate::router::PathParams;
use crate::ApiError;

/// The error type of response bodies: a stream that fails mid-way aborts the response.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: whole, streamed, or empty.
pub type Body = UnsyncBoxBody<Bytes, BodyError>;

/// What a handler returns.
pub type Reply = Response<Body>;

/// The media type of unframed attach, exec and log output.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// The media type of framed output, announced from API 1.42 on.
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// The largest JSON request body accepted; container configs are a few KiB.
const MAX_JSON_BODY: usize = 8 << 20;

/// One request as a handler sees it.
pub struct RequestContext {
    /// The API version the client speaks (from the path prefix, or berth's own).
    pub version: ApiVersion,
    /// The `{name}` captures of the route's pattern.
    pub params: PathParams,
    /// The decoded query string.
    pub query: Query,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request extensions (where hyper keeps the upgrade handle).
    pub extensions: hyper::http::Extensions,
    /// The request method.
    pub method: hyper::Method,
    /// The server's configuration.
    pub config: std::sync::Arc<crate::ServerConfig>,
    /// The body, until a reader takes it.
    pub body: Option<Incoming>,
}

impl RequestContext {
    /// A path parameter.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name)
    }

    /// The endpoint's typed query parameters.
    pub fn query<T: FromQuery>(&self) -> Result<T, ApiError> {
        Ok(T::from_query(&self.query)?)
    }

    /// A header's value as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the client asked to take the connection over (`Connection: Upgrade`,
    /// `Upgrade: tcp`), as the docker CLI does for attach and exec.
    pub fn wants_upgrade(&self) -> bool {
        let has = |name: &str, token: &str| {
            self.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                    .unwrap_or(false)
            })
        };
        has("connection", "upgrade") && (has("upgrade", "tcp") || has("upgrade", "h2c"))
    }

    /// Reads the body as JSON of type `T`, with dockerd's checks and messages: a body other than
    /// `application/json` is refused, an empty one is "invalid JSON: got EOF while reading
    /// request body", and a parse error names the field.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        match self.json_opt().await? {
            Some(v) => Ok(v),
            None => Err(ApiError::InvalidParameter(
                "invalid JSON: got EOF while reading request body".to_string(),
            )),
        }
    }

    /// As [`RequestContext::json`], but an empty body is `None` (endpoints whose body is optional).
    pub async fn json_opt<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ApiError> {
        let content_type = self.header("content-type").map(str::to_string);
        let body = http_body_util::Limited::new(self.take_body()?, MAX_JSON_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::InvalidParameter(format!("cannot read request body: {e}")))?
            .to_bytes();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if let Some(ct) = content_type {
            let media = ct.split(';').next().unwrap_or("").trim();
            if !media.is_empty() && !media.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::InvalidParameter(format!(
                    "unsupported Content-Type header ({ct}): must be 'application/json'"
                )));
            }
        }
        let mut de = serde_json::Deserializer::from_slice(&body);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                ApiError::InvalidParameter(format!("invalid JSON: {inner}"))
            } else {
                ApiError::InvalidParameter(format!("invalid JSON: {path}: {inner}"))
            }
        })?;
        de.end()
            .map_err(|e| ApiError::InvalidParameter(format!("invalid JSON: {e}")))?;
        Ok(Some(value))
    }

    /// The body as a stream of chunks (image archives).
    pub fn byte_stream(&mut self) -> Result<ByteStream, ApiError> {
        Ok(BodyStream::new(self.take_body()?)
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
            .map_err(|e| ApiError::InvalidParameter(format!("cannot read request body: {e}")))
            .boxed())
    }

    fn take_body(&mut self) -> Result<Incoming, ApiError> {
        self.body
            .take()
            .ok_or_else(|| ApiError::Internal("the request body was read twice".to_string()))
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> Body {
    Empty::new()
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Reply {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A reply with no body.
pub fn empty(status: StatusCode) -> Reply {
    let mut resp = Response::new(empty_body());
    *resp.status_mut() = status;
    resp
}

/// A JSON reply, written as dockerd writes it (one line, newline-terminated).
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Reply, ApiError> {
    let mut text = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("cannot encode the response as JSON: {e}")))?;
    text.push(b'\n');
    Ok(with_type(status, "application/json", full(text)))
}

/// The reply for a failed call: the status of its kind and `{"message": …}` (no body for 304).
pub fn error_reply(err: &ApiError) -> Reply {
    let status = err.status();
    if status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    let mut text = serde_json::to_vec(&ErrorBody::new(err.to_string()))
        .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec());
    text.push(b'\n');
    with_type(status, "application/json", full(text))
}

/// An error in plain text, for clients older than API 1.24.
pub fn plain_error_reply(err: &ApiError) -> Reply {
    let mut resp = with_type(
        err.status(),
        "text/plain; charset=utf-8",
        full(format!("{err}\n")),
    );
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn json_line<T: Serialize>(value: &T) -> Result<Bytes, BodyError> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(Bytes::from(line))
}

/// A stream of JSON lines (events, stats); an error mid-stream aborts the response.
pub fn json_lines<T: Serialize + 'static>(stream: JsonStream<T>) -> Reply {
    let frames = stream.map(|item| {
        let value = item.map_err(|e| -> BodyError { Box::new(e) })?;
        json_line(&value).map(Frame::data)
    });
    with_type(
        StatusCode::OK,
        "application/json",
        StreamBody::new(frames).boxed_unsync(),
    )
}

/// A progress stream (pull, push, load): an error mid-stream becomes a final error line, which
/// is how clients learn that the operation failed after the 200 was sent.
pub fn progress_lines(stream: JsonStream<ProgressMessage>) -> Reply {
    let frames = stream.scan(false, |failed, item| {
        if *failed {
            return futures_util::future::ready(None);
        }
        let msg = item.unwrap_or_else(|e| {
            *failed = true;
            ProgressMessage::error(e.to_string())
        });
        futures_util::future::ready(Some(json_line(&msg).map(Frame::data)))
    });
    with_type(
        StatusCode::OK,
        "application/json",
        StreamBody::new(frames).boxed_unsync(),
    )
}

/// A raw byte stream (image archives).
pub fn byte_body(content_type: &'static str, stream: ByteStream) -> Reply {
    let frames = stream.map(|item| {
        item.map(Frame::data)
            .map_err(|e| -> BodyError { Box::new(e) })
    });
    with_type(
        StatusCode::OK,
        content_type,
        StreamBody::new(frames).boxed_unsync(),
    )
}

/// Encodes an output chunk for the wire: the payload as is with a TTY, else in a frame.
pub fn encode_output(tty: bool, stream: StdStream, data: Bytes) -> Result<Bytes, BodyError> {
    if tty {
        return Ok(data);
    }
    let mut out = Vec::with_capacity(data.len() + 8);
    encode_frame(stream, &data, &mut out)?;
    Ok(Bytes::from(out))
}

/// The media type dockerd announces for output: multiplexed only without a TTY and from 1.42.
pub fn output_media_type(tty: bool, version: ApiVersion) -> &'static str {
    if !tty && version >= ApiVersion::new(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// Output (logs, the non-upgrade attach form) as a streamed 200 response.
pub fn output_body(tty: bool, version: ApiVersion, output: OutputStream) -> Reply {
    let frames = output.map(move |chunk| {
        let chunk = chunk.map_err(|e| -> BodyError { Box::new(e) })?;
        encode_output(tty, chunk.stream, chunk.data).map(Frame::data)
    });
    with_type(
        StatusCode::OK,
        output_media_type(tty, version),
        StreamBody::new(frames).boxed_unsync(),
    )
}

/// A body that sends nothing until `wait` resolves, then its JSON; headers go out at once.
pub fn deferred_json<T, F>(wait: F) -> Reply
where
    T: Serialize + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let frames = futures_util::stream::once(async move { json_line(&wait.await).map(Frame::data) });
    with_type(
        StatusCode::OK,
        "application/json",
        StreamBody::new(frames).boxed_unsync(),
    )
}
