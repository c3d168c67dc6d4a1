//! The grouped ledger's tick over the in-memory store, Livy and spec models: jobs placed in shards
//! by cohort, a shard's due windows cut into one group run as one batch, members published and
//! committed one by one, through concurrent ticks, a tick that died mid-cut, partial failures and
//! a lost cluster.

use norris_control::clusters::{migrate, Failover, LifecycleConfig};
use norris_control::grouped::grouped_tick;
use norris_control::{SchedulerConfig, TickReport};
use norris_model::{
    Attempt, AttemptOutcome, AttemptResult, BatchPhase, Cluster, ClusterKey, ClusterState, CohortKey, Group,
    GroupResult, GroupStatus, JobId, MemberState, Shard, ShardKey, SizeClass, UnixTime, Validity, Version,
};
use norris_ports::{GroupStore, MemoryLivy, MemorySpecs, MemoryStore, StateStore};
use serde_json::{json, Value};

const T0: UnixTime = UnixTime(1_795_305_600); // 2026-11-22T00:00:00Z
const LIVY: &str = "http://livy-a";

fn config() -> SchedulerConfig {
    SchedulerConfig { table_prefix: "t".into(), definition_sweep_secs: 86_400, max_due_per_tick: 100 }
}

fn lifecycle(failover: Failover) -> LifecycleConfig {
    let env = [("NORRIS_TABLE_PREFIX", "t"), ("NORRIS_DEPLOYMENT", "t")];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    LifecycleConfig { failover, ..LifecycleConfig::from_env_map(&env).expect("config") }
}

fn job(id: &str) -> Value {
    json!({
        "job_id": id, "kind": "batch_extraction", "size_class": "small",
        "interval_secs": 300, "lag_secs": 0, "start_at": "2026-11-22T00:00:00Z", "max_windows_in_flight": 3,
        "source": {"jdbc_url": "jdbc:mysql://127.0.0.1:3306/shop",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop", "table": "orders",
            "watermark_column": "updated_at", "primary_key": ["id"]},
        "lake_uri": format!("file:///lake/{id}"), "livy": {"file": "local:/extract.py"},
        "retry": {"max_attempts": 2, "backoff_base_secs": 10, "backoff_max_secs": 10}
    })
}

fn cluster(name: &str) -> Cluster {
    Cluster {
        key: ClusterKey::new(name),
        size_class: SizeClass::new("small"),
        generation: 1,
        emr_cluster_id: Some(format!("j-{name}")),
        livy_endpoint: Some(LIVY.into()),
        state: ClusterState::Ready,
        created_at: T0,
        ready_at: Some(T0),
        rotate_after: T0.plus_secs(86_400),
        version: Version::INITIAL,
    }
}

struct World {
    store: MemoryStore,
    livy: MemoryLivy,
    specs: MemorySpecs,
}

async fn world(jobs: &[&str]) -> World {
    let store = MemoryStore::new();
    for id in jobs {
        store.put_job_document(&job(id)).await.expect("put");
    }
    store.create_cluster(&cluster("small-1")).await.expect("cluster");
    World { store, livy: MemoryLivy::new(), specs: MemorySpecs::new() }
}

impl World {
    async fn tick(&self, now: UnixTime) -> TickReport {
        let report = grouped_tick(&self.store, &self.livy, &self.specs, now, &config()).await.expect("tick");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        report
    }

    async fn open(&self) -> Vec<Group> {
        self.store.open_groups().await.expect("open groups")
    }

    async fn shard(&self) -> Shard {
        let cohort = CohortKey { size_class: SizeClass::new("small"), interval_secs: 300, phase_secs: 0 };
        self.store.get_shard(&ShardKey { cohort, index: 0 }).await.expect("get").expect("shard")
    }

    async fn watermark(&self, id: &str) -> UnixTime {
        self.shard().await.jobs[&JobId::new(id)].watermark
    }

