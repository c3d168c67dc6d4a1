#!/usr/bin/env python3
"""Local EMR clusters: a moto EMR record plus a Livy stand-in of its own.

moto's EMR keeps only bookkeeping: a cluster is WAITING as soon as RunJobFlow returns and
TERMINATED as soon as TerminateJobFlows returns, and nothing runs anywhere. This supervisor gives
those records a body. It polls moto's EMR (boto3, endpoint from AWS_ENDPOINT_URL) for the
clusters tagged `norris:deployment=<deployment>`:

- a cluster that is up (WAITING or RUNNING) and has no stand-in yet gets one (the Livy stand-in
  of tests/local/livy_standin, on 127.0.0.1 and a free port), and its `norris:livy-endpoint` tag
  is set to it (EMR AddTags), as a load balancer in front of Livy would be named on a real
  cluster: norris reads that tag and has no code path of its own for the local world;
- a cluster that ends (terminated by norris, by a test playing spot loss, by a person) loses its
  stand-in: SIGTERM, which makes the stand-in kill every Spark application it runs, and SIGKILL
  for any process of its tree still alive after the stand-in exited. Running jobs really die.

On SIGTERM or SIGINT it stops every stand-in it started and exits 0. The stand-ins also get
SIGTERM if the supervisor dies without cleaning up (Linux parent-death signal).

Its state is written (atomically) to --state-file as JSON, for tests and the demo:
`{"deployment", "pid", "clusters": {<emr id>: {"endpoint", "port", "pid", "state",
"started_at", "stopped_at", "exit_code"}}}` with state `running`, `stopping` or `stopped` and
times in Unix seconds.

Only the standard library and boto3 (the local world's venv). See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

HERE = Path(__file__).resolve().parent
STANDIN = HERE.parent / "livy_standin" / "livy_standin.py"

DEPLOYMENT_TAG = "norris:deployment"
ENDPOINT_TAG = "norris:livy-endpoint"
# Livy runs once the cluster is up; a cluster in any other state gets no stand-in (yet).
UP_STATES = ("RUNNING", "WAITING")
# What ListClusters is asked for: every state in which a cluster may still hold a stand-in.
LIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
# How long a stand-in gets to start listening, and to stop (it kills its applications with a
# 5 s grace before SIGKILL) before the supervisor kills its process tree itself.
STANDIN_START_SECS = 30.0
STANDIN_STOP_SECS = 30.0
PR_SET_PDEATHSIG = 1


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    sys.stderr.write(f"[cluster-supervisor {stamp}] {msg}\n")
    sys.stderr.flush()


# --- processes ------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def process_tree(root: int) -> set[tuple[int, int]]:
    """`root` and its live descendants as (pid, start time) pairs, from /proc parent links."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is None or stat[0] in ("Z", "X"):
            continue
        children.setdefault(stat[1], []).append(int(entry))
        starts[int(entry)] = stat[2]
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            found.add((pid, starts[pid]))
        todo.extend(children.get(pid, ()))
    return found


def alive(proc: tuple[int, int]) -> bool:
    """Whether the process is still the same live process (same start time, not a zombie)."""
    stat = _proc_stat(proc[0])
    return stat is not None and stat[2] == proc[1] and stat[0] not in ("Z", "X")


def kill_survivors(tree: set[tuple[int, int]]) -> list[int]:
    """SIGKILLs every process of `tree` still alive; returns their pids."""
    killed = []
    for proc in tree:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc[0], signal.SIGKILL)
                killed.append(proc[0])
    return killed


def _die_with_parent() -> None:
    """Runs in the stand-in's child process before exec: SIGTERM when the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- local clusters -------------------------------------------------------------------------


@dataclass
class LocalCluster:
    """One cluster's stand-in."""

    cluster_id: str
    process: subprocess.Popen[bytes]
    port: int
    started_at: float
    state: str = "running"
    stopping_since: float | None = None
    stopped_at: float | None = None
    tree: set[tuple[int, int]] = field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def view(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "port": self.port,
            "pid": self.process.pid,
            "state": self.state,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "exit_code": self.process.returncode,
        }


