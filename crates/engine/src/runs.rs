//! Following runs: what to do with a run given what Livy and the run's result say, where to place
//! pending runs, and how far a job's watermark may move.

use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchHandle, BatchObservation, BatchPhase, BatchSubmission, Cluster,
    ClusterKey, ClusterState, ExtractionSpec, JobDefinition, JobId, JobState, LivyBatchSpec, RetryPolicy, Run, RunKey,
    RunOutcome, RunStatus, SizeClass, UnixTime, Window,
};
use serde_json::json;
use std::collections::BTreeMap;

/// The next step for a placed run (submitting or running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStep {
    /// Nothing to do yet (starting or running).
    Wait,
    /// The batch is known: record it.
    MarkRunning(BatchHandle),
    /// The current attempt succeeded: publish its output (fenced by the run's version).
    Publish {
        /// Where the output is.
        prefix: String,
        /// Rows written.
        rows: u64,
    },
    /// The attempt failed: supersede it with a new attempt after a backoff.
    Retry {
        /// Why the attempt failed.
        reason: String,
        /// Earliest placement of the next attempt.
        not_before: UnixTime,
    },
    /// The submission was refused for a reason that is not the run's (Livy busy creating other
    /// batches): a new attempt, due at once, no failure counted. Counting it would fail runs
    /// whenever a cluster is merely full.
    Requeue {
        /// What Livy said.
        reason: String,
    },
    /// Every attempt failed: give the run up (the watermark stops before it; an alarm fires).
    GiveUp {
        /// The last failure.
        reason: String,
    },
    /// A breaking schema change: fail the run and quarantine the job.
    Quarantine {
        /// What changed.
        reason: String,
    },
}

/// The batch name of a run attempt: unique per attempt, readable in the Livy UI.
pub fn batch_name(run: &Run) -> String {
    format!("norris-{}-{}-a{}", run.job_id, run.window.lo.0, run.attempt)
}

/// Backoff after the `failures`-th failed attempt: base × 2^(failures − 1), capped.
pub fn backoff_secs(policy: &RetryPolicy, failures: u32) -> i64 {
    let exp = failures.saturating_sub(1).min(30);
    policy.backoff_base_secs.saturating_mul(1_i64 << exp).min(policy.backoff_max_secs)
}

/// A failed attempt counts against the retry budget (`run.failures` before this one); moves do
/// not, so a run moved off two lost clusters still has every retry left.
fn retry_or_give_up(now: UnixTime, run: &Run, policy: &RetryPolicy, reason: String) -> RunStep {
    retry_or_give_up_after(now, run.failures, policy, reason)
}

/// A failed attempt of a window that had `failures_before` failed attempts before it.
pub(crate) fn retry_or_give_up_after(
    now: UnixTime,
    failures_before: u32,
    policy: &RetryPolicy,
    reason: String,
) -> RunStep {
    let failures = failures_before + 1;
    if failures >= policy.max_attempts {
        RunStep::GiveUp { reason: format!("failed attempt {failures} of {}: {reason}", policy.max_attempts) }
    } else {
        RunStep::Retry { reason, not_before: now.plus_secs(backoff_secs(policy, failures)) }
    }
}

/// What an attempt's own result says of a window that had `failures` failed attempts before it:
/// publish, quarantine, or (a failure) retry after a backoff or give up. A run and a member of a
/// group are judged alike.
pub fn judge_result(now: UnixTime, failures: u32, policy: &RetryPolicy, result: &AttemptResult) -> RunStep {
    match result.outcome {
        AttemptOutcome::Succeeded => {
            RunStep::Publish { prefix: result.output_prefix.clone(), rows: result.rows_written }
        }
        AttemptOutcome::Quarantined => RunStep::Quarantine {
            reason: if result.schema_change.is_empty() { result.message.clone() } else { result.schema_change.clone() },
        },
        AttemptOutcome::Failed => {
            let failed: Vec<&str> = result.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
            let reason = if failed.is_empty() {
                result.message.clone()
            } else {
                format!("{} (failed checks: {})", result.message, failed.join(", "))
            };
            retry_or_give_up_after(now, failures, policy, reason)
        }
    }
}

