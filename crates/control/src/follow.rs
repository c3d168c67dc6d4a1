//! Following runs within a scheduler tick: place pending runs, submit them, follow submitted and
//! running ones through Livy and their result items, publish (fenced), retry, give up, and commit
//! each job's watermark over contiguous published windows.
//!
//! Every write is a versioned update of the run as read at the start of this step; a lost race
//! means another invocation handled the run, and this one leaves it alone. Publishing is the
//! fence: only the run's current attempt can be published, because the update that publishes is
//! conditional on the version that holds that attempt.

use crate::scheduler::{JobFailure, TickReport};
use futures_util::stream::{self, StreamExt};
use norris_engine::clusters::must_move_runs;
use norris_engine::runs::{
    advance_watermark, after_failed_submission, batch_submission, follow_run, follow_run_on_a_leaving_cluster,
    place_runs, superseded_outcome, RunStep,
};
use norris_model::{
    Attempt, AttemptResult, BatchObservation, Cluster, ClusterKey, ClusterState, JobDefinition, JobId, JobState,
    RetryPolicy, Run, RunKey, RunOutcome, RunStatus, SizeClass, UnixTime, Validity,
};
use norris_ports::{BatchError, BatchService, DefinitionRecord, StateStore, StoreError, WriteError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

/// Changes to a job's state decided while following its runs, written with the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobEdit {
    /// A schema to accept (first publish, or an additive evolution).
    pub accepted_schema: Option<String>,
    /// A breaking schema change: quarantine the job.
    pub quarantine: Option<String>,
}

impl JobEdit {
    /// Adds `later`'s decisions over these (a later run's decision wins, as if run one by one).
    fn absorb(&mut self, later: JobEdit) {
        if later.accepted_schema.is_some() {
            self.accepted_schema = later.accepted_schema;
        }
        if later.quarantine.is_some() {
            self.quarantine = later.quarantine;
        }
    }
}

/// Batch slots per cluster when the pool has no (valid) definition.
pub const DEFAULT_BATCH_SLOTS: u32 = 4;

/// Runs looked up, followed or submitted at once. Each is a few round trips to Livy and
/// DynamoDB; one by one, a tick with 1,000 runs to follow and submit would spend minutes waiting
/// (the scheduler's Lambda timeout is 4). Results are folded in run order, so a tick decides the
/// same whatever order the answers come in.
pub const RUN_CONCURRENCY: usize = 16;

/// Runs `tasks` [`RUN_CONCURRENCY`] at a time; their outputs come in the tasks' order.
pub async fn at_once<F: Future>(tasks: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    stream::iter(tasks).buffered(RUN_CONCURRENCY).collect().await
}

/// What the follow step needs to know about the world, read once per tick.
pub struct World<'a> {
    /// Every cluster record.
    pub clusters: &'a [Cluster],
    /// Batch slots per size class (from the pools).
    pub slots: &'a HashMap<SizeClass, u32>,
    /// Definitions of the jobs involved.
    pub definitions: &'a HashMap<String, DefinitionRecord<JobDefinition>>,
    /// The results table name handed to each attempt.
    pub results_table: &'a str,
}

/// The Livy endpoint of a cluster that still serves batches (ready, or draining).
pub(crate) fn endpoint_of<'c>(clusters: &'c [Cluster], key: &ClusterKey) -> Option<&'c str> {
    clusters
        .iter()
        .find(|c| &c.key == key && matches!(c.state, ClusterState::Ready | ClusterState::Draining { .. }))
        .and_then(|c| c.livy_endpoint.as_deref())
}

