"""Handlers and per-node policies through the real CLI (issue 16 part 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.supervisor.conftest import Project


def add(project: Project, *args: str) -> None:
    res = project.gitdag("add", *args)
    assert res.code == 0, res.err


def quiet(project: Project) -> None:
    project.plan({"plan-000": {"result": {"status": "success", "summary": "nothing to plan"}}})


def wait_for(predicate, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("ended_first", [True, False], ids=["ended", "still-running"])
def test_on_failure_handler_runs_once_even_after_kill_9_mid_handler(
    project: Project, tmp_path: Path, ended_first: bool
) -> None:
    quiet(project)
    marks, flag = tmp_path / "marks", tmp_path / "flag"
    handler = (
        f'echo "start $GITDAG_FAILURE" >> {marks}; '
        f"while [ ! -e {flag} ]; do sleep 0.05; done; echo end >> {marks}"
    )
    add(project, "notify", "--title", "notify", "--kind", "command", "--run", handler)
    add(
        project, "cheer", "--title", "cheer", "--kind", "command", "--run", f"echo cheer >> {marks}"
    )
    add(project, "build", "--title", "build", "--kind", "command", "--run", "exit 3",
        "--retry-max", "1", "--on-failure", "notify", "--on-success", "cheer")  # fmt: skip
    env = {**os.environ, **project.env()}
    first = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"], cwd=project.root, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: marks.exists() and "start" in marks.read_text())
        first.send_signal(signal.SIGKILL)  # the supervisor dies mid-handler
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    if ended_first:  # the orphaned handler ends before the next supervisor starts
        flag.write_text("go")
        wait_for(lambda: "end" in marks.read_text())
        res = project.gitdag("run")
    else:  # it is still running when the next supervisor starts, which waits for it
        second = subprocess.Popen(
            [sys.executable, "-m", "gitdag", "run"], cwd=project.root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.0)
        flag.write_text("go")
        out, err = second.communicate(timeout=120)
        res = Result(second.returncode, out, err)
    assert res.code == 1, res.err  # build failed for good
    lines = marks.read_text().splitlines()
    assert (
        lines.count("end") == 1
        and lines.count("start build: task_failure: command exited with code 3") == 1
    )
    assert "cheer" not in lines
    assert project.show("notify")["status"] == "done"
    assert project.show("cheer")["status"] == "skipped"
    log = json.loads(project.gitdag("log", "--json").out)
    completes = [e for e in log if e["verb"] == "complete" and e["nodes"][0] == "notify"]
    assert len(completes) == 1
    root = log[-1]["commit"]
    assert project.gitdag("validate", f"{root}..dagain/state").code == 0


def test_on_success_handler_runs_and_failure_handler_is_skipped(
    project: Project, tmp_path: Path
) -> None:
    quiet(project)
    marks = tmp_path / "marks"
    add(project, "notify", "--title", "n", "--kind", "command", "--run", f"echo fail >> {marks}")
    add(project, "cheer", "--title", "c", "--kind", "command", "--run", f"echo cheer >> {marks}")
    add(project, "build", "--title", "build", "--kind", "command", "--run", "true",
        "--on-failure", "notify", "--on-success", "cheer")  # fmt: skip
    assert project.gitdag("run").code == 0
    assert marks.read_text() == "cheer\n"
    assert project.show("notify")["status"] == "skipped"


def test_node_timeout_overrides_the_default(project: Project) -> None:
    quiet(project)
    add(project, "slow", "--title", "slow", "--kind", "command", "--run", "sleep 60",
        "--timeout", "1", "--retry-max", "1")  # fmt: skip
    started = time.monotonic()
    assert project.gitdag("run").code == 1
    assert time.monotonic() - started < 50
    assert project.show("slow")["error"]["kind"] == "timeout"  # type: ignore[index]


def test_retry_kinds_limit_what_is_retried(project: Project) -> None:
    quiet(project)
    add(project, "flaky", "--title", "f", "--kind", "command", "--run", "exit 1",
        "--retry-max", "3", "--retry-backoff", "0", "--retry-kinds", "timeout")  # fmt: skip
    assert project.gitdag("run").code == 1
    node = project.show("flaky")
    assert node["status"] == "failed" and node["attempts"] == 1  # task_failure is not listed
    add(project, "flaky2", "--title", "f", "--kind", "command", "--run", "exit 1",
        "--retry-max", "3", "--retry-backoff", "0", "--retry-kinds", "task_failure")  # fmt: skip
    project.gitdag("run")
    assert project.show("flaky2")["attempts"] == 3


def test_continue_on_failure_lets_dependents_run(project: Project, tmp_path: Path) -> None:
    quiet(project)
    add(project, "lint", "--title", "lint", "--kind", "command", "--run", "exit 1",
        "--retry-max", "1", "--continue-on", "failure")  # fmt: skip
    add(project, "test", "--title", "test", "--kind", "command", "--deps", "lint",
        "--run", f"touch {tmp_path / 'tested'}")  # fmt: skip
    assert project.show("test")["after"] == ["lint"]
    project.gitdag("run")
    assert (tmp_path / "tested").exists()
    assert project.show("test")["status"] == "done"