    /// Plays the Spark application of the group's current attempt: reads its spec (as the
    /// application does), writes one result with each member's outcome, ends the batch.
    async fn finish(&self, group: &Group, outcome_of: impl Fn(&str) -> AttemptOutcome) {
        assert!(matches!(group.status, GroupStatus::Submitting { .. }), "group {} is not placed", group.key);
        let batch = norris_engine::groups::group_batch_name(group);
        let (_, submission, _) =
            self.livy.batches(LIVY).into_iter().find(|(_, s, _)| s.name == batch).expect("the batch was submitted");
        let uri = submission.args.iter().skip_while(|a| *a != "--group-spec-uri").nth(1).expect("a spec URI");
        let spec = self.specs.read(uri).expect("the spec was written");
        assert_eq!(spec["attempt"], json!(group.attempt.0));
        let members = spec["members"].as_array().expect("members").clone();
        assert_eq!(members.len(), group.to_do().count(), "the spec holds exactly the members still to do");
        let results: Vec<AttemptResult> = members
            .iter()
            .map(|m| {
                let job = m["job_id"].as_str().expect("job");
                let lo = m["window"]["lo"].as_i64().expect("lo");
                let outcome = outcome_of(job);
                AttemptResult {
                    run_key: format!("{job}@{lo}"),
                    attempt: group.attempt,
                    outcome,
                    rows_read: 10,
                    rows_written: 10,
                    checks: vec![],
                    schema_json: r#"[{"name":"id","type":"bigint","nullable":false}]"#.into(),
                    // As extract.py judges it: the first schema of a job, then unchanged.
                    schema_verdict: if m["accepted_schema"].is_null() { "first" } else { "unchanged" }.into(),
                    schema_change: if outcome == AttemptOutcome::Quarantined {
                        "column price changed type from int to string".into()
                    } else {
                        String::new()
                    },
                    output_prefix: m["output_prefix"].as_str().unwrap_or_default().into(),
                    message: String::new(),
                    finished_at: T0,
                }
            })
            .collect();
        let result =
            GroupResult { group: group.key.clone(), attempt: group.attempt, members: results, finished_at: T0 };
        self.store.put_group_result(&result).await.expect("result");
        assert!(self.livy.set_phase(LIVY, &batch, BatchPhase::Succeeded));
    }
}

fn w(i: i64) -> UnixTime {
    T0.plus_secs(300 * i)
}

#[tokio::test]
async fn a_shards_due_windows_run_as_one_batch_and_commit_together() {
    let world = world(&["orders", "payments"]).await;
    let r = world.tick(T0).await;
    assert!(r.swept);
    assert_eq!(r.definitions_reconciled, 2);
    assert_eq!(r.windows_cut, 0, "nothing is due at the start");

    let r = world.tick(w(2)).await;
    assert_eq!(r.windows_cut, 4, "two windows of each job");
    assert_eq!(r.runs_submitted, 1, "one batch for the shard");
    assert_eq!(world.livy.submissions(LIVY), 1);
    let open = world.open().await;
    assert_eq!(open.len(), 1);
    assert!(matches!(open[0].status, GroupStatus::Submitting { .. }), "placed: {:?}", open[0].status);
    assert_eq!(open[0].version, Version::INITIAL, "created placed, and not rewritten when Livy has the batch");

    world.finish(&open[0], |_| AttemptOutcome::Succeeded).await;
    let r = world.tick(w(2).plus_secs(60)).await;
    assert_eq!(r.runs_published, 4);
    assert_eq!(r.windows_committed, 4);
    assert!(world.open().await.is_empty(), "the group is committed and leaves the open index");
    assert_eq!(world.watermark("orders").await, w(2));
    assert_eq!(world.watermark("payments").await, w(2));
    let schemas = world.store.get_schemas(&[JobId::new("orders")]).await.expect("schemas");
    assert_eq!(schemas.len(), 1, "the first schema is accepted");
    assert!(world.shard().await.jobs[&JobId::new("orders")].schema_hash.is_some());

    // Nothing new is due until the next window ends.
    let r = world.tick(w(2).plus_secs(120)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (0, 0));
    let r = world.tick(w(3)).await;
    assert_eq!(r.windows_cut, 2);
}

