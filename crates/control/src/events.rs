//! Incoming Lambda events, checked before anything is read or written: a malformed event is
//! rejected with a reason and touches no state.

use serde_json::Value;

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rejected event: {0}")]
pub struct EventError(pub String);

/// An EventBridge scheduled event (`source: aws.events`, `detail-type: Scheduled Event`). Its
/// content is only a hint to look now: handlers re-read the truth and use their own clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// EventBridge's event id, for logs.
    pub id: String,
}

impl ScheduledEvent {
    /// Checks the event's envelope.
    pub fn parse(payload: &Value) -> Result<Self, EventError> {
        let obj = payload.as_object().ok_or_else(|| EventError("the event must be a JSON object".into()))?;
        let field = |k: &str| obj.get(k).and_then(Value::as_str);
        match (field("source"), field("detail-type")) {
            (Some("aws.events"), Some("Scheduled Event")) => {}
            (source, detail_type) => {
                return Err(EventError(format!(
                    "expected an EventBridge scheduled event (source aws.events, detail-type Scheduled Event), got source {source:?}, detail-type {detail_type:?}"
                )))
            }
        }
        Ok(ScheduledEvent { id: field("id").unwrap_or("").to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scheduled_event_is_accepted() {
        let event = json!({"version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-22T00:05:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/norris-scheduler"], "detail": {}});
        assert_eq!(ScheduledEvent::parse(&event).map(|e| e.id), Ok("53dc4d37".to_string()));
    }

    #[test]
    fn other_events_are_rejected_with_what_was_seen() {
        let err = ScheduledEvent::parse(&json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change"}))
            .expect_err("rejected");
        assert!(err.0.contains("aws.emr"), "{err}");
        assert!(ScheduledEvent::parse(&json!([1, 2])).is_err());
    }
}
