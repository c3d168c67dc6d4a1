//! The grouped ledger's decisions (ARCHITECTURE.md, "Plan: the grouped ledger"): cutting a
//! shard's due windows into a group, judging a group attempt's results member by member, and
//! folding settled members into the shard's watermarks. Pure, like the rest of the engine; the
//! per-window rules are the ones runs follow (`cut_windows`, `judge_result`, contiguous
//! watermarks), so a group keeps every per-window promise.
//!
//! Used by the grouped tick (`norris_control::grouped`, what the scheduler Lambda runs) and by
//! the lifecycle passes that move groups off clusters being left.

use crate::runs::{
    judge_batch, judge_result, livy_submission, retry_or_give_up_after, window_spec, BatchVerdict, Placed, RunStep,
    SUBMISSION_GRACE_SECS,
};
use crate::windows::cut_windows;
use norris_model::{
    Attempt, AttemptResult, BatchObservation, BatchSubmission, ClusterKey, ExtractionSpec, Group, GroupKey,
    GroupResult, GroupStatus, JobDefinition, JobId, LivyBatchSpec, Member, MemberState, RetryPolicy, RunOutcome, Shard,
    UnixTime, Validity, Version,
};
use serde_json::json;
use std::collections::BTreeMap;

/// What a tick needs to know of a shard's jobs besides the shard: the extraction spec of each job
/// that may run (enabled, with a valid definition; the others are held), and how many windows of
/// each job are cut and not yet committed (members of the shard's uncommitted groups).
#[derive(Debug, Clone, Default)]
pub struct ShardView<'a> {
    /// Specs of the jobs that may run.
    pub runnable: BTreeMap<JobId, &'a ExtractionSpec>,
    /// Cut and uncommitted windows per job.
    pub uncommitted: BTreeMap<JobId, u32>,
}

/// The group a tick cuts from `shard` at `now`: every due window of every runnable, valid job
/// (under each job's catch-up policy and in-flight limit), keyed by the shard's next `cut_seq`.
/// `None` when nothing is due.
pub fn plan_group(now: UnixTime, shard: &Shard, view: &ShardView<'_>) -> Option<Group> {
    let mut members = Vec::new();
    for (job_id, job) in &shard.jobs {
        let Some(spec) = view.runnable.get(job_id).filter(|_| job.validity == Validity::Valid) else { continue };
        let uncommitted = view.uncommitted.get(job_id).copied().unwrap_or(0);
        let plan = cut_windows(now, spec, job.next_window_lo, uncommitted);
        members.extend(plan.windows.into_iter().map(|window| Member {
            job_id: job_id.clone(),
            window,
            failures: 0,
            state: MemberState::ToDo,
        }));
    }
    if members.is_empty() {
        return None;
    }
    Some(Group {
        key: GroupKey { shard: shard.key.clone(), seq: shard.cut_seq + 1 },
        members,
        attempt: Attempt::FIRST,
        status: GroupStatus::Pending { not_before: now },
        created_at: now,
        updated_at: now,
        last_outcome: None,
        committed: false,
        version: Version::INITIAL,
    })
}

/// The shard once `group` is cut from it, whether this tick created the group or found it created
/// by another (two ticks that read the same shard plan the same key, maybe with other windows;
/// the stored group is the truth): each member's job resumes after its last window in the group,
/// and the shard is due again when its earliest job is.
pub fn shard_after_cut(now: UnixTime, shard: &Shard, group: &Group, view: &ShardView<'_>) -> Shard {
    let mut next = shard.clone();
    next.cut_seq = next.cut_seq.max(group.key.seq);
    let mut cut: BTreeMap<&JobId, u32> = BTreeMap::new();
    for member in &group.members {
        if let Some(job) = next.jobs.get_mut(&member.job_id) {
            job.next_window_lo = job.next_window_lo.max(member.window.hi);
        }
        *cut.entry(&member.job_id).or_default() += 1;
    }
    next.due_at = due_at_after(now, &next, view, &cut);
    next
}

/// When `shard` is next due, as it stands (nothing cut this tick): when its earliest runnable job
/// has a window to cut. `None` when every job is held.
pub fn next_due_at(now: UnixTime, shard: &Shard, view: &ShardView<'_>) -> Option<UnixTime> {
    due_at_after(now, shard, view, &BTreeMap::new())
}

