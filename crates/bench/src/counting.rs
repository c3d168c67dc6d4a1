//! Wrappers that count and time what a handler asks of its ports: [`CountingStore`] (every
//! `StateStore` and `GroupStore` operation, with what it would cost in DynamoDB requests),
//! [`TimedLivy`] (every `BatchService` call) and [`TimedSpecs`] (every spec written, an S3 PUT in
//! AWS). All delegate every method unchanged.

use crate::dynamo_model::{requests, Api, Call, ItemSizes, Op};
use norris_model::{
    Attempt, AttemptResult, Cluster, ClusterKey, CohortKey, Group, GroupKey, GroupResult, JobDefinition, JobId,
    JobState, PoolDefinition, Run, RunKey, Shard, ShardKey, UnixTime,
};
use norris_ports::{
    Annotation, BatchError, BatchObservation, BatchService, BatchSubmission, DefinitionRecord, GroupStore, SpecError,
    SpecStore, StateStore, StoreError, WriteError,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What one operation cost over a measured period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpStats {
    /// Calls.
    pub calls: u64,
    /// Keys asked for (batch reads) or items returned (queries, scans).
    pub items: u64,
    /// DynamoDB requests the adapter would send.
    pub requests: u64,
    /// Time spent inside the wrapped store.
    #[serde(skip)]
    pub time: Duration,
}

/// Per-operation counts of a measured period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// By operation.
    pub ops: BTreeMap<Op, OpStats>,
}

impl StoreStats {
    /// Adds one call.
    pub fn record(&mut self, call: &Call, sizes: &ItemSizes, time: Duration) {
        let (_, n) = requests(call, sizes);
        let s = self.ops.entry(call.op).or_default();
        s.calls += 1;
        s.items += (call.keys + call.items) as u64;
        s.requests += n;
        s.time += time;
    }

    /// Requests in total.
    pub fn requests(&self) -> u64 {
        self.ops.values().map(|s| s.requests).sum()
    }

    /// Requests by API.
    pub fn by_api(&self) -> BTreeMap<Api, u64> {
        let mut out = BTreeMap::new();
        for (op, s) in &self.ops {
            *out.entry(op.api()).or_default() += s.requests;
        }
        out
    }

    /// Time spent inside the store.
    pub fn time(&self) -> Duration {
        self.ops.values().map(|s| s.time).sum()
    }
}

/// Round trips to wait for after each call, for the network-wait figure: the in-memory models
/// answer at once, so without them a tick's waiting on DynamoDB and Livy would not show. Waited
/// on tokio's clock (paused in that series, so it costs no real time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetworkLatency {
    /// Per DynamoDB request.
    pub dynamodb_request_ms: u64,
    /// Per Livy look-up, kill or ping.
    pub livy_call_ms: u64,
    /// Per Livy batch submission.
    pub livy_submit_ms: u64,
    /// Per S3 PUT of a group attempt's spec.
    pub s3_put_ms: u64,
}

/// Runs `fut` and returns its output with the time spent inside its polls only. A tick runs
/// several operations at once, so the wall time from start to end of one would also count the
/// other operations and the handler code that ran while it was suspended.
async fn poll_timed<T>(fut: impl Future<Output = T>) -> (T, Duration) {
    let mut fut = Box::pin(fut);
    let mut spent = Duration::ZERO;
    let out = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let poll = fut.as_mut().poll(cx);
        spent += started.elapsed();
        poll
    })
    .await;
    (out, spent)
}

async fn wait_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// A `StateStore` that delegates to `inner` and counts each operation.
pub struct CountingStore<S> {
    inner: S,
    sizes: ItemSizes,
    stats: Mutex<StoreStats>,
    latency: NetworkLatency,
}

impl<S> CountingStore<S> {
    /// Wraps `inner`; `sizes` are the item sizes used for the 1 MB page bound.
    pub fn new(inner: S, sizes: ItemSizes) -> Self {
        CountingStore { inner, sizes, stats: Mutex::default(), latency: NetworkLatency::default() }
    }

    /// The same, waiting `latency` after each request.
    pub fn with_latency(self, latency: NetworkLatency) -> Self {
        CountingStore { latency, ..self }
    }

    /// The wrapped store (for set-up and inspection that is not counted).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, StoreStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counts since the last call, and starts counting afresh.
    pub fn take_stats(&self) -> StoreStats {
        std::mem::take(&mut *self.lock())
    }

