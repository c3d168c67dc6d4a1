"""Tests of the Livy stand-in, each against a real server process on a free port.

Most tests drive the state machine with fake_spark_submit.py (milliseconds per batch); the tests
named `real_spark` run the pyspark package's spark-submit (~10 s and ~0.5 GiB each, one at a time;
deselect them with `-k "not real_spark"`). Waits are bounded polls of a condition, never bare sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE / "livy_standin.py"
FAKE = HERE / "fake_spark_submit.py"
JOBS = HERE / "jobs"

FINAL = ("success", "dead", "killed")
BATCH_KEYS = {"id", "name", "owner", "proxyUser", "state", "appId", "appInfo", "log"}
REAL_SPARK_TIMEOUT = 180.0

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02
) -> T:
    """Polls `condition` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def descendants(root: int) -> dict[int, str]:
    """Live descendants of `root` with their command lines, from /proc parent links."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] not in "ZX":
                parent[int(entry)] = int(fields[1])
    found: dict[int, str] = {}
    for pid in parent:
        ancestor = parent.get(pid)
        while ancestor is not None and ancestor != root:
            ancestor = parent.get(ancestor)
        if ancestor == root:
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            found[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
    return found


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Standin:
    """A running stand-in process and a small HTTP client for it."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, output: Path) -> None:
        self.proc = proc
        self.port = port
        self.output = output

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> Reply:
        data = (
            raw
            if raw is not None
            else (None if body is None else json.dumps(body).encode())
        )
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return Reply(
                resp.status,
                {k.lower(): v for k, v in resp.getheaders()},
                json.loads(payload) if payload else None,
            )
        finally:
            conn.close()

    def post(self, **fields: Any) -> Reply:
        return self.call("POST", "/batches", fields)

    def submit(self, *steps: str, **fields: Any) -> int:
        """Posts a fake batch playing `steps`; returns its id."""
        fields.setdefault("file", "local:/apps/fake.py")
        reply = self.post(args=list(steps), **fields)
        assert reply.status == 201, reply.body
        return reply.body["id"]

    def get(self, batch: int | str) -> Reply:
        return self.call("GET", f"/batches/{batch}")

    def wait_state(
        self,
        batch: int,
        states: tuple[str, ...],
        timeout: float = 15.0,
        interval: float = 0.02,
    ) -> tuple[dict[str, Any], list[str]]:
        """Polls the batch until its state is one of `states`; returns it and the states seen."""
        seen: list[str] = []

        def reached() -> dict[str, Any] | None:
            reply = self.get(batch)
            assert reply.status == 200, reply.body
            if not seen or seen[-1] != reply.body["state"]:
                seen.append(reply.body["state"])
            return reply.body if reply.body["state"] in states else None

        return wait_until(
            reached, timeout, f"batch {batch} to reach {states}", interval
        ), seen

    def full_log(self, batch: int) -> list[str]:
        reply = self.call("GET", f"/batches/{batch}/log?from=0&size=-1")
        assert reply.status == 200, reply.body
        return reply.body["log"]

    def fake_pids(self, batch: int) -> list[int]:
        """The fake spark-submit's own pid and its children's, from its output."""
        text = "\n".join(self.full_log(batch))
        leader = [int(p) for p in re.findall(r"FAKE_SPARK_SUBMIT pid=(\d+)", text)]
        return leader + [
            int(p) for p in re.findall(r"FAKE_SPARK_SUBMIT child=(\d+)", text)
        ]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(
        "PYSPARK_PYTHON", None
    )  # so the stand-in's default (its own Python) is what is seen
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Standin]]:
    """Starts stand-ins (fake spark-submit unless `real=True`) and stops them after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, real: bool = False) -> Standin:
        n = len(started)
        ready = tmp_path / f"ready-{n}"
        output = tmp_path / f"server-{n}.out"
        cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--ready-file", str(ready)]
        if not real:
            cmd += ["--spark-submit", str(FAKE)]
        cmd += args
        with output.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=server_env(),
                cwd=tmp_path,
            )
        started.append(proc)

        def port() -> int | None:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the stand-in exited early:\n{output.read_text()}"
                )
            return int(ready.read_text()) if ready.exists() else None

        return Standin(proc, wait_until(port, 15, "the stand-in's ready file"), output)

    yield start
    # Every test also checks that stopping the stand-in leaves none of its applications behind.
    problems = []
    for n, proc in enumerate(started):
        if proc.poll() is not None:
            continue
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            problems.append(f"stand-in {n} did not stop on SIGTERM within 30 s")
        if code != 0:
            problems.append(f"stand-in {n} exited {code}")
        try:
            wait_until(
                lambda tree=tree: not any(alive(p) for p in tree),
                10,
                "applications to be gone",
            )
        except AssertionError:
            survivors = {p: c for p, c in tree.items() if alive(p)}
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)
            problems.append(f"stand-in {n} left processes behind: {survivors}")
        if problems:
            problems.append((tmp_path / f"server-{n}.out").read_text()[-3000:])
    assert not problems, "\n".join(problems)


# --- the REST contract ----------------------------------------------------------------------


def test_ready_file_and_stdout_report_the_chosen_port(
    launch: Callable[..., Standin],
) -> None:
    standin = launch()
    assert standin.port > 0
    wait_until(
        lambda: "LIVY_STANDIN_LISTENING" in standin.output.read_text(), 5, "stdout line"
    )
    assert f"LIVY_STANDIN_LISTENING port={standin.port}" in standin.output.read_text()


def test_post_answers_201_with_location_and_a_batch(
    launch: Callable[..., Standin],
) -> None:
    standin = launch()
    first = standin.post(file="local:/apps/a.py", args=["sleep=5"])
    assert first.status == 201
    assert first.headers["location"] == "/batches/0"
    assert first.headers["content-type"].startswith("application/json")
    assert set(first.body) == BATCH_KEYS
    assert first.body["id"] == 0
    assert first.body["state"] == "starting"
    assert first.body["name"] is None and first.body["owner"] is None
    assert first.body["proxyUser"] is None and first.body["appId"] is None
    assert first.body["appInfo"] == {
        "driverLogUrl": None,
        "sparkUiUrl": None,
        "executorLogUrls": None,
    }
    assert all(isinstance(line, str) for line in first.body["log"])

    second = standin.post(
        file="local:/apps/a.py", name="orders", proxyUser="etl", args=["exit=0"]
    )
    assert second.status == 201
    assert second.headers["location"] == "/batches/1"
    assert (second.body["id"], second.body["name"], second.body["proxyUser"]) == (
        1,
        "orders",
        "etl",
    )


def test_batch_fields_become_the_spark_submit_command(
    launch: Callable[..., Standin],
) -> None:
    standin = launch(
        "--master", "local[1]", "--conf", "spark.a=server", "--conf", "spark.b=server"
    )
    batch = standin.submit(
        "exit=0",
        file="local:/apps/job.py",
        name="cmd",
        className="org.example.Main",
        jars=["/j/a.jar", "/j/b.jar"],
        pyFiles=["/p/lib.zip"],
        files=["/f/x.txt"],
        archives=["/a/env.tar.gz"],
        driverMemory="512m",
        driverCores=1,
        executorMemory="1g",
        executorCores=2,
        numExecutors=3,
        queue="etl",
        conf={"spark.b": "request", "spark.ui.enabled": "true"},
    )
    standin.wait_state(batch, FINAL)
    log = standin.full_log(batch)
    argv = json.loads(
        next(x for x in log if x.startswith("FAKE_SPARK_SUBMIT argv=")).split("=", 1)[1]
    )
    events = next(a for a in argv if a.startswith("spark.eventLog.dir="))
    assert events.startswith("spark.eventLog.dir=file:///")
    assert argv == [
        "--master", "local[1]", "--deploy-mode", "client", "--name", "cmd",
        "--conf", "spark.a=server", "--conf", "spark.b=request",
        "--conf", "spark.ui.enabled=false",  # forced: the UI would bind 0.0.0.0
        "--conf", "spark.eventLog.enabled=true", "--conf", events,
        "--driver-memory", "512m", "--driver-cores", "1", "--executor-memory", "1g",
        "--executor-cores", "2", "--num-executors", "3", "--queue", "etl",
        "--jars", "/j/a.jar,/j/b.jar", "--py-files", "/p/lib.zip", "--files", "/f/x.txt",
        "--archives", "/a/env.tar.gz", "--class", "org.example.Main",
        "/apps/job.py", "exit=0",
    ]  # fmt: skip
    env = json.loads(
        next(x for x in log if x.startswith("FAKE_SPARK_SUBMIT env=")).split("=", 1)[1]
    )
    assert env == {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("local:/apps/x.py", "/apps/x.py"),
        ("file:///apps/my%20x.py", "/apps/my x.py"),
        ("/apps/x.py", "/apps/x.py"),
        ("s3://bucket/x.py", "s3://bucket/x.py"),
    ],
)
def test_file_forms(launch: Callable[..., Standin], file: str, expected: str) -> None:
    standin = launch()
    batch = standin.submit("exit=0", file=file)
    standin.wait_state(batch, FINAL)
    line = next(
        x for x in standin.full_log(batch) if x.startswith("FAKE_SPARK_SUBMIT argv=")
    )
    argv = json.loads(line.split("=", 1)[1])
    assert argv[-2:] == [expected, "exit=0"]
    assert "--name" in argv and argv[argv.index("--name") + 1] == f"livy-batch-{batch}"


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b'{"args": ["x"]}', "requirement failed: File is required."),
        (b'{"file": ""}', "requirement failed: File is required."),
        (b"{not json", "Invalid JSON body"),
        (b"[]", "Invalid JSON body"),
        (b"", "Invalid JSON body"),
        (b'{"file": "a.py", "driverCores": "2"}', "driverCores"),
        (b'{"file": "a.py", "args": "x"}', "args"),
        (b'{"file": "a.py", "conf": {"k": 1}}', "conf"),
        (b'{"file": "a.py", "fiel": "typo"}', "fiel"),
    ],
)
def test_bad_requests_are_400_and_create_nothing(
    launch: Callable[..., Standin], raw: bytes, msg: str
) -> None:
    standin = launch()
    reply = standin.call("POST", "/batches", raw=raw)
    assert reply.status == 400
    assert msg in reply.body["msg"]
    assert standin.call("GET", "/batches").body["total"] == 0
    assert standin.submit("exit=0") == 0  # the rejection used no id


def test_duplicate_name_is_rejected_while_held(launch: Callable[..., Standin]) -> None:
    standin = launch()
    assert standin.submit("sleep=600", name="orders-w1") == 0
    dup = standin.post(file="local:/apps/a.py", name="orders-w1")
    assert dup.status == 400
    # As in Livy, the rejected request took id 1.
    assert dup.body == {
        "msg": "Rejected, Reason: Duplicate session name: Some(orders-w1) for session 1"
    }
    assert standin.call("GET", "/batches").body["total"] == 1
    assert standin.call("DELETE", "/batches/0").status == 200
    assert standin.submit("exit=0", name="orders-w1") == 2


def test_unknown_batches_and_paths_are_404(launch: Callable[..., Standin]) -> None:
    standin = launch()
    for method, path in (
        ("GET", "/batches/7"),
        ("GET", "/batches/7/state"),
        ("GET", "/batches/7/log"),
        ("DELETE", "/batches/7"),
    ):
        reply = standin.call(method, path)
        assert (reply.status, reply.body) == (404, {"msg": "Session '7' not found."}), (
            path
        )
    by_name = standin.call("GET", "/batches/no-such-job")
    assert (by_name.status, by_name.body) == (
        404,
        {"msg": "Session 'no-such-job' not found."},
    )
    assert standin.call("GET", "/sessions").status == 404
    assert standin.call("GET", "/batches/0/nope").status == 404
    assert standin.call("PUT", "/batches").status == 405


def test_delete_removes_the_batch(launch: Callable[..., Standin]) -> None:
    standin = launch()
    batch = standin.submit("exit=0")
    standin.wait_state(batch, FINAL)
    reply = standin.call("DELETE", f"/batches/{batch}")
    assert (reply.status, reply.body) == (200, {"msg": "deleted"})
    gone = standin.get(batch)
    assert (gone.status, gone.body) == (404, {"msg": f"Session '{batch}' not found."})
    assert standin.call("DELETE", f"/batches/{batch}").status == 404


def test_list_pages_with_from_size_and_total(launch: Callable[..., Standin]) -> None:
    standin = launch()
    for _ in range(3):
        standin.submit("sleep=600")
    everything = standin.call("GET", "/batches").body
    assert (everything["from"], everything["total"]) == (0, 3)
    assert [b["id"] for b in everything["sessions"]] == [0, 1, 2]
    assert all(set(b) == BATCH_KEYS for b in everything["sessions"])
    page = standin.call("GET", "/batches?from=1&size=1").body
    assert (page["from"], page["total"], [b["id"] for b in page["sessions"]]) == (
        1,
        3,
        [1],
    )
    tail = standin.call("GET", "/batches?from=2&size=100").body
    assert [b["id"] for b in tail["sessions"]] == [2]
    assert standin.call("GET", "/batches?from=5").body["sessions"] == []
    assert standin.call("GET", "/batches?size=0").body["sessions"] == []
    assert standin.call("GET", "/batches?from=x").status == 400


def test_lookup_by_name_state_and_log(
    launch: Callable[..., Standin], tmp_path: Path
) -> None:
    standin = launch("--log-dir", str(tmp_path / "logs"))
    batch = standin.submit("lines=150", name="shop.orders-2026")
    standin.wait_state(batch, FINAL)

    by_name = standin.get("shop.orders-2026")
    assert by_name.status == 200 and by_name.body["id"] == batch
    state = standin.call("GET", "/batches/shop.orders-2026/state")
    assert state.body == {"id": batch, "state": "success"}
    assert standin.call("GET", f"/batches/{batch}/state").body == {
        "id": batch,
        "state": "success",
    }

    full = standin.full_log(batch)
    numbered = [x for x in full if x.startswith("line ")]
    assert numbered == [f"line {n}" for n in range(150)]
    # Livy's sections: stdout first, then the (merged, so empty) stderr and YARN diagnostics.
    assert full[0] == "stdout: " and full[-2:] == ["\nstderr: ", "\nYARN Diagnostics: "]
    total = len(full)

    first = standin.call("GET", f"/batches/{batch}/log?from=0&size=5").body
    assert first == {"id": batch, "from": 0, "total": total, "log": full[:5]}
    middle = standin.call("GET", f"/batches/{batch}/log?from=10&size=3").body
    assert (middle["from"], middle["log"]) == (10, full[10:13])
    # No `from`: the last `size` lines, 100 by default, as Livy does.
    last = standin.call("GET", f"/batches/{batch}/log").body
    assert (last["from"], last["total"], last["log"]) == (
        total - 100,
        total,
        full[-100:],
    )
    assert by_name.body["log"] == full[-10:]

    written = (tmp_path / "logs" / f"{batch}.log").read_text().splitlines()
    assert written == [x for x in full if not x.startswith(("stdout: ", "\n"))]


def test_connection_is_kept_alive_across_requests(
    launch: Callable[..., Standin],
) -> None:
    standin = launch()
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=30)
    try:
        sock = None
        for method, path, body, status in (
            ("GET", "/batches", None, 200),
            ("GET", "/batches/3", None, 404),
            ("POST", "/batches", b"{bad", 400),
            ("POST", "/batches", b'{"file": "a.py", "args": ["exit=0"]}', 201),
            ("GET", "/batches/0/state", None, 200),
        ):
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            json.loads(resp.read())
            assert resp.status == status, path
            assert not resp.will_close
            sock = sock or conn.sock
            assert conn.sock is sock  # the same TCP connection all along
    finally:
        conn.close()


# --- the state machine (fake spark-submit) --------------------------------------------------


def test_exit_zero_goes_starting_running_success(
    launch: Callable[..., Standin],
) -> None:
    standin = launch()
    reply = standin.post(
        file="local:/apps/a.py", args=["sleep=0.5", "context", "sleep=1", "exit=0"]
    )
    assert reply.body["state"] == "starting"
    final, seen = standin.wait_state(reply.body["id"], FINAL)
    assert seen == ["starting", "running", "success"]
    assert re.fullmatch(r"local-\d{13}", final["appId"])


def test_non_zero_exit_is_dead(launch: Callable[..., Standin]) -> None:
    standin = launch()
    early = standin.submit("exit=1")  # before any SparkContext: never running
    late = standin.submit("context", "sleep=0.5", "exit=3")
    final, seen = standin.wait_state(early, FINAL)
    assert (final["state"], final["appId"]) == ("dead", None)
    assert "running" not in seen
    final, _ = standin.wait_state(late, FINAL)
    assert final["state"] == "dead" and final["appId"] is not None


def test_spark_submit_that_cannot_start_is_dead(
    launch: Callable[..., Standin], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-spark-submit"
    standin = launch("--spark-submit", str(missing))
    reply = standin.post(file="local:/apps/a.py")
    assert (reply.status, reply.body["state"]) == (201, "dead")
    assert any(
        "could not be started" in line for line in standin.full_log(reply.body["id"])
    )


def test_delete_kills_the_whole_application(launch: Callable[..., Standin]) -> None:
    standin = launch()
    batch = standin.submit("context", "child", "child-own-pg", "sleep=600")
    standin.wait_state(batch, ("running",))
    pids = wait_until(
        lambda: len(standin.fake_pids(batch)) == 3, 10, "the fake's children"
    )
    pids = standin.fake_pids(batch)
    assert all(alive(pid) for pid in pids)

    started = time.monotonic()
    reply = standin.call("DELETE", f"/batches/{batch}")
    assert (reply.status, reply.body) == (200, {"msg": "deleted"})
    assert (
        time.monotonic() - started < 5
    )  # SIGTERM sufficed: no wait for the SIGKILL grace
    wait_until(
        lambda: not any(alive(pid) for pid in pids), 5, "the application to be gone"
    )
    assert standin.get(batch).status == 404


def test_too_many_batches_starting_is_rejected(launch: Callable[..., Standin]) -> None:
    standin = launch("--max-creating", "1")
    slow = standin.submit("sleep=600")  # stays `starting`
    rejected = standin.post(file="local:/apps/a.py", args=["exit=0"])
    assert (rejected.status, rejected.body) == (
        400,
        {"msg": "Rejected, too many sessions are being created!"},
    )
    assert standin.call("DELETE", f"/batches/{slow}").status == 200
    running = standin.submit("context", "sleep=600")
    standin.wait_state(running, ("running",))
    # A running batch is no longer being created.
    assert standin.post(file="local:/apps/a.py", args=["sleep=600"]).status == 201


def test_finished_batches_are_forgotten_after_retention(
    launch: Callable[..., Standin],
) -> None:
    standin = launch("--retain-finished-secs", "1")
    long_running = standin.submit("context", "sleep=600")
    finished = standin.submit("exit=0")
    standin.wait_state(finished, ("success",))
    wait_until(
        lambda: standin.get(finished).status == 404, 10, "the finished batch to go"
    )
    # Older than the retention time but not finished: kept.
    assert standin.get(long_running).body["state"] == "running"
    assert standin.call("GET", "/batches").body["total"] == 1


def test_restart_forgets_everything_and_ids_restart_at_zero(
    launch: Callable[..., Standin],
) -> None:
    first = launch()
    assert [first.submit("exit=0"), first.submit("exit=0")] == [0, 1]
    first.wait_state(1, FINAL)
    assert first.stop() == 0

    second = launch()
    assert second.call("GET", "/batches").body == {
        "from": 0,
        "total": 0,
        "sessions": [],
    }
    assert second.get(1).status == 404
    assert second.submit("exit=0") == 0


def test_sigterm_kills_running_applications(launch: Callable[..., Standin]) -> None:
    standin = launch()
    running = standin.submit("context", "child", "child-own-pg", "sleep=600")
    starting = standin.submit("child", "sleep=600")
    standin.wait_state(running, ("running",))
    wait_until(
        lambda: len(standin.fake_pids(running)) == 3, 10, "the first fake's children"
    )
    wait_until(
        lambda: len(standin.fake_pids(starting)) == 2, 10, "the second fake's child"
    )
    pids = standin.fake_pids(running) + standin.fake_pids(starting)
    assert all(alive(pid) for pid in pids)

    assert standin.stop(signal.SIGTERM) == 0
    wait_until(
        lambda: not any(alive(pid) for pid in pids), 5, "the applications to be gone"
    )


# --- real spark-submit ------------------------------------------------------------------------


def test_real_spark_job_succeeds_and_writes_its_output(
    launch: Callable[..., Standin], tmp_path: Path
) -> None:
    standin = launch(real=True)
    out = tmp_path / "out.txt"
    reply = standin.post(
        file=str(JOBS / "write_count.py"),
        args=[str(out)],
        name="real-ok",
        driverMemory="512m",
        conf={"spark.sql.shuffle.partitions": "2"},
    )
    assert reply.status == 201
    final, seen = standin.wait_state(reply.body["id"], FINAL, REAL_SPARK_TIMEOUT, 0.2)
    log = standin.full_log(reply.body["id"])
    assert final["state"] == "success", "\n".join(log[-40:])
    assert seen[:2] == ["starting", "running"]
    assert re.fullmatch(r"local-\d{13}", final["appId"])
    assert out.read_text() == "sum=499500\n"
    assert any("Submitted application: real-ok" in line for line in log)


def test_real_spark_job_that_raises_is_dead(launch: Callable[..., Standin]) -> None:
    standin = launch(real=True)
    batch = standin.submit(file=str(JOBS / "fail.py"), driverMemory="512m")
    final, seen = standin.wait_state(batch, FINAL, REAL_SPARK_TIMEOUT, 0.2)
    assert final["state"] == "dead"
    assert "running" in seen and final["appId"] is not None
    assert any("failed on purpose" in line for line in standin.full_log(batch))


def test_real_spark_delete_kills_jvm_and_python_workers(
    launch: Callable[..., Standin],
) -> None:
    standin = launch(real=True)
    batch = standin.submit(file=str(JOBS / "hang.py"), driverMemory="512m")
    wait_until(
        lambda: "LIVY_STANDIN_TEST_READY" in standin.full_log(batch),
        REAL_SPARK_TIMEOUT,
        "the job to start its Python workers",
        interval=0.2,
    )
    tree = descendants(standin.proc.pid)
    commands = list(tree.values())
    assert any("org.apache.spark.deploy.SparkSubmit" in c for c in commands), commands
    assert any("pyspark.daemon" in c for c in commands), (
        commands
    )  # its own process group
    assert any("hang.py" in c and "java" not in c for c in commands), (
        commands
    )  # the driver

    reply = standin.call("DELETE", f"/batches/{batch}")
    assert (reply.status, reply.body) == (200, {"msg": "deleted"})
    wait_until(
        lambda: not any(alive(pid) for pid in tree), 10, "the application to be gone"
    )
    assert standin.get(batch).status == 404
