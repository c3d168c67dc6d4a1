//! Placement, submission, following, publishing and commit, over the in-memory store and Livy
//! model: windows commit in order, exactly once, through lost responses, Livy restarts, zombie
//! attempts and concurrent ticks.

use norris_control::{scheduler_tick, SchedulerConfig, TickReport};
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchPhase, Cluster, ClusterKey, ClusterState, JobId, RunStatus, SizeClass,
    UnixTime, Validity, Version,
};
use norris_ports::{BatchError, MemoryLivy, MemoryStore, StateStore};
use serde_json::{json, Value};

const T0: UnixTime = UnixTime(1_795_305_600);
const LIVY: &str = "http://livy-a";

fn config() -> SchedulerConfig {
    SchedulerConfig { table_prefix: "t".into(), definition_sweep_secs: 86_400, max_due_per_tick: 100 }
}

fn job(id: &str) -> Value {
    json!({
        "job_id": id, "kind": "batch_extraction", "size_class": "small",
        "interval_secs": 300, "lag_secs": 0, "start_at": "2026-11-22T00:00:00Z", "max_windows_in_flight": 3,
        "source": {"jdbc_url": "jdbc:mysql://127.0.0.1:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop", "table": "orders",
            "watermark_column": "updated_at", "primary_key": ["id"]},
        "lake_uri": "file:///lake/orders", "livy": {"file": "local:/extract.py"},
        "retry": {"max_attempts": 2, "backoff_base_secs": 10, "backoff_max_secs": 10}
    })
}

async fn world(jobs: &[&str]) -> (MemoryStore, MemoryLivy) {
    let store = MemoryStore::new();
    for id in jobs {
        store.put_job_document(&job(id)).await.expect("put");
    }
    store
        .create_cluster(&Cluster {
            key: ClusterKey::new("small-1"),
            size_class: SizeClass::new("small"),
            generation: 1,
            emr_cluster_id: Some("j-1".into()),
            livy_endpoint: Some(LIVY.into()),
            state: ClusterState::Ready,
            created_at: T0,
            ready_at: Some(T0),
            rotate_after: T0.plus_secs(86_400),
            version: Version::INITIAL,
        })
        .await
        .expect("cluster");
    (store, MemoryLivy::new())
}

async fn tick(store: &MemoryStore, livy: &MemoryLivy, now: UnixTime) -> TickReport {
    let report = scheduler_tick(store, livy, now, &config()).await.expect("tick");
    assert!(
        report.failures.is_empty() || report.failures.iter().all(|f| f.error.contains("lost")),
        "{:?}",
        report.failures
    );
    report
}

/// Plays the Spark job: writes the attempt's result and ends the batch.
async fn finish(store: &MemoryStore, livy: &MemoryLivy, id: &str, lo: UnixTime, attempt: u32, outcome: AttemptOutcome) {
    let run_key = format!("{id}@{}", lo.0);
    store
        .put_attempt_result(&AttemptResult {
            run_key,
            attempt: Attempt(attempt),
            outcome,
            rows_read: 10,
            rows_written: 10,
            checks: vec![],
            schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
            schema_verdict: if attempt == 1 { "first".into() } else { "unchanged".into() },
            schema_change: if outcome == AttemptOutcome::Quarantined {
                "column price changed type from int to string".into()
            } else {
                String::new()
            },
            output_prefix: format!("file:///lake/orders/data/window_lo={}/attempt={attempt}", lo.0),
            message: "done".into(),
            finished_at: lo,
        })
        .await
        .expect("result");
    let phase = if outcome == AttemptOutcome::Succeeded { BatchPhase::Succeeded } else { BatchPhase::Failed };
    livy.set_phase(LIVY, &format!("norris-{id}-{}-a{attempt}", lo.0), phase);
}

fn w(i: i64) -> UnixTime {
    T0.plus_secs(300 * i)
}

