//! Ledger item layout: how job states, runs, clusters, shards and groups are stored, and the
//! results table's items. Nothing outside this module knows these attribute names.
//!
//! | record    | pk                                       | sk                        | sparse index attributes                           |
//! |-----------|------------------------------------------|---------------------------|---------------------------------------------------|
//! | job state | `JOB#<job>`                              | `STATE`                   | `due_shard` = `due`, `due_at` while scheduled     |
//! | run       | `JOB#<job>`                              | `RUN#<lo, 12 digits>`     | `active_shard` = `active`, `active_key` unfinished |
//! | cluster   | `CLUSTER`                                | `<cluster key>`           |                                                   |
//! | schema    | `JOB#<job>`                              | `SCHEMA`                  |                                                   |
//! | claim     | `PERIODIC`                               | `<task>`                  |                                                   |
//! | shard     | `COHORT#<size class>/<interval>/<phase>` | `SHARD#<index, 6 digits>` | `due_shard` = `shards`, `due_at` while it has one |
//! | group     | `GROUPS#<shard key>`                     | `GROUP#<seq, 20 digits>`  | `active_shard` = `groups`, `active_key` until committed |
//!
//! A shard keeps its jobs in one map attribute and a group its members in one list, with
//! one-letter names inside: both are rewritten every tick, and long names would be most of
//! their bytes.
//!
//! Results table (`run_key`, `attempt`): an attempt's result under `<job>@<window lo>`, a group
//! attempt's result under `GROUP#<group key>`, one short-named map per member.

use aws_sdk_dynamodb::types::AttributeValue;
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchHandle, Check, Cluster, ClusterKey, ClusterState, CohortKey,
    FieldProblem, Group, GroupKey, GroupResult, GroupStatus, JobId, JobState, Member, MemberState, Run, RunOutcome,
    RunStatus, Shard, ShardJob, ShardKey, SizeClass, UnixTime, Validity, Version, Window,
};
use norris_ports::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

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
/// Sort key of a job's accepted schema: beside its state and runs, under the job's partition.
pub const SCHEMA_SK: &str = "SCHEMA";
/// Partition of the due index holding shards: apart from job states' [`DUE_SHARD`], so a query
/// for one never reads (or has to skip) the other.
pub const DUE_SHARDS: &str = "shards";
/// Partition of the active index holding uncommitted groups: apart from runs' [`ACTIVE_SHARD`],
/// for the same reason.
pub const OPEN_GROUPS: &str = "groups";
/// Sort-key prefix of a cohort's shards, to query them apart from anything else stored later
/// under the cohort's partition.
pub const SHARD_SK_PREFIX: &str = "SHARD#";

/// The ledger partition of a job.
pub fn job_pk(id: &JobId) -> String {
    format!("JOB#{id}")
}

/// The sort key of a run (zero-padded so string order is time order).
pub fn run_sk(lo: UnixTime) -> String {
    format!("RUN#{:012}", lo.0.max(0))
}

/// The ledger partition of a cohort: its shards are one query away from the definition sweep.
pub fn cohort_pk(c: &CohortKey) -> String {
    format!("COHORT#{}/{}/{}", c.size_class, c.interval_secs, c.phase_secs)
}

/// The sort key of a shard (zero-padded so string order is index order).
pub fn shard_sk(index: u32) -> String {
    format!("{SHARD_SK_PREFIX}{index:06}")
}

/// The ledger partition of a shard's groups.
pub fn groups_pk(shard: &ShardKey) -> String {
    format!("GROUPS#{shard}")
}

/// The sort key of a group (zero-padded so string order is cut order).
pub fn group_sk(seq: u64) -> String {
    format!("GROUP#{seq:020}")
}

/// The results table's `run_key` of a group's attempts: apart from attempt results (`<job>@<lo>`,
/// and a job id holds no `#`), so the two never collide.
pub fn group_result_key(key: &GroupKey) -> String {
    format!("GROUP#{key}")
}

/// The open-groups index sort key: sorts as [`GroupKey`]'s `Ord` does, so `open_groups` comes
/// in key order. `#` sorts below every character a size class may hold (`check_id_text`), so
/// `small` comes before `small-x` as it does in `Ord`; `/` would put it after.
fn open_group_key(key: &GroupKey) -> String {
    let c = &key.shard.cohort;
    format!(
        "{}#{:012}#{:012}#{:06}#{:020}",
        c.size_class,
        c.interval_secs.max(0),
        c.phase_secs.max(0),
        key.shard.index,
        key.seq
    )
}

struct Builder(Item);

