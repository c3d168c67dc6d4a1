"""The extraction job in process: real MariaDB, real Spark, moto for Secrets Manager and DynamoDB."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pytest
from harness import T0, Aws, Database, Jobs

import extract

ORDERS_DDL = """
    id BIGINT NOT NULL PRIMARY KEY,
    customer VARCHAR(64) NOT NULL,
    email VARCHAR(128) NULL,
    price INT NOT NULL,
    updated_at {wm_type} NOT NULL,
    KEY (updated_at)
"""
ORDERS_COLUMNS = ["id", "customer", "email", "price", "updated_at"]
# A table whose declared key is not enforced (as with views or append-only tables): duplicates and nulls
# can exist, which is what de-duplication and the key checks are for.
EVENTS_DDL = "id BIGINT NULL, amount INT NULL, note VARCHAR(32) NULL, updated_at DATETIME NOT NULL"
EVENTS_COLUMNS = ["id", "amount", "note", "updated_at"]


def orders(db: Database, name: str, rows: list[tuple[Any, ...]], wm_type: str = "DATETIME") -> str:
    """Creates an orders table with rows (id, customer, email, price, updated_at as Unix seconds)."""
    db.execute(f"CREATE TABLE {name} ({ORDERS_DDL.format(wm_type=wm_type)})")
    db.insert(name, ORDERS_COLUMNS, rows)
    return name


def events(db: Database, name: str, rows: list[tuple[Any, ...]]) -> str:
    """Creates a key-less events table with rows (id, amount, note, updated_at as Unix seconds)."""
    db.execute(f"CREATE TABLE {name} ({EVENTS_DDL})")
    db.insert(name, EVENTS_COLUMNS, rows)
    return name


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The result's checks by name."""
    return {c["name"]: c for c in result["checks"]}


def assert_stored(aws: Aws, result: dict[str, Any]) -> None:
    """The item in DynamoDB is exactly what run() returned."""
    assert aws.stored_result(result["run_key"], result["attempt"]) == result


