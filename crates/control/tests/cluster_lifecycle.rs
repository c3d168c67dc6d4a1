//! The cluster lifecycle handlers over the in-memory store, EMR and Livy models: one launch per
//! need through a lost RunJobFlow answer, warm failover in the pass that sees the loss, draining
//! before termination, and malformed events refused before anything is read or written.

use norris_control::clusters::{handle_watcher_event, rotate, watch, LifecycleConfig};
use norris_control::{scheduler_tick, SchedulerConfig};
use norris_engine::runs::SUBMISSION_GRACE_SECS;
use norris_model::{
    AttemptOutcome, AttemptResult, ClusterKey, ClusterState, EmrState, RetryPolicy, Run, RunKey, RunStatus, UnixTime,
};
use norris_ports::{BatchError, ManualClock, MemoryEmr, MemoryLivy, MemorySpecs, MemoryStore, StateStore};
use serde_json::{json, Value};
use std::collections::HashMap;

const T0: UnixTime = UnixTime(1_795_305_600);

fn config() -> LifecycleConfig {
    let env: HashMap<String, String> =
        [("NORRIS_TABLE_PREFIX", "t"), ("NORRIS_DEPLOYMENT", "dep")].map(|(k, v)| (k.into(), v.into())).into();
    LifecycleConfig::from_env_map(&env).expect("config")
}

fn scheduler() -> SchedulerConfig {
    SchedulerConfig { table_prefix: "t".into(), definition_sweep_secs: 86_400, max_due_per_tick: 100 }
}

fn pool(min_clusters: u32) -> Value {
    json!({
        "size_class": "small", "emr_release": "emr-7.5.0",
        "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "max_age_secs": 86_400, "min_clusters": min_clusters, "max_clusters": 4, "max_concurrent_batches": 8
    })
}

/// Brings every EMR cluster up (WAITING) between watcher passes; `n` clusters must then be ready.
async fn bring_up(store: &MemoryStore, emr: &MemoryEmr, livy: &MemoryLivy, now: UnixTime, n: usize) {
    settle(store, emr, livy, now).await;
    let ready =
        store.list_clusters().await.expect("list").into_iter().filter(|c| c.state == ClusterState::Ready).count();
    assert_eq!(ready, n, "{:?}", store.list_clusters().await);
}

async fn settle(store: &MemoryStore, emr: &MemoryEmr, livy: &MemoryLivy, now: UnixTime) {
    for _ in 0..3 {
        watch(store, emr, livy, &MemorySpecs::new(), None, now, &config()).await.expect("watch");
        for c in emr.clusters() {
            if !c.state.is_ending() {
                emr.set_state(&c.id, EmrState::Waiting, None);
            }
        }
    }
}

#[tokio::test]
async fn a_lost_runjobflow_answer_does_not_launch_twice() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    store.put_pool_document(&pool(1)).await.expect("pool");
    emr.lose_next_response();
    let first = watch(&store, &emr, &livy, &MemorySpecs::new(), None, T0, &config()).await.expect("watch");
    assert_eq!(first.failures.len(), 1, "the lost answer is reported: {first:?}");
    assert_eq!(emr.launches(), 1);
    // The next passes find the launch by its tag instead of launching again, also past the
    // relaunch delay.
    for secs in [60, 700, 1400] {
        watch(&store, &emr, &livy, &MemorySpecs::new(), None, T0.plus_secs(secs), &config()).await.expect("watch");
    }
    assert_eq!(emr.launches(), 1, "one launch per need");
    let clusters = store.list_clusters().await.expect("list");
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].emr_cluster_id.as_deref(), Some(emr.clusters()[0].id.as_str()));
}

