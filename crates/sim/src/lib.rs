//! norris's deterministic simulator.
//!
//! It runs the real scheduler handler (`norris_control::scheduler_tick`, what the extraction
//! scheduler Lambda runs, or the grouped ledger's `grouped_tick` with [`Ledger::Grouped`], whose
//! groups' members the checks see as runs and whose shards' lines as job states) over the in-memory DynamoDB and Livy models for days of virtual time,
//! with faults drawn from one seed: store throttling and responses lost after the write, an
//! invocation dying between any two store operations, scheduled events dropped, delayed and
//! delivered twice (two invocations at once, interleaved operation by operation), Livy responses
//! lost, Livy outages and restarts that forget every batch and reset ids (while the Spark
//! applications they started keep running, as YARN applications do), and Spark attempts failing.
//! After every handler invocation it checks the promises (see [`invariants`]); then it heals the
//! faults and checks that everything converges within a bound of virtual time.
//!
//! Single-threaded, no clock, no OS randomness: a seed replays a run exactly.

mod exec;
mod faulty;
pub mod html;
pub mod invariants;
pub mod rng;
pub mod sweep;

use exec::{block_on, run_concurrently, Invocation};
use faulty::{FaultyStore, StoreFaults};
use invariants::Checker;
use norris_control::clusters::{rotate, watch, ClusterReport, ClusterSignal, Failover, LifecycleConfig};
use norris_control::grouped::{grouped_tick, retry_failed_member, RetryMemberError};
use norris_control::{scheduler_tick, SchedulerConfig};
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchPhase, Check, ClusterKey, ClusterState, EmrState, Group, GroupKey,
    GroupResult, GroupStatus, JobState, MemberState, Run, RunKey, RunStatus, UnixTime, Version,
};
use norris_ports::{GroupStore, MemoryEmr, MemoryLivy, MemorySpecs, MemoryStore, StateStore};
use rng::SimRng;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

/// Virtual time zero: 2026-11-22T00:00:00Z, the jobs' `start_at`.
pub const T0: UnixTime = UnixTime(1_795_305_600);
const START_AT: &str = "2026-11-22T00:00:00Z";
/// The world's resolution: Spark progress, Livy faults and operators are looked at this often.
const STEP_SECS: i64 = 10;
/// EventBridge's schedule for the scheduler (rate(5 minutes)).
const TICK_EVERY_SECS: i64 = 300;
const INTERVAL_SECS: i64 = 300;
const LAG_SECS: i64 = 60;
/// Livy forgets finished batches after this (its retain period).
const LIVY_RETAIN_SECS: i64 = 3600;
const TRACE_LINES: usize = 40;
/// The watcher's periodic sweep and the rotation handler's schedule.
const SWEEP_EVERY_SECS: i64 = 60;
const ROTATION_EVERY_SECS: i64 = 600;
/// A spot interruption warning comes this long before the instance is taken.
const SPOT_WARNING_SECS: i64 = 120;
const DEPLOYMENT: &str = "sim";
/// How often the operator looks at the alarms.
const OPERATOR_LOOKS_EVERY_SECS: i64 = 300;
/// Lambda retries an asynchronous invocation that failed (an error, or the function died or timed
/// out) twice: about 1 minute, then 2 minutes later. The handlers fail an invocation whenever a
/// step failed, so a failed pass (a spot warning's, say) is run again with the same event.
const LAMBDA_RETRY_DELAYS_SECS: [i64; 2] = [60, 120];

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Every random choice derives from it.
    pub seed: u64,
    /// Virtual time with faults, in seconds.
    pub fault_secs: i64,
    /// Virtual time after the faults heal, within which every due window must be committed.
    pub heal_secs: i64,
    /// Batch-extraction jobs, each on a 5-minute interval.
    pub jobs: u32,
    /// The pool's `min_clusters`: clusters of the jobs' size class, each with its own Livy
    /// server, launched by the lifecycle handlers.
    pub clusters: u32,
    /// The pool's `max_age_secs`: clusters are rotated this long after launch.
    pub cluster_max_age_secs: i64,
    /// Batches each cluster runs at once.
    pub max_concurrent_batches: u32,
    /// Fault rates.
    pub faults: Faults,
    /// How clusters and failover are run.
    pub strategy: Strategy,
    /// Break the handlers on purpose (run updates without their version condition), to show the
    /// checks catch it. Never set outside that test.
    pub broken_conditional_writes: bool,
    /// Which ledger the scheduler keeps.
    pub ledger: Ledger,
}

/// Which ledger the scheduler keeps: the per-window one (`scheduler_tick`, a run per window) or
/// the grouped one (`grouped_tick`, jobs in shards, a tick's due windows of a shard in one group
/// run as one Spark batch). Both are checked against the same promises: a group's members are
/// seen as runs, a shard's lines as job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ledger {
    /// A run per job and window.
    #[default]
    Runs,
    /// Shards and groups.
    Grouped,
}

impl Ledger {
    /// The ledger named `key` (`runs`, `grouped`).
    pub fn from_key(key: &str) -> Option<Ledger> {
        match key {
            "runs" => Some(Ledger::Runs),
            "grouped" => Some(Ledger::Grouped),
            _ => None,
        }
    }
}

/// How clusters and failover are run; the three share one fault trace (the spot interruptions
/// are drawn from the seed before the run, independent of what the strategy does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// norris: spot task nodes, warm failover to a healthy cluster at once, spot warnings acted on.
    Norris,
    /// The approach norris replaces: spot, warnings ignored, a lost cluster's runs wait for its
    /// relaunched replacement and are re-run there.
    Baseline,
    /// norris's handlers on on-demand-only clusters: no spot loss, list price for every node.
    OnDemandOnly,
}

impl Strategy {
    /// Every strategy, norris first.
    pub const ALL: [Strategy; 3] = [Strategy::Norris, Strategy::Baseline, Strategy::OnDemandOnly];

    /// The strategy with this report key.
    pub fn from_key(key: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The strategy's key in reports.
    pub fn key(self) -> &'static str {
        match self {
            Strategy::Norris => "norris",
            Strategy::Baseline => "baseline",
            Strategy::OnDemandOnly => "on_demand_only",
        }
    }
}

impl SimConfig {
    /// `days` of faults from the default mix, then two hours to converge.
    pub fn new(seed: u64, days: f64, jobs: u32, clusters: u32) -> Self {
        SimConfig {
            seed,
            fault_secs: (days * 86_400.0) as i64,
            heal_secs: 7200,
            jobs,
            clusters,
            cluster_max_age_secs: 6 * 3600,
            max_concurrent_batches: 8,
            faults: Faults::default_mix(),
            strategy: Strategy::Norris,
            broken_conditional_writes: false,
            ledger: Ledger::Runs,
        }
    }
}

/// Spot instances per simulated cluster (its task fleet: two m7g.2xlarge).
pub const SPOT_NODES_PER_CLUSTER: f64 = 2.0;

/// Cluster-ending spot losses per cluster per 30 days for an interruption band as EC2's Spot
/// placement advisor gives it (the share of a type's instances reclaimed in a month, per cent).
/// Pessimistic: every reclaimed node of a cluster ends its work as if the cluster were lost.
pub fn spot_losses_per_month(band_pct: f64) -> f64 {
    band_pct / 100.0 * SPOT_NODES_PER_CLUSTER
}

