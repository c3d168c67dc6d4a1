//! The scheduler tick on the grouped ledger (ARCHITECTURE.md, "Plan: the grouped ledger"): jobs
//! live in shards of their cohort, and a tick cuts each due shard's windows into one group, run as
//! one Livy batch per attempt. What the scheduler Lambda (`handle_event`) and `norris tick` run;
//! the per-window tick (`scheduler.rs`) is still in the tree until it is removed.
//!
//! A tick, in order:
//! 1. the definition sweep (when its periodic task is due): every definition gets a line in a
//!    shard of its cohort (a job whose cohort changed moves once its windows in flight are
//!    committed, carrying its watermark);
//! 2. following the open groups' placed attempts (Livy by batch name, then the attempt's result):
//!    results settle members one by one by the runs' rules; a group on a cluster the ledger says
//!    it must leave belongs to the lifecycle passes, which move it (a new attempt, no failure
//!    counted) and place it again at once (`place_moved_groups`);
//! 3. each due shard, and each shard a group of which settled: the settled members folded into
//!    its watermarks, the due windows cut into a new group (created before the shard records the
//!    cut, so a tick that dies in between is finished by the next), in one shard write;
//! 4. placing and submitting pending groups: the placement is recorded before the Livy call, the
//!    group's spec is written where its application reads it.
//!
//! Every write is conditional (groups and shards are versioned, a cut is a conditional create), so
//! two ticks at once, or a tick that dies between any two writes, leave the ledger right.
//!
//! The report's counts are per window (member) where runs were: `windows_cut` members cut,
//! `runs_published` members published, `runs_failed` members given up or quarantined;
//! `runs_submitted`, `runs_retried` and `runs_waiting_for_a_cluster` count group attempts.

use crate::config::SchedulerConfig;
use crate::follow::{at_once, batch_slots, endpoint_of, won, DEFAULT_BATCH_SLOTS};
use crate::scheduler::{finish_tick, note_invalid, verdict, JobFailure, SchedulerError, TickError, TickReport};
use norris_engine::clusters::must_move_runs;
use norris_engine::groups::{
    fold_into_shard, follow_group, group_after_failed_submission, group_after_settlement, group_awaits_failover,
    group_batch_name, group_spec, group_submission, moved_group_stalled, next_due_at, plan_group, resubmit_moved_group,
    shard_after_cut, supersede_group, GroupNext, GroupStep, Settlement, ShardView,
};
use norris_engine::runs::place_attempts;
use norris_engine::{reconcile_job, DefinitionView};
use norris_model::job::definition_hash;
use norris_model::{
    Attempt, BatchObservation, Cluster, ClusterKey, CohortKey, Group, GroupKey, GroupResult, GroupStatus,
    JobDefinition, JobId, JobState, Member, MemberState, RetryPolicy, Shard, ShardJob, ShardKey, SizeClass, UnixTime,
    Validity, Version, SHARD_MAX_JOBS,
};
use norris_ports::{
    Annotation, BatchError, BatchService, DefinitionRecord, GroupStore, SpecStore, StateStore, StoreError, WriteError,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The periodic-task name of the grouped ledger's definition sweep.
pub const GROUP_SWEEP_TASK: &str = "group-definition-sweep";

/// Members of one group attempt the Spark application runs at once (its thread pool).
pub const GROUP_MAX_PARALLEL: u32 = 8;

/// Tries of a shard write that lost to another writer (a tick and the sweep both write shards):
/// the change is applied again to the shard as it now stands.
const SHARD_WRITE_TRIES: usize = 3;

/// What a tick reads once and every step uses.
struct Ledger {
    clusters: Vec<Cluster>,
    slots: HashMap<SizeClass, u32>,
    definitions: HashMap<String, DefinitionRecord<JobDefinition>>,
    results_table: String,
}

impl Ledger {
    /// Reads what the steps need: the clusters, the pools' batch slots and the definitions of `jobs`.
    async fn read<S: StateStore>(store: &S, jobs: &[JobId], config: &SchedulerConfig) -> Result<Ledger, StoreError> {
        let definitions = store.get_job_definitions(jobs).await?.into_iter().map(|r| (r.key.clone(), r)).collect();
        Ok(Ledger {
            slots: batch_slots(store).await?,
            clusters: store.list_clusters().await?,
            definitions,
            results_table: format!("{}-results", config.table_prefix),
        })
    }

    fn definition(&self, job: &JobId) -> Option<&JobDefinition> {
        self.definitions.get(job.as_str()).and_then(|r| r.parsed.as_ref().ok())
    }

    fn policies(&self, group: &Group) -> BTreeMap<JobId, RetryPolicy> {
        group.members.iter().filter_map(|m| Some((m.job_id.clone(), self.definition(&m.job_id)?.retry))).collect()
    }

    fn cluster(&self, key: &ClusterKey) -> Option<&Cluster> {
        self.clusters.iter().find(|c| &c.key == key)
    }

    fn endpoint(&self, key: &ClusterKey) -> Option<&str> {
        endpoint_of(&self.clusters, key)
    }
}

/// What following a group decided that its shard's next write carries: jobs to quarantine and
/// schemas newly accepted (by hash; the schema itself is written before).
#[derive(Debug, Default)]
struct ShardNotes {
    quarantine: BTreeMap<JobId, String>,
    schema_hashes: BTreeMap<JobId, String>,
}

/// Runs one tick of the grouped ledger at `now` (see the module documentation for its steps).
pub async fn grouped_tick<S, B, P>(
    store: &S,
    batches: &B,
    specs: &P,
    now: UnixTime,
    config: &SchedulerConfig,
) -> Result<TickReport, TickError>
where
    S: StateStore + GroupStore,
    B: BatchService,
    P: SpecStore,
{
    let mut report = TickReport { now: now.secs(), ..TickReport::default() };
    if store.claim_periodic(GROUP_SWEEP_TASK, now, now.plus_secs(config.definition_sweep_secs)).await? {
        report.swept = true;
        sweep_into_shards(store, now, &mut report).await?;
    }
    let open = store.open_groups().await?;
    let due = store.due_shards(now, config.max_due_per_tick).await?;
    // The definitions of every job a step may need: those with members to do, and the due shards'.
    let mut jobs: BTreeSet<JobId> =
        open.iter().flat_map(|g| g.to_do().map(|m| m.job_id.clone())).collect::<BTreeSet<_>>();
    jobs.extend(due.iter().flat_map(|s| s.jobs.keys().cloned()));
    let jobs: Vec<JobId> = jobs.into_iter().collect();
    let ledger = Ledger::read(store, &jobs, config).await?;

    let mut notes: BTreeMap<ShardKey, ShardNotes> = BTreeMap::new();
    let published_before: HashMap<GroupKey, usize> = open.iter().map(|g| (g.key.clone(), published(g))).collect();
    let mut groups = follow_groups(store, batches, now, &ledger, open, &mut notes, &mut report).await?;

    // Shards to write: the due ones, and those a group of which settled or published this tick
    // (the published members' watermarks move now, not when the shard is next due).
    let mut shards: BTreeMap<ShardKey, Shard> = due.into_iter().map(|s| (s.key.clone(), s)).collect();
    report.jobs_due = shards.values().map(|s| s.jobs.len()).sum();
    let settled: BTreeSet<ShardKey> = groups
        .values()
        .filter(|g| {
            matches!(g.status, GroupStatus::Settled { .. })
                || notes.contains_key(&g.key.shard)
                || published(g) > published_before.get(&g.key).copied().unwrap_or(0)
        })
        .map(|g| g.key.shard.clone())
        .collect();
    let unread: Vec<ShardKey> = settled.into_iter().filter(|k| !shards.contains_key(k)).collect();
    for key in unread {
        if let Some(shard) = store.get_shard(&key).await? {
            shards.insert(key, shard);
        }
    }
    let plan = plan_placements(now, &ledger, &groups, shards.values().filter(|s| s.due_at.is_some_and(|at| at <= now)));
    report.runs_waiting_for_a_cluster += plan.waiting;
    let ticked = at_once(shards.into_values().map(|shard| {
        let of_shard: Vec<Group> = groups.values().filter(|g| g.key.shard == shard.key).cloned().collect();
        let note = notes.remove(&shard.key).unwrap_or_default();
        let cluster = plan.new_groups.get(&shard.key).cloned();
        let ledger = &ledger;
        async move {
            let mut part = TickReport::default();
            let key = shard.key.clone();
            let outcome = tick_shard(store, now, ledger, shard, of_shard, &note, cluster, &mut part).await;
            (key, outcome, part)
        }
    }))
    .await;
    let mut cut_placed = Vec::new();
    for (key, outcome, part) in ticked {
        report.absorb(part);
        match outcome {
            Ok(ticked) => {
                cut_placed.extend(ticked.cut_placed);
                for group in ticked.written {
                    groups.insert(group.key.clone(), group);
                }
            }
            Err(e) => {
                tracing::error!(shard = %key, error = %e, "shard left as it was after a store error");
                report.failures.push(JobFailure { job_id: format!("shard {key}"), error: e.to_string() });
            }
        }
    }

    // Pending groups of earlier ticks are placed first (they are older); groups this tick cut were
    // created placed, on the slots planned for their shards.
    let placements: Vec<(Group, ClusterKey)> =
        plan.pending.into_iter().filter_map(|(key, cluster)| Some((groups.get(&key)?.clone(), cluster))).collect();
    let ledger = &ledger;
    let submitted = place_and_submit(store, batches, specs, now, ledger, &placements).await;
    let cut_submitted = at_once(cut_placed.iter().map(|(group, cluster)| async move {
        let mut part = TickReport::default();
        if let Err(e) = submit_placed(store, batches, specs, now, ledger, group, cluster, &mut part).await {
            part.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() });
        }
        part
    }))
    .await;
    for part in submitted.into_iter().chain(cut_submitted) {
        report.absorb(part);
    }
    tracing::info!(
        swept = report.swept,
        jobs_due = report.jobs_due,
        windows_cut = report.windows_cut,
        attempts_submitted = report.runs_submitted,
        windows_published = report.runs_published,
        windows_committed = report.windows_committed,
        attempts_retried = report.runs_retried,
        windows_failed = report.runs_failed,
        conflicts = report.conflicts,
        failures = report.failures.len(),
        "grouped scheduler tick done"
    );
    Ok(report)
}

