"""Pure parts of the job: schema verdicts, SQL and URL building, spec validation, item encoding, redaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import extract
from extract import BREAKING, EVOLVED, FIRST, UNCHANGED, compare_schema


def col(name: str, type_: str, nullable: bool = True) -> dict[str, Any]:
    """One schema column."""
    return {"name": name, "type": type_, "nullable": nullable}


BASE = [col("id", "bigint", False), col("price", "int", False), col("note", "string")]


@pytest.mark.parametrize(
    ("current", "verdict", "change"),
    [
        (BASE, UNCHANGED, ""),
        (list(reversed(BASE)), UNCHANGED, ""),
        ([*BASE, col("extra", "date")], EVOLVED, "added nullable column extra (date)"),
        ([*BASE, col("extra", "int", False)], BREAKING, "added column extra (int) is not nullable"),
        (BASE[:2], BREAKING, "column note (string) was dropped"),
        ([BASE[0], col("price", "string", False), BASE[2]], BREAKING, "column price changed type from int to string"),
        ([BASE[0], col("price", "int", True), BASE[2]], EVOLVED, "column price became nullable"),
        (
            [BASE[0], col("price", "bigint", False), col("extra", "int")],
            BREAKING,
            "column price changed type from int to bigint; column note (string) was dropped; "
            "added nullable column extra (int)",
        ),
    ],
)
def test_compare_schema(current: list[dict[str, Any]], verdict: str, change: str) -> None:
    """Additive nullable columns evolve; anything a reader of older files would trip over breaks."""
    got = compare_schema(BASE, current)
    assert (got.verdict, got.change) == (verdict, change)


def test_first_run_has_no_accepted_schema() -> None:
    """null accepted_schema is the first run."""
    assert compare_schema(None, BASE) == extract.SchemaVerdict(FIRST, "")


def test_jdbc_url_forces_utc_and_mysql_scheme() -> None:
    """Our time options replace the caller's; other options are kept; jdbc:mariadb is rewritten."""
    assert (
        extract.jdbc_url("jdbc:mariadb://h:3306/db?serverTimezone=Asia/Tokyo&connectTimeout=5000")
        == "jdbc:mysql://h:3306/db?connectTimeout=5000&useLegacyDatetimeCode=false&serverTimezone=UTC"
    )
    with pytest.raises(extract.SpecError, match="jdbc:mysql://"):
        extract.jdbc_url("jdbc:postgresql://h/db")


def test_window_predicate_is_half_open_in_utc() -> None:
    """Literal bounds are UTC wall-clock times; integers compare as Unix seconds."""
    assert (
        extract.window_predicate("updated_at", "datetime", 1795305480, 1795305900)
        == "`updated_at` >= '2026-11-21 23:58:00' AND `updated_at` < '2026-11-22 00:05:00'"
    )
    assert extract.window_predicate("v", "bigint", 10, 20) == "`v` >= 10 AND `v` < 20"
    with pytest.raises(extract.StepError, match="watermark column v has MySQL type varchar"):
        extract.window_predicate("v", "varchar", 10, 20)


def test_identifiers_and_strings_are_quoted() -> None:
    """Table names with a schema and odd characters cannot break out of the query."""
    assert extract.quote_ident("shop.or`ders") == "`shop`.`or``ders`"
    assert extract.sql_string("it's \\ x") == "'it''s \\\\ x'"


def good_spec() -> dict[str, Any]:
    """The README's example spec."""
    return {
        "run_key": "shop.orders@1795305600",
        "job_id": "shop.orders",
        "window": {"lo": 1795305600, "hi": 1795305900},
        "attempt": 2,
        "source": {
            "jdbc_url": "jdbc:mysql://127.0.0.1:3306/norris_demo",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:norris/demo-AbCdEf",
            "table": "orders",
            "watermark_column": "updated_at",
            "primary_key": ["id"],
            "soft_delete_column": None,
            "lookback_secs": 120,
        },
        "output_prefix": "file:///tmp/lake/orders/data/window_lo=1795305600/attempt=2",
        "transform": {},
        "accepted_schema": [{"name": "id", "type": "bigint", "nullable": False}],
        "results_table": "norris-results",
    }


