//! The grouped ledger's control-plane cost, measured on the real tick (`grouped_tick`): jobs on
//! one interval ticked for a virtual day over the in-memory models, every group's application
//! finishing within the interval with the compact result `extract.py` writes, and each store
//! operation billed as DynamoDB bills it, with the sizes of the adapter's own items and index
//! entries (`norris_dynamo::billing`; the ledger indexes copy keys only, so their readers fetch
//! the items by key). Between ticks the lifecycle passes run over the same store as the stack
//! schedules them (`norris_control::clusters::watch` and `migrate` every minute, `rotate` every
//! ten),
//! in a steady world (a pool whose clusters are all up, none to rotate), and their reads are
//! billed apart. Extrapolated to a 30-day month at on-demand list prices.

use norris_control::clusters::{migrate, rotate, watch, ClusterReport, LifecycleConfig};
use norris_control::grouped::grouped_tick;
use norris_control::SchedulerConfig;
use norris_dynamo::billing;
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchPhase, Cluster, ClusterKey, ClusterState, CohortKey, EmrState, Group,
    GroupKey, GroupResult, GroupStatus, JobDefinition, JobId, JobState, LaunchRequest, PoolDefinition, Run, RunKey,
    Shard, ShardKey, UnixTime, Version,
};
use norris_ports::{
    Annotation, DefinitionRecord, EmrService, GroupStore, MemoryEmr, MemoryLivy, MemorySpecs, MemoryStore, StateStore,
    StoreError, WriteError,
};
use norris_sim::prices;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

const T0: UnixTime = UnixTime(1_795_305_600); // 2026-11-22T00:00:00Z
const LIVY: &str = "http://livy-a";
/// The scheduler's EventBridge rate in the stack (`infra/lib/config.ts`).
const TICK_SECS: i64 = 300;
/// Ticks of the first hour, left out of the steady-state figures (jobs placed, first schemas).
const WARM_UP_TICKS: usize = 12;
/// The cluster health watcher's sweep (`infra/lib/config.ts`): a pass every minute.
const WATCH_SECS: i64 = 60;
/// The rotation handler's rate: a pass every 10 minutes, run here in place of that minute's sweep.
const ROTATE_SECS: i64 = 600;
/// The deployment tag of the bench's clusters.
const DEPLOYMENT: &str = "norris-bench";
/// A run item of the per-window ledger, for `active_runs` (the grouped ledger has none).
const RUN_BYTES: usize = 600;

/// What the measurement is run on.
#[derive(Debug, Clone, Copy)]
pub struct CostArgs {
    /// Jobs, all on one 5-minute interval.
    pub jobs: u32,
    /// Virtual days ticked.
    pub days: f64,
}

impl Default for CostArgs {
    fn default() -> Self {
        CostArgs { jobs: 1000, days: 1.0 }
    }
}

/// Units billed, by what they were billed for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Units {
    /// Write units by item kind (`shard`, `group`, `group result`, …); index copies apart.
    pub writes: BTreeMap<&'static str, u64>,
    /// Read units (strongly consistent units; an eventually consistent read counts half).
    pub reads: BTreeMap<&'static str, f64>,
    /// Bytes written by item kind (table writes only).
    pub bytes_written: BTreeMap<&'static str, u64>,
    /// Requests sent (each write and each read or query page counted once).
    pub requests: u64,
}

impl Units {
    fn write(&mut self, kind: &'static str, bytes: usize) {
        *self.writes.entry(kind).or_default() += billing::write_units(bytes);
        *self.bytes_written.entry(kind).or_default() += bytes as u64;
        self.requests += 1;
    }

    fn index_copy(&mut self, kind: &'static str, bytes: usize) {
        *self.writes.entry(kind).or_default() += billing::write_units(bytes);
    }

    fn read(&mut self, kind: &'static str, bytes: usize, consistent: bool) {
        let units = billing::read_units(bytes) as f64;
        *self.reads.entry(kind).or_default() += if consistent { units } else { units / 2.0 };
        self.requests += 1;
    }