/// How many of a group's members are published.
fn published(group: &Group) -> usize {
    group.members.iter().filter(|m| matches!(m.state, MemberState::Published { .. })).count()
}

/// Places each pending group on its planned cluster and submits it; a report per group.
async fn place_and_submit<S: GroupStore, B: BatchService, P: SpecStore>(
    store: &S,
    batches: &B,
    specs: &P,
    now: UnixTime,
    ledger: &Ledger,
    placements: &[(Group, ClusterKey)],
) -> Vec<TickReport> {
    at_once(placements.iter().map(|(group, cluster)| async move {
        let mut part = TickReport::default();
        let placed = place_group(store, now, group, cluster, &mut part).await;
        if let Ok(Some(placed)) = &placed {
            if let Err(e) = submit_placed(store, batches, specs, now, ledger, placed, cluster, &mut part).await {
                part.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() });
            }
        } else if let Err(e) = placed {
            part.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() });
        }
        part
    }))
    .await
}

/// The lifecycle passes' warm failover on the grouped ledger: places and submits, at once, the
/// pending groups the mover moved off a cluster (`group_awaits_failover`), instead of waiting
/// for the scheduler's next tick. Other pending groups are the tick's. Returns how many attempts
/// were submitted.
pub async fn place_moved_groups<S, B, P>(
    store: &S,
    batches: &B,
    specs: &P,
    now: UnixTime,
    config: &SchedulerConfig,
    report: &mut TickReport,
) -> Result<usize, TickError>
where
    S: StateStore + GroupStore,
    B: BatchService,
    P: SpecStore,
{
    let open = store.open_groups().await?;
    let waiting = |g: &Group| group_awaits_failover(g, now) || moved_group_stalled(g, now);
    if !open.iter().any(waiting) {
        return Ok(0);
    }
    let jobs: BTreeSet<JobId> =
        open.iter().filter(|g| waiting(g)).flat_map(|g| g.to_do().map(|m| m.job_id.clone())).collect();
    let ledger = Ledger::read(store, &jobs.into_iter().collect::<Vec<_>>(), config).await?;
    let mut groups: BTreeMap<GroupKey, Group> = open.into_iter().map(|g| (g.key.clone(), g)).collect();
    // A moved group whose submission never reached Livy gets a new attempt, placed below.
    let stalled: Vec<Group> = groups.values().filter(|g| moved_group_stalled(g, now)).cloned().collect();
    for group in stalled {
        let Some(endpoint) = group.status.cluster().and_then(|k| ledger.endpoint(k)) else { continue };
        match batches.find(endpoint, &group_batch_name(&group)).await {
            Ok(None) => {
                if let Some(written) = write_group(store, &resubmit_moved_group(&group, now), report).await? {
                    groups.insert(written.key.clone(), written);
                }
            }
            // Livy has it: the tick follows it.
            Ok(Some(_)) => {}
            Err(e) => report.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() }),
        }
    }
    let moved: BTreeSet<GroupKey> =
        groups.values().filter(|g| group_awaits_failover(g, now)).map(|g| g.key.clone()).collect();
    let plan = plan_placements(now, &ledger, &groups, std::iter::empty());
    let placements: Vec<(Group, ClusterKey)> = plan
        .pending
        .into_iter()
        .filter(|(key, _)| moved.contains(key))
        .filter_map(|(key, cluster)| Some((groups.get(&key)?.clone(), cluster)))
        .collect();
    report.runs_waiting_for_a_cluster += moved.len() - placements.len();
    let before = report.runs_submitted;
    for part in place_and_submit(store, batches, specs, now, &ledger, &placements).await {
        report.absorb(part);
    }
    Ok(report.runs_submitted - before)
}

