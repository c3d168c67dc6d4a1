//! An in-memory state store with the semantics of the DynamoDB adapter: conditional creates,
//! versioned updates that report the current item on conflict, and definition documents kept as
//! written (so malformed ones read back as validation errors, as they do from DynamoDB).

use crate::store::{Annotation, DefinitionRecord, GroupStore, StateStore, StoreError, WriteError};
use norris_model::{
    Attempt, AttemptResult, Cluster, ClusterKey, CohortKey, Group, GroupKey, GroupResult, JobDefinition, JobId,
    JobState, PoolDefinition, Run, RunKey, Shard, ShardKey, UnixTime,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Tables {
    jobs: BTreeMap<String, Value>,
    pools: BTreeMap<String, Value>,
    job_states: BTreeMap<JobId, JobState>,
    runs: BTreeMap<RunKey, Run>,
    clusters: BTreeMap<ClusterKey, Cluster>,
    periodic: BTreeMap<String, UnixTime>,
    results: BTreeMap<(String, Attempt), AttemptResult>,
    shards: BTreeMap<ShardKey, Shard>,
    groups: BTreeMap<GroupKey, Group>,
    /// The groups not yet committed: the adapter's sparse index of open groups.
    open_groups: BTreeSet<GroupKey>,
    group_results: BTreeMap<(GroupKey, Attempt), GroupResult>,
    /// Each job's accepted source schema (JSON), apart from its shard as in the adapter.
    schemas: BTreeMap<JobId, String>,
    /// The runs not yet finished: the adapter's sparse `active` index.
    active_runs: BTreeSet<RunKey>,
    /// A journal of run writes, so the simulator's checks look only at what changed.
    run_seq: u64,
    run_changes: BTreeMap<u64, RunKey>,
    run_seq_of: BTreeMap<RunKey, u64>,
    /// The same journal for groups.
    group_seq: u64,
    group_changes: BTreeMap<u64, GroupKey>,
    group_seq_of: BTreeMap<GroupKey, u64>,
}

impl Tables {
    /// Keeps the open-groups index true after a group was written.
    fn group_written(&mut self, group: &Group) {
        if group.committed {
            self.open_groups.remove(&group.key);
        } else {
            self.open_groups.insert(group.key.clone());
        }
        self.group_seq += 1;
        if let Some(before) = self.group_seq_of.insert(group.key.clone(), self.group_seq) {
            self.group_changes.remove(&before);
        }
        self.group_changes.insert(self.group_seq, group.key.clone());
    }

    /// Keeps the active index and the journal true after a run was written.
    fn run_written(&mut self, run: &Run) {
        let key = run.key();
        if run.status.is_unfinished() {
            self.active_runs.insert(key.clone());
        } else {
            self.active_runs.remove(&key);
        }
        self.run_seq += 1;
        if let Some(before) = self.run_seq_of.insert(key.clone(), self.run_seq) {
            self.run_changes.remove(&before);
        }
        self.run_changes.insert(self.run_seq, key);
    }
}

/// The in-memory store. Cheap to create; one per test or simulated world.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock leaves whole items only (every write is one insert).
        self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every run of every job, for invariant checks in tests and the simulator.
    pub fn all_runs(&self) -> Vec<Run> {
        self.lock().runs.values().cloned().collect()
    }

    /// The runs written since journal position `since` (each once, as it is now) and the position
    /// to ask from next time: the simulator checks after every step what changed, not everything.
    pub fn runs_written_since(&self, since: u64) -> (Vec<Run>, u64) {
        let t = self.lock();
        let runs = t.run_changes.range(since + 1..).filter_map(|(_, key)| t.runs.get(key).cloned()).collect();
        (runs, t.run_seq)
    }

    /// The groups written since journal position `since` and the position to ask from next time
    /// (see [`MemoryStore::runs_written_since`]).
    pub fn groups_written_since(&self, since: u64) -> (Vec<Group>, u64) {
        let t = self.lock();
        let groups = t.group_changes.range(since + 1..).filter_map(|(_, key)| t.groups.get(key).cloned()).collect();
        (groups, t.group_seq)
    }

    /// Every shard, for invariant checks (the grouped ledger's job states).
    pub fn all_shards(&self) -> Vec<Shard> {
        self.lock().shards.values().cloned().collect()
    }

    /// Every group, for diagnostics after a simulation.
    pub fn all_groups(&self) -> Vec<Group> {
        self.lock().groups.values().cloned().collect()
    }

    /// Every job state, for invariant checks.
    pub fn all_job_states(&self) -> Vec<JobState> {
        self.lock().job_states.values().cloned().collect()
    }

    /// A job's state as stored, read without the yield an operation makes: for wrappers that
    /// account for an operation (what a write costs) without changing how handlers interleave.
    pub fn peek_job_state(&self, id: &JobId) -> Option<JobState> {
        self.lock().job_states.get(id).cloned()
    }

    /// A run as stored, read without a yield (see [`MemoryStore::peek_job_state`]).
    pub fn peek_run(&self, key: &RunKey) -> Option<Run> {
        self.lock().runs.get(key).cloned()
    }

    /// A shard as stored, read without a yield (see [`MemoryStore::peek_job_state`]).
    pub fn peek_shard(&self, key: &ShardKey) -> Option<Shard> {
        self.lock().shards.get(key).cloned()
    }

    /// A group as stored, read without a yield (see [`MemoryStore::peek_job_state`]).
    pub fn peek_group(&self, key: &GroupKey) -> Option<Group> {
        self.lock().groups.get(key).cloned()
    }
}