    /// A `BatchGetItem` of `items` (100 keys a request), each billed on its own.
    fn batch_read(&mut self, kind: &'static str, sizes: impl Iterator<Item = usize>, consistent: bool) {
        let mut items = 0;
        for bytes in sizes {
            let units = billing::read_units(bytes) as f64;
            *self.reads.entry(kind).or_default() += if consistent { units } else { units / 2.0 };
            items += 1;
        }
        self.requests += (items as u64).div_ceil(100);
    }

    fn add(&mut self, other: Units) {
        for (k, v) in other.writes {
            *self.writes.entry(k).or_default() += v;
        }
        for (k, v) in other.reads {
            *self.reads.entry(k).or_default() += v;
        }
        for (k, v) in other.bytes_written {
            *self.bytes_written.entry(k).or_default() += v;
        }
        self.requests += other.requests;
    }

    fn total_writes(&self) -> u64 {
        self.writes.values().sum()
    }

    fn total_reads(&self) -> f64 {
        self.reads.values().sum()
    }
}

/// The figures of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// Jobs.
    pub jobs: u32,
    /// Shards they were placed in.
    pub shards: usize,
    /// Ticks measured (after the warm-up hour).
    pub ticks: usize,
    /// Windows committed in those ticks.
    pub windows_committed: usize,
    /// Units billed in those ticks.
    pub units: Units,
    /// Write units per committed window.
    pub write_units_per_window: f64,
    /// DynamoDB requests per tick.
    pub requests_per_tick: f64,
    /// DynamoDB writes per month (USD).
    pub dynamodb_writes_usd_month: f64,
    /// DynamoDB reads per month (USD).
    pub dynamodb_reads_usd_month: f64,
    /// The scheduler Lambda per month (USD; one invocation per tick, at the simulator's assumed
    /// GB-seconds per invocation).
    pub lambda_usd_month: f64,
    /// Group attempts' specs per month (USD): one S3 PUT by the tick and one GET by the
    /// application per attempt.
    pub specs_usd_month: f64,
    /// The other Lambdas per month (USD): the watcher's sweep and the migrator every minute and
    /// the rotation handler every 10 minutes, whatever the job count, at the same assumed
    /// GB-seconds.
    pub other_lambdas_usd_month: f64,
    /// Lifecycle passes measured (the watcher's, the migrator's and the rotation handler's,
    /// between the measured ticks).
    pub lifecycle_passes: usize,
    /// Of those, the rotation handler's.
    pub rotation_passes: usize,
    /// Units the lifecycle passes were billed, by what they read; apart from the tick's.
    pub lifecycle_units: Units,
    /// What a lifecycle pass changed (launched, drained, terminated, lost, moved, failed): the
    /// world is steady, so anything here is a finding, not a cost to average in.
    pub lifecycle_changes: Vec<String>,
    /// The lifecycle passes' DynamoDB reads per month (USD; their writes too, should they make
    /// any): a pass every minute whatever the job count, each reading the open groups, which
    /// grow with the jobs.
    pub lifecycle_reads_usd_month: f64,
    /// All of it.
    pub total_usd_month: f64,
}

/// A store that bills each operation to [`Units`] and delegates it to the in-memory model.
struct BillingStore<'a> {
    inner: &'a MemoryStore,
    units: Mutex<Units>,
    /// A definition item's size: the document as JSON plus norris's annotations (JSON is within
    /// a few percent of DynamoDB's count for these strings).
    definition_bytes: usize,
}

