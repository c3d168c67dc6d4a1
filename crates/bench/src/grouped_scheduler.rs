//! The scheduler tick benchmark on the grouped ledger: the real `norris_control::grouped::grouped_tick`
//! (what the scheduler Lambda runs) over `MemoryStore`, `MemoryLivy` and `MemorySpecs`, in a
//! steady state where the due shards hold 1% of the jobs, with every store operation counted and
//! translated into the DynamoDB requests the adapter would send, every spec written (an S3 PUT)
//! and every Livy call counted, against the minimum the work needs
//! (`dynamo_model::grouped_minimum`).
//!
//! The set-up (printed with the figures): the per-window benchmark's jobs
//! (`scheduler::job_document`): a 5-minute interval, lag 60 s + 3 s × (index mod 100). A cohort is
//! a size class, an interval and a phase (the lag modulo the interval), so the jobs fall in 100
//! cohorts, each in shards of at most `SHARD_MAX_JOBS` jobs. Tick k (window end + 60 s + 3k s)
//! finds cohort k's shards due, 1% of the jobs; the other 99 cohorts' shards are due later, so a
//! read that grew with all jobs rather than with the due shards would show as requests growing
//! with the job count (and the constant-work series, 1,000 jobs rotating among daily jobs whose
//! shards are not due, would not stay flat). The jobs are placed in their shards by one tick at
//! the windows' start, whose definition sweep holds its claim for a day (measured ticks do not
//! sweep, as in 14 of every 15 minutes); every job's accepted schema is written. Between ticks
//! the world plays Spark and Livy: a group submitted at tick k runs through tick k+1 (followed:
//! Livy says running, no result), then its application writes its result (every member
//! succeeded, the schema unchanged, compact as `extract.py` writes it) and its batch succeeds, so
//! tick k+2 settles it, folds it into its shard (read by key: not due then) and marks it
//! committed; Livy forgets finished batches. After three warm-up ticks every measured tick cuts
//! and submits cohort k, follows cohort k-1, settles and commits cohort k-2.