fn key_of(document: &Value, field: &str, operation: &'static str) -> Result<String, StoreError> {
    match document.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(StoreError::Rejected {
            operation,
            message: format!("the document has no string {field} (the table key)"),
        }),
    }
}

fn create<K: Ord + Clone, T: Clone>(map: &mut BTreeMap<K, T>, key: K, item: &T) -> Result<T, WriteError<T>> {
    if let Some(current) = map.get(&key) {
        return Err(WriteError::Conflict { current: Some(Box::new(current.clone())) });
    }
    map.insert(key, item.clone());
    Ok(item.clone())
}

fn update<K: Ord + Clone, T: Clone>(
    map: &mut BTreeMap<K, T>,
    key: K,
    item: &T,
    version_of: impl Fn(&T) -> norris_model::Version,
    bump: impl FnOnce(&mut T),
) -> Result<T, WriteError<T>> {
    match map.get(&key) {
        Some(current) if version_of(current) == version_of(item) => {
            let mut next = item.clone();
            bump(&mut next);
            map.insert(key, next.clone());
            Ok(next)
        }
        current => Err(WriteError::Conflict { current: current.cloned().map(Box::new) }),
    }
}

/// Gives other tasks a turn before each operation, as a network round trip would: concurrent
/// handlers over this store then really interleave, one operation at a time.
pub(crate) async fn yield_now() {
    struct YieldOnce(bool);
    impl std::future::Future for YieldOnce {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    YieldOnce(false).await
}

impl StateStore for MemoryStore {
    async fn put_job_document(&self, document: &Value) -> Result<(), StoreError> {
        yield_now().await;
        let key = key_of(document, "job_id", "put_job_document")?;
        self.lock().jobs.insert(key, document.clone());
        Ok(())
    }

    async fn get_job_definitions(&self, ids: &[JobId]) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        yield_now().await;
        let t = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| t.jobs.get(id.as_str()).map(|doc| DefinitionRecord::job(id.as_str(), doc, Vec::new())))
            .collect())
    }

    async fn scan_job_definitions(&self) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        yield_now().await;
        let t = self.lock();
        Ok(t.jobs.iter().map(|(k, doc)| DefinitionRecord::job(k, doc, Vec::new())).collect())
    }

    async fn annotate_job_definition(&self, id: &JobId, annotation: &Annotation) -> Result<(), StoreError> {
        yield_now().await;
        let mut t = self.lock();
        if let Some(Value::Object(doc)) = t.jobs.get_mut(id.as_str()) {
            doc.insert("norris_status".into(), json!(annotation.status));
            doc.insert(
                "norris_problems".into(),
                json!(annotation.problems.iter().map(ToString::to_string).collect::<Vec<_>>()),
            );
            doc.insert("norris_hash".into(), json!(annotation.hash));
        }
        Ok(())
    }

    async fn claim_periodic(&self, task: &str, now: UnixTime, until: UnixTime) -> Result<bool, StoreError> {
        yield_now().await;
        let mut t = self.lock();
        match t.periodic.get(task) {
            Some(held_until) if *held_until > now => Ok(false),
            _ => {
                t.periodic.insert(task.to_string(), until);
                Ok(true)
            }
        }
    }

    async fn put_pool_document(&self, document: &Value) -> Result<(), StoreError> {
        yield_now().await;
        let key = key_of(document, "size_class", "put_pool_document")?;
        self.lock().pools.insert(key, document.clone());
        Ok(())
    }

    async fn list_pools(&self) -> Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError> {
        yield_now().await;
        let t = self.lock();
        Ok(t.pools.iter().map(|(k, doc)| DefinitionRecord::pool(k, doc, Vec::new())).collect())
    }

    async fn get_job_state(&self, id: &JobId) -> Result<Option<JobState>, StoreError> {
        yield_now().await;
        Ok(self.lock().job_states.get(id).cloned())
    }

    async fn get_job_states(&self, ids: &[JobId]) -> Result<Vec<JobState>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let unique: BTreeSet<&JobId> = ids.iter().collect();
        Ok(unique.into_iter().filter_map(|id| t.job_states.get(id).cloned()).collect())
    }

    async fn create_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        yield_now().await;
        create(&mut self.lock().job_states, state.job_id.clone(), state)
    }

    async fn update_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        yield_now().await;
        update(
            &mut self.lock().job_states,
            state.job_id.clone(),
            state,
            |s| s.version,
            |s| s.version = s.version.next(),
        )
    }

    async fn due_jobs(&self, now: UnixTime, limit: usize) -> Result<Vec<JobState>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let mut due: Vec<JobState> =
            t.job_states.values().filter(|s| s.due_at.is_some_and(|d| d <= now)).cloned().collect();
        due.sort_by(|a, b| (a.due_at, &a.job_id).cmp(&(b.due_at, &b.job_id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn create_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        yield_now().await;
        let mut t = self.lock();
        let created = create(&mut t.runs, run.key(), run)?;
        t.run_written(&created);
        Ok(created)
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<Run>, StoreError> {
        yield_now().await;
        Ok(self.lock().runs.get(key).cloned())
    }

    async fn update_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        yield_now().await;
        let mut t = self.lock();
        let updated = update(&mut t.runs, run.key(), run, |r| r.version, |r| r.version = r.version.next())?;
        t.run_written(&updated);
        Ok(updated)
    }

    async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        yield_now().await;
        let t = self.lock();
        Ok(t.active_runs.iter().filter_map(|key| t.runs.get(key).cloned()).collect())
    }

    async fn runs_of_job(&self, id: &JobId, from: UnixTime, limit: usize) -> Result<Vec<Run>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let start = RunKey { job_id: id.clone(), window_lo: from };
        Ok(t.runs.range(start..).take_while(|(k, _)| &k.job_id == id).take(limit).map(|(_, r)| r.clone()).collect())
    }

    async fn create_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        yield_now().await;
        create(&mut self.lock().clusters, cluster.key.clone(), cluster)
    }

    async fn update_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        yield_now().await;
        update(&mut self.lock().clusters, cluster.key.clone(), cluster, |c| c.version, |c| c.version = c.version.next())
    }

    async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, StoreError> {
        yield_now().await;
        Ok(self.lock().clusters.get(key).cloned())
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        yield_now().await;
        Ok(self.lock().clusters.values().cloned().collect())
    }

    async fn get_attempt_results(&self, attempts: &[(RunKey, Attempt)]) -> Result<Vec<AttemptResult>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let unique: BTreeSet<(String, Attempt)> = attempts.iter().map(|(k, a)| (k.to_string(), *a)).collect();
        Ok(unique.iter().filter_map(|k| t.results.get(k).cloned()).collect())
    }

    async fn put_attempt_result(&self, result: &AttemptResult) -> Result<(), StoreError> {
        yield_now().await;
        self.lock().results.insert((result.run_key.clone(), result.attempt), result.clone());
        Ok(())
    }
}