impl BillingStore<'_> {
    fn bill(&self, f: impl FnOnce(&mut Units)) {
        f(&mut self.units.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn take(&self) -> Units {
        std::mem::take(&mut *self.units.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl StateStore for BillingStore<'_> {
    async fn put_job_document(&self, document: &Value) -> Result<(), StoreError> {
        self.inner.put_job_document(document).await
    }
    async fn get_job_definitions(&self, ids: &[JobId]) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        let found = self.inner.get_job_definitions(ids).await?;
        self.bill(|u| u.batch_read("definition", found.iter().map(|_| self.definition_bytes), false));
        Ok(found)
    }
    async fn scan_job_definitions(&self) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        let found = self.inner.scan_job_definitions().await?;
        let bytes = found.len() * self.definition_bytes;
        self.bill(|u| u.read("definition scan", bytes, false));
        Ok(found)
    }
    async fn annotate_job_definition(&self, id: &JobId, annotation: &Annotation) -> Result<(), StoreError> {
        self.bill(|u| u.write("definition annotation", self.definition_bytes));
        self.inner.annotate_job_definition(id, annotation).await
    }
    async fn claim_periodic(&self, task: &str, now: UnixTime, until: UnixTime) -> Result<bool, StoreError> {
        self.bill(|u| u.write("periodic claim", 60));
        self.inner.claim_periodic(task, now, until).await
    }
    async fn put_pool_document(&self, document: &Value) -> Result<(), StoreError> {
        self.inner.put_pool_document(document).await
    }
    async fn list_pools(&self) -> Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError> {
        let found = self.inner.list_pools().await?;
        self.bill(|u| u.read("pools", 300 * found.len(), false));
        Ok(found)
    }
    async fn get_job_state(&self, id: &JobId) -> Result<Option<JobState>, StoreError> {
        self.inner.get_job_state(id).await
    }
    async fn get_job_states(&self, ids: &[JobId]) -> Result<Vec<JobState>, StoreError> {
        self.inner.get_job_states(ids).await
    }
    async fn create_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.inner.create_job_state(state).await
    }
    async fn update_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.inner.update_job_state(state).await
    }
    async fn due_jobs(&self, now: UnixTime, limit: usize) -> Result<Vec<JobState>, StoreError> {
        self.inner.due_jobs(now, limit).await
    }
    async fn create_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.inner.create_run(run).await
    }
    async fn get_run(&self, key: &RunKey) -> Result<Option<Run>, StoreError> {
        self.inner.get_run(key).await
    }
    async fn update_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.inner.update_run(run).await
    }
    async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        let found = self.inner.active_runs().await?;
        // The keys-only `active` index (a query costs a unit even when empty), then the items.
        self.bill(|u| {
            u.read("active runs (index)", 100 * found.len(), false);
            u.batch_read("active runs (items)", found.iter().map(|_| RUN_BYTES), true);
        });
        Ok(found)
    }
    async fn runs_of_job(&self, id: &JobId, from: UnixTime, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.inner.runs_of_job(id, from, limit).await
    }
    async fn create_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.inner.create_cluster(cluster).await
    }
    async fn update_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.inner.update_cluster(cluster).await
    }
    async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, StoreError> {
        self.inner.get_cluster(key).await
    }
    async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        let found = self.inner.list_clusters().await?;
        // The adapter's query is strongly consistent.
        self.bill(|u| u.read("clusters", 400 * found.len(), true));
        Ok(found)
    }
    async fn get_attempt_results(&self, attempts: &[(RunKey, Attempt)]) -> Result<Vec<AttemptResult>, StoreError> {
        self.inner.get_attempt_results(attempts).await
    }
    async fn put_attempt_result(&self, result: &AttemptResult) -> Result<(), StoreError> {
        self.inner.put_attempt_result(result).await
    }
}

