//! Ledger item layout: how job states, runs and clusters are stored. Nothing outside this module
//! knows these attribute names.
//!
//! | record    | pk            | sk                    | sparse index attributes                 |
//! |-----------|---------------|-----------------------|-----------------------------------------|
//! | job state | `JOB#<job>`   | `STATE`               | `due_shard`, `due_at` while scheduled   |
//! | run       | `JOB#<job>`   | `RUN#<lo, 12 digits>` | `active_shard`, `active_key` unfinished |
//! | cluster   | `CLUSTER`     | `<cluster key>`       |                                         |
//! | claim     | `PERIODIC`    | `<task>`              |                                         |

use aws_sdk_dynamodb::types::AttributeValue;
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchHandle, Check, Cluster, ClusterKey, ClusterState, FieldProblem, JobId,
    JobState, Run, RunOutcome, RunStatus, SizeClass, UnixTime, Validity, Version, Window,
};
use norris_ports::StoreError;
use std::collections::HashMap;

/// A raw item.
pub type Item = HashMap<String, AttributeValue>;

/// Partition of the due index (one shard: 1% of 100,000 jobs due is far below a partition's limit).
pub const DUE_SHARD: &str = "due";
/// Partition of the active-runs index.
pub const ACTIVE_SHARD: &str = "active";
/// Partition key of every cluster record.
pub const CLUSTER_PK: &str = "CLUSTER";
/// Partition key of periodic-task claims (sort key: the task name).
pub const PERIODIC_PK: &str = "PERIODIC";
/// Sort key of a job's state record.
pub const STATE_SK: &str = "STATE";

/// The ledger partition of a job.
pub fn job_pk(id: &JobId) -> String {
    format!("JOB#{id}")
}

/// The sort key of a run (zero-padded so string order is time order).
pub fn run_sk(lo: UnixTime) -> String {
    format!("RUN#{:012}", lo.0.max(0))
}

struct Builder(Item);

impl Builder {
    fn new(pk: String, sk: String) -> Self {
        Builder(HashMap::from([("pk".into(), AttributeValue::S(pk)), ("sk".into(), AttributeValue::S(sk))]))
    }
    fn s(mut self, k: &str, v: impl Into<String>) -> Self {
        self.0.insert(k.into(), AttributeValue::S(v.into()));
        self
    }
    fn n(mut self, k: &str, v: impl ToString) -> Self {
        self.0.insert(k.into(), AttributeValue::N(v.to_string()));
        self
    }
    fn opt_s(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.s(k, v),
            None => self,
        }
    }
    fn opt_n(self, k: &str, v: Option<i64>) -> Self {
        match v {
            Some(v) => self.n(k, v),
            None => self,
        }
    }
}

/// Reads typed attributes, turning absence or a wrong type into a `Corrupt` error naming the key.
pub struct Reader<'a> {
    item: &'a Item,
    key: String,
}

impl<'a> Reader<'a> {
    pub fn new(item: &'a Item) -> Self {
        Self::new_keyed(item, "pk", "sk")
    }
    /// A reader naming the item by the given key attributes in errors.
    pub fn new_keyed(item: &'a Item, pk: &str, sk: &str) -> Self {
        let part = |k: &str| match item.get(k) {
            Some(AttributeValue::S(s)) => s.clone(),
            Some(AttributeValue::N(n)) => n.clone(),
            _ => "?".into(),
        };
        let key = format!("{}/{}", part(pk), part(sk));
        Reader { item, key }
    }
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt { key: self.key.clone(), reason }
    }
    pub fn s(&self, k: &str) -> Result<String, StoreError> {
        self.opt_s(k)?.ok_or_else(|| self.corrupt(format!("missing string attribute {k}")))
    }
    pub fn opt_s(&self, k: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.corrupt(format!("attribute {k} is not a string"))),
        }
    }
    pub fn n(&self, k: &str) -> Result<i64, StoreError> {
        self.opt_n(k)?.ok_or_else(|| self.corrupt(format!("missing number attribute {k}")))
    }
    pub fn opt_n(&self, k: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(n)) => {
                n.parse().map(Some).map_err(|_| self.corrupt(format!("attribute {k} is not an integer: {n}")))
            }
            Some(_) => Err(self.corrupt(format!("attribute {k} is not a number"))),
        }
    }
    fn time(&self, k: &str) -> Result<UnixTime, StoreError> {
        self.n(k).map(UnixTime)
    }
    fn opt_time(&self, k: &str) -> Result<Option<UnixTime>, StoreError> {
        Ok(self.opt_n(k)?.map(UnixTime))
    }
    fn version(&self) -> Result<Version, StoreError> {
        Ok(Version(self.n("version")? as u64))
    }
}