/// The scheduler Lambda's handler on the grouped ledger: checks the event, runs one tick at the
/// clock's `now`, emits its metrics; fails the invocation when a step failed (retried next tick).
pub async fn handle_event<S, B, P, C>(
    store: &S,
    batches: &B,
    specs: &P,
    clock: &C,
    config: &SchedulerConfig,
    payload: &serde_json::Value,
) -> Result<TickReport, SchedulerError>
where
    S: StateStore + GroupStore,
    B: BatchService,
    P: SpecStore,
    C: norris_ports::Clock,
{
    let event = crate::events::ScheduledEvent::parse(payload)?;
    tracing::info!(event_id = %event.id, "grouped scheduler tick requested");
    let started = std::time::Instant::now();
    let report = grouped_tick(store, batches, specs, clock.now(), config).await?;
    finish_tick(report, config, started)
}

/// Writes `next` over its stored version; `Ok(None)` when another invocation wrote first.
async fn write_group<S: GroupStore>(
    store: &S,
    next: &Group,
    report: &mut TickReport,
) -> Result<Option<Group>, StoreError> {
    won(store.update_group(next).await, &mut report.conflicts)
}

/// Follows every placed open group; returns the open groups as they now stand (those that lost a
/// race to another writer as this tick read them: the next tick looks again).
async fn follow_groups<S: GroupStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    ledger: &Ledger,
    open: Vec<Group>,
    notes: &mut BTreeMap<ShardKey, ShardNotes>,
    report: &mut TickReport,
) -> Result<BTreeMap<GroupKey, Group>, StoreError> {
    // Livy is asked about every placed group before the results are read: a result is written
    // before its batch ends, so a batch seen ended always comes with its result.
    let placed: Vec<&Group> = open.iter().filter(|g| g.status.cluster().is_some()).collect();
    let lookups = at_once(placed.iter().map(|group| async move {
        let mut part = TickReport::default();
        let batch = look_up_group_batch(batches, now, ledger, group, &mut part).await;
        (*group, batch, part)
    }))
    .await;
    let mut looked = Vec::new();
    for (group, batch, part) in lookups {
        report.absorb(part);
        if let Some(batch) = batch {
            looked.push((group, batch));
        }
    }
    let attempts: Vec<(GroupKey, Attempt)> = looked.iter().map(|(g, _)| (g.key.clone(), g.attempt)).collect();
    let mut results: HashMap<(GroupKey, Attempt), GroupResult> = match store.get_group_results(&attempts).await {
        Ok(found) => found.into_iter().map(|r| ((r.group.clone(), r.attempt), r)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read group results; followed next tick");
            report.failures.push(JobFailure { job_id: "group results".into(), error: e.to_string() });
            looked.clear();
            HashMap::new()
        }
    };
    let followed = at_once(looked.into_iter().map(|(group, batch)| {
        let result = results.remove(&(group.key.clone(), group.attempt));
        async move {
            let mut part = TickReport::default();
            let policies = ledger.policies(group);
            let leaving =
                group.status.cluster().and_then(|k| ledger.cluster(k)).is_some_and(|c| must_move_runs(c, now));
            let step = if leaving && result.is_none() {
                // A group on a cluster the ledger says it must leave belongs to the mover (the
                // lifecycle passes: no failure counted, under the failover policy); only a result
                // its attempt wrote before the loss is taken here.
                GroupStep::Wait
            } else {
                follow_group(now, group, &policies, batch.as_ref(), result.as_ref())
            };
            let outcome = apply_group_step(store, batches, now, ledger, group, step, batch, result, &mut part).await;
            (group, outcome, part)
        }
    }))
    .await;
    let mut latest: BTreeMap<GroupKey, Group> = open.iter().map(|g| (g.key.clone(), g.clone())).collect();
    for (group, outcome, part) in followed {
        report.absorb(part);
        match outcome {
            Ok((written, note)) => {
                if let Some(written) = written {
                    latest.insert(written.key.clone(), written);
                }
                if !note.quarantine.is_empty() || !note.schema_hashes.is_empty() {
                    let into = notes.entry(group.key.shard.clone()).or_default();
                    into.quarantine.extend(note.quarantine);
                    into.schema_hashes.extend(note.schema_hashes);
                }
            }
            Err(e) => report.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() }),
        }
    }
    Ok(latest)
}

/// What Livy knows of a placed group's batch (`Some(None)`: nothing, or its cluster has no
/// endpoint or is being left, so Livy is not asked); `None` when Livy does not answer (reported;
/// looked at again next tick).
async fn look_up_group_batch<B: BatchService>(
    batches: &B,
    now: UnixTime,
    ledger: &Ledger,
    group: &Group,
    report: &mut TickReport,
) -> Option<Option<BatchObservation>> {
    let key = group.status.cluster()?;
    if ledger.cluster(key).is_some_and(|c| must_move_runs(c, now)) {
        return Some(None);
    }
    let Some(endpoint) = ledger.endpoint(key) else { return Some(None) };
    match batches.find(endpoint, &group_batch_name(group)).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!(group = %group.key, cluster = %key, error = %e, "cannot reach Livy to follow the group");
            report.failures.push(JobFailure { job_id: format!("group {}", group.key), error: e.to_string() });
            None
        }
    }
}

/// What an ended attempt did to the members it ran (settling keeps the members' order).
#[derive(Default)]
struct Ended<'a> {
    published: usize,
    failed: Vec<&'a Member>,
    quarantined: usize,
    to_retry: usize,
}