impl GroupStore for BillingStore<'_> {
    async fn create_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        let written = self.inner.create_shard(shard).await?;
        let bytes = billing::shard_bytes(&written);
        self.bill(|u| {
            u.write("shard", bytes);
            if let Some(entry) = billing::shard_index_entry_bytes(&written) {
                u.index_copy("shard, due index entry", entry);
            }
        });
        Ok(written)
    }
    async fn update_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        let bytes = billing::shard_bytes(shard);
        // A conditional write that fails still consumes its units.
        self.bill(|u| u.write("shard", bytes));
        let before = self.inner.get_shard(&shard.key).await?;
        let written = self.inner.update_shard(shard).await?;
        // The keys-only index is written when its key changes: the old entry removed, the new put.
        let old_entry =
            before.filter(|b| b.due_at != written.due_at).and_then(|b| billing::shard_index_entry_bytes(&b));
        let new_entry = billing::shard_index_entry_bytes(&written).filter(|_| old_entry.is_some());
        self.bill(|u| old_entry.into_iter().chain(new_entry).for_each(|e| u.index_copy("shard, due index entry", e)));
        Ok(written)
    }
    async fn get_shard(&self, key: &ShardKey) -> Result<Option<Shard>, StoreError> {
        let found = self.inner.get_shard(key).await?;
        self.bill(|u| u.read("shard", found.as_ref().map_or(1, billing::shard_bytes), true));
        Ok(found)
    }
    async fn shards_of_cohort(&self, cohort: &CohortKey) -> Result<Vec<Shard>, StoreError> {
        let found = self.inner.shards_of_cohort(cohort).await?;
        self.bill(|u| u.read("shards of a cohort", found.iter().map(billing::shard_bytes).sum(), true));
        Ok(found)
    }
    async fn due_shards(&self, now: UnixTime, limit: usize) -> Result<Vec<Shard>, StoreError> {
        let found = self.inner.due_shards(now, limit).await?;
        // The index holds keys only: the query, then the items by key, strongly consistent.
        let entries = found.iter().filter_map(billing::shard_index_entry_bytes).sum();
        self.bill(|u| {
            u.read("due shards (index)", entries, false);
            u.batch_read("due shards (items)", found.iter().map(billing::shard_bytes), true);
        });
        Ok(found)
    }
    async fn create_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        let bytes = billing::group_bytes(group);
        self.bill(|u| u.write("group", bytes));
        let written = self.inner.create_group(group).await?;
        if let Some(entry) = billing::group_index_entry_bytes(&written) {
            self.bill(|u| u.index_copy("group, active index entry", entry));
        }
        Ok(written)
    }
    async fn update_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        let bytes = billing::group_bytes(group);
        self.bill(|u| u.write("group", bytes));
        let before = self.inner.get_group(&group.key).await?;
        let written = self.inner.update_group(group).await?;
        // An open group's index key never changes; the write that commits it removes its entry.
        let removed = before.and_then(|b| billing::group_index_entry_bytes(&b)).filter(|_| written.committed);
        if let Some(entry) = removed {
            self.bill(|u| u.index_copy("group, active index entry", entry));
        }
        Ok(written)
    }
    async fn get_group(&self, key: &GroupKey) -> Result<Option<Group>, StoreError> {
        let found = self.inner.get_group(key).await?;
        self.bill(|u| u.read("group", found.as_ref().map_or(1, billing::group_bytes), true));
        Ok(found)
    }
    async fn open_groups(&self) -> Result<Vec<Group>, StoreError> {
        let found = self.inner.open_groups().await?;
        let entries = found.iter().filter_map(billing::group_index_entry_bytes).sum();
        self.bill(|u| {
            u.read("open groups (index)", entries, false);
            u.batch_read("open groups (items)", found.iter().map(billing::group_bytes), true);
        });
        Ok(found)
    }
    async fn get_group_results(&self, attempts: &[(GroupKey, Attempt)]) -> Result<Vec<GroupResult>, StoreError> {
        let found = self.inner.get_group_results(attempts).await?;
        self.bill(|u| u.batch_read("group result", found.iter().map(billing::group_result_bytes), true));
        Ok(found)
    }
    async fn put_group_result(&self, result: &GroupResult) -> Result<(), StoreError> {
        self.bill(|u| u.write("group result (Spark)", billing::group_result_bytes(result)));
        self.inner.put_group_result(result).await
    }
    async fn get_schemas(&self, jobs: &[JobId]) -> Result<Vec<(JobId, String)>, StoreError> {
        let found = self.inner.get_schemas(jobs).await?;
        self.bill(|u| u.batch_read("schema", found.iter().map(|(j, s)| billing::schema_bytes(j, s)), true));
        Ok(found)
    }
    async fn put_schema(&self, job: &JobId, schema_json: &str) -> Result<(), StoreError> {
        self.bill(|u| u.write("schema", billing::schema_bytes(job, schema_json)));
        self.inner.put_schema(job, schema_json).await
    }
}

