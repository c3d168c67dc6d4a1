#!/usr/bin/env python3
"""A local stand-in for the Apache Livy server of an EMR cluster (batch REST API only).

It speaks Livy 0.8/0.9's ``/batches`` API (JSON) and runs each batch with a real ``spark-submit``
(by default the one inside the installed ``pyspark`` package) in local mode, so norris's Livy client
and its PySpark jobs can be exercised end to end on one machine. It is written from the documented
contract (docs/reference "Apache Livy batch REST API"), not from norris's own types, so a test of the
Rust client against it checks the client against Livy, not against itself.

Livy behaviours it keeps on purpose, because norris must cope with them: state is in memory only
(``recovery.mode=off``: a restart forgets every batch and ids restart at 0), finished batches are
forgotten after ``--retain-finished-secs``, a DELETE kills the application and removes the batch, and
stopping the server (SIGTERM/SIGINT) kills every running application, as losing an EMR cluster does.

Only the standard library is used, so it runs from any Python 3.11 without a venv of its own.
See README.md next to this file for what it does not emulate.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

# A batch goes from `starting` to `running` when spark-submit's output shows that the SparkContext
# registered the application (Spark logs this at INFO under its default log4j profile, right after
# the driver started), or when an application id shows up, whichever comes first. This is the local
# counterpart of Livy seeing the YARN application reach RUNNING.
RUNNING_MARKER = re.compile(r"SparkContext: Submitted application: ")
# Local-mode application ids look like `local-1795334655927`; YARN ones like
# `application_1700000000000_0001`. Spark names its event log after the id, and the event log writer
# logs that file name at INFO (`.../eventlog_v2_local-<ms>/...`, hence no leading word boundary),
# which is why the stand-in turns event logging on (see build_command).
APP_ID = re.compile(r"(local-\d{10,}|application_\d+_\d+)")

FINAL_STATES = frozenset({"success", "dead", "killed"})
# Lines kept per batch for `/log` paging; older lines are dropped (Livy itself keeps only
# `livy.cache-log.size` = 200 lines), the --log-dir file keeps everything.
LOG_CAP = 5000
# Livy's batch view carries the last 10 log lines.
VIEW_LOG_LINES = 10
# Livy's `/log` pages 100 lines by default.
DEFAULT_LOG_PAGE = 100
# How long a killed application gets to stop on SIGTERM (Spark runs its shutdown hooks) before
# SIGKILL.
KILL_GRACE_SECS = 5.0
# After spark-submit exits, how long to wait for the rest of its output before settling the state.
OUTPUT_DRAIN_SECS = 2.0

LIST_FIELDS = ("args", "jars", "pyFiles", "files", "archives")
STR_FIELDS = (
    "file",
    "proxyUser",
    "className",
    "driverMemory",
    "executorMemory",
    "queue",
    "name",
)
INT_FIELDS = ("driverCores", "executorCores", "numExecutors")
KNOWN_FIELDS = frozenset((*LIST_FIELDS, *STR_FIELDS, *INT_FIELDS, "conf"))


class RequestError(Exception):
    """A client mistake: answered with this status and `{"msg": ...}`, as Livy does."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


@dataclass(frozen=True)
class Config:
    """What the command line fixed for the lifetime of the server."""

    spark_submit: list[str]
    master: str
    conf: dict[str, str]
    retain_finished_secs: float
    max_creating: int
    log_dir: Path | None
    event_log_dir: Path