#[tokio::test]
async fn a_failed_member_is_retried_alone_and_holds_only_its_own_jobs_watermark() {
    let world = world(&["orders", "payments"]).await;
    world.tick(T0).await;
    world.tick(w(1)).await;
    let group = world.open().await.remove(0);
    world
        .finish(&group, |job| if job == "payments" { AttemptOutcome::Failed } else { AttemptOutcome::Succeeded })
        .await;

    let r = world.tick(w(1).plus_secs(30)).await;
    assert_eq!((r.runs_published, r.runs_retried), (1, 1));
    assert_eq!(world.watermark("orders").await, w(1), "the published member commits");
    assert_eq!(world.watermark("payments").await, w(0), "the failed one holds its job");
    let retried = world.open().await.remove(0);
    assert_eq!(retried.attempt, Attempt(2));
    assert_eq!(retried.to_do().map(|m| m.job_id.as_str()).collect::<Vec<_>>(), vec!["payments"]);
    assert_eq!(retried.members.iter().find(|m| m.job_id.as_str() == "payments").map(|m| m.failures), Some(1));

    // After the backoff the second attempt runs the failed member only, and it publishes.
    let r = world.tick(w(1).plus_secs(45)).await;
    assert_eq!(r.runs_submitted, 1);
    let retried = world.open().await.remove(0);
    world.finish(&retried, |_| AttemptOutcome::Succeeded).await;
    let r = world.tick(w(1).plus_secs(60)).await;
    assert_eq!(r.runs_published, 1);
    assert_eq!(world.watermark("payments").await, w(1));
    assert!(world.open().await.is_empty());

    // With schemas accepted (nothing for the shard to note), a published member still commits
    // in the tick that saw it, not when the shard is next due.
    world.tick(w(2)).await;
    let group = world.open().await.remove(0);
    world
        .finish(&group, |job| if job == "payments" { AttemptOutcome::Failed } else { AttemptOutcome::Succeeded })
        .await;
    let r = world.tick(w(2).plus_secs(30)).await;
    assert_eq!((r.runs_published, r.runs_retried), (1, 1));
    assert_eq!(world.watermark("orders").await, w(2), "the published member commits at once");
    assert_eq!(world.watermark("payments").await, w(1));
}

#[tokio::test]
async fn a_member_failing_every_attempt_is_given_up_and_a_breaking_change_quarantines_its_job() {
    let world = world(&["orders", "payments", "refunds"]).await;
    world.tick(T0).await;
    world.tick(w(1)).await;
    let outcome = |job: &str| match job {
        "payments" => AttemptOutcome::Failed,
        "refunds" => AttemptOutcome::Quarantined,
        _ => AttemptOutcome::Succeeded,
    };
    let group = world.open().await.remove(0);
    world.finish(&group, outcome).await;
    world.tick(w(1).plus_secs(30)).await;
    let shard = world.shard().await;
    assert!(
        matches!(shard.jobs[&JobId::new("refunds")].validity, Validity::Quarantined { ref reason } if reason.contains("price"))
    );

    world.tick(w(1).plus_secs(45)).await;
    let group = world.open().await.remove(0);
    world.finish(&group, outcome).await;
    let r = world.tick(w(1).plus_secs(60)).await;
    assert_eq!(r.runs_failed, 1, "the second failure of a 2-attempt budget gives the member up");
    let group = world.open().await.remove(0);
    assert!(matches!(group.status, GroupStatus::Settled { .. }));
    let payments = group.members.iter().find(|m| m.job_id.as_str() == "payments").expect("member");
    assert!(matches!(payments.state, MemberState::Failed { .. }));
    assert!(!group.committed, "a group with a failed window stays open for the operator");
    assert_eq!(world.watermark("payments").await, w(0));

    // Later windows: the quarantined job is not cut, the failed one is (up to its in-flight limit).
    world.tick(w(2)).await;
    let cut: Vec<String> = world
        .open()
        .await
        .iter()
        .filter(|g| g.key.seq == 2)
        .flat_map(|g| g.members.iter().map(|m| m.job_id.to_string()))
        .collect();
    assert_eq!(cut, vec!["orders".to_string(), "payments".to_string()]);
}