fn job_document(i: u32) -> Value {
    json!({
        "job_id": format!("sales-db.orders-{i:04}"), "kind": "batch_extraction", "size_class": "small",
        "interval_secs": 300, "lag_secs": 60, "start_at": "2026-11-22T00:00:00Z",
        "source": {"jdbc_url": "jdbc:mysql://sales-db.internal:3306/sales",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-db", "table": format!("orders_{i}"),
            "watermark_column": "updated_at", "primary_key": ["id"]},
        "lake_uri": format!("s3://lake/sales/orders_{i}"), "livy": {"file": "s3://code/extract.py"}
    })
}

const SCHEMA: &str = r#"[{"name":"id","type":"bigint","nullable":false},{"name":"customer_id","type":"bigint","nullable":false},{"name":"status","type":"string","nullable":true},{"name":"total","type":"decimal(12,2)","nullable":true},{"name":"updated_at","type":"timestamp","nullable":false}]"#;

/// Plays each running group's application: one compact result per attempt, as `extract.py`
/// writes it (every member succeeded; the schema only the first time a job runs), then the batch
/// ends.
async fn applications_finish(store: &BillingStore<'_>, livy: &MemoryLivy, schemas_seen: &mut BTreeSet<JobId>) {
    let open = store.inner.open_groups().await.unwrap_or_default();
    for group in open {
        if !matches!(group.status, GroupStatus::Submitting { .. }) {
            continue;
        }
        let batch = norris_engine::groups::group_batch_name(&group);
        let members = group
            .to_do()
            .map(|m| {
                let first = schemas_seen.insert(m.job_id.clone());
                let rows = 100 + (m.window.lo.0 % 97) as u64;
                AttemptResult {
                    run_key: format!("{}@{}", m.job_id, m.window.lo.0),
                    attempt: group.attempt,
                    outcome: AttemptOutcome::Succeeded,
                    rows_read: rows,
                    rows_written: rows,
                    checks: vec![],
                    schema_json: if first { SCHEMA.into() } else { String::new() },
                    schema_verdict: if first { "first".into() } else { "unchanged".into() },
                    schema_change: String::new(),
                    output_prefix: format!(
                        "s3://lake/sales/{}/data/window_lo={}/attempt={}",
                        m.job_id, m.window.lo.0, group.attempt
                    ),
                    message: format!(
                        "read {rows} row(s) in [{}, {}), filter dropped 0, wrote {rows}; schema {}",
                        m.window.lo.0 - 120,
                        m.window.hi.0,
                        if first { "first" } else { "unchanged" }
                    ),
                    finished_at: m.window.hi,
                }
            })
            .collect();
        let result = GroupResult { group: group.key.clone(), attempt: group.attempt, members, finished_at: T0 };
        let _ = store.put_group_result(&result).await;
        livy.set_phase(LIVY, &batch, BatchPhase::Succeeded);
    }
}

/// The pool of the bench's clusters: exactly `clusters` of them, 4 batch slots each (the
/// placement's default, so the tick places as it did without a pool), rotated after 30 days.
fn pool_document(clusters: u32) -> Value {
    json!({
        "size_class": "small", "emr_release": "emr-7.5.0",
        "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 2},
        "max_age_secs": 30 * 86_400, "min_clusters": clusters, "max_clusters": clusters,
        "max_concurrent_batches": 4
    })
}

