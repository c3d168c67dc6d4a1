//! Cluster lifecycle decisions: what EMR's view of a cluster means for norris's record of it, how
//! many clusters a pool launches, which ones drain for rotation, when one may be terminated, and
//! how a run leaves a cluster that is lost or drained.
//!
//! A pool keeps `min_clusters` *fresh* clusters (launching, starting or ready, and not yet due for
//! rotation), at least one while it has work. A lost cluster is not fresh, so its replacement is
//! launched by the same rule that starts a pool; a cluster past `rotate_after` is not fresh
//! either, so its replacement is launched while it keeps serving, and it drains only once enough
//! fresh clusters are ready (make-before-break).

use crate::runs::SUBMISSION_GRACE_SECS;
use norris_model::{
    Attempt, Cluster, ClusterKey, ClusterState, EmrCluster, PoolDefinition, Run, RunOutcome, RunStatus, UnixTime,
};

/// What a pool needs done now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolDecision {
    /// Record a launch under `key` (a conditional create: one launch per key), then launch it.
    Launch {
        /// The ledger key, `<size_class>-<generation>`.
        key: ClusterKey,
        /// One more than any generation the pool had.
        generation: u32,
    },
    /// Stop placing work on the cluster; what still runs at `deadline` is moved.
    Drain {
        /// The cluster.
        key: ClusterKey,
        /// When the migrator takes what is left.
        deadline: UnixTime,
    },
}

/// Whether a cluster counts towards its pool's capacity: alive and not due for rotation.
pub fn is_fresh(cluster: &Cluster, now: UnixTime) -> bool {
    matches!(cluster.state, ClusterState::Launching { .. } | ClusterState::Starting | ClusterState::Ready)
        && cluster.rotate_after > now
}

/// The pool's decisions at `now`, given every cluster record (any pool) and whether the pool has
/// runs to place or running.
pub fn plan_pool(
    pool: &PoolDefinition,
    clusters: &[Cluster],
    has_work: bool,
    now: UnixTime,
    drain_secs: i64,
) -> Vec<PoolDecision> {
    let mine: Vec<&Cluster> = clusters.iter().filter(|c| c.size_class == pool.size_class).collect();
    let desired = pool.min_clusters.max(u32::from(has_work)).min(pool.max_clusters);
    let fresh = mine.iter().filter(|c| is_fresh(c, now)).count() as u32;
    let fresh_ready = mine.iter().filter(|c| is_fresh(c, now) && c.state == ClusterState::Ready).count() as u32;
    let mut decisions = Vec::new();
    let mut generation = mine.iter().map(|c| c.generation).max().unwrap_or(0);
    for _ in fresh..desired {
        generation += 1;
        decisions.push(PoolDecision::Launch {
            key: ClusterKey::new(format!("{}-{generation}", pool.size_class)),
            generation,
        });
    }
    // Rotation: the old clusters serve until enough fresh ones are ready.
    if fresh_ready >= desired {
        for c in mine.iter().filter(|c| c.state == ClusterState::Ready && c.rotate_after <= now) {
            decisions.push(PoolDecision::Drain { key: c.key.clone(), deadline: now.plus_secs(drain_secs) });
        }
    }
    // Scale down: a pool with no work keeps `min_clusters`; the newest extra ready clusters drain.
    if !has_work && fresh_ready > desired {
        let mut extra: Vec<&&Cluster> =
            mine.iter().filter(|c| is_fresh(c, now) && c.state == ClusterState::Ready).collect();
        extra.sort_by_key(|c| std::cmp::Reverse((c.generation, c.key.clone())));
        for c in extra.into_iter().take((fresh_ready - desired) as usize) {
            decisions.push(PoolDecision::Drain { key: c.key.clone(), deadline: now });
        }
    }
    decisions
}