/// How long a run may be submitting before a handler that finds Livy without its batch supersedes
/// it: longer than one submission call with its retries (3 tries of 10 s), so a handler never
/// supersedes a submission another invocation is still making (which would cost the run a
/// failure and a backoff, and leave a fenced batch running for nothing).
pub const SUBMISSION_GRACE_SECS: i64 = 60;

/// Decides the next step of a submitting or running run from Livy's view of its batch (found by
/// name; `None` when Livy does not know it) and the attempt's result (`None` if none was written).
/// The result is the truth when present: Livy may have forgotten a finished batch.
pub fn follow_run(
    now: UnixTime,
    run: &Run,
    policy: &RetryPolicy,
    batch: Option<&BatchObservation>,
    result: Option<&AttemptResult>,
) -> RunStep {
    if let Some(result) = result.filter(|r| r.attempt == run.attempt) {
        return judge_result(now, run.failures, policy, result);
    }
    let placed = match &run.status {
        RunStatus::Submitting { since, .. } => Placed::Submitting { since: *since },
        RunStatus::Running { batch, since, .. } => {
            Placed::Running { livy_batch_id: batch.livy_batch_id, since: *since }
        }
        _ => return RunStep::Wait,
    };
    match judge_batch(now, placed, policy.attempt_timeout_secs, batch) {
        BatchVerdict::Wait => RunStep::Wait,
        BatchVerdict::MarkRunning { livy_batch_id } => {
            RunStep::MarkRunning(BatchHandle { livy_batch_id, batch_name: batch_name(run) })
        }
        BatchVerdict::Ended { reason } => retry_or_give_up(now, run, policy, reason),
    }
}

/// Where a placed attempt is, as far as following its batch goes: a run's and a group's alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Placed; the submission may be under way.
    Submitting {
        /// When the placement was recorded.
        since: UnixTime,
    },
    /// Submitted as the batch with this id.
    Running {
        /// Livy's id at submission (or when last seen).
        livy_batch_id: i64,
        /// When the submission was recorded.
        since: UnixTime,
    },
}

/// What Livy's view of a placed attempt's batch says, when the attempt wrote no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Nothing to do yet.
    Wait,
    /// The batch is known under this id: record it.
    MarkRunning {
        /// Livy's id.
        livy_batch_id: i64,
    },
    /// The attempt is over without a result (died, vanished, never arrived, timed out): a failure.
    Ended {
        /// Why, for operators.
        reason: String,
    },
}

/// Judges a placed attempt without a result from its batch (found by name; `None` when Livy does
/// not know it).
pub fn judge_batch(
    now: UnixTime,
    placed: Placed,
    attempt_timeout_secs: i64,
    batch: Option<&BatchObservation>,
) -> BatchVerdict {
    let ended = |reason: String| BatchVerdict::Ended { reason };
    match (placed, batch) {
        // Never submitted again under the same attempt: Livy may have forgotten the batch in a
        // restart while its application runs on, and two applications of one attempt would
        // write the same prefix. A new attempt fences the old one (the simulator's soak found it).
        (Placed::Submitting { since }, None) if now.secs() < since.secs() + SUBMISSION_GRACE_SECS => BatchVerdict::Wait,
        (Placed::Submitting { .. }, None) => ended(
            "Livy does not know the submission (it never arrived, was refused, or Livy restarted and forgot it)".into(),
        ),
        (Placed::Running { .. }, None) => {
            ended("the batch vanished from Livy without a result (Livy restarted or the cluster was lost)".into())
        }
        (_, Some(b)) if b.phase.is_final() => {
            let last = b.log_tail.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
            let how = match b.phase {
                BatchPhase::Succeeded => "the batch succeeded without writing a result",
                BatchPhase::Killed => "the batch was killed",
                _ => "the batch died",
            };
            ended(if last.is_empty() { how.into() } else { format!("{how}: {last}") })
        }
        (Placed::Submitting { .. }, Some(b)) => BatchVerdict::MarkRunning { livy_batch_id: b.id },
        // Same name, new id (Livy restarted with recovery, or ids were reused): follow the name.
        (Placed::Running { livy_batch_id, .. }, Some(b)) if livy_batch_id != b.id => {
            BatchVerdict::MarkRunning { livy_batch_id: b.id }
        }
        (Placed::Running { since, .. }, Some(b)) if now.0 - since.0 >= attempt_timeout_secs => ended(format!(
            "the batch was still {} after {} s (retry.attempt_timeout_secs is {})",
            b.phase.name(),
            now.0 - since.0,
            attempt_timeout_secs
        )),
        _ => BatchVerdict::Wait,
    }
}

