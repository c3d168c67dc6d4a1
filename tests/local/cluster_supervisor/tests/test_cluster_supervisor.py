"""Tests of the cluster supervisor: a real supervisor process against a moto server of this suite's
own (a free port), with Livy stand-ins running the stand-in's fake spark-submit (milliseconds per
batch), and one test with real Spark (`real_spark`, ~20 s). Waits are bounded polls of a condition,
never bare sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

HERE = Path(__file__).resolve().parent
SUPERVISOR = HERE.parent / "cluster_supervisor.py"
STANDIN_DIR = HERE.parents[1] / "livy_standin"
FAKE = STANDIN_DIR / "fake_spark_submit.py"
HANG = STANDIN_DIR / "jobs" / "hang.py"
VENV_BIN = Path(sys.executable).parent
ENDPOINT_TAG = "norris:livy-endpoint"

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05
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
    """Whether `pid` is a live process (a zombie counts as dead)."""
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def livy(endpoint: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to a stand-in: (status, JSON body)."""
    url = endpoint.removeprefix("http://")
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, json.loads(payload) if payload else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto server of this suite's own on a free 127.0.0.1 port, as AWS environment variables."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"moto_server exited: {log.read_text()[-2000:]}")
            return listening(port)

        wait_until(up, 30, "moto_server to listen")
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def emr(aws_env: dict[str, str]) -> Any:
    return boto3.client(
        "emr",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def launch(emr: Any, deployment: str | None) -> str:
    """A cluster as norris launches it (instance fleets; moto keeps only the record)."""
    tags = [{"Key": "norris:pool", "Value": "small"}]
    if deployment is not None:
        tags.append({"Key": "norris:deployment", "Value": deployment})
    fleet = {"InstanceTypeConfigs": [{"InstanceType": "m7g.xlarge"}]}
    return emr.run_job_flow(
        Name=f"{deployment}-small-1",
        ReleaseLabel="emr-7.5.0",
        Applications=[{"Name": "Spark"}, {"Name": "Livy"}],
        Instances={
            "InstanceFleets": [
                {"InstanceFleetType": "MASTER", "TargetOnDemandCapacity": 1, **fleet},
                {"InstanceFleetType": "CORE", "TargetOnDemandCapacity": 1, **fleet},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="norris-emr-nodes",
        ServiceRole="norris-emr-service",
        Tags=tags,
    )["JobFlowId"]


def tags_of(emr: Any, cluster_id: str) -> dict[str, str]:
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    return {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}


@dataclass
class Supervisor:
    proc: subprocess.Popen[bytes]
    deployment: str
    state_file: Path
    output: Path

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())["clusters"]

    def standin(self, cluster_id: str) -> dict[str, Any] | None:
        return self.state().get(cluster_id)

    def wait_standin(self, emr: Any, cluster_id: str) -> dict[str, Any]:
        """Waits until the cluster's endpoint tag names its stand-in; returns the stand-in."""

        def tagged() -> dict[str, Any] | None:
            standin = self.standin(cluster_id)
            tag = tags_of(emr, cluster_id).get(ENDPOINT_TAG)
            return standin if standin and tag == standin["endpoint"] else None

        return wait_until(tagged, 30, f"a stand-in for {cluster_id}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(60)


@pytest.fixture
def supervise(
    aws_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Supervisor]]:
    """Starts supervisors (fake spark-submit unless `real=True`); after the test, stops them and
    checks that none of the processes they started is left."""
    started: list[Supervisor] = []

    def start(deployment: str, real: bool = False) -> Supervisor:
        n = len(started)
        state_file = tmp_path / f"state-{n}.json"
        ready = tmp_path / f"ready-{n}"
        output = tmp_path / f"supervisor-{n}.log"
        cmd = [sys.executable, str(SUPERVISOR), "--deployment", deployment]
        cmd += ["--log-dir", str(tmp_path / f"clusters-{n}"), "--poll-secs", "0.1"]
        cmd += ["--state-file", str(state_file), "--ready-file", str(ready)]
        if not real:
            cmd += ["--spark-submit", str(FAKE)]
        env = {**os.environ, **aws_env}
        env.pop("PYSPARK_PYTHON", None)
        with output.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        supervisor = Supervisor(proc, deployment, state_file, output)
        started.append(supervisor)

        def ready_now() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the supervisor exited early:\n{output.read_text()}"
                )
            return ready.exists()

        wait_until(ready_now, 30, "the supervisor's first look at EMR")
        return supervisor

    yield start
    problems = []
    for supervisor in started:
        tree = descendants(supervisor.proc.pid)
        if supervisor.proc.poll() is None:
            code = supervisor.stop()
            if code != 0:
                problems.append(f"supervisor exited {code}")
        pids = set(tree)
        if supervisor.state_file.exists():
            pids |= {c["pid"] for c in supervisor.state().values()}
        try:
            wait_until(
                lambda pids=pids: not any(alive(p) for p in pids), 15, "processes gone"
            )
        except AssertionError:
            survivors = [p for p in pids if alive(p)]
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)
            problems.append(
                f"left behind: {survivors}\n{supervisor.output.read_text()}"
            )
    assert not problems, "\n".join(problems)


