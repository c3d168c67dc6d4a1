//! The handlers of the cluster health watcher, rotation handler and job migrator arrive with the
//! cluster lifecycle. Until then their Lambdas fail every invocation loudly, so an event routed to
//! them early shows up in the Lambda error metric and the DLQ instead of vanishing.

/// The invocation error of a Lambda whose handler is not built yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {function} handler is not part of this norris build yet; the event was not processed")]
pub struct NotBuiltYet {
    /// The function's name.
    pub function: &'static str,
}

/// Handles an event for a function whose handler is not built yet: logs it and fails.
pub async fn handle_event(function: &'static str, payload: &serde_json::Value) -> Result<(), NotBuiltYet> {
    let detail_type = payload.get("detail-type").and_then(serde_json::Value::as_str).unwrap_or("");
    tracing::error!(function, detail_type, "event for a handler that is not built yet");
    Err(NotBuiltYet { function })
}