async fn watermark(store: &MemoryStore, id: &str) -> UnixTime {
    store.get_job_state(&JobId::new(id)).await.expect("get").expect("state").watermark
}

#[tokio::test]
async fn windows_are_submitted_published_and_committed_in_order() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    let r = tick(&store, &livy, w(3)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (3, 3));
    assert_eq!(livy.submissions(LIVY), 3);

    // Window 1 finishes first: published, but the watermark waits for window 0.
    finish(&store, &livy, "orders", w(1), 1, AttemptOutcome::Succeeded).await;
    let r = tick(&store, &livy, w(3).plus_secs(10)).await;
    assert_eq!((r.runs_published, r.windows_committed), (1, 0));
    assert_eq!(watermark(&store, "orders").await, w(0), "never over a gap");

    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Succeeded).await;
    let r = tick(&store, &livy, w(3).plus_secs(20)).await;
    assert_eq!((r.runs_published, r.windows_committed), (1, 2));
    assert_eq!(watermark(&store, "orders").await, w(2));
    let state = store.get_job_state(&JobId::new("orders")).await.expect("get").expect("state");
    assert!(state.accepted_schema.is_some(), "the first schema is accepted at publish");

    // The next window is cut and placed as soon as it is due.
    let r = tick(&store, &livy, w(4)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (1, 1));
}

#[tokio::test]
async fn a_job_behind_cuts_and_places_its_next_windows_in_the_tick_that_committed_the_last_ones() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    // Ten windows due, three in flight at most.
    let r = tick(&store, &livy, w(10)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (3, 3));
    for i in 0..3 {
        finish(&store, &livy, "orders", w(i), 1, AttemptOutcome::Succeeded).await;
    }
    let r = tick(&store, &livy, w(10).plus_secs(10)).await;
    assert_eq!((r.runs_published, r.windows_committed), (3, 3));
    assert_eq!(watermark(&store, "orders").await, w(3));
    // The freed slots are used at once, not a tick later.
    assert_eq!((r.windows_cut, r.runs_submitted), (3, 3));
    assert_eq!(livy.submissions(LIVY), 6);
    // A tick with nothing finished cuts nothing more: the limit holds.
    let r = tick(&store, &livy, w(10).plus_secs(20)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (0, 0));
}

#[tokio::test]
async fn a_submission_whose_response_was_lost_is_adopted_not_duplicated() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    livy.lose_next_response(LIVY);
    let r = tick(&store, &livy, w(1)).await;
    assert_eq!((r.runs_submitted, r.failures.len()), (0, 1), "the response was lost: {r:?}");
    // Livy is asked by name at once, and has the batch.
    let run = store.all_runs().remove(0);
    assert!(matches!(run.status, RunStatus::Running { .. }), "{:?}", run.status);
    assert_eq!((run.attempt.0, run.failures), (1, 0), "adopted: the same attempt, no failure");
    tick(&store, &livy, w(1).plus_secs(30)).await;
    assert_eq!(livy.submissions(LIVY), 1, "one batch, adopted by name");
}

#[tokio::test]
async fn a_submission_refused_as_busy_is_placed_again_without_counting_a_failure() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    let busy =
        BatchError::Busy { endpoint: LIVY.into(), message: "Rejected, too many sessions are being created!".into() };
    livy.fail_next_submission(LIVY, busy);
    let r = scheduler_tick(&store, &livy, w(1), &config()).await.expect("tick");
    assert_eq!((r.runs_submitted, r.runs_retried, r.failures.len()), (0, 0, 1), "{r:?}");
    let run = store.all_runs().remove(0);
    assert_eq!((run.attempt.0, run.failures), (2, 0), "a new attempt, no failure");
    assert!(matches!(run.status, RunStatus::Pending { not_before } if not_before == w(1)), "{:?}", run.status);
    assert!(run.last_outcome.as_ref().is_some_and(|o| o.summary.contains("busy")), "{:?}", run.last_outcome);
    let r = tick(&store, &livy, w(1).plus_secs(60)).await;
    assert_eq!(r.runs_submitted, 1, "{r:?}");
    assert_eq!(livy.submissions(LIVY), 1);
}