def without_times(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its timestamps, to compare two runs."""
    return {k: v for k, v in result.items() if k not in ("finished_at", "expires_at")}


@pytest.mark.parametrize("wm_type", ["DATETIME", "TIMESTAMP"])
def test_window_bounds_are_exact_and_zone_independent(jobs: Jobs, db: Database, aws: Aws, wm_type: str) -> None:
    """lo - lookback and lo included, hi excluded, values read back to the second.

    The JVM runs in +05:30 (conftest) and the spec's URL sets the MariaDB session to +05:00 (as a server
    configured in another zone would): a bound or a value shifted by either zone fails here.
    """
    lo, hi, lookback = T0 + 3600, T0 + 3900, 120
    watermarks = {
        1: lo - lookback - 1,  # just before the lookback: out
        2: lo - lookback,  # first second of the lookback: in
        3: lo,  # in
        4: lo + 150,  # in
        5: hi - 1,  # in
        6: hi,  # out: half-open
        7: lo - 18000,  # out, but in if a +05:00 session leaked into the bounds
        8: lo + 18000,  # out, but in if -05:00 leaked
        9: lo - 19800,  # out, but in if the JVM's +05:30 leaked
    }
    table = orders(
        db, f"bounds_{wm_type.lower()}", [(i, f"c{i}", None, i * 10, wm) for i, wm in watermarks.items()], wm_type
    )
    spec = jobs.spec(
        table, lo, hi, attempt=3, lookback=lookback, jdbc_url=db.jdbc_url("?sessionVariables=time_zone='+05:00'")
    )

    result = jobs.run(spec)

    assert result["outcome"] == "succeeded", result["message"]
    assert result["rows_read"] == 4 and result["rows_written"] == 4
    out = jobs.output(spec)
    assert {r["id"]: r["updated_at"] for r in out} == {i: watermarks[i] for i in (2, 3, 4, 5)}
    assert {(r["_norris_window_lo"], r["_norris_attempt"]) for r in out} == {(lo, 3)}
    written_types = dict(jobs.spark.read.parquet(spec["output_prefix"]).dtypes)
    assert written_types["_norris_window_lo"] == "bigint" and written_types["_norris_attempt"] == "int"
    assert written_types["updated_at"] == "timestamp"
    assert result["schema_verdict"] == "first" and result["schema_change"] == ""
    assert json.loads(result["schema"]) == [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "customer", "type": "string", "nullable": False},
        {"name": "email", "type": "string", "nullable": True},
        {"name": "price", "type": "int", "nullable": False},
        {"name": "updated_at", "type": "timestamp", "nullable": False},
    ]
    assert all(c["passed"] for c in result["checks"]), result["checks"]
    assert result["expires_at"] == result["finished_at"] + 30 * 24 * 3600
    assert result["output_prefix"] == spec["output_prefix"]
    assert_stored(aws, result)


def test_same_window_twice_gives_identical_output(jobs: Jobs, db: Database) -> None:
    """Re-running a spec replaces exactly its prefix: same rows, no files left from the first run."""
    lo, hi = T0, T0 + 300
    table = orders(db, "twice", [(i, f"c{i}", f"u{i}@x.test", i, lo + i) for i in range(1, 41)])
    spec = jobs.spec(table, lo, hi, attempt=1)
    sibling = jobs.spec(table, lo, hi, attempt=2)

    first = jobs.run(spec)
    first_rows, first_files = jobs.output(spec), set(jobs.output_dir(spec).iterdir())
    sibling_result = jobs.run(sibling)
    sibling_files = set(jobs.output_dir(sibling).iterdir())
    second = jobs.run(spec)

    assert first["outcome"] == second["outcome"] == sibling_result["outcome"] == "succeeded"
    assert jobs.output(spec) == first_rows and len(first_rows) == 40
    assert without_times(second) == without_times(first)
    assert jobs.output_dir(spec).parts[-2:] == (f"window_lo={lo}", "attempt=1")
    data_files = {p.name for p in jobs.output_dir(spec).iterdir() if p.suffix == ".parquet"}
    assert data_files and data_files.isdisjoint(p.name for p in first_files), "first run's files must be replaced"
    assert set(jobs.output_dir(sibling).iterdir()) == sibling_files, "another attempt's prefix must be untouched"
    assert [{**r, "_norris_attempt": 1} for r in jobs.output(sibling)] == first_rows


def test_row_committed_late_inside_the_lookback_is_not_lost(jobs: Jobs, db: Database) -> None:
    """A row stamped in window 1 but committed after window 1 was read appears in window 2's output."""
    w1, w2, lookback = (T0, T0 + 300), (T0 + 300, T0 + 600), 120
    table = orders(db, "late", [(1, "a", None, 1, T0 + 100)])
    first = jobs.run(jobs.spec(table, *w1, lookback=lookback))
    assert first["outcome"] == "succeeded" and first["rows_written"] == 1

    # Committed late: stamped inside window 1 (within the lookback of window 2), and a row too old for it.
    db.insert(table, ORDERS_COLUMNS, [(2, "late", None, 2, T0 + 250), (3, "too-late", None, 3, w2[0] - lookback - 1)])
    db.insert(table, ORDERS_COLUMNS, [(4, "on-time", None, 4, T0 + 400)])
    spec2 = jobs.spec(table, *w2, lookback=lookback)
    second = jobs.run(spec2)

    assert second["outcome"] == "succeeded", second["message"]
    # Row 3 is older than the lookback: the documented limit of watermark extraction (lookback sizing).
    assert {r["id"] for r in jobs.output(spec2)} == {2, 4}


