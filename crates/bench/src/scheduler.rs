//! The per-window scheduler tick benchmark: the real `norris_control::scheduler_tick` over
//! `MemoryStore` and `MemoryLivy`, in a steady state where 1% of the jobs become due at each
//! measured tick, with every store operation counted and translated into DynamoDB requests. The
//! grouped ledger's tick, which the scheduler Lambda runs, is measured by `grouped_scheduler` on
//! the same jobs and clock; this module also holds the report both fill in.
//!
//! The set-up (printed with the figures): every job has a 5-minute interval and the same aligned
//! windows; its `lag_secs` is 60 + 3 s × (index mod 100), so the jobs' due times are spread over
//! 100 slots 3 s apart, and tick k (at window end + 60 s + 3k s) finds exactly the jobs of slot k
//! due: 1%. (At a 5-minute tick with 5-minute windows every job would be due at every tick; 1% due
//! per tick is what a 5-minute tick sees with ~8-hour intervals, or a 3-second tick with 5-minute
//! ones. The tick's cost is the same function of due, in-flight and total jobs either way.)
//! States are created by `reconcile_now` (the path `norris jobs put` takes), definitions carry
//! their annotation, and the definition sweep is held by an earlier claim, as it is in 14 of
//! every 15 minutes. Between ticks the world plays Spark and Livy: a run submitted at tick k runs
//! through tick k+1 (followed: Livy says running, no result), then writes its result and its batch
//! succeeds, so tick k+2 publishes it and commits the job's watermark; Livy forgets published
//! batches. After three warm-up ticks every measured tick cuts and submits slot k, follows slot
//! k-1, publishes and commits slot k-2.

use crate::counting::{BatchStats, CountingStore, NetworkLatency, StoreStats, TimedLivy};
use crate::dynamo_model::{self, approx_item_bytes, Api, ItemSizes, MinimumLine, Op, Work};
use anyhow::{bail, Context};
use norris_control::scheduler::{reconcile_now, DEFINITION_SWEEP_TASK};
use norris_control::{scheduler_tick, SchedulerConfig, TickReport};
use norris_engine::runs::{batch_name, output_prefix};
use norris_engine::DefinitionView;
use norris_engine::{advance_watermark, batch_submission, cut_windows, follow_run, place_runs, reconcile_job};
use norris_model::{
    AttemptOutcome, AttemptResult, BatchObservation, BatchPhase, Cluster, ClusterKey, ClusterState, JobDefinition,
    JobId, JobState, Run, RunKey, RunStatus, SizeClass, UnixTime, Version,
};
use norris_ports::{BatchService, DefinitionRecord, MemoryLivy, MemorySpecs, MemoryStore, StateStore};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// 2026-11-22T00:00:00Z: the jobs' `start_at`, the start of their first window.
pub(crate) const T0: UnixTime = UnixTime(1_795_305_600);
/// Due-time slots per interval: 1 in 100 jobs is due at each tick.
pub(crate) const SLOTS: usize = 100;
/// Seconds between slots (and between ticks).
pub(crate) const SLOT_SECS: i64 = 3;
/// The smallest lag.
pub(crate) const BASE_LAG: i64 = 60;
/// Ticks before the steady state (slot k cut, k-1 followed, k-2 published and committed).
pub(crate) const WARMUP_TICKS: usize = 3;
/// Batch slots per cluster (the pool's `max_concurrent_batches`, at its maximum).
const SLOTS_PER_CLUSTER: u32 = 200;
/// The scheduler's default `max_due_per_tick`.
pub(crate) const MAX_DUE: usize = 5000;
/// Repetitions of the pure-engine and parsing passes per measured tick.
pub(crate) const PASS_REPS: usize = 9;
/// The hot jobs of the constant-work series (10 due per tick).
pub(crate) const CONSTANT_WORK_HOT_JOBS: usize = 1000;
pub(crate) const SCHEMA: &str =
    r#"[{"name":"id","type":"bigint","nullable":false},{"name":"updated_at","type":"timestamp","nullable":false}]"#;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Job counts.
    pub sizes: Vec<usize>,
    /// Measured ticks per size (after the warm-up).
    pub ticks: usize,
    /// Also run the constant-work series (only 1,000 jobs rotate; the rest are daily jobs not
    /// due), for sizes above 1,000.
    pub constant_work: bool,
    /// Which ledger's tick to measure.
    pub ledger: LedgerChoice,
}

/// Which tick the benchmark measures: the grouped ledger's (`grouped_tick`, what the scheduler
/// Lambda runs), the per-window one (`scheduler_tick`, still in the tree for the CLI and the
/// demo, and the figures to compare against), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LedgerChoice {
    /// The grouped ledger's tick.
    Grouped,
    /// The per-window ledger's tick.
    Runs,
    /// Both, grouped first.
    Both,
}

impl LedgerChoice {
    /// Whether the grouped tick is measured.
    pub fn grouped(self) -> bool {
        matches!(self, LedgerChoice::Grouped | LedgerChoice::Both)
    }

    /// Whether the per-window tick is measured.
    pub fn runs(self) -> bool {
        matches!(self, LedgerChoice::Runs | LedgerChoice::Both)
    }
}