/// Fault rates. Probabilities are per operation, per event or per step as named.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Faults {
    /// A store operation fails before taking effect (throttling, 5xx).
    pub store_fail_before: f64,
    /// A store operation takes effect and its response is lost.
    pub store_lose_after: f64,
    /// A handler invocation dies at a random store operation.
    pub invocation_dies: f64,
    /// A scheduled event is delivered twice, to two concurrent invocations.
    pub tick_duplicated: f64,
    /// A scheduled event never arrives.
    pub tick_dropped: f64,
    /// A scheduled event arrives late (up to `tick_delay_max_secs`).
    pub tick_delayed: f64,
    /// The most a delayed event is late.
    pub tick_delay_max_secs: i64,
    /// Before an invocation, a Livy server will lose its next response (after its effect).
    pub livy_response_lost: f64,
    /// Per hour and server: an outage (unreachable) of up to `livy_outage_max_secs`.
    pub livy_outage_per_hour: f64,
    /// The longest outage.
    pub livy_outage_max_secs: i64,
    /// Per day and server: a restart that forgets every batch and resets ids.
    pub livy_restart_per_day: f64,
    /// A Spark attempt fails (and reports so).
    pub spark_fails: f64,
    /// A Spark attempt dies without writing a result (the driver killed, the result write failed).
    pub spark_dies_silently: f64,
    /// A Spark attempt hangs (stuck in YARN, a hung driver): it runs for hours, and lives on
    /// after its batch is killed, then finishes (its result fenced off by then).
    pub spark_hangs: f64,
    /// Per cluster and 30 days: spot interruptions of its primary node (each ends the cluster).
    pub spot_interruptions_per_month: f64,
    /// The 2-minute warning of an interruption is delivered (else the loss comes unannounced).
    pub spot_warning_delivered: f64,
    /// Before an invocation, EMR will lose its next response (after its effect).
    pub emr_response_lost: f64,
    /// An operator retries a run that exhausted its attempts this long after it failed (the alarm).
    pub operator_retry_after_secs: i64,
}

impl Faults {
    /// No faults at all (the liveness phase, and a baseline).
    pub fn none() -> Self {
        Faults {
            store_fail_before: 0.0,
            store_lose_after: 0.0,
            invocation_dies: 0.0,
            tick_duplicated: 0.0,
            tick_dropped: 0.0,
            tick_delayed: 0.0,
            tick_delay_max_secs: 0,
            livy_response_lost: 0.0,
            livy_outage_per_hour: 0.0,
            livy_outage_max_secs: 0,
            livy_restart_per_day: 0.0,
            spark_fails: 0.0,
            spark_dies_silently: 0.0,
            spark_hangs: 0.0,
            spot_interruptions_per_month: 0.0,
            spot_warning_delivered: 1.0,
            emr_response_lost: 0.0,
            operator_retry_after_secs: 1800,
        }
    }

    /// What production might see (assumed, not measured): the harsh mix's kinds of fault at
    /// a tenth to a hundredth of its rates, and most spot warnings delivered. The figures users
    /// compare strategies by; the harsh mix is for finding bugs.
    pub fn realistic() -> Self {
        Faults {
            store_fail_before: 0.001,
            store_lose_after: 0.000_5,
            invocation_dies: 0.001,
            tick_duplicated: 0.01,
            tick_dropped: 0.001,
            tick_delayed: 0.01,
            tick_delay_max_secs: 60,
            livy_response_lost: 0.002,
            livy_outage_per_hour: 0.005,
            livy_outage_max_secs: 300,
            livy_restart_per_day: 0.05,
            spark_fails: 0.005,
            spark_dies_silently: 0.001,
            spark_hangs: 0.000_5,
            spot_interruptions_per_month: 0.4,
            spot_warning_delivered: 0.95,
            emr_response_lost: 0.002,
            operator_retry_after_secs: 3600,
        }
    }

    /// A harsh mix: far more faults than production sees, so a day of simulation covers years of
    /// rare interleavings.
    pub fn default_mix() -> Self {
        Faults {
            store_fail_before: 0.01,
            store_lose_after: 0.01,
            invocation_dies: 0.05,
            tick_duplicated: 0.05,
            tick_dropped: 0.02,
            tick_delayed: 0.05,
            tick_delay_max_secs: 240,
            livy_response_lost: 0.05,
            livy_outage_per_hour: 0.1,
            livy_outage_max_secs: 900,
            livy_restart_per_day: 2.0,
            spark_fails: 0.03,
            spark_dies_silently: 0.01,
            spark_hangs: 0.003,
            spot_interruptions_per_month: 30.0,
            spot_warning_delivered: 0.7,
            emr_response_lost: 0.05,
            operator_retry_after_secs: 1800,
        }
    }
}

/// What a simulation found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReport {
    /// The seed that replays it.
    pub seed: u64,
    /// Virtual seconds with faults.
    pub fault_secs: i64,
    /// Windows that had become due by the end of the fault phase.
    pub windows_expected: u64,
    /// Of those, committed by the end of the run.
    pub windows_committed: u64,
    /// Windows published twice (a second attempt made visible after the first).
    pub windows_duplicated: u64,
    /// Windows due by the end of the fault phase and still not committed at the end.
    pub windows_lost: u64,
    /// Every invariant violation, with the virtual time it was seen.
    pub invariant_violations: Vec<String>,
    /// Time from a window's end to its commit: median, 99th percentile, worst.
    pub freshness_p50_secs: i64,
    /// See `freshness_p50_secs`.
    pub freshness_p99_secs: i64,
    /// See `freshness_p50_secs`.
    pub freshness_max_secs: i64,
    /// Handler invocations (ticks delivered, duplicates included).
    pub invocations: u64,
    /// Invocations that died mid-flight.
    pub invocations_died: u64,
    /// State-store operations (DynamoDB requests) over all invocations.
    pub store_operations: u64,
    /// Batches submitted to Livy (adoptions of an existing name excluded).
    pub batches_submitted: u64,
    /// Spark applications that ran (zombies of forgotten batches included).
    pub spark_applications: u64,
    /// Of those, applications that hung for hours.
    pub spark_hangs: u64,
    /// Runs an operator retried after they exhausted their attempts.
    pub operator_retries: u64,
    /// Livy restarts injected.
    pub livy_restarts: u64,
    /// Clusters lost to spot interruptions.
    pub spot_losses: u64,
    /// Clusters retired by rotation (drained because they reached their maximum age).
    pub rotations: u64,
    /// RunJobFlow calls that launched a cluster.
    pub clusters_launched: u64,
    /// EMR clusters still running at the end that the ledger does not account for.
    pub clusters_unowned_at_end: u64,
    /// Of `spot_losses`, those of a cluster with runs on it (each has a recovery time).
    pub spot_losses_with_runs: u64,
    /// Per spot loss of a cluster with runs on it: seconds from the loss to every such run's
    /// Spark application running again on another cluster (or the run published).
    pub recovery_secs: Vec<i64>,
    /// Median and 99th percentile of `recovery_secs`.
    pub recovery_p50_secs: i64,
    /// See `recovery_p50_secs`.
    pub recovery_p99_secs: i64,
    /// Cluster node-hours on on-demand and on spot capacity.
    pub node_hours_on_demand: f64,
    /// See `node_hours_on_demand`.
    pub node_hours_spot: f64,
    /// What those node-hours cost at the list prices in [`prices`] (EC2 + EMR uplift).
    pub cluster_cost_usd: f64,
    /// The control plane's AWS cost per 30 days at this rate: Lambda requests and GB-s, DynamoDB
    /// on-demand request units (EventBridge schedules and AWS service events are free).
    pub control_plane_cost_usd_month: f64,
    /// DynamoDB writes and reads over the run (each counted as one request unit: items are small).
    pub store_writes: u64,
    /// See `store_writes`.
    pub store_reads: u64,
    /// Index entries written, a write unit each (see `FaultyStore::index_writes`).
    pub index_writes: u64,
    /// Freshness samples over time: (virtual seconds since start, seconds from window end to commit).
    pub freshness_over_time: Vec<(i64, i64)>,
    /// The last events before the end or the first violation.
    pub trace: Vec<String>,
}

impl SimReport {
    /// Whether every promise held.
    pub fn ok(&self) -> bool {
        self.invariant_violations.is_empty() && self.windows_lost == 0 && self.windows_duplicated == 0
    }
}

/// A spot loss the world waits to see recovered from: every run that was on the cluster has
/// its Spark application running again on another cluster (or is published or failed). What
/// counts is Spark running, not the ledger saying so: that is what a user waits for.
#[derive(Debug)]
struct Loss {
    /// When spot takes the node.
    at: i64,
    /// The lost cluster's ledger key.
    cluster: ClusterKey,
    /// Its Livy endpoint.
    endpoint: Option<String>,
    /// The runs on it, with their attempt then.
    runs: BTreeMap<RunKey, Attempt>,
    /// When each was back: its later attempt's Spark application started on another cluster, or
    /// it was seen published or failed. Kept per run, so the figure does not wait for the next check.
    back_at: BTreeMap<RunKey, i64>,
}