def test_dedup_keeps_each_keys_latest_version(jobs: Jobs, db: Database) -> None:
    """Several versions of a key in one read: the one with the greatest watermark is written."""
    table = events(
        db,
        "versions",
        [(1, 10, "old", T0 + 10), (1, 11, "new", T0 + 20), (2, 20, "only", T0 + 30), (1, 9, "older", T0 + 5)],
    )
    spec = jobs.spec(table, T0, T0 + 300)
    result = jobs.run(spec)

    assert result["outcome"] == "succeeded", result["message"]
    assert result["rows_read"] == 2 and result["rows_written"] == 2
    assert {(r["id"], r["note"]) for r in jobs.output(spec)} == {(1, "new"), (2, "only")}


def test_data_quality_failures_are_reported_not_hidden(jobs: Jobs, db: Database, aws: Aws) -> None:
    """A null key, a duplicate key (a tie at the latest watermark) and a failing expectation: failed, with details."""
    table = events(
        db,
        "dq",
        [
            (1, 10, "ok", T0 + 1),
            (None, 20, "null key", T0 + 2),
            (5, 30, "dup a", T0 + 3),
            (5, 31, "dup b", T0 + 3),
            (6, -1, "negative", T0 + 4),
        ],
    )
    spec = jobs.spec(
        table,
        T0,
        T0 + 300,
        transform={
            "expectations": [
                {"name": "non_negative_amount", "sql": "amount >= 0"},
                {"name": "has_note", "sql": "note IS NOT NULL"},
            ]
        },
    )
    result = jobs.run(spec)

    assert result["outcome"] == "failed"
    checks = by_name(result)
    assert checks["row_count_reconciled"]["passed"] is True
    assert checks["primary_key_not_null"] == {
        "name": "primary_key_not_null",
        "passed": False,
        "detail": "1 row(s) with a null in (id)",
    }
    assert checks["primary_key_unique"]["passed"] is False
    assert checks["primary_key_unique"]["detail"].startswith("1 value(s) of (id) appear more than once (1 extra")
    assert checks["expectation:non_negative_amount"] == {
        "name": "expectation:non_negative_amount",
        "passed": False,
        "detail": "1 of 5 row(s) violate amount >= 0",
    }
    assert checks["expectation:has_note"]["passed"] is True
    for name in ("primary_key_not_null", "primary_key_unique", "expectation:non_negative_amount"):
        assert name in result["message"]
    assert "\n" not in result["message"]
    assert jobs.output_dir(spec).parent.exists(), "the job wrote under the window's directory"
    assert not jobs.output_dir(spec).exists(), "a failed attempt must not leave output that looks successful"
    assert_stored(aws, result)


def test_row_count_reconciliation_catches_a_transform_that_multiplies_rows(jobs: Jobs, db: Database) -> None:
    """The counts come from different places (read cache, filter count, written files), so they can disagree."""
    table = orders(db, "multiply", [(1, "a", None, 1, T0 + 1), (2, "b", None, 2, T0 + 2)])
    spec = jobs.spec(table, T0, T0 + 300, transform={"derive": [{"name": "copy", "sql": "explode(array(1, 2))"}]})
    result = jobs.run(spec)

    assert result["outcome"] == "failed"
    reconciled = by_name(result)["row_count_reconciled"]
    assert reconciled["passed"] is False
    assert (
        reconciled["detail"]
        == "read 2 after de-duplication, filter dropped 0, expected 2, counted 4 in the written files"
    )