/// The next step of a placed run whose cluster the ledger says it must leave (lost, or draining
/// past its deadline: [`crate::clusters::must_move_runs`]). Its attempt's result, if written,
/// decides as usual: it may have finished just before the loss. Otherwise the run waits for the
/// mover, which gives it a new attempt without counting a failure, keeps the mark warm failover
/// places it by, and applies the failover policy. Followed as a batch Livy no longer has, it
/// would count a failure and wait out a backoff for the loss of a cluster (the simulator found it).
pub fn follow_run_on_a_leaving_cluster(
    now: UnixTime,
    run: &Run,
    policy: &RetryPolicy,
    result: Option<&AttemptResult>,
) -> RunStep {
    match result.filter(|r| r.attempt == run.attempt) {
        Some(result) => follow_run(now, run, policy, None, Some(result)),
        None => RunStep::Wait,
    }
}

/// The next step of a run whose own submission call just failed, from what Livy then says of the
/// batch's name: the call may have taken effect before its answer was lost (adopt the batch), or
/// not (a new attempt now, without waiting out the grace other invocations' submissions get).
/// `busy`: Livy refused it as busy (too many batches being created), which is no fault of the run.
pub fn after_failed_submission(
    now: UnixTime,
    run: &Run,
    policy: &RetryPolicy,
    batch: Option<&BatchObservation>,
    error: &str,
    busy: bool,
) -> RunStep {
    match batch {
        Some(b) => follow_run(now, run, policy, Some(b), None),
        None if busy => RunStep::Requeue { reason: format!("Livy was busy and refused the submission: {error}") },
        None => retry_or_give_up(now, run, policy, format!("the submission failed and Livy does not have it: {error}")),
    }
}

/// What is recorded of an attempt superseded for `reason`. A moved run whose new attempt never
/// started keeps its mark: warm failover goes on placing it until an attempt runs (a moved run
/// whose submission to the peer failed would otherwise wait for the scheduler's next tick).
pub fn superseded_outcome(run: &Run, reason: String) -> RunOutcome {
    let never_started = matches!(run.status, RunStatus::Submitting { .. } | RunStatus::Pending { .. });
    let moved_off = run.last_outcome.as_ref().and_then(|o| o.moved_off.clone()).filter(|_| never_started);
    RunOutcome { attempt: run.attempt, summary: reason, moved_off }
}