/// A median with its spread.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (zeros when empty).
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = if v.is_empty() {
            0.0
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Spread { median, min: v.first().copied().unwrap_or(0.0), max: v.last().copied().unwrap_or(0.0) }
    }
}

/// One store operation's counts in a tick.
#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    /// The operation.
    pub op: &'static str,
    /// The DynamoDB API serving it.
    pub api: &'static str,
    /// Calls.
    pub calls: u64,
    /// Keys asked for (batch reads) or items returned (queries).
    pub items: u64,
    /// DynamoDB requests.
    pub requests: u64,
    /// Milliseconds inside `MemoryStore`.
    pub model_ms: f64,
}

/// The figures of one size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    /// `1% due` or `constant work`.
    pub series: &'static str,
    /// Jobs in the tables.
    pub jobs: usize,
    /// Jobs in the 5-minute rotation (the rest are daily jobs, not due).
    pub hot_jobs: usize,
    /// Ready clusters.
    pub clusters: usize,
    /// Ticks measured.
    pub ticks: usize,
    /// Job states the due query returned.
    pub due: usize,
    /// Of those, jobs with a window to cut (the 1%).
    pub due_with_windows: usize,
    /// Of those, jobs due with no window to cut (re-looked: held by their in-flight limit).
    pub due_relooked: usize,
    /// Unfinished runs at the tick (the active query's result, new runs included).
    pub in_flight: usize,
    /// Runs created, submitted, published; windows committed.
    pub cut_submitted_published_committed: [usize; 4],
    /// Whole tick, wall time (ms).
    pub tick_ms: Spread,
    /// Tick time per due job (µs, median tick).
    pub per_due_job_us: f64,
    /// Time inside `MemoryStore` (ms, median tick): the in-memory model, not norris.
    pub store_model_ms: f64,
    /// Time inside `MemoryLivy` (ms, median tick).
    pub livy_model_ms: f64,
    /// Tick minus store and Livy time (ms, median): the handler and the engine.
    pub handler_ms: f64,
    /// The engine's pure functions alone over the same inputs (ms, median).
    pub engine_ms: f64,
    /// Parsing and hashing the definition documents the tick reads (ms, median): inside the
    /// store's time here, done by the DynamoDB adapter in production.
    pub parse_definitions_ms: f64,
    /// Store operations of the median tick.
    pub ops: Vec<OpRow>,
    /// DynamoDB requests of the median tick.
    pub requests: u64,
    /// Smallest and largest request count over the measured ticks.
    pub requests_range: [u64; 2],
    /// Requests by API.
    pub requests_by_api: BTreeMap<&'static str, u64>,
    /// The work, as the minimum model sees it.
    pub work: Work,
    /// The minimum model's lines.
    pub minimum: Vec<MinimumLine>,
    /// Its total.
    pub minimum_requests: u64,
    /// Where the requests above the minimum go (they add up to `requests - minimum_requests`).
    pub excess: Vec<Excess>,
    /// `requests / minimum_requests`.
    pub ratio: f64,
    /// Items DynamoDB would read (keys fetched plus items returned).
    pub items_read: u64,
    /// Scan requests of the definition sweep (once per sweep interval, one tick).
    pub sweep_scan_requests: u64,
}

/// Requests above the minimum, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Excess {
    /// What they are.
    pub what: &'static str,
    /// How many (negative: fewer than the model).
    pub requests: i64,
}

/// The benchmark's output.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerReport {
    /// How the per-window steady state is set up.
    pub setup: Vec<String>,
    /// Item sizes used for page bounds.
    pub item_sizes: ItemSizes,
    /// The per-window tick: one entry per series and size (empty unless measured).
    pub results: Vec<SizeResult>,
    /// How the grouped steady state is set up.
    pub grouped_setup: Vec<String>,
    /// The grouped tick: one entry per series and size (empty unless measured).
    pub grouped: Vec<crate::grouped_scheduler::GroupedSizeResult>,
    /// The network's share of a tick's wall time, per ledger and size (filled in by the caller,
    /// which needs a paused runtime for it).
    pub network_wait: Vec<NetworkWait>,
}

pub(crate) fn job_id(i: usize) -> String {
    format!("bench-job-{i:06}")
}

pub(crate) fn index_of(id: &JobId) -> Option<usize> {
    id.as_str().strip_prefix("bench-job-")?.parse().ok()
}