def test_transform_steps_apply_in_documented_order(jobs: Jobs, db: Database) -> None:
    """select -> rename -> derive -> filter -> mask; derived time values in UTC whatever the session's zone."""
    late_evening = T0 + 23 * 3600 + 10  # 23:00 UTC, 15:00 in Los Angeles
    table = orders(
        db,
        "shaped",
        [
            (1, "a", "a@x.test", 5, late_evening),
            (2, "b", "b@x.test", 10, late_evening + 1),
            (3, "c", None, 20, late_evening + 2),
            (4, "d", "d@x.test", 30, late_evening + 3),
        ],
    )
    spec = jobs.spec(
        table,
        T0 + 23 * 3600,
        T0 + 24 * 3600,
        transform={
            "select": ["id", "email", "price", "updated_at"],
            "rename": {"price": "amount"},
            "derive": [{"name": "amount_x2", "sql": "amount * 2"}, {"name": "hour_utc", "sql": "hour(updated_at)"}],
            "filter": "amount >= 10",
            "mask": ["email"],
            "expectations": [{"name": "positive", "sql": "amount_x2 > 0"}],
        },
    )
    jobs.spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    result = jobs.run(spec)

    assert result["outcome"] == "succeeded", result["message"]
    assert (result["rows_read"], result["rows_written"]) == (4, 3)
    assert "filter dropped 1, expected 3, counted 3" in by_name(result)["row_count_reconciled"]["detail"]
    columns = jobs.spark.read.parquet(spec["output_prefix"]).columns
    assert columns == [
        "id",
        "email",
        "amount",
        "updated_at",
        "amount_x2",
        "hour_utc",
        "_norris_window_lo",
        "_norris_attempt",
    ]
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    got = {r["id"]: (r["email"], r["amount"], r["amount_x2"], r["hour_utc"]) for r in jobs.output(spec)}
    assert got == {2: (sha("b@x.test"), 10, 20, 23), 3: (None, 20, 40, 23), 4: (sha("d@x.test"), 30, 60, 23)}
    # The reported schema is the source's, before the transform.
    assert [c["name"] for c in json.loads(result["schema"])] == ORDERS_COLUMNS


def test_added_nullable_column_evolves_and_nullability_stays_stable(jobs: Jobs, db: Database) -> None:
    """first -> evolved (column recorded, written) -> unchanged with the evolved schema accepted."""
    table = orders(db, "evolving", [(1, "a", None, 1, T0 + 1)])
    first = jobs.run(jobs.spec(table, T0, T0 + 300))
    assert (first["outcome"], first["schema_verdict"]) == ("succeeded", "first")

    db.execute(f"ALTER TABLE {table} ADD COLUMN note VARCHAR(32) NULL")
    db.execute(f"UPDATE {table} SET note = 'hello', updated_at = FROM_UNIXTIME(%s)", T0 + 301)
    spec2 = jobs.spec(table, T0 + 300, T0 + 600, accepted_schema=json.loads(first["schema"]))
    second = jobs.run(spec2)

    assert (second["outcome"], second["schema_verdict"]) == ("succeeded", "evolved"), second["message"]
    assert second["schema_change"] == "added nullable column note (string)"
    assert json.loads(second["schema"])[-1] == {"name": "note", "type": "string", "nullable": True}
    assert [r["note"] for r in jobs.output(spec2)] == ["hello"]

    third = jobs.run(jobs.spec(table, T0 + 600, T0 + 900, accepted_schema=json.loads(second["schema"])))
    assert (third["outcome"], third["schema_verdict"], third["schema_change"]) == ("succeeded", "unchanged", "")
    assert third["schema"] == second["schema"]


def test_type_change_quarantines_naming_column_and_types(jobs: Jobs, db: Database, aws: Aws) -> None:
    """A changed type stops the job before any data is read or written."""
    table = orders(db, "retyped", [(1, "a", None, 1, T0 + 1)])
    first = jobs.run(jobs.spec(table, T0, T0 + 300))
    db.execute(f"ALTER TABLE {table} MODIFY price VARCHAR(16) NOT NULL")
    spec = jobs.spec(table, T0 + 300, T0 + 600, accepted_schema=json.loads(first["schema"]))

    result = jobs.run(spec)

    assert result["outcome"] == "quarantined"
    assert result["schema_verdict"] == "breaking"
    assert result["schema_change"] == "column price changed type from int to string"
    assert "column price changed type from int to string" in result["message"]
    assert (result["rows_written"], result["checks"]) == (0, [])
    assert not jobs.output_dir(spec).exists()
    assert_stored(aws, result)


