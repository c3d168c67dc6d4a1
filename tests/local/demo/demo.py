"""`make demo`: norris's main job, locally.

This script plays the world around the control plane — a MariaDB source receiving a steady stream
of inserts and updates, a local cluster (a moto EMR record plus a Livy stand-in running real
spark-submit), and EventBridge's schedule (it runs `norris tick`, one process per tick, as Lambda
would run one invocation). The control plane itself is the Rust `norris` binary. At the end it
compares each source table with the lake's current view and writes target/demo/report.json.

Run it through `make demo` (which starts and stops the local world); it stops what it starts,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pymysql

ROOT = Path(__file__).resolve().parents[3]
NORRIS = ROOT / "target" / "debug" / "norris"
STANDIN = ROOT / "tests" / "local" / "livy_standin" / "livy_standin.py"
OUT = ROOT / "target" / "demo"
TABLES = ("orders", "customers", "payments")
INTERVAL_SECS = 60
DB = {"host": "127.0.0.1", "port": 3306, "user": "norris", "password": "norris-local"}


def log(msg: str) -> None:
    print(f"[demo {dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", flush=True)


def norris(*args: str, prefix: str) -> str:
    """Runs the norris command against this demo's tables and returns its stdout."""
    env = dict(os.environ, NORRIS_TABLE_PREFIX=prefix)
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
            "conf": {"spark.sql.shuffle.partitions": "2"},
            "driver_memory": "512m",
        },
        "retry": {"max_attempts": 4, "backoff_base_secs": 5, "backoff_max_secs": 30},
    }


def start_standin(workdir: Path) -> tuple[subprocess.Popen, str]:
    ready = workdir / "livy.port"
    ready.unlink(missing_ok=True)
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STANDIN),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--log-dir",
            str(workdir / "livy-logs"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "livy-standin.log").open("w"),
    )
    deadline = time.monotonic() + 30
    while not (ready.exists() and ready.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                "the Livy stand-in did not start; see target/demo/livy-standin.log"
            )
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{ready.read_text().strip()}"


def watermarks(prefix: str) -> dict[str, str]:
    """job id -> watermark text, from `norris jobs list`."""
    out = {}
    for line in norris("jobs", "list", prefix=prefix).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            out[parts[0]] = parts[2]
    return out