/// A realistic job document; hot jobs rotate every 5 minutes with their due times spread over
/// 100 slots, cold ones are daily and not due during the benchmark.
pub(crate) fn job_document(i: usize, hot: bool) -> Value {
    let (interval, lag) = if hot { (300, BASE_LAG + SLOT_SECS * (i % SLOTS) as i64) } else { (86_400, 0) };
    json!({
        "job_id": job_id(i),
        "kind": "batch_extraction",
        "enabled": true,
        "size_class": "small",
        "interval_secs": interval,
        "lag_secs": lag,
        "lookback_secs": 120,
        "start_at": "2026-11-22T00:00:00Z",
        "catch_up": {"mode": "sequential"},
        "max_windows_in_flight": 4,
        "source": {
            "jdbc_url": "jdbc:mysql://shop-db.internal:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:norris/shop-AbCdEf",
            "table": format!("table_{i}"),
            "watermark_column": "updated_at",
            "primary_key": ["id"],
            "soft_delete_column": "deleted_at"
        },
        "lake_uri": format!("s3://acme-lake/shop/table_{i}"),
        "transform": {},
        "livy": {
            "file": "s3://acme-norris-code/livy-jobs/extract.py",
            "conf": {"spark.sql.shuffle.partitions": "8"},
            "driver_memory": "2g",
            "executor_memory": "4g",
            "executor_cores": 2,
            "num_executors": 2
        },
        "retry": {"max_attempts": 3, "backoff_base_secs": 60, "backoff_max_secs": 900}
    })
}

fn pool_document() -> Value {
    pool_document_with(SLOTS_PER_CLUSTER)
}

/// The benchmark's pool with `slots` batch slots a cluster (the grouped tick runs a group attempt,
/// a Spark application of many members, in one slot).
pub(crate) fn pool_document_with(slots: u32) -> Value {
    json!({
        "size_class": "small",
        "emr_release": "emr-7.5.0",
        "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "max_age_secs": 86_400,
        "min_clusters": 1,
        "max_clusters": 100,
        "max_concurrent_batches": slots
    })
}

pub(crate) fn endpoint(key: &ClusterKey) -> String {
    format!("http://livy-{key}:8998")
}

pub(crate) fn tick_time(k: usize) -> UnixTime {
    T0.plus_secs(300 + BASE_LAG + SLOT_SECS * k as i64)
}

pub(crate) fn config() -> SchedulerConfig {
    SchedulerConfig { table_prefix: "bench".into(), definition_sweep_secs: 900, max_due_per_tick: MAX_DUE }
}

pub(crate) fn item_sizes() -> ItemSizes {
    let mut doc = job_document(0, true);
    doc["norris_status"] = json!("valid");
    doc["norris_problems"] = json!([]);
    doc["norris_hash"] = json!("0".repeat(64));
    ItemSizes {
        job_definition: approx_item_bytes(&doc),
        pool: approx_item_bytes(&pool_document()),
        ..Default::default()
    }
}

/// The set-up text printed with the figures.
pub fn setup_text() -> Vec<String> {
    vec![
        "every job: 5-minute interval, aligned windows, lag 60 s + 3 s x (index mod 100): due times spread over 100 slots 3 s apart".into(),
        "tick k runs at window end + 60 s + 3k s and finds slot k due: 1% of the jobs (at a 5-minute tick with 5-minute windows every job would be due every tick; 1% is ~8-hour intervals at a 5-minute tick, or a 3-second tick; the cost is the same function of due, in-flight and total jobs)".into(),
        "states created by reconcile_now (as `norris jobs put`), annotations in place, accepted schema set; the definition sweep held by an earlier claim (as in 14 of 15 minutes)".into(),
        "world between ticks: a run submitted at tick k is running at k+1 (Livy: running, no result), then writes its result and succeeds; k+2 publishes and commits it; Livy forgets published batches".into(),
        format!("steady state after {WARMUP_TICKS} warm-up ticks: each tick cuts+submits slot k, follows slot k-1, publishes+commits slot k-2; clusters: enough ready ones ({SLOTS_PER_CLUSTER} batch slots each) for ~75% load"),
        "constant-work series: only 1,000 jobs rotate (10 due per tick), the others are daily jobs whose next window is hours away: the same work over 10,000 and 100,000 jobs".into(),
        "timing: tokio current-thread runtime (one core), release profile, no tracing subscriber; the store and Livy models are timed separately by the counting wrappers".into(),
    ]
}

struct World {
    store: CountingStore<MemoryStore>,
    livy: TimedLivy<MemoryLivy>,
    clusters: Vec<Cluster>,
    hot_jobs: usize,
}