#[tokio::test]
async fn two_concurrent_ticks_cut_and_submit_each_window_once() {
    let jobs: Vec<String> = (0..20).map(|i| format!("job-{i:02}")).collect();
    let names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let world = world(&names).await;
    world.tick(T0).await;
    let cfg = config();
    let (a, b) = tokio::join!(
        grouped_tick(&world.store, &world.livy, &world.specs, w(3), &cfg),
        grouped_tick(&world.store, &world.livy, &world.specs, w(3), &cfg)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.windows_cut + b.windows_cut, 60, "every window was cut by exactly one tick");
    assert_eq!(world.open().await.len(), 1);
    assert_eq!(world.livy.batches(LIVY).len(), 1, "one batch");
    let shard = world.shard().await;
    assert!(shard.jobs.values().all(|j| j.next_window_lo == w(3)));
}

#[tokio::test]
async fn a_tick_that_died_after_cutting_a_group_is_finished_by_the_next_without_a_second_cut() {
    let world = world(&["orders"]).await;
    world.tick(T0).await;
    // The dead tick created the group of the shard's first cut but never recorded it in the shard.
    let shard = world.shard().await;
    let mut dead = norris_engine::groups::plan_group(
        w(1),
        &shard,
        &norris_engine::groups::ShardView {
            runnable: [(JobId::new("orders"), &*Box::leak(Box::new(ext())))].into_iter().collect(),
            uncommitted: Default::default(),
        },
    )
    .expect("due");
    dead.created_at = w(1);
    world.store.create_group(&dead).await.expect("group");

    let r = world.tick(w(2)).await;
    assert_eq!(r.conflicts, 1, "the cut at the same sequence finds the dead tick's group");
    assert_eq!(r.windows_cut, 0, "and the tick takes it as its own; the window it missed is next");
    let open = world.open().await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].members.len(), 1);
    assert_eq!(world.shard().await.jobs[&JobId::new("orders")].next_window_lo, w(1));
    let r = world.tick(w(2).plus_secs(1)).await;
    assert_eq!(r.windows_cut, 1, "the second window is cut in the next group");
    assert_eq!(world.open().await.len(), 2);
}

fn ext() -> norris_model::ExtractionSpec {
    let def = norris_model::JobDefinition::from_document(&job("orders")).expect("valid");
    def.extraction().expect("extraction").clone()
}

#[tokio::test]
async fn a_group_on_a_lost_cluster_runs_again_on_another_without_a_failure() {
    let world = world(&["orders"]).await;
    world.store.create_cluster(&cluster("small-2")).await.expect("second cluster");
    world.tick(T0).await;
    world.tick(w(1)).await;
    let group = world.open().await.remove(0);
    let GroupStatus::Submitting { cluster: on, .. } = group.status.clone() else { panic!("not placed") };
    let mut lost = world.store.get_cluster(&on).await.expect("get").expect("cluster");
    lost.state = ClusterState::Lost { reason: "spot interruption".into(), at: w(1).plus_secs(10) };
    world.store.update_cluster(&lost).await.expect("lost");

    // The tick leaves it to the mover: no failure, no new attempt.
    let r = world.tick(w(1).plus_secs(20)).await;
    assert_eq!((r.runs_submitted, r.runs_retried, r.runs_failed), (0, 0, 0));
    assert_eq!(world.open().await.remove(0), group, "the tick does not touch a group on a cluster being left");

    // The baseline's policy waits for a replacement; norris's moves it at once.
    let waiting = Failover::WaitForReplacement;
    let r =
        migrate(&world.store, &world.livy, &world.specs, w(1).plus_secs(30), &lifecycle(waiting)).await.expect("pass");
    assert_eq!(r.groups_moved, 0, "no cluster became ready after the loss");
    let r = migrate(&world.store, &world.livy, &world.specs, w(1).plus_secs(30), &lifecycle(Failover::Warm))
        .await
        .expect("pass");
    assert_eq!((r.groups_moved, r.groups_placed_again), (1, 1), "moved and submitted again in one pass");
    let again = migrate(&world.store, &world.livy, &world.specs, w(1).plus_secs(40), &lifecycle(Failover::Warm))
        .await
        .expect("pass");
    assert_eq!((again.groups_moved, again.groups_placed_again), (0, 0), "a second pass finds nothing to do");
    let moved = world.open().await.remove(0);
    assert_eq!(moved.attempt, Attempt(2));
    assert_eq!(moved.members[0].failures, 0, "the loss of a cluster is no failure of the window");
    let GroupStatus::Submitting { cluster: now_on, .. } = &moved.status else {
        panic!("not placed: {:?}", moved.status)
    };
    assert_ne!(now_on, &on);
    assert_eq!(moved.last_outcome.as_ref().and_then(|o| o.moved_off.clone()), Some(on));
}