#[tokio::test]
async fn runs_of_a_lost_cluster_move_to_a_warm_peer_in_the_same_pass() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    store.put_pool_document(&pool(2)).await.expect("pool");
    store.put_job_document(&norris_ports::conformance::job_document("orders")).await.expect("job");
    bring_up(&store, &emr, &livy, T0, 2).await;
    let now = T0.plus_secs(3600);
    scheduler_tick(&store, &livy, now, &scheduler()).await.expect("tick");
    let placed: Vec<_> = store.all_runs().into_iter().filter(|r| r.status.cluster().is_some()).collect();
    assert!(!placed.is_empty(), "windows were placed");
    // Spot takes the cluster holding the first run.
    let lost_key = placed[0].status.cluster().cloned().expect("placed");
    let lost = store.get_cluster(&lost_key).await.expect("get").expect("cluster");
    let lost_id = lost.emr_cluster_id.clone().expect("id");
    emr.set_state(&lost_id, EmrState::TerminatedWithErrors, Some("INSTANCE_FAILURE"));
    let on_lost: Vec<_> = placed.iter().filter(|r| r.status.cluster() == Some(&lost_key)).map(|r| r.key()).collect();

    let event = json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change", "detail": {
        "clusterId": lost_id, "state": "TERMINATED_WITH_ERRORS", "stateChangeReason": "{\"code\":\"INSTANCE_FAILURE\"}"}});
    let clock = ManualClock::at(now.plus_secs(30));
    let report =
        handle_watcher_event(&store, &emr, &livy, &MemorySpecs::new(), &clock, &config(), &event).await.expect("pass");
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(report.runs_moved, on_lost.len());
    assert_eq!(report.runs_placed_again, on_lost.len(), "warm failover: placed in the same pass");
    assert_eq!(report.launched.len(), 1, "one replacement");
    for key in on_lost {
        let run = store.get_run(&key).await.expect("get").expect("run");
        assert_eq!(run.attempt.0, 2, "the move bumped the attempt");
        let cluster = run.status.cluster().cloned().expect("placed again");
        assert_ne!(cluster, lost_key);
    }
    // The same event again changes nothing. The lost cluster is terminated once nothing is on
    // it and a placing handler that read it as ready has timed out.
    assert!(report.terminated.is_empty(), "not before the settle time: {report:?}");
    let again =
        handle_watcher_event(&store, &emr, &livy, &MemorySpecs::new(), &clock, &config(), &event).await.expect("pass");
    assert_eq!((again.runs_moved, again.launched.len(), again.terminated.len()), (0, 0, 0), "{again:?}");
    let settled = ManualClock::at(now.plus_secs(30 + config().terminate_settle_secs));
    let last = handle_watcher_event(&store, &emr, &livy, &MemorySpecs::new(), &settled, &config(), &event)
        .await
        .expect("pass");
    assert_eq!(last.terminated, vec![lost_key.to_string()], "{last:?}");
}

/// Two ready clusters, a tick's runs placed, and the cluster holding the first run lost: the
/// moment, the lost cluster, the peer's Livy endpoint, and the runs that were on the lost one.
async fn lose_a_cluster_with_runs(
    store: &MemoryStore,
    emr: &MemoryEmr,
    livy: &MemoryLivy,
) -> (UnixTime, ClusterKey, String, Vec<RunKey>) {
    store.put_pool_document(&pool(2)).await.expect("pool");
    store.put_job_document(&norris_ports::conformance::job_document("orders")).await.expect("job");
    bring_up(store, emr, livy, T0, 2).await;
    let now = T0.plus_secs(3600);
    scheduler_tick(store, livy, now, &scheduler()).await.expect("tick");
    let placed: Vec<_> = store.all_runs().into_iter().filter(|r| r.status.cluster().is_some()).collect();
    let lost_key = placed[0].status.cluster().cloned().expect("placed");
    let clusters = store.list_clusters().await.expect("list");
    let lost_id = clusters.iter().find(|c| c.key == lost_key).and_then(|c| c.emr_cluster_id.clone()).expect("id");
    let peer = clusters.iter().find(|c| c.key != lost_key).and_then(|c| c.livy_endpoint.clone()).expect("peer");
    emr.set_state(&lost_id, EmrState::TerminatedWithErrors, Some("INSTANCE_FAILURE"));
    let on_lost = placed.iter().filter(|r| r.status.cluster() == Some(&lost_key)).map(|r| r.key()).collect();
    (now, lost_key, peer, on_lost)
}

async fn runs(store: &MemoryStore, keys: &[RunKey]) -> Vec<Run> {
    let mut out = Vec::new();
    for key in keys {
        out.push(store.get_run(key).await.expect("get").expect("run"));
    }
    out
}