#[tokio::test]
async fn a_livy_restart_that_resets_ids_does_not_confuse_runs() {
    let (store, livy) = world(&["orders", "customers"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    // orders' batch finished and wrote its result; then Livy restarts and forgets both batches.
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Succeeded).await;
    livy.restart(LIVY);
    let r = tick(&store, &livy, w(1).plus_secs(60)).await;
    assert_eq!(r.runs_published, 1, "the result is the truth, not Livy's memory");
    assert_eq!(r.runs_retried, 1, "customers' running batch vanished: a new attempt");
    let runs = store.all_runs();
    let customers = runs.iter().find(|r| r.job_id.as_str() == "customers").expect("run");
    assert_eq!(customers.attempt, Attempt(2));
    // The new attempt is placed after its backoff, as a new batch whose id (0) is reused.
    tick(&store, &livy, w(1).plus_secs(80)).await;
    let batches = livy.batches(LIVY);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].0, 0, "ids restarted");
    assert_eq!(batches[0].1.name, format!("norris-customers-{}-a2", w(0).0));
    assert_eq!(watermark(&store, "orders").await, w(1));
}

#[tokio::test]
async fn a_superseded_attempt_can_never_publish() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    livy.restart(LIVY); // attempt 1's batch is forgotten without a result: attempt 2 supersedes it
    tick(&store, &livy, w(1).plus_secs(5)).await;
    tick(&store, &livy, w(1).plus_secs(20)).await; // attempt 2 placed
                                                   // The zombie attempt 1 still finishes somewhere and reports success.
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Succeeded).await;
    let r = tick(&store, &livy, w(1).plus_secs(30)).await;
    assert_eq!(r.runs_published, 0, "attempt 1 is not current");
    finish(&store, &livy, "orders", w(0), 2, AttemptOutcome::Succeeded).await;
    let r = tick(&store, &livy, w(1).plus_secs(40)).await;
    assert_eq!(r.runs_published, 1);
    let run = store.all_runs().remove(0);
    assert!(
        matches!(run.status, RunStatus::Published { ref prefix, .. } if prefix.ends_with("attempt=2")),
        "{:?}",
        run.status
    );
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_the_run_fails_and_the_watermark_stops() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Failed).await;
    let r = tick(&store, &livy, w(1).plus_secs(1)).await;
    assert_eq!(r.runs_retried, 1);
    let r = tick(&store, &livy, w(1).plus_secs(5)).await;
    assert_eq!(r.runs_submitted, 0, "backoff of 10 s not over");
    let r = tick(&store, &livy, w(1).plus_secs(11)).await;
    assert_eq!(r.runs_submitted, 1);
    finish(&store, &livy, "orders", w(0), 2, AttemptOutcome::Failed).await;
    let r = tick(&store, &livy, w(1).plus_secs(20)).await;
    assert_eq!(r.runs_failed, 1, "max_attempts 2");
    let run = store.all_runs().remove(0);
    assert!(matches!(run.status, RunStatus::Failed { ref reason, .. } if reason.contains("failed attempt 2 of 2")));
    assert_eq!(run.failures, 2);
    assert_eq!(watermark(&store, "orders").await, w(0));
}

#[tokio::test]
async fn a_breaking_schema_change_quarantines_the_job() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Quarantined).await;
    tick(&store, &livy, w(1).plus_secs(1)).await;
    let state = store.get_job_state(&JobId::new("orders")).await.expect("get").expect("state");
    assert!(
        matches!(state.validity, Validity::Quarantined { ref reason } if reason.contains("price")),
        "{:?}",
        state.validity
    );
    assert_eq!(state.due_at, None);
    let r = tick(&store, &livy, w(5)).await;
    assert_eq!(r.windows_cut, 0, "quarantined jobs are not scheduled");
}