#[tokio::test]
async fn jobs_fill_shards_of_their_cohort_and_an_invalid_one_is_reported_while_the_others_run() {
    let jobs: Vec<String> = (0..300).map(|i| format!("job-{i:03}")).collect();
    let names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let world = world(&names).await;
    let mut bad = job("bad");
    bad["interval_secs"] = json!("5m");
    world.store.put_job_document(&bad).await.expect("put");
    let mut hourly = job("hourly");
    hourly["interval_secs"] = json!(3600);
    world.store.put_job_document(&hourly).await.expect("put");

    let r = world.tick(T0).await;
    assert_eq!(r.invalid_jobs.len(), 1);
    assert!(r.invalid_jobs[0].1.iter().any(|p| p.starts_with("interval_secs: ")), "{:?}", r.invalid_jobs);
    let shards = world.store.due_shards(UnixTime(i64::MAX), 100).await.expect("shards");
    let mut sizes: Vec<(i64, u32, usize)> =
        shards.iter().map(|s| (s.key.cohort.interval_secs, s.key.index, s.jobs.len())).collect();
    sizes.sort();
    assert_eq!(sizes, vec![(300, 0, 256), (300, 1, 44), (3600, 0, 1)]);
    let doc = world.store.get_job_definitions(&[JobId::new("bad")]).await.expect("get").remove(0);
    assert_eq!(doc.reconciled_hash.as_deref(), Some(doc.hash.as_str()), "the verdict is on the item");

    let r = world.tick(w(1)).await;
    assert_eq!(r.windows_cut, 300, "one window of each five-minute job");
    assert_eq!(r.runs_submitted, 2, "one batch per shard");
}

#[tokio::test]
async fn a_group_cut_while_no_cluster_is_ready_waits_and_is_placed_once_one_is() {
    let world = world(&["orders"]).await;
    let mut starting = world.store.get_cluster(&ClusterKey::new("small-1")).await.expect("get").expect("cluster");
    starting.state = ClusterState::Starting;
    let starting = world.store.update_cluster(&starting).await.expect("starting");
    world.tick(T0).await;
    let r = world.tick(w(1)).await;
    assert_eq!((r.windows_cut, r.runs_submitted), (1, 0));
    let group = world.open().await.remove(0);
    assert!(matches!(group.status, GroupStatus::Pending { .. }), "{:?}", group.status);

    let mut ready = starting;
    ready.state = ClusterState::Ready;
    world.store.update_cluster(&ready).await.expect("ready");
    let r = world.tick(w(1).plus_secs(60)).await;
    assert_eq!(r.runs_submitted, 1);
    let group = world.open().await.remove(0);
    assert!(matches!(group.status, GroupStatus::Submitting { .. }), "{:?}", group.status);
    assert_eq!(group.version, Version(2), "created pending, then placed");
    assert_eq!(world.livy.batches(LIVY).len(), 1);
}