async fn build_world(jobs: usize, hot_jobs: usize, sizes: ItemSizes, latency: NetworkLatency) -> anyhow::Result<World> {
    let store = MemoryStore::new();
    store.put_pool_document(&pool_document()).await?;
    let schema = Some(SCHEMA.to_string());
    for i in 0..jobs {
        store.put_job_document(&job_document(i, i < hot_jobs)).await?;
        let id = JobId::new(job_id(i));
        let report = reconcile_now(&store, T0, &id).await?;
        if report.definitions_reconciled != 1 || !report.invalid_jobs.is_empty() {
            bail!("job {id} was not reconciled as valid: {report:?}");
        }
        let mut state = store.get_job_state(&id).await?.context("no state after reconcile")?;
        state.accepted_schema = schema.clone();
        store.update_job_state(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    store.claim_periodic(DEFINITION_SWEEP_TASK, T0, T0.plus_secs(86_400)).await?;
    // In flight at a steady tick: three slots' runs (new, followed, finishing).
    let in_flight = 3 * hot_jobs.div_ceil(SLOTS);
    let clusters = in_flight.div_ceil((SLOTS_PER_CLUSTER as usize * 3) / 4).max(1);
    let mut records = Vec::new();
    for c in 0..clusters {
        let key = ClusterKey::new(format!("small-{c:02}"));
        let cluster = Cluster {
            livy_endpoint: Some(endpoint(&key)),
            key,
            size_class: SizeClass::new("small"),
            generation: 1,
            emr_cluster_id: Some(format!("j-BENCH{c:02}")),
            state: ClusterState::Ready,
            created_at: T0,
            ready_at: Some(T0),
            rotate_after: T0.plus_secs(86_400),
            version: Version::INITIAL,
        };
        records.push(store.create_cluster(&cluster).await.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(World {
        store: CountingStore::new(store, sizes).with_latency(latency),
        livy: TimedLivy::new(MemoryLivy::new()).with_latency(latency),
        clusters: records,
        hot_jobs,
    })
}

/// Plays Spark and Livy between ticks (not timed): forgets published batches, and finishes every
/// run that has been running since an earlier tick.
async fn advance_world(world: &World, now: UnixTime) -> anyhow::Result<()> {
    let livy = world.livy.inner();
    for c in &world.clusters {
        livy.forget_finished(&endpoint(&c.key));
    }
    for run in world.store.inner().all_runs() {
        let RunStatus::Running { cluster, batch, since } = &run.status else { continue };
        if *since >= now {
            continue;
        }
        let lake = format!("s3://acme-lake/shop/table_{}", index_of(&run.job_id).unwrap_or(0));
        world
            .store
            .inner()
            .put_attempt_result(&AttemptResult {
                run_key: run.key().to_string(),
                attempt: run.attempt,
                outcome: AttemptOutcome::Succeeded,
                rows_read: 1000,
                rows_written: 1000,
                checks: Vec::new(),
                schema_json: SCHEMA.into(),
                schema_verdict: "unchanged".into(),
                schema_change: String::new(),
                output_prefix: output_prefix(&lake, &run),
                message: "extracted".into(),
                finished_at: now,
            })
            .await?;
        if !livy.set_phase(&endpoint(cluster), &batch.batch_name, BatchPhase::Succeeded) {
            bail!("Livy does not hold {}", batch.batch_name);
        }
    }
    Ok(())
}

/// What the tick saw before it ran, for the minimum model and the engine pass.
struct Before {
    states: HashMap<JobId, JobState>,
    runs: Vec<Run>,
}

struct Sample {
    tick: Duration,
    stats: StoreStats,
    livy: BatchStats,
    report: TickReport,
    work: Work,
    due: usize,
    engine: Duration,
    parse: Duration,
}

pub(crate) fn median_duration(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the engine's pure functions over the tick's inputs, as the tick calls them; returns the
/// median time of the engine pass and of parsing the definitions.
async fn engine_pass(
    world: &World,
    before: &Before,
    after: &HashMap<JobId, JobState>,
    now: UnixTime,
) -> (Duration, Duration) {
    let mut due: Vec<&JobState> = before.states.values().filter(|s| s.due_at.is_some_and(|d| d <= now)).collect();
    due.sort_by(|a, b| (a.due_at, &a.job_id).cmp(&(b.due_at, &b.job_id)));
    due.truncate(MAX_DUE);
    let active: Vec<&Run> = before.runs.iter().filter(|r| r.status.is_unfinished()).collect();
    let needed: BTreeSet<JobId> =
        due.iter().map(|s| s.job_id.clone()).chain(active.iter().map(|r| r.job_id.clone())).collect();
    let docs: Vec<(JobId, Value)> = needed
        .iter()
        .map(|id| {
            let i = index_of(id).unwrap_or(0);
            (id.clone(), job_document(i, i < world.hot_jobs))
        })
        .collect();
    let mut parse_times = Vec::new();
    for _ in 0..PASS_REPS {
        let started = Instant::now();
        for (id, doc) in &docs {
            black_box(DefinitionRecord::job(id.as_str(), doc, Vec::new()));
        }
        parse_times.push(started.elapsed());
    }
    let records: HashMap<JobId, DefinitionRecord<JobDefinition>> =
        docs.iter().map(|(id, doc)| (id.clone(), DefinitionRecord::job(id.as_str(), doc, Vec::new()))).collect();
    let mut runs_by_job: HashMap<&JobId, Vec<&Run>> = HashMap::new();
    for r in &before.runs {
        runs_by_job.entry(&r.job_id).or_default().push(r);
    }
    let uncommitted = |s: &JobState| {
        runs_by_job.get(&s.job_id).map_or(0, |rs| rs.iter().filter(|r| r.window.lo >= s.watermark).count()) as u32
    };
    let mut placed: Vec<(&Run, Option<BatchObservation>, Option<AttemptResult>)> = Vec::new();
    for run in active.iter().filter(|r| r.status.cluster().is_some()) {
        let key = run.status.cluster().cloned().unwrap_or_else(|| ClusterKey::new(""));
        let obs = world.livy.inner().find(&endpoint(&key), &batch_name(run)).await.ok().flatten();
        let result =
            world.store.inner().get_attempt_results(&[(run.key(), run.attempt)]).await.ok().and_then(|mut r| r.pop());
        placed.push((run, obs, result));
    }
    let mut running: BTreeMap<ClusterKey, u32> = BTreeMap::new();
    for r in &active {
        if let Some(c) = r.status.cluster() {
            *running.entry(c.clone()).or_default() += 1;
        }
    }
    let all_runs: BTreeMap<RunKey, Run> = world.store.inner().all_runs().into_iter().map(|r| (r.key(), r)).collect();
    let commits: Vec<(&JobState, Vec<Run>)> = before
        .states
        .values()
        .filter(|s| after.get(&s.job_id).is_some_and(|a| a.watermark > s.watermark))
        .map(|s| {
            let runs =
                all_runs.values().filter(|r| r.job_id == s.job_id && r.window.lo >= s.watermark).cloned().collect();
            (s, runs)
        })
        .collect();
    let small = SizeClass::new("small");
    let mut engine_times = Vec::new();
    for _ in 0..PASS_REPS {
        let started = Instant::now();
        let mut new_runs = Vec::new();
        for s in &due {
            let Some(record) = records.get(&s.job_id) else { continue };
            let view = DefinitionView::Present { hash: &record.hash, parsed: record.parsed.as_ref() };
            black_box(reconcile_job(now, view, Some(s)));
            if let Some(spec) = record.parsed.as_ref().ok().and_then(JobDefinition::extraction) {
                let plan = cut_windows(now, spec, s.next_window_lo, uncommitted(s));
                new_runs.extend(plan.windows.iter().map(|w| Run::new(s.job_id.clone(), *w, now)));
            }
        }
        for (run, obs, result) in &placed {
            let policy =
                records.get(&run.job_id).and_then(|r| r.parsed.as_ref().ok()).map(|d| d.retry).unwrap_or_default();
            black_box(follow_run(now, run, &policy, obs.as_ref(), result.as_ref()));
        }
        let pending: Vec<(&Run, &SizeClass)> = new_runs
            .iter()
            .chain(active.iter().copied().filter(|r| matches!(r.status, RunStatus::Pending { .. })))
            .map(|r| (r, &small))
            .collect();
        let placements = place_runs(&pending, &world.clusters, &running, |_| SLOTS_PER_CLUSTER);
        for (run, _) in &placements {
            let def = records.get(&run.job_id).and_then(|r| r.parsed.as_ref().ok());
            if let (Some(def), Some(state)) = (def, before.states.get(&run.job_id)) {
                black_box(batch_submission(def, state, run, "bench-results"));
            }
        }
        for (state, runs) in &commits {
            black_box(advance_watermark(state, runs));
        }
        engine_times.push(started.elapsed());
    }
    (median_duration(engine_times), median_duration(parse_times))
}

/// The minimum model's view of what the tick did, from the ledger before and after.
fn work_of(
    world: &World,
    before: &Before,
    after: &HashMap<JobId, JobState>,
    stats: &StoreStats,
    now: UnixTime,
) -> (Work, usize) {
    let due: BTreeSet<&JobId> =
        before.states.values().filter(|s| s.due_at.is_some_and(|d| d <= now)).map(|s| &s.job_id).collect();
    let moved = |f: fn(&JobState) -> UnixTime| -> BTreeSet<&JobId> {
        before
            .states
            .values()
            .filter(|s| after.get(&s.job_id).is_some_and(|a| f(a) > f(s)))
            .map(|s| &s.job_id)
            .collect()
    };
    let cut = moved(|s| s.next_window_lo);
    let committed = moved(|s| s.watermark);
    let active: Vec<&Run> = before.runs.iter().filter(|r| r.status.is_unfinished()).collect();
    let before_versions: HashMap<RunKey, Version> = before.runs.iter().map(|r| (r.key(), r.version)).collect();
    let run_writes: u64 = world
        .store
        .inner()
        .all_runs()
        .iter()
        .map(|r| r.version.0 - before_versions.get(&r.key()).copied().unwrap_or(Version::INITIAL).0)
        .sum();
    let other_jobs: BTreeSet<&JobId> = active.iter().map(|r| &r.job_id).filter(|id| !due.contains(id)).collect();
    let work = Work {
        due_with_windows: cut.len(),
        due_limit: MAX_DUE,
        windows_cut: 0,
        active_runs: stats.ops.get(&Op::ActiveRuns).map_or(0, |s| s.items as usize),
        followed_runs: active.iter().filter(|r| r.status.cluster().is_some()).count(),
        other_jobs: other_jobs.len(),
        run_writes: run_writes as usize,
        job_state_writes: cut.union(&committed).count(),
        commits: committed.len(),
        clusters: world.clusters.len(),
        pools: 1,
    };
    (work, due.len())
}

async fn run_size(series: &'static str, jobs: usize, hot_jobs: usize, ticks: usize) -> anyhow::Result<SizeResult> {
    let sizes = item_sizes();
    let started = Instant::now();
    let world = build_world(jobs, hot_jobs, sizes, NetworkLatency::default()).await?;
    eprintln!("  {series}, {jobs} jobs: set up in {:.1} s", started.elapsed().as_secs_f64());
    let config = config();
    let mut samples = Vec::new();
    for k in 0..WARMUP_TICKS + ticks {
        let now = tick_time(k);
        let measured = k >= WARMUP_TICKS;
        let before = measured.then(|| Before {
            states: world.store.inner().all_job_states().into_iter().map(|s| (s.job_id.clone(), s)).collect(),
            runs: world.store.inner().all_runs(),
        });
        let (report, tick, stats, livy) = clean_tick(&world, &config, k).await?;
        if let Some(before) = before {
            let after: HashMap<JobId, JobState> =
                world.store.inner().all_job_states().into_iter().map(|s| (s.job_id.clone(), s)).collect();
            let (mut work, due) = work_of(&world, &before, &after, &stats, now);
            work.windows_cut = report.windows_cut;
            let (engine, parse) = engine_pass(&world, &before, &after, now).await;
            samples.push(Sample { tick, stats, livy, report, work, due, engine, parse });
        }
        advance_world(&world, now).await?;
    }
    summarize(series, jobs, hot_jobs, world.clusters.len(), &sizes, samples)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summarize(
    series: &'static str,
    jobs: usize,
    hot_jobs: usize,
    clusters: usize,
    sizes: &ItemSizes,
    mut samples: Vec<Sample>,
) -> anyhow::Result<SizeResult> {
    let tick_ms = Spread::of(&samples.iter().map(|s| ms(s.tick)).collect::<Vec<_>>());
    let requests: Vec<u64> = samples.iter().map(|s| s.stats.requests()).collect();
    let requests_range = [requests.iter().copied().min().unwrap_or(0), requests.iter().copied().max().unwrap_or(0)];
    let median_of = |f: &dyn Fn(&Sample) -> f64| Spread::of(&samples.iter().map(f).collect::<Vec<_>>()).median;
    let store_model_ms = median_of(&|s| ms(s.stats.time()));
    let livy_model_ms = median_of(&|s| ms(s.livy.time));
    let handler_ms = median_of(&|s| ms(s.tick.saturating_sub(s.stats.time() + s.livy.time)));
    let engine_ms = median_of(&|s| ms(s.engine));
    let parse_definitions_ms = median_of(&|s| ms(s.parse));
    samples.sort_by_key(|s| s.tick);
    let Some(m) = samples.get(samples.len() / 2) else { bail!("no tick measured") };
    let ops = m
        .stats
        .ops
        .iter()
        .map(|(op, s)| OpRow {
            op: op.name(),
            api: op.api().name(),
            calls: s.calls,
            items: s.items,
            requests: s.requests,
            model_ms: ms(s.time),
        })
        .collect();
    let minimum = dynamo_model::minimum(&m.work, sizes);
    let minimum_requests = dynamo_model::total(&minimum);
    let requests = m.stats.requests();
    let excess = excess_of(&m.stats, &m.work, sizes, requests, minimum_requests);
    let items_read = m
        .stats
        .ops
        .iter()
        .filter(|(op, _)| matches!(op.api(), Api::GetItem | Api::BatchGetItem | Api::Query | Api::Scan))
        .map(|(op, s)| if op.api() == Api::GetItem { s.calls } else { s.items })
        .sum();
    let r = &m.report;
    Ok(SizeResult {
        series,
        jobs,
        hot_jobs,
        clusters,
        ticks: samples.len(),
        due: r.jobs_due,
        due_with_windows: m.work.due_with_windows,
        due_relooked: m.due.saturating_sub(m.work.due_with_windows),
        in_flight: m.work.active_runs,
        cut_submitted_published_committed: [r.windows_cut, r.runs_submitted, r.runs_published, r.windows_committed],
        tick_ms,
        per_due_job_us: tick_ms.median * 1000.0 / r.jobs_due.max(1) as f64,
        store_model_ms,
        livy_model_ms,
        handler_ms,
        engine_ms,
        parse_definitions_ms,
        ops,
        requests,
        requests_range,
        requests_by_api: m.stats.by_api().into_iter().map(|(a, n)| (a.name(), n)).collect(),
        work: m.work,
        minimum,
        minimum_requests,
        excess,
        ratio: requests as f64 / minimum_requests.max(1) as f64,
        items_read,
        sweep_scan_requests: dynamo_model::scan_pages(jobs, sizes.job_definition),
    })
}

/// Attributes the requests above the minimum to their causes, operation by operation.
fn excess_of(stats: &StoreStats, work: &Work, sizes: &ItemSizes, requests: u64, minimum: u64) -> Vec<Excess> {
    let req = |op: Op| stats.ops.get(&op).map_or(0, |s| s.requests) as i64;
    let w = work;
    let mut out = vec![
        Excess {
            what: "runs_of_job queries beyond one per due job with a window and one per commit: the re-looked jobs' own query, and commits of due jobs whose cut found a published window at the watermark (a tick that died between publishing and committing)",
            requests: req(Op::RunsOfJob) - (w.due_with_windows + w.commits) as i64,
        },
        Excess {
            what: "job state writes beyond the needed ones: re-looked jobs rewritten with their next due_at and nothing cut",
            requests: req(Op::UpdateJobState) + req(Op::CreateJobState) - w.job_state_writes as i64,
        },
        Excess {
            what: "states of in-flight jobs: batch reads beyond one per 100 such jobs, and single reads",
            requests: req(Op::GetJobStates) + req(Op::GetJobState) - dynamo_model::batch_gets(w.other_jobs) as i64,
        },
        Excess {
            what: "attempt results: batch reads beyond one per 100 followed runs",
            requests: req(Op::GetAttemptResults) - dynamo_model::batch_gets(w.followed_runs) as i64,
        },
        Excess {
            what: "definition batch reads: due and in-flight jobs read in two rounds, re-looked jobs' definitions included",
            requests: req(Op::GetJobDefinitions) - dynamo_model::batch_gets(w.due_with_windows + w.other_jobs) as i64,
        },
        Excess {
            what: "due index pages (re-looked jobs in the result)",
            requests: req(Op::DueJobs) - dynamo_model::query_pages(w.due_with_windows, w.due_limit, sizes.job_state) as i64,
        },
    ];
    let explained: i64 = out.iter().map(|e| e.requests).sum();
    out.push(Excess { what: "everything else", requests: requests as i64 - minimum as i64 - explained });
    out.retain(|e| e.requests != 0);
    out
}

/// The requests by API of the first tick over an empty world (the sweep claimed, nothing
/// found), per the translation model: what the scheduler binary must send to the DynamoDB stub.
/// The binary runs the grouped ledger's tick (`grouped::handle_event`), so that is the tick here.
pub async fn empty_world_requests() -> anyhow::Result<BTreeMap<String, u64>> {
    let store = CountingStore::new(MemoryStore::new(), item_sizes());
    norris_control::grouped::grouped_tick(&store, &MemoryLivy::new(), &MemorySpecs::new(), T0, &config()).await?;
    Ok(store
        .take_stats()
        .by_api()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(a, n)| (a.name().to_string(), n))
        .collect())
}

/// Tick `k` of the steady state: its report, its time on tokio's clock (wall time, or virtual
/// time on a paused runtime), and what it asked of the store and Livy. Fails unless it was clean.
async fn clean_tick(
    world: &World,
    config: &SchedulerConfig,
    k: usize,
) -> anyhow::Result<(TickReport, Duration, StoreStats, BatchStats)> {
    world.store.take_stats();
    world.livy.take_stats();
    let started = tokio::time::Instant::now();
    let report = scheduler_tick(&world.store, &world.livy, tick_time(k), config).await?;
    let elapsed = started.elapsed();
    if !report.failures.is_empty() || report.conflicts > 0 {
        bail!("tick {k} was not clean: {:?}, {} conflicts", report.failures, report.conflicts);
    }
    Ok((report, elapsed, world.store.take_stats(), world.livy.take_stats()))
}

/// Network round trips assumed for the network-wait series: DynamoDB in the same region, Livy on
/// the cluster's primary node in the same VPC (a submission starts a spark-submit).
pub const ASSUMED_LATENCY: NetworkLatency =
    NetworkLatency { dynamodb_request_ms: 8, livy_call_ms: 15, livy_submit_ms: 150, s3_put_ms: 30 };

/// One tick's time spent waiting on the network, at the assumed round trips.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkWait {
    /// `runs` (the per-window tick) or `grouped`.
    pub ledger: &'static str,
    /// Jobs in the tables (every one rotating, 1% due a tick).
    pub jobs: usize,
    /// Round trips assumed.
    pub latency: NetworkLatency,
    /// Runs (groups, shards) looked up, followed, submitted and jobs cut or committed at once.
    pub run_concurrency: usize,
    /// Windows cut, runs (group attempts) submitted, windows published, windows committed per
    /// tick (median tick).
    pub cut_submitted_published_committed: [usize; 4],
    /// DynamoDB requests per tick (median tick).
    pub dynamodb_requests: u64,
    /// Livy calls per tick (median tick).
    pub livy_calls: u64,
    /// Specs written to S3 per tick (median tick; the grouped tick only).
    pub spec_puts: u64,
    /// Seconds waited on the network per tick, with this concurrency.
    pub wait_secs: Spread,
    /// The same requests one after another (their round trips added up), seconds.
    pub one_by_one_secs: f64,
}

/// Measures how long a tick waits on the network on tokio's paused clock (it jumps to the next
/// round trip's end whenever nothing else can run, so the figure is the network's share of a
/// tick's wall time, reproducible and free to measure; CPU time adds to it, see `tick`). Must run
/// on a current-thread runtime started paused.
pub async fn network_wait(jobs: usize, ticks: usize) -> anyhow::Result<NetworkWait> {
    let latency = ASSUMED_LATENCY;
    let world = build_world(jobs, jobs, item_sizes(), latency).await?;
    let config = config();
    struct WaitSample {
        waited_secs: f64,
        requests: u64,
        livy_calls: u64,
        one_by_one_secs: f64,
        done: [usize; 4],
    }
    let mut samples = Vec::new();
    for k in 0..WARMUP_TICKS + ticks {
        let (report, waited, stats, livy) = clean_tick(&world, &config, k).await?;
        let (waited, requests) = (waited.as_secs_f64(), stats.requests());
        if k >= WARMUP_TICKS {
            let done = [report.windows_cut, report.runs_submitted, report.runs_published, report.windows_committed];
            let one_by_one_ms = requests * latency.dynamodb_request_ms
                + livy.submits * latency.livy_submit_ms
                + (livy.finds + livy.others) * latency.livy_call_ms;
            samples.push(WaitSample {
                waited_secs: waited,
                requests,
                livy_calls: livy.submits + livy.finds + livy.others,
                one_by_one_secs: one_by_one_ms as f64 / 1000.0,
                done,
            });
        }
        advance_world(&world, tick_time(k)).await?;
    }
    let wait_secs = Spread::of(&samples.iter().map(|s| s.waited_secs).collect::<Vec<_>>());
    samples.sort_by(|a, b| a.waited_secs.total_cmp(&b.waited_secs));
    let median = samples.get(samples.len() / 2).context("no measured tick")?;
    Ok(NetworkWait {
        ledger: "runs",
        jobs,
        latency,
        run_concurrency: norris_control::follow::RUN_CONCURRENCY,
        cut_submitted_published_committed: median.done,
        dynamodb_requests: median.requests,
        livy_calls: median.livy_calls,
        spec_puts: 0,
        wait_secs,
        one_by_one_secs: median.one_by_one_secs,
    })
}

/// Runs the benchmark: the grouped tick's series, then the per-window tick's, as chosen.
pub async fn run(options: &Options) -> anyhow::Result<SchedulerReport> {
    let constant_work_sizes: Vec<usize> =
        options.sizes.iter().copied().filter(|&n| options.constant_work && n > CONSTANT_WORK_HOT_JOBS).collect();
    let mut grouped = Vec::new();
    if options.ledger.grouped() {
        for &jobs in &options.sizes {
            grouped.push(crate::grouped_scheduler::run_size("1% due", jobs, jobs, options.ticks).await?);
        }
        for &jobs in &constant_work_sizes {
            let series = "constant work";
            grouped
                .push(crate::grouped_scheduler::run_size(series, jobs, CONSTANT_WORK_HOT_JOBS, options.ticks).await?);
        }
    }
    let mut results = Vec::new();
    if options.ledger.runs() {
        for &jobs in &options.sizes {
            results.push(run_size("1% due", jobs, jobs, options.ticks).await?);
        }
        for &jobs in &constant_work_sizes {
            results.push(run_size("constant work", jobs, CONSTANT_WORK_HOT_JOBS, options.ticks).await?);
        }
    }
    Ok(SchedulerReport {
        setup: setup_text(),
        item_sizes: item_sizes(),
        results,
        grouped_setup: crate::grouped_scheduler::setup_text(),
        grouped,
        network_wait: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip_and_documents_are_valid() {
        let id = JobId::new(job_id(1234));
        assert_eq!(index_of(&id), Some(1234));
        let record = DefinitionRecord::job(id.as_str(), &job_document(1234, true), Vec::new());
        let def = record.parsed.expect("valid");
        let spec = def.extraction().expect("extraction");
        assert_eq!(spec.lag_secs, BASE_LAG + 34 * SLOT_SECS, "slot 34");
        assert!(norris_model::PoolDefinition::from_document(&pool_document()).is_ok());
    }

    #[test]
    fn the_empty_world_model_is_the_grouped_ticks_first_tick() {
        let model = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(empty_world_requests())
            .expect("model");
        // The claim; the sweep's due index query and definition scan; the open groups' and due
        // shards' index queries (nothing listed, nothing read by key); the pools and clusters.
        let expected = [("PutItem", 1), ("Query", 4), ("Scan", 2)].map(|(a, n)| (a.to_string(), n));
        assert_eq!(model, BTreeMap::from(expected));
    }

    #[test]
    fn a_small_world_reaches_the_steady_state() {
        let result = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(run_size("1% due", 200, 200, 2))
            .expect("bench");
        // 2 jobs per slot: 2 cut and submitted, 2 published and committed, 2 followed.
        assert_eq!(result.cut_submitted_published_committed, [2, 2, 2, 2]);
        assert_eq!(result.due_with_windows, 2);
        assert_eq!(result.in_flight, 6, "new, followed, finishing");
        assert!(result.requests >= result.minimum_requests, "{} < {}", result.requests, result.minimum_requests);
    }

    #[test]
    fn the_network_wait_is_measured_on_the_paused_clock_and_never_exceeds_the_round_trips_added_up() {
        let wait = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(network_wait(200, 2))
            .expect("bench");
        assert_eq!(wait.cut_submitted_published_committed, [2, 2, 2, 2]);
        assert!(wait.wait_secs.median > 0.0, "round trips were waited for");
        assert!(wait.wait_secs.max <= wait.one_by_one_secs + 1e-9, "{:?} vs {}", wait.wait_secs, wait.one_by_one_secs);
    }
}
