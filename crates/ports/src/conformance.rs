//! The behaviour every [`StateStore`] must show, as one suite run against each implementation
//! (the in-memory model in this crate's tests, DynamoDB on the moto server in `norris-dynamo`'s).
//! Keys are prefixed with a namespace so several runs can share one set of tables.
//!
//! This is test code compiled into the library (feature `conformance`): it panics on a failure.

use crate::store::{Annotation, GroupStore, StateStore, WriteError};
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchHandle, Check, Cluster, ClusterKey, ClusterState, CohortKey, Group,
    GroupKey, GroupResult, GroupStatus, JobDefinition, JobId, JobState, Member, MemberState, Run, RunOutcome,
    RunStatus, Shard, ShardJob, ShardKey, SizeClass, UnixTime, Validity, Version, Window, SHARD_MAX_JOBS,
};
use serde_json::{json, Value};

const T0: UnixTime = UnixTime(1_795_305_600);

/// Runs every check against `store`, with keys under `ns` (letters, digits, `-`).
pub async fn run_all<S: StateStore>(store: &S, ns: &str) {
    racing_writers_on_a_run_one_wins_and_the_loser_sees_the_winner(store, ns).await;
    creating_the_same_window_twice_leaves_one_item(store, ns).await;
    a_stale_version_update_is_rejected(store, ns).await;
    a_moved_run_keeps_its_retry_budget_and_why_it_moved(store, ns).await;
    malformed_job_definitions_read_back_as_errors_naming_the_field(store, ns).await;
    job_states_are_created_once_and_found_by_due_time(store, ns).await;
    due_jobs_are_read_as_they_are_now_ties_in_id_order(store, ns).await;
    active_runs_are_exactly_the_unfinished_ones(store, ns).await;
    runs_of_a_job_come_in_window_order_from_a_start(store, ns).await;
    clusters_are_created_once_and_updated_by_version(store, ns).await;
    annotations_do_not_change_what_a_definition_means(store, ns).await;
    a_periodic_task_is_claimed_by_one_caller_until_it_expires(store, ns).await;
    attempt_results_round_trip_per_attempt(store, ns).await;
    batch_reads_return_what_exists_once_past_a_hundred_keys(store, ns).await;
}

/// A job document that passes validation.
pub fn job_document(id: &str) -> Value {
    json!({
        "job_id": id,
        "kind": "batch_extraction",
        "enabled": true,
        "size_class": "small",
        "interval_secs": 300,
        "lag_secs": 60,
        "start_at": "2026-11-22T00:00:00Z",
        "source": {
            "jdbc_url": "jdbc:mysql://127.0.0.1:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:norris/shop-AbCdEf",
            "table": "orders",
            "watermark_column": "updated_at",
            "primary_key": ["id"]
        },
        "lake_uri": "s3://lake/shop/orders",
        "livy": {"file": "s3://code/extract.py", "conf": {"spark.sql.shuffle.partitions": "4"}}
    })
}

fn job_id(ns: &str, name: &str) -> JobId {
    JobId::new(format!("{ns}-{name}"))
}

fn window(i: i64) -> Window {
    Window { lo: T0.plus_secs(300 * i), hi: T0.plus_secs(300 * (i + 1)) }
}

fn running_on(run: &Run, cluster: &str, batch_id: i64) -> Run {
    let mut next = run.clone();
    next.status = RunStatus::Running {
        cluster: ClusterKey::new(cluster),
        batch: BatchHandle { livy_batch_id: batch_id, batch_name: format!("norris-{}-a{}", run.key(), run.attempt) },
        since: T0.plus_secs(10),
    };
    next.updated_at = T0.plus_secs(10);
    next
}

async fn racing_writers_on_a_run_one_wins_and_the_loser_sees_the_winner<S: StateStore>(store: &S, ns: &str) {
    let run = store.create_run(&Run::new(job_id(ns, "race"), window(0), T0)).await.expect("create");
    let a = running_on(&run, "cluster-a", 1);
    let b = running_on(&run, "cluster-b", 2);
    let (ra, rb) = tokio::join!(store.update_run(&a), store.update_run(&b));
    let (winner, loser_err) = match (ra, rb) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (ra, rb) => panic!("exactly one writer must win, got {ra:?} and {rb:?}"),
    };
    assert_eq!(winner.version, run.version.next());
    match loser_err {
        WriteError::Conflict { current: Some(current) } => {
            assert_eq!(*current, winner, "the loser sees the winner's state")
        }
        other => panic!("the loser must see a conflict carrying the current item, got {other:?}"),
    }
    let stored = store.get_run(&run.key()).await.expect("get").expect("exists");
    assert_eq!(stored, winner);
}

