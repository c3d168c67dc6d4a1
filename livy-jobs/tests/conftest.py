"""Fixtures: real MariaDB (one throw-away database per session), one real SparkSession, and a moto server.

The SparkSession's JVM runs in Asia/Kolkata (+05:30) on purpose: the job must produce the same instants
whatever the JVM's default zone is, and a zone with a half-hour offset makes any leak visible.
The AWS environment pointing at this suite's moto server is set per test (and undone after it), so other
test directories in the same pytest run keep their own environment.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from harness import (
    JDBC_JAR,
    JVM_TIME_ZONE,
    MARIADB,
    RESULTS_TABLE,
    VENV_BIN,
    Aws,
    Database,
    Jobs,
    aws_client,
    aws_env,
    free_port,
    wait_for_port,
)
from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """Starts moto_server on a free 127.0.0.1 port and creates the secrets and the results table."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        sm = aws_client("secretsmanager", endpoint)
        good = sm.create_secret(
            Name="norris/test-source",
            SecretString=json.dumps({"username": MARIADB["user"], "password": MARIADB["password"]}),
        )
        wrong_user, wrong_password = "leaky-user-x", "s3cret-Never-Print-9"
        wrong = sm.create_secret(
            Name="norris/test-wrong", SecretString=json.dumps({"username": wrong_user, "password": wrong_password})
        )
        aws_client("dynamodb", endpoint).create_table(
            TableName=RESULTS_TABLE,
            KeySchema=[
                {"AttributeName": "run_key", "KeyType": "HASH"},
                {"AttributeName": "attempt", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "run_key", "AttributeType": "S"},
                {"AttributeName": "attempt", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Aws(endpoint, aws_env(endpoint), good["ARN"], wrong["ARN"], wrong_user, wrong_password, RESULTS_TABLE)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _aws_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that use moto: the job's boto3 clients find it through the standard environment."""
    if "aws" not in request.fixturenames:
        return
    aws: Aws = request.getfixturevalue("aws")
    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def db() -> Iterator[Database]:
    """Creates norris_t<random> for the session and drops it at the end."""
    name = f"norris_t{secrets.token_hex(4)}"
    conn = pymysql.connect(**MARIADB, autocommit=True, init_command="SET time_zone = '+00:00'")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.select_db(name)
    try:
        yield Database(conn, name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local SparkSession for the in-process tests, JVM in a non-UTC zone, UI off, bound to 127.0.0.1."""
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("norris-livy-jobs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.jars", JDBC_JAR)
        .config("spark.driver.extraJavaOptions", f"-Duser.timezone={JVM_TIME_ZONE}")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    assert session.sparkContext._jvm.java.util.TimeZone.getDefault().getID() == JVM_TIME_ZONE
    yield session
    session.stop()


@pytest.fixture
def jobs(spark: SparkSession, db: Database, aws: Aws, tmp_path: Path) -> Jobs:
    """A per-test harness writing under the test's own temporary lake."""
    return Jobs(spark, db, aws, tmp_path / "lake")
