//! The extraction scheduler's tick: reconcile definitions, cut due windows into runs.
//!
//! Crash and concurrency safety: runs are created before the job state that records them
//! (`next_window_lo`), each by a conditional create; a tick that dies in between leaves runs the
//! next tick finds again (the create conflicts with the same window and is taken as done). Two
//! ticks at once cut the same windows from the same state; one create and one state update win,
//! the other tick sees conflicts and leaves the job alone. Placement, submission, following and
//! commit live in `follow.rs`, on the same pattern.

use crate::config::SchedulerConfig;
use crate::follow::{at_once, commit_watermarks, follow_active_runs, World};
use norris_engine::runs::advance_watermark;
use norris_engine::{cut_windows, reconcile_job, DefinitionView, JobChange};
use norris_model::{DefinitionError, JobDefinition, JobId, JobState, Run, UnixTime, Validity};
use norris_ports::{Annotation, BatchService, DefinitionRecord, StateStore, StoreError, WriteError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The periodic-task name of the definition sweep.
pub const DEFINITION_SWEEP_TASK: &str = "definition-sweep";

/// A job the tick could not handle, and why (reported, never silently skipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFailure {
    /// The job.
    pub job_id: String,
    /// What went wrong.
    pub error: String,
}

/// What one tick did; returned by the Lambda, logged, and asserted on by tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// The tick's `now`.
    pub now: i64,
    /// Whether this tick ran the definition sweep.
    pub swept: bool,
    /// Definitions the sweep found new or changed.
    pub definitions_reconciled: usize,
    /// Due jobs looked at.
    pub jobs_due: usize,
    /// Runs created.
    pub windows_cut: usize,
    /// Attempts submitted to Livy.
    pub runs_submitted: usize,
    /// Attempts published (fenced write succeeded).
    pub runs_published: usize,
    /// Windows committed (the watermark moved over them).
    pub windows_committed: usize,
    /// Attempts that failed and were superseded by a new attempt.
    pub runs_retried: usize,
    /// Runs given up (last attempt failed, or quarantined).
    pub runs_failed: usize,
    /// Pending runs with no ready cluster slot this tick.
    pub runs_waiting_for_a_cluster: usize,
    /// Seconds from each looked-at job's watermark to `now` (data freshness).
    pub watermark_lag_secs: Vec<(String, i64)>,
    /// Jobs whose definition is invalid, with every problem (`path: reason`).
    pub invalid_jobs: Vec<(String, Vec<String>)>,
    /// Writes lost to a concurrent writer (another tick did the same work).
    pub conflicts: usize,
    /// Jobs that failed for a store error; they stay due and are retried next tick.
    pub failures: Vec<JobFailure>,
}

impl TickReport {
    /// Adds what a part of the tick counted (one run's steps, run concurrently with others).
    pub fn absorb(&mut self, part: TickReport) {
        self.definitions_reconciled += part.definitions_reconciled;
        self.jobs_due += part.jobs_due;
        self.windows_cut += part.windows_cut;
        self.runs_submitted += part.runs_submitted;
        self.runs_published += part.runs_published;
        self.windows_committed += part.windows_committed;
        self.runs_retried += part.runs_retried;
        self.runs_failed += part.runs_failed;
        self.runs_waiting_for_a_cluster += part.runs_waiting_for_a_cluster;
        self.watermark_lag_secs.extend(part.watermark_lag_secs);
        self.invalid_jobs.extend(part.invalid_jobs);
        self.conflicts += part.conflicts;
        self.failures.extend(part.failures);
    }
}

/// Errors that end a tick early (the store is down for everything).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The store failed on a step every job needs.
    #[error("scheduler tick failed: {0}")]
    Store(#[from] StoreError),
}

