//! Metrics in CloudWatch Embedded Metric Format: one JSON log line per tick, turned into metrics
//! by CloudWatch Logs with no API call (and no extra latency) from the Lambda.

use crate::scheduler::TickReport;
use serde_json::{json, Value};

/// The CloudWatch namespace of norris's metrics.
pub const NAMESPACE: &str = "norris";

/// The EMF documents for one tick: the tick's counters, and one document per job whose
/// watermark lag was measured (dimension `JobId`). `tick_millis` is the tick's wall time.
pub fn tick_documents(report: &TickReport, deployment: &str, tick_millis: u64) -> Vec<Value> {
    let timestamp_ms = report.now.saturating_mul(1000);
    let counters = [
        ("WindowsCut", report.windows_cut),
        ("RunsSubmitted", report.runs_submitted),
        ("RunsPublished", report.runs_published),
        ("WindowsCommitted", report.windows_committed),
        ("RunsRetried", report.runs_retried),
        ("RunsFailed", report.runs_failed),
        ("InvalidJobs", report.invalid_jobs.len()),
        ("JobFailures", report.failures.len()),
        ("RunsWaitingForCluster", report.runs_waiting_for_a_cluster),
    ];
    let mut metrics: Vec<Value> = counters.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect();
    metrics.push(json!({"Name": "TickDuration", "Unit": "Milliseconds"}));
    let mut tick = json!({
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["Deployment"]], "Metrics": metrics
        }]},
        "Deployment": deployment,
        "TickDuration": tick_millis,
    });
    for (name, value) in counters {
        tick[name] = json!(value);
    }
    let mut docs = vec![tick];
    for (job_id, lag) in &report.watermark_lag_secs {
        docs.push(json!({
            "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                "Namespace": NAMESPACE, "Dimensions": [["Deployment", "JobId"]],
                "Metrics": [{"Name": "WatermarkLag", "Unit": "Seconds"}]
            }]},
            "Deployment": deployment,
            "JobId": job_id,
            "WatermarkLag": lag,
        }));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_a_value_and_lags_carry_the_job_dimension() {
        let report = TickReport {
            now: 1_795_305_600,
            windows_cut: 3,
            runs_failed: 1,
            watermark_lag_secs: vec![("orders".into(), 420)],
            ..TickReport::default()
        };
        let docs = tick_documents(&report, "norris-prod", 12);
        let tick = &docs[0];
        for m in tick["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("name");
            assert!(tick.get(name).is_some_and(Value::is_number), "{name} has no value");
        }
        assert_eq!(tick["WindowsCut"], 3);
        assert_eq!(tick["_aws"]["Timestamp"], 1_795_305_600_000_i64);
        assert_eq!(docs[1]["JobId"], "orders");
        assert_eq!(docs[1]["WatermarkLag"], 420);
    }
}
