"""`make demo`: norris's main job, locally.

This script plays the world around the control plane — a MariaDB source receiving a steady stream
of inserts and updates; local clusters (moto EMR records that the cluster supervisor gives a Livy
stand-in each, running real spark-submit, and takes it away with its Spark applications when the
cluster is terminated); EventBridge's schedules (it runs `norris watch` and `norris tick` every
demo tick and `norris rotate` every few ticks, one process per invocation, as Lambda would run one
invocation per event); and fate: one spot loss (a cluster terminated while a group of windows runs
on it) and one EC2 rebalance recommendation for a primary node, which rotates that cluster.

The control plane itself is the Rust `norris` binary, on the grouped ledger the Lambdas keep: the
three jobs share a cohort (size class, interval, phase), so each tick cuts their due windows into
one group, run as one Livy batch per group attempt (`norris-group-<size>-<interval>-<phase>-
<shard>-<seq>-a<attempt>`), whose spec the tick writes under target/demo/specs (`NORRIS_SPEC_URI`)
for the stand-in's spark-submit to read. norris launches the pool's clusters, notices the loss,
replaces the cluster once, moves the groups that were on it (a new attempt, placed again on the
replacement), rotates make-before-break. The demo measures the recovery from `norris groups list
--json` and the Livy batches by name. At the end it terminates every cluster the demo launched,
compares each source table with the lake's current view (the committed windows' published
prefixes, from `norris windows list --json`) and writes target/demo/report.json.

Run it through `make demo` (which starts and stops the local world); it stops what it starts,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import pymysql

ROOT = Path(__file__).resolve().parents[3]
NORRIS = ROOT / "target" / "debug" / "norris"
REBALANCE = ROOT / "target" / "debug" / "rebalance-recommendation"
SUPERVISOR = ROOT / "tests" / "local" / "cluster_supervisor" / "cluster_supervisor.py"
OUT = ROOT / "target" / "demo"
TABLES = ("orders", "customers", "payments")
INTERVAL_SECS = 60
DB = {"host": "127.0.0.1", "port": 3306, "user": "norris", "password": "norris-local"}
# What a deployment's stack gives the lifecycle Lambdas; moto checks only the shapes.
LIFECYCLE_ENV = {
    "NORRIS_EMR_SERVICE_ROLE": "norris-demo-emr-service",
    "NORRIS_EMR_INSTANCE_PROFILE": "norris-demo-emr-nodes",
    "NORRIS_EMR_SUBNET_IDS": "subnet-0demo1,subnet-0demo2",
    "NORRIS_EMR_PRIMARY_SECURITY_GROUP": "sg-0demoprimary",
    "NORRIS_EMR_CORE_SECURITY_GROUP": "sg-0democore",
    "NORRIS_EMR_LOG_URI": "s3://norris-demo-logs/emr/",
    # Groups on a draining cluster get this long to finish before they are moved.
    "NORRIS_DRAIN_SECS": "180",
    # A drained or lost cluster is terminated this long after (at least the longest time a pass
    # that places groups can take: seconds here, a Lambda timeout in AWS).
    "NORRIS_TERMINATE_SETTLE_SECS": "10",
}
POOL = {
    "size_class": "small",
    "emr_release": "emr-7.5.0",
    "primary": {
        "instance_types": [{"instance_type": "m7g.xlarge"}],
        "on_demand_capacity": 1,
    },
    "core": {
        "instance_types": [{"instance_type": "m7g.xlarge"}],
        "on_demand_capacity": 1,
    },
    "task": {
        "instance_types": [
            {"instance_type": "m7g.2xlarge", "weighted_capacity": 2},
            {"instance_type": "m6g.2xlarge", "weighted_capacity": 2},
        ],
        "spot_capacity": 4,
        "spot": {
            "allocation_strategy": "price-capacity-optimized",
            "timeout_minutes": 10,
        },
    },
    "min_clusters": 1,
    "max_clusters": 3,
    "max_concurrent_batches": 8,
}
LIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
# A group attempt's Livy batch: `norris-group-<group key, '/' as '-'>-a<attempt>`
# (`group_batch_name` in crates/engine/src/groups.rs).
GROUP_BATCH_NAME = re.compile(r"^norris-group-(.+)-a(\d+)$")
# Short-lived Spark drivers on two cores start faster with the quick JIT and one GC thread.
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def log(msg: str) -> None:
    print(f"[demo {dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", flush=True)


def spec_dir(prefix: str) -> Path:
    """Where this demo's ticks and lifecycle passes write group specs (absolute: the Livy
    stand-in's spark-submit reads them from another working directory)."""
    return OUT / "specs" / prefix