/// Runs one scheduler tick at `now`: the definition sweep (when due), cutting the due jobs'
/// windows, placing and following every unfinished run, and committing watermarks.
pub async fn scheduler_tick<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    config: &SchedulerConfig,
) -> Result<TickReport, TickError> {
    let mut report = TickReport { now: now.secs(), ..TickReport::default() };
    if store.claim_periodic(DEFINITION_SWEEP_TASK, now, now.plus_secs(config.definition_sweep_secs)).await? {
        report.swept = true;
        sweep_definitions(store, now, &mut report).await?;
    }
    let due = store.due_jobs(now, config.max_due_per_tick).await?;
    report.jobs_due = due.len();
    let ids: Vec<JobId> = due.iter().map(|s| s.job_id.clone()).collect();
    let definitions: HashMap<String, DefinitionRecord<JobDefinition>> =
        store.get_job_definitions(&ids).await?.into_iter().map(|r| (r.key.clone(), r)).collect();
    let (states, may_commit) = tick_jobs(store, now, &definitions, due, &mut report).await;
    let watermarks: HashMap<JobId, UnixTime> = states.iter().map(|(id, s)| (id.clone(), s.watermark)).collect();
    let committed = follow_and_commit(
        store,
        batches,
        now,
        config,
        definitions.clone(),
        states,
        &may_commit,
        FollowScope::Everything,
        &mut report,
    )
    .await?;
    catch_up(store, batches, now, config, definitions, committed, &watermarks, &mut report).await?;
    tracing::info!(
        swept = report.swept,
        jobs_due = report.jobs_due,
        windows_cut = report.windows_cut,
        runs_submitted = report.runs_submitted,
        runs_published = report.runs_published,
        windows_committed = report.windows_committed,
        runs_retried = report.runs_retried,
        runs_failed = report.runs_failed,
        invalid = report.invalid_jobs.len(),
        conflicts = report.conflicts,
        failures = report.failures.len(),
        "scheduler tick done"
    );
    Ok(report)
}

/// A job that was held back by its in-flight limit and had windows committed this tick has free
/// slots again: its next windows are cut and placed in the same tick rather than the next one,
/// which doubles how fast a job behind catches up (4 windows a tick instead of 4 every 2 ticks
/// at the default limit). Jobs on time are not touched: their next window is not due yet.
#[allow(clippy::too_many_arguments)]
async fn catch_up<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    config: &SchedulerConfig,
    definitions: HashMap<String, DefinitionRecord<JobDefinition>>,
    committed: HashMap<JobId, JobState>,
    watermarks_before: &HashMap<JobId, UnixTime>,
    report: &mut TickReport,
) -> Result<(), TickError> {
    // In job order, so that a run replays exactly (the simulator depends on it).
    let committed: BTreeMap<JobId, JobState> = committed.into_iter().collect();
    let behind: Vec<JobState> = committed
        .into_iter()
        .filter(|(id, state)| {
            let moved = watermarks_before.get(id).is_some_and(|before| state.watermark > *before);
            let spec = definitions.get(id.as_str()).and_then(|r| r.parsed.as_ref().ok()).and_then(|d| d.extraction());
            moved && spec.is_some_and(|spec| !cut_windows(now, spec, state.next_window_lo, 0).windows.is_empty())
        })
        .map(|(_, state)| state)
        .collect();
    let (states, _) = tick_jobs(store, now, &definitions, behind, report).await;
    if states.is_empty() {
        return Ok(());
    }
    let jobs: BTreeSet<JobId> = states.keys().cloned().collect();
    follow_and_commit(store, batches, now, config, definitions, states, &jobs, FollowScope::PlaceOnly(&jobs), report)
        .await
        .map(|_| ())
}

/// A job after [`tick_job`]: its state as it now stands, and whether its watermark may move at
/// this tick's commit even if none of its runs is published by this tick (a run at the
/// watermark already published: a tick died between publishing and committing; or its runs
/// were not read).
struct Ticked {
    state: JobState,
    may_commit: bool,
}

/// Cuts the windows of `jobs` (due, or behind), [`crate::follow::RUN_CONCURRENCY`] jobs at
/// once; returns each job's state as it now stands, and the jobs whose watermark may move
/// whatever this tick publishes. A job that fails stays due and is reported.
async fn tick_jobs<S: StateStore>(
    store: &S,
    now: UnixTime,
    definitions: &HashMap<String, DefinitionRecord<JobDefinition>>,
    jobs: Vec<JobState>,
    report: &mut TickReport,
) -> (HashMap<JobId, JobState>, BTreeSet<JobId>) {
    let ticked = at_once(jobs.into_iter().map(|state| async move {
        let mut part = TickReport::default();
        let id = state.job_id.clone();
        let latest = tick_job(store, now, definitions.get(id.as_str()), state, &mut part).await;
        (id, latest, part)
    }))
    .await;
    let mut states = HashMap::new();
    let mut may_commit = BTreeSet::new();
    for (id, latest, part) in ticked {
        report.absorb(part);
        match latest {
            Ok(Some(ticked)) => {
                if ticked.may_commit {
                    may_commit.insert(id.clone());
                }
                states.insert(id, ticked.state);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(job_id = %id, error = %e, "job left due after a store error");
                report.failures.push(JobFailure { job_id: id.to_string(), error: e.to_string() });
            }
        }
    }
    (states, may_commit)
}