/// Follows every active run and places the pending ones; returns the jobs whose watermark may
/// move (something published). With `place_only`, nothing is followed and only those jobs'
/// pending runs are placed (the running ones still count against the clusters' slots).
#[allow(clippy::too_many_arguments)]
pub async fn follow_active_runs<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    world: &World<'_>,
    active: Vec<Run>,
    states: &HashMap<JobId, JobState>,
    edits: &mut HashMap<JobId, JobEdit>,
    place_only: Option<&BTreeSet<JobId>>,
    report: &mut TickReport,
) -> Result<BTreeSet<JobId>, StoreError> {
    let mut touched = BTreeSet::new();
    let mut running_per_cluster: BTreeMap<ClusterKey, u32> = BTreeMap::new();
    for run in &active {
        if let Some(c) = run.status.cluster() {
            *running_per_cluster.entry(c.clone()).or_default() += 1;
        }
    }
    // Placed runs first (they free slots), then pending ones. Livy is asked about every placed
    // run before their results are read, in one batch: a result is written before its batch
    // ends, so a batch seen ended always comes with its result (read the other way round, an
    // attempt that just finished could look as if it died without one).
    let placed = active.iter().filter(|r| r.status.cluster().is_some() && place_only.is_none());
    let lookups = at_once(placed.map(|run| async move {
        let mut part = TickReport::default();
        let batch = look_up_batch(batches, now, world, run, &mut part).await;
        (run, batch, part)
    }))
    .await;
    let mut looked = Vec::new();
    for (run, batch, part) in lookups {
        report.absorb(part);
        if let Some(batch) = batch {
            looked.push((run, batch));
        }
    }
    let attempts: Vec<(RunKey, Attempt)> = looked.iter().map(|(r, _)| (r.key(), r.attempt)).collect();
    let mut results: HashMap<(String, Attempt), AttemptResult> = match store.get_attempt_results(&attempts).await {
        Ok(found) => found.into_iter().map(|r| ((r.run_key.clone(), r.attempt), r)).collect(),
        Err(e) => {
            // Followed next tick; the pending runs below are still placed.
            tracing::warn!(error = %e, "cannot read attempt results");
            for (run, _) in &looked {
                report.failures.push(JobFailure { job_id: run.job_id.to_string(), error: e.to_string() });
            }
            looked.clear();
            HashMap::new()
        }
    };
    let followed = at_once(looked.into_iter().map(|(run, batch)| {
        let result = results.remove(&(run.key().to_string(), run.attempt));
        async move {
            let mut part = TickReport::default();
            let mut edit = HashMap::new();
            let policy = retry_policy(world, run);
            let step = if on_a_leaving_cluster(world, run, now) {
                follow_run_on_a_leaving_cluster(now, run, &policy, result.as_ref())
            } else {
                follow_run(now, run, &policy, batch.as_ref(), result.as_ref())
            };
            let outcome = apply_step(store, batches, now, world, &mut edit, run, step, batch, result, &mut part).await;
            (run, outcome, edit, part)
        }
    }))
    .await;
    for (run, outcome, edit, part) in followed {
        report.absorb(part);
        for (id, e) in edit {
            edits.entry(id).or_default().absorb(e);
        }
        match outcome {
            Ok(true) => {
                touched.insert(run.job_id.clone());
                if let Some(c) = run.status.cluster() {
                    running_per_cluster.entry(c.clone()).and_modify(|n| *n = n.saturating_sub(1));
                }
            }
            Ok(false) => {}
            Err(e) => report.failures.push(JobFailure { job_id: run.job_id.to_string(), error: e.to_string() }),
        }
    }
    let pending: Vec<(&Run, &SizeClass)> = active
        .iter()
        .filter(|r| matches!(r.status, RunStatus::Pending { not_before } if not_before <= now))
        .filter(|r| place_only.is_none_or(|jobs| jobs.contains(&r.job_id)))
        .filter_map(|r| {
            let def = world.definitions.get(r.job_id.as_str())?.parsed.as_ref().ok()?;
            let valid = states.get(&r.job_id).is_some_and(|s| s.validity == Validity::Valid);
            (def.enabled && valid).then_some((r, &def.size_class))
        })
        .collect();
    let slots = |sc: &SizeClass| world.slots.get(sc).copied().unwrap_or(DEFAULT_BATCH_SLOTS);
    let placements = place_runs(&pending, world.clusters, &running_per_cluster, slots);
    report.runs_waiting_for_a_cluster += pending.len() - placements.len();
    let submitted = at_once(placements.into_iter().map(|(run, cluster)| async move {
        let mut part = TickReport::default();
        if let Err(e) = submit_pending(store, batches, now, world, states, run, &cluster, &mut part).await {
            part.failures.push(JobFailure { job_id: run.job_id.to_string(), error: e.to_string() });
        }
        part
    }))
    .await;
    for part in submitted {
        report.absorb(part);
    }
    Ok(touched)
}

/// A versioned update's outcome as a handler takes it: the item written, or `None` when another
/// invocation wrote first (counted in `conflicts`; that invocation handled it).
pub(crate) fn won<T>(written: Result<T, WriteError<T>>, conflicts: &mut usize) -> Result<Option<T>, StoreError> {
    match written {
        Ok(item) => Ok(Some(item)),
        Err(WriteError::Conflict { .. }) => {
            *conflicts += 1;
            Ok(None)
        }
        Err(WriteError::Store(e)) => Err(e),
    }
}