impl<'a> Ended<'a> {
    fn of(group: &Group, settlement: &'a Settlement) -> Ended<'a> {
        let mut ended = Ended::default();
        for (before, after) in group.members.iter().zip(&settlement.group.members) {
            if before.state != MemberState::ToDo {
                continue;
            }
            match after.state {
                MemberState::Published { .. } => ended.published += 1,
                MemberState::Failed { .. } => ended.failed.push(after),
                MemberState::Quarantined { .. } => ended.quarantined += 1,
                MemberState::ToDo => ended.to_retry += 1,
            }
        }
        ended
    }

    /// One line for operators.
    fn summary(&self, attempt: Attempt) -> String {
        format!(
            "attempt {attempt}: {} published, {} failed, {} quarantined, {} to retry",
            self.published,
            self.failed.len(),
            self.quarantined,
            self.to_retry
        )
    }
}

/// Carries out the next `step` of a placed `group`; returns the group as written (`None`: another
/// invocation wrote first) and what its shard's next write must carry.
#[allow(clippy::too_many_arguments)]
async fn apply_group_step<S: GroupStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    ledger: &Ledger,
    group: &Group,
    step: GroupStep,
    batch: Option<BatchObservation>,
    result: Option<GroupResult>,
    report: &mut TickReport,
) -> Result<(Option<Group>, ShardNotes), StoreError> {
    let Some(cluster) = group.status.cluster().cloned() else { return Ok((None, ShardNotes::default())) };
    let mut note = ShardNotes::default();
    let next = match step {
        GroupStep::Wait => return Ok((None, note)),
        GroupStep::Requeue { reason } => {
            tracing::warn!(group = %group.key, attempt = %group.attempt, %reason, "submission refused; placed again");
            supersede_group(group, reason, None, now, now)
        }
        GroupStep::Settle(settlement) => {
            // Schemas first: a member published with a first or evolved schema makes it the
            // job's accepted one, recorded before the group says the member is published.
            for r in result.iter().flat_map(|r| &r.members).filter(|r| r.attempt == group.attempt) {
                if matches!(r.schema_verdict.as_str(), "first" | "evolved") {
                    let job = JobId::new(r.run_key.rsplit_once('@').map_or(r.run_key.as_str(), |(job, _)| job));
                    let published = settlement.group.members.iter().any(|m| {
                        m.job_id == job
                            && matches!(m.state, MemberState::Published { attempt, .. } if attempt == group.attempt)
                    });
                    if published {
                        store.put_schema(&job, &r.schema_json).await?;
                        note.schema_hashes.insert(job, schema_hash(&r.schema_json));
                    }
                }
            }
            note.quarantine.extend(settlement.quarantined.iter().cloned());
            let ended = Ended::of(group, &settlement);
            let summary = ended.summary(group.attempt);
            let next = group_after_settlement(now, group, &settlement, summary.clone());
            match settlement.next {
                GroupNext::Settled => {
                    tracing::info!(group = %group.key, %summary, "group attempt ended; group settled")
                }
                GroupNext::Retry { .. } => {
                    tracing::warn!(group = %group.key, %summary, "group attempt ended; a new attempt runs what is left");
                    report.runs_retried += 1;
                }
            }
            for (job, reason) in &settlement.quarantined {
                tracing::error!(job_id = %job, %reason, alarm = "job_quarantined", "breaking schema change; job quarantined");
            }
            for m in &ended.failed {
                tracing::error!(job_id = %m.job_id, window_lo = m.window.lo.0, alarm = "run_failed", "window failed after its last attempt");
            }
            let written = write_group(store, &next, report).await?;
            if written.is_some() {
                report.runs_published += ended.published;
                report.runs_failed += ended.failed.len() + ended.quarantined;
            } else {
                note = ShardNotes::default();
            }
            // An attempt that ended without a result (timed out, vanished) may still run: kill
            // it where Livy answers (best effort; even if it lives on, it can never publish). One
            // that wrote its result is finishing by itself and is left to end as it reported.
            if let (Some(endpoint), Some(b), None) = (ledger.endpoint(&cluster), batch.as_ref(), result.as_ref()) {
                if !b.phase.is_final() {
                    if let Err(e) = batches.kill(endpoint, b.id).await {
                        tracing::warn!(group = %group.key, error = %e, "could not kill the superseded attempt");
                    }
                }
            }
            return Ok((written, note));
        }
    };
    Ok((write_group(store, &next, report).await?, note))
}

/// The hash a shard keeps of an accepted schema (the schema itself is kept per job).
fn schema_hash(schema_json: &str) -> String {
    let value = serde_json::from_str(schema_json).unwrap_or_else(|_| serde_json::Value::String(schema_json.into()));
    definition_hash(&value)
}

/// A shard's jobs that may be cut now: enabled, with a valid extraction definition at the hash
/// the shard's line was reconciled at, in the shard's cohort. The others are held: a job whose
/// cohort changed waits for the sweep, which moves it.
fn runnable<'a>(shard: &Shard, ledger: &'a Ledger) -> BTreeMap<JobId, &'a norris_model::ExtractionSpec> {
    shard
        .jobs
        .iter()
        .filter_map(|(id, line)| {
            let record = ledger.definitions.get(id.as_str())?;
            let def = record.parsed.as_ref().ok()?;
            let spec = def.extraction()?;
            let same = record.hash == line.definition_hash && CohortKey::of(&def.size_class, spec) == shard.key.cohort;
            (def.enabled && same).then_some((id.clone(), spec))
        })
        .collect()
}

/// Brings the lines of jobs whose definition changed within the shard's cohort in line with it,
/// by the definition rules (`reconcile_job`), so an edited job runs on with its new definition
/// at its next window rather than after the next sweep. A job whose cohort changed is left held
/// for the sweep, which moves it; the sweep also writes the verdict on the definition's item.
fn reconcile_in_place(now: UnixTime, ledger: &Ledger, shard: &mut Shard) {
    for (id, line) in shard.jobs.iter_mut() {
        let Some(record) = ledger.definitions.get(id.as_str()).filter(|r| r.hash != line.definition_hash) else {
            continue;
        };
        let cohort = record.parsed.as_ref().ok().and_then(|d| d.extraction().map(|e| CohortKey::of(&d.size_class, e)));
        if cohort.is_some_and(|c| c != shard.key.cohort) {
            continue;
        }
        let view = DefinitionView::Present { hash: &record.hash, parsed: record.parsed.as_ref() };
        if let Some(change) = reconcile_job(now, view, Some(&as_state(id, line))) {
            *line = as_line(change.state(), line.schema_hash.clone());
        }
    }
}