def published_runs(prefix: str, job_id: str) -> list[dict]:
    lines = norris("runs", "list", job_id, "--json", prefix=prefix).splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def lake_report(
    prefix: str, database: str, watermark_by_job: dict[str, int]
) -> list[dict]:
    """Compares each source table with the lake's current view (latest version per key over the
    published windows). Duplicates count row versions published by more than one window that owns
    them (watermark inside the window; the lookback re-reads are not ownership)."""
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
            runs = [
                r for r in published_runs(prefix, job_id) if r["status"] == "published"
            ]
            committed = [r for r in runs if r["window_hi"] <= watermark_by_job[job_id]]
            paths = [r["published_prefix"] for r in committed]
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT id, label, amount, updated_at FROM {table} WHERE updated_at < FROM_UNIXTIME(%s)",
                    (watermark_by_job[job_id],),
                )
                source = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
            lake: dict[int, tuple] = {}
            duplicates = 0
            if paths:
                df = spark.read.parquet(*paths)
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
    parser.add_argument("--settle-timeout-secs", type=int, default=600)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    prefix = f"demo{stamp}"
    database = f"norris_demo_{stamp}"
    lake = OUT / "lake" / prefix
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
        log(f"tables (prefix {prefix}), source database {database}")
        norris("tables", "create", prefix=prefix)
        setup_source(database)
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"norris/{prefix}/source",
            SecretString=json.dumps(
                {"username": DB["user"], "password": DB["password"]}
            ),
        )["ARN"]

        log(
            "local cluster: an EMR record on moto and a Livy stand-in running real spark-submit"
        )
        emr = boto3.client("emr")
        cluster_id = emr.run_job_flow(
            Name=f"norris-{prefix}-small-g1",
            ReleaseLabel="emr-7.5.0",
            Applications=[{"Name": "Spark"}, {"Name": "Livy"}],
            Instances={
                "InstanceGroups": [
                    {
                        "Name": "primary",
                        "InstanceRole": "MASTER",
                        "Market": "ON_DEMAND",
                        "InstanceType": "m7g.xlarge",
                        "InstanceCount": 1,
                    },
                    {
                        "Name": "core",
                        "InstanceRole": "CORE",
                        "Market": "SPOT",
                        "InstanceType": "m7g.xlarge",
                        "InstanceCount": 1,
                    },
                ],
                "KeepJobFlowAliveWhenNoSteps": True,
            },
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole",
            Tags=[
                {"Key": "norris:deployment", "Value": prefix},
                {"Key": "norris:pool", "Value": "small"},
            ],
        )["JobFlowId"]
        cleanup.append(lambda: emr.terminate_job_flows(JobFlowIds=[cluster_id]))
        standin, endpoint = start_standin(OUT)
        cleanup.append(lambda: (standin.terminate(), standin.wait(timeout=30)))
        norris(
            "clusters",
            "register",
            "--key",
            "local-small-g1",
            "--size-class",
            "small",
            "--livy",
            endpoint,
            "--emr-cluster-id",
            cluster_id,
            prefix=prefix,
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

        writers = Writers(database)
        writers.start()
        cleanup.append(lambda: writers.stop_event.set())
        write_until = time.monotonic() + args.write_secs
        log(
            f"writers running for {args.write_secs} s; ticking every {args.tick_secs} s"
        )
        stop_at = None
        target = None
        settle_deadline = None
        while True:
            report = json.loads(norris("tick", prefix=prefix))
            marks = watermarks(prefix)
            log(
                f"tick: cut {report['windows_cut']}, submitted {report['runs_submitted']}, published "
                f"{report['runs_published']}, committed {report['windows_committed']}, retried {report['runs_retried']}"
                f" | watermarks "
                + ", ".join(
                    f"{k.split('.')[1]} {v[11:19]}"
                    for k, v in sorted(marks.items())
                    if v != "-"
                )
            )
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
                if len(wm) == len(TABLES) and all(v >= target for v in wm.values()):
                    break
                if time.monotonic() > settle_deadline:
                    raise RuntimeError("the last windows did not commit in time")
            time.sleep(args.tick_secs)

        log("comparing each source table with the lake's current view")
        tables = lake_report(prefix, database, {f"demo.{t}": target for t in TABLES})
        invalid = [
            line
            for line in norris("jobs", "list", prefix=prefix).splitlines()
            if "invalid" in line
        ]
        result = {
            "prefix": prefix,
            "interval_secs": INTERVAL_SECS,
            "committed_until": target,
            "tables": tables,
            "invalid_jobs": invalid,
        }
        (OUT / "report.json").write_text(json.dumps(result, indent=2))
        print()
        print(
            f"{'table':<12} {'windows':>8} {'rows source':>12} {'rows lake':>10} {'missing':>8} {'duplicates':>10} {'mismatched':>10}"
        )
        for t in tables:
            print(
                f"{t['table']:<12} {t['windows_committed']:>8} {t['rows_source']:>12} {t['rows_lake']:>10} "
                f"{t['missing']:>8} {t['duplicates']:>10} {t['mismatched']:>10}"
            )
        for line in invalid:
            print(
                f"reported invalid: {line.split(None, 4)[0]}: {line.split(None, 4)[-1]}"
            )
        print(f"\nreport written to {OUT / 'report.json'}")
        bad = [t for t in tables if t["missing"] or t["duplicates"] or t["mismatched"]]
        return 1 if bad else 0
    except KeyboardInterrupt:
        log("interrupted; stopping what the demo started")
        return 130
    finally:
        stop_everything()


if __name__ == "__main__":
    sys.exit(main())