def test_readme_example_spec_parses() -> None:
    """The contract's own example is valid."""
    spec = extract.parse_spec(good_spec())
    assert (spec.lo, spec.hi, spec.read_from, spec.attempt) == (1795305600, 1795305900, 1795305480, 2)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("window", "hi"), 1795305600, r"window.lo \(1795305600\) must be below window.hi"),
        (("attempt",), True, "attempt must be an integer, got a boolean"),
        (("source", "primary_key"), [], "source.primary_key must name at least one column"),
        (("source", "lookback_secs"), -1, "source.lookback_secs must not be negative"),
        (("transform",), {"selekt": ["id"]}, "transform has unknown key"),
        (("transform",), {"derive": [{"name": "x"}]}, r"transform.derive\[0\].sql is required"),
        (("accepted_schema",), [{"name": "id", "type": "bigint"}], r"accepted_schema\[0\].nullable is required"),
    ],
)
def test_bad_specs_name_the_field(path: tuple[str, ...], value: Any, message: str) -> None:
    """Every validation error names the field."""
    raw = good_spec()
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(extract.SpecError, match=message):
        extract.parse_spec(raw)


def test_dynamo_item_encoding() -> None:
    """Numbers as N, checks as a list of maps, schema as a JSON string."""
    identity = extract.Identity("k@1", 2, "t", "s3://b/p")
    result = extract.result_item(
        identity,
        "succeeded",
        "ok",
        rows_read=3,
        rows_written=2,
        checks=[extract.check("primary_key_unique", True, "0")],
        schema=[col("id", "bigint", False)],
        verdict=extract.SchemaVerdict(UNCHANGED, ""),
        now=1000,
    )
    item = extract.to_dynamo_item(result)
    assert item["attempt"] == {"N": "2"} and item["rows_written"] == {"N": "2"}
    assert item["finished_at"] == {"N": "1000"} and item["expires_at"] == {"N": str(1000 + 30 * 86400)}
    assert item["checks"] == {
        "L": [{"M": {"name": {"S": "primary_key_unique"}, "passed": {"BOOL": True}, "detail": {"S": "0"}}}]
    }
    assert json.loads(item["schema"]["S"]) == [col("id", "bigint", False)]
    assert set(item) == {
        "run_key",
        "attempt",
        "outcome",
        "rows_read",
        "rows_written",
        "checks",
        "schema",
        "schema_verdict",
        "schema_change",
        "output_prefix",
        "message",
        "finished_at",
        "expires_at",
    }


def test_credentials_are_redacted() -> None:
    """repr hides both; redact removes the password anywhere and the user name as a token."""
    creds = extract.Credentials("app", "pa$$.word")
    assert "app" not in repr(creds) and "pa$$" not in repr(creds)
    assert creds.redact("Access denied for user 'app'@'h' pa$$.word; application") == (
        "Access denied for user '***'@'h' ***; application"
    )


def test_exit_codes() -> None:
    """Only succeeded exits 0, so Livy reports every other outcome as dead."""
    assert [extract.exit_code({"outcome": o}) for o in ("succeeded", "failed", "quarantined")] == [0, 1, 3]


# Groups: a group result item is read by the control plane's Rust adapter (crates/dynamo/src/items.rs,
# `group_result_from_item`); both sides test against this one fixture.
GROUP_FIXTURE = Path(__file__).parent / "fixtures" / "group_result_item.json"


