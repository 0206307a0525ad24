//! The body dockerd sends with every error status: `{"message": "..."}`.

use serde::{Deserialize, Serialize};

/// The JSON body of an error response; clients print `message` after "Error response from daemon".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error text, a sentence naming the object and what went wrong.
    pub message: String,
}

impl ErrorBody {
    /// An error body carrying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_dockerd_does() {
        let body = serde_json::to_string(&ErrorBody::new("page not found")).expect("serialize");
        assert_eq!(body, r#"{"message":"page not found"}"#);
    }
}
