"""norris incremental extraction: one window of one MySQL/MariaDB table into Parquet, plus a result item.

Livy submits this file with ``--spec <json>`` (the run spec, see livy-jobs/README.md). The job:

1. fetches the JDBC credentials from Secrets Manager (never logged, never returned);
2. reads the source's column definitions (types from Spark's JDBC mapping, nullability from
   ``information_schema``: Spark's JDBC reader marks every column nullable, so its own answer says
   nothing and the column definition is the only stable source of truth);
3. compares that schema with ``accepted_schema`` (a breaking change quarantines before any data is read);
4. reads exactly the rows with ``lo - lookback_secs <= watermark < hi`` in one JDBC query;
5. de-duplicates by primary key (the greatest watermark wins; ties and null keys are kept so that the
   data-quality checks see them instead of a random pick hiding them);
6. applies the transform in this order: ``select`` (source names) -> ``rename`` -> ``derive`` ->
   ``filter`` -> ``mask``; later steps use the names produced by earlier ones;
7. writes Parquet under ``output_prefix`` (overwrite: exactly that directory is replaced) with
   ``_norris_window_lo`` and ``_norris_attempt``;
8. reads the written files back and runs the data-quality checks on them (row counts reconciled against
   independent counts, key not null, key unique, declared expectations);
9. writes the result item (DynamoDB ``results_table``) and returns it.

Time zones: window bounds are Unix seconds UTC. The JDBC session runs with ``time_zone = '+00:00'``
(Spark's ``sessionInitStatement``, so it wins over anything the URL sets), the bounds are compared as UTC
``'YYYY-MM-DD HH:MM:SS'`` literals (index-friendly, no FROM_UNIXTIME 2038 limit), Connector/J reads
temporal values as UTC (``useLegacyDatetimeCode=false&serverTimezone=UTC``, independent of the JVM's
default zone) and the Spark session time zone is UTC (derived expressions and masks are deterministic).
DATETIME columns are taken to hold UTC wall-clock time; TIMESTAMP columns are exact instants.

Deletes: a watermark read cannot see hard deletes. A ``soft_delete_column`` travels as an ordinary column
(it must survive ``select``), so the lake's latest version of a key carries the deletion; hard deletes need
change-data-capture from the binlog.

Groups: with ``--group-spec`` (or ``--group-spec-uri``) one application runs a group attempt's members, each
as above under the group's attempt, on a thread pool, and writes one compact group result item instead
(``run_group``; livy-jobs/README.md, "Groups").

Importing this module does no work; ``run(spark, spec)`` is the whole job for an existing SparkSession and
``main()`` builds a SparkSession around it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

LOG = logging.getLogger("norris.extract")

JDBC_DRIVER = "org.mariadb.jdbc.Driver"
# Connector/J 2.7: parse temporal values as UTC instead of the JVM's default zone.
JDBC_TIME_OPTIONS = {"useLegacyDatetimeCode": "false", "serverTimezone": "UTC"}
JDBC_SESSION_INIT = "SET time_zone = '+00:00'"
JDBC_FETCH_SIZE = "10000"
RESULT_TTL_SECS = 30 * 24 * 3600
ROWS_PER_FILE = 1_000_000
MESSAGE_MAX_CHARS = 500
WINDOW_LO_COLUMN = "_norris_window_lo"
ATTEMPT_COLUMN = "_norris_attempt"
# At DEBUG these log request and response bodies: the secret's value and the JDBC reader's options.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "py4j")
TRANSFORM_KEYS = frozenset({"select", "rename", "derive", "filter", "mask", "expectations"})
TEMPORAL_TYPES = frozenset({"datetime", "timestamp", "date"})
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})

SUCCEEDED, FAILED, QUARANTINED = "succeeded", "failed", "quarantined"
FIRST, UNCHANGED, EVOLVED, BREAKING = "first", "unchanged", "evolved", "breaking"

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_BAD_SPEC, EXIT_QUARANTINED, EXIT_NO_RESULT = 0, 1, 2, 3, 4
GROUP_MAX_PARALLEL = 64
# A group result's members, with the short attribute names the control plane reads (one item holds a
# member per window of the group, so names are paid once per member).
MEMBER_NAMES = {
    "run_key": "k",
    "attempt": "a",
    "outcome": "o",
    "rows_read": "rr",
    "rows_written": "rw",
    "checks": "c",
    "schema": "s",
    "schema_verdict": "sv",
    "schema_change": "sc",
    "output_prefix": "op",
    "message": "m",
    "finished_at": "t",
}


# ---------------------------------------------------------------------------------------------------------
# Errors


class SpecError(ValueError):
    """The run spec is malformed; the message names the field so the operator can fix the job definition."""


class StepError(RuntimeError):
    """A step of the job failed; carries a one-line, credential-free description for the result item."""


class ResultWriteError(RuntimeError):
    """The result item could not be written: the only failure the control plane cannot read, so exit non-zero."""


# ---------------------------------------------------------------------------------------------------------
# The run spec


@dataclass(frozen=True)
class NamedSql:
    """A named Spark SQL snippet (a derived column or an expectation)."""

    name: str
    sql: str


@dataclass(frozen=True)
class Transform:
    """The declared transform; every part optional, applied in the module docstring's order."""

    select: tuple[str, ...] | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    derive: tuple[NamedSql, ...] = ()
    filter: str | None = None
    mask: tuple[str, ...] = ()
    expectations: tuple[NamedSql, ...] = ()


