//! The grouped ledger's scheduler tick (`grouped_tick`) end to end on the local world: shards and
//! groups in DynamoDB on moto, group specs written as files (`FileSpecs`), one Livy batch per group
//! attempt on the Livy stand-in (real spark-submit of `livy-jobs/extract.py --group-spec-uri`),
//! the members reading real MariaDB tables over JDBC and writing Parquet into a local lake, and one
//! group result item per attempt in the results table.
//!
//! The tick takes `now` as a parameter: the test runs it on a virtual clock that starts a few
//! intervals in the past and moves only when the test moves it (to the end of a window, past a
//! backoff), so which windows are due and when a retry may run is decided by the test, not by how
//! long Spark takes on the machine.

use anyhow::{bail, ensure, Context, Result};
use norris_control::grouped::grouped_tick;
use norris_control::{SchedulerConfig, TickReport};
use norris_dynamo::{attribute_to_json, json_to_attribute, DynamoStore, TableNames};
use norris_e2e::{create_secret, mariadb, repo_root, require_local_world, unique, wait_until, LivyStandin};
use norris_engine::groups::group_batch_name;
use norris_livy::{LivyClient, RetryPolicy};
use norris_model::{
    Attempt, Cluster, ClusterKey, ClusterState, CohortKey, Group, GroupKey, GroupStatus, JobId, MemberState, Shard,
    SizeClass, UnixTime, Version,
};
use norris_ports::{BatchService, Clock, FileSpecs, GroupStore, StateStore, SystemClock};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INTERVAL: i64 = 300;
const ROWS_PER_WINDOW: i64 = 4;
/// Three jobs of one cohort (size class, interval, lag), each reading its own table.
const JOBS: [&str; 3] = ["orders", "payments", "refunds"];
/// How long a group attempt may take to be settled and committed (about 35 s on two cores).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(180);

/// Short-lived Spark drivers on two cores start faster with the quick JIT and one GC thread.
const FAST_JVM: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

/// A source row as seeded: id, customer, amount, `updated_at` (Unix seconds).
type Row = (i64, String, i64, i64);

/// A row as read from the lake: the source row, `_norris_window_lo`, `_norris_attempt`.
type LakeRow = (Row, i64, i64);

/// The tick's `now`: a virtual time that moves only when the test moves it.
struct VirtualClock(Mutex<UnixTime>);