    async fn measure<T>(&self, call: Call, op: impl Future<Output = T>, returned: impl FnOnce(&T) -> usize) -> T {
        let (out, elapsed) = poll_timed(op).await;
        let call = Call { items: returned(&out), ..call };
        self.lock().record(&call, &self.sizes, elapsed);
        let (_, n) = requests(&call, &self.sizes);
        wait_ms(self.latency.dynamodb_request_ms * n).await;
        out
    }

    async fn single<T>(&self, op: Op, fut: impl Future<Output = T>) -> T {
        self.measure(Call::single(op), fut, |_| 0).await
    }

    /// A read of a keys-only index followed by a batch read of the items it listed (what
    /// `read_listed` does in the adapter): two operations, the model's time on the first.
    async fn index_then_items<T>(
        &self,
        index: Call,
        items: Op,
        fut: impl Future<Output = Result<Vec<T>, StoreError>>,
    ) -> Result<Vec<T>, StoreError> {
        let (out, elapsed) = poll_timed(fut).await;
        let listed = len_of(&out);
        let index = Call { items: listed, ..index };
        let by_key = Call { op: items, keys: listed, items: 0, limit: usize::MAX };
        let n = {
            let mut stats = self.lock();
            stats.record(&index, &self.sizes, elapsed);
            stats.record(&by_key, &self.sizes, Duration::ZERO);
            requests(&index, &self.sizes).1 + requests(&by_key, &self.sizes).1
        };
        wait_ms(self.latency.dynamodb_request_ms * n).await;
        out
    }
}

fn len_of<T, E>(r: &Result<Vec<T>, E>) -> usize {
    r.as_ref().map_or(0, Vec::len)
}

impl<S: StateStore> StateStore for CountingStore<S> {
    async fn put_job_document(&self, document: &Value) -> Result<(), StoreError> {
        self.single(Op::PutJobDocument, self.inner.put_job_document(document)).await
    }

    async fn get_job_definitions(&self, ids: &[JobId]) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        let keys = ids.iter().collect::<BTreeSet<_>>().len();
        let call = Call { op: Op::GetJobDefinitions, keys, items: 0, limit: usize::MAX };
        self.measure(call, self.inner.get_job_definitions(ids), |_| 0).await
    }

    async fn scan_job_definitions(&self) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        let call = Call::single(Op::ScanJobDefinitions);
        self.measure(call, self.inner.scan_job_definitions(), len_of).await
    }

    async fn annotate_job_definition(&self, id: &JobId, annotation: &Annotation) -> Result<(), StoreError> {
        self.single(Op::AnnotateJobDefinition, self.inner.annotate_job_definition(id, annotation)).await
    }

    async fn claim_periodic(&self, task: &str, now: UnixTime, until: UnixTime) -> Result<bool, StoreError> {
        self.single(Op::ClaimPeriodic, self.inner.claim_periodic(task, now, until)).await
    }

    async fn put_pool_document(&self, document: &Value) -> Result<(), StoreError> {
        self.single(Op::PutPoolDocument, self.inner.put_pool_document(document)).await
    }

    async fn list_pools(&self) -> Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError> {
        self.measure(Call::single(Op::ListPools), self.inner.list_pools(), len_of).await
    }

    async fn get_job_state(&self, id: &JobId) -> Result<Option<JobState>, StoreError> {
        self.single(Op::GetJobState, self.inner.get_job_state(id)).await
    }

    async fn get_job_states(&self, ids: &[JobId]) -> Result<Vec<JobState>, StoreError> {
        let keys = ids.iter().collect::<BTreeSet<_>>().len();
        let call = Call { op: Op::GetJobStates, keys, items: 0, limit: usize::MAX };
        self.measure(call, self.inner.get_job_states(ids), |_| 0).await
    }

    async fn create_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.single(Op::CreateJobState, self.inner.create_job_state(state)).await
    }

    async fn update_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.single(Op::UpdateJobState, self.inner.update_job_state(state)).await
    }

    async fn due_jobs(&self, now: UnixTime, limit: usize) -> Result<Vec<JobState>, StoreError> {
        let call = Call { op: Op::DueJobs, keys: 0, items: 0, limit };
        self.measure(call, self.inner.due_jobs(now, limit), len_of).await
    }

    async fn create_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.single(Op::CreateRun, self.inner.create_run(run)).await
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<Run>, StoreError> {
        self.single(Op::GetRun, self.inner.get_run(key)).await
    }

    async fn update_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.single(Op::UpdateRun, self.inner.update_run(run)).await
    }

    async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        self.measure(Call::single(Op::ActiveRuns), self.inner.active_runs(), len_of).await
    }

    async fn runs_of_job(&self, id: &JobId, from: UnixTime, limit: usize) -> Result<Vec<Run>, StoreError> {
        let call = Call { op: Op::RunsOfJob, keys: 0, items: 0, limit };
        self.measure(call, self.inner.runs_of_job(id, from, limit), len_of).await
    }

    async fn create_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.single(Op::CreateCluster, self.inner.create_cluster(cluster)).await
    }

    async fn update_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.single(Op::UpdateCluster, self.inner.update_cluster(cluster)).await
    }

    async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, StoreError> {
        self.single(Op::GetCluster, self.inner.get_cluster(key)).await
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        self.measure(Call::single(Op::ListClusters), self.inner.list_clusters(), len_of).await
    }

    async fn get_attempt_results(&self, attempts: &[(RunKey, Attempt)]) -> Result<Vec<AttemptResult>, StoreError> {
        let keys = attempts.iter().collect::<BTreeSet<_>>().len();
        let call = Call { op: Op::GetAttemptResults, keys, items: 0, limit: usize::MAX };
        self.measure(call, self.inner.get_attempt_results(attempts), |_| 0).await
    }

    async fn put_attempt_result(&self, result: &AttemptResult) -> Result<(), StoreError> {
        self.single(Op::PutAttemptResult, self.inner.put_attempt_result(result)).await
    }
}