def member_result(run_key: str, outcome: str, verdict: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A member's full result, as ``evaluate`` returns it."""
    return {
        "run_key": run_key,
        "attempt": 3,
        "outcome": outcome,
        "rows_read": 12,
        "rows_written": 12 if outcome == "succeeded" else 0,
        "checks": checks,
        "schema": json.dumps([col("id", "bigint", False)]),
        "schema_verdict": verdict,
        "schema_change": "",
        "output_prefix": f"s3://lake/{run_key.split('@')[0]}/data/window_lo=1795305600/attempt=3",
        "message": "done" if outcome == "succeeded" else "data-quality checks failed: primary key unique",
        "finished_at": 1795306000,
        "expires_at": 1795306000 + 30 * 24 * 3600,
    }


def test_a_group_result_item_is_compact_and_what_the_control_plane_reads() -> None:
    """Only failed checks, the schema only when not unchanged, the message only on failure, no output prefix
    and no empty values, members under short names; equal to the fixture the Rust adapter decodes."""
    passed = {"name": "row counts reconciled", "passed": True, "detail": "12 read, 12 written"}
    failed = {"name": "primary key unique", "passed": False, "detail": "2 duplicate key(s)"}
    members = [
        extract.compact_member(member_result("shop.orders@1795305600", "succeeded", UNCHANGED, [passed])),
        extract.compact_member(member_result("shop.items@1795305600", "failed", FIRST, [passed, failed])),
    ]
    assert not {"schema", "checks", "message", "output_prefix", "schema_change"} & members[0].keys()
    assert members[1]["schema"] != "" and members[1]["checks"] == [failed] and members[1]["message"] != ""
    assert "output_prefix" not in members[1]
    item = extract.to_group_item(
        {
            "run_key": "GROUP#small/300/60/0/17",
            "attempt": 3,
            "finished_at": 1795306001,
            "expires_at": 1795306001 + 30 * 24 * 3600,
            "members": members,
        }
    )
    assert item == json.loads(GROUP_FIXTURE.read_text(encoding="utf-8"))


def test_group_specs_are_checked_before_anything_runs() -> None:
    """The group's own fields are required; members are run specs given the group's attempt and table."""
    ok = {"group_key": "small/300/60/0/17", "attempt": 2, "results_table": "r", "members": []}
    assert extract.parse_group_identity(ok) == extract.GroupIdentity("small/300/60/0/17", 2, "r", 4)
    for broken, reason in [
        ({**ok, "attempt": -1}, "attempt must not be negative"),
        ({**ok, "max_parallel": 0}, "max_parallel must be between 1 and 64"),
        ({**ok, "members": {}}, "members must be a list"),
        ({k: v for k, v in ok.items() if k != "group_key"}, "group_key is required"),
    ]:
        with pytest.raises(extract.SpecError, match=reason):
            extract.parse_group_identity(broken)
    group = extract.parse_group_identity(ok)
    raw = {**ok, "members": [{"run_key": "a@1", "attempt": 9}, {"job_id": "no key"}, "not an object"]}
    assert extract.member_specs(group, raw) == [{"run_key": "a@1", "attempt": 2, "results_table": "r"}]


def test_a_group_spec_comes_inline_or_from_a_file(tmp_path: Path) -> None:
    """A few hundred members outgrow one command-line argument, so the spec may be a file:// (or s3://) URI."""
    spec = {"group_key": "g", "attempt": 1, "results_table": "r", "members": []}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    assert extract.parse_args(["--group-spec-uri", f"file://{path}"]) == ("group", spec)
    assert extract.parse_args(["--group-spec", json.dumps(spec)]) == ("group", spec)
    assert extract.parse_args(["--spec", "{}"]) == ("run", {})
    with pytest.raises(extract.SpecError, match="cannot be read"):
        extract.parse_args(["--group-spec-uri", f"file://{tmp_path}/missing.json"])
    with pytest.raises(extract.SpecError, match="must be a file:// or s3:// URI"):
        extract.parse_args(["--group-spec-uri", "http://example.invalid/spec.json"])