@dataclass
class Batch:
    """One batch as the server holds it. Fields other than `exited` are guarded by the table lock."""

    id: int
    name: str | None
    proxy_user: str | None
    state: str = "starting"
    app_id: str | None = None
    lines: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=LOG_CAP)
    )
    process: subprocess.Popen[bytes] | None = None
    ended_at: float | None = None
    kill_requested: bool = False
    # Set once spark-submit has been reaped and the final state recorded (or it never started).
    exited: threading.Event = field(default_factory=threading.Event)

    def log_lines(self) -> list[str]:
        """The log as Livy shows it for a YARN batch: stdout, then the (empty, merged) stderr and
        YARN diagnostics sections, so a client sees the same shape as on EMR."""
        return ["stdout: ", *self.lines, "\nstderr: ", "\nYARN Diagnostics: "]

    def view(self) -> dict[str, Any]:
        """The Batch object of Livy's REST API."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": None,
            "proxyUser": self.proxy_user,
            "state": self.state,
            "appId": self.app_id,
            "appInfo": {
                "driverLogUrl": None,
                "sparkUiUrl": None,
                "executorLogUrls": None,
            },
            "log": self.log_lines()[-VIEW_LOG_LINES:],
        }


def validate_request(body: bytes) -> dict[str, Any]:
    """Parses a `POST /batches` body, refusing what Livy's Jackson binding would refuse.

    Stricter than Livy in one way: values must have their documented JSON types (no "2" for an int,
    no number for a conf value), so a client sending sloppy types is caught here rather than on EMR.
    Unknown fields are refused, as Jackson does for Livy's CreateBatchRequest.
    """
    try:
        req = json.loads(body.decode("utf-8") if body else "")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"Invalid JSON body: {exc}") from None
    if not isinstance(req, dict):
        raise RequestError(400, "Invalid JSON body: expected an object")
    unknown = sorted(set(req) - KNOWN_FIELDS)
    if unknown:
        raise RequestError(
            400, f'Unrecognized field "{unknown[0]}" in the batch request'
        )
    # A JSON null is an absent optional field, as with Livy's Option fields.
    req = {k: v for k, v in req.items() if v is not None}
    for key in STR_FIELDS:
        if key in req and not isinstance(req[key], str):
            raise RequestError(400, f"Field {key} must be a string")
    for key in INT_FIELDS:
        if key in req and (not isinstance(req[key], int) or isinstance(req[key], bool)):
            raise RequestError(400, f"Field {key} must be an integer")
    for key in LIST_FIELDS:
        if key in req and not (
            isinstance(req[key], list) and all(isinstance(v, str) for v in req[key])
        ):
            raise RequestError(400, f"Field {key} must be a list of strings")
    if "conf" in req and not (
        isinstance(req["conf"], dict)
        and all(isinstance(v, str) for v in req["conf"].values())
    ):
        raise RequestError(400, "Field conf must be an object of string values")
    if not req.get("file"):
        raise RequestError(400, "requirement failed: File is required.")
    return req


def local_path(file: str) -> str:
    """Turns Livy's `local:` and `file://` forms into the plain path spark-submit runs; other
    schemes (s3://, hdfs://) are passed on and fail in spark-submit as they would without that
    filesystem."""
    if file.startswith("local:"):
        return file[len("local:") :]
    if file.startswith("file:"):
        return unquote(urlsplit(file).path)
    return file


def build_command(config: Config, batch_id: int, req: dict[str, Any]) -> list[str]:
    """The spark-submit command line for a validated batch request.

    Client deploy mode on the configured local master. The request's conf overrides the server's
    `--conf`. Two confs are imposed: `spark.ui.enabled=false` (the UI would bind 0.0.0.0:4040) and,
    unless the request says otherwise, event logging into the server's event log directory, because
    the event log writer's INFO line is where a local-mode application id can be read.
    """
    conf = {**config.conf, **req.get("conf", {})}
    if "spark.eventLog.enabled" not in conf:
        conf["spark.eventLog.enabled"] = "true"
        conf.setdefault("spark.eventLog.dir", config.event_log_dir.as_uri())
    conf["spark.ui.enabled"] = "false"
    cmd = [
        *config.spark_submit,
        "--master",
        config.master,
        "--deploy-mode",
        "client",
        "--name",
        req.get("name") or f"livy-batch-{batch_id}",
    ]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    for key, flag in (
        ("driverMemory", "--driver-memory"),
        ("driverCores", "--driver-cores"),
        ("executorMemory", "--executor-memory"),
        ("executorCores", "--executor-cores"),
        ("numExecutors", "--num-executors"),
        ("queue", "--queue"),
    ):
        if key in req:
            cmd += [flag, str(req[key])]
    for key, flag in (
        ("jars", "--jars"),
        ("pyFiles", "--py-files"),
        ("files", "--files"),
        ("archives", "--archives"),
    ):
        if req.get(key):
            cmd += [flag, ",".join(req[key])]
    if "className" in req:
        cmd += ["--class", req["className"]]
    cmd.append(local_path(req["file"]))
    cmd += req.get("args", [])
    return cmd


def batch_environment() -> dict[str, str]:
    """The server's environment plus what local Spark needs: loopback only, and the server's own
    Python for PySpark unless one is already chosen."""
    env = dict(os.environ)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def process_tree(root: int) -> set[tuple[int, int]]:
    """`root` and its live descendants as (pid, start time) pairs.

    The process group alone is not the whole application: PySpark's worker daemon moves itself
    into a process group of its own, so descendants are found through parent links as well.
    """
    children: dict[int, list[int]] = collections.defaultdict(list)
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is None or stat[0] in ("Z", "X"):
            continue
        children[stat[1]].append(int(entry))
        starts[int(entry)] = stat[2]
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            found.add((pid, starts[pid]))
        todo.extend(children.get(pid, ()))
    return found


def signal_application(pgid: int, tree: set[tuple[int, int]], sig: int) -> None:
    """Sends `sig` to the process group and to each process of `tree` that is still the same
    process (same start time), so a recycled pid is never hit."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid, start in tree:
        stat = _proc_stat(pid)
        if stat is None or stat[2] != start:
            continue
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class BatchTable:
    """Every batch the server holds, in memory only, behind one lock."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.batches: dict[int, Batch] = {}
        self.next_id = 0
        self.shutting_down = False

    # --- lookups -----------------------------------------------------------------------------

    def _find(self, key: str) -> Batch:
        """A batch by id, or by name when `key` is not a number (Livy 0.8+); 404 otherwise.
        Caller holds the lock."""
        if key.isdigit():
            batch = self.batches.get(int(key))
        else:
            batch = next((b for b in self.batches.values() if b.name == key), None)
        if batch is None:
            raise RequestError(404, f"Session '{key}' not found.")
        return batch

    def view(self, key: str) -> dict[str, Any]:
        with self.lock:
            return self._find(key).view()

    def state(self, key: str) -> dict[str, Any]:
        with self.lock:
            batch = self._find(key)
            return {"id": batch.id, "state": batch.state}

    def log(self, key: str, start: int | None, size: int | None) -> dict[str, Any]:
        """Livy's log paging: `size` defaults to 100 (negative: all), a missing or negative `from`
        means the last `size` lines, and `total` counts every line held."""
        with self.lock:
            batch = self._find(key)
            lines = batch.log_lines()
        size = DEFAULT_LOG_PAGE if size is None else size
        if size < 0:
            size = len(lines)
        if start is None or start < 0:
            start = max(0, len(lines) - size)
        return {
            "id": batch.id,
            "from": start,
            "total": len(lines),
            "log": lines[start : start + size],
        }

    def list(self, start: int, size: int) -> dict[str, Any]:
        """Livy's session list: `total` counts every batch held, `sessions` is the page in id order."""
        with self.lock:
            batches = sorted(self.batches.values(), key=lambda b: b.id)
            page = batches[max(0, start) : max(0, start + size)] if size > 0 else []
            return {
                "from": start,
                "total": len(batches),
                "sessions": [b.view() for b in page],
            }

    # --- creation ----------------------------------------------------------------------------

    def create(self, body: bytes) -> dict[str, Any]:
        """Registers a batch and launches its spark-submit; answers the Batch object (state
        `starting`, or `dead` if spark-submit could not be launched).

        The launch happens under the lock so a concurrent shutdown either sees the process and
        kills it, or refuses the request: no application can outlive the server that way.
        """
        req = validate_request(body)
        name = req.get("name")
        with self.lock:
            if self.shutting_down:
                raise RequestError(503, "Rejected, the server is shutting down.")
            starting = sum(1 for b in self.batches.values() if b.state == "starting")
            if starting >= self.config.max_creating:
                raise RequestError(
                    400, "Rejected, too many sessions are being created!"
                )
            # As in Livy, the id is taken before the name is checked: a rejected duplicate uses one.
            batch_id = self.next_id
            self.next_id += 1
            if name is not None and any(b.name == name for b in self.batches.values()):
                raise RequestError(
                    400,
                    f"Rejected, Reason: Duplicate session name: Some({name}) for session {batch_id}",
                )
            batch = Batch(id=batch_id, name=name, proxy_user=req.get("proxyUser"))
            self.batches[batch_id] = batch
            cmd = build_command(self.config, batch_id, req)
            log_file = self._open_log_file(batch_id)
            try:
                batch.process = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=batch_environment(),
                    start_new_session=True,
                )
            except OSError as exc:
                self._append(
                    batch, log_file, f"spark-submit could not be started: {exc}"
                )
                if log_file is not None:
                    log_file.close()
                batch.state = "dead"
                batch.ended_at = time.monotonic()
                batch.exited.set()
                return batch.view()
            threading.Thread(
                target=self._watch,
                args=(batch, log_file),
                name=f"batch-{batch_id}",
                daemon=True,
            ).start()
            return batch.view()

    def _open_log_file(self, batch_id: int) -> IO[str] | None:
        if self.config.log_dir is None:
            return None
        # Closed by the batch's output reader once spark-submit's output ends.
        return open(
            self.config.log_dir / f"{batch_id}.log", "w", encoding="utf-8", buffering=1
        )

    def _append(self, batch: Batch, log_file: IO[str] | None, line: str) -> None:
        """Records one output line and the state changes it reveals. Caller holds the lock."""
        batch.lines.append(line)
        if log_file is not None:
            log_file.write(line + "\n")
        if batch.app_id is None:
            match = APP_ID.search(line)
            if match:
                batch.app_id = match.group(1)
        if batch.state == "starting" and (
            batch.app_id is not None or RUNNING_MARKER.search(line)
        ):
            batch.state = "running"

    def _watch(self, batch: Batch, log_file: IO[str] | None) -> None:
        """Follows one spark-submit: its output line by line, then its exit code, which settles the
        final state (exit 0 `success`, otherwise `dead`, `killed` if a kill was asked for)."""
        process = batch.process
        assert process is not None and process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            try:
                for raw in stdout:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    with self.lock:
                        self._append(batch, log_file, line)
            finally:
                stdout.close()
                if log_file is not None:
                    with self.lock:
                        log_file.close()

        reader = threading.Thread(
            target=read, name=f"batch-{batch.id}-output", daemon=True
        )
        reader.start()
        code = process.wait()
        # A descendant that outlives spark-submit could hold the pipe open: do not wait for it.
        reader.join(OUTPUT_DRAIN_SECS)
        with self.lock:
            if batch.kill_requested:
                batch.state = "killed"
            elif code == 0:
                batch.state = "success"
            else:
                batch.state = "dead"
            batch.ended_at = time.monotonic()
        batch.exited.set()

    # --- deletion, forgetting, shutdown ------------------------------------------------------

    def delete(self, key: str) -> dict[str, Any]:
        """Kills the application (if still running) and removes the batch, as Livy does; answers
        once the application is gone."""
        with self.lock:
            batch = self._find(key)
        self._kill([batch])
        with self.lock:
            self.batches.pop(batch.id, None)
        return {"msg": "deleted"}

    def _kill(self, batches: list[Batch]) -> None:
        """SIGTERM to each application (its process group and every descendant), SIGKILL to what
        is left after KILL_GRACE_SECS, and SIGKILL to stragglers that outlived spark-submit."""
        targets: list[tuple[Batch, int, set[tuple[int, int]]]] = []
        with self.lock:
            for batch in batches:
                if batch.process is None or batch.exited.is_set():
                    continue
                batch.kill_requested = True
                targets.append((batch, batch.process.pid, set()))
        for _, pgid, tree in targets:
            tree |= process_tree(pgid)
            signal_application(pgid, tree, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_SECS
        for batch, pgid, tree in targets:
            if not batch.exited.wait(max(0.0, deadline - time.monotonic())):
                tree |= process_tree(pgid)
                signal_application(pgid, tree, signal.SIGKILL)
        for batch, pgid, tree in targets:
            batch.exited.wait(KILL_GRACE_SECS)
            signal_application(pgid, tree, signal.SIGKILL)

    def expire(self) -> None:
        """Forgets finished batches `retain_finished_secs` after they ended (Livy's session GC)."""
        now = time.monotonic()
        with self.lock:
            for batch_id in [
                b.id
                for b in self.batches.values()
                if b.ended_at is not None
                and now - b.ended_at >= self.config.retain_finished_secs
            ]:
                del self.batches[batch_id]

    def shutdown(self) -> None:
        """Refuses new batches and kills every running application: with recovery off, Livy
        stopping (or the cluster going away) takes its batches with it."""
        with self.lock:
            self.shutting_down = True
            batches = list(self.batches.values())
        self._kill(batches)


class Api:
    """Routes Livy's batch endpoints to the table; HTTP-free so the rules are in one place."""

    def __init__(self, table: BatchTable) -> None:
        self.table = table

    def handle(
        self, method: str, target: str, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, extra headers) for one request."""
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        self.table.expire()
        try:
            if parts[0] != "batches" or len(parts) > 3:
                raise RequestError(404, f"Not found: {url.path}")
            if len(parts) == 1:
                if method == "GET":
                    start = _int_param(query, "from", 0)
                    size = _int_param(query, "size", 100)
                    return 200, self.table.list(start, size), {}
                if method == "POST":
                    view = self.table.create(body)
                    return 201, view, {"Location": f"/batches/{view['id']}"}
                raise RequestError(405, f"Method {method} not allowed on /batches")
            key = parts[1]
            if len(parts) == 2:
                if method == "GET":
                    return 200, self.table.view(key), {}
                if method == "DELETE":
                    return 200, self.table.delete(key), {}
                raise RequestError(
                    405, f"Method {method} not allowed on /batches/{key}"
                )
            if method != "GET":
                raise RequestError(405, f"Method {method} not allowed on {url.path}")
            if parts[2] == "state":
                return 200, self.table.state(key), {}
            if parts[2] == "log":
                start = _int_param(query, "from", None)
                size = _int_param(query, "size", None)
                return 200, self.table.log(key, start, size), {}
            raise RequestError(404, f"Not found: {url.path}")
        except RequestError as exc:
            return exc.status, {"msg": exc.msg}, {}


def _int_param(
    query: dict[str, list[str]], name: str, default: int | None
) -> int | None:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise RequestError(400, f"Query parameter {name} must be an integer") from None


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as Livy's Jetty does, so pooled client connections work."""

    protocol_version = "HTTP/1.1"
    server: StandinServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            status, payload, headers = 400, {"msg": "Unreadable request body"}, {}
        else:
            try:
                status, payload, headers = self.server.api.handle(
                    method, self.path, body
                )
            except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
                status, payload, headers = 500, {"msg": f"Internal error: {exc!r}"}, {}
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"livy-standin {self.address_string()} {format % args}\n")


