#!/usr/bin/env python3
"""A tiny spark-submit stand-in, so the Livy stand-in's state machine can be tested in milliseconds
instead of ~10 s and 0.5 GiB per real Spark run.

It takes spark-submit's command line, reports what it got (for tests of the command the stand-in
builds), then plays the application's arguments as steps:

    context        print the lines a real SparkContext start prints (incl. a local-<ms> app id)
    sleep=SECS     sleep
    child          start a child process in the same process group (like the Python driver)
    child-own-pg   start a child that moves to a process group of its own (like PySpark's daemon)
    lines=N        print N numbered lines
    exit=CODE      exit with CODE

and exits 0 at the end. Children just sleep (no signal handling), so a test can check they die.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

VALUE_OPTIONS = frozenset(
    {
        "--master",
        "--deploy-mode",
        "--name",
        "--conf",
        "--jars",
        "--py-files",
        "--files",
        "--archives",
        "--class",
        "--driver-memory",
        "--driver-cores",
        "--executor-memory",
        "--executor-cores",
        "--num-executors",
        "--queue",
        "--proxy-user",
        "--packages",
    }
)


def say(line: str) -> None:
    print(line, flush=True)


def split_command(argv: list[str]) -> tuple[list[tuple[str, str]], str, list[str]]:
    """(options, primary resource, application arguments), as spark-submit splits them."""
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        if argv[i] not in VALUE_OPTIONS:
            raise SystemExit(f"fake spark-submit: unknown option {argv[i]}")
        options.append((argv[i], argv[i + 1]))
        i += 2
    if i >= len(argv):
        raise SystemExit("fake spark-submit: no application file")
    return options, argv[i], argv[i + 1 :]


def spawn_sleeper(own_group: bool) -> int:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0 if own_group else None,
    )
    return child.pid


def main() -> int:
    options, file, steps = split_command(sys.argv[1:])
    name = dict(options).get("--name", "")
    say(f"FAKE_SPARK_SUBMIT pid={os.getpid()} pgid={os.getpgid(0)}")
    say("FAKE_SPARK_SUBMIT argv=" + json.dumps(sys.argv[1:]))
    env = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON")}
    say("FAKE_SPARK_SUBMIT env=" + json.dumps(env))
    for step in steps:
        if step == "context":
            app_id = f"local-{int(time.time() * 1000)}"
            say("26/11/22 08:03:29 INFO SparkContext: Running Spark version 4.3.0")
            say(f"26/11/22 08:03:30 INFO SparkContext: Submitted application: {name}")
            say(
                "26/11/22 08:03:31 INFO RollingEventLogFilesWriter: Logging events to "
                f"file:/tmp/events/eventlog_v2_{app_id}/events_1_{app_id}.zstd"
            )
        elif step.startswith("sleep="):
            time.sleep(float(step.split("=", 1)[1]))
        elif step in ("child", "child-own-pg"):
            say(f"FAKE_SPARK_SUBMIT child={spawn_sleeper(step == 'child-own-pg')}")
        elif step.startswith("lines="):
            for n in range(int(step.split("=", 1)[1])):
                say(f"line {n}")
        elif step.startswith("exit="):
            return int(step.split("=", 1)[1])
        else:
            say(f"fake spark-submit: unknown step {step!r} for {file}")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