/// A Spark application the world runs for a batch: it lives on in YARN even when Livy forgets
/// its batch, and writes its result when it finishes.
#[derive(Debug, Clone)]
struct SparkApp {
    endpoint: String,
    name: String,
    /// The group whose attempt it runs (grouped ledger); `None` for a run's attempt.
    group: Option<GroupKey>,
    attempt: Attempt,
    /// The windows it extracts (one for a run).
    members: Vec<AppMember>,
    started: i64,
    finishes: i64,
    fate: AppFate,
    done: bool,
}

/// One window a Spark application extracts.
#[derive(Debug, Clone)]
struct AppMember {
    run_key: RunKey,
    output_prefix: String,
    /// Its extraction fails (the application reports it failed).
    fails: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AppFate {
    Succeeds,
    Fails,
    DiesSilently,
    /// Runs far longer than any window should, then succeeds.
    Hangs,
}

struct World {
    config: SimConfig,
    rng: SimRng,
    store: MemoryStore,
    livy: MemoryLivy,
    emr: MemoryEmr,
    lifecycle: LifecycleConfig,
    /// Per EMR cluster: when it reaches BOOTSTRAPPING and WAITING.
    boots: BTreeMap<String, (i64, i64)>,
    /// Per EMR cluster: when a spot interruption takes its primary node.
    doomed: BTreeMap<String, i64>,
    /// EMR clusters the world has already seen end, and when.
    ended: BTreeMap<String, i64>,
    /// The fault trace's spot interruptions, drawn before the run: (when, which live cluster
    /// (index among the clusters up, by id, modulo their number), warning delivered).
    spot_plan: VecDeque<(i64, u64, bool)>,
    /// Livy batch instances already turned into apps, by (endpoint, batch id, name).
    seen_batches: BTreeSet<(String, i64, String)>,
    /// Each server's submission count when its batches were last looked at.
    submissions_seen: BTreeMap<String, u64>,
    apps: Vec<SparkApp>,
    /// The lake: what each attempt wrote, by (run key, attempt): rows.
    lake: BTreeMap<(String, u32), u64>,
    outage_until: BTreeMap<String, i64>,
    next_forget: i64,
    pending_ticks: Vec<i64>,
    next_scheduled_tick: i64,
    /// Events on their way to the cluster health watcher: (delivery time, signal).
    pending_events: Vec<(i64, Option<ClusterSignal>)>,
    /// Failed invocations Lambda will retry: (delivery time, what, retries so far).
    lambda_retries: Vec<(i64, Delivery, usize)>,
    next_sweep: i64,
    next_rotation: i64,
    /// Spot losses not yet recovered from.
    losses: Vec<Loss>,
    /// The store's run journal position the checks have seen up to.
    runs_seen_to: u64,
    /// The same for groups (grouped ledger).
    groups_seen_to: u64,
    /// Where the grouped tick writes group specs (the world's applications read them there).
    specs: MemorySpecs,
    /// Per window, the group it was cut into: a window cut into a second group is cut twice.
    member_groups: BTreeMap<RunKey, GroupKey>,
    checker: Checker,
    trace: VecDeque<String>,
    report: SimReport,
}

/// One handler invocation the world delivers.
#[derive(Debug, Clone)]
enum Delivery {
    Tick,
    Watch(Option<ClusterSignal>),
    Rotate,
}

/// What a handler invocation did, as the world sees it.
struct Handled {
    /// What to log.
    line: String,
    /// How many clusters it started draining.
    drained: u64,
    /// It wrote nothing (a quiet watcher pass: the checks after it would find what they found
    /// before).
    quiet: bool,
    /// Its Lambda invocation failed (the handler's error, as the Lambda wrapper returns it).
    failed: bool,
}

type Boxed<'a> = Pin<Box<dyn Future<Output = Handled> + 'a>>;

/// Runs one simulation.
pub fn simulate(config: &SimConfig) -> SimReport {
    let mut world = World::new(config.clone());
    world.run();
    world.finish()
}

fn job_document(i: u32) -> Value {
    json!({
        "job_id": format!("sim.job{i:04}"),
        "kind": "batch_extraction",
        "size_class": "small",
        "interval_secs": INTERVAL_SECS,
        "lag_secs": LAG_SECS,
        "start_at": START_AT,
        "max_windows_in_flight": 4,
        "source": {
            "jdbc_url": "jdbc:mysql://source.internal:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:norris/shop-AbCdEf",
            "table": format!("table{i}"),
            "watermark_column": "updated_at",
            "primary_key": ["id"]
        },
        "lake_uri": format!("s3://lake/sim/job{i:04}"),
        "livy": {"file": "s3://code/extract.py"},
        "retry": {"max_attempts": 3, "backoff_base_secs": 30, "backoff_max_secs": 300}
    })
}

fn pool_document(config: &SimConfig) -> Value {
    json!({
        "size_class": "small",
        "emr_release": "emr-7.5.0",
        "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "task": {"instance_types": [{"instance_type": "m7g.2xlarge", "weighted_capacity": 2}], "spot_capacity": 4,
                 "spot": {"allocation_strategy": "price-capacity-optimized", "timeout_minutes": 10,
                          "timeout_action": "switch_to_on_demand"}},
        "max_age_secs": config.cluster_max_age_secs,
        "min_clusters": config.clusters,
        "max_clusters": config.clusters + 2,
        "max_concurrent_batches": config.max_concurrent_batches,
        "idle_scale_down_secs": 1800
    })
}

/// What a batch's application runs, read from its arguments as `extract.py` reads them: a run
/// spec (`--spec`), or a group spec where the control plane wrote it (`--group-spec-uri`).
/// Returns the group (if any), the attempt and each window with its output prefix.
type AppSpec = (Option<GroupKey>, Attempt, Vec<(RunKey, String)>);

fn spec_of(args: &[String], specs: &MemorySpecs) -> Option<AppSpec> {
    let attempt_of = |spec: &Value| Some(Attempt(u32::try_from(spec["attempt"].as_u64()?).ok()?));
    if let Some(i) = args.iter().position(|a| a == "--group-spec-uri") {
        let spec = specs.read(args.get(i + 1)?)?;
        let group = GroupKey::parse(spec["group_key"].as_str()?)?;
        let members = spec["members"].as_array()?.iter().map(window_of).collect::<Option<Vec<_>>>()?;
        return Some((Some(group), attempt_of(&spec)?, members));
    }
    let i = args.iter().position(|a| a == "--spec")?;
    let spec: Value = serde_json::from_str(args.get(i + 1)?).ok()?;
    Some((None, attempt_of(&spec)?, vec![window_of(&spec)?]))
}

/// A window spec's run key and output prefix (`livy-jobs/README.md`).
fn window_of(spec: &Value) -> Option<(RunKey, String)> {
    let job_id = norris_model::JobId::new(spec["job_id"].as_str()?);
    let lo = UnixTime(spec["window"]["lo"].as_i64()?);
    Some((RunKey { job_id, window_lo: lo }, spec["output_prefix"].as_str()?.to_string()))
}