/// What a lifecycle pass changed, if anything: in the bench's steady world every pass should
/// find its pool complete and nothing lost, moved or waiting.
fn lifecycle_change(pass: &str, at: UnixTime, report: &ClusterReport) -> Option<String> {
    // `groups_waiting` is the pool planning's count: passes that plan no pools (the migrator's)
    // leave it unknown.
    let steady = ClusterReport { groups_waiting: report.groups_waiting.and(Some(0)), ..ClusterReport::default() };
    (*report != steady).then(|| format!("{pass} at +{} s: {report:?}", at.secs() - T0.secs()))
}

/// Runs the measurement.
pub async fn measure(args: CostArgs) -> anyhow::Result<CostReport> {
    let memory = MemoryStore::new();
    let definition_bytes = job_document(0).to_string().len() + 120;
    let store = BillingStore { inner: &memory, units: Mutex::default(), definition_bytes };
    for i in 0..args.jobs {
        memory.put_job_document(&job_document(i)).await?;
    }
    // Two clusters of 4 batch slots per 1,000 jobs: every shard's group runs within the interval
    // (fewer, and groups queue for slots and the cost per window is a backlog's). Their pool
    // wants exactly them, and EMR runs them (WAITING) under this deployment's tags, so the
    // lifecycle passes find nothing to launch, drain, terminate or write off.
    let clusters = 2 * args.jobs.div_ceil(1000).max(1);
    let pool_doc = pool_document(clusters);
    memory.put_pool_document(&pool_doc).await?;
    let pool = PoolDefinition::from_document(&pool_doc).map_err(|e| anyhow::anyhow!("pool: {e:?}"))?;
    let emr = MemoryEmr::new();
    emr.set_now(T0);
    for n in 1..=clusters {
        let key = ClusterKey::new(format!("small-{n}"));
        let request = LaunchRequest {
            key: key.clone(),
            deployment: DEPLOYMENT.into(),
            size_class: pool.size_class.clone(),
            generation: n,
            pool: pool.clone(),
            extra_tags: BTreeMap::new(),
        };
        let emr_cluster_id = emr.launch(&request).await?;
        emr.set_state(&emr_cluster_id, EmrState::Waiting, None);
        memory
            .create_cluster(&Cluster {
                key,
                size_class: pool.size_class.clone(),
                generation: n,
                emr_cluster_id: Some(emr_cluster_id),
                livy_endpoint: Some(LIVY.into()),
                state: ClusterState::Ready,
                created_at: T0,
                ready_at: Some(T0),
                rotate_after: T0.plus_secs(30 * 86_400),
                version: Version::INITIAL,
            })
            .await
            .map_err(|e| anyhow::anyhow!("cluster: {e}"))?;
    }
    let (livy, specs) = (MemoryLivy::new(), MemorySpecs::new());
    let config = SchedulerConfig { table_prefix: "norris".into(), definition_sweep_secs: 900, max_due_per_tick: 5000 };
    let env: std::collections::HashMap<String, String> =
        [("NORRIS_TABLE_PREFIX", "norris"), ("NORRIS_DEPLOYMENT", DEPLOYMENT)]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
    let lifecycle_config = LifecycleConfig {
        scheduler: config.clone(),
        ..LifecycleConfig::from_env_map(&env).map_err(|e| anyhow::anyhow!("lifecycle config: {e}"))?
    };
    let mut lifecycle = Units::default();
    let (mut passes, mut rotations, mut changes) = (0, 0, Vec::new());
    let ticks = (args.days * 86_400.0 / TICK_SECS as f64) as usize;
    let mut schemas_seen = BTreeSet::new();
    let mut steady = Units::default();
    let mut committed = 0;
    let mut attempts = 0;
    for n in 0..ticks {
        let now = T0.plus_secs(n as i64 * TICK_SECS);
        let report = grouped_tick(&store, &livy, &specs, now, &config).await?;
        if !report.failures.is_empty() {
            anyhow::bail!("tick at +{} s failed: {:?}", n as i64 * TICK_SECS, report.failures);
        }
        // The applications finish within the interval (a Spark job of a few hundred small windows).
        applications_finish(&store, &livy, &mut schemas_seen).await;
        let units = store.take();
        // The lifecycle passes of the interval's minutes, as the stack schedules them: the
        // watcher's sweep and the migrator every minute, the rotation handler every tenth.
        for at in (0..TICK_SECS / WATCH_SECS).map(|m| now.plus_secs(m * WATCH_SECS)) {
            let watched = watch(&store, &emr, &livy, &specs, None, at, &lifecycle_config).await?;
            changes.extend(lifecycle_change("watch", at, &watched));
            let migrated = migrate(&store, &livy, &specs, at, &lifecycle_config).await?;
            changes.extend(lifecycle_change("migrate", at, &migrated));
            let rotation = (at.secs() - T0.secs()) % ROTATE_SECS == 0;
            if rotation {
                let rotated = rotate(&store, &emr, &livy, &specs, at, &lifecycle_config).await?;
                changes.extend(lifecycle_change("rotation", at, &rotated));
            }
            if n >= WARM_UP_TICKS {
                passes += 2 + usize::from(rotation);
                rotations += usize::from(rotation);
            }
        }
        let pass_units = store.take();
        if n >= WARM_UP_TICKS {
            committed += report.windows_committed;
            attempts += report.runs_submitted;
            steady.add(units);
            lifecycle.add(pass_units);
        }
    }
    let measured = ticks.saturating_sub(WARM_UP_TICKS).max(1);
    let per_month = (30 * 86_400 / TICK_SECS) as f64 / measured as f64;
    let writes = steady.total_writes() as f64 * prices::DYNAMO_WRITE_UNIT * per_month;
    let reads = steady.total_reads() * prices::DYNAMO_READ_UNIT * per_month;
    let lambda = (30 * 86_400 / TICK_SECS) as f64
        * (prices::LAMBDA_PER_REQUEST + prices::LAMBDA_GB_SECOND * prices::ASSUMED_GB_SECONDS);
    let specs = attempts as f64 * per_month * (prices::S3_PUT_REQUEST + prices::S3_GET_REQUEST);
    let others = (30.0 * 1440.0 * 2.0 + 30.0 * 144.0)
        * (prices::LAMBDA_PER_REQUEST + prices::LAMBDA_GB_SECOND * prices::ASSUMED_GB_SECONDS);
    // Writes too, should a pass make any (in a steady world it makes none).
    let lifecycle_usd = (lifecycle.total_reads() * prices::DYNAMO_READ_UNIT
        + lifecycle.total_writes() as f64 * prices::DYNAMO_WRITE_UNIT)
        * per_month;
    let shards = memory.due_shards(UnixTime(i64::MAX), usize::MAX).await?.len();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Ok(CostReport {
        jobs: args.jobs,
        shards,
        ticks: measured,
        windows_committed: committed,
        write_units_per_window: steady.total_writes() as f64 / committed.max(1) as f64,
        requests_per_tick: steady.requests as f64 / measured as f64,
        dynamodb_writes_usd_month: round(writes),
        dynamodb_reads_usd_month: round(reads),
        lambda_usd_month: round(lambda),
        specs_usd_month: round(specs),
        other_lambdas_usd_month: round(others),
        lifecycle_passes: passes,
        rotation_passes: rotations,
        lifecycle_units: lifecycle,
        lifecycle_changes: changes,
        lifecycle_reads_usd_month: round(lifecycle_usd),
        total_usd_month: round(writes + reads + lambda + specs + others + lifecycle_usd),
        units: steady,
    })
}