#[tokio::test]
async fn a_moved_run_whose_submission_to_the_peer_fails_is_placed_by_a_later_pass_not_the_next_tick() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    let (now, lost_key, peer, on_lost) = lose_a_cluster_with_runs(&store, &emr, &livy).await;
    // The peer's Livy refuses the first submission (a 503, before any effect).
    let unavailable = BatchError::Unreachable { endpoint: peer.clone(), message: "503 Service Unavailable".into() };
    livy.fail_next_submission(&peer, unavailable);
    let report =
        watch(&store, &emr, &livy, &MemorySpecs::new(), None, now.plus_secs(30), &config()).await.expect("pass");
    assert_eq!(report.runs_moved, on_lost.len(), "{report:?}");
    assert_eq!(report.runs_placed_again, on_lost.len() - 1, "{report:?}");
    let refused: Vec<Run> =
        runs(&store, &on_lost).await.into_iter().filter(|r| matches!(r.status, RunStatus::Pending { .. })).collect();
    assert_eq!(refused.len(), 1, "superseded at once, Livy having said it has no such batch");
    let refused = &refused[0];
    let outcome = refused.last_outcome.clone().expect("outcome");
    assert_eq!(outcome.moved_off.as_ref(), Some(&lost_key), "still marked moved: it never ran on the peer");
    assert!(outcome.summary.contains("503"), "{outcome:?}");
    assert_eq!(refused.failures, 1);
    let RunStatus::Pending { not_before } = refused.status else { unreachable!() };
    // Within the backoff a pass leaves it; the first pass past it places it: no scheduler tick.
    let early =
        watch(&store, &emr, &livy, &MemorySpecs::new(), None, not_before.plus_secs(-1), &config()).await.expect("pass");
    assert_eq!(early.runs_placed_again, 0, "{early:?}");
    let later = watch(&store, &emr, &livy, &MemorySpecs::new(), None, not_before, &config()).await.expect("pass");
    assert_eq!(later.runs_placed_again, 1, "{later:?}");
    let placed = store.get_run(&refused.key()).await.expect("get").expect("run");
    assert!(matches!(placed.status, RunStatus::Running { .. }), "{placed:?}");
    let on_peer: Vec<String> = livy.batches(&peer).into_iter().map(|(_, b, _)| b.name).collect();
    for run in runs(&store, &on_lost).await {
        let of_window = format!("norris-{}-{}-a", run.job_id, run.window.lo.0);
        let batches = on_peer.iter().filter(|name| name.starts_with(&of_window)).count();
        assert_eq!(batches, 1, "one batch per moved run on the peer, none twice: {on_peer:?}");
    }
}

#[tokio::test]
async fn runs_on_a_cluster_recorded_lost_are_left_to_the_mover_and_count_no_failure() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    let (now, lost_key, _peer, on_lost) = lose_a_cluster_with_runs(&store, &emr, &livy).await;
    assert!(on_lost.len() >= 2, "{on_lost:?}");
    // A watcher pass recorded the loss and died before it moved the runs.
    let mut lost = store.get_cluster(&lost_key).await.expect("get").expect("cluster");
    lost.state = ClusterState::Lost { reason: "INSTANCE_FAILURE".into(), at: now.plus_secs(10) };
    store.update_cluster(&lost).await.expect("update");
    // The first run's Spark job wrote its result just before the loss.
    let done = store.get_run(&on_lost[0]).await.expect("get").expect("run");
    let result = AttemptResult {
        run_key: done.key().to_string(),
        attempt: done.attempt,
        outcome: AttemptOutcome::Succeeded,
        rows_read: 10,
        rows_written: 10,
        checks: vec![],
        schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
        schema_verdict: "first".into(),
        schema_change: String::new(),
        output_prefix: format!("file:///lake/orders/data/window_lo={}/attempt=1", done.window.lo.0),
        message: "done".into(),
        finished_at: now,
    };
    store.put_attempt_result(&result).await.expect("result");
    // The scheduler's tick publishes that one and leaves the others alone: Livy cannot know their
    // batches any more, and that is the cluster's loss, not a failure of their jobs.
    let tick = scheduler_tick(&store, &livy, now.plus_secs(20), &scheduler()).await.expect("tick");
    assert_eq!((tick.runs_retried, tick.runs_failed), (0, 0), "{tick:?}");
    let after = runs(&store, &on_lost).await;
    assert!(matches!(after[0].status, RunStatus::Published { .. }), "{:?}", after[0]);
    for run in &after[1..] {
        assert_eq!((run.attempt.0, run.failures, run.status.cluster()), (1, 0, Some(&lost_key)), "{run:?}");
    }
    // The next lifecycle pass moves them (a new attempt, no failure) and places them on the peer.
    let report =
        watch(&store, &emr, &livy, &MemorySpecs::new(), None, now.plus_secs(30), &config()).await.expect("pass");
    assert_eq!((report.runs_moved, report.runs_placed_again), (on_lost.len() - 1, on_lost.len() - 1), "{report:?}");
    for run in runs(&store, &on_lost[1..]).await {
        assert!(matches!(run.status, RunStatus::Running { ref cluster, .. } if cluster != &lost_key), "{run:?}");
        assert_eq!((run.attempt.0, run.failures), (2, 0), "{run:?}");
    }
}