impl World {
    fn new(config: SimConfig) -> Self {
        let mut rng = SimRng::new(config.seed);
        let store = MemoryStore::new();
        block_on(async {
            store.put_pool_document(&pool_document(&config)).await.expect("pool");
            for i in 0..config.jobs {
                store.put_job_document(&job_document(i)).await.expect("job");
            }
        });
        let scheduler =
            SchedulerConfig { table_prefix: DEPLOYMENT.into(), definition_sweep_secs: 900, max_due_per_tick: 5000 };
        let lifecycle = LifecycleConfig {
            scheduler,
            deployment: DEPLOYMENT.into(),
            drain_secs: 600,
            start_timeout_secs: 2700,
            terminate_settle_secs: 300,
            launch_retry_secs: 600,
            orphan_grace_secs: 1800,
            failover: if config.strategy == Strategy::Baseline { Failover::WaitForReplacement } else { Failover::Warm },
        };
        let spot_plan = spot_plan(&config);
        let first_tick = rng.range(0, TICK_EVERY_SECS - 1);
        let emr = MemoryEmr::new();
        emr.set_now(T0);
        let report = SimReport {
            seed: config.seed,
            fault_secs: config.fault_secs,
            windows_expected: 0,
            windows_committed: 0,
            windows_duplicated: 0,
            windows_lost: 0,
            invariant_violations: Vec::new(),
            freshness_p50_secs: 0,
            freshness_p99_secs: 0,
            freshness_max_secs: 0,
            invocations: 0,
            invocations_died: 0,
            store_operations: 0,
            batches_submitted: 0,
            spark_applications: 0,
            spark_hangs: 0,
            operator_retries: 0,
            livy_restarts: 0,
            spot_losses: 0,
            rotations: 0,
            clusters_launched: 0,
            clusters_unowned_at_end: 0,
            spot_losses_with_runs: 0,
            recovery_secs: Vec::new(),
            recovery_p50_secs: 0,
            recovery_p99_secs: 0,
            node_hours_on_demand: 0.0,
            node_hours_spot: 0.0,
            cluster_cost_usd: 0.0,
            control_plane_cost_usd_month: 0.0,
            store_writes: 0,
            index_writes: 0,
            store_reads: 0,
            freshness_over_time: Vec::new(),
            trace: Vec::new(),
        };
        World {
            rng,
            store,
            livy: MemoryLivy::new(),
            emr,
            lifecycle,
            boots: BTreeMap::new(),
            doomed: BTreeMap::new(),
            ended: BTreeMap::new(),
            spot_plan,
            seen_batches: BTreeSet::new(),
            submissions_seen: BTreeMap::new(),
            apps: Vec::new(),
            lake: BTreeMap::new(),
            outage_until: BTreeMap::new(),
            next_forget: T0.0 + LIVY_RETAIN_SECS,
            pending_ticks: Vec::new(),
            next_scheduled_tick: T0.0 + first_tick,
            pending_events: vec![(T0.0, None)],
            lambda_retries: Vec::new(),
            next_sweep: T0.0 + SWEEP_EVERY_SECS,
            next_rotation: T0.0 + ROTATION_EVERY_SECS,
            losses: Vec::new(),
            runs_seen_to: 0,
            groups_seen_to: 0,
            specs: MemorySpecs::new(),
            member_groups: BTreeMap::new(),
            checker: Checker::default(),
            trace: VecDeque::new(),
            report,
            config,
        }
    }

    fn log(&mut self, now: i64, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        // Debugging a seed: NORRIS_SIM_ECHO=1 prints the world's whole log, not only the trace's tail.
        if std::env::var_os("NORRIS_SIM_ECHO").is_some() {
            eprintln!("t+{}s {line}", now - T0.0);
        }
        self.trace.push_back(format!("t+{}s {line}", now - T0.0));
    }

    fn faults(&self, now: i64) -> Faults {
        if now < T0.0 + self.config.fault_secs {
            self.config.faults
        } else {
            Faults { operator_retry_after_secs: self.config.faults.operator_retry_after_secs, ..Faults::none() }
        }
    }

    fn run(&mut self) {
        let end = T0.0 + self.config.fault_secs + self.config.heal_secs;
        let mut now = T0.0;
        while now <= end {
            self.step(now);
            if !self.report.invariant_violations.is_empty() {
                break;
            }
            now += STEP_SECS;
        }
        self.liveness(end);
    }

    /// Livy endpoints of the clusters EMR has up.
    fn endpoints(&self) -> Vec<String> {
        self.emr.clusters_where(|c| c.state.is_up()).into_iter().filter_map(|c| c.livy_endpoint()).collect()
    }

    fn step(&mut self, now: i64) {
        let faults = self.faults(now);
        self.emr.set_now(UnixTime(now));
        self.clusters_world(now, &faults);
        self.livy_faults(now, &faults);
        self.spark(now, &faults);
        let mut deliveries = Vec::new();
        // EventBridge: the schedule fires; the event may be dropped, delayed or duplicated.
        while self.next_scheduled_tick <= now {
            let at = self.next_scheduled_tick;
            self.next_scheduled_tick += TICK_EVERY_SECS;
            if self.rng.chance(faults.tick_dropped) {
                self.log(now, "scheduled event dropped".into());
                continue;
            }
            let delay =
                if self.rng.chance(faults.tick_delayed) { self.rng.range(1, faults.tick_delay_max_secs) } else { 0 };
            self.pending_ticks.push(at + delay);
            if self.rng.chance(faults.tick_duplicated) {
                self.pending_ticks.push(at + delay);
            }
        }
        let due = self.pending_ticks.iter().filter(|&&t| t <= now).count();
        self.pending_ticks.retain(|&t| t > now);
        deliveries.extend(std::iter::repeat_n((Delivery::Tick, 0), due));
        if self.next_sweep <= now {
            self.next_sweep += SWEEP_EVERY_SECS;
            self.send_event(now, None, &faults);
        }
        let (events, later): (Vec<_>, Vec<_>) = self.pending_events.drain(..).partition(|(t, _)| *t <= now);
        self.pending_events = later;
        deliveries.extend(events.into_iter().map(|(_, signal)| (Delivery::Watch(signal), 0)));
        if self.next_rotation <= now {
            self.next_rotation += ROTATION_EVERY_SECS;
            deliveries.push((Delivery::Rotate, 0));
        }
        let (retries, later): (Vec<_>, Vec<_>) = self.lambda_retries.drain(..).partition(|(t, ..)| *t <= now);
        self.lambda_retries = later;
        deliveries.extend(retries.into_iter().map(|(_, delivery, tried)| (delivery, tried)));
        if !deliveries.is_empty() {
            self.invoke(now, deliveries, &faults);
        }
        self.operator(now, &faults);
    }

    /// Sends an event to the watcher, through EventBridge's faults.
    fn send_event(&mut self, now: i64, signal: Option<ClusterSignal>, faults: &Faults) {
        if self.rng.chance(faults.tick_dropped) {
            self.log(now, format!("event dropped: {signal:?}"));
            return;
        }
        let delay =
            if self.rng.chance(faults.tick_delayed) { self.rng.range(1, faults.tick_delay_max_secs) } else { 0 };
        if self.rng.chance(faults.tick_duplicated) {
            self.pending_events.push((now + delay, signal.clone()));
        }
        self.pending_events.push((now + delay, signal));
    }

