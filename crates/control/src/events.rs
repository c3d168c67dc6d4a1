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

/// An event for the cluster health watcher, reduced to what it signals. `None` from [`parse_cluster_event`]
/// means "no particular cluster: sweep" (a scheduled event, an alarm back to OK).
pub fn parse_cluster_event(payload: &Value) -> Result<Option<crate::clusters::ClusterSignal>, EventError> {
    use crate::clusters::ClusterSignal;
    let obj = payload.as_object().ok_or_else(|| EventError("the event must be a JSON object".into()))?;
    let field = |k: &str| obj.get(k).and_then(Value::as_str);
    let detail = obj.get("detail").and_then(Value::as_object);
    let detail_str = |k: &str| -> Result<String, EventError> {
        detail
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| EventError(format!("detail.{k} must be a non-empty string")))
    };
    match (field("source"), field("detail-type")) {
        (Some("aws.events"), Some("Scheduled Event")) => Ok(None),
        (Some("aws.emr"), Some("EMR Cluster State Change")) => {
            let emr_cluster_id = detail_str("clusterId")?;
            detail_str("state")?;
            // A JSON document inside a JSON string: checked so a malformed event is refused whole.
            if let Some(reason) = detail.and_then(|d| d.get("stateChangeReason")) {
                let text =
                    reason.as_str().ok_or_else(|| EventError("detail.stateChangeReason must be a string".into()))?;
                serde_json::from_str::<Value>(text)
                    .map_err(|e| EventError(format!("detail.stateChangeReason must hold a JSON document: {e}")))?;
            }
            Ok(Some(ClusterSignal::Look { emr_cluster_id }))
        }
        (Some("aws.ec2"), Some("EC2 Spot Instance Interruption Warning")) => {
            Ok(Some(ClusterSignal::InstanceInterrupted { instance_id: detail_str("instance-id")? }))
        }
        (Some("aws.ec2"), Some("EC2 Instance Rebalance Recommendation")) => {
            Ok(Some(ClusterSignal::InstanceAtRisk { instance_id: detail_str("instance-id")? }))
        }
        (Some("aws.cloudwatch"), Some("CloudWatch Alarm State Change")) => {
            let alarm_name = detail_str("alarmName")?;
            let state = detail
                .and_then(|d| d.get("state"))
                .and_then(|s| s.get("value"))
                .and_then(Value::as_str)
                .ok_or_else(|| EventError("detail.state.value must be a string".into()))?;
            // Cluster alarms are named `<deployment>-emr-cluster-<j-id>-<what>`.
            let emr_cluster_id = alarm_name
                .split_once("-emr-cluster-")
                .and_then(|(_, rest)| {
                    let mut parts = rest.split('-');
                    match (parts.next(), parts.next()) {
                        (Some("j"), Some(id)) if !id.is_empty() => Some(format!("j-{id}")),
                        _ => None,
                    }
                })
                .ok_or_else(|| {
                    EventError(format!(
                        "alarm {alarm_name:?} is not named <deployment>-emr-cluster-<cluster id>-<what>"
                    ))
                })?;
            Ok((state == "ALARM").then_some(ClusterSignal::Alarm { emr_cluster_id, alarm_name }))
        }
        (source, detail_type) => Err(EventError(format!(
            "not an event the cluster watcher handles: source {source:?}, detail-type {detail_type:?}"
        ))),
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
    fn cluster_events_become_signals() {
        use crate::clusters::ClusterSignal;
        let emr = json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change", "detail": {
            "severity": "CRITICAL", "clusterId": "j-1ABC", "state": "TERMINATED_WITH_ERRORS", "name": "n",
            "stateChangeReason": "{\"code\":\"INSTANCE_FAILURE\",\"message\":\"spot\"}", "message": "m"}});
        assert_eq!(parse_cluster_event(&emr), Ok(Some(ClusterSignal::Look { emr_cluster_id: "j-1ABC".into() })));
        let spot = json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
            "detail": {"instance-id": "i-0abc", "instance-action": "terminate"}});
        assert_eq!(
            parse_cluster_event(&spot),
            Ok(Some(ClusterSignal::InstanceInterrupted { instance_id: "i-0abc".into() }))
        );
        let rebalance = json!({"source": "aws.ec2", "detail-type": "EC2 Instance Rebalance Recommendation", "detail": {"instance-id": "i-1"}});
        assert_eq!(
            parse_cluster_event(&rebalance),
            Ok(Some(ClusterSignal::InstanceAtRisk { instance_id: "i-1".into() }))
        );
        let alarm = |state: &str| {
            json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": "norris-dev-emr-cluster-j-2XYZ-livy", "state": {"value": state}}})
        };
        assert_eq!(
            parse_cluster_event(&alarm("ALARM")),
            Ok(Some(ClusterSignal::Alarm {
                emr_cluster_id: "j-2XYZ".into(),
                alarm_name: "norris-dev-emr-cluster-j-2XYZ-livy".into()
            }))
        );
        assert_eq!(parse_cluster_event(&alarm("OK")), Ok(None));
        let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(parse_cluster_event(&tick), Ok(None));
    }

    #[test]
    fn malformed_cluster_events_are_refused_with_the_field() {
        let bad_reason = json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change",
            "detail": {"clusterId": "j-1", "state": "TERMINATED", "stateChangeReason": "{code: USER"}});
        assert!(parse_cluster_event(&bad_reason).expect_err("bad").0.contains("stateChangeReason"));
        let no_instance =
            json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}});
        assert!(parse_cluster_event(&no_instance).expect_err("bad").0.contains("detail.instance-id"));
        let odd_alarm = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": "something-else", "state": {"value": "ALARM"}}});
        assert!(parse_cluster_event(&odd_alarm).expect_err("bad").0.contains("something-else"));
        assert!(parse_cluster_event(&json!({"source": "aws.s3", "detail-type": "Object Created"})).is_err());
    }

    #[test]
    fn other_events_are_rejected_with_what_was_seen() {
        let err = ScheduledEvent::parse(&json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change"}))
            .expect_err("rejected");
        assert!(err.0.contains("aws.emr"), "{err}");
        assert!(ScheduledEvent::parse(&json!([1, 2])).is_err());
    }
}