@dataclass(frozen=True)
class Source:
    """Where and how to read the source table."""

    jdbc_url: str
    secret_arn: str
    table: str
    watermark_column: str
    primary_key: tuple[str, ...]
    soft_delete_column: str | None
    lookback_secs: int


@dataclass(frozen=True)
class Spec:
    """One run spec, validated."""

    run_key: str
    job_id: str
    lo: int
    hi: int
    attempt: int
    source: Source
    output_prefix: str
    transform: Transform
    accepted_schema: list[dict[str, Any]] | None
    results_table: str

    @property
    def read_from(self) -> int:
        """First second read: the window's start minus the lookback for rows committed late."""
        return self.lo - self.source.lookback_secs


@dataclass(frozen=True)
class Identity:
    """The fields needed to write a result item at all, parsed first so a bad spec can still be reported."""

    run_key: str
    attempt: int
    results_table: str
    output_prefix: str


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str, required: bool = True) -> Any:
    """Reads one field with a type check; bools are not integers here (JSON true is not an attempt number)."""
    if key not in obj or obj[key] is None:
        if required:
            raise SpecError(f"{path}{key} is required")
        return None
    value = obj[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise SpecError(f"{path}{key} must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise SpecError(f"{path}{key} must be {_kind_name(kind)}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise SpecError(f"{path}{key} must not be empty")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    """Names the JSON kind expected, for error messages."""
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "a boolean"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _string_list(value: Any, path: str) -> tuple[str, ...]:
    """A non-empty-string list (column names)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{path} must be a list of column names")
    return tuple(value)


def _named_sql_list(value: Any, path: str) -> tuple[NamedSql, ...]:
    """A list of {name, sql} objects."""
    if not isinstance(value, list):
        raise SpecError(f"{path} must be a list of {{name, sql}} objects")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise SpecError(f"{path}[{i}] must be an object with name and sql")
        out.append(NamedSql(_field(item, "name", str, f"{path}[{i}]."), _field(item, "sql", str, f"{path}[{i}].")))
    return tuple(out)


def parse_identity(raw: Any) -> Identity:
    """Parses what a result item needs; without these nothing can be reported, so the job exits non-zero."""
    if not isinstance(raw, dict):
        raise SpecError("the run spec must be a JSON object")
    attempt = _field(raw, "attempt", int, "")
    if attempt < 0:
        raise SpecError("attempt must not be negative")
    return Identity(
        run_key=_field(raw, "run_key", str, ""),
        attempt=attempt,
        results_table=_field(raw, "results_table", str, ""),
        output_prefix=_field(raw, "output_prefix", str, "", required=False) or "",
    )


def parse_transform(raw: Any) -> Transform:
    """Validates the transform; unknown keys are rejected so a typo never silently skips a step."""
    if raw is None:
        return Transform()
    if not isinstance(raw, dict):
        raise SpecError("transform must be an object")
    unknown = sorted(set(raw) - TRANSFORM_KEYS)
    if unknown:
        raise SpecError(
            f"transform has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TRANSFORM_KEYS))}"
        )
    rename = raw.get("rename") or {}
    if not isinstance(rename, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in rename.items()
    ):
        raise SpecError("transform.rename must be an object of {old: new} column names")
    select = raw.get("select")
    filter_sql = raw.get("filter")
    if filter_sql is not None and (not isinstance(filter_sql, str) or not filter_sql.strip()):
        raise SpecError("transform.filter must be a non-empty Spark SQL predicate")
    return Transform(
        select=None if select is None else _string_list(select, "transform.select"),
        rename=dict(rename),
        derive=_named_sql_list(raw.get("derive") or [], "transform.derive"),
        filter=filter_sql,
        mask=_string_list(raw.get("mask") or [], "transform.mask"),
        expectations=_named_sql_list(raw.get("expectations") or [], "transform.expectations"),
    )


def parse_accepted_schema(raw: Any) -> list[dict[str, Any]] | None:
    """Validates accepted_schema: null (first run) or a list of {name, type, nullable}."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise SpecError("accepted_schema must be null or a list of {name, type, nullable}")
    out = []
    for i, col in enumerate(raw):
        if not isinstance(col, dict):
            raise SpecError(f"accepted_schema[{i}] must be an object with name, type, nullable")
        out.append(
            {
                "name": _field(col, "name", str, f"accepted_schema[{i}]."),
                "type": _field(col, "type", str, f"accepted_schema[{i}]."),
                "nullable": _field(col, "nullable", bool, f"accepted_schema[{i}]."),
            }
        )
    return out


def parse_source(raw: Any) -> Source:
    """Validates the source block."""
    if not isinstance(raw, dict):
        raise SpecError("source must be an object")
    lookback = _field(raw, "lookback_secs", int, "source.", required=False) or 0
    if lookback < 0:
        raise SpecError("source.lookback_secs must not be negative")
    primary_key = _string_list(_field(raw, "primary_key", list, "source."), "source.primary_key")
    if not primary_key:
        raise SpecError("source.primary_key must name at least one column")
    return Source(
        jdbc_url=_field(raw, "jdbc_url", str, "source."),
        secret_arn=_field(raw, "secret_arn", str, "source."),
        table=_field(raw, "table", str, "source."),
        watermark_column=_field(raw, "watermark_column", str, "source."),
        primary_key=primary_key,
        soft_delete_column=_field(raw, "soft_delete_column", str, "source.", required=False),
        lookback_secs=lookback,
    )


def parse_spec(raw: Any) -> Spec:
    """Validates a whole run spec (field names as in livy-jobs/README.md)."""
    identity = parse_identity(raw)
    window = _field(raw, "window", dict, "")
    lo, hi = _field(window, "lo", int, "window."), _field(window, "hi", int, "window.")
    if lo >= hi:
        raise SpecError(f"window.lo ({lo}) must be below window.hi ({hi})")
    if not identity.output_prefix:
        raise SpecError("output_prefix is required")
    return Spec(
        run_key=identity.run_key,
        job_id=_field(raw, "job_id", str, "", required=False) or identity.run_key.split("@", 1)[0],
        lo=lo,
        hi=hi,
        attempt=identity.attempt,
        source=parse_source(raw.get("source")),
        output_prefix=identity.output_prefix,
        transform=parse_transform(raw.get("transform")),
        accepted_schema=parse_accepted_schema(raw.get("accepted_schema")),
        results_table=identity.results_table,
    )


# ---------------------------------------------------------------------------------------------------------
# Credentials and error text


@dataclass(frozen=True, repr=False)
class Credentials:
    """JDBC credentials. repr is redacted so an accidental log line or traceback cannot show them."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    def redact(self, text: str) -> str:
        """Removes the password (anywhere) and the user name (as a whole token) from operator-facing text."""
        if self.password:
            text = text.replace(self.password, "***")
        if self.username:
            text = re.sub(rf"(?<![\w-]){re.escape(self.username)}(?![\w-])", "***", text)
        return text


def fetch_credentials(secret_arn: str) -> Credentials:
    """Reads the JSON secret {username, password}; messages never include the secret's content."""
    client = boto3.client("secretsmanager", region_name=_region_for(secret_arn))
    secret = client.get_secret_value(SecretId=secret_arn).get("SecretString")
    try:
        value = json.loads(secret or "")
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("username"), str) or "password" not in value:
        raise StepError(f"secret {secret_arn} is not a JSON object with string username and password")
    return Credentials(username=value["username"], password=str(value["password"]))


def _region_for(arn: str) -> str | None:
    """The environment's region if it has one (AWS_REGION ...), else the one in the ARN, so EMR needs no config."""
    if boto3.session.Session().region_name:
        return None
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def describe_error(exc: BaseException) -> str:
    """One line for operators: the error's own summary plus its first Java cause, never a stack trace.

    Spark wraps JDBC failures ("Couldn't connect to the database") and keeps the driver's reason
    (refused, access denied) in the cause, so the cause is what makes the line useful.
    """
    if isinstance(exc, StepError | SpecError):
        return _first_line(str(exc))
    java = exc.java_exception if isinstance(exc, Py4JJavaError) else getattr(exc, "_origin", None)
    text = _first_line(str(java.toString())) if isinstance(exc, Py4JJavaError) else f"{type(exc).__name__}: {exc}"
    cause = _java_cause(java)
    return _first_line(text + (f"; caused by {cause}" if cause else ""))


def _java_cause(java: Any) -> str:
    """The first line of a Java exception's immediate cause ('' without one or outside the JVM)."""
    try:
        cause = java.getCause() if java is not None else None
        return _first_line(str(cause.toString())) if cause is not None else ""
    except Exception:
        return ""


def _first_line(text: str) -> str:
    """The first non-blank line, bounded in length."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else "unknown error"
    return line if len(line) <= MESSAGE_MAX_CHARS else line[: MESSAGE_MAX_CHARS - 3] + "..."


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Names the step an error happened in, so the result's message says where, not only what."""
    try:
        yield
    except StepError as exc:
        raise StepError(f"{name}: {exc}") from exc
    except SpecError:
        raise
    except Exception as exc:
        raise StepError(f"{name}: {describe_error(exc)}") from exc


# ---------------------------------------------------------------------------------------------------------
# Reading the source


def jdbc_url(url: str) -> str:
    """The URL Spark gets: MySQL scheme (so Spark picks its MySQL dialect) and UTC temporal parsing forced."""
    if url.startswith("jdbc:mariadb://"):
        url = "jdbc:mysql://" + url[len("jdbc:mariadb://") :]
    if not url.startswith("jdbc:mysql://"):
        raise SpecError("source.jdbc_url must start with jdbc:mysql:// (read with the MariaDB driver)")
    base, _, query = url.partition("?")
    ours = {k.lower() for k in JDBC_TIME_OPTIONS}
    params = [p for p in query.split("&") if p and p.split("=", 1)[0].lower() not in ours]
    params += [f"{k}={v}" for k, v in JDBC_TIME_OPTIONS.items()]
    return f"{base}?{'&'.join(params)}"


def quote_ident(name: str) -> str:
    """MySQL identifier quoting; a dotted table name is schema.table."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def sql_string(value: str) -> str:
    """A MySQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def utc_literal(unix_secs: int) -> str:
    """A Unix second as a UTC 'YYYY-MM-DD HH:MM:SS' literal, read as UTC by the job's UTC JDBC session."""
    return sql_string(datetime.fromtimestamp(unix_secs, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"))


def window_predicate(column: str, mysql_type: str, start: int, end: int) -> str:
    """The half-open window on the watermark, as a sargable SQL predicate (an index on the column is used)."""
    col = quote_ident(column)
    if mysql_type in TEMPORAL_TYPES:
        return f"{col} >= {utc_literal(start)} AND {col} < {utc_literal(end)}"
    if mysql_type in INTEGER_TYPES:
        return f"{col} >= {start} AND {col} < {end}"
    raise StepError(
        f"watermark column {column} has MySQL type {mysql_type}; expected datetime, timestamp, date "
        "or an integer of Unix seconds"
    )


def window_query(spec: Spec, mysql_type: str) -> str:
    """The one statement that reads the window (one statement: one consistent InnoDB snapshot)."""
    src = spec.source
    where = window_predicate(src.watermark_column, mysql_type, spec.read_from, spec.hi)
    return f"SELECT * FROM {quote_ident(src.table)} WHERE {where}"


def jdbc_reader(spark: SparkSession, spec: Spec, creds: Credentials) -> Any:
    """A JDBC reader with credentials as reader options (never Spark conf, which gets printed)."""
    return (
        spark.read.format("jdbc")
        .option("url", jdbc_url(spec.source.jdbc_url))
        .option("driver", JDBC_DRIVER)
        .option("user", creds.username)
        .option("password", creds.password)
        .option("sessionInitStatement", JDBC_SESSION_INIT)
        .option("fetchsize", JDBC_FETCH_SIZE)
    )


@dataclass(frozen=True)
class ColumnDef:
    """A source column as the database defines it."""

    name: str
    nullable: bool
    mysql_type: str


def read_column_defs(spark: SparkSession, spec: Spec, creds: Credentials) -> dict[str, ColumnDef]:
    """Column definitions from information_schema: the stable source of nullability (Spark says 'nullable' always)."""
    table = spec.source.table
    schema_name, _, table_name = table.rpartition(".")
    schema_sql = sql_string(schema_name) if schema_name else "DATABASE()"
    query = (
        "SELECT COLUMN_NAME AS name, IS_NULLABLE AS nullable, DATA_TYPE AS data_type "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema_sql} AND TABLE_NAME = {sql_string(table_name)}"
    )
    rows = jdbc_reader(spark, spec, creds).option("query", query).load().collect()
    if not rows:
        raise StepError(f"table {table} does not exist or has no columns visible to the job's database user")
    return {r["name"]: ColumnDef(r["name"], r["nullable"] == "YES", str(r["data_type"]).lower()) for r in rows}


def validate_source_columns(spec: Spec, defs: Mapping[str, ColumnDef]) -> None:
    """Fails early, naming the column, when the job definition refers to columns the table lacks."""
    src = spec.source
    wanted = [("watermark_column", src.watermark_column)] + [("primary_key", k) for k in src.primary_key]
    if src.soft_delete_column:
        wanted.append(("soft_delete_column", src.soft_delete_column))
    for role, name in wanted:
        if name not in defs:
            raise StepError(f"source.{role} {name} is not a column of {src.table} (columns: {', '.join(defs)})")


def source_schema(df: DataFrame, defs: Mapping[str, ColumnDef]) -> list[dict[str, Any]]:
    """The schema as reported: Spark's type names (simpleString) and the column definition's nullability."""
    return [
        {
            "name": f.name,
            "type": f.dataType.simpleString(),
            "nullable": defs[f.name].nullable if f.name in defs else True,
        }
        for f in df.schema.fields
    ]


# ---------------------------------------------------------------------------------------------------------
# Schema check


@dataclass(frozen=True)
class SchemaVerdict:
    """The schema check's outcome: verdict plus a human description of every change."""

    verdict: str
    change: str


def compare_schema(accepted: list[dict[str, Any]] | None, current: list[dict[str, Any]]) -> SchemaVerdict:
    """Additive nullable columns evolve; dropped, retyped or added non-nullable columns break.

    Columns are compared by name (order does not matter to Parquet readers). A nullability change of an
    existing column is recorded as evolved so the accepted schema follows the source definition.
    """
    if accepted is None:
        return SchemaVerdict(FIRST, "")
    old = {c["name"]: c for c in accepted}
    new = {c["name"]: c for c in current}
    breaking: list[str] = []
    evolved: list[str] = []
    for name, col in old.items():
        if name not in new:
            breaking.append(f"column {name} ({col['type']}) was dropped")
        elif new[name]["type"] != col["type"]:
            breaking.append(f"column {name} changed type from {col['type']} to {new[name]['type']}")
        elif new[name]["nullable"] != col["nullable"]:
            evolved.append(f"column {name} became {'nullable' if new[name]['nullable'] else 'not nullable'}")
    for name, col in new.items():
        if name in old:
            continue
        if col["nullable"]:
            evolved.append(f"added nullable column {name} ({col['type']})")
        else:
            breaking.append(f"added column {name} ({col['type']}) is not nullable")
    if breaking:
        return SchemaVerdict(BREAKING, "; ".join(breaking + evolved))
    if evolved:
        return SchemaVerdict(EVOLVED, "; ".join(evolved))
    return SchemaVerdict(UNCHANGED, "")


# ---------------------------------------------------------------------------------------------------------
# De-duplication and transform


def dedup_latest(df: DataFrame, primary_key: tuple[str, ...], watermark: str) -> DataFrame:
    """Keeps each key's rows with the greatest watermark.

    Ties at the greatest watermark and rows with a null key component are all kept: picking one would be
    arbitrary (re-runs could differ) and would hide exactly what the key checks must report.
    """
    latest = "__norris_latest_watermark"
    by_key = Window.partitionBy(*[F.col(k) for k in primary_key])
    any_null = _any_null(primary_key)
    return (
        df.withColumn(latest, F.max(F.col(watermark)).over(by_key))
        .where(any_null | (F.col(watermark) == F.col(latest)))
        .drop(latest)
    )


def _any_null(columns: tuple[str, ...] | list[str]) -> Column:
    """True when any of the columns is null."""
    cond = F.lit(False)
    for c in columns:
        cond = cond | F.col(c).isNull()
    return cond


def _require_columns(df: DataFrame, names: tuple[str, ...] | list[str], what: str) -> None:
    """Clear error when a transform names a column the frame lacks at that step."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise StepError(
            f"{what} names column(s) {', '.join(missing)}, not present at that step (columns: {', '.join(df.columns)})"
        )


def project_and_derive(df: DataFrame, spec: Spec) -> DataFrame:
    """select -> rename -> derive: the row-preserving part of the transform, before the filter."""
    t, src = spec.transform, spec.source
    if t.select is not None:
        _require_columns(df, t.select, "transform.select")
        kept = set(t.select)
        for role, name in [("primary_key", k) for k in src.primary_key] + [
            ("soft_delete_column", src.soft_delete_column)
        ]:
            if name and name not in kept:
                raise StepError(f"transform.select drops source.{role} {name}; the lake needs it")
        df = df.select(*[F.col(c) for c in t.select])
    _require_columns(df, list(t.rename), "transform.rename")
    for old, new in t.rename.items():
        df = df.withColumnRenamed(old, new)
    for d in t.derive:
        df = df.withColumn(d.name, F.expr(d.sql))
    return df


def rows_dropped_by_filter(df: DataFrame, filter_sql: str | None) -> int:
    """Counts the rows the filter removes (predicate false or null), independently of the written count."""
    if filter_sql is None:
        return 0
    return df.where(~F.coalesce(F.expr(filter_sql), F.lit(False))).count()


def filter_and_mask(df: DataFrame, spec: Spec) -> DataFrame:
    """filter -> mask -> the norris columns: the rest of the transform."""
    t = spec.transform
    if t.filter is not None:
        df = df.where(F.expr(t.filter))
    _require_columns(df, t.mask, "transform.mask")
    types = dict(df.dtypes)
    for c in t.mask:
        value = F.col(c) if types[c] == "binary" else F.col(c).cast("string")
        df = df.withColumn(c, F.sha2(value, 256))
    for reserved in (WINDOW_LO_COLUMN, ATTEMPT_COLUMN):
        if reserved in df.columns:
            raise StepError(f"column {reserved} is reserved for norris; rename it in the transform")
    return df.withColumn(WINDOW_LO_COLUMN, F.lit(spec.lo).cast("bigint")).withColumn(
        ATTEMPT_COLUMN, F.lit(spec.attempt).cast("int")
    )


def output_key(spec: Spec) -> list[str]:
    """The primary key's column names in the output (after rename)."""
    return [spec.transform.rename.get(k, k) for k in spec.source.primary_key]


# ---------------------------------------------------------------------------------------------------------
# Output and checks


def write_output(df: DataFrame, prefix: str, expected_rows: int) -> None:
    """Overwrites exactly the prefix directory, with about ROWS_PER_FILE rows per file.

    Static overwrite is pinned: the prefix is the unit to replace, whatever the cluster's default mode.
    """
    files = max(1, math.ceil(expected_rows / ROWS_PER_FILE))
    df.coalesce(files).write.mode("overwrite").option("partitionOverwriteMode", "static").parquet(prefix)


def remove_output(spark: SparkSession, prefix: str) -> None:
    """Deletes what this run wrote, so a failed attempt leaves nothing that looks successful (no _SUCCESS)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(prefix)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.exists(path):
        fs.delete(path, True)


def check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    """One data-quality check as it appears in the result item."""
    return {"name": name, "passed": bool(passed), "detail": detail}


def run_checks(written: DataFrame, spec: Spec, rows_read: int, rows_dropped: int) -> tuple[int, list[dict[str, Any]]]:
    """Checks the files as written (read back), so what is checked is exactly what would be published.

    The reconciliation compares the count read back from the files with rows read (after de-duplication,
    counted from the cached read) minus rows the filter removed (counted separately): it catches row
    multiplication in a transform, lost or extra files under the prefix, and a source re-read that saw
    different rows.
    """
    keys = output_key(spec)
    _require_columns(written, keys, "source.primary_key (after rename)")
    expectations = spec.transform.expectations
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(_any_null(keys), 1).otherwise(0)).alias("null_keys"),
    ] + [F.sum(F.when(F.expr(e.sql), 0).otherwise(1)).alias(f"e{i}") for i, e in enumerate(expectations)]
    totals = written.agg(*aggregates).first()
    dup = (
        written.where(~_any_null(keys))
        .groupBy(*keys)
        .count()
        .where(F.col("count") > 1)
        .agg(F.count(F.lit(1)).alias("keys"), F.sum(F.col("count") - 1).alias("extra"))
        .first()
    )
    rows_written = int(totals["rows"])
    expected = rows_read - rows_dropped
    null_keys = int(totals["null_keys"] or 0)
    dup_keys, dup_extra = int(dup["keys"] or 0), int(dup["extra"] or 0)
    key_text = ", ".join(keys)
    checks = [
        check(
            "row_count_reconciled",
            rows_written == expected,
            f"read {rows_read} after de-duplication, filter dropped {rows_dropped}, expected {expected}, "
            f"counted {rows_written} in the written files",
        ),
        check("primary_key_not_null", null_keys == 0, f"{null_keys} row(s) with a null in ({key_text})"),
        check(
            "primary_key_unique",
            dup_keys == 0,
            f"{dup_keys} value(s) of ({key_text}) appear more than once ({dup_extra} extra row(s))",
        ),
    ]
    for i, e in enumerate(expectations):
        bad = int(totals[f"e{i}"] or 0)
        checks.append(check(f"expectation:{e.name}", bad == 0, f"{bad} of {rows_written} row(s) violate {e.sql}"))
    return rows_written, checks


# ---------------------------------------------------------------------------------------------------------
# Result item


def result_item(
    identity: Identity,
    outcome: str,
    message: str,
    *,
    rows_read: int = 0,
    rows_written: int = 0,
    checks: list[dict[str, Any]] | None = None,
    schema: list[dict[str, Any]] | None = None,
    verdict: SchemaVerdict | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The result as a plain dict with the README's attribute names (schema as a JSON string).

    When the job failed before it could read the schema, ``schema`` is ``[]`` and ``schema_verdict`` is
    empty.
    """
    finished_at = int(time.time() if now is None else now)
    return {
        "run_key": identity.run_key,
        "attempt": identity.attempt,
        "outcome": outcome,
        "rows_read": rows_read,
        "rows_written": rows_written,
        "checks": checks or [],
        "schema": json.dumps(schema or []),
        "schema_verdict": verdict.verdict if verdict else "",
        "schema_change": verdict.change if verdict else "",
        "output_prefix": identity.output_prefix,
        "message": message,
        "finished_at": finished_at,
        "expires_at": finished_at + RESULT_TTL_SECS,
    }


def to_dynamo_item(result: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB wire format: numbers as N, checks as a list of maps, everything else S."""
    numbers = {"attempt", "rows_read", "rows_written", "finished_at", "expires_at"}
    item: dict[str, Any] = {}
    for key, value in result.items():
        if key in numbers:
            item[key] = {"N": str(int(value))}
        elif key == "checks":
            item[key] = {
                "L": [
                    {"M": {"name": {"S": c["name"]}, "passed": {"BOOL": c["passed"]}, "detail": {"S": c["detail"]}}}
                    for c in value
                ]
            }
        else:
            item[key] = {"S": str(value)}
    return item


def put_result(table: str, result: Mapping[str, Any]) -> None:
    """Writes the result item (a plain put: one item per attempt, a re-run of the same attempt replaces it)."""
    try:
        boto3.client("dynamodb").put_item(TableName=table, Item=to_dynamo_item(result))
    except Exception as exc:
        raise ResultWriteError(f"writing the result item to {table}: {describe_error(exc)}") from exc


# ---------------------------------------------------------------------------------------------------------
# The job


def configure_session(spark: SparkSession) -> None:
    """Pins the session settings the job depends on.

    UTC makes derived values and masks deterministic; TIMESTAMP_MICROS is the portable Parquet timestamp;
    letting adaptive execution resize the cached de-duplicated read keeps a small window from becoming
    spark.sql.shuffle.partitions (200) tiny tasks for every count.
    """
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")


@dataclass
class _Progress:
    """What the run knows so far, so a failure at any step still reports it."""

    creds: Credentials | None = None
    schema: list[dict[str, Any]] | None = None
    verdict: SchemaVerdict | None = None
    rows_read: int = 0
    rows_written: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    wrote: bool = False


def extract(spark: SparkSession, spec: Spec, p: _Progress) -> tuple[str, str]:
    """The job's steps; returns (outcome, message) and fills ``p`` as it goes."""
    with step("fetching the source credentials"):
        p.creds = fetch_credentials(spec.source.secret_arn)
    with step("reading the source schema"):
        defs = read_column_defs(spark, spec, p.creds)
        validate_source_columns(spec, defs)
        query = window_query(spec, defs[spec.source.watermark_column].mysql_type)
        raw = jdbc_reader(spark, spec, p.creds).option("query", query).load()
        p.schema = source_schema(raw, defs)
    p.verdict = compare_schema(spec.accepted_schema, p.schema)
    if p.verdict.verdict == BREAKING:
        return QUARANTINED, f"breaking schema change: {p.verdict.change}; the job stops until a person acts"

    LOG.info(
        "reading %s where %s in [%d, %d)", spec.source.table, spec.source.watermark_column, spec.read_from, spec.hi
    )
    # Cached so every count and the write see the same single read of the source.
    read = dedup_latest(raw, spec.source.primary_key, spec.source.watermark_column).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        with step("reading the source window"):
            p.rows_read = read.count()
        with step("applying the transform"):
            shaped = project_and_derive(read, spec)
            dropped = rows_dropped_by_filter(shaped, spec.transform.filter)
            final = filter_and_mask(shaped, spec)
        with step(f"writing Parquet to {spec.output_prefix}"):
            p.wrote = True
            write_output(final, spec.output_prefix, p.rows_read - dropped)
    finally:
        read.unpersist()
    with step("checking the written output"):
        p.rows_written, p.checks = run_checks(spark.read.parquet(spec.output_prefix), spec, p.rows_read, dropped)

    failed = [c for c in p.checks if not c["passed"]]
    if failed:
        listed = "; ".join(f"{c['name']} ({c['detail']})" for c in failed)
        return FAILED, f"data-quality checks failed: {listed}; output removed"
    return SUCCEEDED, (
        f"read {p.rows_read} row(s) in [{spec.read_from}, {spec.hi}), filter dropped {dropped}, "
        f"wrote {p.rows_written}; schema {p.verdict.verdict}" + (f" ({p.verdict.change})" if p.verdict.change else "")
    )


def run(spark: SparkSession, raw_spec: Mapping[str, Any]) -> dict[str, Any]:
    """Runs one extraction and writes its result item; returns the item (Python values).

    Raises SpecError when the spec lacks what a result item needs (run_key, attempt, results_table) and
    ResultWriteError when the item cannot be written; every other failure becomes a ``failed`` item.
    """
    identity = parse_identity(raw_spec)
    result = evaluate(spark, raw_spec)
    put_result(identity.results_table, result)
    return result


def evaluate(spark: SparkSession, raw_spec: Mapping[str, Any]) -> dict[str, Any]:
    """Runs one extraction and returns its result (Python values) without writing it.

    Raises SpecError when the spec lacks what a result needs (run_key, attempt, results_table); every
    other failure becomes a ``failed`` result.
    """
    identity = parse_identity(raw_spec)
    progress = _Progress()
    try:
        spec = parse_spec(raw_spec)
        configure_session(spark)
        outcome, message = extract(spark, spec, progress)
    except (StepError, SpecError) as exc:
        outcome, message = FAILED, describe_error(exc) if isinstance(exc, StepError) else f"invalid run spec: {exc}"
    except Exception as exc:  # an unforeseen bug still yields a readable failed item
        # Frames only: an exception's text could quote a driver message naming the database user.
        LOG.error("unexpected error, traceback frames:\n%s", "".join(traceback.format_tb(exc.__traceback__)))
        outcome, message = FAILED, f"unexpected error: {describe_error(exc)}"
    if outcome != SUCCEEDED and progress.wrote:
        with contextlib.suppress(Exception):
            remove_output(spark, identity.output_prefix)
    if progress.creds is not None:
        message = progress.creds.redact(message)
    result = result_item(
        identity,
        outcome,
        message,
        rows_read=progress.rows_read,
        rows_written=progress.rows_written,
        checks=progress.checks,
        schema=progress.schema,
        verdict=progress.verdict,
    )
    LOG.info("%s attempt %d %s: %s", identity.run_key, identity.attempt, outcome, message)
    return result


# ---------------------------------------------------------------------------------------------------------
# Groups: one application per group attempt (ARCHITECTURE.md, "Plan: the grouped ledger")


@dataclass(frozen=True)
class GroupIdentity:
    """What a group result item needs at all."""

    group_key: str
    attempt: int
    results_table: str
    max_parallel: int


def parse_group_identity(raw: Any) -> GroupIdentity:
    """Parses the group spec's own fields; its members are parsed one by one, so one bad member fails alone."""
    if not isinstance(raw, dict):
        raise SpecError("the group spec must be a JSON object")
    attempt = _field(raw, "attempt", int, "")
    if attempt < 0:
        raise SpecError("attempt must not be negative")
    max_parallel = _field(raw, "max_parallel", int, "", required=False)
    max_parallel = 4 if max_parallel is None else max_parallel
    if not 1 <= max_parallel <= GROUP_MAX_PARALLEL:
        raise SpecError(f"max_parallel must be between 1 and {GROUP_MAX_PARALLEL}")
    if not isinstance(raw.get("members"), list):
        raise SpecError("members must be a list of run specs")
    return GroupIdentity(
        group_key=_field(raw, "group_key", str, ""),
        attempt=attempt,
        results_table=_field(raw, "results_table", str, ""),
        max_parallel=max_parallel,
    )


def member_specs(group: GroupIdentity, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each member as a run spec: the group's attempt (the fence) and results table, the member's own rest."""
    specs = []
    for i, member in enumerate(raw["members"]):
        if not isinstance(member, dict) or not isinstance(member.get("run_key"), str):
            # Without a run key it cannot be reported; the control plane counts it failed for want of a result.
            LOG.error("group %s: members[%d] has no run_key and is skipped", group.group_key, i)
            continue
        specs.append({**member, "attempt": group.attempt, "results_table": group.results_table})
    return specs


def run_group(spark: SparkSession, raw_group: Mapping[str, Any]) -> dict[str, Any]:
    """Runs every member of a group attempt (``max_parallel`` at once, as concurrent Spark jobs of one
    application) and writes the one group result item; returns it (Python values).

    Raises SpecError when the group spec lacks what its result item needs and ResultWriteError when the
    item cannot be written; a member's failure is that member's ``failed`` result.
    """
    group = parse_group_identity(raw_group)
    specs = member_specs(group, raw_group)
    configure_session(spark)
    with ThreadPoolExecutor(max_workers=group.max_parallel, thread_name_prefix="member") as pool:
        members = [compact_member(r) for r in pool.map(lambda spec: evaluate(spark, spec), specs)]
    finished_at = int(time.time())
    item = {
        "run_key": f"GROUP#{group.group_key}",
        "attempt": group.attempt,
        "finished_at": finished_at,
        "expires_at": finished_at + RESULT_TTL_SECS,
        "members": members,
    }
    try:
        boto3.client("dynamodb").put_item(TableName=group.results_table, Item=to_group_item(item))
    except Exception as exc:
        raise ResultWriteError(
            f"writing the group result item to {group.results_table}: {describe_error(exc)}"
        ) from exc
    counts = {o: sum(1 for m in members if m["outcome"] == o) for o in (SUCCEEDED, FAILED, QUARANTINED)}
    LOG.info("group %s attempt %d: %s", group.group_key, group.attempt, counts)
    return item


def compact_member(result: Mapping[str, Any]) -> dict[str, Any]:
    """A member's result as a group result holds it: what the control plane reads and nothing it can derive.
    Only the checks that failed (it judges by those; passing ones are in the application's log), the schema
    only when it needs it (first, evolved or breaking), the message only when the attempt did not succeed
    (a success's message is in the log), no output prefix (the spec's, ``.../window_lo=<lo>/attempt=<n>``)
    and no empty values. The item is written every few minutes per shard and billed per KB: a full result
    is over 1 KB a member, a compact one about 100 bytes."""
    compact = {k: v for k, v in result.items() if k not in ("expires_at", "output_prefix")}
    compact["checks"] = [c for c in result["checks"] if not c["passed"]]
    if result["schema_verdict"] == UNCHANGED:
        compact["schema"] = ""
    if result["outcome"] == SUCCEEDED:
        compact["message"] = ""
    return {k: v for k, v in compact.items() if v not in ("", [])}


def to_group_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB wire format of a group result: members as maps with short names (``MEMBER_NAMES``)."""
    members = []
    for result in item["members"]:
        full = to_dynamo_item(result)
        if "checks" in full:
            full["checks"] = {
                "L": [
                    {"M": {"n": c["M"]["name"], "p": c["M"]["passed"], "d": c["M"]["detail"]}}
                    for c in full["checks"]["L"]
                ]
            }
        members.append({"M": {MEMBER_NAMES[k]: v for k, v in full.items()}})
    return {
        "run_key": {"S": item["run_key"]},
        "attempt": {"N": str(int(item["attempt"]))},
        "finished_at": {"N": str(int(item["finished_at"]))},
        "expires_at": {"N": str(int(item["expires_at"]))},
        "members": {"L": members},
    }


def exit_code(result: Mapping[str, Any]) -> int:
    """Livy marks any non-zero exit as dead; the result item stays the truth."""
    return {SUCCEEDED: EXIT_SUCCEEDED, QUARANTINED: EXIT_QUARANTINED}.get(result["outcome"], EXIT_FAILED)


def parse_args(argv: list[str] | None) -> tuple[str, dict[str, Any]]:
    """``--spec <json>`` (one window), or ``--group-spec <json>`` / ``--group-spec-uri <file:// or s3:// URI>``
    (a group attempt: a group's spec outgrows one command-line argument, 128 KiB on Linux, at a few hundred
    members); returns ``("run" | "group", the decoded spec)``."""
    parser = argparse.ArgumentParser(prog="extract.py", description="norris incremental extraction")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--spec", help="the run spec as one JSON document")
    given.add_argument("--group-spec", help="a group attempt's spec as one JSON document")
    given.add_argument("--group-spec-uri", help="where the group attempt's spec is (file:// or s3://)")
    args = parser.parse_args(argv)
    if args.spec is not None:
        return "run", _decode(args.spec, "--spec")
    if args.group_spec is not None:
        return "group", _decode(args.group_spec, "--group-spec")
    return "group", _decode(read_uri(args.group_spec_uri), "--group-spec-uri")


def _decode(text: str, what: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{what} is not valid JSON: {exc}") from exc


def read_uri(uri: str) -> str:
    """The text at a ``file://`` or ``s3://`` URI (the control plane writes a group's spec there)."""
    try:
        if uri.startswith("file://"):
            with open(uri.removeprefix("file://"), encoding="utf-8") as f:
                return f.read()
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except Exception as exc:
        raise SpecError(f"--group-spec-uri {uri} cannot be read: {describe_error(exc)}") from exc
    raise SpecError(f"--group-spec-uri must be a file:// or s3:// URI, not {uri!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point under spark-submit/Livy: builds the SparkSession, runs, prints the result, maps the exit code."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s norris-extract %(levelname)s %(message)s"
    )
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        mode, raw = parse_args(argv)
        if mode == "group":
            group = parse_group_identity(raw)
            name = f"norris-extract group {group.group_key} attempt {group.attempt}"
        else:
            identity = parse_identity(raw)
            name = f"norris-extract {identity.run_key} attempt {identity.attempt}"
    except SpecError as exc:
        LOG.error("invalid spec, no result item written: %s", exc)
        return EXIT_BAD_SPEC
    spark = SparkSession.builder.appName(name).config("spark.sql.session.timeZone", "UTC").getOrCreate()
    try:
        result = run_group(spark, raw) if mode == "group" else run(spark, raw)
    except ResultWriteError as exc:
        LOG.error("%s", exc)
        return EXIT_NO_RESULT
    finally:
        spark.stop()
    print(json.dumps({"norris_result": result}, sort_keys=True), flush=True)
    # A group's members each have their outcome in the result item; the application did its job.
    return EXIT_SUCCEEDED if mode == "group" else exit_code(result)


if __name__ == "__main__":
    sys.exit(main())