def deployment_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def fake_batch(endpoint: str, *steps: str) -> int:
    status, body = livy(
        endpoint,
        "POST",
        "/batches",
        {"file": "local:/apps/fake.py", "args": list(steps)},
    )
    assert status == 201, body
    return body["id"]


def fake_pids(endpoint: str, batch: int) -> list[int]:
    """The fake spark-submit's pid and its children's, from the batch log."""
    status, body = livy(endpoint, "GET", f"/batches/{batch}/log?from=0&size=-1")
    assert status == 200, body
    text = "\n".join(body["log"])
    return [int(p) for p in re.findall(r"FAKE_SPARK_SUBMIT (?:pid|child)=(\d+)", text)]


# --- tests ------------------------------------------------------------------------------------


def test_a_cluster_that_is_up_gets_a_standin_named_by_its_endpoint_tag(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    supervisor = supervise(deployment)
    cluster_id = launch(emr, deployment)
    standin = supervisor.wait_standin(emr, cluster_id)

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", standin["endpoint"])
    assert standin["state"] == "running" and alive(standin["pid"])
    assert livy(standin["endpoint"], "GET", "/batches") == (
        200,
        {"from": 0, "total": 0, "sessions": []},
    )
    batch = fake_batch(standin["endpoint"], "context", "exit=0")
    wait_until(
        lambda: (
            livy(standin["endpoint"], "GET", f"/batches/{batch}")[1]["state"]
            == "success"
        ),
        15,
        "the batch to succeed",
    )
    # A second cluster gets a stand-in of its own.
    second = launch(emr, deployment)
    other = supervisor.wait_standin(emr, second)
    assert other["endpoint"] != standin["endpoint"]
    assert tags_of(emr, second)["norris:deployment"] == deployment


def test_clusters_of_other_deployments_untagged_or_ended_get_nothing(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    ended = launch(emr, deployment)
    emr.terminate_job_flows(JobFlowIds=[ended])
    supervisor = supervise(deployment)
    foreign = launch(emr, deployment_name())
    untagged = launch(emr, None)
    # A cluster of ours launched after the others: once it has its stand-in, the supervisor has
    # looked at the others too.
    ours = launch(emr, deployment)
    supervisor.wait_standin(emr, ours)
    assert set(supervisor.state()) == {ours}
    for cluster_id in (ended, foreign, untagged):
        assert ENDPOINT_TAG not in tags_of(emr, cluster_id)


def test_terminating_a_cluster_stops_its_standin_and_kills_its_applications(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    supervisor = supervise(deployment)
    doomed, kept = launch(emr, deployment), launch(emr, deployment)
    standin = supervisor.wait_standin(emr, doomed)
    survivor = supervisor.wait_standin(emr, kept)
    running = fake_batch(
        standin["endpoint"], "context", "child", "child-own-pg", "sleep=600"
    )
    starting = fake_batch(standin["endpoint"], "child", "sleep=600")
    other = fake_batch(survivor["endpoint"], "context", "child", "sleep=600")
    wait_until(
        lambda: len(fake_pids(standin["endpoint"], running)) == 3, 15, "children"
    )
    wait_until(lambda: len(fake_pids(standin["endpoint"], starting)) == 2, 15, "child")
    wait_until(lambda: len(fake_pids(survivor["endpoint"], other)) == 2, 15, "child")
    pids = fake_pids(standin["endpoint"], running) + fake_pids(
        standin["endpoint"], starting
    )
    others = fake_pids(survivor["endpoint"], other)
    assert all(alive(p) for p in pids + others)

    # Spot loss, as moto can show it: the cluster is TERMINATED at once.
    emr.terminate_job_flows(JobFlowIds=[doomed])
    wait_until(
        lambda: supervisor.standin(doomed)["state"] == "stopped",
        30,
        "the stand-in to stop",
    )
    stopped = supervisor.standin(doomed)
    assert not alive(stopped["pid"]) and stopped["exit_code"] == 0
    assert stopped["stopped_at"] >= stopped["started_at"]
    assert not listening(int(stopped["port"]))
    wait_until(lambda: not any(alive(p) for p in pids), 10, "the applications to die")
    assert "killed processes left by" not in supervisor.output.read_text()
    # The other cluster and its application are untouched.
    assert supervisor.standin(kept)["state"] == "running"
    assert all(alive(p) for p in others)
    status, body = livy(survivor["endpoint"], "GET", f"/batches/{other}")
    assert (status, body["state"]) == (200, "running")


def test_sigterm_stops_every_standin_and_application(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    supervisor = supervise(deployment)
    clusters = [launch(emr, deployment) for _ in range(2)]
    pids = []
    for cluster_id in clusters:
        standin = supervisor.wait_standin(emr, cluster_id)
        batch = fake_batch(standin["endpoint"], "context", "child-own-pg", "sleep=600")
        pids += wait_until(
            lambda s=standin, b=batch: (
                p if len(p := fake_pids(s["endpoint"], b)) == 2 else None
            ),
            15,
            "the application's child",
        )
        pids.append(standin["pid"])
    assert all(alive(p) for p in pids)

    assert supervisor.stop(signal.SIGTERM) == 0
    assert not any(alive(p) for p in pids)
    assert {c["state"] for c in supervisor.state().values()} == {"stopped"}
    # The clusters themselves are EMR's business: the supervisor only gives them a body.
    for cluster_id in clusters:
        state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        assert state == "WAITING"


def test_a_supervisor_killed_outright_takes_its_standins_with_it(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    supervisor = supervise(deployment)
    standin = supervisor.wait_standin(emr, launch(emr, deployment))
    batch = fake_batch(standin["endpoint"], "context", "child", "sleep=600")
    pids = wait_until(
        lambda: p if len(p := fake_pids(standin["endpoint"], batch)) == 2 else None,
        15,
        "the application's child",
    )
    supervisor.stop(signal.SIGKILL)
    # The parent-death signal is a SIGTERM to the stand-in, which kills its applications.
    wait_until(
        lambda: not any(alive(p) for p in [standin["pid"], *pids]),
        15,
        "the stand-in and its application to die",
    )


def test_real_spark_dies_with_its_cluster(
    emr: Any, supervise: Callable[..., Supervisor]
) -> None:
    deployment = deployment_name()
    supervisor = supervise(deployment, real=True)
    cluster_id = launch(emr, deployment)
    standin = supervisor.wait_standin(emr, cluster_id)
    status, body = livy(
        standin["endpoint"],
        "POST",
        "/batches",
        {"file": str(HANG), "name": "hang", "driverMemory": "512m"},
    )
    assert status == 201, body

    def ready() -> bool:
        _, log = livy(standin["endpoint"], "GET", f"/batches/{body['id']}/log?size=-1")
        return "LIVY_STANDIN_TEST_READY" in log["log"]

    wait_until(ready, 180, "the Spark application to run its Python workers", 0.5)
    tree = descendants(standin["pid"])
    commands = list(tree.values())
    assert any("org.apache.spark.deploy.SparkSubmit" in c for c in commands), commands
    assert any("pyspark.daemon" in c for c in commands), commands

    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    wait_until(
        lambda: supervisor.standin(cluster_id)["state"] == "stopped",
        30,
        "the stand-in to stop",
    )
    # SIGKILLed stragglers (if any) may take a moment to go.
    wait_until(
        lambda: not any(alive(p) for p in [standin["pid"], *tree]),
        10,
        "the JVM, the Python driver and the workers to die",
    )
    # The stand-in killed its applications itself on SIGTERM: the supervisor's own SIGKILL of
    # leftovers was not needed.
    assert "killed processes left by" not in supervisor.output.read_text()