@dataclass(frozen=True)
class Options:
    deployment: str
    log_dir: Path
    state_file: Path | None
    spark_submit: str | None
    retain_finished_secs: float


class Supervisor:
    """Keeps one stand-in per live cluster of the deployment, and none for ended clusters."""

    def __init__(self, emr: Any, options: Options) -> None:
        self.emr = emr
        self.options = options
        self.clusters: dict[str, LocalCluster] = {}
        # Clusters of other deployments (or untagged): their tags never change to ours.
        self.foreign: set[str] = set()

    # EMR ------------------------------------------------------------------------------------

    def _live_ids(self) -> dict[str, str]:
        """id -> state of every cluster EMR lists in a live state."""
        ids: dict[str, str] = {}
        for page in self.emr.get_paginator("list_clusters").paginate(
            ClusterStates=list(LIVE_STATES)
        ):
            for summary in page.get("Clusters", []):
                ids[summary["Id"]] = summary["Status"]["State"]
        return ids

    def _describe(self, cluster_id: str) -> dict[str, Any] | None:
        try:
            return self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        except ClientError as e:
            if "is not valid" in str(e):
                return None
            raise

    # The loop ---------------------------------------------------------------------------------

    def poll(self) -> None:
        """One look at EMR: stand-ins for new clusters that are up, none for ended ones."""
        live = self._live_ids()
        for cluster_id, state in live.items():
            if cluster_id in self.clusters or cluster_id in self.foreign:
                continue
            if state not in UP_STATES:
                continue
            described = self._describe(cluster_id)
            if described is None:
                continue
            tags = {t["Key"]: t.get("Value", "") for t in described.get("Tags", [])}
            if tags.get(DEPLOYMENT_TAG) != self.options.deployment:
                self.foreign.add(cluster_id)
                continue
            if described["Status"]["State"] in UP_STATES:
                self._give_standin(cluster_id)
        for cluster in list(self.clusters.values()):
            if cluster.state == "running" and cluster.cluster_id not in live:
                described = self._describe(cluster.cluster_id)
                state = "unknown" if described is None else described["Status"]["State"]
                if state not in LIVE_STATES:
                    log(
                        f"cluster {cluster.cluster_id} is {state}: stopping its stand-in"
                    )
                    self._stop(cluster)
            elif cluster.state == "running" and cluster.process.poll() is not None:
                # Livy died on a live cluster: norris sees Livy unreachable; not restarted.
                log(
                    f"the stand-in of {cluster.cluster_id} exited on its own "
                    f"({cluster.process.returncode})"
                )
                cluster.state = "stopped"
                cluster.stopped_at = time.time()
        self._reap()
        self._write_state()

    def _give_standin(self, cluster_id: str) -> None:
        cluster_dir = self.options.log_dir / cluster_id
        cluster_dir.mkdir(parents=True, exist_ok=True)
        ready = cluster_dir / "livy.port"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, str(STANDIN), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--ready-file", str(ready), "--log-dir", str(cluster_dir / "livy-logs")]
        cmd += ["--retain-finished-secs", str(self.options.retain_finished_secs)]
        if self.options.spark_submit:
            cmd += ["--spark-submit", self.options.spark_submit]
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        with (cluster_dir / "standin.log").open("ab") as err:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=cluster_dir,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - the supervisor is single-threaded
            )
        deadline = time.monotonic() + STANDIN_START_SECS
        port = None
        while port is None:
            text = ready.read_text().strip() if ready.exists() else ""
            if text:
                port = int(text)
            elif process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log(
                    f"the stand-in for {cluster_id} did not start; see {cluster_dir / 'standin.log'}"
                )
                return
            else:
                time.sleep(0.02)
        cluster = LocalCluster(cluster_id, process, port, started_at=time.time())
        self.clusters[cluster_id] = cluster
        try:
            self.emr.add_tags(
                ResourceId=cluster_id,
                Tags=[{"Key": ENDPOINT_TAG, "Value": cluster.endpoint}],
            )
        except ClientError as e:
            log(f"could not tag {cluster_id} ({e}); stopping its stand-in")
            self._stop(cluster)
            return
        log(
            f"cluster {cluster_id}: Livy stand-in on {cluster.endpoint} (pid {process.pid})"
        )

    def _stop(self, cluster: LocalCluster) -> None:
        """SIGTERM to the stand-in (it kills its applications); the tree is remembered so that
        whatever outlives the stand-in is killed by `_reap`."""
        cluster.tree = process_tree(cluster.process.pid)
        cluster.state = "stopping"
        cluster.stopping_since = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            cluster.process.send_signal(signal.SIGTERM)

    def _reap(self) -> None:
        for cluster in self.clusters.values():
            if cluster.state != "stopping" or cluster.stopping_since is None:
                continue
            if cluster.process.poll() is None:
                if time.monotonic() - cluster.stopping_since < STANDIN_STOP_SECS:
                    continue
                log(f"the stand-in of {cluster.cluster_id} did not stop: killing it")
                cluster.tree |= process_tree(cluster.process.pid)
                cluster.process.kill()
                cluster.process.wait()
            killed = kill_survivors(cluster.tree)
            if killed:
                log(
                    f"killed processes left by the stand-in of {cluster.cluster_id}: {killed}"
                )
            cluster.state = "stopped"
            cluster.stopped_at = time.time()
            log(
                f"cluster {cluster.cluster_id}: stand-in stopped "
                f"(exit {cluster.process.returncode})"
            )

    def stop_all(self) -> None:
        """Stops every stand-in still running and waits until they (and their trees) are gone."""
        for cluster in self.clusters.values():
            if cluster.state == "running":
                self._stop(cluster)
        deadline = time.monotonic() + STANDIN_STOP_SECS + 5
        while any(c.state == "stopping" for c in self.clusters.values()):
            self._reap()
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self._write_state()

    def _write_state(self) -> None:
        if self.options.state_file is None:
            return
        state = {
            "deployment": self.options.deployment,
            "pid": os.getpid(),
            "clusters": {cid: c.view() for cid, c in self.clusters.items()},
        }
        tmp = self.options.state_file.with_name(self.options.state_file.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.options.state_file)