def test_dropped_column_quarantines(jobs: Jobs, db: Database) -> None:
    """Dropping a column is breaking too."""
    table = orders(db, "dropping", [(1, "a", None, 1, T0 + 1)])
    first = jobs.run(jobs.spec(table, T0, T0 + 300))
    db.execute(f"ALTER TABLE {table} DROP COLUMN email")
    result = jobs.run(jobs.spec(table, T0 + 300, T0 + 600, accepted_schema=json.loads(first["schema"])))
    assert (result["outcome"], result["schema_change"]) == ("quarantined", "column email (string) was dropped")


def test_empty_window_succeeds_with_a_readable_empty_output(jobs: Jobs, db: Database) -> None:
    """No rows in the window is a normal, successful run."""
    table = orders(db, "quiet", [(1, "a", None, 1, T0 - 3600)])
    spec = jobs.spec(table, T0, T0 + 300)
    result = jobs.run(spec)
    assert (result["outcome"], result["rows_read"], result["rows_written"]) == ("succeeded", 0, 0)
    assert jobs.output(spec) == []


def test_bad_sql_in_a_transform_becomes_a_failed_item(jobs: Jobs, db: Database, aws: Aws) -> None:
    """An unexpected error is reported as failed with a one-line message saying where it happened."""
    table = orders(db, "badsql", [(1, "a", None, 1, T0 + 1)])
    spec = jobs.spec(table, T0, T0 + 300, transform={"derive": [{"name": "x", "sql": "no_such_column + 1"}]})
    result = jobs.run(spec)
    assert result["outcome"] == "failed"
    assert result["message"].startswith("applying the transform: AnalysisException: [UNRESOLVED_COLUMN")
    assert "no_such_column" in result["message"] and "\n" not in result["message"]
    assert not jobs.output_dir(spec).exists()
    assert_stored(aws, result)


def test_unreachable_source_becomes_a_failed_item(jobs: Jobs, db: Database) -> None:
    """A source that cannot be reached: failed, one line, no output."""
    closed = f"jdbc:mysql://127.0.0.1:1/{db.name}"
    spec = jobs.spec("anything", T0, T0 + 300, jdbc_url=closed)
    result = jobs.run(spec)
    assert result["outcome"] == "failed"
    assert result["message"].startswith("reading the source schema: AnalysisException: [FAILED_JDBC.CONNECTION]")
    assert "caused by java.sql.SQLNonTransientConnectionException: Could not connect" in result["message"]
    assert "\n" not in result["message"]
    assert result["schema_verdict"] == "" and result["schema"] == "[]"


def test_invalid_spec_is_reported_with_the_field(jobs: Jobs, db: Database) -> None:
    """A spec missing a field still yields a failed item naming it; without run_key nothing can be reported."""
    spec = jobs.spec("orders", T0, T0 + 300)
    del spec["source"]["table"]
    result = jobs.run(spec)
    assert (result["outcome"], result["message"]) == ("failed", "invalid run spec: source.table is required")

    del spec["results_table"]
    with pytest.raises(extract.SpecError, match="results_table is required"):
        jobs.run(spec)