fn due_at_after(now: UnixTime, shard: &Shard, view: &ShardView<'_>, cut: &BTreeMap<&JobId, u32>) -> Option<UnixTime> {
    shard
        .jobs
        .iter()
        .filter(|(_, job)| job.validity == Validity::Valid)
        .filter_map(|(id, job)| {
            let spec = view.runnable.get(id)?;
            let uncommitted = view.uncommitted.get(id).copied().unwrap_or(0) + cut.get(id).copied().unwrap_or(0);
            // Windows still cuttable now (a stored group cut fewer than planned): due now.
            let plan = cut_windows(now, spec, job.next_window_lo, uncommitted);
            Some(if plan.windows.is_empty() { plan.due_at } else { now })
        })
        .min()
}

/// What a group attempt's results did to its members, and what the group does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The group with its members updated (status and attempt unchanged: see `next`).
    pub group: Group,
    /// What the group does next.
    pub next: GroupNext,
    /// Jobs a member found a breaking schema change in, with what changed.
    pub quarantined: Vec<(JobId, String)>,
}

/// A group's next step once its attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupNext {
    /// Every member is published, failed or quarantined.
    Settled,
    /// Some members are left: a new attempt runs them, not before this (the backoff of the member
    /// with the most failures).
    Retry {
        /// Earliest placement of the next attempt.
        not_before: UnixTime,
    },
}

/// Judges the ended attempt's `results` (one per member it ran, `run_key` `<job>@<window lo>`,
/// written under the group's attempt; others are ignored) member by member, as a run's result is
/// judged: published, quarantined, or a failure counted against the member's own budget (its
/// job's `policies` entry, or the default). A member the attempt left without a result (the
/// application died) counts a failure too. Members settled before are left as they are.
pub fn settle_members(
    now: UnixTime,
    group: &Group,
    results: &[AttemptResult],
    policies: &BTreeMap<JobId, RetryPolicy>,
) -> Settlement {
    settle(now, group, results, policies, "the attempt ended without a result for this window")
}

fn settle(
    now: UnixTime,
    group: &Group,
    results: &[AttemptResult],
    policies: &BTreeMap<JobId, RetryPolicy>,
    without_result: &str,
) -> Settlement {
    let of_attempt: BTreeMap<&str, &AttemptResult> =
        results.iter().filter(|r| r.attempt == group.attempt).map(|r| (r.run_key.as_str(), r)).collect();
    let mut next = group.clone();
    let mut quarantined = Vec::new();
    let mut retry_at: Option<UnixTime> = None;
    for member in next.members.iter_mut().filter(|m| m.state == MemberState::ToDo) {
        let policy = policies.get(&member.job_id).copied().unwrap_or_default();
        let key = format!("{}@{}", member.job_id, member.window.lo.0);
        let step = match of_attempt.get(key.as_str()) {
            Some(result) => judge_result(now, member.failures, &policy, result),
            None => retry_or_give_up_after(now, member.failures, &policy, without_result.to_string()),
        };
        match step {
            RunStep::Publish { rows, .. } => member.state = MemberState::Published { attempt: group.attempt, rows },
            RunStep::Quarantine { reason } => {
                quarantined.push((member.job_id.clone(), reason.clone()));
                member.state = MemberState::Quarantined { reason };
            }
            RunStep::GiveUp { reason } => {
                member.failures += 1;
                member.state = MemberState::Failed { reason };
            }
            RunStep::Retry { not_before, .. } => {
                member.failures += 1;
                retry_at = Some(retry_at.map_or(not_before, |t| t.max(not_before)));
            }
            RunStep::Wait | RunStep::MarkRunning(_) | RunStep::Requeue { .. } => {}
        }
    }
    // A member left to do is one that was retried, so `retry_at` is set exactly when some are.
    let next_step = retry_at.map_or(GroupNext::Settled, |not_before| GroupNext::Retry { not_before });
    Settlement { group: next, next: next_step, quarantined }
}

/// The next step for a placed group. Unlike a run, a group is not recorded running when Livy has
/// its batch: it is followed by name from its placement (a group item is a few hundred members,
/// and one write less per attempt is a fifth of its writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupStep {
    /// Nothing to do yet.
    Wait,
    /// The attempt ended (with a result, or without one: every member still to do then counts a
    /// failure): apply the settlement.
    Settle(Box<Settlement>),
    /// Livy refused the submission as busy (no fault of the group's): a new attempt, due at once,
    /// no failure counted.
    Requeue {
        /// What Livy said.
        reason: String,
    },
}

/// The Livy batch name of a group attempt: unique per attempt, found by name like a run's. The
/// key's `/` become `-` (a name is a path segment of Livy's `GET /batches/{name}`); still unique,
/// since the key's four trailing parts are numbers and a size class holds no `/`.
pub fn group_batch_name(group: &Group) -> String {
    format!("norris-group-{}-a{}", group.key.to_string().replace('/', "-"), group.attempt)
}