/// What EMR (and a Livy probe) says about a cluster norris launched, as the cluster's next
/// record; `None` when nothing changes. `livy_answers` is `None` when Livy was not probed.
pub fn observe_cluster(
    cluster: &Cluster,
    emr: Option<&EmrCluster>,
    livy_answers: Option<bool>,
    now: UnixTime,
    start_timeout_secs: i64,
) -> Option<Cluster> {
    let mut next = cluster.clone();
    match (&cluster.state, emr) {
        (ClusterState::Terminated { .. } | ClusterState::Lost { .. }, _) => return None,
        (ClusterState::Launching { .. }, None) => return None,
        (_, None) => {
            next.state = ClusterState::Lost { reason: "EMR does not know the cluster".into(), at: now };
        }
        (_, Some(e)) if e.state.is_ending() => {
            let reason = match &e.state_reason {
                Some(code) => format!("EMR {} ({code})", e.state.as_str()),
                None => format!("EMR {}", e.state.as_str()),
            };
            next.state = ClusterState::Lost { reason, at: now };
        }
        (ClusterState::Launching { .. }, Some(e)) => {
            next.emr_cluster_id = Some(e.id.clone());
            next.state = ClusterState::Starting;
            if let Some(ready) = became_ready(&next, e, livy_answers, now) {
                next = ready;
            }
        }
        (ClusterState::Starting, Some(e)) => match became_ready(cluster, e, livy_answers, now) {
            Some(ready) => next = ready,
            None if now.secs() - cluster.created_at.secs() > start_timeout_secs => {
                next.state = ClusterState::Lost {
                    reason: format!("not ready after {start_timeout_secs} s (EMR {})", e.state.as_str()),
                    at: now,
                };
            }
            None => return None,
        },
        (ClusterState::Ready | ClusterState::Draining { .. }, Some(_)) => return None,
    }
    (next != *cluster).then_some(next)
}

fn became_ready(cluster: &Cluster, emr: &EmrCluster, livy_answers: Option<bool>, now: UnixTime) -> Option<Cluster> {
    if !emr.state.is_up() || livy_answers != Some(true) {
        return None;
    }
    let mut next = cluster.clone();
    next.emr_cluster_id = Some(emr.id.clone());
    next.livy_endpoint = emr.livy_endpoint();
    next.state = ClusterState::Ready;
    next.ready_at = Some(now);
    Some(next)
}

/// Whether Livy should be probed to decide on the cluster: only a starting cluster that EMR says
/// is up waits on Livy to become ready.
pub fn needs_livy_probe(cluster: &Cluster, emr: Option<&EmrCluster>) -> bool {
    matches!(cluster.state, ClusterState::Launching { .. } | ClusterState::Starting)
        && emr.is_some_and(|e| e.state.is_up())
}

/// The cluster record after a doom signal (a spot interruption warning for its primary node, an
/// alarm): lost at once, so nothing more is placed on it and its runs move now.
pub fn doom(cluster: &Cluster, reason: &str, now: UnixTime) -> Option<Cluster> {
    if matches!(cluster.state, ClusterState::Lost { .. } | ClusterState::Terminated { .. }) {
        return None;
    }
    let mut next = cluster.clone();
    next.state = ClusterState::Lost { reason: reason.to_string(), at: now };
    Some(next)
}

/// The cluster record after a rebalance recommendation for its primary node: due for rotation
/// now, so its replacement launches at once and it drains once that one is ready.
pub fn rotate_early(cluster: &Cluster, now: UnixTime) -> Option<Cluster> {
    if cluster.state != ClusterState::Ready || cluster.rotate_after <= now {
        return None;
    }
    let mut next = cluster.clone();
    next.rotate_after = now;
    Some(next)
}

/// Whether the runs on the cluster must move now: it is lost, or draining past its deadline.
pub fn must_move_runs(cluster: &Cluster, now: UnixTime) -> bool {
    match &cluster.state {
        ClusterState::Lost { .. } => true,
        ClusterState::Draining { deadline, .. } => *deadline <= now,
        _ => false,
    }
}

/// Whether norris may terminate the cluster: lost or draining for at least `settle_secs`, and
/// none of norris's unfinished runs is on it.
///
/// `runs_on_it` comes from a read of the runs, and a handler that read the cluster as ready
/// before it was drained or lost may still place a run on it after that read. Such a handler
/// is gone after its timeout; `settle_secs` (at least the longest timeout of a handler that
/// places runs) makes every placement it made visible to the read that decides.
pub fn may_terminate(cluster: &Cluster, runs_on_it: usize, now: UnixTime, settle_secs: i64) -> bool {
    let since = match &cluster.state {
        ClusterState::Lost { at, .. } => *at,
        ClusterState::Draining { since, .. } => *since,
        _ => return false,
    };
    runs_on_it == 0 && now.secs() >= since.secs() + settle_secs
}