async fn creating_the_same_window_twice_leaves_one_item<S: StateStore>(store: &S, ns: &str) {
    let job = job_id(ns, "twice");
    let first = Run::new(job.clone(), window(3), T0);
    store.create_run(&first).await.expect("first create");
    let mut second = Run::new(job.clone(), window(3), T0.plus_secs(5));
    second.attempt = Attempt(7);
    match store.create_run(&second).await {
        Err(WriteError::Conflict { current: Some(current) }) => assert_eq!(*current, first),
        other => panic!("a second create of the same window must conflict, got {other:?}"),
    }
    let runs = store.runs_of_job(&job, UnixTime(0), 100).await.expect("runs");
    assert_eq!(runs, vec![first], "one item for the window");
}

async fn a_stale_version_update_is_rejected<S: StateStore>(store: &S, ns: &str) {
    let run = store.create_run(&Run::new(job_id(ns, "stale"), window(0), T0)).await.expect("create");
    let updated = store.update_run(&running_on(&run, "c1", 4)).await.expect("first update");
    let mut stale = run.clone();
    stale.status = RunStatus::Failed { reason: "late writer".into(), at: T0.plus_secs(99) };
    match store.update_run(&stale).await {
        Err(WriteError::Conflict { current: Some(current) }) => assert_eq!(*current, updated),
        other => panic!("a write based on a stale version must conflict, got {other:?}"),
    }
    let mut missing = Run::new(job_id(ns, "never-created"), window(0), T0);
    missing.version = Version(3);
    assert!(matches!(store.update_run(&missing).await, Err(WriteError::Conflict { current: None })));
}

async fn a_moved_run_keeps_its_retry_budget_and_why_it_moved<S: StateStore>(store: &S, ns: &str) {
    let run = store.create_run(&Run::new(job_id(ns, "moved"), window(0), T0)).await.expect("create");
    let mut moved = run.clone();
    moved.attempt = Attempt(3);
    moved.failures = 1;
    moved.status = RunStatus::Pending { not_before: T0.plus_secs(5) };
    moved.last_outcome = Some(RunOutcome {
        attempt: Attempt(2),
        summary: "moved off cluster small-1: spot loss".into(),
        moved_off: Some(ClusterKey::new("small-1")),
    });
    let stored = store.update_run(&moved).await.expect("update");
    assert_eq!(store.get_run(&run.key()).await.expect("get"), Some(stored.clone()));
    assert_eq!((stored.failures, stored.last_outcome.and_then(|o| o.moved_off)), (1, Some(ClusterKey::new("small-1"))));
}

async fn malformed_job_definitions_read_back_as_errors_naming_the_field<S: StateStore>(store: &S, ns: &str) {
    let good = format!("{ns}-good");
    let bad = format!("{ns}-bad");
    store.put_job_document(&job_document(&good)).await.expect("put good");
    let mut doc = job_document(&bad);
    doc["interval_secs"] = json!("five minutes");
    doc["source"]["primary_key"] = json!([]);
    store.put_job_document(&doc).await.expect("put bad");

    let ids = [JobId::new(&good), JobId::new(&bad), JobId::new(format!("{ns}-absent"))];
    let records = store.get_job_definitions(&ids).await.expect("get");
    assert_eq!(records.len(), 2, "absent definitions are left out");
    let good_rec = records.iter().find(|r| r.key == good).expect("good read");
    let def: &JobDefinition = good_rec.parsed.as_ref().expect("good definition parses");
    assert_eq!(def.id.as_str(), good);
    let bad_rec = records.iter().find(|r| r.key == bad).expect("bad read");
    let err = bad_rec.parsed.as_ref().expect_err("bad definition is an error");
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"interval_secs"), "{paths:?}");
    assert!(paths.contains(&"source.primary_key"), "{paths:?}");

    let scanned = store.scan_job_definitions().await.expect("scan");
    let mine: Vec<_> = scanned.iter().filter(|r| r.key.starts_with(&format!("{ns}-"))).collect();
    assert_eq!(mine.len(), 2, "the scan reads both, the bad one as an error");
    assert_eq!(mine.iter().filter(|r| r.parsed.is_err()).count(), 1);
}