/// A job state as an item.
pub fn job_state_item(s: &JobState) -> Item {
    let mut b = Builder::new(job_pk(&s.job_id), STATE_SK.into())
        .s("job_id", s.job_id.as_str())
        .s("definition_hash", &s.definition_hash)
        .n("watermark", s.watermark.0)
        .n("next_window_lo", s.next_window_lo.0)
        .n("version", s.version.0);
    b = match &s.validity {
        Validity::Valid => b.s("validity", "valid"),
        Validity::Invalid { problems } => {
            let mut b = b.s("validity", "invalid");
            b.0.insert(
                "problems".into(),
                AttributeValue::L(
                    problems
                        .iter()
                        .map(|p| {
                            AttributeValue::M(HashMap::from([
                                ("path".into(), AttributeValue::S(p.path.clone())),
                                ("reason".into(), AttributeValue::S(p.reason.clone())),
                            ]))
                        })
                        .collect(),
                ),
            );
            b
        }
        Validity::Quarantined { reason } => b.s("validity", "quarantined").s("quarantine_reason", reason),
    };
    if let Some(due) = s.due_at {
        b = b.s("due_shard", DUE_SHARD).n("due_at", due.0);
    }
    b = b.opt_s("accepted_schema", s.accepted_schema.as_deref());
    b.0
}