impl GroupStore for MemoryStore {
    async fn create_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        yield_now().await;
        create(&mut self.lock().shards, shard.key.clone(), shard)
    }

    async fn update_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        yield_now().await;
        update(&mut self.lock().shards, shard.key.clone(), shard, |s| s.version, |s| s.version = s.version.next())
    }

    async fn get_shard(&self, key: &ShardKey) -> Result<Option<Shard>, StoreError> {
        yield_now().await;
        Ok(self.lock().shards.get(key).cloned())
    }

    async fn shards_of_cohort(&self, cohort: &CohortKey) -> Result<Vec<Shard>, StoreError> {
        yield_now().await;
        Ok(self.lock().shards.values().filter(|s| &s.key.cohort == cohort).cloned().collect())
    }

    async fn due_shards(&self, now: UnixTime, limit: usize) -> Result<Vec<Shard>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let mut due: Vec<Shard> = t.shards.values().filter(|s| s.due_at.is_some_and(|d| d <= now)).cloned().collect();
        due.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        due.truncate(limit);
        Ok(due)
    }

    async fn create_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        yield_now().await;
        let mut t = self.lock();
        let created = create(&mut t.groups, group.key.clone(), group)?;
        t.group_written(&created);
        Ok(created)
    }

    async fn update_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        yield_now().await;
        let mut t = self.lock();
        let updated = update(&mut t.groups, group.key.clone(), group, |g| g.version, |g| g.version = g.version.next())?;
        t.group_written(&updated);
        Ok(updated)
    }

    async fn get_group(&self, key: &GroupKey) -> Result<Option<Group>, StoreError> {
        yield_now().await;
        Ok(self.lock().groups.get(key).cloned())
    }

    async fn open_groups(&self) -> Result<Vec<Group>, StoreError> {
        yield_now().await;
        let t = self.lock();
        Ok(t.open_groups.iter().filter_map(|key| t.groups.get(key).cloned()).collect())
    }

    async fn get_group_results(&self, attempts: &[(GroupKey, Attempt)]) -> Result<Vec<GroupResult>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let unique: BTreeSet<&(GroupKey, Attempt)> = attempts.iter().collect();
        Ok(unique.into_iter().filter_map(|k| t.group_results.get(k).cloned()).collect())
    }

    async fn put_group_result(&self, result: &GroupResult) -> Result<(), StoreError> {
        yield_now().await;
        self.lock().group_results.insert((result.group.clone(), result.attempt), result.clone());
        Ok(())
    }

    async fn get_schemas(&self, jobs: &[JobId]) -> Result<Vec<(JobId, String)>, StoreError> {
        yield_now().await;
        let t = self.lock();
        let unique: BTreeSet<&JobId> = jobs.iter().collect();
        Ok(unique.into_iter().filter_map(|id| t.schemas.get(id).map(|s| (id.clone(), s.clone()))).collect())
    }

    async fn put_schema(&self, job: &JobId, schema_json: &str) -> Result<(), StoreError> {
        yield_now().await;
        self.lock().schemas.insert(job.clone(), schema_json.to_string());
        Ok(())
    }
}