    /// EMR: clusters boot (STARTING → BOOTSTRAPPING → WAITING), spot takes primary nodes (with a
    /// warning that sometimes does not come), and a cluster that ends takes its Livy server and
    /// Spark applications with it.
    fn clusters_world(&mut self, now: i64, faults: &Faults) {
        let mut up: Vec<String> = self
            .emr
            .clusters_where(|c| c.state.is_up() && !self.doomed.contains_key(&c.id))
            .into_iter()
            .map(|c| c.id)
            .collect();
        up.sort();
        while self.spot_plan.front().is_some_and(|(at, _, _)| *at <= now) {
            let Some((_, pick, warned)) = self.spot_plan.pop_front() else { break };
            if up.is_empty() || self.config.strategy == Strategy::OnDemandOnly || now >= T0.0 + self.config.fault_secs {
                continue;
            }
            let id = up.remove((pick % up.len() as u64) as usize);
            self.doomed.insert(id.clone(), now + SPOT_WARNING_SECS);
            // The loss counts from when spot takes the node, with the runs on the cluster now
            // (a strategy that acts on the warning may have moved them by then: recovery 0).
            self.report.spot_losses += 1;
            let emr_cluster = self.emr.clusters_where(|c| c.id == id).pop();
            if let Some((key, endpoint)) = emr_cluster.and_then(|c| Some((c.launch_key()?, c.livy_endpoint()))) {
                let runs: BTreeMap<RunKey, Attempt> = self
                    .placed()
                    .into_iter()
                    .filter(|(c, ..)| *c == key)
                    .map(|(_, run, attempt)| (run, attempt))
                    .collect();
                // A loss with no work on it has nothing to recover (and would add a 0 s).
                if !runs.is_empty() {
                    self.report.spot_losses_with_runs += 1;
                    let at = now + SPOT_WARNING_SECS;
                    self.losses.push(Loss { at, cluster: key, endpoint, runs, back_at: BTreeMap::new() });
                }
            }
            // The approach norris replaces had no handling of the warning.
            if warned && self.config.strategy != Strategy::Baseline {
                let instance_id = MemoryEmr::primary_instance(&id);
                self.send_event(now, Some(ClusterSignal::InstanceInterrupted { instance_id }), faults);
            }
        }
        // Clusters whose end the world has not yet seen (the rest have nothing left to do).
        for cluster in self.emr.clusters_where(|c| !self.ended.contains_key(&c.id)) {
            let id = cluster.id.clone();
            if cluster.state.is_ending() {
                if !self.ended.contains_key(&id) {
                    self.doomed.remove(&id);
                    self.ended.insert(id.clone(), now);
                    self.cluster_ended(now, &cluster, faults);
                }
                continue;
            }
            let created = cluster.created_at.map_or(now, |t| t.0);
            let (bootstrapping_at, waiting_at) = match self.boots.get(&id) {
                Some(b) => *b,
                None => {
                    let b = created + self.rng.range(240, 420);
                    let w = b + self.rng.range(120, 300);
                    self.boots.insert(id.clone(), (b, w));
                    (b, w)
                }
            };
            let next = if now >= waiting_at {
                EmrState::Waiting
            } else if now >= bootstrapping_at {
                EmrState::Bootstrapping
            } else {
                EmrState::Starting
            };
            if next != cluster.state {
                self.emr.set_state(&id, next.clone(), None);
                self.send_event(now, Some(ClusterSignal::Look { emr_cluster_id: id.clone() }), faults);
            }
            match self.doomed.get(&id).copied() {
                Some(at) if at <= now => {
                    self.doomed.remove(&id);
                    self.emr.set_state(&id, EmrState::TerminatedWithErrors, Some("INSTANCE_FAILURE"));
                    self.log(now, format!("spot took the primary node of {id}"));
                }
                _ => {}
            }
        }
    }

    fn cluster_ended(&mut self, now: i64, cluster: &norris_model::EmrCluster, faults: &Faults) {
        if let Some(endpoint) = cluster.livy_endpoint() {
            self.livy.set_unreachable(&endpoint, true);
            for app in self.apps.iter_mut().filter(|a| !a.done && a.endpoint == endpoint) {
                app.done = true;
            }
        }
        self.send_event(now, Some(ClusterSignal::Look { emr_cluster_id: cluster.id.clone() }), faults);
        // Norris terminated it (USER_REQUEST): nothing of norris's may still be on it.
        if cluster.state_reason.as_deref() == Some("USER_REQUEST") {
            if let Some(key) = cluster.launch_key() {
                let stranded: Vec<String> =
                    self.placed().into_iter().filter(|(c, ..)| *c == key).map(|(_, run, _)| run.to_string()).collect();
                if !stranded.is_empty() {
                    self.violation(now, format!("cluster {key} terminated while runs were on it: {stranded:?}"));
                }
            }
        }
        self.log(now, format!("EMR cluster {} ended ({:?})", cluster.id, cluster.state_reason));
    }

    fn livy_faults(&mut self, now: i64, faults: &Faults) {
        let per_step_outage = faults.livy_outage_per_hour * STEP_SECS as f64 / 3600.0;
        let per_step_restart = faults.livy_restart_per_day * STEP_SECS as f64 / 86_400.0;
        let up: BTreeSet<String> = self.endpoints().into_iter().collect();
        for endpoint in self.outage_until.keys().cloned().collect::<Vec<_>>() {
            if self.outage_until[&endpoint] <= now {
                self.outage_until.remove(&endpoint);
                if up.contains(&endpoint) {
                    self.livy.set_unreachable(&endpoint, false);
                    self.log(now, format!("{endpoint} reachable again"));
                }
            }
        }
        for endpoint in &up {
            if !self.outage_until.contains_key(endpoint) && self.rng.chance(per_step_outage) {
                let until = now + self.rng.range(STEP_SECS, faults.livy_outage_max_secs.max(STEP_SECS));
                self.outage_until.insert(endpoint.clone(), until);
                self.livy.set_unreachable(endpoint, true);
                self.log(now, format!("{endpoint} unreachable until t+{}s", until - T0.0));
            }
            if self.rng.chance(per_step_restart) {
                self.livy.restart(endpoint);
                // Ids start again at 0, so a new batch may take an id and name seen before the
                // restart: it is a new batch all the same.
                self.seen_batches.retain(|(seen_at, _, _)| seen_at != endpoint);
                self.report.livy_restarts += 1;
                self.log(now, format!("{endpoint} restarted: every batch forgotten, ids from 0"));
            }
        }
        if now >= self.next_forget {
            self.next_forget += LIVY_RETAIN_SECS;
            for endpoint in &up {
                self.livy.forget_finished(endpoint);
            }
        }
    }

    /// Turns new Livy batches into Spark applications, and moves applications along: each
    /// writes its files and result when it finishes, whether or not Livy still knows its batch.
    fn spark(&mut self, now: i64, faults: &Faults) {
        for endpoint in self.endpoints() {
            let submissions = self.livy.submissions(&endpoint);
            if self.submissions_seen.get(&endpoint) == Some(&submissions) {
                continue;
            }
            self.submissions_seen.insert(endpoint.clone(), submissions);
            for (id, submission, phase) in self.livy.batches(&endpoint) {
                let seen = (endpoint.clone(), id, submission.name.clone());
                if self.seen_batches.contains(&seen) || phase.is_final() {
                    continue;
                }
                self.seen_batches.insert(seen);
                let Some((group, attempt, windows)) = spec_of(&submission.args, &self.specs) else {
                    self.violation(now, format!("batch {} has no readable run or group spec", submission.name));
                    continue;
                };
                let roll = self.rng.unit();
                let fate = if roll < faults.spark_fails {
                    AppFate::Fails
                } else if roll < faults.spark_fails + faults.spark_dies_silently {
                    AppFate::DiesSilently
                } else if roll < faults.spark_fails + faults.spark_dies_silently + faults.spark_hangs {
                    AppFate::Hangs
                } else {
                    AppFate::Succeeds
                };
                let duration = if fate == AppFate::Hangs {
                    self.report.spark_hangs += 1;
                    self.rng.range(3 * 3600, 12 * 3600)
                } else {
                    self.rng.range(40, 240)
                };
                self.report.spark_applications += 1;
                // A run's attempt fails whole; a group's failing attempt fails some of its
                // members (each of which the control plane retries alone).
                let mut members = Vec::new();
                for (run_key, output_prefix) in windows {
                    let fails = fate == AppFate::Fails && (group.is_none() || self.rng.chance(0.5));
                    members.push(AppMember { run_key, output_prefix, fails });
                }
                for loss in &mut self.losses {
                    for member in &members {
                        let moved = loss.runs.get(&member.run_key).is_some_and(|a| attempt > *a);
                        if moved && loss.endpoint.as_deref() != Some(endpoint.as_str()) {
                            loss.back_at.entry(member.run_key.clone()).or_insert(now);
                        }
                    }
                }
                self.apps.push(SparkApp {
                    endpoint: endpoint.clone(),
                    name: submission.name.clone(),
                    group,
                    attempt,
                    members,
                    started: now,
                    finishes: now + duration,
                    fate,
                    done: false,
                });
            }
        }
        let mut finished = Vec::new();
        for app in self.apps.iter_mut().filter(|a| !a.done) {
            if app.finishes <= now {
                app.done = true;
                finished.push(app.clone());
            } else if now - app.started >= 20 {
                self.livy.set_phase(&app.endpoint, &app.name, BatchPhase::Running);
            }
        }
        self.apps.retain(|a| !a.done);
        for app in finished {
            // Without a result when the application dies silently; otherwise one per window.
            let reported = app.fate != AppFate::DiesSilently;
            let mut results = Vec::new();
            for member in app.members.iter().filter(|_| reported) {
                let outcome = if member.fails { AttemptOutcome::Failed } else { AttemptOutcome::Succeeded };
                let rows = 100 + (member.run_key.window_lo.0 % 97) as u64;
                if outcome == AttemptOutcome::Succeeded {
                    self.lake.insert((member.run_key.to_string(), app.attempt.0), rows);
                }
                results.push(AttemptResult {
                    run_key: member.run_key.to_string(),
                    attempt: app.attempt,
                    outcome,
                    rows_read: rows,
                    rows_written: if outcome == AttemptOutcome::Succeeded { rows } else { 0 },
                    checks: vec![Check {
                        name: "row_count_reconciled".into(),
                        passed: outcome == AttemptOutcome::Succeeded,
                        detail: String::new(),
                    }],
                    schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
                    schema_verdict: "unchanged".into(),
                    schema_change: String::new(),
                    output_prefix: member.output_prefix.clone(),
                    message: String::new(),
                    finished_at: UnixTime(now),
                });
            }
            let all_succeeded = reported && app.members.iter().all(|m| !m.fails);
            let phase = if all_succeeded { BatchPhase::Succeeded } else { BatchPhase::Failed };
            let written = match (&app.group, reported) {
                (_, false) => Ok(()),
                (Some(group), true) => block_on(self.store.put_group_result(&GroupResult {
                    group: group.clone(),
                    attempt: app.attempt,
                    members: results,
                    finished_at: UnixTime(now),
                })),
                (None, true) => results.iter().try_for_each(|r| block_on(self.store.put_attempt_result(r))),
            };
            written.expect("the in-memory store does not fail");
            self.livy.set_phase(&app.endpoint, &app.name, phase);
            self.log(now, format!("spark {} finished: {:?}", app.name, app.fate));
        }
    }