/// An item as a job state.
pub fn job_state_from_item(item: &Item) -> Result<JobState, StoreError> {
    let r = Reader::new(item);
    let validity = match r.s("validity")?.as_str() {
        "valid" => Validity::Valid,
        "invalid" => {
            let problems = match item.get("problems") {
                Some(AttributeValue::L(list)) => list
                    .iter()
                    .map(|p| {
                        let AttributeValue::M(m) = p else {
                            return Err(r.corrupt("problems holds a non-map".into()));
                        };
                        let pr = Reader { item: m, key: r.key.clone() };
                        Ok(FieldProblem { path: pr.s("path")?, reason: pr.s("reason")? })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => Vec::new(),
            };
            Validity::Invalid { problems }
        }
        "quarantined" => Validity::Quarantined { reason: r.s("quarantine_reason")? },
        other => return Err(r.corrupt(format!("unknown validity {other:?}"))),
    };
    Ok(JobState {
        job_id: JobId::new(r.s("job_id")?),
        definition_hash: r.s("definition_hash")?,
        validity,
        watermark: r.time("watermark")?,
        next_window_lo: r.time("next_window_lo")?,
        due_at: r.opt_time("due_at")?,
        accepted_schema: r.opt_s("accepted_schema")?,
        version: r.version()?,
    })
}

/// A run as an item.
pub fn run_item(run: &Run) -> Item {
    let mut b = Builder::new(job_pk(&run.job_id), run_sk(run.window.lo))
        .s("job_id", run.job_id.as_str())
        .n("window_lo", run.window.lo.0)
        .n("window_hi", run.window.hi.0)
        .n("attempt", run.attempt.0)
        .n("failures", run.failures)
        .s("status", run.status.name())
        .n("created_at", run.created_at.0)
        .n("updated_at", run.updated_at.0)
        .n("version", run.version.0);
    b = match &run.status {
        RunStatus::Pending { not_before } => b.n("not_before", not_before.0),
        RunStatus::Submitting { cluster, since } => b.s("cluster", cluster.as_str()).n("since", since.0),
        RunStatus::Running { cluster, batch, since } => b
            .s("cluster", cluster.as_str())
            .n("since", since.0)
            .n("livy_batch_id", batch.livy_batch_id)
            .s("batch_name", &batch.batch_name),
        RunStatus::Published { prefix, rows, at } => {
            b.s("published_prefix", prefix).n("rows", rows).n("finished_at", at.0)
        }
        RunStatus::Failed { reason, at } => b.s("failure", reason).n("finished_at", at.0),
    };
    if let Some(o) = &run.last_outcome {
        b = b.n("outcome_attempt", o.attempt.0).s("outcome_summary", &o.summary);
        if let Some(cluster) = &o.moved_off {
            b = b.s("outcome_moved_off", cluster.as_str());
        }
    }
    if run.status.is_unfinished() {
        b = b
            .s("active_shard", ACTIVE_SHARD)
            .s("active_key", format!("{}#{}", job_pk(&run.job_id), run_sk(run.window.lo)));
    }
    b.0
}

/// An item as a run.
pub fn run_from_item(item: &Item) -> Result<Run, StoreError> {
    let r = Reader::new(item);
    let status = match r.s("status")?.as_str() {
        "pending" => RunStatus::Pending { not_before: r.time("not_before")? },
        "submitting" => RunStatus::Submitting { cluster: ClusterKey::new(r.s("cluster")?), since: r.time("since")? },
        "running" => RunStatus::Running {
            cluster: ClusterKey::new(r.s("cluster")?),
            batch: BatchHandle { livy_batch_id: r.n("livy_batch_id")?, batch_name: r.s("batch_name")? },
            since: r.time("since")?,
        },
        "published" => RunStatus::Published {
            prefix: r.s("published_prefix")?,
            rows: r.n("rows")? as u64,
            at: r.time("finished_at")?,
        },
        "failed" => RunStatus::Failed { reason: r.s("failure")?, at: r.time("finished_at")? },
        other => return Err(r.corrupt(format!("unknown run status {other:?}"))),
    };
    let last_outcome = match r.opt_n("outcome_attempt")? {
        Some(a) => Some(RunOutcome {
            attempt: Attempt(a as u32),
            summary: r.s("outcome_summary")?,
            moved_off: r.opt_s("outcome_moved_off")?.map(ClusterKey::new),
        }),
        None => None,
    };
    Ok(Run {
        job_id: JobId::new(r.s("job_id")?),
        window: Window { lo: r.time("window_lo")?, hi: r.time("window_hi")? },
        attempt: Attempt(r.n("attempt")? as u32),
        failures: r.opt_n("failures")?.unwrap_or(0) as u32,
        status,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        last_outcome,
        version: r.version()?,
    })
}

/// A cluster as an item.
pub fn cluster_item(c: &Cluster) -> Item {
    let mut b = Builder::new(CLUSTER_PK.into(), c.key.as_str().into())
        .s("size_class", c.size_class.as_str())
        .n("generation", c.generation)
        .opt_s("emr_cluster_id", c.emr_cluster_id.as_deref())
        .opt_s("livy_endpoint", c.livy_endpoint.as_deref())
        .s("state", c.state.name())
        .n("created_at", c.created_at.0)
        .opt_n("ready_at", c.ready_at.map(|t| t.0))
        .n("rotate_after", c.rotate_after.0)
        .n("version", c.version.0);
    b = match &c.state {
        ClusterState::Launching { requested_at } => b.n("requested_at", requested_at.0),
        ClusterState::Draining { since, deadline } => b.n("drain_since", since.0).n("drain_deadline", deadline.0),
        ClusterState::Lost { reason, at } => b.s("lost_reason", reason).n("state_at", at.0),
        ClusterState::Terminated { at } => b.n("state_at", at.0).n("expires_at", at.0 + CLUSTER_RECORD_RETENTION_SECS),
        ClusterState::Starting | ClusterState::Ready => b,
    };
    b.0
}

/// How long a terminated cluster's record is kept (TTL). Every lifecycle pass reads all of a
/// deployment's cluster records, so they must not pile up (a pool rotating every few hours makes
/// thousands a year). Kept past EMR's two months of listing terminated clusters, so a key reused
/// after its record expired (a pool at zero clusters that long) cannot find the old cluster by its
/// launch-key tag; expired records not yet deleted are terminal and harmless to read.
pub const CLUSTER_RECORD_RETENTION_SECS: i64 = 90 * 86_400;

/// An item as a cluster.
pub fn cluster_from_item(item: &Item) -> Result<Cluster, StoreError> {
    let r = Reader::new(item);
    let state = match r.s("state")?.as_str() {
        "launching" => ClusterState::Launching { requested_at: r.time("requested_at")? },
        "starting" => ClusterState::Starting,
        "ready" => ClusterState::Ready,
        "draining" => ClusterState::Draining { since: r.time("drain_since")?, deadline: r.time("drain_deadline")? },
        "lost" => ClusterState::Lost { reason: r.s("lost_reason")?, at: r.time("state_at")? },
        "terminated" => ClusterState::Terminated { at: r.time("state_at")? },
        other => return Err(r.corrupt(format!("unknown cluster state {other:?}"))),
    };
    Ok(Cluster {
        key: ClusterKey::new(r.s("sk")?),
        size_class: SizeClass::new(r.s("size_class")?),
        generation: r.n("generation")? as u32,
        emr_cluster_id: r.opt_s("emr_cluster_id")?,
        livy_endpoint: r.opt_s("livy_endpoint")?,
        state,
        created_at: r.time("created_at")?,
        ready_at: r.opt_time("ready_at")?,
        rotate_after: r.time("rotate_after")?,
        version: r.version()?,
    })
}

/// An attempt result as an item of the results table (layout: `livy-jobs/README.md`).
pub fn result_item(r: &AttemptResult) -> Item {
    let mut item: Item = HashMap::from([
        ("run_key".to_string(), AttributeValue::S(r.run_key.clone())),
        ("attempt".to_string(), AttributeValue::N(r.attempt.0.to_string())),
        ("outcome".to_string(), AttributeValue::S(r.outcome.name().into())),
        ("rows_read".to_string(), AttributeValue::N(r.rows_read.to_string())),
        ("rows_written".to_string(), AttributeValue::N(r.rows_written.to_string())),
        ("schema".to_string(), AttributeValue::S(r.schema_json.clone())),
        ("schema_verdict".to_string(), AttributeValue::S(r.schema_verdict.clone())),
        ("schema_change".to_string(), AttributeValue::S(r.schema_change.clone())),
        ("output_prefix".to_string(), AttributeValue::S(r.output_prefix.clone())),
        ("message".to_string(), AttributeValue::S(r.message.clone())),
        ("finished_at".to_string(), AttributeValue::N(r.finished_at.0.to_string())),
        ("expires_at".to_string(), AttributeValue::N((r.finished_at.0 + RESULT_RETENTION_SECS).to_string())),
    ]);
    let checks = r
        .checks
        .iter()
        .map(|c| {
            AttributeValue::M(HashMap::from([
                ("name".to_string(), AttributeValue::S(c.name.clone())),
                ("passed".to_string(), AttributeValue::Bool(c.passed)),
                ("detail".to_string(), AttributeValue::S(c.detail.clone())),
            ]))
        })
        .collect();
    item.insert("checks".into(), AttributeValue::L(checks));
    item
}

/// How long attempt results are kept (TTL).
pub const RESULT_RETENTION_SECS: i64 = 30 * 86_400;

/// A results-table item as an attempt result.
pub fn result_from_item(item: &Item) -> Result<AttemptResult, StoreError> {
    let r = Reader::new_keyed(item, "run_key", "attempt");
    let outcome_text = r.s("outcome")?;
    let outcome =
        AttemptOutcome::parse(&outcome_text).ok_or_else(|| r.corrupt(format!("unknown outcome {outcome_text:?}")))?;
    let checks = match item.get("checks") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|c| {
                let AttributeValue::M(m) = c else { return Err(r.corrupt("checks holds a non-map".into())) };
                let cr = Reader { item: m, key: r.key.clone() };
                let passed = matches!(m.get("passed"), Some(AttributeValue::Bool(true)));
                Ok(Check { name: cr.s("name")?, passed, detail: cr.opt_s("detail")?.unwrap_or_default() })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(AttemptResult {
        run_key: r.s("run_key")?,
        attempt: Attempt(r.n("attempt")? as u32),
        outcome,
        rows_read: r.opt_n("rows_read")?.unwrap_or(0) as u64,
        rows_written: r.opt_n("rows_written")?.unwrap_or(0) as u64,
        checks,
        schema_json: r.opt_s("schema")?.unwrap_or_default(),
        schema_verdict: r.opt_s("schema_verdict")?.unwrap_or_default(),
        schema_change: r.opt_s("schema_change")?.unwrap_or_default(),
        output_prefix: r.opt_s("output_prefix")?.unwrap_or_default(),
        message: r.opt_s("message")?.unwrap_or_default(),
        finished_at: r.time("finished_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_terminated_cluster_records_expire() {
        let at = UnixTime(1_795_305_600);
        let mut cluster = Cluster {
            key: ClusterKey::new("small-3"),
            size_class: SizeClass::new("small"),
            generation: 3,
            emr_cluster_id: Some("j-3".into()),
            livy_endpoint: Some("http://10.0.0.3:8998".into()),
            state: ClusterState::Lost { reason: "spot".into(), at },
            created_at: at,
            ready_at: Some(at),
            rotate_after: at.plus_secs(3600),
            version: Version::INITIAL,
        };
        assert!(!cluster_item(&cluster).contains_key("expires_at"), "a lost cluster may still hold runs");
        cluster.state = ClusterState::Terminated { at };
        let item = cluster_item(&cluster);
        assert_eq!(item.get("expires_at"), Some(&AttributeValue::N((at.0 + 90 * 86_400).to_string())));
        assert_eq!(cluster_from_item(&item).expect("reads back"), cluster);
    }
}