/// Prints the report as a table.
pub fn print(r: &CostReport) {
    println!(
        "grouped ledger, {} jobs every 5 minutes in {} shard(s): {} ticks measured, {} windows committed",
        r.jobs, r.shards, r.ticks, r.windows_committed
    );
    println!("{:<30} {:>12} {:>14} {:>12}", "item", "write units", "bytes written", "read units");
    let kinds: BTreeSet<&str> = r.units.writes.keys().chain(r.units.reads.keys()).copied().collect();
    for kind in kinds {
        println!(
            "{:<30} {:>12} {:>14} {:>12.1}",
            kind,
            r.units.writes.get(kind).copied().unwrap_or(0),
            r.units.bytes_written.get(kind).copied().unwrap_or(0),
            r.units.reads.get(kind).copied().unwrap_or(0.0)
        );
    }
    println!("per window: {:.2} write units; per tick: {:.1} requests", r.write_units_per_window, r.requests_per_tick);
    println!(
        "lifecycle passes between those ticks: {} ({} of them the rotation handler's), {} change(s)",
        r.lifecycle_passes,
        r.rotation_passes,
        r.lifecycle_changes.len()
    );
    let kinds: BTreeSet<&str> =
        r.lifecycle_units.writes.keys().chain(r.lifecycle_units.reads.keys()).copied().collect();
    for kind in kinds {
        println!(
            "{:<30} {:>12} {:>14} {:>12.1}",
            kind,
            r.lifecycle_units.writes.get(kind).copied().unwrap_or(0),
            r.lifecycle_units.bytes_written.get(kind).copied().unwrap_or(0),
            r.lifecycle_units.reads.get(kind).copied().unwrap_or(0.0)
        );
    }
    println!("per pass: {:.1} requests", r.lifecycle_units.requests as f64 / r.lifecycle_passes.max(1) as f64);
    for change in &r.lifecycle_changes {
        println!("  changed: {change}");
    }
    println!(
        "per month: DynamoDB writes ${:.2}, reads ${:.2}, scheduler Lambda ${:.2}, S3 specs ${:.2}, \
         other Lambdas ${:.2}, lifecycle passes' DynamoDB reads ${:.2}: ${:.2}",
        r.dynamodb_writes_usd_month,
        r.dynamodb_reads_usd_month,
        r.lambda_usd_month,
        r.specs_usd_month,
        r.other_lambdas_usd_month,
        r.lifecycle_reads_usd_month,
        r.total_usd_month
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_window_is_committed_and_billed() {
        let r = measure(CostArgs { jobs: 20, days: 0.25 }).await.expect("measured");
        // 72 ticks, 60 measured; each job commits one window per tick once running.
        assert_eq!(r.ticks, 60);
        assert!(r.windows_committed >= 20 * 58, "{}", r.windows_committed);
        assert!(r.units.writes["shard"] >= 60, "a shard write per tick at least");
        assert!(r.units.writes.contains_key("group result (Spark)"));
        assert!(r.total_usd_month > r.lambda_usd_month);
    }

    #[tokio::test]
    async fn lifecycle_passes_change_nothing_and_their_reads_are_billed() {
        let r = measure(CostArgs { jobs: 20, days: 0.25 }).await.expect("measured");
        // The watcher's and the migrator's each minute of the 60 measured ticks, and the
        // rotation handler's every tenth minute.
        assert_eq!((r.lifecycle_passes, r.rotation_passes), (630, 30));
        assert!(r.lifecycle_changes.is_empty(), "a steady world: {:#?}", r.lifecycle_changes);
        assert!(r.lifecycle_units.writes.is_empty(), "{:?}", r.lifecycle_units.writes);
        for kind in ["pools", "clusters", "active runs (index)", "open groups (index)", "open groups (items)"] {
            assert!(r.lifecycle_units.reads.get(kind).is_some_and(|u| *u > 0.0), "{kind}: {:?}", r.lifecycle_units);
        }
        assert!(r.lifecycle_reads_usd_month > 0.0);
        let parts = r.dynamodb_writes_usd_month
            + r.dynamodb_reads_usd_month
            + r.lambda_usd_month
            + r.specs_usd_month
            + r.other_lambdas_usd_month
            + r.lifecycle_reads_usd_month;
        assert!((r.total_usd_month - parts).abs() < 0.05, "{} vs {parts}", r.total_usd_month);
    }
}