#[tokio::test]
async fn a_job_whose_interval_changed_moves_to_its_new_cohort_after_its_windows_in_flight_commit() {
    let mut cfg = config();
    cfg.definition_sweep_secs = 60;
    let world = world(&["orders", "payments"]).await;
    let tick = |now: UnixTime| {
        let cfg = cfg.clone();
        let world = &world;
        async move {
            let r = grouped_tick(&world.store, &world.livy, &world.specs, now, &cfg).await.expect("tick");
            assert!(r.failures.is_empty(), "{:?}", r.failures);
            r
        }
    };
    tick(T0).await;
    tick(w(2)).await;
    let group = world.open().await.remove(0);
    // The operator moves `orders` to a ten-minute interval while two of its windows are in flight.
    let mut ten = job("orders");
    ten["interval_secs"] = json!(600);
    world.store.put_job_document(&ten).await.expect("put");
    let r = tick(w(2).plus_secs(60)).await;
    assert!(r.swept);
    let five = world.shard().await;
    assert!(five.jobs.contains_key(&JobId::new("orders")), "it stays while its windows are in flight");

    world.finish(&group, |_| AttemptOutcome::Succeeded).await;
    let r = tick(w(2).plus_secs(120)).await;
    assert_eq!(r.windows_committed, 4);
    let r = tick(w(2).plus_secs(180)).await;
    assert!(r.swept);
    let five = world.shard().await;
    assert!(!five.jobs.contains_key(&JobId::new("orders")), "moved out once committed");
    assert!(five.jobs.contains_key(&JobId::new("payments")));
    let cohort = CohortKey { size_class: SizeClass::new("small"), interval_secs: 600, phase_secs: 0 };
    let ten = world.store.get_shard(&ShardKey { cohort, index: 0 }).await.expect("get").expect("new cohort's shard");
    let line = &ten.jobs[&JobId::new("orders")];
    assert_eq!((line.watermark, line.next_window_lo), (w(2), w(2)), "the watermark moves with the job");

    // Its next window is a ten-minute one from where it stopped, cut by the new cohort's shard.
    let r = tick(w(4)).await;
    assert_eq!(r.windows_cut, 3, "one ten-minute window of orders, two five-minute ones of payments: {r:?}");
    assert_eq!(r.runs_submitted, 2, "one batch per shard");
    let cut: Vec<(String, i64, i64)> = world
        .open()
        .await
        .iter()
        .flat_map(|g| g.members.iter().map(|m| (m.job_id.to_string(), m.window.lo.0 - T0.0, m.window.hi.0 - T0.0)))
        .collect();
    assert!(cut.contains(&("orders".to_string(), 600, 1200)), "{cut:?}");
}

#[tokio::test]
async fn a_definition_made_invalid_holds_its_job_in_its_shard_and_a_fix_resumes_it() {
    let mut cfg = config();
    cfg.definition_sweep_secs = 60;
    let world = world(&["orders"]).await;
    let tick = |now: UnixTime| {
        let cfg = cfg.clone();
        let world = &world;
        async move { grouped_tick(&world.store, &world.livy, &world.specs, now, &cfg).await.expect("tick") }
    };
    tick(T0).await;
    let mut bad = job("orders");
    bad["source"]["table"] = json!("");
    world.store.put_job_document(&bad).await.expect("put");
    let r = tick(w(1)).await;
    assert_eq!(r.invalid_jobs.len(), 1, "{r:?}");
    assert_eq!(r.windows_cut, 0, "an invalid job is not cut");
    assert!(matches!(world.shard().await.jobs[&JobId::new("orders")].validity, Validity::Invalid { .. }));

    world.store.put_job_document(&job("orders")).await.expect("fixed");
    let r = tick(w(1).plus_secs(60)).await;
    assert_eq!(r.windows_cut, 1, "resumed from its watermark: {r:?}");
    assert_eq!(world.watermark("orders").await, w(0));
}