def test_credentials_never_appear_in_results_or_output(
    jobs: Jobs, db: Database, aws: Aws, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a good password nor a rejected user name/password shows up in results, prints or logs.

    The job's own logger is captured at DEBUG; botocore and py4j log request bodies at DEBUG, which is why
    main() pins them to WARNING (checked in test_main_keeps_libraries_that_log_secrets_quiet).
    """
    caplog.set_level("DEBUG", logger="norris.extract")
    table = orders(db, "secretive", [(1, "a", None, 1, T0 + 1)])
    good = jobs.run(jobs.spec(table, T0, T0 + 300))
    rejected = jobs.run(jobs.spec(table, T0, T0 + 300, attempt=2, secret_arn=aws.wrong_secret_arn))

    assert good["outcome"] == "succeeded"
    assert rejected["outcome"] == "failed"
    assert "Access denied for user '***'" in rejected["message"], rejected["message"]
    out, err = capfd.readouterr()
    stored = [aws.stored_result(r["run_key"], r["attempt"]) for r in (good, rejected)]
    haystack = json.dumps([good, rejected, stored]) + out + err + caplog.text
    for secret in ("norris-local", aws.wrong_password, aws.wrong_username):
        assert secret not in haystack


def test_main_rejects_a_spec_it_cannot_report_on(caplog: pytest.LogCaptureFixture) -> None:
    """Without a parseable spec there is no result item to write: exit 2 before any Spark work."""
    assert extract.main(["--spec", "{not json"]) == extract.EXIT_BAD_SPEC
    assert extract.main(["--spec", json.dumps({"run_key": "a@1"})]) == extract.EXIT_BAD_SPEC
    assert "--spec is not valid JSON" in caplog.text and "attempt is required" in caplog.text


def test_main_keeps_libraries_that_log_secrets_quiet() -> None:
    """Even when the root logger is at DEBUG, main() leaves botocore/py4j above DEBUG."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    try:
        extract.main(["--spec", "{}"])
    finally:
        root.setLevel(before)
    for name in extract.QUIET_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name


def test_a_group_attempt_runs_every_member_and_writes_one_compact_result(jobs: Jobs, db: Database, aws: Aws) -> None:
    """Members run as concurrent Spark jobs of one application under the group's attempt (the fence):
    each writes its own prefix, one member's failure is its own, and one item holds every member."""
    lo, hi = T0, T0 + 300
    first = orders(db, "group_a", [(i, f"c{i}", None, i, lo + i) for i in range(1, 21)])
    second = orders(db, "group_b", [(i, f"c{i}", None, i, lo + i) for i in range(1, 6)])
    good_a = jobs.spec(first, lo, hi, attempt=99)
    good_b = jobs.spec(second, lo, hi, attempt=99, accepted_schema=None)
    bad = jobs.spec(second, hi, hi + 300, transform={"derive": [{"name": "x", "sql": "no_such_column + 1"}]})
    members = [{k: v for k, v in m.items() if k not in ("attempt", "results_table")} for m in (good_a, good_b, bad)]
    for m in members:
        m["output_prefix"] = m["output_prefix"].replace("attempt=99", "attempt=4").replace("attempt=1", "attempt=4")
    group = {
        "group_key": f"small/300/60/0/{db.name}",
        "attempt": 4,
        "results_table": aws.results_table,
        "max_parallel": 2,
        "members": [*members, {"job_id": "no run key"}],
    }
    item = extract.run_group(jobs.spark, group)

    outcomes = {m["run_key"]: (m["outcome"], m["rows_written"], m["attempt"]) for m in item["members"]}
    assert outcomes == {
        good_a["run_key"]: ("succeeded", 20, 4),
        good_b["run_key"]: ("succeeded", 5, 4),
        bad["run_key"]: ("failed", 0, 4),
    }
    assert all("output_prefix" not in m for m in item["members"]), "the prefix is the spec's"
    assert len(jobs.output({"output_prefix": members[0]["output_prefix"]})) == 20
    assert {r["_norris_attempt"] for r in jobs.output({"output_prefix": members[1]["output_prefix"]})} == {4}
    assert not jobs.output_dir({"output_prefix": members[2]["output_prefix"]}).exists()
    assert all(not c["passed"] for m in item["members"] for c in m.get("checks", [])), "only failed checks are kept"
    stored = aws.stored_result(item["run_key"], 4)
    assert stored is not None and stored["run_key"] == f"GROUP#small/300/60/0/{db.name}"
    assert [m["k"] for m in stored["members"]] == [m["run_key"] for m in item["members"]]
    assert stored["members"][2]["m"].startswith("applying the transform: AnalysisException")
    assert "m" not in stored["members"][0], "a success's message is in the log, not the item"