/// How long a group attempt may run: the longest `retry.attempt_timeout_secs` of the jobs it
/// still runs (members run at once, so the slowest one bounds the group).
pub fn group_attempt_timeout_secs(group: &Group, policies: &BTreeMap<JobId, RetryPolicy>) -> i64 {
    group
        .to_do()
        .map(|m| policies.get(&m.job_id).copied().unwrap_or_default().attempt_timeout_secs)
        .max()
        .unwrap_or_else(|| RetryPolicy::default().attempt_timeout_secs)
}

/// Decides the next step of a placed group from Livy's view of its batch and the attempt's result,
/// by the runs' rules (`judge_batch`): the result is the truth when present; without one, a batch
/// that ended, vanished, never arrived past the submission grace or ran past the timeout ends the
/// attempt, and each member still to do counts a failure.
pub fn follow_group(
    now: UnixTime,
    group: &Group,
    policies: &BTreeMap<JobId, RetryPolicy>,
    batch: Option<&BatchObservation>,
    result: Option<&GroupResult>,
) -> GroupStep {
    if let Some(result) = result.filter(|r| r.attempt == group.attempt && r.group == group.key) {
        return GroupStep::Settle(Box::new(settle_members(now, group, &result.members, policies)));
    }
    // Once Livy has the batch, the attempt runs from its placement: followed by name, whatever
    // id Livy gives it now (a restart may renumber it).
    let placed = match (&group.status, batch) {
        (GroupStatus::Submitting { since, .. } | GroupStatus::Running { since, .. }, Some(b)) => {
            Placed::Running { livy_batch_id: b.id, since: *since }
        }
        (GroupStatus::Submitting { since, .. }, None) => Placed::Submitting { since: *since },
        (GroupStatus::Running { batch, since, .. }, None) => {
            Placed::Running { livy_batch_id: batch.livy_batch_id, since: *since }
        }
        (GroupStatus::Pending { .. } | GroupStatus::Settled { .. }, _) => return GroupStep::Wait,
    };
    match judge_batch(now, placed, group_attempt_timeout_secs(group, policies), batch) {
        BatchVerdict::Wait | BatchVerdict::MarkRunning { .. } => GroupStep::Wait,
        BatchVerdict::Ended { reason } => GroupStep::Settle(Box::new(settle(now, group, &[], policies, &reason))),
    }
}

/// The next step of a group whose own submission call just failed, from what Livy then says of
/// the batch's name (the runs' rule, `after_failed_submission`): adopt the batch if the call took
/// effect before its answer was lost; requeue if Livy was busy; otherwise the attempt ended, and
/// each member still to do counts a failure.
pub fn group_after_failed_submission(
    now: UnixTime,
    group: &Group,
    policies: &BTreeMap<JobId, RetryPolicy>,
    batch: Option<&BatchObservation>,
    error: &str,
    busy: bool,
) -> GroupStep {
    match batch {
        Some(b) => follow_group(now, group, policies, Some(b), None),
        None if busy => GroupStep::Requeue { reason: format!("Livy was busy and refused the submission: {error}") },
        None => {
            let reason = format!("the submission failed and Livy does not have it: {error}");
            GroupStep::Settle(Box::new(settle(now, group, &[], policies, &reason)))
        }
    }
}

/// The group to write once its attempt ended: members as `settlement` judged them; settled when
/// none is left to do, or a new attempt pending after the backoff. `summary` is kept as the ended
/// attempt's outcome for operators.
pub fn group_after_settlement(now: UnixTime, group: &Group, settlement: &Settlement, summary: String) -> Group {
    let mut next = settlement.group.clone();
    next.updated_at = now;
    next.last_outcome = Some(RunOutcome { attempt: group.attempt, summary, moved_off: None });
    match settlement.next {
        GroupNext::Settled => next.status = GroupStatus::Settled { at: now },
        GroupNext::Retry { not_before } => {
            next.attempt = group.attempt.next();
            next.status = GroupStatus::Pending { not_before };
        }
    }
    next
}

/// A new attempt of `group`, pending at `not_before`, without a failure counted: the current one
/// was refused as busy, or its cluster is being left (`moved_off`, kept so operators see where it
/// came from). The new attempt fences the old one, which may still run where nobody can reach it:
/// it can write files but never be published.
pub fn supersede_group(
    group: &Group,
    summary: String,
    moved_off: Option<ClusterKey>,
    now: UnixTime,
    not_before: UnixTime,
) -> Group {
    let mut next = group.clone();
    next.last_outcome = Some(RunOutcome { attempt: group.attempt, summary, moved_off });
    next.attempt = group.attempt.next();
    next.status = GroupStatus::Pending { not_before };
    next.updated_at = now;
    next
}