impl<S: GroupStore> GroupStore for CountingStore<S> {
    async fn create_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        self.single(Op::CreateShard, self.inner.create_shard(shard)).await
    }

    async fn update_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        self.single(Op::UpdateShard, self.inner.update_shard(shard)).await
    }

    async fn get_shard(&self, key: &ShardKey) -> Result<Option<Shard>, StoreError> {
        self.single(Op::GetShard, self.inner.get_shard(key)).await
    }

    async fn shards_of_cohort(&self, cohort: &CohortKey) -> Result<Vec<Shard>, StoreError> {
        self.measure(Call::single(Op::ShardsOfCohort), self.inner.shards_of_cohort(cohort), len_of).await
    }

    async fn due_shards(&self, now: UnixTime, limit: usize) -> Result<Vec<Shard>, StoreError> {
        let index = Call { op: Op::DueShardsIndex, keys: 0, items: 0, limit };
        self.index_then_items(index, Op::DueShardItems, self.inner.due_shards(now, limit)).await
    }

    async fn create_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        self.single(Op::CreateGroup, self.inner.create_group(group)).await
    }

    async fn update_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        self.single(Op::UpdateGroup, self.inner.update_group(group)).await
    }

    async fn get_group(&self, key: &GroupKey) -> Result<Option<Group>, StoreError> {
        self.single(Op::GetGroup, self.inner.get_group(key)).await
    }

    async fn open_groups(&self) -> Result<Vec<Group>, StoreError> {
        let index = Call::single(Op::OpenGroupsIndex);
        self.index_then_items(index, Op::OpenGroupItems, self.inner.open_groups()).await
    }

    async fn get_group_results(&self, attempts: &[(GroupKey, Attempt)]) -> Result<Vec<GroupResult>, StoreError> {
        let keys = attempts.iter().collect::<BTreeSet<_>>().len();
        let call = Call { op: Op::GetGroupResults, keys, items: 0, limit: usize::MAX };
        self.measure(call, self.inner.get_group_results(attempts), |_| 0).await
    }

    async fn put_group_result(&self, result: &GroupResult) -> Result<(), StoreError> {
        self.single(Op::PutGroupResult, self.inner.put_group_result(result)).await
    }

    async fn get_schemas(&self, jobs: &[JobId]) -> Result<Vec<(JobId, String)>, StoreError> {
        let keys = jobs.iter().collect::<BTreeSet<_>>().len();
        let call = Call { op: Op::GetSchemas, keys, items: 0, limit: usize::MAX };
        self.measure(call, self.inner.get_schemas(jobs), |_| 0).await
    }

    async fn put_schema(&self, job: &JobId, schema_json: &str) -> Result<(), StoreError> {
        self.single(Op::PutSchema, self.inner.put_schema(job, schema_json)).await
    }
}

/// Specs written and time spent in a spec store over a measured period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecStats {
    /// `put_spec` calls (one S3 PUT each in AWS).
    pub puts: u64,
    /// Time inside the wrapped store.
    pub time: Duration,
}

/// A `SpecStore` that delegates to `inner` and counts and times each spec written: the S3 PUT a
/// group attempt costs before its submission.
pub struct TimedSpecs<P> {
    inner: P,
    stats: Mutex<SpecStats>,
    latency: NetworkLatency,
}