/// What a pass of [`follow_and_commit`] does.
#[derive(Debug, Clone, Copy)]
pub enum FollowScope<'a> {
    /// Follow every unfinished run, place the pending ones, commit watermarks.
    Everything,
    /// Only place these jobs' pending runs (windows cut for catch-up after this tick's commits).
    PlaceOnly(&'a BTreeSet<JobId>),
}

/// Places pending runs, follows every unfinished run, publishes finished attempts and commits
/// watermarks: the second half of a tick, and what the job migrator runs right after moving runs
/// off a lost cluster (warm failover, without waiting for the next tick). `definitions` and
/// `states` hold what the caller already read; the rest is read here. Commits the jobs something
/// was published for and those in `may_commit`. Returns the job states after the commit.
#[allow(clippy::too_many_arguments)]
pub async fn follow_and_commit<S: StateStore, B: BatchService>(
    store: &S,
    batches: &B,
    now: UnixTime,
    config: &SchedulerConfig,
    mut definitions: HashMap<String, DefinitionRecord<JobDefinition>>,
    mut states: HashMap<JobId, JobState>,
    may_commit: &BTreeSet<JobId>,
    scope: FollowScope<'_>,
    report: &mut TickReport,
) -> Result<HashMap<JobId, JobState>, TickError> {
    let place_only = match scope {
        FollowScope::Everything => None,
        FollowScope::PlaceOnly(jobs) => Some(jobs),
    };
    let in_scope = |id: &JobId| place_only.is_none_or(|jobs| jobs.contains(id));
    // Unfinished runs, and what following them needs: their jobs' definitions and states.
    let active = store.active_runs().await?;
    let missing: Vec<JobId> = active
        .iter()
        .map(|r| r.job_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|id| in_scope(id) && !definitions.contains_key(id.as_str()))
        .collect();
    definitions.extend(store.get_job_definitions(&missing).await?.into_iter().map(|r| (r.key.clone(), r)));
    let unread: Vec<JobId> = active
        .iter()
        .map(|r| &r.job_id)
        .filter(|id| in_scope(id) && !states.contains_key(*id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    states.extend(store.get_job_states(&unread).await?.into_iter().map(|s| (s.job_id.clone(), s)));
    let clusters = store.list_clusters().await?;
    let slots = crate::follow::batch_slots(store).await?;
    let results_table = format!("{}-results", config.table_prefix);
    let world = World { clusters: &clusters, slots: &slots, definitions: &definitions, results_table: &results_table };
    let mut edits = HashMap::new();
    let touched =
        follow_active_runs(store, batches, now, &world, active, &states, &mut edits, place_only, report).await?;
    if place_only.is_some() {
        return Ok(states);
    }
    // Jobs something was published for, and the due jobs whose watermark may move anyway: a tick
    // that died between publishing and committing is completed this way (the job state alone
    // cannot tell; the simulator found the case where it looked committed).
    let to_commit: BTreeSet<JobId> = touched.union(may_commit).cloned().collect();
    commit_watermarks(store, &to_commit, &mut states, &edits, report).await?;
    let mut lags: Vec<(String, i64)> = states
        .values()
        .filter(|s| s.validity == Validity::Valid && s.next_window_lo != JobState::NOT_STARTED)
        .map(|s| (s.job_id.to_string(), now.secs() - s.watermark.secs()))
        .collect();
    lags.sort();
    report.watermark_lag_secs = lags;
    Ok(states)
}

fn view(record: Option<&DefinitionRecord<JobDefinition>>) -> DefinitionView<'_> {
    match record {
        None => DefinitionView::Missing,
        Some(r) => DefinitionView::Present { hash: &r.hash, parsed: r.parsed.as_ref() },
    }
}

/// Reads every definition and reconciles those not yet reconciled at their current hash.
async fn sweep_definitions<S: StateStore>(store: &S, now: UnixTime, report: &mut TickReport) -> Result<(), TickError> {
    for record in store.scan_job_definitions().await? {
        if record.reconciled_hash.as_deref() == Some(record.hash.as_str()) {
            continue;
        }
        report.definitions_reconciled += 1;
        let id = JobId::new(record.key.clone());
        let result = async {
            let state = store.get_job_state(&id).await?;
            apply_definition(store, now, &record, state, report).await.map(|_| ())
        }
        .await;
        if let Err(e) = result {
            report.failures.push(JobFailure { job_id: record.key.clone(), error: e.to_string() });
        }
    }
    Ok(())
}

/// Brings a job's state in line with its definition, annotates the definition item, and returns
/// the state now stored (`None` when another writer got there first).
async fn apply_definition<S: StateStore>(
    store: &S,
    now: UnixTime,
    record: &DefinitionRecord<JobDefinition>,
    state: Option<JobState>,
    report: &mut TickReport,
) -> Result<Option<JobState>, StoreError> {
    let current = match reconcile_job(now, view(Some(record)), state.as_ref()) {
        None => state,
        Some(change) => {
            let written = match &change {
                JobChange::Create(s) => store.create_job_state(s).await,
                JobChange::Update(s) => store.update_job_state(s).await,
            };
            match written {
                Ok(s) => Some(s),
                Err(WriteError::Conflict { .. }) => {
                    report.conflicts += 1;
                    return Ok(None);
                }
                Err(WriteError::Store(e)) => return Err(e),
            }
        }
    };
    let Some(current) = current else { return Ok(None) };
    if let Err(e) = &record.parsed {
        note_invalid(e, report);
    }
    let (status, problems) = verdict(&current.validity, &record.parsed);
    // Unchanged verdicts are not rewritten: a due job is reconciled on every tick, and one write
    // per due job per tick would be most of the scheduler's DynamoDB bill.
    let unchanged = record.reconciled_hash.as_deref() == Some(record.hash.as_str())
        && record.annotated_status.as_deref() == Some(status);
    if !unchanged {
        let annotation = Annotation { status: status.into(), problems, hash: record.hash.clone() };
        store.annotate_job_definition(&current.job_id, &annotation).await?;
    }
    Ok(Some(current))
}

/// The verdict on a definition written on its item: `valid`, `invalid` (with every problem),
/// `quarantined` or `disabled`.
pub(crate) fn verdict(
    validity: &Validity,
    parsed: &Result<JobDefinition, DefinitionError>,
) -> (&'static str, Vec<norris_model::FieldProblem>) {
    let status = match (validity, parsed) {
        (Validity::Invalid { .. }, _) => "invalid",
        (Validity::Quarantined { .. }, _) => "quarantined",
        (Validity::Valid, Ok(def)) if !def.enabled => "disabled",
        (Validity::Valid, _) => "valid",
    };
    let problems = match validity {
        Validity::Invalid { problems } => problems.clone(),
        _ => Vec::new(),
    };
    (status, problems)
}

/// Reports an invalid definition (logged and in the tick's report; the job is skipped).
pub(crate) fn note_invalid(e: &DefinitionError, report: &mut TickReport) {
    tracing::warn!(job_id = %e.id, problems = %e, "job definition is invalid; the job is skipped");
    report.invalid_jobs.push((e.id.clone(), e.problems.iter().map(ToString::to_string).collect()));
}

/// One due job: reconcile its definition, then cut its due windows. Returns the job's state as
/// stored now (`None` if another invocation is handling it).
async fn tick_job<S: StateStore>(
    store: &S,
    now: UnixTime,
    record: Option<&DefinitionRecord<JobDefinition>>,
    state: JobState,
    report: &mut TickReport,
) -> Result<Option<Ticked>, StoreError> {
    let state = match record {
        Some(record) => match apply_definition(store, now, record, Some(state), report).await? {
            Some(s) => s,
            None => return Ok(None),
        },
        None => {
            // Deleted definition: unschedule, keep the ledger.
            if let Some(JobChange::Update(next)) = reconcile_job(now, DefinitionView::Missing, Some(&state)) {
                match store.update_job_state(&next).await {
                    Ok(s) => {
                        tracing::info!(job_id = %state.job_id, "job definition deleted; job unscheduled");
                        return Ok(Some(Ticked { state: s, may_commit: true }));
                    }
                    Err(WriteError::Conflict { .. }) => report.conflicts += 1,
                    Err(WriteError::Store(e)) => return Err(e),
                }
            }
            return Ok(None);
        }
    };
    let not_cut = |state| Ok(Some(Ticked { state, may_commit: true }));
    let Some(def) = record.and_then(|r| r.parsed.as_ref().ok()) else { return not_cut(state) };
    let (Some(spec), Some(due_at)) = (def.extraction(), state.due_at) else { return not_cut(state) };
    if due_at > now || state.validity != Validity::Valid {
        return not_cut(state);
    }
    // Windows cut and not yet committed: the runs from the watermark on (only the count up to the
    // in-flight limit matters, so that is all that is read).
    let limit = spec.max_windows_in_flight as usize;
    let from_watermark = store.runs_of_job(&state.job_id, state.watermark, limit).await?;
    let may_commit = advance_watermark(&state, &from_watermark).is_some();
    let uncommitted = from_watermark.len() as u32;
    let plan = cut_windows(now, spec, state.next_window_lo, uncommitted);
    let mut next_window_lo = state.next_window_lo;
    for window in &plan.windows {
        match store.create_run(&Run::new(state.job_id.clone(), *window, now)).await {
            Ok(_) => {
                report.windows_cut += 1;
                next_window_lo = window.hi;
            }
            Err(WriteError::Conflict { current: Some(existing) }) => {
                // Cut before (a tick that died before recording it, or a concurrent tick): keep
                // the existing window and cut again from its end next time.
                report.conflicts += 1;
                next_window_lo = existing.window.hi;
                if existing.window != *window {
                    break;
                }
            }
            Err(WriteError::Conflict { current: None }) => report.conflicts += 1,
            Err(WriteError::Store(e)) => return Err(e),
        }
    }
    let mut next = state.clone();
    next.next_window_lo = next_window_lo;
    next.due_at = Some(if next_window_lo == plan.next_window_lo { plan.due_at } else { now });
    match store.update_job_state(&next).await {
        Ok(s) => Ok(Some(Ticked { state: s, may_commit })),
        Err(WriteError::Conflict { .. }) => {
            report.conflicts += 1;
            Ok(None)
        }
        Err(WriteError::Store(e)) => Err(e),
    }
}

/// Why an invocation of the scheduler Lambda failed (the runtime reports it as the error type).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The event was not a scheduled event; nothing was read or written.
    #[error(transparent)]
    Event(#[from] crate::events::EventError),
    /// The tick could not run.
    #[error(transparent)]
    Tick(#[from] TickError),
    /// The tick ran but some jobs failed on store errors: they stay due and are retried next
    /// tick; failing the invocation makes the Lambda error metric (and its alarm) see it.
    #[error("scheduler tick left {} job(s) due after store errors: {}", .0.failures.len(), .0.failures.iter().map(|f| format!("{}: {}", f.job_id, f.error)).collect::<Vec<_>>().join("; "))]
    JobsFailed(Box<TickReport>),
}

/// The scheduler Lambda's handler: checks the event, runs one tick at the clock's `now`.
pub async fn handle_event<S: StateStore, B: BatchService, C: norris_ports::Clock>(
    store: &S,
    batches: &B,
    clock: &C,
    config: &SchedulerConfig,
    payload: &serde_json::Value,
) -> Result<TickReport, SchedulerError> {
    let event = crate::events::ScheduledEvent::parse(payload)?;
    tracing::info!(event_id = %event.id, "scheduler tick requested");
    let started = std::time::Instant::now();
    let report = scheduler_tick(store, batches, clock.now(), config).await?;
    finish_tick(report, config, started)
}

/// Emits a tick's metrics and turns its failures into the invocation's error.
pub(crate) fn finish_tick(
    report: TickReport,
    config: &SchedulerConfig,
    started: std::time::Instant,
) -> Result<TickReport, SchedulerError> {
    let tick_millis = started.elapsed().as_millis() as u64;
    for doc in crate::metrics::tick_documents(&report, &config.table_prefix, tick_millis) {
        // EMF: CloudWatch Logs extracts the metrics from this stdout line.
        println!("{doc}");
    }
    if report.failures.is_empty() {
        Ok(report)
    } else {
        Err(SchedulerError::JobsFailed(Box::new(report)))
    }
}

/// Reconciles one job's definition now (what `norris jobs put` does right after writing it, so a
/// new job is scheduled without waiting for the periodic sweep). Returns the report of that work.
pub async fn reconcile_now<S: StateStore>(store: &S, now: UnixTime, id: &JobId) -> Result<TickReport, TickError> {
    let mut report = TickReport { now: now.secs(), ..TickReport::default() };
    let record = store.get_job_definitions(std::slice::from_ref(id)).await?.pop();
    let state = store.get_job_state(id).await?;
    match record {
        Some(record) => {
            report.definitions_reconciled = 1;
            apply_definition(store, now, &record, state, &mut report).await?;
        }
        None => {
            if let Some(JobChange::Update(next)) = reconcile_job(now, DefinitionView::Missing, state.as_ref()) {
                if let Err(WriteError::Store(e)) = store.update_job_state(&next).await {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(report)
}