/// Whether the group was moved off a cluster and waits to be placed again, so the lifecycle
/// passes (every minute) place it rather than the scheduler's next tick (warm failover): pending
/// and due, with the moved-off mark (the pass that moved it may have died before placing it, or
/// its submission failed and the backoff is over). Unlike a run, a group still submitting past
/// the grace is left to the tick's follow, which finds its batch or ends the attempt.
pub fn group_awaits_failover(group: &Group, now: UnixTime) -> bool {
    matches!(group.status, GroupStatus::Pending { not_before } if not_before <= now)
        && group.to_do().next().is_some()
        && group.last_outcome.as_ref().is_some_and(|o| o.moved_off.is_some())
}

/// Whether a moved group's placement was recorded more than the submission grace ago, so the
/// pass that placed it died or its call failed: if Livy has no batch of it, the lifecycle pass
/// places it again ([`resubmit_moved_group`]) rather than leaving it to the scheduler's next tick.
pub fn moved_group_stalled(group: &Group, now: UnixTime) -> bool {
    matches!(group.status, GroupStatus::Submitting { since, .. } if since.secs() + SUBMISSION_GRACE_SECS <= now.secs())
        && group.last_outcome.as_ref().is_some_and(|o| o.moved_off.is_some())
}

/// A stalled moved group (see [`moved_group_stalled`]) Livy has no batch of: its attempt never
/// started, so a new one, pending at once, no failure counted, still marked as moved (it is
/// warm failover's until it runs).
pub fn resubmit_moved_group(group: &Group, now: UnixTime) -> Group {
    let moved_off = group.last_outcome.as_ref().and_then(|o| o.moved_off.clone());
    let summary = format!("attempt {}: its submission never reached Livy", group.attempt);
    supersede_group(group, summary, moved_off, now, now)
}

/// A placed group moved off `cluster` (lost, or drained past its deadline): a new attempt,
/// pending at once, no failure counted. `None` when the group is not on that cluster.
pub fn move_group(group: &Group, cluster: &ClusterKey, why: &str, now: UnixTime) -> Option<Group> {
    if group.status.cluster() != Some(cluster) {
        return None;
    }
    let summary = format!("moved off cluster {cluster}: {why}");
    Some(supersede_group(group, summary, Some(cluster.clone()), now, now))
}

/// The spec of a group attempt (`livy-jobs/README.md`, "Groups"): its members still to do, each a
/// window's run spec under the group's attempt, with its job's accepted schema (`schemas`). A
/// member whose job has no extraction definition here is left out; the attempt's result then has
/// nothing for it, which counts as its failure.
pub fn group_spec(
    group: &Group,
    definitions: &BTreeMap<JobId, &JobDefinition>,
    schemas: &BTreeMap<JobId, String>,
    results_table: &str,
    max_parallel: u32,
) -> serde_json::Value {
    let members: Vec<serde_json::Value> = group
        .to_do()
        .filter_map(|m| {
            let e = definitions.get(&m.job_id)?.extraction()?;
            Some(window_spec(e, &m.job_id, m.window, group.attempt, schemas.get(&m.job_id).map(String::as_str)))
        })
        .collect();
    json!({
        "group_key": group.key.to_string(),
        "attempt": group.attempt.0,
        "results_table": results_table,
        "max_parallel": max_parallel,
        "members": members,
    })
}

/// The Livy submission of a group attempt whose spec the control plane wrote to `spec_uri`, with
/// the cohort's Livy settings (its jobs share them: the settings are part of the cohort).
pub fn group_submission(group: &Group, livy: &LivyBatchSpec, spec_uri: &str) -> BatchSubmission {
    livy_submission(
        livy,
        group_batch_name(group),
        group_batch_name(group),
        vec!["--group-spec-uri".into(), spec_uri.into()],
    )
}

/// What folding a shard's groups into it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// The shard with its watermarks moved, or `None` when none moved.
    pub shard: Option<Shard>,
    /// Groups now fully folded: nothing left to do and every published member under its job's
    /// watermark. They are marked committed after the shard is written (a fold is idempotent, so
    /// dying between the two writes only folds them again).
    pub committed: Vec<GroupKey>,
}