def norris(*args: str, prefix: str) -> str:
    """Runs the norris command against this demo's tables and returns its stdout. Every
    invocation may place groups (tick; watch and rotate place moved ones), so every one gets
    the spec location."""
    env = dict(
        os.environ,
        NORRIS_TABLE_PREFIX=prefix,
        NORRIS_DEPLOYMENT=prefix,
        NORRIS_SPEC_URI=f"file://{spec_dir(prefix)}",
    )
    env.update(LIFECYCLE_ENV)
    out = subprocess.run(
        [str(NORRIS), *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"norris {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


class Writers(threading.Thread):
    """Inserts and updates rows in every source table until stopped; `updated_at` is the
    database's own UTC clock, as an application's would be."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.stop_event = threading.Event()
        self.writes = 0
        self.error: Exception | None = None

    def run(self) -> None:
        rng = random.Random(7)
        try:
            conn = pymysql.connect(**DB, database=self.database, autocommit=True)
            next_id = {t: 1000 for t in TABLES}
            while not self.stop_event.wait(0.15):
                table = rng.choice(TABLES)
                with conn.cursor() as cur:
                    if rng.random() < 0.6:
                        next_id[table] += 1
                        cur.execute(
                            f"INSERT INTO {table} (id, label, amount, updated_at) VALUES (%s, %s, %s, UTC_TIMESTAMP(3))",
                            (
                                next_id[table],
                                f"{table}-{next_id[table]}",
                                rng.randint(1, 10_000),
                            ),
                        )
                    else:
                        cur.execute(
                            f"UPDATE {table} SET amount = %s, label = CONCAT(label, '+'), updated_at = UTC_TIMESTAMP(3) "
                            "WHERE id = %s",
                            (rng.randint(1, 10_000), rng.randint(1, next_id[table])),
                        )
                self.writes += 1
            conn.close()
        except Exception as e:  # noqa: BLE001 - any writer failure is reported by the main thread
            self.error = e


def setup_source(database: str) -> None:
    conn = pymysql.connect(**DB, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute(f"USE {database}")
        for table in TABLES:
            cur.execute(
                f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, label VARCHAR(200) NOT NULL, amount INT NOT NULL, "
                "updated_at DATETIME(3) NOT NULL, KEY (updated_at))"
            )
            rows = [
                (
                    i,
                    f"{table}-{i}",
                    i * 3,
                )
                for i in range(1, 1001)
            ]
            cur.executemany(
                f"INSERT INTO {table} (id, label, amount, updated_at) VALUES (%s, %s, %s, UTC_TIMESTAMP(3))",
                rows,
            )
    conn.close()


def job_definition(
    job_id: str, table: str, database: str, secret_arn: str, start_at: int, lake: Path
) -> dict:
    return {
        "job_id": job_id,
        "kind": "batch_extraction",
        "enabled": True,
        "size_class": "small",
        "interval_secs": INTERVAL_SECS,
        "lag_secs": 5,
        "lookback_secs": 30,
        "start_at": dt.datetime.fromtimestamp(start_at, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "max_windows_in_flight": 4,
        "source": {
            "jdbc_url": f"jdbc:mysql://127.0.0.1:3306/{database}",
            "secret_arn": secret_arn,
            "table": table,
            "watermark_column": "updated_at",
            "primary_key": ["id"],
        },
        "lake_uri": f"file://{lake / table}",
        "livy": {
            "file": f"local:{ROOT / 'livy-jobs' / 'extract.py'}",
            "jars": ["/usr/share/java/mariadb-java-client.jar"],
            "conf": {
                "spark.sql.shuffle.partitions": "2",
                "spark.driver.extraJavaOptions": FAST_JVM,
            },
            "driver_memory": "512m",
        },
        "retry": {"max_attempts": 4, "backoff_base_secs": 5, "backoff_max_secs": 30},
    }


def start_supervisor(prefix: str, workdir: Path) -> tuple[subprocess.Popen, Path]:
    """The local clusters of this demo's deployment: a Livy stand-in per live moto EMR cluster
    norris launches, gone with its Spark applications when the cluster is terminated."""
    ready = workdir / "supervisor.ready"
    state = workdir / "supervisor.json"
    ready.unlink(missing_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SUPERVISOR),
            "--deployment",
            prefix,
            "--log-dir",
            str(workdir),
            "--state-file",
            str(state),
            "--ready-file",
            str(ready),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "cluster-supervisor.log").open("w"),
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the cluster supervisor did not start; see {workdir / 'cluster-supervisor.log'}"
            )
        time.sleep(0.1)
    return proc, state


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def standins(state_file: Path) -> dict[str, dict]:
    """EMR id -> the supervisor's view of its stand-in."""
    try:
        return json.loads(state_file.read_text())["clusters"]
    except (OSError, ValueError):
        return {}


def cluster_records(prefix: str) -> list[dict]:
    """norris's cluster records (`norris clusters list`): key, state, EMR id, Livy endpoint."""
    records = []
    for line in norris("clusters", "list", prefix=prefix).splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        record = {"key": parts[0], "state": parts[2], "emr_id": "", "endpoint": ""}
        for extra in parts[3:]:
            if extra.startswith("j-"):
                record["emr_id"] = extra
            elif extra.startswith("http"):
                record["endpoint"] = extra
        records.append(record)
    return records


def group_batch_name(group: str, attempt: int) -> str:
    """The Livy batch name of a group attempt (`group_batch_name` in crates/engine/src/groups.rs)."""
    return f"norris-group-{group.replace('/', '-')}-a{attempt}"


def group_batches(endpoint: str) -> dict[str, str]:
    """Batch name -> Livy state of the group batches Livy holds at `endpoint`."""
    try:
        with urllib.request.urlopen(f"{endpoint}/batches?size=1000", timeout=10) as r:
            sessions = json.load(r)["sessions"]
    except OSError:
        return {}
    return {
        b["name"]: b["state"]
        for b in sessions
        if GROUP_BATCH_NAME.match(b.get("name") or "")
    }


def spark_running(endpoint: str) -> bool:
    """Whether a group's Spark application runs at `endpoint` (its driver started)."""
    return "running" in group_batches(endpoint).values()


def open_groups(prefix: str) -> dict[str, dict]:
    """Group key -> the open (uncommitted) group, from `norris groups list --json`: attempt,
    status, cluster, batch_name, members, to_do, published, failed, jobs."""
    lines = norris("groups", "list", "--json", prefix=prefix).splitlines()
    return {g["group"]: g for g in (json.loads(line) for line in lines if line.strip())}


def deployment_clusters(emr, prefix: str, states: list[str] | None = None) -> list[str]:
    """EMR ids of the clusters tagged with this demo's deployment (in `states`, or any)."""
    ids = []
    kwargs = {"ClusterStates": states} if states else {}
    for page in emr.get_paginator("list_clusters").paginate(**kwargs):
        for summary in page["Clusters"]:
            if not summary["Name"].startswith(f"{prefix}-"):
                continue
            tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get(
                "Tags", []
            )
            if {"Key": "norris:deployment", "Value": prefix} in tags:
                ids.append(summary["Id"])
    return ids


def log_lifecycle(handler: str, report: dict) -> None:
    """One line for what a lifecycle pass changed, if anything."""
    events = [
        f"{what} {', '.join(map(str, report[what]))}"
        for what in ("launched", "became_ready", "drained", "terminated")
        if report[what]
    ]
    events += [f"lost {key} ({why})" for key, why in report["lost"]]
    if report["groups_moved"]:
        events.append(f"moved {report['groups_moved']} group(s) off")
    if report["groups_placed_again"]:
        events.append(f"placed {report['groups_placed_again']} moved group(s) again")
    if report["runs_moved"]:
        events.append(f"moved {report['runs_moved']} run(s) of the per-window ledger")
    if report["failures"]:
        events.append(f"failures (retried next pass): {report['failures']}")
    if events:
        log(f"{handler}: " + "; ".join(events))


class Fate:
    """What the demo does to the clusters, and what it measures of norris's answers: one spot
    loss (the recovery time: loss to every group that was on the lost cluster running again, a
    new attempt of it placed on another cluster as `norris groups list --json` shows, whose batch
    Livy runs there under the attempt's name) and one rotation."""

    def __init__(self, prefix: str, started: float, emr) -> None:
        self.prefix = prefix
        self.started = started
        self.emr = emr
        self.loss: dict | None = None
        self.rotation: dict | None = None

    def at(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def step(self, records: list[dict]) -> None:
        ready = [r for r in records if r["state"] == "ready" and r["endpoint"]]
        now = time.monotonic()
        if self.loss is None and now - self.started >= 40:
            for record in ready:
                batches = group_batches(record["endpoint"])
                if "running" in batches.values() and self._lose(record, batches):
                    return
        if self.loss is not None and "recovered_at" not in self.loss:
            self._check_recovery(records)
        if (
            self.rotation is None
            and self.loss is not None
            and "recovered_at" in self.loss
            and now - self.loss["recovered_at"] >= 20
        ):
            for record in ready:
                if spark_running(record["endpoint"]):
                    self._rebalance(record)
                    return
        if self.rotation is not None and "terminated_at" not in self.rotation:
            old = next(r for r in records if r["key"] == self.rotation["cluster"])
            if old["state"] == "draining" and "draining_at" not in self.rotation:
                self.rotation["draining_at"] = self.at()
                log(f"rotation: {old['key']} drains (its replacement is ready)")
            groups = open_groups(self.prefix)
            for g in self.rotation["groups"]:
                now_g = groups.get(g["group"])
                if now_g is not None and now_g["attempt"] > g["attempt"]:
                    g["moved_to"] = [now_g["cluster"], now_g["attempt"]]
            if old["state"] == "terminated":
                self.rotation["terminated_at"] = self.at()
                ended = ", ".join(
                    f"{g['group']} a{g['attempt']} "
                    + (
                        f"moved (attempt {g['moved_to'][1]} on {g['moved_to'][0]})"
                        if "moved_to" in g
                        else "finished there"
                    )
                    for g in self.rotation["groups"]
                )
                log(
                    f"rotation: {old['key']} terminated once nothing of norris's ran on it"
                    + (f" ({ended})" if ended else "")
                )

    def _lose(self, record: dict, batches: dict[str, str]) -> bool:
        """Terminates the cluster under the groups the ledger has on it (with windows still to
        do); False, and nothing done, when it has none (a batch the ledger no longer follows)."""
        on_it = [
            {
                "group": g["group"],
                "attempt": g["attempt"],
                "windows": g["to_do"],
                "livy_state": batches.get(
                    group_batch_name(g["group"], g["attempt"]), "not in Livy yet"
                ),
            }
            for g in open_groups(self.prefix).values()
            if g["cluster"] == record["key"] and g["to_do"] > 0
        ]
        if not on_it:
            return False
        self.emr.terminate_job_flows(JobFlowIds=[record["emr_id"]])
        self.loss = {
            "cluster": record["key"],
            "emr_id": record["emr_id"],
            "groups": on_it,
            "lost_at": time.monotonic(),
            "at": self.at(),
        }
        log(
            f"SPOT LOSS: EMR cluster {record['emr_id']} ({record['key']}) terminated with "
            f"{len(on_it)} group(s) on it: "
            + ", ".join(
                f"{g['group']} a{g['attempt']} ({g['windows']} window(s), Livy: {g['livy_state']})"
                for g in on_it
            )
        )
        return True

    def _check_recovery(self, records: list[dict]) -> None:
        """Whether each group that was on the lost cluster runs again: a later attempt placed on
        another cluster, whose batch that cluster's Livy runs (or ran) by name. A group whose
        attempt wrote its result before the loss has nothing left to run and needs no recovery."""
        assert self.loss is not None
        endpoints = {r["key"]: r["endpoint"] for r in records if r["endpoint"]}
        groups = open_groups(self.prefix)
        since = round(time.monotonic() - self.loss["lost_at"], 1)
        for lost in self.loss["groups"]:
            if "running_again_secs" in lost or "settled" in lost:
                continue
            group = groups.get(lost["group"])
            if group is None or group["to_do"] == 0:
                if "placed_again" in lost:
                    # Its new attempt ran and ended between two looks.
                    lost["running_again_secs"] = since
                    log(
                        f"{lost['group']}: its attempt {lost['placed_again'][1]} ran and ended"
                    )
                else:
                    lost["settled"] = True
                    log(
                        f"{lost['group']}: settled by its attempt's result, nothing to run again"
                    )
                continue
            cluster = group["cluster"]
            if (
                group["attempt"] <= lost["attempt"]
                or not cluster
                or cluster == self.loss["cluster"]
            ):
                continue
            if lost.get("placed_again") != [cluster, group["attempt"]]:
                lost["placed_again"] = [cluster, group["attempt"]]
                log(
                    f"{lost['group']} placed again as attempt {group['attempt']} on {cluster}, "
                    f"{since} s after the loss"
                )
            name = group_batch_name(group["group"], group["attempt"])
            state = group_batches(endpoints.get(cluster, "")).get(name)
            if state in ("running", "success"):
                lost["running_again_secs"] = since
                log(f"{lost['group']}: Livy batch {name} on {cluster} is {state}")
        if all(
            "running_again_secs" in g or "settled" in g for g in self.loss["groups"]
        ):
            self.loss["recovered_at"] = time.monotonic()
            self.loss["recovery_secs"] = max(
                (
                    g["running_again_secs"]
                    for g in self.loss["groups"]
                    if "running_again_secs" in g
                ),
                default=0.0,
            )
            log(
                f"recovered: the groups of {self.loss['cluster']} run again "
                f"{self.loss['recovery_secs']} s after the loss"
            )

    def _rebalance(self, record: dict) -> None:
        env = dict(os.environ, NORRIS_TABLE_PREFIX=self.prefix)
        out = subprocess.run(
            [str(REBALANCE), record["key"]],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"rebalance recommendation failed: {out.stderr.strip()}")
        on_it = [
            {"group": g["group"], "attempt": g["attempt"], "windows": g["to_do"]}
            for g in open_groups(self.prefix).values()
            if g["cluster"] == record["key"] and g["to_do"] > 0
        ]
        self.rotation = {"cluster": record["key"], "at": self.at(), "groups": on_it}
        log(
            f"REBALANCE RECOMMENDATION for the primary node of {record['key']}: "
            "it is due for rotation now (make-before-break); on it: "
            + (", ".join(f"{g['group']} a{g['attempt']}" for g in on_it) or "no group")
        )

    def done(self) -> bool:
        return (
            self.loss is not None
            and "recovered_at" in self.loss
            and self.rotation is not None
            and "terminated_at" in self.rotation
        )


def jobs_list(prefix: str) -> dict[str, dict]:
    """job id -> its line of `norris jobs list`: status, watermark, next due, shard, problems."""
    out = {}
    for line in norris("jobs", "list", prefix=prefix).splitlines()[1:]:
        parts = line.split(None, 5)
        if len(parts) >= 5:
            out[parts[0]] = {
                "status": parts[1],
                "watermark": parts[2],
                "next_due": parts[3],
                "shard": parts[4],
                "problems": parts[5] if len(parts) > 5 else "",
            }
    return out


def watermarks(prefix: str) -> dict[str, str]:
    """job id -> watermark text, from `norris jobs list`."""
    return {job: line["watermark"] for job, line in jobs_list(prefix).items()}


def job_windows(prefix: str, job_id: str) -> list[dict]:
    """The job's windows in its shard's groups, from `norris windows list JOB --json`: window,
    group, attempt, status, committed, published_prefix, rows."""
    lines = norris("windows", "list", job_id, "--json", prefix=prefix).splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def lake_report(
    prefix: str, database: str, watermark_by_job: dict[str, int]
) -> list[dict]:
    """Compares each source table with the lake's current view (latest version per key over the
    committed windows' published prefixes, as `norris windows list --json` gives them).
    Duplicates count row versions published by more than one window that owns them (watermark
    inside the window; the lookback re-reads are not ownership). The rows the ledger records for
    the published windows must also be the rows read back from their prefixes."""
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("norris-demo-report")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    conn = pymysql.connect(**DB, database=database)
    report = []
    try:
        for table in TABLES:
            job_id = f"demo.{table}"
            windows = job_windows(prefix, job_id)
            committed = [
                w
                for w in windows
                if w["status"] == "published"
                and w["committed"]
                and w["window_hi"] <= watermark_by_job[job_id]
            ]
            not_published = [
                w
                for w in windows
                if w["window_hi"] <= watermark_by_job[job_id]
                and w["status"] != "published"
            ]
            paths = [w["published_prefix"] for w in committed]
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT id, label, amount, updated_at FROM {table} WHERE updated_at < FROM_UNIXTIME(%s)",
                    (watermark_by_job[job_id],),
                )
                source = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
            lake: dict[int, tuple] = {}
            duplicates = 0
            rows_read_back = 0
            if paths:
                df = spark.read.parquet(*paths)
                rows_read_back = df.count()
                owned = df.where(
                    (F.unix_timestamp("updated_at") >= F.col("_norris_window_lo"))
                    & (
                        F.unix_timestamp("updated_at")
                        < F.col("_norris_window_lo") + INTERVAL_SECS
                    )
                )
                duplicates = (
                    owned.groupBy("id", "updated_at").count().where("count > 1").count()
                )
                latest = Window.partitionBy("id").orderBy(
                    F.col("updated_at").desc(), F.col("_norris_window_lo").desc()
                )
                view = df.withColumn("_rank", F.row_number().over(latest)).where(
                    "_rank = 1"
                )
                lake = {
                    r["id"]: (r["label"], r["amount"])
                    for r in view.select("id", "label", "amount").collect()
                }
            missing = sum(1 for k in source if k not in lake)
            mismatched = sum(1 for k, v in source.items() if k in lake and lake[k] != v)
            report.append(
                {
                    "table": table,
                    "windows_committed": len(committed),
                    "windows_not_published": len(not_published),
                    "groups": len({w["group"] for w in committed}),
                    "rows_published": sum(w["rows"] for w in committed),
                    "rows_read_back": rows_read_back,
                    "rows_source": len(source),
                    "rows_lake": len(lake),
                    "missing": missing,
                    "duplicates": duplicates,
                    "mismatched": mismatched,
                }
            )
    finally:
        conn.close()
        spark.stop()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-secs", type=int, default=150, help="how long the writers run"
    )
    parser.add_argument(
        "--tick-secs", type=float, default=5.0, help="the compressed scheduler interval"
    )
    parser.add_argument(
        "--rotate-every", type=int, default=3, help="`norris rotate` every N ticks"
    )
    parser.add_argument(
        "--min-clusters",
        type=int,
        default=1,
        help="the pool's min_clusters (2: a warm peer takes a lost cluster's groups at once)",
    )
    parser.add_argument("--settle-timeout-secs", type=int, default=600)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    prefix = f"demo{stamp}"
    database = f"norris_demo_{stamp}"
    lake = OUT / "lake" / prefix
    cluster_dir = OUT / "clusters" / prefix
    cluster_dir.mkdir(parents=True, exist_ok=True)
    cleanup: list = []

    def stop_everything() -> None:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                log(f"cleanup step failed: {e}")
        cleanup.clear()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        # The demo's rotation plays a rebalance recommendation through this helper (see
        # tests/src/bin/rebalance_recommendation.rs); `make demo` builds only the norris binary.
        subprocess.run(
            ["cargo", "build", "-q", "--locked", "-p", "norris-e2e", "--bin"]
            + ["rebalance-recommendation"],
            cwd=ROOT,
            check=True,
        )
        log(f"tables (prefix {prefix}), source database {database}")
        norris("tables", "create", prefix=prefix)
        setup_source(database)
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"norris/{prefix}/source",
            SecretString=json.dumps(
                {"username": DB["user"], "password": DB["password"]}
            ),
        )["ARN"]

        emr = boto3.client("emr")
        supervisor, supervisor_state = start_supervisor(prefix, cluster_dir)
        cleanup.append(lambda: stop_process(supervisor))
        # If the demo fails, whatever it launched is terminated (the supervisor then stops the
        # stand-ins), before the supervisor itself stops.
        cleanup.append(
            lambda: [
                emr.terminate_job_flows(JobFlowIds=[c])
                for c in deployment_clusters(emr, prefix, LIVE_STATES)
            ]
        )
        pool_file = OUT / "pool-small.json"
        pool_file.write_text(json.dumps(POOL | {"min_clusters": args.min_clusters}))
        norris("pools", "put", str(pool_file), prefix=prefix)
        log(
            f"pool small: min {args.min_clusters}, max 3 clusters, launched by norris on moto's EMR; each gets "
            "a Livy stand-in running real spark-submit from the cluster supervisor"
        )

        start_at = stamp // INTERVAL_SECS * INTERVAL_SECS
        job_dir = OUT / "jobs"
        job_dir.mkdir(exist_ok=True)
        files = []
        for table in TABLES:
            f = job_dir / f"{table}.json"
            f.write_text(
                json.dumps(
                    job_definition(
                        f"demo.{table}", table, database, secret_arn, start_at, lake
                    ),
                    indent=2,
                )
            )
            files.append(str(f))
        broken = job_definition(
            "demo.refunds", "refunds", database, secret_arn, start_at, lake
        )
        broken["interval_secs"] = "1 minute"
        (job_dir / "refunds.json").write_text(json.dumps(broken, indent=2))
        norris("jobs", "put", *files, prefix=prefix)
        norris("jobs", "put", "--force", str(job_dir / "refunds.json"), prefix=prefix)
        log(
            "jobs defined: demo.orders, demo.customers, demo.payments, and demo.refunds (broken on purpose)"
        )
        # `jobs put` runs the definition sweep at once: each valid job is in its cohort's shard.
        for job, line in sorted(jobs_list(prefix).items()):
            log(
                f"  {job}: {line['status']}, shard {line['shard']}"
                + (f": {line['problems']}" if line["problems"] else "")
            )

        writers = Writers(database)
        writers.start()
        cleanup.append(lambda: writers.stop_event.set())
        started = time.monotonic()
        fate = Fate(prefix, started, emr)
        write_until = started + args.write_secs
        log(
            f"writers running for {args.write_secs} s; every {args.tick_secs} s: norris watch, "
            f"norris tick; norris rotate every {args.rotate_every} ticks"
        )
        stop_at = None
        target = None
        settle_deadline = None
        ticks = 0
        shown_clusters = ""
        while True:
            ticks += 1
            # The cluster health watcher's sweep, the scheduler, and (every few ticks) the
            # rotation handler, in this order; each line is logged as its invocation ends.
            log_lifecycle("watch", json.loads(norris("watch", prefix=prefix)))
            # The grouped tick's report counts windows (cut, published, committed, failed) and
            # group attempts (submitted, retried).
            report = json.loads(norris("tick", prefix=prefix))
            marks = watermarks(prefix)
            log(
                f"tick: windows cut {report['windows_cut']}, group attempts submitted "
                f"{report['runs_submitted']}, windows published {report['runs_published']}, "
                f"committed {report['windows_committed']}, attempts retried {report['runs_retried']}"
                f" | watermarks "
                + ", ".join(
                    f"{k.split('.')[1]} {v[11:19]}"
                    for k, v in sorted(marks.items())
                    if v != "-"
                )
            )
            if report["failures"]:
                log(f"tick failures (retried next tick): {report['failures']}")
            if ticks % args.rotate_every == 0:
                log_lifecycle("rotate", json.loads(norris("rotate", prefix=prefix)))
            records = cluster_records(prefix)
            summary = ", ".join(
                f"{r['key']} {r['state']}"
                for r in records
                if r["state"] != "terminated"
            )
            if summary != shown_clusters:
                log(f"clusters: {summary}")
                shown_clusters = summary
            fate.step(records)
            if writers.error:
                raise RuntimeError(f"writer failed: {writers.error}")
            if stop_at is None and time.monotonic() >= write_until:
                writers.stop_event.set()
                writers.join()
                stop_at = int(time.time()) + 1
                target = (stop_at // INTERVAL_SECS + 1) * INTERVAL_SECS
                settle_deadline = time.monotonic() + args.settle_timeout_secs
                log(
                    f"writers stopped after {writers.writes} writes; waiting for every window up to "
                    f"{dt.datetime.fromtimestamp(target, dt.UTC):%H:%M:%S} to commit"
                )
            if target is not None:
                wm = {
                    k: dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
                    .replace(tzinfo=dt.UTC)
                    .timestamp()
                    for k, v in marks.items()
                    if k != "demo.refunds" and v != "-"
                }
                committed = len(wm) == len(TABLES) and all(
                    v >= target for v in wm.values()
                )
                if committed and fate.done():
                    break
                if time.monotonic() > settle_deadline:
                    raise RuntimeError(
                        "the last windows did not commit (or the loss and the rotation did "
                        "not complete) in time"
                    )
            time.sleep(args.tick_secs)

        log("terminating every cluster the demo launched")
        launched = deployment_clusters(emr, prefix)
        for cluster_id in deployment_clusters(emr, prefix, LIVE_STATES):
            emr.terminate_job_flows(JobFlowIds=[cluster_id])
        deadline = time.monotonic() + 60
        while any(s["state"] != "stopped" for s in standins(supervisor_state).values()):
            if time.monotonic() > deadline:
                raise RuntimeError("the local clusters' stand-ins did not stop")
            time.sleep(0.2)
        left_running = len(deployment_clusters(emr, prefix, LIVE_STATES)) + sum(
            1 for s in standins(supervisor_state).values() if s["state"] != "stopped"
        )
        assert fate.loss is not None and fate.rotation is not None
        clusters = {
            "spot_losses": 1,
            "rotations": 1,
            "recovery_secs": [fate.loss["recovery_secs"]],
            "clusters_launched": len(launched),
            "clusters_left_running": left_running,
            "loss": {
                "cluster": fate.loss["cluster"],
                "at_secs": fate.loss["at"],
                "groups_on_it": fate.loss["groups"],
                "windows_on_it": sum(g["windows"] for g in fate.loss["groups"]),
            },
            "rotation": {
                "cluster": fate.rotation["cluster"],
                "at_secs": fate.rotation["at"],
                "draining_at_secs": fate.rotation.get("draining_at"),
                "terminated_at_secs": fate.rotation.get("terminated_at"),
                "groups_on_it": fate.rotation["groups"],
            },
        }

        log("comparing each source table with the lake's current view")
        tables = lake_report(prefix, database, {f"demo.{t}": target for t in TABLES})
        # The broken job's verdict, as the person editing it sees it: on its item.
        item = (
            boto3.client("dynamodb")
            .get_item(
                TableName=f"{prefix}-jobs",
                Key={"job_id": {"S": "demo.refunds"}},
                ConsistentRead=True,
            )
            .get("Item", {})
        )
        invalid = [
            {
                "job_id": "demo.refunds",
                "norris_status": item.get("norris_status", {}).get("S"),
                "norris_problems": [
                    p.get("S") for p in item.get("norris_problems", {}).get("L", [])
                ],
                "jobs_list": jobs_list(prefix).get("demo.refunds"),
            }
        ]
        result = {
            "prefix": prefix,
            "interval_secs": INTERVAL_SECS,
            "committed_until": target,
            "tables": tables,
            "clusters": clusters,
            "invalid_jobs": invalid,
        }
        (OUT / "report.json").write_text(json.dumps(result, indent=2))
        print()
        print(
            f"{'table':<12} {'windows':>8} {'groups':>7} {'rows published':>15} {'rows read back':>15} "
            f"{'rows source':>12} {'rows lake':>10} {'missing':>8} {'duplicates':>10} {'mismatched':>10}"
        )
        for t in tables:
            print(
                f"{t['table']:<12} {t['windows_committed']:>8} {t['groups']:>7} {t['rows_published']:>15} "
                f"{t['rows_read_back']:>15} {t['rows_source']:>12} {t['rows_lake']:>10} "
                f"{t['missing']:>8} {t['duplicates']:>10} {t['mismatched']:>10}"
            )
        loss = clusters["loss"]
        print(
            f"\nclusters: launched {clusters['clusters_launched']}, spot losses "
            f"{clusters['spot_losses']} ({len(loss['groups_on_it'])} group(s), "
            f"{loss['windows_on_it']} window(s) on the lost cluster, running again after "
            f"{', '.join(f'{s} s' for s in clusters['recovery_secs'])}), rotations "
            f"{clusters['rotations']}, left running {clusters['clusters_left_running']}"
        )
        rotation = clusters["rotation"]
        moved = [g for g in rotation["groups_on_it"] if "moved_to" in g]
        print(
            f"rotation of {rotation['cluster']}: recommendation at {rotation['at_secs']} s, "
            f"draining at {rotation['draining_at_secs']} s (replacement ready), terminated at "
            f"{rotation['terminated_at_secs']} s; of its {len(rotation['groups_on_it'])} group(s), "
            f"{len(rotation['groups_on_it']) - len(moved)} finished there, {len(moved)} moved"
        )
        for job in invalid:
            print(
                f"reported {job['norris_status']}: {job['job_id']}: "
                + "; ".join(p or "" for p in job["norris_problems"])
            )
        print(f"\nreport written to {OUT / 'report.json'}")
        bad = [
            t
            for t in tables
            if t["missing"]
            or t["duplicates"]
            or t["mismatched"]
            or t["windows_not_published"]
            or t["rows_published"] != t["rows_read_back"]
        ]
        unreported = [
            j
            for j in invalid
            if j["norris_status"] != "invalid" or not j["norris_problems"]
        ]
        if unreported:
            print(f"the broken job was not reported invalid: {unreported}")
        return 1 if bad or left_running or unreported else 0
    except KeyboardInterrupt:
        log("interrupted; stopping what the demo started")
        return 130
    finally:
        stop_everything()


if __name__ == "__main__":
    sys.exit(main())