impl VirtualClock {
    fn set(&self, t: UnixTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    fn now(&self) -> UnixTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct World {
    store: DynamoStore,
    config: SchedulerConfig,
    specs: FileSpecs,
    spec_dir: PathBuf,
    livy: LivyClient,
    standin: LivyStandin,
    database: String,
    secret_arn: String,
    lake: PathBuf,
    /// Start of the jobs' first window.
    start: UnixTime,
    clock: VirtualClock,
    /// The rows seeded in each source table.
    rows: BTreeMap<String, Vec<Row>>,
}

impl World {
    /// Tables on moto (from infra/tables.json), a source database, a secret, a Livy stand-in
    /// registered as the one ready cluster of the size class, and an empty spec directory.
    async fn new(name: &str) -> Result<World> {
        let endpoint = require_local_world()?;
        let prefix = unique(&format!("e2eg{name}"));
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
        let spec_dir = repo_root().join("target/e2e/specs").join(&prefix);
        let start = SystemClock.now().align_down(INTERVAL).plus_secs(-INTERVAL * 10);
        let config = SchedulerConfig { table_prefix: prefix, definition_sweep_secs: 3600, max_due_per_tick: 100 };
        let standin = LivyStandin::start(0, 600)?;
        let livy = LivyClient::new(RetryPolicy { attempts: 3, base_delay_ms: 100, request_timeout_ms: 10_000 })?;
        let world = World {
            store,
            config,
            specs: FileSpecs::new(&spec_dir),
            spec_dir,
            livy,
            standin,
            database,
            secret_arn,
            lake,
            start,
            clock: VirtualClock(Mutex::new(start)),
            rows: BTreeMap::new(),
        };
        world.register_cluster().await?;
        Ok(world)
    }

    async fn register_cluster(&self) -> Result<()> {
        let now = self.clock.now();
        self.store
            .create_cluster(&Cluster {
                key: ClusterKey::new("local-small-1"),
                size_class: SizeClass::new("small"),
                generation: 1,
                emr_cluster_id: None,
                livy_endpoint: Some(self.standin.endpoint.clone()),
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

    /// The start of window `i` (also the end of window `i - 1`).
    fn w(&self, i: i64) -> UnixTime {
        self.start.plus_secs(INTERVAL * i)
    }

    /// A source table with `ROWS_PER_WINDOW` rows in each of the first `windows` windows, ids from
    /// `first_id` (distinct per table, so a member that read the wrong table is caught).
    fn source_table(&mut self, table: &str, windows: i64, first_id: i64) -> Result<()> {
        mariadb(
            Some(&self.database),
            &format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount INT NOT NULL, updated_at DATETIME(3) NOT NULL)"
            ),
        )?;
        let mut rows = Vec::new();
        for w in 0..windows {
            for i in 0..ROWS_PER_WINDOW {
                let t = self.w(w).plus_secs(i * 7 + 3);
                rows.push((first_id + w * 100 + i, format!("{table}-c{i}"), w * 10 + i, t.secs()));
            }
        }
        let values: Vec<String> = rows
            .iter()
            .map(|(id, customer, amount, t)| {
                let ts = UnixTime(*t).to_string().replace('T', " ").replace('Z', "");
                format!("({id}, '{customer}', {amount}, '{ts}')")
            })
            .collect();
        mariadb(Some(&self.database), &format!("INSERT INTO {table} VALUES {}", values.join(", ")))?;
        self.rows.insert(table.to_string(), rows);
        Ok(())
    }

    /// The source rows of `table` whose `updated_at` is in `[lo, hi)`.
    fn rows_of_window(&self, table: &str, lo: UnixTime, hi: UnixTime) -> BTreeSet<Row> {
        self.rows[table].iter().filter(|r| r.3 >= lo.secs() && r.3 < hi.secs()).cloned().collect()
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
            "lake_uri": format!("file://{}/{id}", self.lake.display()),
            "livy": {
                "file": format!("local:{}", repo_root().join("livy-jobs/extract.py").display()),
                "jars": ["/usr/share/java/mariadb-java-client.jar"],
                "conf": {"spark.sql.shuffle.partitions": "2", "spark.driver.extraJavaOptions": FAST_JVM},
                "driver_memory": "512m"
            },
            "retry": {"max_attempts": 3, "backoff_base_secs": 1, "backoff_max_secs": 2}
        })
    }

    /// One tick at the virtual clock's `now`; a tick that reports a failure (store, Livy, spec
    /// port) fails the test.
    async fn tick(&self) -> Result<TickReport> {
        let report = grouped_tick(&self.store, &self.livy, &self.specs, self.clock.now(), &self.config).await?;
        ensure!(report.failures.is_empty(), "the tick failed: {:?}", report.failures);
        Ok(report)
    }

    /// Ticks (every second, bounded) until `done` holds; no window is cut meanwhile.
    async fn tick_until<F, Fut>(&self, what: &str, mut done: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let started = Instant::now();
        wait_until(what, ATTEMPT_LIMIT, Duration::from_secs(1), || {
            let check = done();
            async move {
                let report = self.tick().await?;
                ensure!(report.windows_cut == 0, "a window was cut while waiting for {what}: {report:?}");
                Ok(check.await?.then_some(()))
            }
        })
        .await?;
        eprintln!("grouped_extraction: {what} after {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    fn cohort() -> CohortKey {
        CohortKey { size_class: SizeClass::new("small"), interval_secs: INTERVAL, phase_secs: 0 }
    }

    /// The cohort's one shard.
    async fn shard(&self) -> Result<Shard> {
        let mut shards = self.store.shards_of_cohort(&Self::cohort()).await?;
        ensure!(shards.len() == 1, "one shard for three jobs: {shards:?}");
        Ok(shards.remove(0))
    }

    async fn watermarks(&self) -> Result<BTreeMap<String, UnixTime>> {
        Ok(self.shard().await?.jobs.into_iter().map(|(id, line)| (id.to_string(), line.watermark)).collect())
    }

    async fn group(&self, key: &GroupKey) -> Result<Group> {
        self.store.get_group(key).await?.with_context(|| format!("group {key}"))
    }

    /// The only open group.
    async fn the_open_group(&self) -> Result<Group> {
        let mut open = self.store.open_groups().await?;
        ensure!(open.len() == 1, "one open group: {open:?}");
        Ok(open.remove(0))
    }

    /// The names of every batch the stand-in holds.
    async fn batch_names(&self) -> Result<Vec<String>> {
        let list = self.livy.list_batches(&self.standin.endpoint, 0, 1000).await?;
        let mut names: Vec<String> = list.sessions.into_iter().filter_map(|b| b.name).collect();
        names.sort();
        Ok(names)
    }

    /// The spec file the tick wrote for a group attempt (through `FileSpecs`).
    fn spec(&self, key: &GroupKey, attempt: Attempt) -> Result<Value> {
        let file = self.spec_dir.join(format!("{}.json", format!("{key}-a{attempt}").replace('/', "-")));
        let text = std::fs::read_to_string(&file).with_context(|| format!("the spec {}", file.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// A group attempt's result item as `extract.py` wrote it (attribute names and all), as JSON.
    async fn raw_result(&self, key: &GroupKey, attempt: Attempt) -> Result<Map<String, Value>> {
        let client = norris_dynamo::client_from_env().await;
        let out = client
            .get_item()
            .table_name(&self.store.tables().results)
            .key("run_key", json_to_attribute(&json!(format!("GROUP#{key}"))))
            .key("attempt", json_to_attribute(&json!(attempt.0)))
            .consistent_read(true)
            .send()
            .await?;
        let item = out.item().with_context(|| format!("no result item for group {key} attempt {attempt}"))?;
        let mut problems = Vec::new();
        let json = item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v, k, &mut problems))).collect();
        ensure!(problems.is_empty(), "{problems:?}");
        Ok(json)
    }

    /// The rows under each Parquet prefix (`file://` URIs), read with PySpark from the venv: id,
    /// customer, amount, `updated_at` (Unix seconds), `_norris_window_lo`, `_norris_attempt`.
    fn parquet(&self, prefixes: &[String]) -> Result<BTreeMap<String, Vec<LakeRow>>> {
        let root = repo_root();
        let started = Instant::now();
        let out = Command::new(root.join(".venv/bin/python"))
            .arg("-c")
            .arg(READ_PARQUET)
            .arg(FAST_JVM)
            .args(prefixes)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("PYSPARK_PYTHON", root.join(".venv/bin/python"))
            .output()
            .context("running PySpark to read the lake")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("NORRIS-ROWS ")) else {
            bail!("reading the lake failed: {}", String::from_utf8_lossy(&out.stderr));
        };
        type Flat = (i64, String, i64, i64, i64, i64);
        let read: BTreeMap<String, Vec<Flat>> = serde_json::from_str(line)?;
        eprintln!("grouped_extraction: the lake read in {:.1} s", started.elapsed().as_secs_f64());
        Ok(read
            .into_iter()
            .map(|(prefix, rows)| {
                (prefix, rows.into_iter().map(|(id, c, a, t, lo, attempt)| ((id, c, a, t), lo, attempt)).collect())
            })
            .collect())
    }

    /// Checks that each published member's Parquet holds exactly its source window's rows, stamped
    /// with its window and the attempt that published it. `members`: (the member as its spec
    /// says, the table it read, the attempt that published it).
    fn assert_lake(&self, members: &[(Value, &str, Attempt)]) -> Result<()> {
        let prefixes: Vec<String> =
            members.iter().map(|(m, _, _)| m["output_prefix"].as_str().unwrap_or_default().to_string()).collect();
        let lake = self.parquet(&prefixes)?;
        for ((member, table, attempt), prefix) in members.iter().zip(&prefixes) {
            let lo = UnixTime(member["window"]["lo"].as_i64().context("lo")?);
            let hi = UnixTime(member["window"]["hi"].as_i64().context("hi")?);
            assert!(prefix.ends_with(&format!("/data/window_lo={}/attempt={attempt}", lo.secs())), "{prefix}");
            let rows = lake.get(prefix).with_context(|| format!("nothing read under {prefix}"))?;
            let found: BTreeSet<Row> = rows.iter().map(|(r, _, _)| r.clone()).collect();
            let expected = self.rows_of_window(table, lo, hi);
            assert_eq!(expected.len() as i64, ROWS_PER_WINDOW, "the test seeded rows in {table} [{lo}, {hi})");
            assert_eq!(rows.len(), found.len(), "no row twice under {prefix}");
            assert_eq!(found, expected, "{prefix} holds exactly the rows of {table} in [{lo}, {hi})");
            for (_, window_lo, written_by) in rows {
                assert_eq!((*window_lo, *written_by), (lo.secs(), attempt.0 as i64), "the stamps of {prefix}");
            }
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = mariadb(None, &format!("DROP DATABASE IF EXISTS {}", self.database));
    }
}

/// Prints `NORRIS-ROWS {prefix: [[id, customer, amount, updated_at secs, window_lo, attempt]]}`.
const READ_PARQUET: &str = r#"
import json, sys
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").appName("norris-e2e-lake")
         .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.extraJavaOptions", sys.argv[1]).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
prefixes = sys.argv[2:]
rows = spark.read.parquet(*prefixes).select(
    F.input_file_name(), "id", "customer", "amount", F.unix_timestamp("updated_at"), "_norris_window_lo",
    "_norris_attempt").collect()
spark.stop()
out = {p: [] for p in prefixes}
for file, *row in rows:
    out[next(p for p in prefixes if file.startswith(p.rstrip("/") + "/"))].append(row)
print("NORRIS-ROWS " + json.dumps(out), flush=True)
"#;

/// The members of a spec, by `<job>@<window lo>`.
fn spec_members(spec: &Value) -> Result<BTreeMap<String, Value>> {
    let members = spec["members"].as_array().context("the spec's members")?;
    Ok(members.iter().map(|m| (m["run_key"].as_str().unwrap_or_default().to_string(), m.clone())).collect())
}

/// The members of a raw group result item, by `k` (run key).
fn result_members(item: &Map<String, Value>) -> Result<BTreeMap<String, Map<String, Value>>> {
    let members = item.get("members").and_then(Value::as_array).context("the result's members")?;
    members
        .iter()
        .map(|m| {
            let m = m.as_object().context("a member is a map")?.clone();
            Ok((m.get("k").and_then(Value::as_str).context("a member's run key")?.to_string(), m))
        })
        .collect()
}

/// A succeeded member as `extract.py` writes it in a group result: short names, the group's
/// attempt, the rows, the schema only when its verdict is not `unchanged`, no failed check, no
/// message, no output prefix.
fn assert_succeeded_member(key: &str, m: &Map<String, Value>, attempt: Attempt, verdict: &str) {
    assert_eq!(m.get("a"), Some(&json!(attempt.0)), "{key}: {m:?}");
    assert_eq!(m.get("o"), Some(&json!("succeeded")), "{key}: {m:?}");
    assert_eq!(m.get("rr"), Some(&json!(ROWS_PER_WINDOW)), "{key}: {m:?}");
    assert_eq!(m.get("rw"), Some(&json!(ROWS_PER_WINDOW)), "{key}: {m:?}");
    assert_eq!(m.get("sv"), Some(&json!(verdict)), "{key}: {m:?}");
    assert!(m.get("t").and_then(Value::as_i64).is_some(), "{key}: {m:?}");
    if verdict == "unchanged" {
        assert!(!m.contains_key("s"), "no schema when unchanged: {key}: {m:?}");
    } else {
        let schema: Value =
            serde_json::from_str(m.get("s").and_then(Value::as_str).unwrap_or("null")).unwrap_or_default();
        let names: Vec<&str> = schema.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, ["id", "customer", "amount", "updated_at"], "{key}: {m:?}");
    }
    for absent in ["m", "op", "c", "sc"] {
        assert!(!m.contains_key(absent), "{key} has no {absent:?}: {m:?}");
    }
    let known: BTreeSet<&str> = ["k", "a", "o", "rr", "rw", "s", "sv", "t"].into();
    assert!(m.keys().all(|k| known.contains(k.as_str())), "{key}: {m:?}");
}

/// Each member (`<job>@<window lo>`) and the attempt that published it with all its rows.
fn published_by(group: &Group) -> BTreeMap<String, Option<Attempt>> {
    group
        .members
        .iter()
        .map(|m| {
            let attempt = match m.state {
                MemberState::Published { attempt, rows } if rows as i64 == ROWS_PER_WINDOW => Some(attempt),
                _ => None,
            };
            (format!("{}@{}", m.job_id, m.window.lo.secs()), attempt)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohorts_windows_run_one_batch_per_group_attempt_a_failed_member_again_alone_an_edit_at_the_next_window(
) -> Result<()> {
    let started = Instant::now();
    let mut world = World::new("a").await?;
    for (i, job) in JOBS.iter().enumerate() {
        world.source_table(job, 2, 1000 * i as i64)?;
        world.store.put_job_document(&world.job(job, job)).await?;
    }
    // The table `orders` reads from its second window on (an edited definition).
    world.source_table("orders_v2", 2, 5000)?;
    let (w0, w1, w2) = (world.w(0), world.w(1), world.w(2));
    let key = |job: &str, lo: UnixTime| format!("{job}@{}", lo.secs());

    // The sweep puts the three jobs in one shard of their cohort; nothing is due yet.
    let r = world.tick().await?;
    assert!(r.swept);
    assert_eq!((r.definitions_reconciled, r.windows_cut), (3, 0), "{r:?}");
    let lines = world.shard().await?.jobs;
    assert_eq!(lines.keys().map(JobId::as_str).collect::<Vec<_>>(), JOBS);
    assert!(lines.values().all(|l| l.watermark == w0 && l.next_window_lo == w0), "{lines:?}");

    // The first window is due; the table `refunds` reads is gone meanwhile.
    mariadb(Some(&world.database), "RENAME TABLE refunds TO refunds_away")?;
    world.clock.set(w1);
    let r = world.tick().await?;
    assert_eq!((r.windows_cut, r.runs_submitted), (3, 1), "one group of three windows, one batch: {r:?}");
    let group = world.the_open_group().await?;
    assert!(matches!(group.status, GroupStatus::Submitting { .. }), "created placed: {:?}", group.status);
    let spec = world.spec(&group.key, Attempt::FIRST)?;
    assert_eq!(spec["group_key"], json!(group.key.to_string()));
    assert_eq!(spec["attempt"], json!(1));
    assert_eq!(spec["results_table"], json!(world.store.tables().results));
    let first = spec_members(&spec)?;
    let expected: BTreeSet<String> = JOBS.iter().map(|j| key(j, w0)).collect();
    assert_eq!(first.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(first.values().all(|m| m["accepted_schema"].is_null()), "no schema accepted yet: {spec}");
    // Found by its name, as the follow step and a lost submission's adoption look it up.
    let found = BatchService::find(&world.livy, &world.standin.endpoint, &group_batch_name(&group)).await?;
    assert!(found.is_some(), "the group's batch is found by name");
    world
        .tick_until("the first attempt ended", || async {
            Ok(world.group(&group.key).await?.attempt != Attempt::FIRST)
        })
        .await?;

    // The other two members published and their watermarks moved; the failed one holds its job.
    let after = world.group(&group.key).await?;
    assert_eq!(world.batch_names().await?, [group_batch_name(&group)], "one batch for the attempt");
    assert_eq!(after.attempt, Attempt(2), "a new attempt for what is left");
    assert!(matches!(after.status, GroupStatus::Pending { .. }), "{:?}", after.status);
    assert!(!after.committed);
    assert_eq!(
        published_by(&after),
        BTreeMap::from([
            (key("orders", w0), Some(Attempt::FIRST)),
            (key("payments", w0), Some(Attempt::FIRST)),
            (key("refunds", w0), None),
        ])
    );
    let refunds = after.members.iter().find(|m| m.job_id.as_str() == "refunds").context("member")?;
    assert_eq!((&refunds.state, refunds.failures), (&MemberState::ToDo, 1));
    assert_eq!(
        world.watermarks().await?,
        BTreeMap::from([("orders".into(), w1), ("payments".into(), w1), ("refunds".into(), w0)])
    );
    let results = result_members(&world.raw_result(&group.key, Attempt::FIRST).await?)?;
    assert_eq!(results.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for job in ["orders", "payments"] {
        assert_succeeded_member(&key(job, w0), &results[&key(job, w0)], Attempt::FIRST, "first");
    }
    let failed = &results[&key("refunds", w0)];
    assert_eq!((failed.get("o"), failed.get("a")), (Some(&json!("failed")), Some(&json!(1))), "{failed:?}");
    assert!(!failed.contains_key("op"), "{failed:?}");
    let message = failed.get("m").and_then(Value::as_str).unwrap_or_default();
    assert!(message.contains("refunds") && message.contains("does not exist"), "{message}");

    // The source is fixed, and `orders` now reads another table. At the end of the next window
    // (past the failed member's backoff) one tick submits two attempts: the first group's again,
    // with the failed member alone, and the next window's group, with the edited definition (the
    // sweep is not due). They run at once; `refunds`'s watermark passes its two windows once both
    // are published, whichever first.
    mariadb(Some(&world.database), "RENAME TABLE refunds_away TO refunds")?;
    world.store.put_job_document(&world.job("orders", "orders_v2")).await?;
    world.clock.set(w2);
    let r = world.tick().await?;
    assert!(!r.swept);
    assert_eq!((r.windows_cut, r.runs_submitted), (3, 2), "{r:?}");
    let retry_spec = world.spec(&group.key, Attempt(2))?;
    assert_eq!(retry_spec["attempt"], json!(2));
    let retried = spec_members(&retry_spec)?;
    assert_eq!(retried.keys().cloned().collect::<Vec<_>>(), [key("refunds", w0)], "only the failed member");
    let open = world.store.open_groups().await?;
    let second = open.iter().find(|g| g.key != group.key).context("the second window's group")?.clone();
    assert_eq!(second.key.seq, group.key.seq + 1);
    let spec2 = world.spec(&second.key, Attempt::FIRST)?;
    let members2 = spec_members(&spec2)?;
    let tables: BTreeMap<&str, &str> = members2
        .values()
        .map(|m| (m["job_id"].as_str().unwrap_or_default(), m["source"]["table"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(tables, BTreeMap::from([("orders", "orders_v2"), ("payments", "payments"), ("refunds", "refunds")]));
    assert!(members2.values().all(|m| m["window"] == json!({"lo": w1.secs(), "hi": w2.secs()})), "{spec2}");
    for job in ["orders", "payments"] {
        assert!(members2[&key(job, w1)]["accepted_schema"].is_array(), "the accepted schema goes along: {spec2}");
    }
    assert!(members2[&key("refunds", w1)]["accepted_schema"].is_null(), "none accepted for refunds yet: {spec2}");
    world
        .tick_until("the retried member and the second group committed", || async {
            Ok(world.watermarks().await?.values().all(|w| *w == w2))
        })
        .await?;
    assert!(world.store.open_groups().await?.is_empty(), "committed groups leave the open index");
    let done = world.group(&group.key).await?;
    assert!(done.committed, "{done:?}");
    assert_eq!(published_by(&done)[&key("refunds", w0)], Some(Attempt(2)));
    let second_done = world.group(&second.key).await?;
    assert!(second_done.committed, "{second_done:?}");
    assert!(published_by(&second_done).values().all(|a| *a == Some(Attempt::FIRST)), "{second_done:?}");
    let mut names = vec![group_batch_name(&group), group_batch_name(&after), group_batch_name(&second)];
    names.sort();
    assert_eq!(world.batch_names().await?, names, "one batch per group attempt");
    let results = result_members(&world.raw_result(&group.key, Attempt(2)).await?)?;
    assert_eq!(results.keys().cloned().collect::<Vec<_>>(), [key("refunds", w0)]);
    assert_succeeded_member(&key("refunds", w0), &results[&key("refunds", w0)], Attempt(2), "first");
    let results = result_members(&world.raw_result(&second.key, Attempt::FIRST).await?)?;
    assert_eq!(results.keys().cloned().collect::<BTreeSet<_>>(), members2.keys().cloned().collect());
    for job in ["orders", "payments"] {
        assert_succeeded_member(&key(job, w1), &results[&key(job, w1)], Attempt::FIRST, "unchanged");
    }
    // Both of its windows ran before any schema of `refunds` was accepted.
    assert_succeeded_member(&key("refunds", w1), &results[&key("refunds", w1)], Attempt::FIRST, "first");
    let failed_prefix = first[&key("refunds", w0)]["output_prefix"].as_str().unwrap_or_default();
    let failed_dir = failed_prefix.strip_prefix("file://").context("a file URI")?;
    assert!(!std::path::Path::new(failed_dir).exists(), "the failed attempt wrote nothing: {failed_dir}");
    let ids: Vec<JobId> = JOBS.iter().map(|j| JobId::new(*j)).collect();
    assert_eq!(world.store.get_schemas(&ids).await?.len(), 3, "each job's first schema is accepted");
    assert!(world.shard().await?.jobs.values().all(|l| l.schema_hash.is_some()));

    // Each published member's Parquet: exactly the rows of its window, from the table its
    // definition named then, stamped with the attempt that published it.
    let mut lake: Vec<(Value, &str, Attempt)> = vec![
        (first[&key("orders", w0)].clone(), "orders", Attempt::FIRST),
        (first[&key("payments", w0)].clone(), "payments", Attempt::FIRST),
        (retried[&key("refunds", w0)].clone(), "refunds", Attempt(2)),
    ];
    for (job, table) in tables {
        lake.push((members2[&key(job, w1)].clone(), table, Attempt::FIRST));
    }
    world.assert_lake(&lake)?;
    eprintln!("grouped_extraction: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
