//! The state store port: job and pool definitions (operator-owned), job state, runs and clusters
//! (control-plane-owned ledger). Every ledger write is conditional on the version it read.

use norris_model::{
    job::definition_hash, Attempt, AttemptResult, Cluster, ClusterKey, CohortKey, DefinitionError, FieldProblem, Group,
    GroupKey, GroupResult, JobDefinition, JobId, JobState, PoolDefinition, Run, RunKey, Shard, ShardKey, UnixTime,
};
use serde_json::Value;
use std::future::Future;

/// A failure of the store itself (not a lost race).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out or unreachable after the adapter's own retries: try again later.
    #[error("state store unavailable during {operation}: {message}")]
    Unavailable {
        /// The operation that failed.
        operation: &'static str,
        /// What the store or the network said.
        message: String,
    },
    /// A ledger item norris wrote cannot be read back: a bug or a hand edit of the ledger.
    #[error("ledger item {key} is malformed: {reason}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store refused the request as such (bad request, missing table): retrying won't help.
    #[error("state store rejected {operation}: {message}")]
    Rejected {
        /// The operation that failed.
        operation: &'static str,
        /// What the store said.
        message: String,
    },
}

/// A conditional write that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError<T> {
    /// Someone else wrote first (or the item already exists): here is what is stored now, so the
    /// caller can decide again without another read. `None` when the item does not exist.
    #[error("conditional write lost: the item changed (or exists) since it was read")]
    Conflict {
        /// The item as stored now.
        current: Option<Box<T>>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A definition as read from its table: the key, a fingerprint of the document, and either the
/// parsed definition or every problem found. A malformed item is data, not a failure of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionRecord<T> {
    /// The item's key (job id or size class).
    pub key: String,
    /// See [`definition_hash`]: changes exactly when a person changed the document.
    pub hash: String,
    /// The hash norris last reconciled this document at (its `norris_hash` annotation): when it
    /// equals `hash`, the periodic sweep has nothing to do for this job.
    pub reconciled_hash: Option<String>,
    /// The verdict norris last wrote on the item (`norris_status`): with `reconciled_hash`, it lets
    /// a tick skip rewriting an annotation that would not change.
    pub annotated_status: Option<String>,
    /// The definition, or why it was refused.
    pub parsed: Result<T, DefinitionError>,
}

impl DefinitionRecord<JobDefinition> {
    /// Parses a job document read under `key`; `wire_problems` are what the adapter could not
    /// translate (for example a binary attribute).
    pub fn job(key: &str, document: &Value, wire_problems: Vec<FieldProblem>) -> Self {
        let mut parsed = JobDefinition::from_document(document);
        if let Ok(def) = &parsed {
            if def.id.as_str() != key {
                parsed = Err(DefinitionError {
                    id: key.to_string(),
                    problems: vec![FieldProblem {
                        path: "job_id".into(),
                        reason: format!("must equal the item key {key:?}"),
                    }],
                });
            }
        }
        DefinitionRecord {
            key: key.to_string(),
            hash: definition_hash(document),
            reconciled_hash: reconciled_hash(document),
            annotated_status: document.get("norris_status").and_then(Value::as_str).map(str::to_string),
            parsed: merge(key, parsed, wire_problems),
        }
    }
}

fn reconciled_hash(document: &Value) -> Option<String> {
    document.get("norris_hash").and_then(Value::as_str).map(str::to_string)
}

impl DefinitionRecord<PoolDefinition> {
    /// Parses a pool document read under `key`.
    pub fn pool(key: &str, document: &Value, wire_problems: Vec<FieldProblem>) -> Self {
        let parsed = PoolDefinition::from_document(document);
        DefinitionRecord {
            key: key.to_string(),
            hash: definition_hash(document),
            reconciled_hash: reconciled_hash(document),
            annotated_status: document.get("norris_status").and_then(Value::as_str).map(str::to_string),
            parsed: merge(key, parsed, wire_problems),
        }
    }
}

fn merge<T>(key: &str, parsed: Result<T, DefinitionError>, wire: Vec<FieldProblem>) -> Result<T, DefinitionError> {
    if wire.is_empty() {
        return parsed;
    }
    let mut problems = wire;
    if let Err(e) = parsed {
        // A value the adapter could not translate also reads as missing; say it once.
        let untranslatable: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
        problems.extend(e.problems.into_iter().filter(|p| !untranslatable.contains(&p.path)));
    }
    Err(DefinitionError { id: key.to_string(), problems })
}