/// Whether the run was moved off a cluster and no attempt of it runs yet, so the lifecycle passes
/// (every minute) place or follow it rather than the scheduler's next tick (warm failover): it is
/// pending and due (the pass that moved it may have died before placing it, or its submission to
/// the peer failed and its backoff is over), or it is still submitting past the grace (the
/// placing pass died before or during its call to Livy).
pub fn awaits_failover(run: &Run, now: UnixTime) -> bool {
    let waiting = match run.status {
        RunStatus::Pending { not_before } => not_before <= now,
        RunStatus::Submitting { since, .. } => since.secs() + SUBMISSION_GRACE_SECS <= now.secs(),
        _ => false,
    };
    waiting && run.last_outcome.as_ref().is_some_and(|o| o.moved_off.is_some())
}

/// A run moved off `cluster`: a new attempt, pending at once. The new attempt fences the old one
/// (which may still be running on a cluster that answers no more): it can write files but never
/// be published. `None` when the run is not on that cluster.
pub fn move_run(run: &Run, cluster: &ClusterKey, why: &str, now: UnixTime) -> Option<Run> {
    if run.status.cluster() != Some(cluster) {
        return None;
    }
    let mut next = run.clone();
    next.last_outcome = Some(RunOutcome {
        attempt: run.attempt,
        summary: format!("moved off cluster {cluster}: {why}"),
        moved_off: Some(cluster.clone()),
    });
    next.attempt = Attempt(run.attempt.0 + 1);
    next.status = RunStatus::Pending { not_before: now };
    next.updated_at = now;
    Some(next)
}