fn state(id: JobId, due_at: Option<UnixTime>) -> JobState {
    JobState {
        job_id: id,
        definition_hash: "abc".into(),
        validity: Validity::Valid,
        watermark: T0,
        next_window_lo: T0,
        due_at,
        accepted_schema: None,
        version: Version::INITIAL,
    }
}

async fn job_states_are_created_once_and_found_by_due_time<S: StateStore>(store: &S, ns: &str) {
    // Due times far in the past, so other suites' states (at T0) sort after ours.
    let early = UnixTime(1_000_000 + i64::from(ns.len() as u32));
    let s1 = store.create_job_state(&state(job_id(ns, "due-1"), Some(early))).await.expect("create 1");
    store.create_job_state(&state(job_id(ns, "due-2"), Some(early.plus_secs(60)))).await.expect("create 2");
    store.create_job_state(&state(job_id(ns, "later"), Some(early.plus_secs(10_000)))).await.expect("create 3");
    let mut invalid = state(job_id(ns, "invalid"), None);
    invalid.validity = Validity::Invalid {
        problems: vec![norris_model::FieldProblem { path: "interval_secs".into(), reason: "must be a number".into() }],
    };
    let invalid = store.create_job_state(&invalid).await.expect("create invalid");
    assert_eq!(store.get_job_state(&invalid.job_id).await.expect("get"), Some(invalid.clone()), "states round-trip");
    assert!(matches!(
        store.create_job_state(&state(job_id(ns, "due-1"), None)).await,
        Err(WriteError::Conflict { current: Some(c) }) if *c == s1
    ));

    let due = store.due_jobs(early.plus_secs(120), 1000).await.expect("due");
    let mine: Vec<&str> =
        due.iter().map(|s| s.job_id.as_str()).filter(|id| id.starts_with(&format!("{ns}-"))).collect();
    assert_eq!(mine, vec![format!("{ns}-due-1"), format!("{ns}-due-2")], "only due, earliest first");
    assert!(due.windows(2).all(|w| w[0].due_at <= w[1].due_at));

    let mut moved = s1.clone();
    moved.due_at = Some(early.plus_secs(5_000));
    moved.watermark = T0.plus_secs(300);
    let moved = store.update_job_state(&moved).await.expect("update");
    assert_eq!(moved.version, Version(2));
    assert!(matches!(store.update_job_state(&s1).await, Err(WriteError::Conflict { .. })));
    let due = store.due_jobs(early.plus_secs(120), 1000).await.expect("due");
    assert!(!due.iter().any(|s| s.job_id == s1.job_id), "a job moved later leaves the due set");
}

/// What a due query answers is each item as it is now (an index may list keys and the store read
/// the items by key), and jobs due at the same moment come in id order whatever order they were
/// written in.
async fn due_jobs_are_read_as_they_are_now_ties_in_id_order<S: StateStore>(store: &S, ns: &str) {
    let at = UnixTime(2_000_000);
    let mut created = Vec::new();
    for name in ["tie-c", "tie-a", "tie-b"] {
        created.push(store.create_job_state(&state(job_id(ns, name), Some(at))).await.expect("create"));
    }
    let mut b = created[2].clone();
    b.watermark = T0.plus_secs(300);
    let b = store.update_job_state(&b).await.expect("update");
    let mine = |due: Vec<JobState>| -> Vec<JobState> {
        due.into_iter().filter(|s| s.job_id.as_str().starts_with(&format!("{ns}-tie-"))).collect()
    };
    let due = mine(store.due_jobs(at, 1000).await.expect("due"));
    assert_eq!(due, vec![created[1].clone(), b, created[0].clone()], "current versions, in id order");
}

async fn active_runs_are_exactly_the_unfinished_ones<S: StateStore>(store: &S, ns: &str) {
    let job = job_id(ns, "active");
    let pending = store.create_run(&Run::new(job.clone(), window(0), T0)).await.expect("c0");
    let r1 = store.create_run(&Run::new(job.clone(), window(1), T0)).await.expect("c1");
    let running = store.update_run(&running_on(&r1, "c9", 11)).await.expect("run");
    let r2 = store.create_run(&Run::new(job.clone(), window(2), T0)).await.expect("c2");
    let mut published = r2.clone();
    published.status = RunStatus::Published { prefix: "s3://lake/x/attempt=1".into(), rows: 42, at: T0.plus_secs(50) };
    store.update_run(&published).await.expect("publish");

    let active: Vec<Run> = store.active_runs().await.expect("active").into_iter().filter(|r| r.job_id == job).collect();
    assert_eq!(active, vec![pending, running]);
}

