//! The JSON progress messages of pull, push, load and import (moby's `jsonmessage`).
//!
//! Each message is one JSON object on its own line; the docker CLI draws a progress bar per `id`
//! from `progressDetail` and stops with an error when a message carries `errorDetail`.

use serde::{Deserialize, Serialize};

pub use bollard_stubs::models::{ErrorDetail, ProgressDetail};

/// One line of a progress stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressMessage {
    /// The layer or object the line is about (a short layer ID, a tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happens ("Downloading", "Pull complete", "Loaded image: busybox:latest").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Bytes done and expected, for the progress bar.
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// A pre-rendered progress bar, for clients that do not draw their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Plain text output (load writes "Loaded image: …" here when not quiet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The failure that ended the stream; clients exit non-zero when they see it.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// The same failure as plain text, kept for old clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extra data (push writes the pushed digest and size here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl ProgressMessage {
    /// A status line about `id` ("Downloading" for layer "a3ed95caeb02").
    pub fn status(id: Option<&str>, status: impl Into<String>) -> Self {
        Self {
            id: id.map(str::to_string),
            status: Some(status.into()),
            ..Self::default()
        }
    }

    /// A status line with bytes done out of a total.
    pub fn progress(id: &str, status: impl Into<String>, current: i64, total: Option<i64>) -> Self {
        Self {
            id: Some(id.to_string()),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total,
            }),
            ..Self::default()
        }
    }

    /// The final line of a failed operation, with both the detail and the plain text form.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error_detail: Some(ErrorDetail {
                message: Some(message.clone()),
                ..ErrorDetail::default()
            }),
            error: Some(message),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let line = serde_json::to_string(&ProgressMessage::progress(
            "abc",
            "Downloading",
            5,
            Some(10),
        ))
        .expect("serialize");
        assert_eq!(
            line,
            r#"{"id":"abc","status":"Downloading","progressDetail":{"current":5,"total":10}}"#
        );
        let err = serde_json::to_string(&ProgressMessage::error("boom")).expect("serialize");
        assert_eq!(err, r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#);
    }
}
