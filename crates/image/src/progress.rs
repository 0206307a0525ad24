//! Progress events for long operations (loading, unpacking, saving), handed
//! to a caller-supplied callback so the CLI can draw per-layer bars and the
//! daemon can forward Docker's JSON progress stream.

/// One progress event about one object (usually a layer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Short ID of the object (12 hex characters of a layer digest), or empty
    /// for messages about the whole operation.
    pub id: String,
    /// What is happening, in Docker's words ("Loading layer", "Already exists",
    /// "Loaded image: busybox:latest").
    pub status: String,
    /// Bytes done so far.
    pub current: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

impl Progress {
    /// A message without byte counts.
    pub fn message(id: impl Into<String>, status: impl Into<String>) -> Self {
        Progress {
            id: id.into(),
            status: status.into(),
            current: 0,
            total: None,
        }
    }

    /// The event as one line of Docker's JSON progress stream
    /// (`{"status":…,"progressDetail":{"current":…,"total":…},"id":…}`).
    pub fn to_docker_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "status": self.status });
        if !self.id.is_empty() {
            v["id"] = serde_json::Value::String(self.id.clone());
        }
        if self.current > 0 || self.total.is_some() {
            let mut detail = serde_json::json!({ "current": self.current });
            if let Some(t) = self.total {
                detail["total"] = serde_json::Value::from(t);
            }
            v["progressDetail"] = detail;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_json_shape() {
        let p = Progress {
            id: "abc".into(),
            status: "Loading layer".into(),
            current: 5,
            total: Some(10),
        };
        assert_eq!(
            p.to_docker_json(),
            serde_json::json!({"status":"Loading layer","id":"abc","progressDetail":{"current":5,"total":10}})
        );
    }
}
