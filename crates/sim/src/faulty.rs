//! The state store as a handler invocation sees it in the simulation: the in-memory DynamoDB model
//! behind a layer of faults drawn from the seed — throttling before the write, a response lost
//! after the write took effect, and the invocation dying at a chosen operation (before or after
//! that operation's effect).

use crate::rng::SimRng;
use norris_model::{
    Attempt, AttemptResult, Cluster, ClusterKey, CohortKey, Group, GroupKey, GroupResult, JobDefinition, JobId,
    JobState, PoolDefinition, Run, RunKey, Shard, ShardKey, UnixTime,
};
use norris_ports::{Annotation, DefinitionRecord, GroupStore, MemoryStore, StateStore, StoreError, WriteError};
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Fault rates for one invocation's store operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreFaults {
    /// Probability an operation fails before taking effect (throttling, 5xx).
    pub fail_before: f64,
    /// Probability an operation takes effect and its response is lost (a timeout).
    pub lose_after: f64,
    /// The operation (0-based) at which the invocation dies, if it does.
    pub die_at_op: Option<u64>,
    /// A deliberately broken store for proving the checker bites: run and group updates ignore
    /// the version they were read at (last writer wins), as a handler writing without its
    /// condition would.
    pub unconditional_updates: bool,
}

enum Fate {
    Normal,
    FailBefore,
    LoseAfter,
    DieBefore,
    DieAfter,
}

/// One invocation's view of the store.
pub struct FaultyStore<'a> {
    inner: &'a MemoryStore,
    faults: StoreFaults,
    rng: Mutex<SimRng>,
    ops: AtomicU64,
    writes: AtomicU64,
    index_writes: AtomicU64,
    /// Raised when the invocation dies; the executor drops it at its next yield.
    pub crashed: Arc<AtomicBool>,
}

impl<'a> FaultyStore<'a> {
    /// A view of `inner` with `faults`, drawing from `rng`.
    pub fn new(inner: &'a MemoryStore, faults: StoreFaults, rng: SimRng) -> Self {
        FaultyStore {
            inner,
            faults,
            rng: Mutex::new(rng),
            ops: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            index_writes: AtomicU64::new(0),
            crashed: Arc::default(),
        }
    }

    /// Operations attempted (the DynamoDB requests this invocation made).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Of those, writes.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Index entries written (a write unit each: the ledger indexes copy keys only). DynamoDB
    /// writes an entry when the item enters an index, leaves it, or changes its index key: a run
    /// enters `active` when created and leaves it when finished; a job state's `due` entry moves
    /// whenever its `due_at` does.
    pub fn index_writes(&self) -> u64 {
        self.index_writes.load(Ordering::SeqCst)
    }

    fn indexed(&self, entries: u64) {
        self.index_writes.fetch_add(entries, Ordering::SeqCst);
    }

    /// Entries written when an index key goes from `before` to `after` (`None`: not in the index).
    fn entries_changed<K: PartialEq>(before: Option<K>, after: Option<K>) -> u64 {
        if before == after {
            0
        } else {
            u64::from(before.is_some()) + u64::from(after.is_some())
        }
    }

    fn fate(&self) -> Fate {
        let op = self.ops.fetch_add(1, Ordering::SeqCst);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if self.faults.die_at_op == Some(op) {
            return if rng.chance(0.5) { Fate::DieBefore } else { Fate::DieAfter };
        }
        if rng.chance(self.faults.fail_before) {
            Fate::FailBefore
        } else if rng.chance(self.faults.lose_after) {
            Fate::LoseAfter
        } else {
            Fate::Normal
        }
    }

    async fn guard<T, E: From<StoreError>>(
        &self,
        operation: &'static str,
        op: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if ["put_", "create_", "update_", "annotate_", "claim_"].iter().any(|p| operation.starts_with(p)) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        let unavailable =
            |message: &str| E::from(StoreError::Unavailable { operation, message: format!("{message} (simulated)") });
        match self.fate() {
            Fate::Normal => op.await,
            Fate::FailBefore => Err(unavailable("throttled")),
            Fate::LoseAfter => {
                let _ = op.await;
                Err(unavailable("response lost after the write"))
            }
            Fate::DieBefore => self.die().await,
            Fate::DieAfter => {
                let _ = op.await;
                self.die().await
            }
        }
    }

    async fn die<T>(&self) -> T {
        self.crashed.store(true, Ordering::SeqCst);
        std::future::pending().await
    }
}