/// norris's verdict on a definition, written back onto the definition item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// `valid`, `invalid`, `quarantined` or `disabled`.
    pub status: String,
    /// Every problem, as `path: reason` lines.
    pub problems: Vec<FieldProblem>,
    /// The definition hash this verdict is about.
    pub hash: String,
}

/// The state store. Implementations: DynamoDB (`norris-dynamo`) and [`crate::MemoryStore`].
///
/// Rules every implementation keeps (checked by the conformance suite):
/// - `create_*` fails with `Conflict { current }` when the key exists: a window cannot be cut twice.
/// - `update_*` takes the item as the caller wants it, with `version` still the version it read;
///   it stores it with the next version and returns it, or fails with `Conflict { current }`.
/// - Queries on the scheduler's hot path (`due_jobs`, `active_runs`) cost O(result), not O(all).
pub trait StateStore: Send + Sync {
    /// Writes a job definition document as it is (operators and tests; malformed ones included).
    fn put_job_document(&self, document: &Value) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads the named job definitions (missing ones are left out).
    fn get_job_definitions(
        &self,
        ids: &[JobId],
    ) -> impl Future<Output = Result<Vec<DefinitionRecord<JobDefinition>>, StoreError>> + Send;
    /// Reads every job definition: the periodic definition sweep only, never per tick.
    fn scan_job_definitions(
        &self,
    ) -> impl Future<Output = Result<Vec<DefinitionRecord<JobDefinition>>, StoreError>> + Send;
    /// Marks a definition item with norris's verdict (`norris_status`, `norris_problems`) so the
    /// person editing it in the console sees it, and with the hash it was reconciled at
    /// (`norris_hash`); touches no other attribute, and does nothing if the item is gone.
    fn annotate_job_definition(
        &self,
        id: &JobId,
        annotation: &Annotation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims a periodic task (such as the definition sweep) until `until`, if nobody holds it at
    /// `now`. Returns whether this caller got it: of two concurrent ticks, one runs the task.
    fn claim_periodic(
        &self,
        task: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes a pool definition document as it is.
    fn put_pool_document(&self, document: &Value) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads every pool definition (a handful).
    fn list_pools(&self) -> impl Future<Output = Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError>> + Send;

    /// Reads a job's state.
    fn get_job_state(&self, id: &JobId) -> impl Future<Output = Result<Option<JobState>, StoreError>> + Send;
    /// Reads the named jobs' states (missing ones left out) in as few requests as the store
    /// allows: a tick follows runs of many jobs, and one read per job was most of its reads.
    fn get_job_states(&self, ids: &[JobId]) -> impl Future<Output = Result<Vec<JobState>, StoreError>> + Send;
    /// Creates a job's state; `Conflict` if it exists.
    fn create_job_state(&self, state: &JobState)
        -> impl Future<Output = Result<JobState, WriteError<JobState>>> + Send;
    /// Replaces a job's state if its version is unchanged.
    fn update_job_state(&self, state: &JobState)
        -> impl Future<Output = Result<JobState, WriteError<JobState>>> + Send;
    /// Job states with `due_at <= now`, earliest first (by job id at the same moment), at most
    /// `limit`, each as it is now.
    fn due_jobs(&self, now: UnixTime, limit: usize) -> impl Future<Output = Result<Vec<JobState>, StoreError>> + Send;

    /// Creates a run; `Conflict` if the job already has a run for that window.
    fn create_run(&self, run: &Run) -> impl Future<Output = Result<Run, WriteError<Run>>> + Send;
    /// Reads a run.
    fn get_run(&self, key: &RunKey) -> impl Future<Output = Result<Option<Run>, StoreError>> + Send;
    /// Replaces a run if its version is unchanged.
    fn update_run(&self, run: &Run) -> impl Future<Output = Result<Run, WriteError<Run>>> + Send;
    /// Every unfinished run (pending, submitting, running), in key order.
    fn active_runs(&self) -> impl Future<Output = Result<Vec<Run>, StoreError>> + Send;
    /// A job's runs with `window.lo >= from`, in window order, at most `limit`.
    fn runs_of_job(
        &self,
        id: &JobId,
        from: UnixTime,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Run>, StoreError>> + Send;

    /// Records a new cluster; `Conflict` if the key exists (one launch per need).
    fn create_cluster(&self, cluster: &Cluster) -> impl Future<Output = Result<Cluster, WriteError<Cluster>>> + Send;
    /// Replaces a cluster if its version is unchanged.
    fn update_cluster(&self, cluster: &Cluster) -> impl Future<Output = Result<Cluster, WriteError<Cluster>>> + Send;
    /// Reads one cluster.
    fn get_cluster(&self, key: &ClusterKey) -> impl Future<Output = Result<Option<Cluster>, StoreError>> + Send;
    /// Every cluster record (a handful: clusters are few).
    fn list_clusters(&self) -> impl Future<Output = Result<Vec<Cluster>, StoreError>> + Send;

    /// The results the named attempts reported (those that wrote none left out), strongly
    /// consistent, batched like `get_job_states`: the scheduler reads those of every run it
    /// follows at once.
    fn get_attempt_results(
        &self,
        attempts: &[(RunKey, Attempt)],
    ) -> impl Future<Output = Result<Vec<AttemptResult>, StoreError>> + Send;
    /// Writes an attempt's result. In production the Spark job writes it (see `livy-jobs/README.md`);
    /// tests and the simulator write it through here.
    fn put_attempt_result(&self, result: &AttemptResult) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The grouped ledger's store (ARCHITECTURE.md, "Plan: the grouped ledger"): shards and groups,
/// with the same rules as [`StateStore`] (conditional creates, versioned updates that return the
/// current item on conflict, hot-path queries that cost O(result)). Implementations: the
/// DynamoDB adapter and [`crate::MemoryStore`], checked by the same conformance suite. Used by
/// the grouped tick and the cluster passes (groups placed on a cluster).
pub trait GroupStore: Send + Sync {
    /// Creates a shard; `Conflict` if it exists.
    fn create_shard(&self, shard: &Shard) -> impl Future<Output = Result<Shard, WriteError<Shard>>> + Send;
    /// Replaces a shard if its version is unchanged.
    fn update_shard(&self, shard: &Shard) -> impl Future<Output = Result<Shard, WriteError<Shard>>> + Send;
    /// Reads one shard.
    fn get_shard(&self, key: &ShardKey) -> impl Future<Output = Result<Option<Shard>, StoreError>> + Send;
    /// A cohort's shards, by index: where the definition sweep puts a new job (a few per cohort).
    fn shards_of_cohort(&self, cohort: &CohortKey) -> impl Future<Output = Result<Vec<Shard>, StoreError>> + Send;
    /// Shards with `due_at <= now`, earliest first (in key order at the same moment), at most
    /// `limit`, each as it is now: a tick's reads grow with the shards due, not with all jobs.
    fn due_shards(&self, now: UnixTime, limit: usize) -> impl Future<Output = Result<Vec<Shard>, StoreError>> + Send;

    /// Creates a group; `Conflict` (with the stored group) if its key exists: a cut happens once.
    fn create_group(&self, group: &Group) -> impl Future<Output = Result<Group, WriteError<Group>>> + Send;
    /// Replaces a group if its version is unchanged.
    fn update_group(&self, group: &Group) -> impl Future<Output = Result<Group, WriteError<Group>>> + Send;
    /// Reads one group.
    fn get_group(&self, key: &GroupKey) -> impl Future<Output = Result<Option<Group>, StoreError>> + Send;
    /// Every group not yet committed (still running members, or settled and not yet folded into
    /// its shard), in key order: what a tick follows and folds.
    fn open_groups(&self) -> impl Future<Output = Result<Vec<Group>, StoreError>> + Send;

    /// The results the named group attempts reported (those that wrote none left out), strongly
    /// consistent.
    fn get_group_results(
        &self,
        attempts: &[(GroupKey, Attempt)],
    ) -> impl Future<Output = Result<Vec<GroupResult>, StoreError>> + Send;
    /// Writes a group attempt's result. In production the Spark application writes it; tests and
    /// the simulator write it through here.
    fn put_group_result(&self, result: &GroupResult) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The accepted source schemas of these jobs (those with none left out), in job-id order,
    /// strongly consistent and batched like `get_group_results`: a shard keeps only each job's
    /// `schema_hash`, and a group attempt's spec carries each member's accepted schema for the
    /// Spark job to compare the source against; a stale one could let a breaking change through.
    fn get_schemas(&self, jobs: &[JobId]) -> impl Future<Output = Result<Vec<(JobId, String)>, StoreError>> + Send;
    /// Records a job's accepted schema (JSON, up to a few KB). An unconditional put, the latest
    /// accepted wins; called only when it changes (first publish, additive evolution), so the
    /// shard item, rewritten every tick, carries its hash and not its bytes.
    fn put_schema(&self, job: &JobId, schema_json: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
