"""Test harness for the extraction job: constants, the moto/MariaDB/Spark helpers the fixtures hand out."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pymysql
from boto3.dynamodb.types import TypeDeserializer
from pyspark.sql import SparkSession
from pyspark.sql.types import TimestampType

JOBS_DIR = Path(__file__).resolve().parents[1]
if str(JOBS_DIR) not in sys.path:
    sys.path.insert(0, str(JOBS_DIR))

import extract  # noqa: E402  (the job under test, a plain file as Livy submits it)

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "norris", "password": "norris-local"}
JDBC_JAR = "/usr/share/java/mariadb-java-client.jar"
VENV_BIN = Path(sys.executable).parent
JVM_TIME_ZONE = "Asia/Kolkata"
RESULTS_TABLE = "norris-test-results"
# 2026-11-22T00:00:00Z: the windows of every test are cut from here (each test has its own table).
T0 = 1795305600


def free_port() -> int:
    """A port nobody listens on right now (bound to 127.0.0.1 only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Polls until the server accepts connections; fails fast if it exited, and bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on 127.0.0.1:{port} within {timeout}s")


def aws_env(endpoint: str) -> dict[str, str]:
    """The standard AWS environment the job reads (boto3 honours AWS_ENDPOINT_URL)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client bound to the moto server."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@dataclass(frozen=True)
class Aws:
    """The moto world: endpoint, the good secret, a secret with wrong credentials, the results table."""

    endpoint: str
    env: dict[str, str]
    secret_arn: str
    wrong_secret_arn: str
    wrong_username: str
    wrong_password: str
    results_table: str

    def client(self, service: str) -> Any:
        """A boto3 client for the moto server (explicit, so it works outside the per-test environment too)."""
        return aws_client(service, self.endpoint)

    def stored_result(self, run_key: str, attempt: int) -> dict[str, Any] | None:
        """The result item as DynamoDB holds it, in Python types (numbers as int)."""
        got = self.client("dynamodb").get_item(
            TableName=self.results_table, Key={"run_key": {"S": run_key}, "attempt": {"N": str(attempt)}}
        )
        if "Item" not in got:
            return None
        des = TypeDeserializer()
        return {k: _plain(des.deserialize(v)) for k, v in got["Item"].items()}


def _plain(value: Any) -> Any:
    """Decimal -> int and recursively, so stored items compare equal to run()'s dicts."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Database:
    """The session's throw-away MariaDB database (connection in UTC, autocommit)."""

    def __init__(self, conn: pymysql.connections.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def execute(self, sql: str, *args: Any) -> None:
        """Runs one statement (committed at once)."""
        with self.conn.cursor() as cur:
            cur.execute(sql, args or None)

    def insert(
        self, table: str, columns: list[str], rows: list[tuple[Any, ...]], watermark: str = "updated_at"
    ) -> None:
        """Inserts rows; the watermark value is given in Unix seconds and stored via FROM_UNIXTIME (UTC session)."""
        placeholders = ", ".join("FROM_UNIXTIME(%s)" if c == watermark else "%s" for c in columns)
        with self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)

    def jdbc_url(self, params: str = "") -> str:
        """The spec's JDBC URL for this database."""
        return f"jdbc:mysql://{MARIADB['host']}:{MARIADB['port']}/{self.name}{params}"


class Jobs:
    """Builds run specs for a test and runs/reads them."""

    def __init__(self, spark: SparkSession, db: Database, aws: Aws, lake: Path) -> None:
        self.spark, self.db, self.aws, self.lake = spark, db, aws, lake

    def spec(
        self,
        table: str,
        lo: int,
        hi: int,
        *,
        attempt: int = 1,
        lookback: int = 120,
        primary_key: tuple[str, ...] = ("id",),
        watermark: str = "updated_at",
        transform: dict[str, Any] | None = None,
        accepted_schema: list[dict[str, Any]] | None = None,
        jdbc_url: str | None = None,
        secret_arn: str | None = None,
    ) -> dict[str, Any]:
        """A run spec shaped exactly like livy-jobs/README.md's example."""
        return {
            "run_key": f"{self.db.name}.{table}@{lo}",
            "job_id": f"{self.db.name}.{table}",
            "window": {"lo": lo, "hi": hi},
            "attempt": attempt,
            "source": {
                "jdbc_url": jdbc_url or self.db.jdbc_url(),
                "secret_arn": secret_arn or self.aws.secret_arn,
                "table": table,
                "watermark_column": watermark,
                "primary_key": list(primary_key),
                "soft_delete_column": None,
                "lookback_secs": lookback,
            },
            "output_prefix": f"file://{self.lake / table / 'data' / f'window_lo={lo}' / f'attempt={attempt}'}",
            "transform": transform or {},
            "accepted_schema": accepted_schema,
            "results_table": self.aws.results_table,
        }

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Runs the job in process on the shared SparkSession."""
        return extract.run(self.spark, spec)

    def output(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """The written rows, timestamps as Unix seconds (zone-free), sorted for comparison."""
        df = self.spark.read.parquet(spec["output_prefix"])
        cols = [
            df[f.name].cast("bigint").alias(f.name) if isinstance(f.dataType, TimestampType) else df[f.name]
            for f in df.schema.fields
        ]
        rows = [r.asDict() for r in df.select(*cols).collect()]
        return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))

    def output_dir(self, spec: dict[str, Any]) -> Path:
        """The output prefix as a local path."""
        return Path(spec["output_prefix"].removeprefix("file://"))