#[tokio::test]
async fn a_moved_run_left_submitting_by_an_unanswering_peer_is_followed_by_a_later_pass() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    let (now, lost_key, peer, on_lost) = lose_a_cluster_with_runs(&store, &emr, &livy).await;
    livy.set_unreachable(&peer, true);
    let moved_at = now.plus_secs(30);
    let report = watch(&store, &emr, &livy, &MemorySpecs::new(), None, moved_at, &config()).await.expect("pass");
    assert_eq!((report.runs_moved, report.runs_placed_again), (on_lost.len(), 0), "{report:?}");
    assert!(runs(&store, &on_lost).await.iter().all(|r| matches!(r.status, RunStatus::Submitting { .. })));
    livy.set_unreachable(&peer, false);
    // Within the grace the submission may still be under way: left alone.
    watch(&store, &emr, &livy, &MemorySpecs::new(), None, moved_at.plus_secs(SUBMISSION_GRACE_SECS - 1), &config())
        .await
        .expect("pass");
    assert!(runs(&store, &on_lost).await.iter().all(|r| matches!(r.status, RunStatus::Submitting { .. })));
    // Past it, Livy saying it has no such batch supersedes each attempt; past the backoff they run.
    let followed_at = moved_at.plus_secs(SUBMISSION_GRACE_SECS);
    watch(&store, &emr, &livy, &MemorySpecs::new(), None, followed_at, &config()).await.expect("pass");
    for run in runs(&store, &on_lost).await {
        assert!(matches!(run.status, RunStatus::Pending { .. }), "{run:?}");
        assert_eq!(run.last_outcome.and_then(|o| o.moved_off).as_ref(), Some(&lost_key));
    }
    let backoff = RetryPolicy::default().backoff_base_secs;
    let last = watch(&store, &emr, &livy, &MemorySpecs::new(), None, followed_at.plus_secs(backoff), &config())
        .await
        .expect("pass");
    assert_eq!(last.runs_placed_again, on_lost.len(), "{last:?}");
    assert!(runs(&store, &on_lost).await.iter().all(|r| matches!(r.status, RunStatus::Running { .. })));
}

#[tokio::test]
async fn a_rotated_cluster_drains_and_is_terminated_only_when_empty() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    store.put_pool_document(&pool(1)).await.expect("pool");
    store.put_job_document(&norris_ports::conformance::job_document("orders")).await.expect("job");
    bring_up(&store, &emr, &livy, T0, 1).await;
    let now = T0.plus_secs(3600);
    scheduler_tick(&store, &livy, now, &scheduler()).await.expect("tick");
    let old = store.list_clusters().await.expect("list").remove(0);
    assert!(store.active_runs().await.expect("active").iter().any(|r| r.status.cluster() == Some(&old.key)));
    // Past its age: the replacement launches; the old one keeps serving until it is ready.
    let later = old.rotate_after.plus_secs(1);
    let r = rotate(&store, &emr, &livy, &MemorySpecs::new(), later, &config()).await.expect("rotate");
    assert_eq!((r.launched.len(), r.drained.len()), (1, 0), "{r:?}");
    // Once the replacement is ready, the old cluster drains; it is not terminated while runs are on it.
    settle(&store, &emr, &livy, later).await;
    let r = rotate(&store, &emr, &livy, &MemorySpecs::new(), later.plus_secs(60), &config()).await.expect("rotate");
    assert!(r.terminated.is_empty(), "runs are still on it: {r:?}");
    let clusters = store.list_clusters().await.expect("list");
    let state_of = |key: &norris_model::ClusterKey| clusters.iter().find(|c| &c.key == key).map(|c| c.state.clone());
    assert!(matches!(state_of(&old.key), Some(ClusterState::Draining { .. })), "{clusters:?}");
    assert_eq!(clusters.iter().filter(|c| c.state == ClusterState::Ready).count(), 1, "the replacement serves");
    // Past the drain deadline, the runs move and the old cluster goes.
    let past = later.plus_secs(60 + config().drain_secs.max(config().terminate_settle_secs) + 1);
    let r = rotate(&store, &emr, &livy, &MemorySpecs::new(), past, &config()).await.expect("rotate");
    assert!(r.runs_moved > 0 && r.terminated == vec![old.key.to_string()], "{r:?}");
    assert!(store.active_runs().await.expect("active").iter().all(|r| r.status.cluster() != Some(&old.key)));
    let old_emr = emr.clusters().into_iter().find(|c| Some(&c.id) == old.emr_cluster_id.as_ref()).expect("emr");
    assert_eq!(old_emr.state, EmrState::Terminated);
    assert!(store.all_runs().iter().all(|r| !matches!(r.status, RunStatus::Failed { .. })));
}