impl Builder {
    fn new(pk: String, sk: String) -> Self {
        Builder(HashMap::from([("pk".into(), AttributeValue::S(pk)), ("sk".into(), AttributeValue::S(sk))]))
    }
    /// A nested map (a shard's job, a group's member).
    fn map() -> Self {
        Builder(HashMap::new())
    }
    fn into_map(self) -> AttributeValue {
        AttributeValue::M(self.0)
    }
    fn attr(mut self, k: &str, v: AttributeValue) -> Self {
        self.0.insert(k.into(), v);
        self
    }
    fn bool(self, k: &str, v: bool) -> Self {
        self.attr(k, AttributeValue::Bool(v))
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

/// Reads typed attributes, turning absence or a wrong type into a `Corrupt` error naming the key
/// and the attribute (with its path, inside a nested map: `members[3].t`).
pub struct Reader<'a> {
    item: &'a Item,
    key: String,
    /// Path of the map read, prefixed to attribute names in errors (empty at the top).
    at: String,
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
        Reader { item, key, at: String::new() }
    }
    /// A reader of a map nested at `path` in this reader's item.
    fn nested<'b>(&self, item: &'b Item, path: String) -> Reader<'b> {
        Reader { item, key: self.key.clone(), at: format!("{path}.") }
    }
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt { key: self.key.clone(), reason }
    }
    /// An attribute's name as errors give it: with its path inside the item.
    fn path(&self, k: &str) -> String {
        format!("{}{k}", self.at)
    }
    pub fn s(&self, k: &str) -> Result<String, StoreError> {
        self.opt_s(k)?.ok_or_else(|| self.corrupt(format!("missing string attribute {}", self.path(k))))
    }
    pub fn opt_s(&self, k: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.corrupt(format!("attribute {} is not a string", self.path(k)))),
        }
    }
    pub fn n(&self, k: &str) -> Result<i64, StoreError> {
        self.num(k)
    }
    pub fn opt_n(&self, k: &str) -> Result<Option<i64>, StoreError> {
        self.opt_num(k)
    }
    /// A number of the model's type (`u32` attempts, `u64` sequence numbers), refused rather
    /// than wrapped when it does not fit.
    fn num<T: FromStr>(&self, k: &str) -> Result<T, StoreError> {
        self.opt_num(k)?.ok_or_else(|| self.corrupt(format!("missing number attribute {}", self.path(k))))
    }
    fn opt_num<T: FromStr>(&self, k: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(|_| {
                self.corrupt(format!(
                    "attribute {} is not an integer of type {}: {n}",
                    self.path(k),
                    std::any::type_name::<T>()
                ))
            }),
            Some(_) => Err(self.corrupt(format!("attribute {} is not a number", self.path(k)))),
        }
    }
    fn bool(&self, k: &str) -> Result<bool, StoreError> {
        match self.item.get(k) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            None => Err(self.corrupt(format!("missing boolean attribute {}", self.path(k)))),
            Some(_) => Err(self.corrupt(format!("attribute {} is not a boolean", self.path(k)))),
        }
    }
    fn map(&self, k: &str) -> Result<&'a Item, StoreError> {
        match self.item.get(k) {
            Some(AttributeValue::M(m)) => Ok(m),
            None => Err(self.corrupt(format!("missing map attribute {}", self.path(k)))),
            Some(_) => Err(self.corrupt(format!("attribute {} is not a map", self.path(k)))),
        }
    }
    /// The maps of a list attribute, each with its reader; a missing list reads as empty when
    /// `required` is false.
    fn maps(&self, k: &str, required: bool) -> Result<Vec<Reader<'a>>, StoreError> {
        let list = match self.item.get(k) {
            Some(AttributeValue::L(list)) => list.as_slice(),
            None | Some(AttributeValue::Null(_)) if !required => &[],
            None => return Err(self.corrupt(format!("missing list attribute {}", self.path(k)))),
            Some(_) => return Err(self.corrupt(format!("attribute {} is not a list", self.path(k)))),
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}[{i}]", self.path(k));
                match v {
                    AttributeValue::M(m) => Ok(self.nested(m, path)),
                    _ => Err(self.corrupt(format!("{path} is not a map"))),
                }
            })
            .collect()
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

/// Where a validity is stored: a job state's names are long, a shard job's one letter each.
struct ValidityNames {
    validity: &'static str,
    problems: &'static str,
    reason: &'static str,
}

const JOB_STATE_VALIDITY: ValidityNames =
    ValidityNames { validity: "validity", problems: "problems", reason: "quarantine_reason" };
const SHARD_JOB_VALIDITY: ValidityNames = ValidityNames { validity: "v", problems: "p", reason: "r" };

fn with_validity(b: Builder, v: &Validity, names: &ValidityNames) -> Builder {
    match v {
        Validity::Valid => b.s(names.validity, "valid"),
        Validity::Invalid { problems } => {
            let problems =
                problems.iter().map(|p| Builder::map().s("path", &p.path).s("reason", &p.reason).into_map()).collect();
            b.s(names.validity, "invalid").attr(names.problems, AttributeValue::L(problems))
        }
        Validity::Quarantined { reason } => b.s(names.validity, "quarantined").s(names.reason, reason),
    }
}

fn validity_from(r: &Reader, names: &ValidityNames) -> Result<Validity, StoreError> {
    Ok(match r.s(names.validity)?.as_str() {
        "valid" => Validity::Valid,
        "invalid" => Validity::Invalid {
            problems: r
                .maps(names.problems, false)?
                .iter()
                .map(|pr| Ok(FieldProblem { path: pr.s("path")?, reason: pr.s("reason")? }))
                .collect::<Result<_, StoreError>>()?,
        },
        "quarantined" => Validity::Quarantined { reason: r.s(names.reason)? },
        other => return Err(r.corrupt(format!("unknown validity {other:?} in {}", r.path(names.validity)))),
    })
}

/// A job state as an item.
pub fn job_state_item(s: &JobState) -> Item {
    let mut b = Builder::new(job_pk(&s.job_id), STATE_SK.into())
        .s("job_id", s.job_id.as_str())
        .s("definition_hash", &s.definition_hash)
        .n("watermark", s.watermark.0)
        .n("next_window_lo", s.next_window_lo.0)
        .n("version", s.version.0);
    b = with_validity(b, &s.validity, &JOB_STATE_VALIDITY);
    if let Some(due) = s.due_at {
        b = b.s("due_shard", DUE_SHARD).n("due_at", due.0);
    }
    b = b.opt_s("accepted_schema", s.accepted_schema.as_deref());
    b.0
}

/// An item as a job state.
pub fn job_state_from_item(item: &Item) -> Result<JobState, StoreError> {
    let r = Reader::new(item);
    let validity = validity_from(&r, &JOB_STATE_VALIDITY)?;
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

/// A job's accepted schema as an item: the JSON as one string, read and written whole. No index
/// attributes: it is only ever read by key.
pub fn schema_item(job: &JobId, schema_json: &str) -> Item {
    Builder::new(job_pk(job), SCHEMA_SK.into()).s("schema", schema_json).0
}

/// An item as a job's accepted schema; the job id is read back from `pk`.
pub fn schema_from_item(item: &Item) -> Result<(JobId, String), StoreError> {
    let r = Reader::new(item);
    let pk = r.s("pk")?;
    let job = pk
        .strip_prefix("JOB#")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| r.corrupt(format!("pk {pk:?} is not JOB#<job>")))?;
    Ok((JobId::new(job), r.s("schema")?))
}