async fn runs_of_a_job_come_in_window_order_from_a_start<S: StateStore>(store: &S, ns: &str) {
    let job = job_id(ns, "ordered");
    for i in [4, 1, 3, 0, 2] {
        store.create_run(&Run::new(job.clone(), window(i), T0)).await.expect("create");
    }
    store.create_run(&Run::new(job_id(ns, "ordered-other"), window(2), T0)).await.expect("other job");
    let runs = store.runs_of_job(&job, window(1).lo, 3).await.expect("runs");
    let los: Vec<UnixTime> = runs.iter().map(|r| r.window.lo).collect();
    assert_eq!(los, vec![window(1).lo, window(2).lo, window(3).lo]);
    assert!(runs.iter().all(|r| r.job_id == job));
}

async fn clusters_are_created_once_and_updated_by_version<S: StateStore>(store: &S, ns: &str) {
    let key = ClusterKey::new(format!("{ns}-small-g1"));
    let cluster = Cluster {
        key: key.clone(),
        size_class: SizeClass::new("small"),
        generation: 1,
        emr_cluster_id: None,
        livy_endpoint: None,
        state: ClusterState::Launching { requested_at: T0 },
        created_at: T0,
        ready_at: None,
        rotate_after: T0.plus_secs(86_400),
        version: Version::INITIAL,
    };
    store.create_cluster(&cluster).await.expect("create");
    assert!(matches!(store.create_cluster(&cluster).await, Err(WriteError::Conflict { current: Some(_) })));
    let mut ready = cluster.clone();
    ready.emr_cluster_id = Some("j-ABC".into());
    ready.livy_endpoint = Some("http://127.0.0.1:8998".into());
    ready.state = ClusterState::Ready;
    ready.ready_at = Some(T0.plus_secs(600));
    let ready = store.update_cluster(&ready).await.expect("ready");
    let mut lost = cluster.clone();
    lost.state = ClusterState::Lost { reason: "INSTANCE_FAILURE".into(), at: T0.plus_secs(700) };
    assert!(matches!(store.update_cluster(&lost).await, Err(WriteError::Conflict { current: Some(c) }) if *c == ready));
    assert_eq!(store.get_cluster(&key).await.expect("get"), Some(ready.clone()));
    let listed = store.list_clusters().await.expect("list");
    assert!(listed.contains(&ready));
}

async fn annotations_do_not_change_what_a_definition_means<S: StateStore>(store: &S, ns: &str) {
    let id = JobId::new(format!("{ns}-annotated"));
    store.put_job_document(&job_document(id.as_str())).await.expect("put");
    let before = store.get_job_definitions(std::slice::from_ref(&id)).await.expect("get").remove(0);
    assert_eq!(before.reconciled_hash, None);
    let annotation = Annotation {
        status: "invalid".into(),
        problems: vec![norris_model::FieldProblem { path: "x".into(), reason: "y".into() }],
        hash: before.hash.clone(),
    };
    store.annotate_job_definition(&id, &annotation).await.expect("annotate");
    let after = store.get_job_definitions(std::slice::from_ref(&id)).await.expect("get").remove(0);
    assert_eq!(before.hash, after.hash, "norris_* annotations leave the hash alone");
    assert_eq!(before.parsed, after.parsed);
    assert_eq!(after.reconciled_hash.as_deref(), Some(before.hash.as_str()));
    // Annotating a definition that does not exist must not create one.
    let ghost = JobId::new(format!("{ns}-ghost"));
    store.annotate_job_definition(&ghost, &annotation).await.expect("annotate ghost");
    assert!(store.get_job_definitions(&[ghost]).await.expect("get").is_empty());
}

async fn a_periodic_task_is_claimed_by_one_caller_until_it_expires<S: StateStore>(store: &S, ns: &str) {
    let task = format!("{ns}-sweep");
    let (a, b) = tokio::join!(
        store.claim_periodic(&task, T0, T0.plus_secs(900)),
        store.claim_periodic(&task, T0, T0.plus_secs(900))
    );
    assert_eq!(
        [a.expect("a"), b.expect("b")].iter().filter(|won| **won).count(),
        1,
        "one of two concurrent claims wins"
    );
    assert!(!store.claim_periodic(&task, T0.plus_secs(899), T0.plus_secs(1800)).await.expect("early"));
    assert!(store.claim_periodic(&task, T0.plus_secs(900), T0.plus_secs(1800)).await.expect("due again"));
}