#[tokio::test]
async fn malformed_cluster_events_touch_nothing() {
    let (store, emr, livy) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new());
    store.put_pool_document(&pool(1)).await.expect("pool");
    let clock = ManualClock::at(T0);
    for event in [
        json!({"source": "aws.emr", "detail-type": "EMR Cluster State Change",
            "detail": {"clusterId": "j-1", "state": "TERMINATED", "stateChangeReason": "{not json"}}),
        json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}}),
        json!("not an object"),
    ] {
        let err = handle_watcher_event(&store, &emr, &livy, &MemorySpecs::new(), &clock, &config(), &event)
            .await
            .expect_err("refused");
        assert!(err.to_string().starts_with("rejected event"), "{err}");
    }
    assert!(store.list_clusters().await.expect("list").is_empty(), "no pass ran: nothing launched");
    assert_eq!(emr.launches(), 0);
}

#[tokio::test]
async fn a_draining_cluster_running_a_group_is_terminated_only_once_the_group_left_it() {
    use norris_control::grouped::grouped_tick;
    use norris_ports::{GroupStore, MemorySpecs};
    let (store, emr, livy, specs) = (MemoryStore::new(), MemoryEmr::new(), MemoryLivy::new(), MemorySpecs::new());
    store.put_pool_document(&pool(1)).await.expect("pool");
    store.put_job_document(&norris_ports::conformance::job_document("orders")).await.expect("job");
    bring_up(&store, &emr, &livy, T0, 1).await;
    let now = T0.plus_secs(3600);
    grouped_tick(&store, &livy, &specs, now, &scheduler()).await.expect("sweep");
    grouped_tick(&store, &livy, &specs, now.plus_secs(1), &scheduler()).await.expect("tick");
    let old = store.list_clusters().await.expect("list").remove(0);
    let group = store.open_groups().await.expect("open").remove(0);
    assert_eq!(group.status.cluster(), Some(&old.key), "{group:?}");

    let later = old.rotate_after.plus_secs(1);
    rotate(&store, &emr, &livy, &MemorySpecs::new(), later, &config()).await.expect("rotate");
    settle(&store, &emr, &livy, later).await;
    let settled_past = later.plus_secs(60 + config().terminate_settle_secs + 1);
    let r = rotate(&store, &emr, &livy, &MemorySpecs::new(), settled_past, &config()).await.expect("rotate");
    assert!(r.terminated.is_empty(), "a group is still on it: {r:?}");

    // The group's application finishes; the next tick settles and commits it; the cluster goes.
    let members = group
        .to_do()
        .map(|m| AttemptResult {
            run_key: format!("{}@{}", m.job_id, m.window.lo.0),
            attempt: group.attempt,
            outcome: AttemptOutcome::Succeeded,
            rows_read: 1,
            rows_written: 1,
            checks: vec![],
            schema_json: String::new(),
            schema_verdict: "unchanged".into(),
            schema_change: String::new(),
            output_prefix: String::new(),
            message: String::new(),
            finished_at: settled_past,
        })
        .collect();
    let result = norris_model::GroupResult {
        group: group.key.clone(),
        attempt: group.attempt,
        members,
        finished_at: settled_past,
    };
    store.put_group_result(&result).await.expect("result");
    grouped_tick(&store, &livy, &specs, settled_past, &scheduler()).await.expect("tick");
    assert!(store.open_groups().await.expect("open").iter().all(|g| g.status.cluster() != Some(&old.key)));
    let r =
        rotate(&store, &emr, &livy, &MemorySpecs::new(), settled_past.plus_secs(60), &config()).await.expect("rotate");
    assert_eq!(r.terminated, vec![old.key.to_string()], "{r:?}");
}