impl<P: SpecStore> TimedSpecs<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        TimedSpecs { inner, stats: Mutex::default(), latency: NetworkLatency::default() }
    }

    /// The same, waiting `latency.s3_put_ms` after each spec written.
    pub fn with_latency(self, latency: NetworkLatency) -> Self {
        TimedSpecs { latency, ..self }
    }

    /// The counts since the last call, and starts counting afresh.
    pub fn take_stats(&self) -> SpecStats {
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl<P: SpecStore> SpecStore for TimedSpecs<P> {
    async fn put_spec(&self, name: &str, spec: &Value) -> Result<String, SpecError> {
        let (out, elapsed) = poll_timed(self.inner.put_spec(name, spec)).await;
        {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            s.puts += 1;
            s.time += elapsed;
        }
        wait_ms(self.latency.s3_put_ms).await;
        out
    }
}

/// Calls and time spent in a batch service over a measured period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// `submit` calls.
    pub submits: u64,
    /// `find` calls.
    pub finds: u64,
    /// `kill` and `ping` calls.
    pub others: u64,
    /// Time inside the wrapped service.
    pub time: Duration,
}

/// A `BatchService` that delegates to `inner` and counts and times each call.
pub struct TimedLivy<B> {
    inner: B,
    stats: Mutex<BatchStats>,
    latency: NetworkLatency,
}

impl<B: BatchService> TimedLivy<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        TimedLivy { inner, stats: Mutex::default(), latency: NetworkLatency::default() }
    }

    /// The same, waiting `latency` after each call.
    pub fn with_latency(self, latency: NetworkLatency) -> Self {
        TimedLivy { latency, ..self }
    }

    /// The wrapped service.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The counts since the last call, and starts counting afresh.
    pub fn take_stats(&self) -> BatchStats {
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn timed<T>(&self, count: fn(&mut BatchStats), wait: u64, fut: impl Future<Output = T>) -> T {
        let (out, elapsed) = poll_timed(fut).await;
        {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            count(&mut s);
            s.time += elapsed;
        }
        wait_ms(wait).await;
        out
    }
}

impl<B: BatchService> BatchService for TimedLivy<B> {
    async fn submit(&self, endpoint: &str, batch: &BatchSubmission) -> Result<BatchObservation, BatchError> {
        self.timed(|s| s.submits += 1, self.latency.livy_submit_ms, self.inner.submit(endpoint, batch)).await
    }

    async fn find(&self, endpoint: &str, name: &str) -> Result<Option<BatchObservation>, BatchError> {
        self.timed(|s| s.finds += 1, self.latency.livy_call_ms, self.inner.find(endpoint, name)).await
    }

    async fn kill(&self, endpoint: &str, id: i64) -> Result<bool, BatchError> {
        self.timed(|s| s.others += 1, self.latency.livy_call_ms, self.inner.kill(endpoint, id)).await
    }

    async fn ping(&self, endpoint: &str) -> Result<(), BatchError> {
        self.timed(|s| s.others += 1, self.latency.livy_call_ms, self.inner.ping(endpoint)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_ports::MemoryStore;

    fn run_until_done<F: Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(fut)
    }

    #[test]
    fn each_operation_is_counted_with_its_requests() {
        run_until_done(async {
            let store = CountingStore::new(MemoryStore::new(), ItemSizes::default());
            let ids: Vec<JobId> = (0..150).map(|i| JobId::new(format!("j{i}"))).chain([JobId::new("j0")]).collect();
            store.get_job_definitions(&ids).await.expect("read");
            store.due_jobs(UnixTime(0), 5000).await.expect("due");
            store.claim_periodic("t", UnixTime(0), UnixTime(10)).await.expect("claim");
            store.claim_periodic("t", UnixTime(1), UnixTime(10)).await.expect("claim again");
            let stats = store.take_stats();
            let defs = stats.ops[&Op::GetJobDefinitions];
            assert_eq!((defs.calls, defs.items, defs.requests), (1, 150, 2), "150 distinct ids: 2 batch reads");
            assert_eq!(stats.ops[&Op::DueJobs].requests, 1, "an empty query is still one request");
            assert_eq!(stats.ops[&Op::ClaimPeriodic].calls, 2, "a lost claim is a request too");
            assert_eq!(stats.requests(), 2 + 1 + 2);
            assert_eq!(stats.by_api()[&Api::PutItem], 2);
            assert!(store.take_stats().ops.is_empty(), "taking the counts resets them");
        });
    }
}
