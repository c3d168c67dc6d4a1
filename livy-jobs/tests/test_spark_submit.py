"""The job exactly as Livy runs it: pyspark's bin/spark-submit with the JDBC jar and ``--spec <json>``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyspark
from harness import JDBC_JAR, JOBS_DIR, T0, Aws, Database, Jobs

SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"
SUBMIT_TIMEOUT_SECS = 240


def spark_submit(spec: dict[str, Any], aws: Aws) -> subprocess.CompletedProcess[str]:
    """Runs extract.py through spark-submit like a Livy batch (file + args + jars), capturing all output."""
    env = {
        **os.environ,
        **aws.env,  # the moto endpoint and dummy credentials, as the cluster's environment would give them
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    cmd = [
        str(SPARK_SUBMIT),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        "--jars",
        JDBC_JAR,
        str(JOBS_DIR / "extract.py"),
        "--spec",
        json.dumps(spec),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_SECS, check=False)


def printed_result(stdout: str) -> dict[str, Any]:
    """The result the job printed on stdout (one JSON line)."""
    lines = [line for line in stdout.splitlines() if line.startswith('{"norris_result"')]
    assert len(lines) == 1, stdout
    return json.loads(lines[0])["norris_result"]


def test_spark_submit_success_exits_zero_and_writes_the_result(jobs: Jobs, db: Database, aws: Aws) -> None:
    """Exit 0, result item in DynamoDB equal to what was printed, Parquet readable, no password in any output."""
    db.execute(
        "CREATE TABLE submitted (id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(8) NULL, updated_at DATETIME NOT NULL)"
    )
    db.insert("submitted", ["id", "v", "updated_at"], [(1, "a", T0 + 1), (2, None, T0 + 299), (3, "late", T0 + 300)])
    spec = jobs.spec("submitted", T0, T0 + 300, attempt=4, transform={"mask": ["v"]})

    proc = spark_submit(spec, aws)

    assert proc.returncode == 0, proc.stderr[-4000:]
    stored = aws.stored_result(spec["run_key"], 4)
    assert stored is not None and stored["outcome"] == "succeeded", stored
    assert (stored["rows_read"], stored["rows_written"]) == (2, 2)
    assert printed_result(proc.stdout) == stored
    assert sorted((r["id"], r["updated_at"]) for r in jobs.output(spec)) == [(1, T0 + 1), (2, T0 + 299)]
    assert "norris-local" not in proc.stdout + proc.stderr


def test_spark_submit_failed_run_exits_non_zero_with_a_failed_item(jobs: Jobs, db: Database, aws: Aws) -> None:
    """A data-quality failure: non-zero exit (Livy says dead) and the failed item with its checks."""
    db.execute("CREATE TABLE submitted_bad (id BIGINT NULL, updated_at DATETIME NOT NULL)")
    db.insert("submitted_bad", ["id", "updated_at"], [(1, T0 + 1), (None, T0 + 2)])
    spec = jobs.spec("submitted_bad", T0, T0 + 300)

    proc = spark_submit(spec, aws)

    assert proc.returncode == 1, proc.stderr[-4000:]
    stored = aws.stored_result(spec["run_key"], 1)
    assert stored is not None and stored["outcome"] == "failed"
    assert {c["name"]: c["passed"] for c in stored["checks"]}["primary_key_not_null"] is False
    assert not jobs.output_dir(spec).exists()
    assert "norris-local" not in proc.stdout + proc.stderr