class StandinServer(ThreadingHTTPServer):
    """The HTTP server, carrying the API its handlers use."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.api = api


def default_spark_submit() -> str:
    """The spark-submit inside the installed pyspark package, found without importing pyspark."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyspark is not installed: pass --spark-submit PATH")
    return str(
        Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Local stand-in for Apache Livy's batch REST API, running real spark-submit."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8998, help="port; 0 picks a free one"
    )
    parser.add_argument(
        "--spark-submit",
        help="spark-submit to run (default: pyspark's); a .py file is run with this Python",
    )
    parser.add_argument("--retain-finished-secs", type=float, default=600.0)
    parser.add_argument("--max-creating", type=int, default=100)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="K=V",
        help="Spark conf for every batch",
    )
    parser.add_argument(
        "--log-dir", type=Path, help="write each batch's output to DIR/<id>.log"
    )
    parser.add_argument(
        "--ready-file", type=Path, help="write the port here once listening"
    )
    args = parser.parse_args(argv)
    for item in args.conf:
        if "=" not in item:
            parser.error(f"--conf expects K=V, got {item!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spark_submit = args.spark_submit or default_spark_submit()
    command = (
        [sys.executable, spark_submit]
        if spark_submit.endswith(".py")
        else [spark_submit]
    )
    own_event_dir = args.log_dir is None
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        event_log_dir = (args.log_dir / "spark-events").resolve()
        event_log_dir.mkdir(exist_ok=True)
    else:
        event_log_dir = Path(tempfile.mkdtemp(prefix="livy-standin-events-"))
    config = Config(
        spark_submit=command,
        master=args.master,
        conf=dict(item.split("=", 1) for item in args.conf),
        retain_finished_secs=args.retain_finished_secs,
        max_creating=args.max_creating,
        log_dir=args.log_dir,
        event_log_dir=event_log_dir,
    )
    table = BatchTable(config)
    server = StandinServer((args.host, args.port), Api(table))
    port = server.server_address[1]

    # SIGTERM/SIGINT only set a flag; the wakeup fd (written by the interpreter itself, no locks)
    # wakes the main thread. Raising from the handler instead is unsafe: it can land inside
    # socketserver's per-request `except Exception`, which swallows it, and the server never stops.
    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    # Forget finished batches on time even when nobody asks (requests also expire lazily).
    janitor_stop = threading.Event()
    interval = min(1.0, max(0.05, config.retain_finished_secs / 4))

    def janitor() -> None:
        while not janitor_stop.wait(interval):
            table.expire()

    # A short poll interval: server.shutdown() waits for it, and every stop would pay it.
    serving = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="http", daemon=True
    )
    try:
        threading.Thread(target=janitor, name="janitor", daemon=True).start()
        serving.start()
        if args.ready_file is not None:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(f"{port}\n")
            # Atomic: a reader never sees a half-written port.
            tmp.replace(args.ready_file)
        print(f"LIVY_STANDIN_LISTENING port={port}", flush=True)
        while not stop_requested:
            wake_read.recv(64)
    finally:
        janitor_stop.set()
        table.shutdown()
        if serving.is_alive():
            server.shutdown()
        server.server_close()
        if own_event_dir:
            shutil.rmtree(event_log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