/// Each valid pool's batch slots per cluster, by size class (placement's capacity).
pub(crate) async fn batch_slots<S: StateStore>(store: &S) -> Result<HashMap<SizeClass, u32>, StoreError> {
    let pools = store.list_pools().await?;
    Ok(pools.into_iter().filter_map(|p| p.parsed.ok()).map(|p| (p.size_class, p.max_concurrent_batches)).collect())
}

/// Writes `next` over `run`; `Ok(None)` when another invocation wrote first.
async fn write_run<S: StateStore>(store: &S, next: &Run, report: &mut TickReport) -> Result<Option<Run>, StoreError> {
    won(store.update_run(next).await, &mut report.conflicts)
}

#[allow(clippy::too_many_arguments)]
async fn submit_pending<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    world: &World<'_>,
    states: &HashMap<JobId, JobState>,
    run: &Run,
    cluster: &ClusterKey,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    // Record the placement before calling Livy: if this invocation dies after the call, the next
    // tick finds the batch by name instead of submitting a second one.
    let mut placed = run.clone();
    placed.status = RunStatus::Submitting { cluster: cluster.clone(), since: now };
    placed.updated_at = now;
    let Some(placed) = write_run(store, &placed, report).await? else { return Ok(()) };
    submit(store, batches, now, world, states, &placed, report).await
}

async fn submit<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    world: &World<'_>,
    states: &HashMap<JobId, JobState>,
    run: &Run,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let RunStatus::Submitting { cluster, .. } = &run.status else { return Ok(()) };
    let (Some(endpoint), Some(def), Some(state)) = (
        endpoint_of(world.clusters, cluster),
        world.definitions.get(run.job_id.as_str()).and_then(|r| r.parsed.as_ref().ok()),
        states.get(&run.job_id),
    ) else {
        return Ok(());
    };
    let Some(submission) = batch_submission(def, state, run, world.results_table) else { return Ok(()) };
    let policy = retry_policy(world, run);
    let (step, batch) = match batches.submit(endpoint, &submission).await {
        Ok(obs) => {
            report.runs_submitted += 1;
            tracing::info!(run = %run.key(), attempt = %run.attempt, cluster = %cluster, batch_id = obs.id, "run submitted");
            (follow_run(now, run, &policy, Some(&obs), None), Some(obs))
        }
        Err(e) => {
            report.failures.push(JobFailure { job_id: run.job_id.to_string(), error: e.to_string() });
            // The call may have taken effect before its answer was lost: ask Livy by name, adopt
            // the batch if it has it, and otherwise supersede the attempt now (never submit the
            // same attempt twice). If Livy does not answer that either, the run stays submitting
            // and the next follow step past the grace does the same.
            let found = match batches.find(endpoint, &submission.name).await {
                Ok(found) => found,
                Err(again) => {
                    tracing::warn!(run = %run.key(), cluster = %cluster, error = %e, lookup = %again, "submission failed; Livy does not answer");
                    return Ok(());
                }
            };
            tracing::warn!(run = %run.key(), cluster = %cluster, error = %e, adopted = found.is_some(), "submission failed");
            let busy = matches!(e, BatchError::Busy { .. });
            (after_failed_submission(now, run, &policy, found.as_ref(), &e.to_string(), busy), found)
        }
    };
    apply_step(store, batches, now, world, &mut HashMap::new(), run, step, batch, None, report).await.map(|_| ())
}

/// Whether the run is on a cluster the ledger says it must leave: the mover's to move, not a
/// batch to follow through Livy.
fn on_a_leaving_cluster(world: &World<'_>, run: &Run, now: UnixTime) -> bool {
    let cluster = run.status.cluster().and_then(|key| world.clusters.iter().find(|c| &c.key == key));
    cluster.is_some_and(|c| must_move_runs(c, now))
}

