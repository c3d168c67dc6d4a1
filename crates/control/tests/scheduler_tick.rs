//! The scheduler tick over the in-memory store: definitions reconciled, windows cut once, in
//! order, whatever the interleaving.

use norris_control::{scheduler_tick, SchedulerConfig};
use norris_model::{JobId, UnixTime, Validity, Window};
use norris_ports::{MemoryLivy, MemoryStore, StateStore};
use serde_json::{json, Value};

const T0: UnixTime = UnixTime(1_795_305_600); // 2026-11-22T00:00:00Z

fn config() -> SchedulerConfig {
    SchedulerConfig { table_prefix: "test".into(), definition_sweep_secs: 3600, max_due_per_tick: 100 }
}

fn job(id: &str) -> Value {
    json!({
        "job_id": id, "kind": "batch_extraction", "size_class": "small",
        "interval_secs": 300, "lag_secs": 60, "start_at": "2026-11-22T00:00:00Z",
        "source": {"jdbc_url": "jdbc:mysql://127.0.0.1:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop", "table": "orders",
            "watermark_column": "updated_at", "primary_key": ["id"]},
        "lake_uri": "s3://lake/orders", "livy": {"file": "s3://code/extract.py"}
    })
}

fn windows_of(store: &MemoryStore, id: &str) -> Vec<Window> {
    store.all_runs().into_iter().filter(|r| r.job_id.as_str() == id).map(|r| r.window).collect()
}

#[tokio::test]
async fn a_new_job_is_picked_up_by_the_sweep_and_its_due_windows_are_cut_in_order() {
    let store = MemoryStore::new();
    store.put_job_document(&job("orders")).await.expect("put");
    let report = scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(10), &config()).await.expect("tick");
    assert!(report.swept);
    assert_eq!(report.definitions_reconciled, 1);
    assert_eq!(report.windows_cut, 0, "the first window is not due before 00:06");

    let report = scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(3 * 300 + 60), &config()).await.expect("tick");
    assert!(!report.swept, "the sweep runs once per interval");
    assert_eq!(report.windows_cut, 3);
    let expected: Vec<Window> =
        (0..3).map(|i| Window { lo: T0.plus_secs(300 * i), hi: T0.plus_secs(300 * (i + 1)) }).collect();
    assert_eq!(windows_of(&store, "orders"), expected);

    let again = scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(3 * 300 + 61), &config()).await.expect("tick");
    assert_eq!(again.windows_cut, 0, "nothing new is due");
    assert_eq!(again.jobs_due, 0, "the job is not read again before its next window is due");
}

#[tokio::test]
async fn an_invalid_definition_is_reported_by_field_and_marked_while_other_jobs_proceed() {
    let store = MemoryStore::new();
    store.put_job_document(&job("good")).await.expect("put");
    let mut bad = job("bad");
    bad["interval_secs"] = json!("5m");
    bad["source"]["jdbc_url"] = json!("jdbc:mysql://root:secret@db/shop");
    store.put_job_document(&bad).await.expect("put");

    let report = scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(360), &config()).await.expect("tick");
    assert_eq!(report.invalid_jobs.len(), 1);
    let (id, problems) = &report.invalid_jobs[0];
    assert_eq!(id, "bad");
    assert!(problems.iter().any(|p| p.starts_with("interval_secs: ")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("source.jdbc_url: must not carry credentials")), "{problems:?}");
    assert_eq!(windows_of(&store, "good").len(), 1, "the valid job proceeds");
    assert!(windows_of(&store, "bad").is_empty());

    let state = store.get_job_state(&JobId::new("bad")).await.expect("get").expect("state recorded");
    assert!(matches!(state.validity, Validity::Invalid { ref problems } if problems.len() == 2));
    assert_eq!(state.due_at, None);
    let doc = store.get_job_definitions(&[JobId::new("bad")]).await.expect("get").remove(0);
    assert_eq!(doc.reconciled_hash.as_deref(), Some(doc.hash.as_str()), "annotated on the item");
}

#[tokio::test]
async fn two_concurrent_ticks_cut_each_window_once() {
    let store = MemoryStore::new();
    for i in 0..20 {
        store.put_job_document(&job(&format!("job-{i:02}"))).await.expect("put");
    }
    scheduler_tick(&store, &MemoryLivy::new(), T0, &config()).await.expect("first tick");
    let now = T0.plus_secs(4 * 300 + 60);
    let cfg = config();
    let livy = MemoryLivy::new();
    let (a, b) = tokio::join!(scheduler_tick(&store, &livy, now, &cfg), scheduler_tick(&store, &livy, now, &cfg));
    let (a, b) = (a.expect("a"), b.expect("b"));
    let runs = store.all_runs();
    assert_eq!(runs.len(), 20 * 4);
    assert_eq!(a.windows_cut + b.windows_cut, 80, "every run was created by exactly one tick");
    for i in 0..20 {
        let w = windows_of(&store, &format!("job-{i:02}"));
        assert!(w.windows(2).all(|p| p[0].hi == p[1].lo), "contiguous, no overlap");
    }
}

#[tokio::test]
async fn a_tick_that_died_after_creating_runs_is_finished_by_the_next_without_duplicates() {
    let store = MemoryStore::new();
    store.put_job_document(&job("orders")).await.expect("put");
    scheduler_tick(&store, &MemoryLivy::new(), T0, &config()).await.expect("first tick");
    // The dead tick created the first window's run but never recorded it in the job state.
    let w0 = Window { lo: T0, hi: T0.plus_secs(300) };
    store.create_run(&norris_model::Run::new(JobId::new("orders"), w0, T0.plus_secs(700))).await.expect("orphan run");
    let report = scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(2 * 300 + 60), &config()).await.expect("tick");
    assert_eq!(report.windows_cut, 1, "only the second window is new");
    assert_eq!(report.conflicts, 1);
    assert_eq!(windows_of(&store, "orders"), vec![w0, Window { lo: T0.plus_secs(300), hi: T0.plus_secs(600) }]);
    let state = store.get_job_state(&JobId::new("orders")).await.expect("get").expect("state");
    assert_eq!(state.next_window_lo, T0.plus_secs(600));
}

#[tokio::test]
async fn a_deleted_definition_unschedules_its_job_and_keeps_its_runs() {
    let store = MemoryStore::new();
    store.put_job_document(&job("orders")).await.expect("put");
    scheduler_tick(&store, &MemoryLivy::new(), T0.plus_secs(360), &config()).await.expect("tick");
    assert_eq!(windows_of(&store, "orders").len(), 1);
    // No delete in the port (operators delete in the console); a fresh store with the same
    // ledger but no definition plays the deletion.
    let ledger_only = MemoryStore::new();
    for run in store.all_runs() {
        ledger_only.create_run(&run).await.expect("copy run");
    }
    for state in store.all_job_states() {
        ledger_only.create_job_state(&state).await.expect("copy state");
    }
    scheduler_tick(&ledger_only, &MemoryLivy::new(), T0.plus_secs(3000), &config()).await.expect("tick");
    let state = ledger_only.get_job_state(&JobId::new("orders")).await.expect("get").expect("state");
    assert_eq!(state.due_at, None);
    assert_eq!(windows_of(&ledger_only, "orders").len(), 1);
}