/// Where each pending run goes: the least-loaded ready cluster of the job's size class with a free
/// batch slot (`capacity` per cluster). Runs are placed oldest window first; what does not fit
/// waits for the next tick.
pub fn place_runs<'a>(
    pending: &[(&'a Run, &SizeClass)],
    clusters: &[Cluster],
    running_per_cluster: &BTreeMap<ClusterKey, u32>,
    capacity: impl Fn(&SizeClass) -> u32,
) -> Vec<(&'a Run, ClusterKey)> {
    place_attempts(pending, |r| (r.window.lo, r.job_id.clone()), clusters, running_per_cluster, capacity)
}

/// Where each pending attempt (a run's or a group's) goes: the least-loaded ready cluster of its
/// size class with a free batch slot (`capacity` per cluster), in `order`; what does not fit
/// waits for the next tick.
pub fn place_attempts<'a, T, K: Ord>(
    pending: &[(&'a T, &SizeClass)],
    order: impl Fn(&T) -> K,
    clusters: &[Cluster],
    running_per_cluster: &BTreeMap<ClusterKey, u32>,
    capacity: impl Fn(&SizeClass) -> u32,
) -> Vec<(&'a T, ClusterKey)> {
    let mut load: BTreeMap<ClusterKey, u32> = clusters
        .iter()
        .filter(|c| c.state == ClusterState::Ready && c.livy_endpoint.is_some())
        .map(|c| (c.key.clone(), running_per_cluster.get(&c.key).copied().unwrap_or(0)))
        .collect();
    let mut sorted: Vec<&(&T, &SizeClass)> = pending.iter().collect();
    sorted.sort_by_key(|(t, _)| order(t));
    let mut placed = Vec::new();
    for (attempt, size_class) in sorted {
        let best = clusters
            .iter()
            .filter(|c| &c.size_class == *size_class)
            .filter_map(|c| load.get(&c.key).map(|l| (c, *l)))
            .filter(|(_, l)| *l < capacity(size_class))
            .min_by_key(|(c, l)| (*l, c.key.clone()));
        if let Some((cluster, _)) = best {
            *load.entry(cluster.key.clone()).or_default() += 1;
            placed.push((*attempt, cluster.key.clone()));
        }
    }
    placed
}

/// How far the watermark moves: over the contiguous published runs starting at it (`runs` in
/// window order, from the watermark on). Returns `None` when it does not move.
pub fn advance_watermark(state: &JobState, runs: &[Run]) -> Option<UnixTime> {
    let mut watermark = state.watermark;
    for run in runs {
        if run.window.lo != watermark || !matches!(run.status, RunStatus::Published { .. }) {
            break;
        }
        watermark = run.window.hi;
    }
    (watermark > state.watermark).then_some(watermark)
}

/// The attempt's output prefix: unique per window and attempt, so a superseded attempt's files
/// never mix with the current one's.
pub fn output_prefix(lake_uri: &str, run: &Run) -> String {
    window_prefix(lake_uri, run.window.lo, run.attempt)
}

/// Where an attempt writes one window: unique per window and attempt (a group's members write
/// under the group's attempt).
pub fn window_prefix(lake_uri: &str, window_lo: UnixTime, attempt: Attempt) -> String {
    format!("{}/data/window_lo={}/attempt={}", lake_uri.trim_end_matches('/'), window_lo.0, attempt)
}

/// One window's run spec (`livy-jobs/README.md`) without `attempt` and `results_table`: what a run
/// adds to it, and what a group's member is.
pub fn window_spec(
    e: &ExtractionSpec,
    job_id: &JobId,
    window: Window,
    attempt: Attempt,
    accepted_schema: Option<&str>,
) -> serde_json::Value {
    let accepted_schema = accepted_schema
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .unwrap_or(serde_json::Value::Null);
    json!({
        "run_key": RunKey { job_id: job_id.clone(), window_lo: window.lo }.to_string(),
        "job_id": job_id.as_str(),
        "window": {"lo": window.lo.0, "hi": window.hi.0},
        "source": {
            "jdbc_url": e.source.jdbc_url,
            "secret_arn": e.source.secret_arn,
            "table": e.source.table,
            "watermark_column": e.source.watermark_column,
            "primary_key": e.source.primary_key,
            "soft_delete_column": e.source.soft_delete_column,
            "lookback_secs": e.lookback_secs,
        },
        "output_prefix": window_prefix(&e.lake_uri, window.lo, attempt),
        "transform": if e.transform.is_null() { json!({}) } else { e.transform.clone() },
        "accepted_schema": accepted_schema,
    })
}

/// The Livy submission of an attempt named `name`, tagged `tag` in YARN, with the job's (or the
/// cohort's) Livy settings and norris's arguments before the definition's own.
pub fn livy_submission(livy: &LivyBatchSpec, name: String, tag: String, norris_args: Vec<String>) -> BatchSubmission {
    let mut conf = livy.conf.clone();
    conf.retain(|(k, _)| k != "spark.yarn.tags");
    conf.push(("spark.yarn.tags".into(), tag));
    let mut args = norris_args;
    args.extend(livy.args.iter().cloned());
    BatchSubmission {
        name,
        file: livy.file.clone(),
        args,
        conf,
        jars: livy.jars.clone(),
        py_files: livy.py_files.clone(),
        driver_memory: livy.driver_memory.clone(),
        executor_memory: livy.executor_memory.clone(),
        executor_cores: livy.executor_cores,
        num_executors: livy.num_executors,
    }
}

/// The Livy submission of a run attempt: the job's Livy spec plus norris's name, YARN tag and the
/// run spec argument (see `livy-jobs/README.md`).
pub fn batch_submission(
    def: &JobDefinition,
    state: &JobState,
    run: &Run,
    results_table: &str,
) -> Option<BatchSubmission> {
    let e = def.extraction()?;
    let mut spec = window_spec(e, &run.job_id, run.window, run.attempt, state.accepted_schema.as_deref());
    spec["attempt"] = json!(run.attempt.0);
    spec["results_table"] = json!(results_table);
    let tag = format!("norris-run-{}-{}-a{}", run.job_id, run.window.lo.0, run.attempt);
    Some(livy_submission(&def.livy, batch_name(run), tag, vec!["--spec".to_string(), spec.to_string()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{Attempt, Check, JobId, Version, Window};

    const NOW: UnixTime = UnixTime(1_795_306_000);

    fn run(status: RunStatus, attempt: u32) -> Run {
        let mut r = Run::new(JobId::new("orders"), Window { lo: UnixTime(1000), hi: UnixTime(1300) }, UnixTime(900));
        r.status = status;
        r.attempt = Attempt(attempt);
        r.failures = attempt - 1;
        r
    }

    fn running(id: i64) -> RunStatus {
        RunStatus::Running {
            cluster: ClusterKey::new("c1"),
            batch: BatchHandle { livy_batch_id: id, batch_name: "norris-orders-1000-a1".into() },
            since: UnixTime(NOW.0 - 100),
        }
    }

    fn obs(id: i64, phase: BatchPhase) -> BatchObservation {
        BatchObservation { id, name: Some("norris-orders-1000-a1".into()), phase, log_tail: vec!["boom".into()] }
    }

    fn result(attempt: u32, outcome: AttemptOutcome) -> AttemptResult {
        AttemptResult {
            run_key: "orders@1000".into(),
            attempt: Attempt(attempt),
            outcome,
            rows_read: 5,
            rows_written: 5,
            checks: vec![Check {
                name: "primary key unique".into(),
                passed: outcome != AttemptOutcome::Failed,
                detail: String::new(),
            }],
            schema_json: "[]".into(),
            schema_verdict: "unchanged".into(),
            schema_change: String::new(),
            output_prefix: "file:///lake/data/window_lo=1000/attempt=1".into(),
            message: "m".into(),
            finished_at: UnixTime(1200),
        }
    }

    #[test]
    fn a_succeeded_result_of_the_current_attempt_publishes_even_if_livy_forgot_the_batch() {
        let r = run(running(3), 1);
        let step = follow_run(NOW, &r, &RetryPolicy::default(), None, Some(&result(1, AttemptOutcome::Succeeded)));
        assert_eq!(step, RunStep::Publish { prefix: "file:///lake/data/window_lo=1000/attempt=1".into(), rows: 5 });
    }

    #[test]
    fn a_result_of_another_attempt_is_ignored() {
        let r = run(running(3), 2);
        let step = follow_run(
            NOW,
            &r,
            &RetryPolicy::default(),
            Some(&obs(3, BatchPhase::Running)),
            Some(&result(1, AttemptOutcome::Succeeded)),
        );
        assert_eq!(step, RunStep::Wait);
    }

    #[test]
    fn failures_retry_with_exponential_backoff_then_give_up() {
        let policy =
            RetryPolicy { max_attempts: 3, backoff_base_secs: 60, backoff_max_secs: 100, ..Default::default() };
        let step = follow_run(NOW, &run(running(3), 1), &policy, Some(&obs(3, BatchPhase::Failed)), None);
        assert!(
            matches!(step, RunStep::Retry { ref reason, not_before } if reason.contains("boom") && not_before == NOW.plus_secs(60))
        );
        let step = follow_run(NOW, &run(running(3), 2), &policy, None, Some(&result(2, AttemptOutcome::Failed)));
        assert!(
            matches!(step, RunStep::Retry { ref reason, not_before } if reason.contains("primary key unique") && not_before == NOW.plus_secs(100))
        );
        let step = follow_run(NOW, &run(running(3), 3), &policy, Some(&obs(3, BatchPhase::Killed)), None);
        assert!(matches!(step, RunStep::GiveUp { ref reason } if reason.contains("failed attempt 3 of 3")));
    }

    #[test]
    fn moves_do_not_spend_the_retry_budget() {
        let policy =
            RetryPolicy { max_attempts: 3, backoff_base_secs: 60, backoff_max_secs: 100, ..Default::default() };
        // Attempt 3 after two moves and no failure: its failure is the first.
        let mut moved_twice = run(running(3), 3);
        moved_twice.failures = 0;
        let step = follow_run(NOW, &moved_twice, &policy, Some(&obs(3, BatchPhase::Failed)), None);
        assert!(matches!(step, RunStep::Retry { not_before, .. } if not_before == NOW.plus_secs(60)), "{step:?}");
        // After an operator's retry (attempt 4, a new budget) the same holds.
        let mut retried_by_hand = run(running(3), 4);
        retried_by_hand.failures = 0;
        let step = follow_run(NOW, &retried_by_hand, &policy, Some(&obs(3, BatchPhase::Failed)), None);
        assert!(matches!(step, RunStep::Retry { .. }), "{step:?}");
    }

    #[test]
    fn an_attempt_still_running_at_its_timeout_is_retried_and_the_last_one_given_up() {
        let policy = RetryPolicy { attempt_timeout_secs: 3600, ..Default::default() };
        let started = |secs_ago: i64| RunStatus::Running {
            cluster: ClusterKey::new("c1"),
            batch: BatchHandle { livy_batch_id: 3, batch_name: "norris-orders-1000-a1".into() },
            since: UnixTime(NOW.0 - secs_ago),
        };
        let step = follow_run(NOW, &run(started(3599), 1), &policy, Some(&obs(3, BatchPhase::Running)), None);
        assert_eq!(step, RunStep::Wait);
        let step = follow_run(NOW, &run(started(3600), 1), &policy, Some(&obs(3, BatchPhase::Starting)), None);
        assert!(
            matches!(step, RunStep::Retry { ref reason, .. } if reason.contains("still starting after 3600 s")),
            "{step:?}"
        );
        let step = follow_run(NOW, &run(started(7200), 3), &policy, Some(&obs(3, BatchPhase::Running)), None);
        assert!(matches!(step, RunStep::GiveUp { ref reason } if reason.contains("attempt_timeout_secs")), "{step:?}");
        // A result written just before the timeout still wins.
        let step = follow_run(
            NOW,
            &run(started(7200), 1),
            &policy,
            Some(&obs(3, BatchPhase::Running)),
            Some(&result(1, AttemptOutcome::Succeeded)),
        );
        assert!(matches!(step, RunStep::Publish { .. }), "{step:?}");
    }

    #[test]
    fn a_submission_livy_does_not_know_becomes_a_new_attempt_and_a_known_one_is_adopted() {
        let since =
            |secs_ago: i64| RunStatus::Submitting { cluster: ClusterKey::new("c1"), since: UnixTime(NOW.0 - secs_ago) };
        let submitting = run(since(SUBMISSION_GRACE_SECS), 1);
        let step = follow_run(NOW, &submitting, &RetryPolicy::default(), None, None);
        assert!(matches!(step, RunStep::Retry { ref reason, .. } if reason.contains("does not know")), "{step:?}");
        assert_eq!(
            follow_run(NOW, &submitting, &RetryPolicy::default(), Some(&obs(7, BatchPhase::Starting)), None),
            RunStep::MarkRunning(BatchHandle { livy_batch_id: 7, batch_name: "norris-orders-1000-a1".into() })
        );
        // Another invocation may still be making the call.
        let just_placed = run(since(SUBMISSION_GRACE_SECS - 1), 1);
        assert_eq!(follow_run(NOW, &just_placed, &RetryPolicy::default(), None, None), RunStep::Wait);
    }

    #[test]
    fn a_failed_submission_is_adopted_if_it_took_effect_and_superseded_at_once_if_not() {
        let just_placed = run(RunStatus::Submitting { cluster: ClusterKey::new("c1"), since: NOW }, 1);
        let policy = RetryPolicy::default();
        let step = after_failed_submission(NOW, &just_placed, &policy, None, "503 from Livy", false);
        assert!(
            matches!(step, RunStep::Retry { ref reason, not_before } if reason.contains("503 from Livy") && not_before == NOW.plus_secs(60)),
            "{step:?}"
        );
        let step = after_failed_submission(NOW, &just_placed, &policy, None, "too many sessions", true);
        assert!(matches!(step, RunStep::Requeue { ref reason } if reason.contains("busy")), "{step:?}");
        let found = Some(&obs(4, BatchPhase::Starting));
        let step = after_failed_submission(NOW, &just_placed, &policy, found, "timeout", false);
        assert_eq!(
            step,
            RunStep::MarkRunning(BatchHandle { livy_batch_id: 4, batch_name: "norris-orders-1000-a1".into() })
        );
    }

    #[test]
    fn a_moved_run_stays_marked_until_an_attempt_of_it_starts() {
        let moved = RunOutcome { attempt: Attempt(1), summary: "moved".into(), moved_off: Some(ClusterKey::new("c0")) };
        let mut submitting = run(RunStatus::Submitting { cluster: ClusterKey::new("c1"), since: NOW }, 2);
        submitting.last_outcome = Some(moved.clone());
        let outcome = superseded_outcome(&submitting, "refused".into());
        assert_eq!((outcome.attempt, outcome.summary.as_str()), (Attempt(2), "refused"));
        assert_eq!(outcome.moved_off, Some(ClusterKey::new("c0")), "never started on the peer");
        let mut started = run(running(3), 2);
        started.last_outcome = Some(moved);
        assert_eq!(superseded_outcome(&started, "died".into()).moved_off, None, "it ran again: failover is done");
    }

    #[test]
    fn a_running_batch_that_vanished_without_a_result_is_retried() {
        let step = follow_run(NOW, &run(running(3), 1), &RetryPolicy::default(), None, None);
        assert!(matches!(step, RunStep::Retry { ref reason, .. } if reason.contains("vanished")));
    }

    #[test]
    fn a_run_on_a_leaving_cluster_waits_for_the_mover_unless_its_attempt_wrote_a_result() {
        let policy = RetryPolicy::default();
        let on_lost = run(running(3), 2);
        assert_eq!(follow_run_on_a_leaving_cluster(NOW, &on_lost, &policy, None), RunStep::Wait);
        let older = result(1, AttemptOutcome::Succeeded);
        assert_eq!(follow_run_on_a_leaving_cluster(NOW, &on_lost, &policy, Some(&older)), RunStep::Wait);
        let done = result(2, AttemptOutcome::Succeeded);
        let step = follow_run_on_a_leaving_cluster(NOW, &on_lost, &policy, Some(&done));
        assert!(matches!(step, RunStep::Publish { .. }), "finished just before the loss: {step:?}");
        let failed = result(2, AttemptOutcome::Failed);
        let step = follow_run_on_a_leaving_cluster(NOW, &on_lost, &policy, Some(&failed));
        assert!(matches!(step, RunStep::Retry { .. }), "its own failure still counts: {step:?}");
    }

    #[test]
    fn quarantine_carries_the_schema_change() {
        let mut q = result(1, AttemptOutcome::Quarantined);
        q.schema_change = "column price changed type from int to string".into();
        let step = follow_run(NOW, &run(running(3), 1), &RetryPolicy::default(), None, Some(&q));
        assert_eq!(step, RunStep::Quarantine { reason: "column price changed type from int to string".into() });
    }

    fn cluster(key: &str, size: &str, state: ClusterState) -> Cluster {
        Cluster {
            key: ClusterKey::new(key),
            size_class: SizeClass::new(size),
            generation: 1,
            emr_cluster_id: None,
            livy_endpoint: Some("http://127.0.0.1:1".into()),
            state,
            created_at: UnixTime(0),
            ready_at: Some(UnixTime(0)),
            rotate_after: UnixTime(99_999),
            version: Version::INITIAL,
        }
    }

    #[test]
    fn placement_fills_the_least_loaded_ready_cluster_of_the_size_class_up_to_capacity() {
        let clusters = vec![
            cluster("a", "small", ClusterState::Ready),
            cluster("b", "small", ClusterState::Ready),
            cluster("c", "small", ClusterState::Draining { since: UnixTime(0), deadline: UnixTime(5) }),
            cluster("d", "large", ClusterState::Ready),
        ];
        let runs: Vec<Run> = (0..5)
            .map(|i| {
                Run::new(JobId::new(format!("j{i}")), Window { lo: UnixTime(i), hi: UnixTime(i + 1) }, UnixTime(0))
            })
            .collect();
        let small = SizeClass::new("small");
        let pending: Vec<(&Run, &SizeClass)> = runs.iter().map(|r| (r, &small)).collect();
        let load = BTreeMap::from([(ClusterKey::new("a"), 1)]);
        let placed = place_runs(&pending, &clusters, &load, |_| 2);
        let targets: Vec<&str> = placed.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(targets, vec!["b", "a", "b"], "a has 1 running; capacity 2 each; never c or d");
    }

    #[test]
    fn the_watermark_moves_over_contiguous_published_runs_only() {
        let mut state = crate::definitions::tests_support::state_at(UnixTime(1000));
        let published = |lo: i64| {
            let mut r =
                Run::new(JobId::new("orders"), Window { lo: UnixTime(lo), hi: UnixTime(lo + 300) }, UnixTime(0));
            r.status = RunStatus::Published { prefix: "p".into(), rows: 1, at: UnixTime(0) };
            r
        };
        let pending = Run::new(JobId::new("orders"), Window { lo: UnixTime(1600), hi: UnixTime(1900) }, UnixTime(0));
        let runs = vec![published(1000), published(1300), pending, published(1900)];
        assert_eq!(advance_watermark(&state, &runs), Some(UnixTime(1600)), "stops at the gap");
        state.watermark = UnixTime(1600);
        assert_eq!(advance_watermark(&state, &runs[2..]), None);
    }

    #[test]
    fn submissions_carry_name_tag_and_the_run_spec() {
        let def = crate::definitions::tests_support::def(true);
        let state = crate::definitions::tests_support::state_at(UnixTime(1000));
        let r = run(RunStatus::Pending { not_before: UnixTime(0) }, 2);
        let sub = batch_submission(&def, &state, &r, "norris-results").expect("extraction");
        assert_eq!(sub.name, "norris-orders-1000-a2");
        assert!(sub.conf.contains(&("spark.yarn.tags".into(), "norris-run-orders-1000-a2".into())));
        assert_eq!(sub.args[0], "--spec");
        let spec: serde_json::Value = serde_json::from_str(&sub.args[1]).expect("json");
        assert_eq!(spec["attempt"], 2);
        assert_eq!(spec["output_prefix"], "s3://lake/orders/data/window_lo=1000/attempt=2");
        assert_eq!(spec["results_table"], "norris-results");
        assert!(!sub.args[1].contains("password"));
    }
}