/// The statuses runs and groups share (the run's state machine, until the attempt ends), stored
/// alike under `status` so a group's are read and written by the same code as a run's.
enum Live {
    Pending { not_before: UnixTime },
    Submitting { cluster: ClusterKey, since: UnixTime },
    Running { cluster: ClusterKey, batch: BatchHandle, since: UnixTime },
}

fn with_live(b: Builder, live: &Live) -> Builder {
    match live {
        Live::Pending { not_before } => b.s("status", "pending").n("not_before", not_before.0),
        Live::Submitting { cluster, since } => {
            b.s("status", "submitting").s("cluster", cluster.as_str()).n("since", since.0)
        }
        Live::Running { cluster, batch, since } => b
            .s("status", "running")
            .s("cluster", cluster.as_str())
            .n("since", since.0)
            .n("livy_batch_id", batch.livy_batch_id)
            .s("batch_name", &batch.batch_name),
    }
}

/// The live status named `status`, or `None` when the name is not one of them.
fn live_from(r: &Reader, status: &str) -> Result<Option<Live>, StoreError> {
    Ok(Some(match status {
        "pending" => Live::Pending { not_before: r.time("not_before")? },
        "submitting" => Live::Submitting { cluster: ClusterKey::new(r.s("cluster")?), since: r.time("since")? },
        "running" => Live::Running {
            cluster: ClusterKey::new(r.s("cluster")?),
            batch: BatchHandle { livy_batch_id: r.n("livy_batch_id")?, batch_name: r.s("batch_name")? },
            since: r.time("since")?,
        },
        _ => return Ok(None),
    }))
}

fn with_outcome(mut b: Builder, outcome: Option<&RunOutcome>) -> Builder {
    if let Some(o) = outcome {
        b = b.n("outcome_attempt", o.attempt.0).s("outcome_summary", &o.summary);
        if let Some(cluster) = &o.moved_off {
            b = b.s("outcome_moved_off", cluster.as_str());
        }
    }
    b
}