/// What Livy knows of a placed run's batch (`Some(None)`: nothing, or its cluster is gone or
/// being left, so Livy is not asked); `None` when Livy does not answer (reported; the run is
/// looked at again next tick).
async fn look_up_batch<B: BatchService>(
    batches: &B,
    now: UnixTime,
    world: &World<'_>,
    run: &Run,
    report: &mut TickReport,
) -> Option<Option<BatchObservation>> {
    let cluster = run.status.cluster()?;
    if on_a_leaving_cluster(world, run, now) {
        return Some(None);
    }
    let Some(endpoint) = endpoint_of(world.clusters, cluster) else { return Some(None) };
    match batches.find(endpoint, &norris_engine::runs::batch_name(run)).await {
        Ok(b) => Some(b),
        Err(e) => {
            // Livy not answering is a cluster-health matter.
            tracing::warn!(run = %run.key(), cluster = %cluster, error = %e, "cannot reach Livy to follow the run");
            report.failures.push(JobFailure { job_id: run.job_id.to_string(), error: e.to_string() });
            None
        }
    }
}

fn retry_policy(world: &World<'_>, run: &Run) -> RetryPolicy {
    world.definitions.get(run.job_id.as_str()).and_then(|r| r.parsed.as_ref().ok()).map(|d| d.retry).unwrap_or_default()
}

/// Carries out the next `step` of a submitting or running `run` (decided by the engine from what
/// Livy said of its `batch` and the `result` its attempt wrote; a superseded attempt's batch is
/// killed). Returns whether it was published (the job's watermark may move) or otherwise finished.
#[allow(clippy::too_many_arguments)]
async fn apply_step<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    world: &World<'_>,
    edits: &mut HashMap<JobId, JobEdit>,
    run: &Run,
    step: RunStep,
    batch: Option<BatchObservation>,
    result: Option<AttemptResult>,
    report: &mut TickReport,
) -> Result<bool, StoreError> {
    let Some(cluster) = run.status.cluster().cloned() else { return Ok(false) };
    let mut next = run.clone();
    next.updated_at = now;
    match step {
        RunStep::Wait => return Ok(false),
        RunStep::MarkRunning(handle) => {
            next.status = RunStatus::Running { cluster, batch: handle, since: now };
            write_run(store, &next, report).await?;
            return Ok(false);
        }
        RunStep::Publish { prefix, rows } => {
            next.status = RunStatus::Published { prefix, rows, at: now };
            next.last_outcome =
                result.as_ref().map(|r| RunOutcome { attempt: r.attempt, summary: r.message.clone(), moved_off: None });
            if write_run(store, &next, report).await?.is_some() {
                report.runs_published += 1;
                tracing::info!(run = %run.key(), attempt = %run.attempt, rows, "window published");
                if let Some(r) = result.as_ref().filter(|r| matches!(r.schema_verdict.as_str(), "first" | "evolved")) {
                    if r.schema_verdict == "evolved" {
                        tracing::info!(job_id = %run.job_id, change = %r.schema_change, "schema evolved");
                    }
                    edits.entry(run.job_id.clone()).or_default().accepted_schema = Some(r.schema_json.clone());
                }
                return Ok(true);
            }
            return Ok(false);
        }
        RunStep::Retry { reason, not_before } => {
            tracing::warn!(run = %run.key(), attempt = %run.attempt, %reason, "attempt failed; retrying");
            next.attempt = run.attempt.next();
            next.failures = run.failures + 1;
            next.status = RunStatus::Pending { not_before };
            next.last_outcome = Some(superseded_outcome(run, reason));
            report.runs_retried += 1;
        }
        RunStep::Requeue { reason } => {
            tracing::warn!(run = %run.key(), attempt = %run.attempt, %reason, "submission refused; placed again");
            next.attempt = run.attempt.next();
            next.status = RunStatus::Pending { not_before: now };
            next.last_outcome = Some(superseded_outcome(run, reason));
        }
        RunStep::GiveUp { reason } => {
            tracing::error!(run = %run.key(), %reason, alarm = "run_failed", "run failed after its last attempt");
            next.status = RunStatus::Failed { reason: reason.clone(), at: now };
            next.failures = run.failures + 1;
            next.last_outcome = Some(superseded_outcome(run, reason));
            report.runs_failed += 1;
        }
        RunStep::Quarantine { reason } => {
            tracing::error!(job_id = %run.job_id, %reason, alarm = "job_quarantined", "breaking schema change; job quarantined");
            next.status = RunStatus::Failed { reason: format!("quarantined: {reason}"), at: now };
            next.last_outcome = Some(RunOutcome { attempt: run.attempt, summary: reason.clone(), moved_off: None });
            edits.entry(run.job_id.clone()).or_default().quarantine = Some(reason);
            report.runs_failed += 1;
        }
    }
    // A superseded attempt may still run: kill it where Livy answers (best effort; even if it
    // lives on, it can never publish).
    if let (Some(endpoint), Some(b)) = (endpoint_of(world.clusters, &cluster), batch.as_ref()) {
        if !b.phase.is_final() {
            if let Err(e) = batches.kill(endpoint, b.id).await {
                tracing::warn!(run = %run.key(), error = %e, "could not kill the superseded attempt");
            }
        }
    }
    Ok(write_run(store, &next, report).await?.is_some())
}