async fn attempt_results_round_trip_per_attempt<S: StateStore>(store: &S, ns: &str) {
    let run = Run::new(job_id(ns, "results"), window(0), T0);
    let result = AttemptResult {
        run_key: run.key().to_string(),
        attempt: Attempt(2),
        outcome: AttemptOutcome::Quarantined,
        rows_read: 10,
        rows_written: 0,
        checks: vec![Check { name: "primary key unique".into(), passed: false, detail: "2 duplicates".into() }],
        schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
        schema_verdict: "breaking".into(),
        schema_change: "column price changed type from int to string".into(),
        output_prefix: "file:///tmp/lake/x/attempt=2".into(),
        message: "breaking schema change".into(),
        finished_at: T0.plus_secs(30),
    };
    store.put_attempt_result(&result).await.expect("put");
    assert_eq!(store.get_attempt_results(&[(run.key(), Attempt(2))]).await.expect("get"), vec![result]);
    assert_eq!(store.get_attempt_results(&[(run.key(), Attempt(1))]).await.expect("get"), vec![], "per attempt");

    let mut with_schema = state(job_id(ns, "schema"), None);
    with_schema.accepted_schema = Some(r#"[{"name":"id"}]"#.into());
    store.create_job_state(&with_schema).await.expect("create");
    assert_eq!(store.get_job_state(&with_schema.job_id).await.expect("get"), Some(with_schema));
}

async fn batch_reads_return_what_exists_once_past_a_hundred_keys<S: StateStore>(store: &S, ns: &str) {
    // 130 states and results exist (more than one BatchGetItem takes); 20 keys do not; every key
    // is asked for twice.
    let mut ids = Vec::new();
    let mut attempts = Vec::new();
    for i in 0..150 {
        let id = job_id(ns, &format!("batch-{i:03}"));
        let run = Run::new(id.clone(), window(0), T0);
        if i < 130 {
            store.create_job_state(&state(id.clone(), None)).await.expect("create");
            let result = AttemptResult {
                run_key: run.key().to_string(),
                attempt: Attempt(1),
                outcome: AttemptOutcome::Succeeded,
                rows_read: i,
                rows_written: i,
                checks: Vec::new(),
                schema_json: "[]".into(),
                schema_verdict: "unchanged".into(),
                schema_change: "none".into(),
                output_prefix: format!("file:///tmp/lake/{i}"),
                message: "ok".into(),
                finished_at: T0,
            };
            store.put_attempt_result(&result).await.expect("put");
        }
        ids.extend([id.clone(), id]);
        attempts.extend([(run.key(), Attempt(1)), (run.key(), Attempt(1))]);
    }
    let mut states = store.get_job_states(&ids).await.expect("batch states");
    states.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    assert_eq!(states.len(), 130, "each existing state once, the missing ones left out");
    assert_eq!(states[129].job_id, job_id(ns, "batch-129"));
    let results = store.get_attempt_results(&attempts).await.expect("batch results");
    assert_eq!(results.len(), 130);
    let rows: u64 = results.iter().map(|r| r.rows_read).sum();
    assert_eq!(rows, (0..130).sum::<u64>(), "each result read whole, once");
    assert!(store.get_job_states(&[]).await.expect("no keys").is_empty());
    assert!(store.get_attempt_results(&[]).await.expect("no keys").is_empty());
}

/// Runs every check of the grouped ledger's store against `store`, with keys under `ns`.
pub async fn run_groups<S: GroupStore>(store: &S, ns: &str) {
    shards_are_created_once_updated_by_version_and_found_by_due_time(store, ns).await;
    due_shards_are_read_as_they_are_now_ties_in_key_order(store, ns).await;
    a_full_shard_round_trips(store, ns).await;
    groups_are_cut_once_and_open_until_committed(store, ns).await;
    group_results_round_trip_per_attempt(store, ns).await;
    schemas_round_trip_and_the_latest_wins(store, ns).await;
}

fn cohort(ns: &str, interval_secs: i64) -> CohortKey {
    CohortKey { size_class: SizeClass::new(format!("{ns}-small")), interval_secs, phase_secs: 60 }
}

fn shard(cohort: &CohortKey, index: u32, jobs: usize, due_at: Option<UnixTime>) -> Shard {
    let job = |i: usize| ShardJob {
        definition_hash: format!("hash-{i}"),
        validity: match i % 3 {
            0 => Validity::Valid,
            1 => Validity::Invalid {
                problems: vec![norris_model::FieldProblem {
                    path: "source.table".into(),
                    reason: "must be a non-empty string".into(),
                }],
            },
            _ => Validity::Quarantined { reason: "column price changed type from int to string".into() },
        },
        watermark: T0.plus_secs(300 * i as i64),
        next_window_lo: T0.plus_secs(300 * (i as i64 + 2)),
        schema_hash: i.is_multiple_of(2).then(|| format!("schema-{i}")),
    };
    Shard {
        key: ShardKey { cohort: cohort.clone(), index },
        jobs: (0..jobs).map(|i| (JobId::new(format!("{}-job-{i:03}", cohort.size_class)), job(i))).collect(),
        cut_seq: 7,
        due_at,
        version: Version::INITIAL,
    }
}

async fn shards_are_created_once_updated_by_version_and_found_by_due_time<S: GroupStore>(store: &S, ns: &str) {
    let (five, hourly) = (cohort(ns, 300), cohort(ns, 3600));
    let early = UnixTime(1_000_000);
    let s0 = store.create_shard(&shard(&five, 0, 3, Some(early))).await.expect("create 0");
    store.create_shard(&shard(&five, 1, 3, Some(early.plus_secs(60)))).await.expect("create 1");
    store.create_shard(&shard(&hourly, 0, 3, Some(early.plus_secs(10_000)))).await.expect("create hourly");
    store.create_shard(&shard(&hourly, 1, 3, None)).await.expect("create held");
    assert_eq!(store.get_shard(&s0.key).await.expect("get"), Some(s0.clone()), "shards round-trip");
    assert!(matches!(
        store.create_shard(&shard(&five, 0, 1, None)).await,
        Err(WriteError::Conflict { current: Some(c) }) if *c == s0
    ));
    let indexes = |shards: Vec<Shard>| shards.into_iter().map(|s| s.key.index).collect::<Vec<_>>();
    assert_eq!(indexes(store.shards_of_cohort(&five).await.expect("cohort")), vec![0, 1]);
    assert_eq!(indexes(store.shards_of_cohort(&hourly).await.expect("cohort")), vec![0, 1]);

    let due = store.due_shards(early.plus_secs(120), 1000).await.expect("due");
    let mine: Vec<(i64, u32)> = due
        .iter()
        .filter(|s| s.key.cohort.size_class.as_str().starts_with(&format!("{ns}-")))
        .map(|s| (s.key.cohort.interval_secs, s.key.index))
        .collect();
    assert_eq!(mine, vec![(300, 0), (300, 1)], "only due, earliest first");
    assert_eq!(store.due_shards(early.plus_secs(120), 1).await.expect("due").len(), 1, "at most the limit");

    let mut cut = s0.clone();
    cut.cut_seq += 1;
    cut.due_at = Some(early.plus_secs(5_000));
    cut.jobs.values_mut().for_each(|j| j.next_window_lo = j.next_window_lo.plus_secs(300));
    let cut = store.update_shard(&cut).await.expect("update");
    assert_eq!(cut.version, Version(2));
    assert_eq!(store.get_shard(&s0.key).await.expect("get"), Some(cut.clone()));
    assert!(matches!(
        store.update_shard(&s0).await,
        Err(WriteError::Conflict { current: Some(c) }) if *c == cut
    ));
    let due = store.due_shards(early.plus_secs(120), 1000).await.expect("due");
    assert!(!due.iter().any(|s| s.key == s0.key), "a shard due later leaves the due set");
}

/// Shards due at the same moment come in key order whatever order they were written in, each as
/// it is now.
async fn due_shards_are_read_as_they_are_now_ties_in_key_order<S: GroupStore>(store: &S, ns: &str) {
    let cohort = cohort(ns, 10_800);
    let at = UnixTime(2_000_000);
    let mut created = Vec::new();
    for index in [2, 0, 1] {
        created.push(store.create_shard(&shard(&cohort, index, 2, Some(at))).await.expect("create"));
    }
    let mut one = created[2].clone();
    one.cut_seq += 1;
    let one = store.update_shard(&one).await.expect("update");
    let due: Vec<Shard> =
        store.due_shards(at, 1000).await.expect("due").into_iter().filter(|s| s.key.cohort == cohort).collect();
    assert_eq!(due, vec![created[1].clone(), one, created[0].clone()], "current versions, in key order");
}

async fn a_full_shard_round_trips<S: GroupStore>(store: &S, ns: &str) {
    let full = shard(&cohort(ns, 900), 0, SHARD_MAX_JOBS, Some(T0));
    let created = store.create_shard(&full).await.expect("a shard of the most jobs fits one item");
    assert_eq!(store.get_shard(&full.key).await.expect("get"), Some(created));
}

fn group(shard: &ShardKey, seq: u64, ns: &str) -> Group {
    let member = |i: i64, state: MemberState| Member {
        job_id: JobId::new(format!("{ns}-job-{i}")),
        window: window(i),
        failures: (i % 3) as u32,
        state,
    };
    Group {
        key: GroupKey { shard: shard.clone(), seq },
        members: vec![
            member(0, MemberState::ToDo),
            member(1, MemberState::Published { attempt: Attempt(2), rows: 12 }),
            member(2, MemberState::Failed { reason: "the batch died: OutOfMemoryError".into() }),
            member(3, MemberState::Quarantined { reason: "column price dropped".into() }),
        ],
        attempt: Attempt(3),
        status: GroupStatus::Pending { not_before: T0.plus_secs(60) },
        created_at: T0,
        updated_at: T0.plus_secs(5),
        last_outcome: Some(RunOutcome {
            attempt: Attempt(2),
            summary: "moved off cluster small-3: EMR TERMINATED_WITH_ERRORS (INSTANCE_FAILURE)".into(),
            moved_off: Some(ClusterKey::new("small-3")),
        }),
        committed: false,
        version: Version::INITIAL,
    }
}

async fn groups_are_cut_once_and_open_until_committed<S: GroupStore>(store: &S, ns: &str) {
    let shard = ShardKey { cohort: cohort(ns, 1800), index: 0 };
    let g1 = store.create_group(&group(&shard, 1, ns)).await.expect("create 1");
    assert_eq!(store.get_group(&g1.key).await.expect("get"), Some(g1.clone()), "groups round-trip");
    let mut other_cut = group(&shard, 1, ns);
    other_cut.members.truncate(1);
    assert!(
        matches!(store.create_group(&other_cut).await, Err(WriteError::Conflict { current: Some(c) }) if *c == g1),
        "a cut happens once: the loser sees the stored group"
    );
    let g2 = store.create_group(&group(&shard, 2, ns)).await.expect("create 2");

    // Each state a group's attempt goes through round-trips, and a stale version is refused.
    let mut submitting = g1.clone();
    submitting.status = GroupStatus::Submitting { cluster: ClusterKey::new("small-4"), since: T0.plus_secs(70) };
    let submitting = store.update_group(&submitting).await.expect("submitting");
    let mut running = submitting.clone();
    running.status = GroupStatus::Running {
        cluster: ClusterKey::new("small-4"),
        batch: BatchHandle { livy_batch_id: 17, batch_name: format!("norris-g-{}-a3", g1.key) },
        since: T0.plus_secs(80),
    };
    let running = store.update_group(&running).await.expect("running");
    assert_eq!(running.version, Version(3));
    assert_eq!(store.get_group(&g1.key).await.expect("get"), Some(running.clone()));
    assert!(matches!(
        store.update_group(&submitting).await,
        Err(WriteError::Conflict { current: Some(c) }) if *c == running
    ));
    let open = |groups: Vec<Group>| groups.into_iter().filter(|g| g.key.shard == shard).collect::<Vec<_>>();
    assert_eq!(open(store.open_groups().await.expect("open")), vec![running.clone(), g2.clone()], "key order");

    let mut settled = running.clone();
    settled.status = GroupStatus::Settled { at: T0.plus_secs(400) };
    settled.members[0].state = MemberState::Published { attempt: Attempt(3), rows: 0 };
    settled.last_outcome = None;
    let settled = store.update_group(&settled).await.expect("settled");
    assert_eq!(store.get_group(&g1.key).await.expect("get"), Some(settled.clone()));
    assert_eq!(open(store.open_groups().await.expect("open")).len(), 2, "settled, not yet folded: still open");
    let mut committed = settled.clone();
    committed.committed = true;
    store.update_group(&committed).await.expect("committed");
    assert_eq!(open(store.open_groups().await.expect("open")), vec![g2.clone()], "committed groups leave the open set");

    // Open groups come in key order across size classes whose names extend one another.
    let longer = ShardKey {
        cohort: CohortKey { size_class: SizeClass::new(format!("{ns}-small-x")), ..cohort(ns, 1800) },
        index: 0,
    };
    let g3 = store.create_group(&group(&longer, 1, ns)).await.expect("create 3");
    let mine: Vec<GroupKey> = store
        .open_groups()
        .await
        .expect("open")
        .into_iter()
        .filter(|g| g.key.shard == shard || g.key.shard == longer)
        .map(|g| g.key)
        .collect();
    assert_eq!(mine, vec![g2.key, g3.key]);

    // Updating what does not exist is a conflict with nothing.
    let never = group(&shard, 99, ns);
    assert!(matches!(store.update_group(&never).await, Err(WriteError::Conflict { current: None })));
    let no_shard = self::shard(&cohort(ns, 1800), 42, 1, None);
    assert!(matches!(store.update_shard(&no_shard).await, Err(WriteError::Conflict { current: None })));
}

async fn group_results_round_trip_per_attempt<S: GroupStore>(store: &S, ns: &str) {
    let key = GroupKey { shard: ShardKey { cohort: cohort(ns, 7200), index: 3 }, seq: 41 };
    let member = |i: i64, outcome: AttemptOutcome| AttemptResult {
        run_key: format!("{ns}-job-{i}@{}", window(i).lo.0),
        attempt: Attempt(2),
        outcome,
        rows_read: 10 + i as u64,
        rows_written: if outcome == AttemptOutcome::Succeeded { 10 } else { 0 },
        checks: if outcome == AttemptOutcome::Failed {
            vec![Check { name: "primary key unique".into(), passed: false, detail: "2 duplicates".into() }]
        } else {
            vec![]
        },
        schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
        schema_verdict: if outcome == AttemptOutcome::Quarantined { "breaking".into() } else { "unchanged".into() },
        schema_change: if outcome == AttemptOutcome::Quarantined {
            "column price dropped".into()
        } else {
            String::new()
        },
        // As compact as the Spark application writes a member (livy-jobs/README.md, "Groups"):
        // no output prefix (the spec's), a message only when the attempt did not succeed.
        output_prefix: String::new(),
        message: if outcome == AttemptOutcome::Succeeded { String::new() } else { "m".into() },
        finished_at: T0.plus_secs(30),
    };
    let result = GroupResult {
        group: key.clone(),
        attempt: Attempt(2),
        members: vec![
            member(0, AttemptOutcome::Succeeded),
            member(1, AttemptOutcome::Failed),
            member(2, AttemptOutcome::Quarantined),
        ],
        finished_at: T0.plus_secs(31),
    };
    store.put_group_result(&result).await.expect("put");
    let asked = [(key.clone(), Attempt(2)), (key.clone(), Attempt(1)), (key.clone(), Attempt(2))];
    assert_eq!(store.get_group_results(&asked).await.expect("get"), vec![result], "per attempt, once each");
}

async fn schemas_round_trip_and_the_latest_wins<S: GroupStore>(store: &S, ns: &str) {
    let first = r#"[{"name":"id","type":"bigint","nullable":false}]"#;
    let evolved = r#"[{"name":"id","type":"bigint","nullable":false},{"name":"note","type":"string","nullable":true}]"#;
    let (orders, unknown) = (job_id(ns, "schema-orders"), job_id(ns, "schema-unknown"));
    assert!(
        store.get_schemas(std::slice::from_ref(&unknown)).await.expect("get").is_empty(),
        "no schema yet: left out"
    );
    store.put_schema(&orders, first).await.expect("put");
    assert_eq!(
        store.get_schemas(std::slice::from_ref(&orders)).await.expect("get"),
        vec![(orders.clone(), first.to_string())]
    );
    store.put_schema(&orders, evolved).await.expect("put again");
    let asked = [orders.clone(), unknown.clone(), orders.clone()];
    assert_eq!(
        store.get_schemas(&asked).await.expect("get"),
        vec![(orders.clone(), evolved.to_string())],
        "the latest accepted wins; asked twice, answered once; unknown left out"
    );

    // More jobs than one BatchGetItem takes, each asked twice, some without a schema: every
    // schema comes back whole, once, in job order.
    let schema_of = |i: usize| format!(r#"[{{"name":"c{i}","type":"int","nullable":true}}]"#);
    let mut ids = Vec::new();
    for i in 0..150 {
        let id = job_id(ns, &format!("schema-{i:03}"));
        if i < 130 {
            store.put_schema(&id, &schema_of(i)).await.expect("put");
        }
        ids.extend([id.clone(), id]);
    }
    ids.reverse();
    let expected: Vec<(JobId, String)> =
        (0..130).map(|i| (job_id(ns, &format!("schema-{i:03}")), schema_of(i))).collect();
    assert_eq!(store.get_schemas(&ids).await.expect("batch"), expected);
    assert!(store.get_schemas(&[]).await.expect("no keys").is_empty());
}