impl StateStore for FaultyStore<'_> {
    async fn put_job_document(&self, document: &Value) -> Result<(), StoreError> {
        self.guard("put_job_document", self.inner.put_job_document(document)).await
    }
    async fn get_job_definitions(&self, ids: &[JobId]) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        self.guard("get_job_definitions", self.inner.get_job_definitions(ids)).await
    }
    async fn scan_job_definitions(&self) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        self.guard("scan_job_definitions", self.inner.scan_job_definitions()).await
    }
    async fn annotate_job_definition(&self, id: &JobId, annotation: &Annotation) -> Result<(), StoreError> {
        self.guard("annotate_job_definition", self.inner.annotate_job_definition(id, annotation)).await
    }
    async fn claim_periodic(&self, task: &str, now: UnixTime, until: UnixTime) -> Result<bool, StoreError> {
        self.guard("claim_periodic", self.inner.claim_periodic(task, now, until)).await
    }
    async fn put_pool_document(&self, document: &Value) -> Result<(), StoreError> {
        self.guard("put_pool_document", self.inner.put_pool_document(document)).await
    }
    async fn list_pools(&self) -> Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError> {
        self.guard("list_pools", self.inner.list_pools()).await
    }
    async fn get_job_state(&self, id: &JobId) -> Result<Option<JobState>, StoreError> {
        self.guard("get_job_state", self.inner.get_job_state(id)).await
    }
    async fn get_job_states(&self, ids: &[JobId]) -> Result<Vec<JobState>, StoreError> {
        self.guard("get_job_states", self.inner.get_job_states(ids)).await
    }
    async fn create_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.indexed(Self::entries_changed(None, state.due_at));
        self.guard("create_job_state", self.inner.create_job_state(state)).await
    }
    async fn update_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        let before = self.inner.peek_job_state(&state.job_id).and_then(|s| s.due_at);
        self.indexed(Self::entries_changed(before, state.due_at));
        self.guard("update_job_state", self.inner.update_job_state(state)).await
    }
    async fn due_jobs(&self, now: UnixTime, limit: usize) -> Result<Vec<JobState>, StoreError> {
        self.guard("due_jobs", self.inner.due_jobs(now, limit)).await
    }
    async fn create_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.indexed(1);
        self.guard("create_run", self.inner.create_run(run)).await
    }
    async fn get_run(&self, key: &RunKey) -> Result<Option<Run>, StoreError> {
        self.guard("get_run", self.inner.get_run(key)).await
    }
    async fn update_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        let before = self.inner.peek_run(&run.key()).map(|r| r.status.is_unfinished());
        self.indexed(Self::entries_changed(before.filter(|u| *u), Some(run.status.is_unfinished()).filter(|u| *u)));
        if self.faults.unconditional_updates {
            let forced = async {
                let mut run = run.clone();
                if let Some(current) = self.inner.get_run(&run.key()).await? {
                    run.version = current.version;
                }
                self.inner.update_run(&run).await
            };
            return self.guard("update_run", forced).await;
        }
        self.guard("update_run", self.inner.update_run(run)).await
    }
    async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        self.guard("active_runs", self.inner.active_runs()).await
    }
    async fn runs_of_job(&self, id: &JobId, from: UnixTime, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.guard("runs_of_job", self.inner.runs_of_job(id, from, limit)).await
    }
    async fn create_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.guard("create_cluster", self.inner.create_cluster(cluster)).await
    }
    async fn update_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.guard("update_cluster", self.inner.update_cluster(cluster)).await
    }
    async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, StoreError> {
        self.guard("get_cluster", self.inner.get_cluster(key)).await
    }
    async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        self.guard("list_clusters", self.inner.list_clusters()).await
    }
    async fn get_attempt_results(&self, attempts: &[(RunKey, Attempt)]) -> Result<Vec<AttemptResult>, StoreError> {
        self.guard("get_attempt_results", self.inner.get_attempt_results(attempts)).await
    }
    async fn put_attempt_result(&self, result: &AttemptResult) -> Result<(), StoreError> {
        self.guard("put_attempt_result", self.inner.put_attempt_result(result)).await
    }
}

impl GroupStore for FaultyStore<'_> {
    async fn create_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        self.indexed(Self::entries_changed(None, shard.due_at));
        self.guard("create_shard", self.inner.create_shard(shard)).await
    }
    async fn update_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        let before = self.inner.peek_shard(&shard.key).and_then(|s| s.due_at);
        self.indexed(Self::entries_changed(before, shard.due_at));
        self.guard("update_shard", self.inner.update_shard(shard)).await
    }
    async fn get_shard(&self, key: &ShardKey) -> Result<Option<Shard>, StoreError> {
        self.guard("get_shard", self.inner.get_shard(key)).await
    }
    async fn shards_of_cohort(&self, cohort: &CohortKey) -> Result<Vec<Shard>, StoreError> {
        self.guard("shards_of_cohort", self.inner.shards_of_cohort(cohort)).await
    }
    async fn due_shards(&self, now: UnixTime, limit: usize) -> Result<Vec<Shard>, StoreError> {
        self.guard("due_shards", self.inner.due_shards(now, limit)).await
    }
    async fn create_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        self.indexed(u64::from(!group.committed));
        self.guard("create_group", self.inner.create_group(group)).await
    }
    async fn update_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        let was_open = self.inner.peek_group(&group.key).map(|g| !g.committed);
        self.indexed(Self::entries_changed(was_open.filter(|o| *o), Some(!group.committed).filter(|o| *o)));
        if self.faults.unconditional_updates {
            let forced = async {
                let mut group = group.clone();
                if let Some(current) = self.inner.get_group(&group.key).await? {
                    group.version = current.version;
                }
                self.inner.update_group(&group).await
            };
            return self.guard("update_group", forced).await;
        }
        self.guard("update_group", self.inner.update_group(group)).await
    }
    async fn get_group(&self, key: &GroupKey) -> Result<Option<Group>, StoreError> {
        self.guard("get_group", self.inner.get_group(key)).await
    }
    async fn open_groups(&self) -> Result<Vec<Group>, StoreError> {
        self.guard("open_groups", self.inner.open_groups()).await
    }
    async fn get_group_results(&self, attempts: &[(GroupKey, Attempt)]) -> Result<Vec<GroupResult>, StoreError> {
        self.guard("get_group_results", self.inner.get_group_results(attempts)).await
    }
    async fn put_group_result(&self, result: &GroupResult) -> Result<(), StoreError> {
        self.guard("put_group_result", self.inner.put_group_result(result)).await
    }
    async fn get_schemas(&self, jobs: &[JobId]) -> Result<Vec<(JobId, String)>, StoreError> {
        self.guard("get_schemas", self.inner.get_schemas(jobs)).await
    }
    async fn put_schema(&self, job: &JobId, schema_json: &str) -> Result<(), StoreError> {
        self.guard("put_schema", self.inner.put_schema(job, schema_json)).await
    }
}
