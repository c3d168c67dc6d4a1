//! The extraction scheduler end to end on the local world: DynamoDB on moto, the Livy stand-in
//! running real spark-submit, the PySpark extraction job reading real MariaDB over JDBC.

use anyhow::{Context, Result};
use norris_control::{scheduler_tick, SchedulerConfig, TickReport};
use norris_dynamo::{DynamoStore, TableNames};
use norris_e2e::{
    create_secret, mariadb, repo_root, require_local_world, unique, wait_until, DroppingProxy, LivyStandin,
};
use norris_livy::{LivyClient, RetryPolicy};
use norris_model::{Cluster, ClusterKey, ClusterState, JobId, RunStatus, SizeClass, UnixTime, Version};
use norris_ports::{Clock, StateStore, SystemClock};
use serde_json::{json, Value};
use std::time::Duration;

/// Spark runs are heavy (2 cores): the tests of this binary take turns.
static SPARK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INTERVAL: i64 = 60;
const WINDOWS: i64 = 3;
const ROWS_PER_WINDOW: i64 = 5;

struct World {
    store: DynamoStore,
    config: SchedulerConfig,
    database: String,
    secret_arn: String,
    lake: std::path::PathBuf,
    start: UnixTime,
}

impl World {
    async fn new(name: &str) -> Result<World> {
        let endpoint = require_local_world()?;
        let prefix = unique(&format!("e2e{name}"));
        let client = norris_dynamo::client_from_env().await;
        norris_dynamo::create_tables(&client, &prefix).await?;
        let store = DynamoStore::new(client, TableNames::with_prefix(&prefix));
        let database = format!("norris_{}", prefix.replace('-', "_"));
        mariadb(None, &format!("CREATE DATABASE {database}"))?;
        let secret_arn =
            create_secret(&endpoint, &format!("norris/{prefix}"), r#"{"username":"norris","password":"norris-local"}"#)
                .await?;
        let lake = repo_root().join("target/e2e/lake").join(&prefix);
        std::fs::create_dir_all(&lake)?;
        let start = SystemClock.now().align_down(INTERVAL).plus_secs(-INTERVAL * WINDOWS);
        let config = SchedulerConfig { table_prefix: prefix, definition_sweep_secs: 3600, max_due_per_tick: 100 };
        Ok(World { store, config, database, secret_arn, lake, start })
    }

    /// A source table with rows spread over the job's first windows (ids from `first_id`).
    fn source_table(&self, table: &str) -> Result<()> {
        mariadb(
            Some(&self.database),
            &format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount INT NOT NULL, updated_at DATETIME(3) NOT NULL)"
            ),
        )?;
        let mut values = Vec::new();
        for w in 0..WINDOWS {
            for i in 0..ROWS_PER_WINDOW {
                let t = self.start.plus_secs(w * INTERVAL + i * 7);
                let ts = t.to_string().replace('T', " ").replace('Z', "");
                values.push(format!("({}, 'c{i}', {}, '{ts}')", w * 100 + i, w * 10 + i));
            }
        }
        mariadb(Some(&self.database), &format!("INSERT INTO {table} VALUES {}", values.join(", ")))?;
        Ok(())
    }

    fn job(&self, id: &str, table: &str) -> Value {
        json!({
            "job_id": id, "kind": "batch_extraction", "size_class": "small",
            "interval_secs": INTERVAL, "lag_secs": 0, "lookback_secs": 0,
            "start_at": self.start.to_string(), "max_windows_in_flight": 4,
            "source": {
                "jdbc_url": format!("jdbc:mysql://127.0.0.1:3306/{}", self.database),
                "secret_arn": self.secret_arn, "table": table,
                "watermark_column": "updated_at", "primary_key": ["id"]
            },
            "lake_uri": format!("file://{}/{table}", self.lake.display()),
            "livy": {
                "file": format!("local:{}", repo_root().join("livy-jobs/extract.py").display()),
                "jars": ["/usr/share/java/mariadb-java-client.jar"],
                "conf": {"spark.sql.shuffle.partitions": "2"},
                "driver_memory": "512m"
            },
            "retry": {"max_attempts": 3, "backoff_base_secs": 1, "backoff_max_secs": 2}
        })
    }

    async fn register_cluster(&self, endpoint: &str) -> Result<()> {
        let now = SystemClock.now();
        self.store
            .create_cluster(&Cluster {
                key: ClusterKey::new("local-small-1"),
                size_class: SizeClass::new("small"),
                generation: 1,
                emr_cluster_id: None,
                livy_endpoint: Some(endpoint.to_string()),
                state: ClusterState::Ready,
                created_at: now,
                ready_at: Some(now),
                rotate_after: now.plus_secs(86_400),
                version: Version::INITIAL,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    async fn tick(&self, livy: &LivyClient) -> Result<TickReport> {
        Ok(scheduler_tick(&self.store, livy, SystemClock.now(), &self.config).await?)
    }

    /// Ticks until the job's watermark reaches the end of its first windows.
    async fn run_until_committed(&self, livy: &LivyClient, job: &str) -> Result<()> {
        let end = self.start.plus_secs(INTERVAL * WINDOWS);
        wait_until(
            &format!("{job} committed to {end}"),
            Duration::from_secs(300),
            Duration::from_millis(1500),
            || async {
                self.tick(livy).await?;
                let state = self.store.get_job_state(&JobId::new(job)).await?.context("job state")?;
                Ok((state.watermark >= end).then_some(()))
            },
        )
        .await
    }

    /// Checks every window of `job` was published exactly once, with all its rows.
    async fn assert_committed_once(&self, job: &str) -> Result<Vec<norris_model::Run>> {
        let runs = self.store.runs_of_job(&JobId::new(job), self.start, 100).await?;
        let firsts: Vec<_> = runs.iter().filter(|r| r.window.hi <= self.start.plus_secs(INTERVAL * WINDOWS)).collect();
        assert_eq!(firsts.len() as i64, WINDOWS, "one run per window");
        for (i, run) in firsts.iter().enumerate() {
            assert_eq!(run.window.lo, self.start.plus_secs(INTERVAL * i as i64), "contiguous windows");
            let RunStatus::Published { rows, prefix, .. } = &run.status else {
                panic!("window {} not published: {:?}", run.window, run.status)
            };
            assert_eq!(*rows as i64, ROWS_PER_WINDOW, "rows of window {}", run.window);
            assert!(prefix.ends_with(&format!("attempt={}", run.attempt)), "{prefix}");
            let result = self
                .store
                .get_attempt_results(&[(run.key(), run.attempt)])
                .await?
                .pop()
                .context("the published attempt's result")?;
            assert!(result.checks.iter().all(|c| c.passed), "{:?}", result.checks);
        }
        Ok(runs)
    }
}

impl World {
    /// The names of the batches Livy holds for the test's first windows. The job keeps cutting
    /// windows in real time while a test runs (60-second interval), so later windows' batches
    /// are left out: the assertions are about the windows the test set up.
    async fn batch_names(&self, livy: &LivyClient, endpoint: &str) -> Result<Vec<String>> {
        let list = livy.list_batches(endpoint, 0, 1000).await?;
        let end = self.start.plus_secs(INTERVAL * WINDOWS).0;
        let in_first_windows = |name: &String| {
            // norris-<job>-<window_lo>-a<attempt>
            name.rsplit('-').nth(1).and_then(|lo| lo.parse::<i64>().ok()).is_some_and(|lo| lo < end)
        };
        Ok(list.sessions.into_iter().filter_map(|b| b.name).filter(in_first_windows).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_extracted_and_committed_in_order_once_with_a_lost_response_and_a_broken_job() -> Result<()> {
    let _turn = SPARK.lock().await;
    let world = World::new("a").await?;
    world.source_table("orders")?;
    let standin = LivyStandin::start(0, 600)?;
    let proxy = DroppingProxy::start(standin.port).await?;
    world.register_cluster(&proxy.endpoint).await?;
    world.store.put_job_document(&world.job("orders", "orders")).await?;
    let mut broken = world.job("refunds", "refunds");
    broken["interval_secs"] = json!("one minute");
    world.store.put_job_document(&broken).await?;
    let livy = LivyClient::new(RetryPolicy { attempts: 3, base_delay_ms: 100, request_timeout_ms: 10_000 })?;

    proxy.drop_next_post();
    let first = world.tick(&livy).await?;
    assert_eq!(first.invalid_jobs.len(), 1, "{first:?}");
    assert!(first.invalid_jobs[0].1.iter().any(|p| p.starts_with("interval_secs: ")));
    assert_eq!(first.windows_cut, WINDOWS as usize);
    assert_eq!(proxy.dropped.load(std::sync::atomic::Ordering::SeqCst), 1, "one response was lost");

    world.run_until_committed(&livy, "orders").await?;
    world.assert_committed_once("orders").await?;
    let names = world.batch_names(&livy, &standin.endpoint).await?;
    let unique_names: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), WINDOWS as usize, "the lost response did not cause a second batch: {names:?}");
    assert_eq!(unique_names.len(), names.len());
    let state = world.store.get_job_state(&JobId::new("refunds")).await?.context("broken job state")?;
    assert!(matches!(state.validity, norris_model::Validity::Invalid { .. }));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_ticks_create_and_submit_each_window_once() -> Result<()> {
    let _turn = SPARK.lock().await;
    let world = World::new("b").await?;
    world.source_table("orders")?;
    let standin = LivyStandin::start(0, 600)?;
    world.register_cluster(&standin.endpoint).await?;
    world.store.put_job_document(&world.job("orders", "orders")).await?;
    let livy = LivyClient::new(RetryPolicy::default())?;
    let now = SystemClock.now();
    let (a, b) = tokio::join!(
        scheduler_tick(&world.store, &livy, now, &world.config),
        scheduler_tick(&world.store, &livy, now, &world.config)
    );
    let (a, b) = (a?, b?);
    assert_eq!(a.windows_cut + b.windows_cut, WINDOWS as usize, "each window created once");
    world.run_until_committed(&livy, "orders").await?;
    world.assert_committed_once("orders").await?;
    let names = world.batch_names(&livy, &standin.endpoint).await?;
    assert_eq!(names.len(), WINDOWS as usize, "each window submitted once: {names:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_livy_restart_that_resets_ids_does_not_confuse_runs() -> Result<()> {
    let _turn = SPARK.lock().await;
    let world = World::new("c").await?;
    world.source_table("orders")?;
    let standin = LivyStandin::start(0, 600)?;
    let port = standin.port;
    world.register_cluster(&standin.endpoint).await?;
    world.store.put_job_document(&world.job("orders", "orders")).await?;
    let livy = LivyClient::new(RetryPolicy::default())?;
    let first = world.tick(&livy).await?;
    assert_eq!(first.runs_submitted, WINDOWS as usize);
    // Livy restarts while the batches run: they die, and the new server starts ids at 0 again.
    standin.stop()?;
    let restarted = LivyStandin::start(port, 600)?;
    world.run_until_committed(&livy, "orders").await?;
    let runs = world.assert_committed_once("orders").await?;
    let retried = runs.iter().filter(|r| r.attempt.0 > 1).count();
    assert!(retried >= 1, "the killed attempts were superseded");
    let names = world.batch_names(&livy, &restarted.endpoint).await?;
    assert!(names.iter().all(|n| !n.ends_with("-a1")), "no first attempt ran on the new server: {names:?}");
    Ok(())
}
