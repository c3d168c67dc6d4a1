//! Livy's batch JSON, as documented (Livy 0.8/0.9 REST API).

use norris_ports::{BatchPhase, BatchSubmission};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /batches` body. Optional fields are left out when unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// Application file (required).
    pub file: String,
    /// User to impersonate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_user: Option<String>,
    /// Main class (jars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Application arguments.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub args: Vec<String>,
    /// Jars.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub jars: Vec<String>,
    /// Python files.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub py_files: Vec<String>,
    /// Files.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub files: Vec<String>,
    /// Driver memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_memory: Option<String>,
    /// Driver cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_cores: Option<i64>,
    /// Executor memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_memory: Option<String>,
    /// Executor cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_cores: Option<i64>,
    /// Number of executors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_executors: Option<i64>,
    /// YARN queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Batch name (unique among the batches Livy holds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Spark configuration.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub conf: BTreeMap<String, String>,
}

impl BatchRequest {
    /// The request for a norris submission.
    pub fn from_submission(s: &BatchSubmission) -> Self {
        BatchRequest {
            file: s.file.clone(),
            args: s.args.clone(),
            jars: s.jars.clone(),
            py_files: s.py_files.clone(),
            driver_memory: s.driver_memory.clone(),
            executor_memory: s.executor_memory.clone(),
            executor_cores: s.executor_cores,
            num_executors: s.num_executors,
            name: Some(s.name.clone()),
            conf: s.conf.iter().cloned().collect(),
            ..BatchRequest::default()
        }
    }
}

/// Livy's batch states; anything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// spark-submit launched.
    Starting,
    /// Application running.
    Running,
    /// Finished successfully (final).
    Success,
    /// Failed (final).
    Dead,
    /// Killed (final).
    Killed,
    /// After a Livy restart in recovery mode.
    Recovering,
    /// Error.
    Error,
    /// Any other (interactive-session) state.
    #[serde(untagged)]
    Unknown(String),
}

impl BatchState {
    /// The port's view of the state.
    pub fn phase(&self) -> BatchPhase {
        match self {
            BatchState::Starting => BatchPhase::Starting,
            BatchState::Running => BatchPhase::Running,
            BatchState::Success => BatchPhase::Succeeded,
            BatchState::Dead | BatchState::Error => BatchPhase::Failed,
            BatchState::Killed => BatchPhase::Killed,
            BatchState::Recovering => BatchPhase::Other("recovering".into()),
            BatchState::Unknown(s) => BatchPhase::Other(s.clone()),
        }
    }
}

/// The Batch object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// Livy's id (not durable: ids restart at 0 after a restart).
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Proxy user.
    #[serde(default)]
    pub proxy_user: Option<String>,
    /// State.
    pub state: BatchState,
    /// Spark application id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Links (values may be null).
    #[serde(default)]
    pub app_info: BTreeMap<String, Option<String>>,
    /// Last log lines.
    #[serde(default)]
    pub log: Vec<String>,
}

/// `GET /batches` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchList {
    /// Offset.
    pub from: i64,
    /// Batches Livy holds in all.
    pub total: i64,
    /// This page.
    pub sessions: Vec<Batch>,
}

/// `GET /batches/{id}/log` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLog {
    /// Batch id.
    pub id: i64,
    /// Offset.
    pub from: i64,
    /// Lines in all.
    pub total: i64,
    /// This page.
    pub log: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_batch_json_decodes_including_unknown_states_and_null_links() {
        let body = r#"{"id": 3, "name": "norris-a@1-a1", "owner": null, "proxyUser": null, "state": "busy",
            "appId": null, "appInfo": {"driverLogUrl": null, "sparkUiUrl": null}, "log": ["x"]}"#;
        let b: Batch = serde_json::from_str(body).expect("decodes");
        assert_eq!(b.state, BatchState::Unknown("busy".into()));
        assert_eq!(b.state.phase(), BatchPhase::Other("busy".into()));
        let dead: Batch = serde_json::from_str(&body.replace("busy", "dead")).expect("decodes");
        assert_eq!(dead.state.phase(), BatchPhase::Failed);
    }

    #[test]
    fn requests_use_livy_field_names_and_leave_out_unset_fields() {
        let req = BatchRequest {
            file: "local:/x.py".into(),
            driver_memory: Some("1g".into()),
            py_files: vec!["a.py".into()],
            name: Some("n".into()),
            ..BatchRequest::default()
        };
        let v = serde_json::to_value(&req).expect("encodes");
        assert_eq!(
            v,
            serde_json::json!({"file": "local:/x.py", "driverMemory": "1g", "pyFiles": ["a.py"], "name": "n"})
        );
    }
}