#[tokio::test]
async fn an_edited_definition_in_the_same_cohort_runs_at_the_next_window_without_waiting_for_the_sweep() {
    let world = world(&["orders"]).await;
    world.tick(T0).await;
    let mut edited = job("orders");
    edited["source"]["table"] = json!("orders_v2");
    world.store.put_job_document(&edited).await.expect("put");
    let r = world.tick(w(1)).await;
    assert!(!r.swept, "the sweep is not due for a day");
    assert_eq!(r.windows_cut, 1);
    let hash = world.store.get_job_definitions(&[JobId::new("orders")]).await.expect("get").remove(0).hash;
    assert_eq!(world.shard().await.jobs[&JobId::new("orders")].definition_hash, hash);
    let group = world.open().await.remove(0);
    let batch = norris_engine::groups::group_batch_name(&group);
    let (_, submission, _) = world.livy.batches(LIVY).into_iter().find(|(_, s, _)| s.name == batch).expect("submitted");
    let uri = submission.args.iter().skip_while(|a| *a != "--group-spec-uri").nth(1).expect("a spec URI");
    let spec = world.specs.read(uri).expect("spec");
    assert_eq!(spec["members"][0]["source"]["table"], json!("orders_v2"), "the attempt runs the edited definition");
}

#[tokio::test]
async fn an_operator_retries_a_failed_window_and_its_job_resumes() {
    use norris_control::grouped::{retry_failed_member, RetryMemberError};
    let world = world(&["orders", "payments", "refunds"]).await;
    world.tick(T0).await;
    world.tick(w(1)).await;
    let outcome = |job: &str| if job == "orders" { AttemptOutcome::Succeeded } else { AttemptOutcome::Failed };
    let first = world.open().await.remove(0);
    world.finish(&first, outcome).await;
    world.tick(w(1).plus_secs(30)).await;
    world.tick(w(1).plus_secs(45)).await;
    let second = world.open().await.remove(0);
    let running = retry_failed_member(&world.store, w(1), &second.key, &JobId::new("payments"), w(0)).await;
    assert!(matches!(running, Err(RetryMemberError::NotFailed(_))), "still being retried: {running:?}");
    world.finish(&second, outcome).await;
    world.tick(w(1).plus_secs(60)).await;
    let group = world.open().await.remove(0);
    assert!(matches!(group.status, GroupStatus::Settled { .. }), "{:?}", group.status);
    let published = retry_failed_member(&world.store, w(2), &group.key, &JobId::new("orders"), w(0)).await;
    assert!(matches!(published, Err(RetryMemberError::NotFailed(_))), "{published:?}");
    let missing = retry_failed_member(&world.store, w(2), &group.key, &JobId::new("orders"), w(5)).await;
    assert!(matches!(missing, Err(RetryMemberError::NotFound(_))), "{missing:?}");

    // The source is fixed; the operator retries the window: a new attempt runs it alone.
    let retried = retry_failed_member(&world.store, w(1).plus_secs(100), &group.key, &JobId::new("payments"), w(0))
        .await
        .expect("retried");
    assert_eq!(retried.attempt, group.attempt.next());
    assert_eq!(retried.to_do().map(|m| (m.job_id.as_str(), m.failures)).collect::<Vec<_>>(), vec![("payments", 0)]);
    let r = world.tick(w(1).plus_secs(120)).await;
    assert_eq!(r.runs_submitted, 1);
    let busy = retry_failed_member(&world.store, w(1).plus_secs(125), &group.key, &JobId::new("refunds"), w(0)).await;
    assert!(matches!(busy, Err(RetryMemberError::Busy(_))), "the attempt's members are fixed: {busy:?}");
    let placed = world.store.get_group(&group.key).await.expect("get").expect("group");
    world.finish(&placed, |_| AttemptOutcome::Succeeded).await;
    let r = world.tick(w(1).plus_secs(150)).await;
    assert_eq!(r.runs_published, 1);
    assert_eq!(world.watermark("payments").await, w(1), "the job resumes");
    assert_eq!(world.watermark("refunds").await, w(0), "the other failed window still holds its job");

    retry_failed_member(&world.store, w(1).plus_secs(160), &group.key, &JobId::new("refunds"), w(0))
        .await
        .expect("retried once the attempt ended");
    world.tick(w(1).plus_secs(170)).await;
    let placed = world.store.get_group(&group.key).await.expect("get").expect("group");
    world.finish(&placed, |_| AttemptOutcome::Succeeded).await;
    world.tick(w(1).plus_secs(180)).await;
    assert_eq!(world.watermark("refunds").await, w(1));
    assert!(world.store.get_group(&group.key).await.expect("get").expect("group").committed);
}