/// Windows of each job cut and not yet under its watermark, in the shard's open groups whose cut
/// the shard recorded (a group a dead tick created past `cut_seq` is the one the next cut finds
/// again, and counts once it is recorded).
fn uncommitted(shard: &Shard, groups: &[Group]) -> BTreeMap<JobId, u32> {
    let mut counts = BTreeMap::new();
    for m in groups.iter().filter(|g| g.key.seq <= shard.cut_seq).flat_map(|g| &g.members) {
        if shard.jobs.get(&m.job_id).is_some_and(|line| m.window.hi > line.watermark) {
            *counts.entry(m.job_id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// What one shard's step wrote.
#[derive(Default)]
struct ShardTicked {
    /// Groups it created or marked committed, as written.
    written: Vec<Group>,
    /// The group it cut, created placed on this cluster, for this tick to submit.
    cut_placed: Option<(Group, ClusterKey)>,
}

/// One shard's write of the tick: the notes from following (quarantines, accepted schemas), the
/// fold of its open groups' published members, and the cut of its due windows into a group (the
/// group created first; placed on `cluster` when the tick planned a slot for it).
#[allow(clippy::too_many_arguments)]
async fn tick_shard<S: GroupStore>(
    store: &S,
    now: UnixTime,
    ledger: &Ledger,
    mut shard: Shard,
    mut groups: Vec<Group>,
    note: &ShardNotes,
    cluster: Option<ClusterKey>,
    report: &mut TickReport,
) -> Result<ShardTicked, StoreError> {
    let mut created: Option<Group> = None;
    let mut cut_placed = None;
    let done = |created: Option<Group>, cut_placed| ShardTicked { written: created.into_iter().collect(), cut_placed };
    for _ in 0..SHARD_WRITE_TRIES {
        let mut next = shard.clone();
        for (job, reason) in &note.quarantine {
            if let Some(line) = next.jobs.get_mut(job) {
                line.validity = Validity::Quarantined { reason: reason.clone() };
            }
        }
        for (job, hash) in &note.schema_hashes {
            if let Some(line) = next.jobs.get_mut(job) {
                line.schema_hash = Some(hash.clone());
            }
        }
        reconcile_in_place(now, ledger, &mut next);
        let fold = fold_into_shard(&next, &groups);
        if let Some(folded) = fold.shard {
            next = folded;
        }
        let view = ShardView { runnable: runnable(&next, ledger), uncommitted: uncommitted(&next, &groups) };
        if next.due_at.is_some_and(|at| at <= now) {
            if let Some(mut planned) = plan_group(now, &next, &view) {
                if let Some(cluster) = &cluster {
                    planned.status = GroupStatus::Submitting { cluster: cluster.clone(), since: now };
                }
                let group = match store.create_group(&planned).await {
                    Ok(g) => {
                        report.windows_cut += g.members.len();
                        // Created here, so submitted here (a group another tick created placed
                        // is that tick's to submit).
                        cut_placed = cluster.clone().filter(|_| created.is_none()).map(|c| (g.clone(), c));
                        g
                    }
                    // Cut before: by a tick that died before recording it, or by one running now.
                    Err(WriteError::Conflict { current: Some(stored) }) => {
                        report.conflicts += 1;
                        *stored
                    }
                    Err(WriteError::Conflict { current: None }) => {
                        report.conflicts += 1;
                        return Ok(ShardTicked::default());
                    }
                    Err(WriteError::Store(e)) => return Err(e),
                };
                next = shard_after_cut(now, &next, &group, &view);
                if !groups.iter().any(|g| g.key == group.key) {
                    groups.push(group.clone());
                }
                created = Some(group);
            } else {
                next.due_at = next_due_at(now, &next, &view);
            }
        }
        // A shard is always in the due index, so the sweep finds every shard there: one whose
        // jobs are all held is looked at again an interval later.
        if next.due_at.is_none() {
            next.due_at = Some(now.plus_secs(next.key.cohort.interval_secs));
        }
        let committed_windows: usize = next
            .jobs
            .iter()
            .filter_map(|(id, line)| {
                let before = shard.jobs.get(id)?.watermark;
                Some(
                    groups
                        .iter()
                        .flat_map(|g| &g.members)
                        .filter(|m| &m.job_id == id && m.window.lo >= before && m.window.hi <= line.watermark)
                        .count(),
                )
            })
            .sum();
        if next == shard {
            return Ok(done(created, cut_placed));
        }
        match store.update_shard(&next).await {
            Ok(_) => {
                report.windows_committed += committed_windows;
                let mut ticked = done(created, cut_placed);
                for key in fold.committed {
                    let Some(group) = groups.iter().find(|g| g.key == key) else { continue };
                    let mut done = group.clone();
                    done.committed = true;
                    done.updated_at = now;
                    if let Some(g) = write_group(store, &done, report).await? {
                        ticked.written.push(g);
                    }
                }
                return Ok(ticked);
            }
            Err(WriteError::Conflict { current: Some(current) }) => {
                report.conflicts += 1;
                shard = *current;
            }
            Err(WriteError::Conflict { current: None }) => {
                report.conflicts += 1;
                return Ok(done(created, cut_placed));
            }
            Err(WriteError::Store(e)) => return Err(e),
        }
    }
    Ok(done(created, cut_placed))
}

/// Where this tick's attempts go: the pending groups of earlier ticks first (the oldest first),
/// then one slot for each due shard's new group, so the group is created placed (one write less).
/// A slot planned for a shard that cuts nothing stays free until the next tick.
struct Placements {
    /// Pending groups and their clusters.
    pending: Vec<(GroupKey, ClusterKey)>,
    /// Due shards and the cluster their new group goes to.
    new_groups: BTreeMap<ShardKey, ClusterKey>,
    /// Pending groups left without a slot.
    waiting: usize,
}

fn plan_placements<'a>(
    now: UnixTime,
    ledger: &Ledger,
    groups: &BTreeMap<GroupKey, Group>,
    due: impl Iterator<Item = &'a Shard>,
) -> Placements {
    let mut running: BTreeMap<ClusterKey, u32> = BTreeMap::new();
    for cluster in groups.values().filter_map(|g| g.status.cluster()) {
        *running.entry(cluster.clone()).or_default() += 1;
    }
    let pending: Vec<(&Group, &SizeClass)> = groups
        .values()
        .filter(|g| matches!(g.status, GroupStatus::Pending { not_before } if not_before <= now))
        .filter(|g| g.to_do().next().is_some())
        .map(|g| (g, &g.key.shard.cohort.size_class))
        .collect();
    let slots = |sc: &SizeClass| ledger.slots.get(sc).copied().unwrap_or(DEFAULT_BATCH_SLOTS);
    let placed = place_attempts(&pending, |g| (g.created_at, g.key.clone()), &ledger.clusters, &running, slots);
    for (_, cluster) in &placed {
        *running.entry(cluster.clone()).or_default() += 1;
    }
    let due: Vec<(&Shard, &SizeClass)> = due.map(|s| (s, &s.key.cohort.size_class)).collect();
    let new_groups = place_attempts(&due, |s| s.key.clone(), &ledger.clusters, &running, slots);
    Placements {
        waiting: pending.len() - placed.len(),
        pending: placed.into_iter().map(|(g, c)| (g.key.clone(), c)).collect(),
        new_groups: new_groups.into_iter().map(|(s, c)| (s.key.clone(), c)).collect(),
    }
}

/// Records a pending group's placement before calling Livy: if this invocation dies after the
/// call, the next tick finds the batch by name instead of submitting a second one. `None` when
/// another invocation wrote the group first.
async fn place_group<S: GroupStore>(
    store: &S,
    now: UnixTime,
    group: &Group,
    cluster: &ClusterKey,
    report: &mut TickReport,
) -> Result<Option<Group>, StoreError> {
    let mut placed = group.clone();
    placed.status = GroupStatus::Submitting { cluster: cluster.clone(), since: now };
    placed.updated_at = now;
    write_group(store, &placed, report).await
}

/// Submits a group whose placement is recorded: writes the attempt's spec, submits it, and
/// carries out what Livy's answer decides.
#[allow(clippy::too_many_arguments)]
async fn submit_placed<S: GroupStore, B: BatchService, P: SpecStore>(
    store: &S,
    batches: &B,
    specs: &P,
    now: UnixTime,
    ledger: &Ledger,
    placed: &Group,
    cluster: &ClusterKey,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let Some(endpoint) = ledger.endpoint(cluster) else { return Ok(()) };
    let jobs: Vec<JobId> = placed.to_do().map(|m| m.job_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let definitions: BTreeMap<JobId, &JobDefinition> =
        jobs.iter().filter_map(|id| Some((id.clone(), ledger.definition(id)?))).collect();
    let Some(livy) = jobs.iter().find_map(|id| definitions.get(id)).map(|d| &d.livy) else { return Ok(()) };
    let schemas: BTreeMap<JobId, String> = store.get_schemas(&jobs).await?.into_iter().collect();
    let spec = group_spec(placed, &definitions, &schemas, &ledger.results_table, GROUP_MAX_PARALLEL);
    let name = format!("{}-a{}", placed.key, placed.attempt).replace('/', "-");
    let policies = ledger.policies(placed);
    let uri = match specs.put_spec(&name, &spec).await {
        Ok(uri) => uri,
        Err(e) => {
            // Nothing reached Livy: a new attempt, placed again next tick, no failure counted.
            tracing::warn!(group = %placed.key, error = %e, "cannot write the group's spec; placed again");
            report.failures.push(JobFailure { job_id: format!("group {}", placed.key), error: e.to_string() });
            let next = supersede_group(placed, e.to_string(), None, now, now);
            write_group(store, &next, report).await?;
            return Ok(());
        }
    };
    let submission = group_submission(placed, livy, &uri);
    let (step, batch) = match batches.submit(endpoint, &submission).await {
        Ok(obs) => {
            report.runs_submitted += 1;
            tracing::info!(group = %placed.key, attempt = %placed.attempt, cluster = %cluster, batch_id = obs.id, members = placed.to_do().count(), "group submitted");
            (follow_group(now, placed, &policies, Some(&obs), None), Some(obs))
        }
        Err(e) => {
            report.failures.push(JobFailure { job_id: format!("group {}", placed.key), error: e.to_string() });
            // The call may have taken effect before its answer was lost: ask Livy by name.
            let found = match batches.find(endpoint, &submission.name).await {
                Ok(found) => found,
                Err(again) => {
                    tracing::warn!(group = %placed.key, error = %e, lookup = %again, "submission failed; Livy does not answer");
                    return Ok(());
                }
            };
            let busy = matches!(e, BatchError::Busy { .. });
            (group_after_failed_submission(now, placed, &policies, found.as_ref(), &e.to_string(), busy), found)
        }
    };
    apply_group_step(store, batches, now, ledger, placed, step, batch, None, report).await.map(|_| ())
}

/// A shard line as the per-job state the definition rules (`reconcile_job`) are written for.
fn as_state(job: &JobId, line: &ShardJob) -> JobState {
    JobState {
        job_id: job.clone(),
        definition_hash: line.definition_hash.clone(),
        validity: line.validity.clone(),
        watermark: line.watermark,
        next_window_lo: line.next_window_lo,
        due_at: (line.validity == Validity::Valid).then_some(line.next_window_lo),
        accepted_schema: None,
        version: Version::INITIAL,
    }
}

fn as_line(state: &JobState, schema_hash: Option<String>) -> ShardJob {
    ShardJob {
        definition_hash: state.definition_hash.clone(),
        validity: state.validity.clone(),
        watermark: state.watermark,
        next_window_lo: state.next_window_lo,
        schema_hash,
    }
}

/// A change the sweep makes to one shard, with the line it was worked out from: a tick may cut
/// or commit the job's windows between the sweep's read and its write, and a change made from a
/// stale line would set the job's progress back (windows cut twice).
#[derive(Debug, Clone)]
enum LineChange {
    /// The job's line becomes `to`; `from` is the line read (`None`: the job was not there).
    Put { id: JobId, from: Option<ShardJob>, to: ShardJob },
    /// The job's line, read as `from`, goes.
    Remove { id: JobId, from: ShardJob },
}

/// Applies `changes` to the shard, writing it once, again on a lost race (to the shard as it now
/// stands, if the lines the changes were worked out from are still there); `Ok(false)` when it
/// kept losing or a line changed meanwhile (the sweep tries again next time).
async fn change_shard<S: GroupStore>(
    store: &S,
    now: UnixTime,
    mut shard: Shard,
    changes: &[LineChange],
    report: &mut TickReport,
) -> Result<bool, StoreError> {
    for _ in 0..SHARD_WRITE_TRIES {
        let mut next = shard.clone();
        for change in changes {
            let (id, from) = match change {
                LineChange::Put { id, from, .. } => (id, from.as_ref()),
                LineChange::Remove { id, from } => (id, Some(from)),
            };
            if next.jobs.get(id) != from {
                return Ok(false);
            }
            match change {
                LineChange::Put { id, to, .. } => next.jobs.insert(id.clone(), to.clone()),
                LineChange::Remove { id, .. } => next.jobs.remove(id),
            };
        }
        // A job added or changed may be due at once: the tick works out when.
        next.due_at = Some(next.due_at.map_or(now, |at| at.min(now)));
        match store.update_shard(&next).await {
            Ok(_) => return Ok(true),
            Err(WriteError::Conflict { current: Some(current) }) => {
                report.conflicts += 1;
                shard = *current;
            }
            Err(WriteError::Conflict { current: None }) => return Ok(false),
            Err(WriteError::Store(e)) => return Err(e),
        }
    }
    Ok(false)
}

/// The definition sweep, run now rather than at its period: what `norris jobs put` calls, so a
/// written job is in its shard (and due) at once. Safe beside a tick or another sweep: every
/// shard write is conditional, and a line that changed meanwhile is left to the next sweep.
pub async fn sweep_now<S: StateStore + GroupStore>(store: &S, now: UnixTime) -> Result<TickReport, TickError> {
    let mut report = TickReport { now: now.secs(), swept: true, ..TickReport::default() };
    sweep_into_shards(store, now, &mut report).await?;
    Ok(report)
}

/// Where each definition's job lives: the definition sweep of the grouped ledger. Every shard is
/// in the due index (see `tick_shard`), so reading it whole finds every job's line.
async fn sweep_into_shards<S: StateStore + GroupStore>(
    store: &S,
    now: UnixTime,
    report: &mut TickReport,
) -> Result<(), TickError> {
    let shards: BTreeMap<ShardKey, Shard> =
        store.due_shards(UnixTime(i64::MAX), usize::MAX).await?.into_iter().map(|s| (s.key.clone(), s)).collect();
    let mut homes: BTreeMap<&JobId, Vec<&ShardKey>> = BTreeMap::new();
    for shard in shards.values() {
        for id in shard.jobs.keys() {
            homes.entry(id).or_default().push(&shard.key);
        }
    }
    let mut changes: BTreeMap<ShardKey, Vec<LineChange>> = BTreeMap::new();
    let mut joins: BTreeMap<CohortKey, Vec<(JobId, ShardJob)>> = BTreeMap::new();
    // Jobs whose every change must be written before their definition is marked reconciled.
    let mut touched: BTreeMap<JobId, (Vec<ShardKey>, Option<CohortKey>)> = BTreeMap::new();
    let mut annotate: Vec<(JobId, Annotation)> = Vec::new();
    for record in store.scan_job_definitions().await? {
        let id = JobId::new(record.key.clone());
        let target =
            record.parsed.as_ref().ok().and_then(|d| d.extraction().map(|spec| CohortKey::of(&d.size_class, spec)));
        let held: Vec<&ShardKey> = homes.get(&id).cloned().unwrap_or_default();
        let placed = held.iter().all(|k| Some(&k.cohort) == target.as_ref()) && !held.is_empty();
        if record.reconciled_hash.as_deref() == Some(record.hash.as_str()) && (placed || target.is_none()) {
            continue;
        }
        report.definitions_reconciled += 1;
        // The line the rules start from: the one in the target cohort, else any.
        let home = held.iter().find(|k| Some(&k.cohort) == target.as_ref()).or(held.first()).map(|k| (*k).clone());
        let line = home.as_ref().and_then(|k| shards[k].jobs.get(&id));
        let state = line.map(|l| as_state(&id, l));
        let view = DefinitionView::Present { hash: &record.hash, parsed: record.parsed.as_ref() };
        let new_state = match (reconcile_job(now, view, state.as_ref()), state) {
            (Some(change), _) => change.state().clone(),
            (None, Some(state)) => state,
            (None, None) => continue,
        };
        let new_line = as_line(&new_state, line.and_then(|l| l.schema_hash.clone()));
        let mut writes = Vec::new();
        let mut join = None;
        match (&home, &target) {
            (Some(k), Some(t)) if &k.cohort == t => {
                if line != Some(&new_line) {
                    changes.entry(k.clone()).or_default().push(LineChange::Put {
                        id: id.clone(),
                        from: line.cloned(),
                        to: new_line.clone(),
                    });
                    writes.push(k.clone());
                }
                // A line left in another cohort by a sweep that died mid-move: dropped once its
                // windows in flight are committed (until then the tick holds it).
                for other in held.iter().filter(|o| *o != &k) {
                    let l = &shards[*other].jobs[&id];
                    if l.watermark == l.next_window_lo {
                        let remove = LineChange::Remove { id: id.clone(), from: l.clone() };
                        changes.entry((*other).clone()).or_default().push(remove);
                        writes.push((*other).clone());
                    }
                }
            }
            (Some(k), Some(t)) => {
                let old = &shards[k].jobs[&id];
                if old.watermark != old.next_window_lo {
                    // Windows in flight: they commit into this shard; the job moves after that.
                    tracing::info!(job_id = %id, from = %k, "job changed cohort; it moves once its windows in flight commit");
                    continue;
                }
                joins.entry(t.clone()).or_default().push((id.clone(), new_line.clone()));
                join = Some(t.clone());
                // Removed after the join is written (a sweep dying in between leaves two lines,
                // of which the one outside the job's cohort is never cut).
                changes.entry(k.clone()).or_default();
            }
            (None, Some(t)) => {
                joins.entry(t.clone()).or_default().push((id.clone(), new_line.clone()));
                join = Some(t.clone());
            }
            (Some(k), None) => {
                if line != Some(&new_line) {
                    changes.entry(k.clone()).or_default().push(LineChange::Put {
                        id: id.clone(),
                        from: line.cloned(),
                        to: new_line.clone(),
                    });
                    writes.push(k.clone());
                }
            }
            (None, None) => {}
        }
        if let Err(e) = &record.parsed {
            note_invalid(e, report);
        }
        let (status, problems) = verdict(&new_state.validity, &record.parsed);
        let annotation = Annotation { status: status.into(), problems, hash: record.hash.clone() };
        touched.insert(id.clone(), (writes, join));
        annotate.push((id, annotation));
    }
    // Joins: into the cohort's shards with room, in index order, else a new shard.
    let mut joined: BTreeMap<JobId, bool> = BTreeMap::new();
    for (cohort, mut lines) in joins {
        let mut of_cohort: Vec<&Shard> = shards.values().filter(|s| s.key.cohort == cohort).collect();
        of_cohort.sort_by_key(|s| s.key.index);
        for shard in of_cohort {
            let room = SHARD_MAX_JOBS.saturating_sub(shard.jobs.len() + changes.get(&shard.key).map_or(0, Vec::len));
            let taken: Vec<(JobId, ShardJob)> = lines.drain(..room.min(lines.len())).collect();
            if taken.is_empty() {
                continue;
            }
            let puts: Vec<LineChange> =
                taken.iter().map(|(id, l)| LineChange::Put { id: id.clone(), from: None, to: l.clone() }).collect();
            let ok = change_shard(store, now, shard.clone(), &puts, report).await?;
            joined.extend(taken.into_iter().map(|(id, _)| (id, ok)));
        }
        let mut index = shards.keys().filter(|k| k.cohort == cohort).map(|k| k.index + 1).max().unwrap_or(0);
        while !lines.is_empty() {
            let taken: Vec<(JobId, ShardJob)> = lines.drain(..SHARD_MAX_JOBS.min(lines.len())).collect();
            let shard = Shard {
                key: ShardKey { cohort: cohort.clone(), index },
                jobs: taken.iter().cloned().collect(),
                cut_seq: 0,
                due_at: Some(now),
                version: Version::INITIAL,
            };
            let ok = match store.create_shard(&shard).await {
                Ok(_) => true,
                Err(WriteError::Conflict { .. }) => {
                    report.conflicts += 1;
                    false
                }
                Err(WriteError::Store(e)) => return Err(e.into()),
            };
            joined.extend(taken.into_iter().map(|(id, _)| (id, ok)));
            index += 1;
        }
    }
    // Line changes in place, and removals of moved lines whose join was written.
    let mut written: BTreeMap<ShardKey, bool> = BTreeMap::new();
    for (key, mut list) in changes {
        for (id, (_, join)) in &touched {
            let moved_out = join.is_some() && shards[&key].jobs.contains_key(id) && Some(&key.cohort) != join.as_ref();
            if moved_out && joined.get(id) == Some(&true) {
                list.push(LineChange::Remove { id: id.clone(), from: shards[&key].jobs[id].clone() });
            }
        }
        if list.is_empty() {
            continue;
        }
        let ok = change_shard(store, now, shards[&key].clone(), &list, report).await?;
        written.insert(key, ok);
    }
    for (id, annotation) in annotate {
        let (writes, join) = &touched[&id];
        let done = writes.iter().all(|k| written.get(k) == Some(&true))
            && join.as_ref().is_none_or(|_| joined.get(&id) == Some(&true));
        if done {
            store.annotate_job_definition(&id, &annotation).await?;
        } else {
            report.failures.push(JobFailure {
                job_id: id.to_string(),
                error: "its shard changed meanwhile; the sweep places it next time".into(),
            });
        }
    }
    Ok(())
}

/// Why an operator's retry of a failed window of a group was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryMemberError {
    /// No such group, or no such window in it.
    #[error("no window {0}")]
    NotFound(String),
    /// Only failed or quarantined windows are retried by hand; others are still being handled.
    #[error("window {0} is not failed or quarantined: only those are retried by hand")]
    NotFailed(String),
    /// The group's next attempt is placed or running: its members were fixed when it was
    /// submitted, so the window is retried once that attempt ends.
    #[error("group {0} has an attempt placed or running; retry the window once it ends")]
    Busy(String),
    /// Another writer changed the group meanwhile; look again.
    #[error("group {0} changed meanwhile; try again")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operator's retry of a failed or quarantined window of a group (after fixing the source, or
/// the definition that broke the schema): the window is to do again with a new retry budget, in a
/// new attempt of its group, pending now. The job's watermark resumes once it publishes.
pub async fn retry_failed_member<S: GroupStore>(
    store: &S,
    now: UnixTime,
    key: &GroupKey,
    job: &JobId,
    window_lo: UnixTime,
) -> Result<Group, RetryMemberError> {
    let name = format!("{job}@{} in group {key}", window_lo.0);
    let group = store.get_group(key).await?.ok_or_else(|| RetryMemberError::NotFound(name.clone()))?;
    let Some(i) = group.members.iter().position(|m| &m.job_id == job && m.window.lo == window_lo) else {
        return Err(RetryMemberError::NotFound(name));
    };
    if !matches!(group.members[i].state, MemberState::Failed { .. } | MemberState::Quarantined { .. }) {
        return Err(RetryMemberError::NotFailed(name));
    }
    if group.status.cluster().is_some() {
        return Err(RetryMemberError::Busy(key.to_string()));
    }
    let mut next = group.clone();
    next.members[i].state = MemberState::ToDo;
    next.members[i].failures = 0;
    if matches!(group.status, GroupStatus::Settled { .. }) {
        next.attempt = group.attempt.next();
    }
    next.status = GroupStatus::Pending { not_before: now };
    next.updated_at = now;
    match store.update_group(&next).await {
        Ok(g) => Ok(g),
        Err(WriteError::Conflict { .. }) => Err(RetryMemberError::Conflict(key.to_string())),
        Err(WriteError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::Validity;
    use norris_ports::MemoryStore;

    fn cohort() -> CohortKey {
        CohortKey { size_class: SizeClass::new("small"), interval_secs: 300, phase_secs: 60 }
    }

    fn line(next_window_lo: i64) -> ShardJob {
        ShardJob {
            definition_hash: "h1".into(),
            validity: Validity::Valid,
            watermark: UnixTime(0),
            next_window_lo: UnixTime(next_window_lo),
            schema_hash: None,
        }
    }

    /// A shard of `jobs`, each with its next window at 300, as the store now holds it.
    async fn created_shard(store: &MemoryStore, key: &ShardKey, jobs: &[&JobId]) -> Shard {
        let shard = Shard {
            key: key.clone(),
            jobs: jobs.iter().map(|id| ((*id).clone(), line(300))).collect(),
            cut_seq: 0,
            due_at: Some(UnixTime(300)),
            version: Version::INITIAL,
        };
        store.create_shard(&shard).await.expect("create")
    }

    /// A sweep worked out a job's new line from the shard it read; a tick then cut the job's next
    /// window. The sweep's write loses the race and must not put the stale line back over the
    /// tick's (that would cut the window again).
    #[tokio::test]
    async fn a_sweep_does_not_set_back_a_line_a_tick_moved_meanwhile() {
        let store = MemoryStore::new();
        let job = JobId::new("shop.orders");
        let key = ShardKey { cohort: cohort(), index: 0 };
        let read = created_shard(&store, &key, &[&job]).await;
        let mut ticked = read.clone();
        ticked.jobs.insert(job.clone(), line(600));
        ticked.cut_seq = 1;
        store.update_shard(&ticked).await.expect("the tick's cut");

        let mut edited = line(300);
        edited.definition_hash = "h2".into();
        let change = LineChange::Put { id: job.clone(), from: Some(line(300)), to: edited };
        let mut report = TickReport::default();
        let written = change_shard(&store, UnixTime(400), read, &[change], &mut report).await.expect("store");

        assert!(!written, "the change was made from a line that is gone");
        let now_stored = store.get_shard(&key).await.expect("read").expect("shard");
        assert_eq!(now_stored.jobs[&job].next_window_lo, UnixTime(600), "the tick's cut stands");
        assert_eq!(report.conflicts, 1);
    }

    /// A lost race over other jobs' lines is retried on the shard as it now stands.
    #[tokio::test]
    async fn a_sweep_retries_a_lost_race_when_its_line_is_unchanged() {
        let store = MemoryStore::new();
        let (a, b) = (JobId::new("shop.orders"), JobId::new("shop.refunds"));
        let key = ShardKey { cohort: cohort(), index: 0 };
        let read = created_shard(&store, &key, &[&a, &b]).await;
        let mut ticked = read.clone();
        ticked.jobs.insert(b.clone(), line(600));
        store.update_shard(&ticked).await.expect("the tick's cut of b");

        let mut edited = line(300);
        edited.definition_hash = "h2".into();
        let change = LineChange::Put { id: a.clone(), from: Some(line(300)), to: edited.clone() };
        let mut report = TickReport::default();
        let written = change_shard(&store, UnixTime(400), read, &[change], &mut report).await.expect("store");

        assert!(written);
        let stored = store.get_shard(&key).await.expect("read").expect("shard");
        assert_eq!(stored.jobs[&a], edited);
        assert_eq!(stored.jobs[&b].next_window_lo, UnixTime(600));
    }
}