use crate::counting::{BatchStats, CountingStore, NetworkLatency, SpecStats, StoreStats, TimedLivy, TimedSpecs};
use crate::dynamo_model::{self, Api, GroupedWork, ItemSizes, MinimumLine, Op};
use crate::scheduler::{
    config, endpoint, index_of, item_sizes, job_document, job_id, median_duration, ms, pool_document_with, tick_time,
    Excess, NetworkWait, OpRow, Spread, ASSUMED_LATENCY, MAX_DUE, PASS_REPS, SCHEMA, SLOTS, T0, WARMUP_TICKS,
};
use anyhow::{bail, Context};
use norris_control::grouped::grouped_tick;
use norris_control::{SchedulerConfig, TickReport};
use norris_engine::groups::group_batch_name;
use norris_model::{
    AttemptOutcome, AttemptResult, BatchPhase, Cluster, ClusterKey, ClusterState, Group, GroupKey, GroupResult,
    GroupStatus, JobId, Shard, ShardKey, SizeClass, UnixTime, Version, SHARD_MAX_JOBS,
};
use norris_ports::{DefinitionRecord, GroupStore, MemoryLivy, MemorySpecs, MemoryStore, StateStore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Batch slots per cluster: a group attempt is one Spark application running up to
/// `GROUP_MAX_PARALLEL` members at once, so a cluster runs a few, not hundreds (as the cost
/// benchmark assumes).
const GROUP_SLOTS_PER_CLUSTER: u32 = 4;

/// The set-up text printed with the figures.
pub fn setup_text() -> Vec<String> {
    vec![
        "the per-window benchmark's jobs: 5-minute interval, lag 60 s + 3 s x (index mod 100); a cohort is size class + interval + phase (lag mod interval), so 100 cohorts, each in shards of at most 256 jobs".into(),
        "tick k runs at window end + 60 s + 3k s and finds cohort k's shards due: they hold 1% of the jobs; the other 99 cohorts' shards are due later (a read growing with all jobs would show as requests growing with the job count)".into(),
        "jobs placed in their shards by one grouped tick at the windows' start (its definition sweep claimed for a day, so measured ticks do not sweep, as in 14 of 15 minutes); every job's accepted schema written".into(),
        "world between ticks: a group submitted at tick k is running at k+1 (Livy: running, no result), then writes its result (every member succeeded, schema unchanged) and succeeds; k+2 settles it, folds it into its shard, marks it committed; Livy forgets finished batches".into(),
        format!("steady state after {WARMUP_TICKS} warm-up ticks: each tick cuts+submits cohort k, follows cohort k-1, settles+commits cohort k-2; clusters: {GROUP_SLOTS_PER_CLUSTER} batch slots each (a slot runs a group attempt), enough ready ones for ~75% load"),
        "constant-work series: only 1,000 jobs rotate (cohorts of 10), the others are daily jobs in one cohort whose shards are not due: the same work over 10,000 and 100,000 jobs".into(),
        "timing: tokio current-thread runtime (one core), release profile, no tracing subscriber; the store, Livy and spec models are timed separately by the counting wrappers".into(),
    ]
}

/// The figures of one size.
#[derive(Debug, Clone, Serialize)]
pub struct GroupedSizeResult {
    /// `1% due` or `constant work`.
    pub series: &'static str,
    /// Jobs in the tables.
    pub jobs: usize,
    /// Jobs in the 5-minute rotation (the rest are daily jobs, not due).
    pub hot_jobs: usize,
    /// Shards they are in.
    pub shards: usize,
    /// Ready clusters.
    pub clusters: usize,
    /// Ticks measured.
    pub ticks: usize,
    /// Shards due at the tick (median tick).
    pub due_shards: usize,
    /// Jobs in them.
    pub due_jobs: usize,
    /// Groups open at the tick (the `active` index's content).
    pub open_groups: usize,
    /// Of those, placed groups followed.
    pub followed_groups: usize,
    /// Windows cut, group attempts submitted, windows published, windows committed.
    pub cut_submitted_published_committed: [usize; 4],
    /// Whole tick, wall time (ms).
    pub tick_ms: Spread,
    /// Time inside `MemoryStore` (ms, median tick): the in-memory model, not norris.
    pub store_model_ms: f64,
    /// Time inside `MemoryLivy` (ms, median tick).
    pub livy_model_ms: f64,
    /// Time inside `MemorySpecs` (ms, median tick).
    pub specs_model_ms: f64,
    /// Tick minus the models' time (ms, median): the handler and the engine.
    pub handler_ms: f64,
    /// Parsing and hashing the definition documents the tick reads (ms, median): inside the
    /// store's time here, done by the DynamoDB adapter in production.
    pub parse_definitions_ms: f64,
    /// Handler plus parsing, per tick (ms): the CPU a tick needs whatever the store.
    pub norris_ms: Spread,
    /// Store operations of the median tick.
    pub ops: Vec<OpRow>,
    /// DynamoDB requests of the median tick.
    pub requests: u64,
    /// Smallest and largest request count over the measured ticks.
    pub requests_range: [u64; 2],
    /// DynamoDB requests by API.
    pub requests_by_api: BTreeMap<&'static str, u64>,
    /// Specs written (S3 PUTs) in the median tick.
    pub spec_puts: u64,
    /// Livy look-ups, submissions and other calls (kill, ping) in the median tick.
    pub livy_finds_submits_others: [u64; 3],
    /// The work, as the minimum model sees it.
    pub work: GroupedWork,
    /// The minimum model's lines.
    pub minimum: Vec<MinimumLine>,
    /// Its total.
    pub minimum_requests: u64,
    /// The fewest S3 PUTs and Livy calls: a spec and a submission per attempt, a look-up per
    /// followed group.
    pub minimum_spec_puts_and_livy_calls: [u64; 2],
    /// Where the requests above the minimum go (they add up to `requests - minimum_requests`).
    pub excess: Vec<Excess>,
    /// `requests / minimum_requests`.
    pub ratio: f64,
    /// The ratio against a stricter minimum that leaves out the definitions needed only for the
    /// followed groups (the attempt's timeout comes from its members' retry policies,
    /// `group_attempt_timeout_secs`; a group that kept it would not need them every tick).
    pub ratio_without_followed_definitions: f64,
    /// Items DynamoDB would read (keys fetched plus items returned).
    pub items_read: u64,
    /// Requests of the definition sweep (once per sweep interval, one tick): every shard through
    /// the `due` index and by key, and a scan of every definition.
    pub sweep_requests: u64,
}

/// The world a series ticks: the ledger and the services, wrapped to count what the tick asks.
struct World {
    store: CountingStore<MemoryStore>,
    livy: TimedLivy<MemoryLivy>,
    specs: TimedSpecs<MemorySpecs>,
    clusters: Vec<Cluster>,
    hot_jobs: usize,
    shards: usize,
}

async fn build_world(jobs: usize, hot_jobs: usize, sizes: ItemSizes, latency: NetworkLatency) -> anyhow::Result<World> {
    let store = MemoryStore::new();
    store.put_pool_document(&pool_document_with(GROUP_SLOTS_PER_CLUSTER)).await?;
    for i in 0..jobs {
        store.put_job_document(&job_document(i, i < hot_jobs)).await?;
        store.put_schema(&JobId::new(job_id(i)), SCHEMA).await?;
    }
    // In flight at a steady tick: three ticks' groups (new, followed, finishing), one per shard of
    // a hot cohort.
    let shards_per_cohort = hot_jobs.div_ceil(SLOTS).div_ceil(SHARD_MAX_JOBS).max(1);
    let clusters = (3 * shards_per_cohort).div_ceil((GROUP_SLOTS_PER_CLUSTER as usize * 3) / 4).max(1);
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
    // The sweep places every job; its claim is held for a day, so measured ticks do not sweep.
    let (livy, specs) = (MemoryLivy::new(), MemorySpecs::new());
    let set_up = SchedulerConfig { definition_sweep_secs: 86_400, ..config() };
    let report = grouped_tick(&store, &livy, &specs, T0, &set_up).await?;
    if report.definitions_reconciled != jobs
        || !report.invalid_jobs.is_empty()
        || !report.failures.is_empty()
        || report.windows_cut > 0
    {
        bail!("the set-up tick did not place every job cleanly: {report:?}");
    }
    let shards = store.all_shards();
    if shards.iter().any(|s| s.due_at.is_none_or(|at| at <= T0)) {
        bail!("a shard is due at set-up");
    }
    Ok(World {
        store: CountingStore::new(store, sizes).with_latency(latency),
        livy: TimedLivy::new(livy).with_latency(latency),
        specs: TimedSpecs::new(specs).with_latency(latency),
        clusters: records,
        hot_jobs,
        shards: shards.len(),
    })
}

/// Plays Spark and Livy between ticks (not timed): forgets finished batches, and finishes every
/// group attempt placed at an earlier tick: its result (every member succeeded, the schema
/// unchanged, as `extract.py` writes it: no schema, no message), then its batch.
async fn advance_world(world: &World, now: UnixTime) -> anyhow::Result<()> {
    let livy = world.livy.inner();
    for c in &world.clusters {
        livy.forget_finished(&endpoint(&c.key));
    }
    for group in world.store.inner().all_groups() {
        let (cluster, since) = match &group.status {
            GroupStatus::Submitting { cluster, since } | GroupStatus::Running { cluster, since, .. } => {
                (cluster, *since)
            }
            GroupStatus::Pending { .. } | GroupStatus::Settled { .. } => continue,
        };
        if group.committed || since >= now {
            continue;
        }
        let members = group
            .to_do()
            .map(|m| AttemptResult {
                run_key: format!("{}@{}", m.job_id, m.window.lo.0),
                attempt: group.attempt,
                outcome: AttemptOutcome::Succeeded,
                rows_read: 1000,
                rows_written: 1000,
                checks: Vec::new(),
                schema_json: String::new(),
                schema_verdict: "unchanged".into(),
                schema_change: String::new(),
                output_prefix: String::new(),
                message: String::new(),
                finished_at: now,
            })
            .collect();
        let result = GroupResult { group: group.key.clone(), attempt: group.attempt, members, finished_at: now };
        world.store.inner().put_group_result(&result).await?;
        if !livy.set_phase(&endpoint(cluster), &group_batch_name(&group), BatchPhase::Succeeded) {
            bail!("Livy does not hold group {}'s batch", group.key);
        }
    }
    Ok(())
}

/// The ledger's shards and groups at one moment (not counted).
struct Snapshot {
    shards: BTreeMap<ShardKey, Shard>,
    groups: BTreeMap<GroupKey, Group>,
}

fn snapshot(store: &MemoryStore) -> Snapshot {
    Snapshot {
        shards: store.all_shards().into_iter().map(|s| (s.key.clone(), s)).collect(),
        groups: store.all_groups().into_iter().map(|g| (g.key.clone(), g)).collect(),
    }
}

/// The shards a tick at `now` finds due, as the store lists them.
fn due_shards(before: &Snapshot, now: UnixTime) -> Vec<&Shard> {
    let mut due: Vec<&Shard> = before.shards.values().filter(|s| s.due_at.is_some_and(|at| at <= now)).collect();
    due.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
    due.truncate(MAX_DUE);
    due
}

/// The minimum model's view of what the tick did, from the ledger before and after it.
fn work_of(world: &World, before: &Snapshot, after: &Snapshot, now: UnixTime) -> GroupedWork {
    let due = due_shards(before, now);
    let due_keys: BTreeSet<&ShardKey> = due.iter().map(|s| &s.key).collect();
    let open: Vec<&Group> = before.groups.values().filter(|g| !g.committed).collect();
    let followed: Vec<&Group> = open.iter().copied().filter(|g| g.status.cluster().is_some()).collect();
    let after_of = |g: &Group| after.groups.get(&g.key);
    let placed: Vec<&Group> = open
        .iter()
        .copied()
        .filter(|g| matches!(g.status, GroupStatus::Pending { .. }))
        .filter(|g| after_of(g).is_some_and(|a| a.status.cluster().is_some()))
        .collect();
    let mut definitions: BTreeSet<&JobId> = due.iter().flat_map(|s| s.jobs.keys()).collect();
    definitions.extend(placed.iter().flat_map(|g| g.to_do().map(|m| &m.job_id)));
    let without_followed = definitions.len();
    definitions.extend(followed.iter().flat_map(|g| g.to_do().map(|m| &m.job_id)));
    let submitted: Vec<&Group> = after
        .groups
        .values()
        .filter(|g| {
            matches!(&g.status,
                GroupStatus::Submitting { since, .. } | GroupStatus::Running { since, .. } if *since == now)
        })
        .collect();
    let schemas: BTreeSet<&JobId> = submitted.iter().flat_map(|g| g.to_do().map(|m| &m.job_id)).collect();
    let ended = followed
        .iter()
        .filter(|g| {
            after_of(g).is_some_and(|a| a.attempt != g.attempt || matches!(a.status, GroupStatus::Settled { .. }))
        })
        .count();
    let committed = open.iter().filter(|g| after_of(g).is_some_and(|a| a.committed)).count();
    let changed: Vec<&ShardKey> = after
        .shards
        .values()
        .filter(|a| {
            before.shards.get(&a.key).is_none_or(|b| (&b.jobs, b.cut_seq, b.due_at) != (&a.jobs, a.cut_seq, a.due_at))
        })
        .map(|s| &s.key)
        .collect();
    GroupedWork {
        due_shards: due.len(),
        due_limit: MAX_DUE,
        due_jobs: due.iter().map(|s| s.jobs.len()).sum(),
        open_groups: open.len(),
        followed_groups: followed.len(),
        definitions: definitions.len(),
        followed_only_definitions: definitions.len() - without_followed,
        schemas: schemas.len(),
        other_shards: changed.iter().filter(|k| !due_keys.contains(*k)).count(),
        groups_created: after.groups.keys().filter(|k| !before.groups.contains_key(*k)).count(),
        groups_placed: placed.len(),
        groups_ended: ended,
        groups_committed: committed,
        shard_writes: changed.len(),
        submissions: submitted.len(),
        clusters: world.clusters.len(),
        pools: 1,
    }
}

/// Parses and hashes the definitions the tick read (the due shards' jobs and every open group's
/// members to do), as the DynamoDB adapter does in production; the median of a few passes.
fn parse_pass(world: &World, before: &Snapshot, now: UnixTime) -> Duration {
    let mut ids: BTreeSet<&JobId> = due_shards(before, now).iter().flat_map(|s| s.jobs.keys()).collect();
    ids.extend(before.groups.values().filter(|g| !g.committed).flat_map(|g| g.to_do().map(|m| &m.job_id)));
    let docs: Vec<(&JobId, serde_json::Value)> = ids
        .into_iter()
        .map(|id| {
            let i = index_of(id).unwrap_or(0);
            (id, job_document(i, i < world.hot_jobs))
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..PASS_REPS {
        let started = Instant::now();
        for (id, doc) in &docs {
            black_box(DefinitionRecord::job(id.as_str(), doc, Vec::new()));
        }
        times.push(started.elapsed());
    }
    median_duration(times)
}

struct Sample {
    tick: Duration,
    stats: StoreStats,
    livy: BatchStats,
    specs: SpecStats,
    report: TickReport,
    work: GroupedWork,
    parse: Duration,
}

impl Sample {
    fn handler(&self) -> Duration {
        self.tick.saturating_sub(self.stats.time() + self.livy.time + self.specs.time)
    }
}

/// Tick `k` of the steady state: its report, its time on tokio's clock (wall time, or virtual
/// time on a paused runtime), and what it asked of the store, Livy and the spec store. Fails
/// unless it was clean.
async fn clean_tick(
    world: &World,
    config: &SchedulerConfig,
    k: usize,
) -> anyhow::Result<(TickReport, Duration, StoreStats, BatchStats, SpecStats)> {
    world.store.take_stats();
    world.livy.take_stats();
    world.specs.take_stats();
    let started = tokio::time::Instant::now();
    let report = grouped_tick(&world.store, &world.livy, &world.specs, tick_time(k), config).await?;
    let elapsed = started.elapsed();
    if !report.failures.is_empty() || report.conflicts > 0 {
        bail!("grouped tick {k} was not clean: {:?}, {} conflicts", report.failures, report.conflicts);
    }
    Ok((report, elapsed, world.store.take_stats(), world.livy.take_stats(), world.specs.take_stats()))
}

/// Measures one size: set-up, warm-up ticks, then `ticks` measured ticks.
pub async fn run_size(
    series: &'static str,
    jobs: usize,
    hot_jobs: usize,
    ticks: usize,
) -> anyhow::Result<GroupedSizeResult> {
    let sizes = item_sizes();
    let started = Instant::now();
    let world = build_world(jobs, hot_jobs, sizes, NetworkLatency::default()).await?;
    eprintln!("  grouped, {series}, {jobs} jobs: set up in {:.1} s", started.elapsed().as_secs_f64());
    let config = config();
    let mut samples = Vec::new();
    for k in 0..WARMUP_TICKS + ticks {
        let now = tick_time(k);
        let before = (k >= WARMUP_TICKS).then(|| snapshot(world.store.inner()));
        let (report, tick, stats, livy, specs) = clean_tick(&world, &config, k).await?;
        if let Some(before) = before {
            let after = snapshot(world.store.inner());
            let work = work_of(&world, &before, &after, now);
            let parse = parse_pass(&world, &before, now);
            samples.push(Sample { tick, stats, livy, specs, report, work, parse });
        }
        advance_world(&world, now).await?;
    }
    summarize(series, jobs, &world, &sizes, samples)
}

fn summarize(
    series: &'static str,
    jobs: usize,
    world: &World,
    sizes: &ItemSizes,
    mut samples: Vec<Sample>,
) -> anyhow::Result<GroupedSizeResult> {
    let tick_ms = Spread::of(&samples.iter().map(|s| ms(s.tick)).collect::<Vec<_>>());
    let norris_ms = Spread::of(&samples.iter().map(|s| ms(s.handler() + s.parse)).collect::<Vec<_>>());
    let requests: Vec<u64> = samples.iter().map(|s| s.stats.requests()).collect();
    let requests_range = [requests.iter().copied().min().unwrap_or(0), requests.iter().copied().max().unwrap_or(0)];
    let median_of = |f: &dyn Fn(&Sample) -> f64| Spread::of(&samples.iter().map(f).collect::<Vec<_>>()).median;
    let store_model_ms = median_of(&|s| ms(s.stats.time()));
    let livy_model_ms = median_of(&|s| ms(s.livy.time));
    let specs_model_ms = median_of(&|s| ms(s.specs.time));
    let handler_ms = median_of(&|s| ms(s.handler()));
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
    let minimum = dynamo_model::grouped_minimum(&m.work, sizes);
    let minimum_requests = dynamo_model::total(&minimum);
    let w = &m.work;
    let strict_minimum = minimum_requests - dynamo_model::batch_gets(w.definitions)
        + dynamo_model::batch_gets(w.definitions - w.followed_only_definitions);
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
    Ok(GroupedSizeResult {
        series,
        jobs,
        hot_jobs: world.hot_jobs,
        shards: world.shards,
        clusters: world.clusters.len(),
        ticks: samples.len(),
        due_shards: w.due_shards,
        due_jobs: w.due_jobs,
        open_groups: w.open_groups,
        followed_groups: w.followed_groups,
        cut_submitted_published_committed: [r.windows_cut, r.runs_submitted, r.runs_published, r.windows_committed],
        tick_ms,
        store_model_ms,
        livy_model_ms,
        specs_model_ms,
        handler_ms,
        parse_definitions_ms,
        norris_ms,
        ops,
        requests,
        requests_range,
        requests_by_api: m.stats.by_api().into_iter().map(|(a, n)| (a.name(), n)).collect(),
        spec_puts: m.specs.puts,
        livy_finds_submits_others: [m.livy.finds, m.livy.submits, m.livy.others],
        work: m.work,
        minimum,
        minimum_requests,
        minimum_spec_puts_and_livy_calls: [w.submissions as u64, (w.followed_groups + w.submissions) as u64],
        excess,
        ratio: requests as f64 / minimum_requests.max(1) as f64,
        ratio_without_followed_definitions: requests as f64 / strict_minimum.max(1) as f64,
        items_read,
        sweep_requests: dynamo_model::query_pages(world.shards, usize::MAX, sizes.index_entry)
            + dynamo_model::batch_gets(world.shards)
            + dynamo_model::scan_pages(jobs, sizes.job_definition),
    })
}

/// Attributes the requests above the minimum to their causes, operation by operation.
fn excess_of(stats: &StoreStats, work: &GroupedWork, sizes: &ItemSizes, requests: u64, minimum: u64) -> Vec<Excess> {
    let req = |op: Op| stats.ops.get(&op).map_or(0, |s| s.requests) as i64;
    let w = work;
    let batches = |n: usize| dynamo_model::batch_gets(n) as i64;
    let mut out = vec![
        Excess {
            what: "accepted schemas read per submitted group (submit_placed: a get_schemas round each), not batched across the tick's submissions",
            requests: req(Op::GetSchemas) - batches(w.schemas),
        },
        Excess {
            what: "shards not due read one by one (grouped_tick: get_shard per shard a group of which settled or published), not batched",
            requests: req(Op::GetShard) - batches(w.other_shards),
        },
        Excess {
            what: "definitions read beyond the jobs a decision needs (Ledger::read: the due shards' jobs and every open group's members to do)",
            requests: req(Op::GetJobDefinitions) - batches(w.definitions),
        },
        Excess {
            what: "attempt results: batch reads beyond one per 100 followed groups",
            requests: req(Op::GetGroupResults) - batches(w.followed_groups),
        },
        Excess {
            what: "group writes beyond one per cut, placement, ended attempt and commit",
            requests: req(Op::CreateGroup) + req(Op::UpdateGroup)
                - (w.groups_created + w.groups_placed + w.groups_ended + w.groups_committed) as i64,
        },
        Excess {
            what: "shard writes beyond one per changed shard",
            requests: req(Op::UpdateShard) + req(Op::CreateShard) - w.shard_writes as i64,
        },
        Excess {
            what: "index pages and listed items beyond the minimum (due and active)",
            requests: req(Op::DueShardsIndex) + req(Op::DueShardItems) + req(Op::OpenGroupsIndex) + req(Op::OpenGroupItems)
                - dynamo_model::query_pages(w.due_shards, w.due_limit, sizes.index_entry) as i64
                - batches(w.due_shards)
                - dynamo_model::query_pages(w.open_groups, usize::MAX, sizes.index_entry) as i64
                - batches(w.open_groups),
        },
    ];
    let explained: i64 = out.iter().map(|e| e.requests).sum();
    out.push(Excess { what: "everything else", requests: requests as i64 - minimum as i64 - explained });
    out.retain(|e| e.requests != 0);
    out
}

/// Measures how long a grouped tick waits on the network on tokio's paused clock (see
/// `scheduler::network_wait`; the S3 PUT of each attempt's spec is waited for too). Must run on a
/// current-thread runtime started paused.
pub async fn network_wait(jobs: usize, ticks: usize) -> anyhow::Result<NetworkWait> {
    let latency = ASSUMED_LATENCY;
    let world = build_world(jobs, jobs, item_sizes(), latency).await?;
    let config = config();
    struct WaitSample {
        waited_secs: f64,
        requests: u64,
        livy_calls: u64,
        spec_puts: u64,
        one_by_one_secs: f64,
        done: [usize; 4],
    }
    let mut samples = Vec::new();
    for k in 0..WARMUP_TICKS + ticks {
        let (report, waited, stats, livy, specs) = clean_tick(&world, &config, k).await?;
        if k >= WARMUP_TICKS {
            let requests = stats.requests();
            let one_by_one_ms = requests * latency.dynamodb_request_ms
                + specs.puts * latency.s3_put_ms
                + livy.submits * latency.livy_submit_ms
                + (livy.finds + livy.others) * latency.livy_call_ms;
            samples.push(WaitSample {
                waited_secs: waited.as_secs_f64(),
                requests,
                livy_calls: livy.submits + livy.finds + livy.others,
                spec_puts: specs.puts,
                one_by_one_secs: one_by_one_ms as f64 / 1000.0,
                done: [report.windows_cut, report.runs_submitted, report.runs_published, report.windows_committed],
            });
        }
        advance_world(&world, tick_time(k)).await?;
    }
    let wait_secs = Spread::of(&samples.iter().map(|s| s.waited_secs).collect::<Vec<_>>());
    samples.sort_by(|a, b| a.waited_secs.total_cmp(&b.waited_secs));
    let median = samples.get(samples.len() / 2).context("no measured tick")?;
    Ok(NetworkWait {
        ledger: "grouped",
        jobs,
        latency,
        run_concurrency: norris_control::follow::RUN_CONCURRENCY,
        cut_submitted_published_committed: median.done,
        dynamodb_requests: median.requests,
        livy_calls: median.livy_calls,
        spec_puts: median.spec_puts,
        wait_secs,
        one_by_one_secs: median.one_by_one_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(fut)
    }

    #[test]
    fn a_small_grouped_world_reaches_the_steady_state() {
        let result = block_on(run_size("1% due", 200, 200, 2)).expect("bench");
        // 2 jobs per cohort, one shard each: a group of 2 cut and submitted, one followed, one
        // settled with its 2 windows published and committed.
        assert_eq!(result.shards, 100);
        assert_eq!(result.cut_submitted_published_committed, [2, 1, 2, 2]);
        assert_eq!((result.due_shards, result.due_jobs), (1, 2));
        assert_eq!((result.open_groups, result.followed_groups), (2, 2), "followed, finishing");
        let w = result.work;
        assert_eq!((w.groups_created, w.groups_ended, w.groups_committed, w.shard_writes), (1, 1, 1, 2));
        assert_eq!(result.spec_puts, 1);
        assert_eq!(result.livy_finds_submits_others, [2, 1, 0]);
        assert_eq!(result.requests_range[0], result.requests_range[1], "every measured tick does the same work");
        assert!(result.requests >= result.minimum_requests, "{} < {}", result.requests, result.minimum_requests);
        let explained: i64 = result.excess.iter().map(|e| e.requests).sum();
        assert_eq!(explained, result.requests as i64 - result.minimum_requests as i64);
    }

    #[test]
    fn the_same_work_costs_the_same_requests_whatever_the_job_count() {
        let small = block_on(run_size("constant work", 300, 200, 1)).expect("bench");
        let large = block_on(run_size("constant work", 3000, 200, 1)).expect("bench");
        assert!(large.shards > small.shards, "the daily jobs fill shards that are never due");
        assert_eq!(large.work.due_jobs, small.work.due_jobs);
        assert_eq!(
            large.ops.iter().map(|o| (o.op, o.requests)).collect::<Vec<_>>(),
            small.ops.iter().map(|o| (o.op, o.requests)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_grouped_network_wait_never_exceeds_the_round_trips_added_up() {
        let wait = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(network_wait(200, 2))
            .expect("bench");
        assert_eq!(wait.cut_submitted_published_committed, [2, 1, 2, 2]);
        assert_eq!(wait.spec_puts, 1);
        assert!(wait.wait_secs.median > 0.0, "round trips were waited for");
        assert!(wait.wait_secs.max <= wait.one_by_one_secs + 1e-9, "{:?} vs {}", wait.wait_secs, wait.one_by_one_secs);
    }
}