    /// Runs the handlers for `deliveries` (each with the number of times Lambda already retried it)
    /// at once, and has Lambda retry those that failed.
    fn invoke(&mut self, now: i64, deliveries: Vec<(Delivery, usize)>, faults: &Faults) {
        for endpoint in self.endpoints() {
            if self.rng.chance(faults.livy_response_lost) {
                self.livy.lose_next_response(&endpoint);
            }
        }
        if self.rng.chance(faults.emr_response_lost) {
            self.emr.lose_next_response();
        }
        let stores: Vec<FaultyStore<'_>> = deliveries
            .iter()
            .map(|_| {
                let die_at_op =
                    if self.rng.chance(faults.invocation_dies) { Some(self.rng.range(0, 80) as u64) } else { None };
                let faults = StoreFaults {
                    fail_before: faults.store_fail_before,
                    lose_after: faults.store_lose_after,
                    die_at_op,
                    unconditional_updates: self.config.broken_conditional_writes,
                };
                FaultyStore::new(&self.store, faults, self.rng.split())
            })
            .collect();
        let at = UnixTime(now);
        let (livy, emr, lifecycle, specs, ledger) =
            (&self.livy, &self.emr, &self.lifecycle, &self.specs, self.config.ledger);
        let invocations: Vec<Invocation<'_, Handled>> = stores
            .iter()
            .zip(&deliveries)
            .map(|(store, delivery)| {
                let future: Boxed<'_> = match delivery.0.clone() {
                    Delivery::Tick => Box::pin(async move {
                        let tick = match ledger {
                            Ledger::Runs => scheduler_tick(store, livy, at, &lifecycle.scheduler).await,
                            Ledger::Grouped => grouped_tick(store, livy, specs, at, &lifecycle.scheduler).await,
                        };
                        let failed = tick.as_ref().map_or(true, |r| !r.failures.is_empty());
                        let line = match tick {
                            Ok(r) => format!(
                                "tick: due {} cut {} submitted {} published {} committed {} retried {} failed {} \
                                 waiting {} conflicts {} errors {}",
                                r.jobs_due,
                                r.windows_cut,
                                r.runs_submitted,
                                r.runs_published,
                                r.windows_committed,
                                r.runs_retried,
                                r.runs_failed,
                                r.runs_waiting_for_a_cluster,
                                r.conflicts,
                                r.failures.len()
                            ),
                            Err(e) => format!("tick failed: {e}"),
                        };
                        Handled { line, drained: 0, quiet: false, failed }
                    }),
                    Delivery::Watch(signal) => Box::pin(async move {
                        let result = watch(store, emr, livy, specs, signal.as_ref(), at, lifecycle).await;
                        describe_lifecycle(&format!("watch {signal:?}"), result)
                    }),
                    Delivery::Rotate => Box::pin(async move {
                        describe_lifecycle("rotate", rotate(store, emr, livy, specs, at, lifecycle).await)
                    }),
                };
                Invocation { future, crashed: store.crashed.clone() }
            })
            .collect();
        let outcomes = run_concurrently(invocations, &mut self.rng);
        let mut lines = Vec::new();
        let mut quiet = true;
        let mut failed = Vec::new();
        for ((store, outcome), (delivery, tried)) in stores.iter().zip(outcomes).zip(deliveries) {
            self.report.invocations += 1;
            self.report.store_operations += store.ops();
            self.report.store_writes += store.writes();
            self.report.index_writes += store.index_writes();
            let failure = match outcome {
                None => {
                    self.report.invocations_died += 1;
                    quiet = false;
                    lines.push(format!("invocation died after {} store operations", store.ops()));
                    true
                }
                Some(handled) => {
                    self.report.rotations += handled.drained;
                    quiet &= handled.quiet;
                    lines.push(handled.line);
                    handled.failed
                }
            };
            if failure {
                failed.push((delivery, tried));
            }
        }
        drop(stores);
        for line in lines {
            self.log(now, line);
        }
        for (delivery, tried) in failed {
            if let Some(delay) = LAMBDA_RETRY_DELAYS_SECS.get(tried) {
                self.log(now, format!("Lambda retries {delivery:?} at t+{}s", now + delay - T0.0));
                self.lambda_retries.push((now + delay, delivery, tried + 1));
            }
        }
        if !quiet {
            self.check(now);
        }
    }

    /// The on-call operator: a run that exhausted its attempts raises an alarm; some time later a
    /// person fixes the cause and retries it (`norris runs retry`).
    fn operator(&mut self, now: i64, faults: &Faults) {
        if (now - T0.0) % OPERATOR_LOOKS_EVERY_SECS != 0 {
            return;
        }
        let failed: Vec<RunKey> = self
            .checker
            .failed()
            .filter(
                |r| matches!(r.status, RunStatus::Failed { at, .. } if at.0 + faults.operator_retry_after_secs <= now),
            )
            .map(|r| r.key())
            .collect();
        let retried = !failed.is_empty();
        for key in failed {
            let outcome = match (self.config.ledger, self.member_groups.get(&key)) {
                (Ledger::Runs, _) => {
                    block_on(norris_control::follow::retry_failed_run(&self.store, UnixTime(now), &key))
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                (Ledger::Grouped, Some(group)) => {
                    match block_on(retry_failed_member(&self.store, UnixTime(now), group, &key.job_id, key.window_lo)) {
                        Ok(_) => Ok(()),
                        // Its group's attempt is placed (other members run): try again later.
                        Err(RetryMemberError::Busy(why)) => {
                            self.log(now, format!("operator waits to retry {key}: {why}"));
                            continue;
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                (Ledger::Grouped, None) => Err("no group holds it".to_string()),
            };
            match outcome {
                Ok(()) => {
                    self.report.operator_retries += 1;
                    self.log(now, format!("operator retried {key}"));
                }
                Err(e) => self.violation(now, format!("operator could not retry {key}: {e}")),
            }
        }
        if retried {
            self.check(now);
        }
    }

    fn check(&mut self, now: i64) {
        let written = match self.config.ledger {
            Ledger::Runs => {
                let (written, seen_to) = self.store.runs_written_since(self.runs_seen_to);
                self.runs_seen_to = seen_to;
                written
            }
            Ledger::Grouped => {
                let (groups, seen_to) = self.store.groups_written_since(self.groups_seen_to);
                self.groups_seen_to = seen_to;
                self.members_as_runs(now, &groups)
            }
        };
        let states = self.job_states();
        let live: Vec<(String, RunKey, u32)> = self
            .apps
            .iter()
            .filter(|a| !a.done)
            .flat_map(|a| a.members.iter().map(|m| (a.endpoint.clone(), m.run_key.clone(), a.attempt.0)))
            .collect();
        let found = self.checker.check(now, &written, &states, &self.lake, &live);
        for v in found {
            self.violation(now, v);
        }
        let clusters = block_on(self.store.list_clusters()).expect("the in-memory store does not fail");
        let terminated: BTreeSet<&ClusterKey> =
            clusters.iter().filter(|c| matches!(c.state, ClusterState::Terminated { .. })).map(|c| &c.key).collect();
        let mut stranded: BTreeMap<ClusterKey, Vec<String>> = BTreeMap::new();
        for (key, run, _) in self.placed() {
            if terminated.contains(&key) {
                stranded.entry(key).or_default().push(run.to_string());
            }
        }
        for (key, runs) in stranded {
            self.violation(now, format!("cluster {key} is terminated with unfinished runs on it: {runs:?}"));
        }
        // Recovery: every run that was on a lost cluster runs again elsewhere (or is done); the
        // loss is recovered from when the last of them is back.
        let mut recovered = Vec::new();
        for (i, loss) in self.losses.iter_mut().enumerate() {
            for key in loss.runs.keys() {
                let done = self
                    .checker
                    .run(key)
                    .is_none_or(|r| matches!(r.status, RunStatus::Published { .. } | RunStatus::Failed { .. }));
                if done {
                    loss.back_at.entry(key.clone()).or_insert(now);
                }
            }
            if loss.runs.keys().all(|k| loss.back_at.contains_key(k)) {
                let last_back = loss.back_at.values().copied().max().unwrap_or(now);
                recovered.push((i, (last_back - loss.at).max(0)));
            }
        }
        for (i, secs) in recovered.into_iter().rev() {
            self.losses.remove(i);
            self.report.recovery_secs.push(secs);
        }
    }

    fn violation(&mut self, now: i64, what: String) {
        self.report.invariant_violations.push(format!("t+{}s {what}", now - T0.0));
    }

    /// After the heal period every window that was due when the faults stopped must be committed.
    fn liveness(&mut self, end: i64) {
        let fault_end = T0.0 + self.config.fault_secs;
        let due_by = UnixTime(fault_end - LAG_SECS).align_down(INTERVAL_SECS).0;
        let per_job = ((due_by - T0.0) / INTERVAL_SECS).max(0) as u64;
        self.report.windows_expected = per_job * u64::from(self.config.jobs);
        let states = self.job_states();
        let mut committed = 0u64;
        for i in 0..self.config.jobs {
            let id = format!("sim.job{i:04}");
            let watermark = states.iter().find(|s| s.job_id.as_str() == id).map_or(T0.0, |s| s.watermark.0.max(T0.0));
            committed += ((watermark.min(due_by) - T0.0) / INTERVAL_SECS).max(0) as u64;
            if watermark < due_by && self.report.invariant_violations.is_empty() {
                // What holds the watermark: the run at it.
                let stuck = match self.config.ledger {
                    Ledger::Runs => self.store.all_runs(),
                    Ledger::Grouped => self.members_as_runs(end, &self.store.all_groups()),
                }
                .into_iter()
                .find(|r| r.job_id.as_str() == id && r.window.lo.0 == watermark)
                .map_or("no run".to_string(), |r| {
                    format!("{:?} attempt {} ({:?})", r.status, r.attempt, r.last_outcome)
                });
                self.violation(
                    end,
                    format!(
                        "liveness: {id} committed up to t+{}s, not t+{}s, {}s after the faults healed; the run there: {stuck}",
                        watermark - T0.0,
                        due_by - T0.0,
                        self.config.heal_secs
                    ),
                );
            }
        }
        self.report.windows_committed = committed;
        let ledger = block_on(self.store.list_clusters()).expect("the in-memory store does not fail");
        let unowned: Vec<String> = self
            .emr
            .clusters()
            .into_iter()
            .filter(|e| !e.state.is_ending())
            .filter(|e| {
                !ledger.iter().any(|c| {
                    c.emr_cluster_id.as_deref() == Some(e.id.as_str())
                        && !matches!(c.state, ClusterState::Terminated { .. } | ClusterState::Lost { .. })
                })
            })
            .map(|e| e.id)
            .collect();
        self.report.clusters_unowned_at_end = unowned.len() as u64;
        if !unowned.is_empty() {
            self.violation(end, format!("EMR clusters left running that the ledger does not own: {unowned:?}"));
        }
        if !self.losses.is_empty() {
            let keys: Vec<String> = self.losses.iter().map(|l| l.cluster.to_string()).collect();
            self.violation(end, format!("runs of lost clusters {keys:?} never ran again"));
        }
        self.report.windows_lost = self.report.windows_expected - committed;
    }

    fn finish(mut self) -> SimReport {
        let mut freshness = self.checker.freshness_secs.clone();
        freshness.sort_unstable();
        let pick = |q: f64| -> i64 {
            if freshness.is_empty() {
                return 0;
            }
            let i = ((freshness.len() as f64 - 1.0) * q).round() as usize;
            freshness[i]
        };
        self.report.freshness_p50_secs = pick(0.5);
        self.report.freshness_p99_secs = pick(0.99);
        self.report.freshness_max_secs = freshness.last().copied().unwrap_or(0);
        self.report.windows_duplicated = self.checker.duplicated;
        self.report.batches_submitted =
            self.emr.clusters().iter().filter_map(|c| c.livy_endpoint()).map(|e| self.livy.submissions(&e)).sum();
        self.report.clusters_launched = self.emr.launches();
        self.report.store_reads = self.report.store_operations - self.report.store_writes;
        self.report.freshness_over_time = self.checker.freshness_at.clone();
        self.costs();
        let mut recovery = self.report.recovery_secs.clone();
        recovery.sort_unstable();
        let at = |q: f64| recovery.get(((recovery.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0);
        self.report.recovery_p50_secs = at(0.5);
        self.report.recovery_p99_secs = at(0.99);
        self.report.trace = self.trace.into_iter().collect();
        self.report
    }
}

/// The grouped ledger seen as the per-window one, so one checker judges both: a group's member
/// is a run (its attempt the group's, or the one that published it), a shard's line a job state.
impl World {
    /// The windows placed on a cluster and not finished, with their attempt: `(cluster, window,
    /// attempt)`.
    fn placed(&self) -> Vec<(ClusterKey, RunKey, Attempt)> {
        let failed = "the in-memory store does not fail";
        match self.config.ledger {
            Ledger::Runs => block_on(self.store.active_runs())
                .expect(failed)
                .into_iter()
                .filter_map(|r| Some((r.status.cluster()?.clone(), r.key(), r.attempt)))
                .collect(),
            Ledger::Grouped => block_on(self.store.open_groups())
                .expect(failed)
                .into_iter()
                .filter_map(|g| Some((g.status.cluster()?.clone(), g)))
                .flat_map(|(cluster, g)| {
                    g.to_do().map(|m| (cluster.clone(), member_key(m), g.attempt)).collect::<Vec<_>>()
                })
                .collect(),
        }
    }

    /// Every job's watermark, as job states.
    fn job_states(&self) -> Vec<JobState> {
        match self.config.ledger {
            Ledger::Runs => self.store.all_job_states(),
            Ledger::Grouped => self
                .store
                .all_shards()
                .into_iter()
                .flat_map(|shard| shard.jobs.into_iter())
                .map(|(job_id, line)| JobState {
                    job_id,
                    definition_hash: line.definition_hash,
                    validity: line.validity,
                    watermark: line.watermark,
                    next_window_lo: line.next_window_lo,
                    due_at: None,
                    accepted_schema: None,
                    version: Version::INITIAL,
                })
                .collect(),
        }
    }

    /// The members of `groups` as runs; a window found in a second group is a violation (cut
    /// twice).
    fn members_as_runs(&mut self, now: i64, groups: &[Group]) -> Vec<Run> {
        let mut runs = Vec::new();
        for group in groups {
            for member in &group.members {
                let key = member_key(member);
                match self.member_groups.get(&key) {
                    Some(first) if *first != group.key => {
                        let what = format!("{key} was cut twice: into group {first} and into group {}", group.key);
                        self.violation(now, what);
                    }
                    Some(_) => {}
                    None => {
                        self.member_groups.insert(key, group.key.clone());
                    }
                }
                runs.push(member_as_run(group, member));
            }
        }
        runs
    }
}

fn member_key(member: &norris_model::Member) -> RunKey {
    RunKey { job_id: member.job_id.clone(), window_lo: member.window.lo }
}

/// A member as the run it stands for.
fn member_as_run(group: &Group, member: &norris_model::Member) -> Run {
    let at = group.updated_at;
    let (attempt, status) = match &member.state {
        MemberState::Published { attempt, rows } => {
            (*attempt, RunStatus::Published { prefix: format!("{}/attempt={attempt}", group.key), rows: *rows, at })
        }
        MemberState::Failed { reason } | MemberState::Quarantined { reason } => {
            (group.attempt, RunStatus::Failed { reason: reason.clone(), at })
        }
        MemberState::ToDo => (
            group.attempt,
            match &group.status {
                GroupStatus::Submitting { cluster, since } => {
                    RunStatus::Submitting { cluster: cluster.clone(), since: *since }
                }
                GroupStatus::Running { cluster, batch, since } => {
                    RunStatus::Running { cluster: cluster.clone(), batch: batch.clone(), since: *since }
                }
                GroupStatus::Pending { not_before } => RunStatus::Pending { not_before: *not_before },
                // Settled with a member to do is not a state the tick writes; shown as pending.
                GroupStatus::Settled { at } => RunStatus::Pending { not_before: *at },
            },
        ),
    };
    Run {
        job_id: member.job_id.clone(),
        window: member.window,
        attempt,
        failures: member.failures,
        status,
        created_at: group.created_at,
        updated_at: group.updated_at,
        last_outcome: group.last_outcome.clone(),
        version: group.version,
    }
}

impl World {
    /// Cluster node-hours by market and their cost; the control plane's cost per month.
    fn costs(&mut self) {
        let end = T0.0 + self.config.fault_secs + self.config.heal_secs;
        let on_demand_only = self.config.strategy == Strategy::OnDemandOnly;
        let (mut od, mut spot, mut usd) = (0.0, 0.0, 0.0);
        for c in self.emr.clusters() {
            let from = c.created_at.map_or(T0.0, |t| t.0);
            let to = self.ended.get(&c.id).copied().unwrap_or(end);
            let hours = (to - from).max(0) as f64 / 3600.0;
            // The sim's pool: primary and core one m7g.xlarge each on demand; task 2 m7g.2xlarge.
            od += 2.0 * hours;
            usd += 2.0 * hours * (prices::M7G_XLARGE + prices::EMR_M7G_XLARGE);
            if on_demand_only {
                od += 2.0 * hours;
                usd += 2.0 * hours * (prices::M7G_2XLARGE + prices::EMR_M7G_2XLARGE);
            } else {
                spot += 2.0 * hours;
                usd += 2.0 * hours * (prices::M7G_2XLARGE * prices::SPOT_SHARE + prices::EMR_M7G_2XLARGE);
            }
        }
        self.report.node_hours_on_demand = od;
        self.report.node_hours_spot = spot;
        self.report.cluster_cost_usd = (usd * 100.0).round() / 100.0;
        let month = 30.0 * 86_400.0 / (self.config.fault_secs + self.config.heal_secs) as f64;
        let invocations = self.report.invocations as f64 * month;
        let lambda = invocations * (prices::LAMBDA_PER_REQUEST + prices::LAMBDA_GB_SECOND * prices::ASSUMED_GB_SECONDS);
        let dynamo = ((self.report.store_writes + self.report.index_writes) as f64 * prices::DYNAMO_WRITE_UNIT
            + self.report.store_reads as f64 * prices::DYNAMO_READ_UNIT)
            * month;
        self.report.control_plane_cost_usd_month = ((lambda + dynamo) * 100.0).round() / 100.0;
    }
}

/// List prices (us-east-1) the cost figures use. EC2 and EMR prices are on-demand list prices per
/// node-hour as published for late 2025; spot is taken at a fixed share of on-demand (spot prices
/// move; the share is the assumption to change). Lambda and DynamoDB as in reference.md.
pub mod prices {
    /// m7g.xlarge on demand, per hour.
    pub const M7G_XLARGE: f64 = 0.1632;
    /// m7g.2xlarge on demand, per hour.
    pub const M7G_2XLARGE: f64 = 0.3264;
    /// EMR's uplift for m7g.xlarge, per hour.
    pub const EMR_M7G_XLARGE: f64 = 0.0408;
    /// EMR's uplift for m7g.2xlarge, per hour.
    pub const EMR_M7G_2XLARGE: f64 = 0.0816;
    /// Spot price as a share of on demand (assumed).
    pub const SPOT_SHARE: f64 = 0.4;
    /// Lambda, per request.
    pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda x86, per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
    /// GB-seconds per invocation assumed: 512 MB for 0.5 s (the functions mostly wait on the network).
    pub const ASSUMED_GB_SECONDS: f64 = 0.25;
    /// DynamoDB on demand, per write request unit.
    pub const DYNAMO_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on demand, per (strongly consistent) read request unit.
    pub const DYNAMO_READ_UNIT: f64 = 0.125 / 1e6;
    /// S3 standard, per PUT request (a group attempt's spec).
    pub const S3_PUT_REQUEST: f64 = 0.005 / 1e3;
    /// S3 standard, per GET request (the application reading its spec).
    pub const S3_GET_REQUEST: f64 = 0.0004 / 1e3;
}

/// The fault trace's spot interruptions: a Poisson process at the configured rate per cluster,
/// for as many clusters as the pool keeps, drawn from the seed alone.
fn spot_plan(config: &SimConfig) -> VecDeque<(i64, u64, bool)> {
    let mut rng = SimRng::new(config.seed ^ 0x5107_5107);
    let per_sec = config.faults.spot_interruptions_per_month * f64::from(config.clusters) / (30.0 * 86_400.0);
    let mut plan = VecDeque::new();
    if per_sec <= 0.0 {
        return plan;
    }
    let mut t = T0.0 as f64;
    loop {
        t += -(1.0 - rng.unit()).ln() / per_sec;
        if t >= (T0.0 + config.fault_secs) as f64 {
            return plan;
        }
        plan.push_back((t as i64, rng.next_u64(), rng.chance(config.faults.spot_warning_delivered)));
    }
}

/// The three strategies on one fault trace.
pub fn simulate_strategies(config: &SimConfig) -> BTreeMap<&'static str, SimReport> {
    simulate_some(config, &Strategy::ALL)
}

/// The named strategies on one fault trace.
pub fn simulate_some(config: &SimConfig, strategies: &[Strategy]) -> BTreeMap<&'static str, SimReport> {
    strategies.iter().map(|&strategy| (strategy.key(), simulate(&SimConfig { strategy, ..config.clone() }))).collect()
}

fn describe_lifecycle(what: &str, result: Result<ClusterReport, norris_control::clusters::LifecycleError>) -> Handled {
    match result {
        Ok(r) => {
            let line = format!(
                "{what}: ready {:?} lost {:?} launched {:?} drained {:?} terminated {:?} moved {} placed {} \
                 groups moved {} placed {} orphans {:?} failures {:?}",
                r.became_ready,
                r.lost,
                r.launched,
                r.drained,
                r.terminated,
                r.runs_moved,
                r.runs_placed_again,
                r.groups_moved,
                r.groups_placed_again,
                r.orphans_terminated,
                r.failures
            );
            // What a pass found waiting is no write.
            let quiet = ClusterReport { groups_waiting: None, ..r.clone() } == ClusterReport::default();
            Handled { line, drained: r.drained.len() as u64, quiet, failed: !r.failures.is_empty() }
        }
        Err(e) => Handled { line: format!("{what} failed: {e}"), drained: 0, quiet: false, failed: true },
    }
}