def emr_client() -> Any:
    """boto3's EMR client on the local world's moto (never a real AWS endpoint)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(
            f"AWS_ENDPOINT_URL must point at the local world's moto server, is {endpoint!r}"
        )
    region = os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION", "us-east-1"
    )
    return boto3.client(
        "emr",
        endpoint_url=endpoint,
        region_name=region,
        config=BotoConfig(
            retries={"max_attempts": 2}, connect_timeout=5, read_timeout=15
        ),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Gives each live moto EMR cluster of a deployment its own Livy stand-in."
    )
    parser.add_argument(
        "--deployment", required=True, help="the norris:deployment tag to serve"
    )
    parser.add_argument(
        "--log-dir", type=Path, required=True, help="per-cluster stand-in logs"
    )
    parser.add_argument(
        "--state-file", type=Path, help="JSON state, rewritten on change"
    )
    parser.add_argument(
        "--ready-file", type=Path, help="written once the first look at EMR succeeded"
    )
    parser.add_argument("--poll-secs", type=float, default=0.25)
    parser.add_argument(
        "--spark-submit", help="passed to each stand-in (e.g. the fake of its tests)"
    )
    parser.add_argument("--retain-finished-secs", type=float, default=600.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emr = emr_client()
    supervisor = Supervisor(
        emr,
        Options(
            deployment=args.deployment,
            log_dir=args.log_dir.resolve(),
            state_file=args.state_file,
            spark_submit=args.spark_submit,
            retain_finished_secs=args.retain_finished_secs,
        ),
    )
    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log(f"serving deployment {args.deployment!r} on {emr.meta.endpoint_url}")
    ready_written = args.ready_file is None
    try:
        while not stop_requested:
            try:
                supervisor.poll()
            except (BotoCoreError, ClientError) as e:
                log(f"EMR look failed (retried): {e}")
            else:
                if not ready_written and args.ready_file is not None:
                    tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
                    tmp.write_text(f"{os.getpid()}\n")
                    tmp.replace(args.ready_file)
                    ready_written = True
            time.sleep(args.poll_secs)
    finally:
        supervisor.stop_all()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