#[tokio::test]
async fn two_concurrent_ticks_submit_each_window_once() {
    let jobs: Vec<String> = (0..8).map(|i| format!("job-{i}")).collect();
    let ids: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let (store, livy) = world(&ids).await;
    tick(&store, &livy, T0).await;
    let cfg = config();
    let (a, b) = tokio::join!(scheduler_tick(&store, &livy, w(2), &cfg), scheduler_tick(&store, &livy, w(2), &cfg));
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.windows_cut + b.windows_cut, 16);
    // 16 runs but 4 slots (default without a pool definition): each submitted at most once.
    let submitted = livy.submissions(LIVY);
    assert_eq!(submitted as usize, a.runs_submitted + b.runs_submitted);
    let names: std::collections::BTreeSet<String> = livy.batches(LIVY).into_iter().map(|(_, s, _)| s.name).collect();
    assert_eq!(names.len() as u64, submitted, "no batch submitted twice");
    assert!(submitted <= 4, "capacity respected: {submitted}");
}

#[tokio::test]
async fn an_operator_retry_of_a_failed_run_resumes_the_watermark() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Failed).await;
    tick(&store, &livy, w(1).plus_secs(1)).await;
    tick(&store, &livy, w(1).plus_secs(12)).await;
    finish(&store, &livy, "orders", w(0), 2, AttemptOutcome::Failed).await;
    tick(&store, &livy, w(1).plus_secs(20)).await;
    let key = store.all_runs().remove(0).key();
    let pending = store.all_runs().into_iter().find(|r| r.window.lo == w(1));
    assert!(pending.is_none() || !matches!(pending.map(|r| r.status), Some(RunStatus::Failed { .. })));
    let retried = norris_control::follow::retry_failed_run(&store, w(1).plus_secs(30), &key).await.expect("retry");
    assert_eq!((retried.attempt, retried.failures), (Attempt(3), 0), "a new retry budget");
    assert!(
        norris_control::follow::retry_failed_run(&store, w(1).plus_secs(31), &key).await.is_err(),
        "only failed runs"
    );
    tick(&store, &livy, w(1).plus_secs(32)).await;
    finish(&store, &livy, "orders", w(0), 3, AttemptOutcome::Failed).await;
    let r = tick(&store, &livy, w(1).plus_secs(40)).await;
    assert_eq!((r.runs_retried, r.runs_failed), (1, 0), "attempt 3's failure is the new budget's first");
    tick(&store, &livy, w(1).plus_secs(52)).await;
    finish(&store, &livy, "orders", w(0), 4, AttemptOutcome::Succeeded).await;
    tick(&store, &livy, w(1).plus_secs(60)).await;
    assert_eq!(watermark(&store, "orders").await, w(1));
}

#[tokio::test]
async fn a_tick_that_died_between_publishing_and_committing_is_completed_by_the_next_due_tick() {
    let (store, livy) = world(&["orders"]).await;
    tick(&store, &livy, T0).await;
    tick(&store, &livy, w(1)).await;
    finish(&store, &livy, "orders", w(0), 1, AttemptOutcome::Succeeded).await;
    // The dying tick published window 0 and never committed it.
    let mut run = store.all_runs().remove(0);
    run.status =
        RunStatus::Published { prefix: "file:///lake/orders/data/window_lo=0/attempt=1".into(), rows: 10, at: w(1) };
    store.update_run(&run).await.expect("published");
    livy.forget_finished(LIVY);
    let r = tick(&store, &livy, w(1).plus_secs(30)).await;
    assert_eq!((r.runs_published, r.windows_committed), (0, 0), "not due yet, and nothing of it followed");
    let r = tick(&store, &livy, w(2)).await;
    assert_eq!((r.runs_published, r.windows_committed), (0, 1), "its due tick commits what was published");
    assert_eq!(watermark(&store, "orders").await, w(1));
}