/// Clusters EMR runs under this deployment's tag that the ledger does not account for: no record
/// with that id, or a record norris already terminated. Past `grace_secs` after creation they are
/// terminated (a launch whose record was lost, or a duplicate launch).
pub fn orphans<'a>(
    emr_clusters: &'a [EmrCluster],
    ledger: &[Cluster],
    now: UnixTime,
    grace_secs: i64,
) -> Vec<&'a EmrCluster> {
    emr_clusters
        .iter()
        .filter(|e| !e.state.is_ending())
        .filter(|e| {
            let record = ledger.iter().find(|c| c.emr_cluster_id.as_deref() == Some(e.id.as_str()));
            let launching_under_its_key = ledger
                .iter()
                .any(|c| matches!(c.state, ClusterState::Launching { .. }) && Some(c.key.clone()) == e.launch_key());
            match record {
                Some(c) => matches!(c.state, ClusterState::Terminated { .. }),
                None => !launching_under_its_key,
            }
        })
        .filter(|e| e.created_at.is_none_or(|t| now.secs() - t.secs() >= grace_secs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{EmrState, FleetSpec, InstanceTypeSpec, JobId, SizeClass, Version, Window};
    use std::collections::BTreeMap;

    const T: UnixTime = UnixTime(1_000_000);

    fn pool(min: u32, max: u32) -> PoolDefinition {
        let fleet = FleetSpec {
            instance_types: vec![InstanceTypeSpec { instance_type: "m7g.xlarge".into(), weighted_capacity: 1 }],
            on_demand_capacity: 1,
            spot_capacity: 0,
            spot: None,
        };
        PoolDefinition {
            size_class: SizeClass::new("small"),
            emr_release: "emr-7.5.0".into(),
            primary: fleet.clone(),
            core: fleet,
            task: None,
            max_age_secs: 86_400,
            min_clusters: min,
            max_clusters: max,
            max_concurrent_batches: 4,
            idle_scale_down_secs: 1800,
        }
    }

    fn cluster(generation: u32, state: ClusterState, rotate_after: UnixTime) -> Cluster {
        Cluster {
            key: ClusterKey::new(format!("small-{generation}")),
            size_class: SizeClass::new("small"),
            generation,
            emr_cluster_id: Some(format!("j-{generation}")),
            livy_endpoint: Some(format!("http://livy-{generation}")),
            state,
            created_at: UnixTime(0),
            ready_at: Some(UnixTime(0)),
            rotate_after,
            version: Version::INITIAL,
        }
    }

    fn emr(id: &str, state: EmrState) -> EmrCluster {
        EmrCluster {
            id: id.into(),
            name: id.into(),
            state,
            state_reason: Some("INSTANCE_FAILURE".into()),
            primary_dns: Some("primary.internal".into()),
            tags: BTreeMap::new(),
            created_at: Some(UnixTime(0)),
        }
    }

    fn later() -> UnixTime {
        T.plus_secs(10_000)
    }

    #[test]
    fn an_empty_pool_launches_its_minimum_and_one_more_only_for_work() {
        assert_eq!(
            plan_pool(&pool(2, 4), &[], false, T, 600),
            vec![
                PoolDecision::Launch { key: ClusterKey::new("small-1"), generation: 1 },
                PoolDecision::Launch { key: ClusterKey::new("small-2"), generation: 2 }
            ]
        );
        assert!(plan_pool(&pool(0, 4), &[], false, T, 600).is_empty());
        assert_eq!(plan_pool(&pool(0, 4), &[], true, T, 600).len(), 1);
        assert!(plan_pool(&pool(1, 0), &[], true, T, 600).is_empty(), "max_clusters caps");
    }

    #[test]
    fn a_lost_cluster_is_replaced_once_with_the_next_generation() {
        let lost = cluster(3, ClusterState::Lost { reason: "spot".into(), at: T }, later());
        let plan = plan_pool(&pool(1, 4), std::slice::from_ref(&lost), true, T, 600);
        assert_eq!(plan, vec![PoolDecision::Launch { key: ClusterKey::new("small-4"), generation: 4 }]);
        let launching = cluster(4, ClusterState::Launching { requested_at: T }, later());
        assert!(plan_pool(&pool(1, 4), &[lost, launching], true, T, 600).is_empty(), "one launch per need");
    }

    #[test]
    fn rotation_is_make_before_break() {
        let old = cluster(1, ClusterState::Ready, T);
        // Due for rotation: a replacement launches, the old one keeps serving.
        let plan = plan_pool(&pool(1, 4), std::slice::from_ref(&old), true, T, 600);
        assert_eq!(plan, vec![PoolDecision::Launch { key: ClusterKey::new("small-2"), generation: 2 }]);
        let starting = cluster(2, ClusterState::Starting, later());
        assert!(plan_pool(&pool(1, 4), &[old.clone(), starting], true, T, 600).is_empty());
        // The replacement is ready: the old one drains.
        let ready = cluster(2, ClusterState::Ready, later());
        assert_eq!(
            plan_pool(&pool(1, 4), &[old, ready], true, T, 600),
            vec![PoolDecision::Drain { key: ClusterKey::new("small-1"), deadline: T.plus_secs(600) }]
        );
    }

    #[test]
    fn an_idle_pool_drains_its_newest_extra_clusters() {
        let a = cluster(1, ClusterState::Ready, later());
        let b = cluster(2, ClusterState::Ready, later());
        assert_eq!(
            plan_pool(&pool(1, 4), &[a.clone(), b.clone()], false, T, 600),
            vec![PoolDecision::Drain { key: ClusterKey::new("small-2"), deadline: T }]
        );
        assert!(plan_pool(&pool(1, 4), &[a, b], true, T, 600).is_empty());
    }

    #[test]
    fn emr_states_move_the_record() {
        let starting = Cluster {
            ready_at: None,
            livy_endpoint: None,
            created_at: T,
            ..cluster(1, ClusterState::Starting, later())
        };
        assert_eq!(observe_cluster(&starting, Some(&emr("j-1", EmrState::Bootstrapping)), None, T, 3600), None);
        assert_eq!(observe_cluster(&starting, Some(&emr("j-1", EmrState::Waiting)), Some(false), T, 3600), None);
        let ready =
            observe_cluster(&starting, Some(&emr("j-1", EmrState::Waiting)), Some(true), T, 3600).expect("ready");
        assert_eq!(ready.state, ClusterState::Ready);
        assert_eq!(ready.livy_endpoint.as_deref(), Some("http://primary.internal:8998"));
        assert_eq!(ready.ready_at, Some(T));
        let lost =
            observe_cluster(&ready, Some(&emr("j-1", EmrState::TerminatedWithErrors)), None, T, 3600).expect("lost");
        assert!(
            matches!(&lost.state, ClusterState::Lost { reason, .. } if reason == "EMR TERMINATED_WITH_ERRORS (INSTANCE_FAILURE)")
        );
        assert_eq!(observe_cluster(&lost, None, None, T, 3600), None, "lost stays lost");
        let gone = observe_cluster(&ready, None, None, T, 3600).expect("unknown to EMR");
        assert!(matches!(gone.state, ClusterState::Lost { .. }));
        let slow = observe_cluster(&starting, Some(&emr("j-1", EmrState::Starting)), None, T.plus_secs(61), 60)
            .expect("timeout");
        assert!(matches!(&slow.state, ClusterState::Lost { reason, .. } if reason.contains("not ready after 60 s")));
    }

    #[test]
    fn a_launch_found_by_its_tag_is_adopted() {
        let launching = Cluster {
            emr_cluster_id: None,
            livy_endpoint: None,
            ..cluster(1, ClusterState::Launching { requested_at: T }, later())
        };
        assert_eq!(observe_cluster(&launching, None, None, T, 3600), None, "not visible yet");
        let adopted = observe_cluster(&launching, Some(&emr("j-9", EmrState::Starting)), None, T, 3600).expect("seen");
        assert_eq!((adopted.state, adopted.emr_cluster_id.as_deref()), (ClusterState::Starting, Some("j-9")));
    }

    #[test]
    fn moving_a_run_bumps_its_attempt_and_only_off_that_cluster() {
        let run = Run {
            job_id: JobId::new("j"),
            window: Window { lo: UnixTime(0), hi: UnixTime(300) },
            attempt: Attempt(2),
            failures: 1,
            status: RunStatus::Submitting { cluster: ClusterKey::new("small-1"), since: T },
            created_at: T,
            updated_at: T,
            last_outcome: None,
            version: Version::INITIAL,
        };
        assert_eq!(move_run(&run, &ClusterKey::new("small-2"), "spot", T), None);
        let moved = move_run(&run, &ClusterKey::new("small-1"), "spot loss", T).expect("moved");
        assert_eq!((moved.attempt, moved.failures), (Attempt(3), 1), "a move is a new attempt, not a failure");
        assert_eq!(moved.status, RunStatus::Pending { not_before: T });
        assert!(awaits_failover(&moved, T) && !awaits_failover(&run, T));
        let outcome = moved.last_outcome.clone().expect("outcome");
        assert!(outcome.summary.contains("moved off cluster small-1: spot loss"));
        assert_eq!(outcome.moved_off, Some(ClusterKey::new("small-1")));
        let mut placed_again = moved.clone();
        placed_again.status = RunStatus::Submitting { cluster: ClusterKey::new("small-3"), since: T };
        assert!(!awaits_failover(&placed_again, T), "its submission may still be under way");
        assert!(awaits_failover(&placed_again, T.plus_secs(SUBMISSION_GRACE_SECS)), "the pass that placed it died");
        placed_again.status = RunStatus::Running {
            cluster: ClusterKey::new("small-3"),
            batch: norris_model::BatchHandle { livy_batch_id: 1, batch_name: "b".into() },
            since: T,
        };
        assert!(!awaits_failover(&placed_again, T.plus_secs(3600)), "running again");
    }

    #[test]
    fn termination_waits_for_the_runs_and_orphans_are_found() {
        let lost = cluster(1, ClusterState::Lost { reason: "x".into(), at: T }, later());
        let settled = T.plus_secs(300);
        assert!(!may_terminate(&lost, 1, settled, 300) && may_terminate(&lost, 0, settled, 300));
        assert!(!may_terminate(&lost, 0, T.plus_secs(299), 300), "a pass that read it ready may still place on it");
        let draining = cluster(4, ClusterState::Draining { since: T, deadline: later() }, later());
        assert!(!may_terminate(&draining, 0, T.plus_secs(299), 300) && may_terminate(&draining, 0, settled, 300));
        assert!(!may_terminate(&cluster(2, ClusterState::Ready, later()), 0, settled, 300));
        assert!(must_move_runs(&lost, T));
        assert!(!must_move_runs(&cluster(3, ClusterState::Draining { since: T, deadline: later() }, later()), T));
        assert!(must_move_runs(&cluster(3, ClusterState::Draining { since: T, deadline: T }, later()), T));

        let known = cluster(1, ClusterState::Ready, later());
        let done = cluster(2, ClusterState::Terminated { at: T }, later());
        let mut launching = cluster(3, ClusterState::Launching { requested_at: T }, later());
        launching.emr_cluster_id = None;
        let mut in_launch = emr("j-3", EmrState::Starting);
        in_launch.tags.insert(norris_model::emr::tags::LAUNCH_KEY.into(), "small-3".into());
        let seen = [
            emr("j-1", EmrState::Waiting),
            emr("j-2", EmrState::Waiting),
            in_launch,
            emr("j-x", EmrState::Running),
            emr("j-y", EmrState::Terminated),
        ];
        let found: Vec<&str> =
            orphans(&seen, &[known, done, launching], T, 600).iter().map(|e| e.id.as_str()).collect();
        assert_eq!(found, vec!["j-2", "j-x"]);
        let mut young = emr("j-z", EmrState::Starting);
        young.created_at = Some(T);
        assert!(orphans(&[young], &[], T, 600).is_empty(), "within the grace period");
    }
}