fn outcome_from(r: &Reader) -> Result<Option<RunOutcome>, StoreError> {
    Ok(match r.opt_num::<u32>("outcome_attempt")? {
        Some(a) => Some(RunOutcome {
            attempt: Attempt(a),
            summary: r.s("outcome_summary")?,
            moved_off: r.opt_s("outcome_moved_off")?.map(ClusterKey::new),
        }),
        None => None,
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
        .n("created_at", run.created_at.0)
        .n("updated_at", run.updated_at.0)
        .n("version", run.version.0);
    b = match &run.status {
        RunStatus::Pending { not_before } => with_live(b, &Live::Pending { not_before: *not_before }),
        RunStatus::Submitting { cluster, since } => {
            with_live(b, &Live::Submitting { cluster: cluster.clone(), since: *since })
        }
        RunStatus::Running { cluster, batch, since } => {
            with_live(b, &Live::Running { cluster: cluster.clone(), batch: batch.clone(), since: *since })
        }
        RunStatus::Published { prefix, rows, at } => {
            b.s("status", "published").s("published_prefix", prefix).n("rows", rows).n("finished_at", at.0)
        }
        RunStatus::Failed { reason, at } => b.s("status", "failed").s("failure", reason).n("finished_at", at.0),
    };
    b = with_outcome(b, run.last_outcome.as_ref());
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
    let name = r.s("status")?;
    let status = match (live_from(&r, &name)?, name.as_str()) {
        (Some(Live::Pending { not_before }), _) => RunStatus::Pending { not_before },
        (Some(Live::Submitting { cluster, since }), _) => RunStatus::Submitting { cluster, since },
        (Some(Live::Running { cluster, batch, since }), _) => RunStatus::Running { cluster, batch, since },
        (None, "published") => RunStatus::Published {
            prefix: r.s("published_prefix")?,
            rows: r.n("rows")? as u64,
            at: r.time("finished_at")?,
        },
        (None, "failed") => RunStatus::Failed { reason: r.s("failure")?, at: r.time("finished_at")? },
        (None, other) => return Err(r.corrupt(format!("unknown run status {other:?}"))),
    };
    let last_outcome = outcome_from(&r)?;
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

/// Where an attempt result is stored: an attempt's own item uses the names of
/// `livy-jobs/README.md`, a group result's members one or two letters each.
struct ResultNames {
    run_key: &'static str,
    attempt: &'static str,
    outcome: &'static str,
    rows_read: &'static str,
    rows_written: &'static str,
    checks: &'static str,
    check_name: &'static str,
    check_passed: &'static str,
    check_detail: &'static str,
    schema: &'static str,
    schema_verdict: &'static str,
    schema_change: &'static str,
    output_prefix: &'static str,
    message: &'static str,
    finished_at: &'static str,
}

const ATTEMPT_RESULT: ResultNames = ResultNames {
    run_key: "run_key",
    attempt: "attempt",
    outcome: "outcome",
    rows_read: "rows_read",
    rows_written: "rows_written",
    checks: "checks",
    check_name: "name",
    check_passed: "passed",
    check_detail: "detail",
    schema: "schema",
    schema_verdict: "schema_verdict",
    schema_change: "schema_change",
    output_prefix: "output_prefix",
    message: "message",
    finished_at: "finished_at",
};

const MEMBER_RESULT: ResultNames = ResultNames {
    run_key: "k",
    attempt: "a",
    outcome: "o",
    rows_read: "rr",
    rows_written: "rw",
    checks: "c",
    check_name: "n",
    check_passed: "p",
    check_detail: "d",
    schema: "s",
    schema_verdict: "sv",
    schema_change: "sc",
    output_prefix: "op",
    message: "m",
    finished_at: "t",
};

fn with_result(b: Builder, r: &AttemptResult, names: &ResultNames) -> Builder {
    let checks = r
        .checks
        .iter()
        .map(|c| {
            Builder::map()
                .s(names.check_name, &c.name)
                .bool(names.check_passed, c.passed)
                .s(names.check_detail, &c.detail)
                .into_map()
        })
        .collect();
    b.s(names.run_key, &r.run_key)
        .n(names.attempt, r.attempt.0)
        .s(names.outcome, r.outcome.name())
        .n(names.rows_read, r.rows_read)
        .n(names.rows_written, r.rows_written)
        .attr(names.checks, AttributeValue::L(checks))
        .s(names.schema, &r.schema_json)
        .s(names.schema_verdict, &r.schema_verdict)
        .s(names.schema_change, &r.schema_change)
        .s(names.output_prefix, &r.output_prefix)
        .s(names.message, &r.message)
        .n(names.finished_at, r.finished_at.0)
}

fn result_from(r: &Reader, names: &ResultNames) -> Result<AttemptResult, StoreError> {
    let outcome_text = r.s(names.outcome)?;
    let outcome = AttemptOutcome::parse(&outcome_text)
        .ok_or_else(|| r.corrupt(format!("unknown outcome {outcome_text:?} in {}", r.path(names.outcome))))?;
    let checks = r
        .maps(names.checks, false)?
        .iter()
        .map(|cr| {
            Ok(Check {
                name: cr.s(names.check_name)?,
                passed: matches!(cr.item.get(names.check_passed), Some(AttributeValue::Bool(true))),
                detail: cr.opt_s(names.check_detail)?.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(AttemptResult {
        run_key: r.s(names.run_key)?,
        attempt: Attempt(r.num(names.attempt)?),
        outcome,
        rows_read: r.opt_num(names.rows_read)?.unwrap_or(0),
        rows_written: r.opt_num(names.rows_written)?.unwrap_or(0),
        checks,
        schema_json: r.opt_s(names.schema)?.unwrap_or_default(),
        schema_verdict: r.opt_s(names.schema_verdict)?.unwrap_or_default(),
        schema_change: r.opt_s(names.schema_change)?.unwrap_or_default(),
        output_prefix: r.opt_s(names.output_prefix)?.unwrap_or_default(),
        message: r.opt_s(names.message)?.unwrap_or_default(),
        finished_at: r.time(names.finished_at)?,
    })
}

/// An attempt result as an item of the results table (layout: `livy-jobs/README.md`).
pub fn result_item(r: &AttemptResult) -> Item {
    with_result(Builder::map(), r, &ATTEMPT_RESULT).n("expires_at", r.finished_at.0 + RESULT_RETENTION_SECS).0
}

/// How long attempt results are kept (TTL).
pub const RESULT_RETENTION_SECS: i64 = 30 * 86_400;

/// A results-table item as an attempt result.
pub fn result_from_item(item: &Item) -> Result<AttemptResult, StoreError> {
    result_from(&Reader::new_keyed(item, "run_key", "attempt"), &ATTEMPT_RESULT)
}

/// A shard as an item. Its jobs are one map attribute keyed by job id, so the shard is read and
/// written whole, once per tick.
pub fn shard_item(s: &Shard) -> Item {
    let c = &s.key.cohort;
    let jobs = s
        .jobs
        .iter()
        .map(|(id, j)| {
            let b = Builder::map().s("h", &j.definition_hash);
            let b = with_validity(b, &j.validity, &SHARD_JOB_VALIDITY)
                .n("w", j.watermark.0)
                .n("n", j.next_window_lo.0)
                .opt_s("s", j.schema_hash.as_deref());
            (id.as_str().to_string(), b.into_map())
        })
        .collect();
    let mut b = Builder::new(cohort_pk(c), shard_sk(s.key.index))
        .s("size_class", c.size_class.as_str())
        .n("interval_secs", c.interval_secs)
        .n("phase_secs", c.phase_secs)
        .n("index", s.key.index)
        .n("cut_seq", s.cut_seq)
        .n("version", s.version.0)
        .attr("jobs", AttributeValue::M(jobs));
    if let Some(due) = s.due_at {
        b = b.s("due_shard", DUE_SHARDS).n("due_at", due.0);
    }
    b.0
}

fn cohort_from(r: &Reader) -> Result<CohortKey, StoreError> {
    Ok(CohortKey {
        size_class: SizeClass::new(r.s("size_class")?),
        interval_secs: r.n("interval_secs")?,
        phase_secs: r.n("phase_secs")?,
    })
}

/// An item as a shard.
pub fn shard_from_item(item: &Item) -> Result<Shard, StoreError> {
    let r = Reader::new(item);
    let jobs = r
        .map("jobs")?
        .iter()
        .map(|(id, v)| {
            let path = format!("{}.{id}", r.path("jobs"));
            let AttributeValue::M(m) = v else { return Err(r.corrupt(format!("{path} is not a map"))) };
            let jr = r.nested(m, path);
            let job = ShardJob {
                definition_hash: jr.s("h")?,
                validity: validity_from(&jr, &SHARD_JOB_VALIDITY)?,
                watermark: jr.time("w")?,
                next_window_lo: jr.time("n")?,
                schema_hash: jr.opt_s("s")?,
            };
            Ok((JobId::new(id.as_str()), job))
        })
        .collect::<Result<BTreeMap<_, _>, StoreError>>()?;
    Ok(Shard {
        key: ShardKey { cohort: cohort_from(&r)?, index: r.num("index")? },
        jobs,
        cut_seq: r.num("cut_seq")?,
        due_at: r.opt_time("due_at")?,
        version: r.version()?,
    })
}

/// A group as an item: the run's status and outcome attributes, and its members as one list of
/// short-named maps.
pub fn group_item(g: &Group) -> Item {
    let c = &g.key.shard.cohort;
    let members = g
        .members
        .iter()
        .map(|m| {
            let b =
                Builder::map().s("j", m.job_id.as_str()).n("l", m.window.lo.0).n("h", m.window.hi.0).n("f", m.failures);
            match &m.state {
                MemberState::ToDo => b.s("t", "todo"),
                MemberState::Published { attempt, rows } => b.s("t", "published").n("a", attempt.0).n("c", rows),
                MemberState::Failed { reason } => b.s("t", "failed").s("r", reason),
                MemberState::Quarantined { reason } => b.s("t", "quarantined").s("r", reason),
            }
            .into_map()
        })
        .collect();
    let mut b = Builder::new(groups_pk(&g.key.shard), group_sk(g.key.seq))
        .s("size_class", c.size_class.as_str())
        .n("interval_secs", c.interval_secs)
        .n("phase_secs", c.phase_secs)
        .n("index", g.key.shard.index)
        .n("seq", g.key.seq)
        .n("attempt", g.attempt.0)
        .n("created_at", g.created_at.0)
        .n("updated_at", g.updated_at.0)
        .bool("committed", g.committed)
        .n("version", g.version.0)
        .attr("members", AttributeValue::L(members));
    b = match &g.status {
        GroupStatus::Pending { not_before } => with_live(b, &Live::Pending { not_before: *not_before }),
        GroupStatus::Submitting { cluster, since } => {
            with_live(b, &Live::Submitting { cluster: cluster.clone(), since: *since })
        }
        GroupStatus::Running { cluster, batch, since } => {
            with_live(b, &Live::Running { cluster: cluster.clone(), batch: batch.clone(), since: *since })
        }
        GroupStatus::Settled { at } => b.s("status", "settled").n("at", at.0),
    };
    b = with_outcome(b, g.last_outcome.as_ref());
    if !g.committed {
        b = b.s("active_shard", OPEN_GROUPS).s("active_key", open_group_key(&g.key));
    }
    b.0
}

/// An item as a group.
pub fn group_from_item(item: &Item) -> Result<Group, StoreError> {
    let r = Reader::new(item);
    let name = r.s("status")?;
    let status = match (live_from(&r, &name)?, name.as_str()) {
        (Some(Live::Pending { not_before }), _) => GroupStatus::Pending { not_before },
        (Some(Live::Submitting { cluster, since }), _) => GroupStatus::Submitting { cluster, since },
        (Some(Live::Running { cluster, batch, since }), _) => GroupStatus::Running { cluster, batch, since },
        (None, "settled") => GroupStatus::Settled { at: r.time("at")? },
        (None, other) => return Err(r.corrupt(format!("unknown group status {other:?}"))),
    };
    let members = r
        .maps("members", true)?
        .iter()
        .map(|mr| {
            let state = match mr.s("t")?.as_str() {
                "todo" => MemberState::ToDo,
                "published" => MemberState::Published { attempt: Attempt(mr.num("a")?), rows: mr.num("c")? },
                "failed" => MemberState::Failed { reason: mr.s("r")? },
                "quarantined" => MemberState::Quarantined { reason: mr.s("r")? },
                other => return Err(mr.corrupt(format!("unknown member state {other:?} in {}", mr.path("t")))),
            };
            Ok(Member {
                job_id: JobId::new(mr.s("j")?),
                window: Window { lo: mr.time("l")?, hi: mr.time("h")? },
                failures: mr.num("f")?,
                state,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Group {
        key: GroupKey { shard: ShardKey { cohort: cohort_from(&r)?, index: r.num("index")? }, seq: r.num("seq")? },
        members,
        attempt: Attempt(r.num("attempt")?),
        status,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        last_outcome: outcome_from(&r)?,
        committed: r.bool("committed")?,
        version: r.version()?,
    })
}

/// A member's result as a group result holds it, as `extract.py`'s `compact_member` writes it
/// (`livy-jobs/README.md`, "Groups"): no output prefix (derived from the spec), the message only
/// when the attempt did not succeed, no empty strings or lists. Failed checks only and the schema
/// only when not unchanged are the writer's to choose (`extract.py` does).
fn compact_member_item(r: &AttemptResult) -> AttributeValue {
    let mut member = with_result(Builder::map(), r, &MEMBER_RESULT).0;
    member.remove(MEMBER_RESULT.output_prefix);
    if r.outcome == AttemptOutcome::Succeeded {
        member.remove(MEMBER_RESULT.message);
    }
    member.retain(|_, v| {
        !matches!(v, AttributeValue::S(s) if s.is_empty()) && !matches!(v, AttributeValue::L(l) if l.is_empty())
    });
    AttributeValue::M(member)
}

/// A group attempt's result as an item of the results table, expiring like attempt results.
pub fn group_result_item(g: &GroupResult) -> Item {
    let members = g.members.iter().map(compact_member_item).collect();
    Builder::map()
        .s("run_key", group_result_key(&g.group))
        .n("attempt", g.attempt.0)
        .n("finished_at", g.finished_at.0)
        .n("expires_at", g.finished_at.0 + RESULT_RETENTION_SECS)
        .attr("members", AttributeValue::L(members))
        .0
}

/// A results-table item as a group attempt's result. The group's key is read back from
/// `run_key` (a size class holds no `/`, so it splits one way only).
pub fn group_result_from_item(item: &Item) -> Result<GroupResult, StoreError> {
    let r = Reader::new_keyed(item, "run_key", "attempt");
    let run_key = r.s("run_key")?;
    let group = parse_group_result_key(&run_key).ok_or_else(|| {
        r.corrupt(format!("run_key {run_key:?} is not GROUP#<size class>/<interval>/<phase>/<index>/<seq>"))
    })?;
    let members = r
        .maps("members", true)?
        .iter()
        .map(|mr| result_from(mr, &MEMBER_RESULT))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(GroupResult { group, attempt: Attempt(r.num("attempt")?), members, finished_at: r.time("finished_at")? })
}

fn parse_group_result_key(run_key: &str) -> Option<GroupKey> {
    GroupKey::parse(run_key.strip_prefix("GROUP#")?)
}

/// An attribute value's size as DynamoDB counts it (names are counted by the caller): numbers
/// a byte per two significant digits plus one, lists and maps 3 bytes plus 1 per element.
pub fn attribute_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
            significant.div_ceil(2) + 1
        }
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + attribute_size(v)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + attribute_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// An item's size as DynamoDB bills it: a write costs a unit per KB of it, a read per 4 KB.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + attribute_size(v)).sum()
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

    const T0: UnixTime = UnixTime(1_795_305_600);

    fn cohort(size_class: &str, interval_secs: i64) -> CohortKey {
        CohortKey { size_class: SizeClass::new(size_class), interval_secs, phase_secs: 60 }
    }

    fn shard_of(jobs: Vec<(&str, ShardJob)>, due_at: Option<UnixTime>) -> Shard {
        Shard {
            key: ShardKey { cohort: cohort("small", 300), index: 2 },
            jobs: jobs.into_iter().map(|(id, j)| (JobId::new(id), j)).collect(),
            cut_seq: 41,
            due_at,
            version: Version(3),
        }
    }

    fn job(validity: Validity, schema_hash: Option<&str>) -> ShardJob {
        ShardJob {
            definition_hash: "0123456789abcdef0123456789abcdef".into(),
            validity,
            watermark: T0,
            next_window_lo: T0.plus_secs(300),
            schema_hash: schema_hash.map(str::to_string),
        }
    }

    #[test]
    fn schema_items_round_trip_under_the_job_and_are_in_no_index() {
        let schema = r#"[{"name":"id","type":"bigint","nullable":false}]"#;
        let item = schema_item(&JobId::new("shop-orders"), schema);
        assert_eq!(item.get("pk"), Some(&AttributeValue::S("JOB#shop-orders".into())));
        assert_eq!(item.get("sk"), Some(&AttributeValue::S("SCHEMA".into())));
        assert_eq!(item.len(), 3, "pk, sk and schema only: {item:?}");
        assert_eq!(schema_from_item(&item).expect("reads back"), (JobId::new("shop-orders"), schema.to_string()));
        let mut hand_edited = item.clone();
        hand_edited.insert("pk".into(), AttributeValue::S("shop-orders".into()));
        assert!(matches!(schema_from_item(&hand_edited), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn shard_items_round_trip_every_validity_and_are_due_only_with_a_due_time() {
        let problems = vec![
            FieldProblem { path: "source.table".into(), reason: "must be a non-empty string".into() },
            FieldProblem { path: "interval_secs".into(), reason: "must be positive".into() },
        ];
        let jobs = vec![
            ("a-valid", job(Validity::Valid, Some("fedcba9876543210fedcba9876543210"))),
            ("b-invalid", job(Validity::Invalid { problems }, None)),
            ("c-no-problems", job(Validity::Invalid { problems: vec![] }, None)),
            ("d-quarantined", job(Validity::Quarantined { reason: "column price dropped".into() }, Some("s"))),
        ];
        let due = shard_of(jobs.clone(), Some(T0.plus_secs(360)));
        let item = shard_item(&due);
        assert_eq!(item.get("pk"), Some(&AttributeValue::S("COHORT#small/300/60".into())));
        assert_eq!(item.get("sk"), Some(&AttributeValue::S("SHARD#000002".into())));
        assert_eq!(item.get("due_shard"), Some(&AttributeValue::S(DUE_SHARDS.into())));
        assert_eq!(shard_from_item(&item).expect("reads back"), due);

        let held = shard_of(jobs, None);
        let item = shard_item(&held);
        assert!(!item.contains_key("due_shard") && !item.contains_key("due_at"), "not in the due index");
        assert_eq!(shard_from_item(&item).expect("reads back"), held);
    }

    fn group_of(status: GroupStatus, last_outcome: Option<RunOutcome>, committed: bool) -> Group {
        let member = |job: &str, failures: u32, state: MemberState| Member {
            job_id: JobId::new(job),
            window: Window { lo: T0, hi: T0.plus_secs(300) },
            failures,
            state,
        };
        Group {
            key: GroupKey { shard: ShardKey { cohort: cohort("small", 300), index: 0 }, seq: 1 },
            members: vec![
                member("a", 0, MemberState::ToDo),
                member("b", 1, MemberState::Published { attempt: Attempt(2), rows: 12 }),
                member("c", 3, MemberState::Failed { reason: "OutOfMemoryError".into() }),
                member("d", 0, MemberState::Quarantined { reason: "column price dropped".into() }),
            ],
            attempt: Attempt(3),
            status,
            created_at: T0,
            updated_at: T0.plus_secs(5),
            last_outcome,
            committed,
            version: Version(4),
        }
    }

    #[test]
    fn group_items_round_trip_every_status_and_member_state_and_are_open_until_committed() {
        let cluster = ClusterKey::new("small-4");
        let statuses = [
            GroupStatus::Pending { not_before: T0.plus_secs(60) },
            GroupStatus::Submitting { cluster: cluster.clone(), since: T0.plus_secs(70) },
            GroupStatus::Running {
                cluster: cluster.clone(),
                batch: BatchHandle { livy_batch_id: 17, batch_name: "norris-g-small/300/60/0/1-a3".into() },
                since: T0.plus_secs(80),
            },
            GroupStatus::Settled { at: T0.plus_secs(400) },
        ];
        let outcomes = [
            None,
            Some(RunOutcome { attempt: Attempt(2), summary: "failed: OOM".into(), moved_off: None }),
            Some(RunOutcome { attempt: Attempt(2), summary: "moved".into(), moved_off: Some(cluster.clone()) }),
        ];
        for status in statuses {
            for outcome in &outcomes {
                for committed in [false, true] {
                    let group = group_of(status.clone(), outcome.clone(), committed);
                    let item = group_item(&group);
                    assert_eq!(item.get("pk"), Some(&AttributeValue::S("GROUPS#small/300/60/0".into())));
                    assert_eq!(item.get("sk"), Some(&AttributeValue::S("GROUP#00000000000000000001".into())));
                    assert_eq!(
                        item.get("active_shard"),
                        (!committed).then(|| AttributeValue::S(OPEN_GROUPS.into())).as_ref(),
                        "open exactly until committed"
                    );
                    assert_eq!(item.contains_key("active_key"), !committed);
                    assert_eq!(group_from_item(&item).expect("reads back"), group);
                }
            }
        }
    }

    #[test]
    fn open_group_keys_sort_as_group_keys_do() {
        let key = |size_class: &str, interval_secs: i64, phase_secs: i64, index: u32, seq: u64| GroupKey {
            shard: ShardKey {
                cohort: CohortKey { size_class: SizeClass::new(size_class), interval_secs, phase_secs },
                index,
            },
            seq,
        };
        let mut keys = vec![
            key("small-x", 300, 0, 0, 1),
            key("small", 3600, 0, 0, 1),
            key("small", 300, 60, 0, 1),
            key("small", 300, 0, 10, 1),
            key("small", 300, 0, 9, 1),
            key("small", 300, 0, 9, 10),
            key("small", 300, 0, 9, 9),
            key("smal", 300, 0, 0, 1),
            key("small.b", 300, 0, 0, 1),
            key("small_c", 300, 0, 0, 1),
            key("Small", 300, 0, 0, 1),
        ];
        let mut by_item = keys.clone();
        keys.sort();
        by_item.sort_by_key(open_group_key);
        assert_eq!(by_item, keys);
    }

    /// DynamoDB's JSON wire format (as boto3 and the fixture write it) as an attribute value.
    fn from_wire(v: &serde_json::Value) -> AttributeValue {
        let (kind, inner) = v.as_object().and_then(|o| o.iter().next()).expect("one type key");
        match kind.as_str() {
            "S" => AttributeValue::S(inner.as_str().expect("S").into()),
            "N" => AttributeValue::N(inner.as_str().expect("N").into()),
            "BOOL" => AttributeValue::Bool(inner.as_bool().expect("BOOL")),
            "L" => AttributeValue::L(inner.as_array().expect("L").iter().map(from_wire).collect()),
            "M" => AttributeValue::M(
                inner.as_object().expect("M").iter().map(|(k, v)| (k.clone(), from_wire(v))).collect(),
            ),
            other => panic!("type {other} is not used by the fixture"),
        }
    }

    #[test]
    fn a_group_result_item_written_by_the_spark_job_reads_back() {
        // The item `extract.py` writes for a group attempt (livy-jobs/tests/test_units.py asserts it
        // writes exactly this): compact members, schema only when not unchanged, failed checks only.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../livy-jobs/tests/fixtures/group_result_item.json"))
                .expect("fixture");
        let item: Item = fixture.as_object().expect("item").iter().map(|(k, v)| (k.clone(), from_wire(v))).collect();
        let result = group_result_from_item(&item).expect("the control plane reads what Spark writes");
        assert_eq!(result.group.to_string(), "small/300/60/0/17");
        assert_eq!((result.attempt, result.finished_at), (Attempt(3), UnixTime(1_795_306_001)));
        let [ok, failed] = &result.members[..] else { panic!("two members: {:?}", result.members) };
        assert_eq!(
            (ok.run_key.as_str(), ok.outcome, ok.rows_written),
            ("shop.orders@1795305600", AttemptOutcome::Succeeded, 12)
        );
        assert_eq!((ok.schema_json.as_str(), ok.schema_verdict.as_str()), ("", "unchanged"));
        assert_eq!(failed.outcome, AttemptOutcome::Failed);
        assert_eq!(
            failed.checks,
            vec![Check { name: "primary key unique".into(), passed: false, detail: "2 duplicate key(s)".into() }]
        );
        assert_eq!(failed.schema_verdict, "first");
        assert!(failed.schema_json.contains("\"id\""), "{}", failed.schema_json);
    }

    #[test]
    fn group_result_items_round_trip_with_every_outcome() {
        let member = |i: i64, outcome: AttemptOutcome, checks: Vec<Check>| AttemptResult {
            run_key: format!("job-{i}@{}", T0.0),
            attempt: Attempt(2),
            outcome,
            rows_read: 10 + i as u64,
            rows_written: 10,
            checks,
            schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
            schema_verdict: "unchanged".into(),
            schema_change: String::new(),
            output_prefix: format!("s3://lake/j{i}/data/window_lo={}/attempt=2", T0.0),
            message: "m".into(),
            finished_at: T0.plus_secs(30 + i),
        };
        let result = GroupResult {
            group: GroupKey { shard: ShardKey { cohort: cohort("small-x", 7200), index: 3 }, seq: 41 },
            attempt: Attempt(2),
            members: vec![
                member(
                    0,
                    AttemptOutcome::Succeeded,
                    vec![Check { name: "rows".into(), passed: true, detail: "10".into() }],
                ),
                member(
                    1,
                    AttemptOutcome::Failed,
                    vec![Check { name: "pk".into(), passed: false, detail: "2 dup".into() }],
                ),
                member(2, AttemptOutcome::Quarantined, vec![]),
            ],
            finished_at: T0.plus_secs(40),
        };
        let item = group_result_item(&result);
        assert_eq!(item.get("run_key"), Some(&AttributeValue::S("GROUP#small-x/7200/60/3/41".into())));
        assert_eq!(item.get("expires_at"), Some(&AttributeValue::N((T0.0 + 40 + RESULT_RETENTION_SECS).to_string())));
        // Members come back as compact as `extract.py` writes them: no output prefix (derived from
        // the spec), a message only where the attempt did not succeed.
        let mut compact = result.clone();
        for m in &mut compact.members {
            m.output_prefix.clear();
            if m.outcome == AttemptOutcome::Succeeded {
                m.message.clear();
            }
        }
        assert_eq!(group_result_from_item(&item).expect("reads back"), compact);
        let AttributeValue::L(members) = &item["members"] else { panic!("members are a list") };
        let AttributeValue::M(quarantined) = &members[2] else { panic!("a member is a map") };
        assert!(!quarantined.contains_key("c") && !quarantined.contains_key("sc"), "no empty values: {quarantined:?}");
        // The attempt result's own item keeps its layout (livy-jobs/README.md).
        let single = &result.members[1];
        let item = result_item(single);
        assert!(["run_key", "attempt", "outcome", "rows_read", "schema", "checks", "expires_at"]
            .iter()
            .all(|k| item.contains_key(*k)));
        assert_eq!(result_from_item(&item).expect("reads back"), *single);
    }

    #[test]
    fn malformed_shard_group_and_result_items_name_the_key_and_the_attribute() {
        let corrupt = |err: StoreError| match err {
            StoreError::Corrupt { key, reason } => format!("{key}: {reason}"),
            other => panic!("not corrupt: {other}"),
        };
        let mut item = shard_item(&shard_of(vec![("a", job(Validity::Valid, None))], None));
        let Some(AttributeValue::M(jobs)) = item.get_mut("jobs") else { panic!("jobs map") };
        let Some(AttributeValue::M(a)) = jobs.get_mut("a") else { panic!("job map") };
        a.insert("w".into(), AttributeValue::S("soon".into()));
        let err = corrupt(shard_from_item(&item).expect_err("corrupt"));
        assert!(err.starts_with("COHORT#small/300/60/SHARD#000002: ") && err.contains("jobs.a.w"), "{err}");

        let mut item = group_item(&group_of(GroupStatus::Settled { at: T0 }, None, true));
        let Some(AttributeValue::L(members)) = item.get_mut("members") else { panic!("members list") };
        let AttributeValue::M(m) = &mut members[2] else { panic!("member map") };
        m.remove("r");
        let err = corrupt(group_from_item(&item).expect_err("corrupt"));
        assert!(err.contains("GROUPS#small/300/60/0/GROUP#") && err.contains("members[2].r"), "{err}");
        let mut item = group_item(&group_of(GroupStatus::Settled { at: T0 }, None, true));
        item.insert("attempt".into(), AttributeValue::N("-1".into()));
        let err = corrupt(group_from_item(&item).expect_err("corrupt"));
        assert!(
            err.contains("attribute attempt is not an integer"),
            "a negative attempt is refused, not wrapped: {err}"
        );

        let mut item = group_result_item(&GroupResult {
            group: GroupKey { shard: ShardKey { cohort: cohort("small", 300), index: 0 }, seq: 1 },
            attempt: Attempt(1),
            members: vec![],
            finished_at: T0,
        });
        item.insert("run_key".into(), AttributeValue::S("GROUP#small/300".into()));
        let err = corrupt(group_result_from_item(&item).expect_err("corrupt"));
        assert!(err.contains("GROUP#small/300/1") && err.contains("run_key"), "{err}");
    }

    /// Plain text length of names and values, the rougher measure.
    fn text_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::L(l) => l.iter().map(text_size).sum(),
            AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + text_size(v)).sum(),
            _ => 1,
        }
    }

    #[test]
    fn a_full_shard_and_a_group_of_it_stay_far_below_the_item_limit() {
        // Realistic sizes: 20-character job ids, 32-character definition and schema hashes.
        let ids: Vec<String> = (0..norris_model::SHARD_MAX_JOBS).map(|i| format!("sales-db.orders-{i:04}")).collect();
        let full = shard_of(
            ids.iter()
                .map(|id| (id.as_str(), job(Validity::Valid, Some("fedcba9876543210fedcba9876543210"))))
                .collect(),
            Some(T0),
        );
        let empty = shard_of(vec![], Some(T0));
        let per_job = (item_size(&shard_item(&full)) - item_size(&shard_item(&empty))) / ids.len();
        let text_per_job = (text_size(&AttributeValue::M(shard_item(&full)))
            - text_size(&AttributeValue::M(shard_item(&empty))))
            / ids.len();

        let mut group = group_of(GroupStatus::Pending { not_before: T0 }, None, false);
        let member = |id: &str, state: MemberState| Member {
            job_id: JobId::new(id),
            window: Window { lo: T0, hi: T0.plus_secs(300) },
            failures: 0,
            state,
        };
        group.members = vec![];
        let bare = item_size(&group_item(&group));
        group.members = ids.iter().map(|id| member(id, MemberState::ToDo)).collect();
        let per_todo = (item_size(&group_item(&group)) - bare) / ids.len();
        group.members =
            ids.iter().map(|id| member(id, MemberState::Published { attempt: Attempt(1), rows: 12_345 })).collect();
        let per_published = (item_size(&group_item(&group)) - bare) / ids.len();
        println!(
            "shard: {} bytes with {} jobs, {per_job} per job ({text_per_job} as text); group: {} bytes bare, \
             {per_todo} per member to do, {per_published} per published member",
            item_size(&shard_item(&full)),
            ids.len(),
            bare
        );
        assert!(per_job <= 120, "{per_job} bytes per job");
        assert!(per_todo <= 60 && per_published <= 70, "{per_todo} / {per_published} bytes per member");
        assert!(item_size(&shard_item(&full)) < 40_000);

        // A group attempt's result carries each member's whole attempt result, the source schema
        // included: with 20 columns, a full group's result is most of an item's 400 KB.
        let schema = format!(
            "[{}]",
            (0..20)
                .map(|c| format!(r#"{{"name":"column_{c:02}","type":"bigint","nullable":true}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let result = GroupResult {
            group: group.key.clone(),
            attempt: Attempt(1),
            members: ids
                .iter()
                .map(|id| AttemptResult {
                    run_key: format!("{id}@{}", T0.0),
                    attempt: Attempt(1),
                    outcome: AttemptOutcome::Succeeded,
                    rows_read: 12_345,
                    rows_written: 12_345,
                    checks: vec![Check {
                        name: "primary key unique".into(),
                        passed: true,
                        detail: "0 duplicates".into(),
                    }],
                    schema_json: schema.clone(),
                    schema_verdict: "unchanged".into(),
                    schema_change: String::new(),
                    output_prefix: format!("s3://norris-lake/{id}/data/window_lo={}/attempt=1", T0.0),
                    message: "ok".into(),
                    finished_at: T0.plus_secs(120),
                })
                .collect(),
            finished_at: T0.plus_secs(121),
        };
        let total = item_size(&group_result_item(&result));
        println!(
            "group result: {total} bytes for {} members, {} per member ({} of them the schema)",
            ids.len(),
            total / ids.len(),
            schema.len()
        );
        assert!(total < 400 * 1024, "{total} bytes: over DynamoDB's item limit");
    }
}