/// Moves the watermarks of `jobs` over their contiguous published windows and applies the
/// edits decided while following, with one versioned write per job.
pub async fn commit_watermarks<S: StateStore>(
    store: &S,
    jobs: &BTreeSet<JobId>,
    states: &mut HashMap<JobId, JobState>,
    edits: &HashMap<JobId, JobEdit>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let to_commit = jobs.iter().filter_map(|id| Some((id, states.get(id)?.clone())));
    let outcomes = at_once(to_commit.map(|(id, state)| async move {
        let mut part = TickReport::default();
        let latest = commit_job(store, id, state, edits.get(id), &mut part).await;
        (id, latest, part)
    }))
    .await;
    let mut first_error = None;
    for (id, latest, part) in outcomes {
        report.absorb(part);
        match latest {
            Ok(Some(latest)) => {
                states.insert(id.clone(), latest);
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One job's commit; the job's state as it now stands when it was written (or found changed).
async fn commit_job<S: StateStore>(
    store: &S,
    id: &JobId,
    state: JobState,
    edit: Option<&JobEdit>,
    report: &mut TickReport,
) -> Result<Option<JobState>, StoreError> {
    let runs = store.runs_of_job(id, state.watermark, 1000).await?;
    let mut next = state.clone();
    if let Some(edit) = edit {
        if let Some(schema) = &edit.accepted_schema {
            next.accepted_schema = Some(schema.clone());
        }
        if let Some(reason) = &edit.quarantine {
            next.validity = Validity::Quarantined { reason: reason.clone() };
            next.due_at = None;
        }
    }
    if let Some(watermark) = advance_watermark(&state, &runs) {
        let committed = runs.iter().filter(|r| r.window.hi <= watermark).count();
        report.windows_committed += committed;
        tracing::info!(job_id = %id, from = %state.watermark, to = %watermark, windows = committed, "watermark committed");
        next.watermark = watermark;
        // `due_at` stays: a job its in-flight limit held back is already due (the cut said
        // so), and one that was not is looked at when its next window is due, not sooner.
    }
    if next == state {
        return Ok(None);
    }
    match store.update_job_state(&next).await {
        Ok(written) => Ok(Some(written)),
        Err(WriteError::Conflict { current }) => {
            report.conflicts += 1;
            Ok(current.map(|c| *c))
        }
        Err(WriteError::Store(e)) => Err(e),
    }
}

/// Why an operator's retry of a run was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryRunError {
    /// No such run.
    #[error("no run {0}")]
    NotFound(String),
    /// Only failed runs are retried by hand; others are still being handled.
    #[error("run {key} is {status}, not failed: only failed runs are retried by hand")]
    NotFailed {
        /// The run.
        key: String,
        /// Its status.
        status: &'static str,
    },
    /// Another writer changed the run meanwhile; look again.
    #[error("run {0} changed meanwhile; try again")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operator's retry of a failed run (after fixing the source, say): a new attempt, pending
/// now, with a new retry budget. The watermark resumes once it publishes.
pub async fn retry_failed_run<S: StateStore>(
    store: &S,
    now: UnixTime,
    key: &norris_model::RunKey,
) -> Result<Run, RetryRunError> {
    let run = store.get_run(key).await?.ok_or_else(|| RetryRunError::NotFound(key.to_string()))?;
    if !matches!(run.status, RunStatus::Failed { .. }) {
        return Err(RetryRunError::NotFailed { key: key.to_string(), status: run.status.name() });
    }
    let mut next = run.clone();
    next.attempt = run.attempt.next();
    next.failures = 0;
    next.status = RunStatus::Pending { not_before: now };
    next.updated_at = now;
    match store.update_run(&next).await {
        Ok(r) => Ok(r),
        Err(WriteError::Conflict { .. }) => Err(RetryRunError::Conflict(key.to_string())),
        Err(WriteError::Store(e)) => Err(e.into()),
    }
}