/// Moves each job's watermark over the contiguous published windows of the shard's uncommitted
/// `groups` (any order), as a run's watermark moves: never over a window that is still to do,
/// failed or quarantined.
pub fn fold_into_shard(shard: &Shard, groups: &[Group]) -> Fold {
    let mut windows: BTreeMap<&JobId, Vec<(UnixTime, UnixTime, bool)>> = BTreeMap::new();
    for member in groups.iter().filter(|g| g.key.shard == shard.key).flat_map(|g| &g.members) {
        let published = matches!(member.state, MemberState::Published { .. });
        windows.entry(&member.job_id).or_default().push((member.window.lo, member.window.hi, published));
    }
    let mut next = shard.clone();
    let mut moved = false;
    for (job_id, mut list) in windows {
        let Some(job) = next.jobs.get_mut(job_id) else { continue };
        list.sort();
        for (lo, hi, published) in list {
            if hi <= job.watermark {
                continue;
            }
            if lo != job.watermark || !published {
                break;
            }
            job.watermark = hi;
            moved = true;
        }
    }
    let committed = groups
        .iter()
        .filter(|g| g.key.shard == shard.key && !g.committed)
        .filter(|g| {
            g.members.iter().all(|m| {
                matches!(m.state, MemberState::Published { .. })
                    && next.jobs.get(&m.job_id).is_none_or(|job| m.window.hi <= job.watermark)
            })
        })
        .map(|g| g.key.clone())
        .collect();
    Fold { shard: moved.then_some(next), committed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{AttemptOutcome, CohortKey, JobDefinition, ShardJob, ShardKey, SizeClass, Window};
    use serde_json::json;

    const T0: UnixTime = UnixTime(1_795_305_600);

    fn def(id: &str, max_in_flight: u32) -> JobDefinition {
        JobDefinition::from_document(&json!({
            "job_id": id, "kind": "batch_extraction", "size_class": "small",
            "interval_secs": 300, "lag_secs": 60, "start_at": "2026-11-22T00:00:00Z",
            "max_windows_in_flight": max_in_flight,
            "source": {"jdbc_url": "jdbc:mysql://db/shop",
                "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:s", "table": "t",
                "watermark_column": "u", "primary_key": "id"},
            "lake_uri": "s3://lake/t", "livy": {"file": "s3://code/extract.py"},
            "retry": {"max_attempts": 2}
        }))
        .expect("valid")
    }

    fn shard(jobs: &[(&str, UnixTime)]) -> Shard {
        let cohort = CohortKey { size_class: SizeClass::new("small"), interval_secs: 300, phase_secs: 60 };
        Shard {
            key: ShardKey { cohort, index: 0 },
            jobs: jobs
                .iter()
                .map(|(id, at)| {
                    let job = ShardJob {
                        definition_hash: "h".into(),
                        validity: Validity::Valid,
                        watermark: *at,
                        next_window_lo: *at,
                        schema_hash: None,
                    };
                    (JobId::new(*id), job)
                })
                .collect(),
            cut_seq: 0,
            due_at: Some(T0),
            version: Version::INITIAL,
        }
    }

    fn result(member: &Member, attempt: u32, outcome: AttemptOutcome) -> AttemptResult {
        AttemptResult {
            run_key: format!("{}@{}", member.job_id, member.window.lo.0),
            attempt: Attempt(attempt),
            outcome,
            rows_read: 3,
            rows_written: 3,
            checks: vec![],
            schema_json: "[]".into(),
            schema_verdict: "unchanged".into(),
            schema_change: if outcome == AttemptOutcome::Quarantined {
                "column x dropped".into()
            } else {
                String::new()
            },
            output_prefix: "s3://lake/t/data".into(),
            message: "m".into(),
            finished_at: T0,
        }
    }

    #[test]
    fn a_cohort_is_size_class_interval_and_the_lag_modulo_the_interval() {
        let (a, mut b) = (def("a", 4), def("b", 4));
        let spec_a = a.extraction().expect("extraction");
        let small = SizeClass::new("small");
        let cohort = CohortKey::of(&small, spec_a);
        assert_eq!((cohort.interval_secs, cohort.phase_secs), (300, 60));
        if let norris_model::JobKind::BatchExtraction(spec) = &mut b.kind {
            spec.lag_secs = 360;
        }
        assert_eq!(CohortKey::of(&small, b.extraction().expect("extraction")), cohort, "due at the same moments");
    }

    #[test]
    fn a_tick_cuts_every_runnable_jobs_due_windows_into_one_group_and_the_shard_resumes_after_them() {
        let (a, b) = (def("a", 4), def("b", 4));
        let mut shard = shard(&[("a", T0), ("b", T0.plus_secs(600)), ("held", T0)]);
        let quarantined = Validity::Quarantined { reason: "column x dropped".into() };
        shard.jobs.get_mut(&JobId::new("held")).expect("held").validity = quarantined;
        let view = ShardView {
            runnable: [("a", &a), ("b", &b), ("held", &a)]
                .into_iter()
                .map(|(id, d)| (JobId::new(id), d.extraction().expect("extraction")))
                .collect(),
            uncommitted: BTreeMap::new(),
        };
        // Three windows of `a` are due, one of `b`; `held` (quarantined) has none cut.
        let now = T0.plus_secs(900 + 60);
        let group = plan_group(now, &shard, &view).expect("due");
        assert_eq!(group.key.seq, 1);
        let cut: Vec<(&str, i64)> = group.members.iter().map(|m| (m.job_id.as_str(), m.window.lo.0 - T0.0)).collect();
        assert_eq!(cut, vec![("a", 0), ("a", 300), ("a", 600), ("b", 600)]);
        let after = shard_after_cut(now, &shard, &group, &view);
        assert_eq!(after.cut_seq, 1);
        assert_eq!(after.jobs[&JobId::new("a")].next_window_lo, T0.plus_secs(900));
        assert_eq!(after.jobs[&JobId::new("b")].next_window_lo, T0.plus_secs(900));
        assert_eq!(after.jobs[&JobId::new("held")].next_window_lo, T0, "held jobs are not cut");
        assert_eq!(after.due_at, Some(T0.plus_secs(1200 + 60)), "next due when the next window ends, plus lag");
        assert_eq!(plan_group(now, &after, &view), None, "nothing is cut twice");
    }

    #[test]
    fn the_in_flight_limit_holds_a_job_back_and_keeps_the_shard_due() {
        let a = def("a", 2);
        let shard = shard(&[("a", T0)]);
        let mut view = ShardView::default();
        view.runnable.insert(JobId::new("a"), a.extraction().expect("extraction"));
        view.uncommitted.insert(JobId::new("a"), 1);
        let now = T0.plus_secs(900 + 60);
        let group = plan_group(now, &shard, &view).expect("due");
        assert_eq!(group.members.len(), 1, "two in flight at most, one already is");
        let after = shard_after_cut(now, &shard, &group, &view);
        assert_eq!(after.due_at, Some(now), "windows are still due: look again next tick");
    }

    #[test]
    fn a_group_found_created_by_another_tick_is_the_one_the_shard_follows() {
        let a = def("a", 4);
        let shard = shard(&[("a", T0)]);
        let mut view = ShardView::default();
        view.runnable.insert(JobId::new("a"), a.extraction().expect("extraction"));
        // Another tick, a little earlier, cut one window under the same key.
        let theirs = plan_group(T0.plus_secs(360), &shard, &view).expect("due");
        let ours = plan_group(T0.plus_secs(660), &shard, &view).expect("due");
        assert_eq!(theirs.key, ours.key, "the same key: one conditional create wins");
        assert_eq!((theirs.members.len(), ours.members.len()), (1, 2));
        let after = shard_after_cut(T0.plus_secs(660), &shard, &theirs, &view);
        assert_eq!(after.jobs[&JobId::new("a")].next_window_lo, T0.plus_secs(300), "the stored group is the truth");
        let next = plan_group(T0.plus_secs(660), &after, &view).expect("the rest is cut next");
        assert_eq!((next.key.seq, next.members[0].window.lo), (2, T0.plus_secs(300)));
    }

    #[test]
    fn members_are_judged_one_by_one_and_what_is_left_runs_again_after_the_backoff() {
        let (a, b) = (def("a", 4), def("b", 4));
        let shard = shard(&[("a", T0), ("b", T0), ("c", T0), ("d", T0)]);
        let mut view = ShardView::default();
        for (id, d) in [("a", &a), ("b", &b), ("c", &a), ("d", &b)] {
            view.runnable.insert(JobId::new(id), d.extraction().expect("extraction"));
        }
        let group = plan_group(T0.plus_secs(360), &shard, &view).expect("due");
        let [ma, mb, mc, _md] = &group.members[..] else { panic!("four members: {:?}", group.members) };
        let results = vec![
            result(ma, 1, AttemptOutcome::Succeeded),
            result(mb, 1, AttemptOutcome::Failed),
            result(mc, 1, AttemptOutcome::Quarantined),
            // `d` has no result: the application died before it.
            result(ma, 2, AttemptOutcome::Failed), // another attempt's: ignored
        ];
        let policies = BTreeMap::from([(JobId::new("b"), RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })]);
        let now = T0.plus_secs(400);
        let settled = settle_members(now, &group, &results, &policies);
        let states: Vec<(&MemberState, u32)> = settled.group.members.iter().map(|m| (&m.state, m.failures)).collect();
        assert_eq!(states[0], (&MemberState::Published { attempt: Attempt(1), rows: 3 }, 0));
        assert_eq!(states[1], (&MemberState::ToDo, 1), "a failure with budget left");
        assert!(matches!(states[2], (MemberState::Quarantined { .. }, 0)));
        assert_eq!(states[3], (&MemberState::ToDo, 1), "no result: a failure");
        assert_eq!(settled.quarantined, vec![(JobId::new("c"), "column x dropped".to_string())]);
        let backoff = RetryPolicy::default().backoff_base_secs;
        assert_eq!(settled.next, GroupNext::Retry { not_before: now.plus_secs(backoff) });
        // The next attempt: `b` succeeds, `d` has no result again; the third: `d` (the default
        // budget, 3 attempts) has none again and is given up, and the group settles.
        let mut again = settled.group.clone();
        again.attempt = Attempt(2);
        let ok = result(&again.members[1], 2, AttemptOutcome::Succeeded);
        let second = settle_members(now, &again, &[ok], &policies);
        assert_eq!(second.group.members[1].state, MemberState::Published { attempt: Attempt(2), rows: 3 });
        assert_eq!(second.group.members[3].failures, 2);
        let mut last = second.group.clone();
        last.attempt = Attempt(3);
        let third = settle_members(now, &last, &[], &policies);
        assert!(matches!(third.group.members[3].state, MemberState::Failed { .. }), "{:?}", third.group.members[3]);
        assert_eq!(third.next, GroupNext::Settled);
    }

    #[test]
    fn a_placed_group_is_followed_by_the_runs_rules_and_its_members_pay_for_a_lost_attempt() {
        let a = def("a", 4);
        let shard = shard(&[("a", T0), ("b", T0)]);
        let mut view = ShardView::default();
        view.runnable.insert(JobId::new("a"), a.extraction().expect("extraction"));
        view.runnable.insert(JobId::new("b"), a.extraction().expect("extraction"));
        let mut group = plan_group(T0.plus_secs(360), &shard, &view).expect("due");
        let slow = RetryPolicy { attempt_timeout_secs: 7200, ..RetryPolicy::default() };
        let policies = BTreeMap::from([(JobId::new("b"), slow)]);
        let name = group_batch_name(&group);
        let obs = |id: i64, phase: norris_model::BatchPhase| BatchObservation {
            id,
            name: Some(name.clone()),
            phase,
            log_tail: vec!["java.lang.OutOfMemoryError".into()],
        };
        let since = T0.plus_secs(400);
        group.status = GroupStatus::Submitting { cluster: norris_model::ClusterKey::new("c1"), since };
        assert_eq!(
            follow_group(since.plus_secs(30), &group, &policies, None, None),
            GroupStep::Wait,
            "within the grace"
        );
        let step = follow_group(
            since.plus_secs(30),
            &group,
            &policies,
            Some(&obs(7, norris_model::BatchPhase::Running)),
            None,
        );
        assert_eq!(step, GroupStep::Wait, "running: followed by name from its placement, nothing to write");
        assert_eq!(group_batch_name(&group), "norris-group-small-300-60-0-1-a1", "no / in a URL path segment");
        // The slowest member's timeout bounds the group: 3600 s for `a`, 7200 s for `b`.
        let running = obs(7, norris_model::BatchPhase::Running);
        assert_eq!(group_attempt_timeout_secs(&group, &policies), 7200);
        assert_eq!(follow_group(since.plus_secs(7199), &group, &policies, Some(&running), None), GroupStep::Wait);
        // The application died without a result: every member to do counts a failure, with why.
        let died = obs(7, norris_model::BatchPhase::Failed);
        let GroupStep::Settle(settled) = follow_group(since.plus_secs(60), &group, &policies, Some(&died), None) else {
            panic!("ended")
        };
        assert!(settled.group.members.iter().all(|m| m.failures == 1 && m.state == MemberState::ToDo));
        assert!(matches!(settled.next, GroupNext::Retry { .. }));
        // A result of the current attempt is the truth even if Livy forgot the batch.
        let result = GroupResult {
            group: group.key.clone(),
            attempt: group.attempt,
            members: group.members.iter().map(|m| result(m, 1, AttemptOutcome::Succeeded)).collect(),
            finished_at: since.plus_secs(50),
        };
        let GroupStep::Settle(done) = follow_group(since.plus_secs(60), &group, &policies, None, Some(&result)) else {
            panic!("settled")
        };
        assert_eq!(done.next, GroupNext::Settled);
        let mut stale = result.clone();
        stale.attempt = Attempt(2);
        let step = follow_group(since.plus_secs(60), &group, &policies, None, Some(&stale));
        assert!(
            matches!(step, GroupStep::Settle(ref s) if s.next != GroupNext::Settled),
            "another attempt's result is ignored: {step:?}"
        );
    }

    #[test]
    fn a_group_attempt_runs_its_members_still_to_do_under_its_attempt() {
        let (a, b) = (def("a", 4), def("b", 4));
        let shard = shard(&[("a", T0), ("b", T0)]);
        let mut view = ShardView::default();
        view.runnable.insert(JobId::new("a"), a.extraction().expect("extraction"));
        view.runnable.insert(JobId::new("b"), b.extraction().expect("extraction"));
        let mut group = plan_group(T0.plus_secs(660), &shard, &view).expect("due");
        group.attempt = Attempt(3);
        group.members[0].state = MemberState::Published { attempt: Attempt(2), rows: 1 };
        let definitions = BTreeMap::from([(JobId::new("a"), &a), (JobId::new("b"), &b)]);
        let schemas = BTreeMap::from([(JobId::new("b"), r#"[{"name":"id","type":"bigint","nullable":false}]"#.into())]);
        let spec = group_spec(&group, &definitions, &schemas, "norris-results", 8);
        assert_eq!(spec["group_key"], "small/300/60/0/1");
        assert_eq!((spec["attempt"].as_u64(), spec["max_parallel"].as_u64()), (Some(3), Some(8)));
        let members = spec["members"].as_array().expect("members");
        let keys: Vec<&str> = members.iter().map(|m| m["run_key"].as_str().expect("key")).collect();
        let lo = T0.0;
        assert_eq!(
            keys,
            vec![format!("a@{}", lo + 300), format!("b@{lo}"), format!("b@{}", lo + 300)],
            "not the published one"
        );
        assert!(members.iter().all(|m| m["output_prefix"].as_str().expect("prefix").ends_with("/attempt=3")));
        assert!(members.iter().all(|m| m.get("attempt").is_none() && m.get("results_table").is_none()));
        assert_eq!(members[1]["accepted_schema"][0]["name"], "id");
        assert!(members[0]["accepted_schema"].is_null());
        let submission = group_submission(&group, &a.livy, "s3://code/norris/groups/small-300-60-0-1-a3.json");
        assert_eq!(submission.name, "norris-group-small-300-60-0-1-a3");
        assert_eq!(
            submission.args[..2],
            ["--group-spec-uri".to_string(), "s3://code/norris/groups/small-300-60-0-1-a3.json".into()]
        );
        assert!(submission.conf.contains(&("spark.yarn.tags".into(), "norris-group-small-300-60-0-1-a3".into())));
    }

    #[test]
    fn watermarks_move_over_contiguous_published_windows_across_groups_only() {
        let shard = shard(&[("a", T0), ("b", T0)]);
        let w = |i: i64| Window { lo: T0.plus_secs(300 * i), hi: T0.plus_secs(300 * (i + 1)) };
        let member =
            |id: &str, i: i64, state: MemberState| Member { job_id: JobId::new(id), window: w(i), failures: 0, state };
        let published = || MemberState::Published { attempt: Attempt(1), rows: 1 };
        let group = |seq: u64, members: Vec<Member>| Group {
            key: GroupKey { shard: shard.key.clone(), seq },
            members,
            attempt: Attempt::FIRST,
            status: GroupStatus::Settled { at: T0 },
            created_at: T0,
            updated_at: T0,
            last_outcome: None,
            committed: false,
            version: Version::INITIAL,
        };
        // Group 2 is folded with group 1 whatever the order; `b`'s window 1 is still to do, so
        // its window 2 waits, and group 2 (holding it) is not committed.
        let groups = vec![
            group(2, vec![member("a", 1, published()), member("b", 1, MemberState::ToDo), member("b", 2, published())]),
            group(1, vec![member("a", 0, published()), member("b", 0, published())]),
        ];
        let fold = fold_into_shard(&shard, &groups);
        let folded = fold.shard.expect("moved");
        assert_eq!(folded.jobs[&JobId::new("a")].watermark, T0.plus_secs(600));
        assert_eq!(folded.jobs[&JobId::new("b")].watermark, T0.plus_secs(300), "not over the window to do");
        assert_eq!(fold.committed, vec![groups[1].key.clone()]);
        // Folding again changes nothing (dying between the shard's write and the groups' is safe).
        let again = fold_into_shard(&folded, &groups);
        assert_eq!(again.shard, None);
        assert_eq!(again.committed, vec![groups[1].key.clone()]);
    }
}
