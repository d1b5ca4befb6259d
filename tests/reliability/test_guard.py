"""A runner that moves dagain/state itself is caught; nothing is built on its commit (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project


def state_head(project: Project) -> str:
    return git(project.root, "rev-parse", "dagain/state").strip()


def add(project: Project, *args: str) -> None:
    res = project.gitdag("add", *args)
    assert res.code == 0, res.err


def incidents(project: Project) -> list[dict[str, object]]:
    path = project.root / ".dagain" / "local" / "incidents.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(("mode", "why"), [
    ("illegal", "done"),
    ("signed", "signed by this supervisor but not written by it"),
])  # fmt: skip
def test_runner_moving_the_state_branch_is_an_incident_until_repaired(
    rproject: Project, mode: str, why: str
) -> None:
    add(rproject, "forger", "--title", "forges", "--kind", "verify", "--runner", "forger")
    add(rproject, "victim", "--title", "v", "--kind", "command", "--run", "true",
        "--deps", "forger")  # fmt: skip
    env = {**rproject.env(), "FORGE_MODE": mode}
    res = run_gitdag(rproject.root, "run", env=env)
    assert res.code == 2, res.err
    lines = [line for line in res.err.splitlines() if line.startswith("gitdag: error")]
    assert len(lines) == 1
    assert "refusing to build on it" in lines[0] and why in lines[0]
    forged = state_head(rproject)
    assert f"gitdag revert {forged[:12]}" in lines[0] and "gitdag reset --to" in lines[0]
    # Nothing was built on the forged commit: it is still the head.
    subject = git(rproject.root, "log", "-1", "--format=%s", "dagain/state")
    assert subject.startswith("complete victim" if mode == "illegal" else "cancel victim")
    logged = incidents(rproject)
    assert len(logged) == 1 and logged[0]["commit"] == forged
    # A restart refuses too, until the commit is repaired.
    again = run_gitdag(rproject.root, "run", env=env)
    assert again.code == 2 and forged[:12] in again.err
    assert state_head(rproject) == forged
    assert rproject.gitdag("revert", forged).code == 0
    done = run_gitdag(rproject.root, "run", env=env)
    assert done.code == 0, done.err
    assert rproject.show("victim")["status"] == "done"
    assert rproject.show("forger")["status"] == "done"
    assert len(incidents(rproject)) == 1
    assert rproject.gitdag("validate").code == 0


def test_a_person_moving_the_branch_during_a_run_is_no_incident(rproject: Project) -> None:
    # `slow` runs until the test has added `late`: on a loaded machine a fixed sleep could end
    # (and the run with it) before the add lands.
    go = rproject.root.parent / "go"
    wait = f"while [ ! -f {go} ]; do sleep 0.05; done"
    add(rproject, "slow", "--title", "s", "--kind", "command", "--run", wait)
    add(rproject, "other", "--title", "o", "--kind", "command", "--run", "true", "--deps", "slow")
    proc = subprocess.Popen([sys.executable, "-m", "gitdag", "run"], cwd=rproject.root,
                            env={**os.environ, **rproject.env()}, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not json.loads(rproject.gitdag("status", "--json").out)["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    add(rproject, "late", "--title", "late", "--kind", "command", "--run", "true")
    go.touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert rproject.show("late")["status"] == "done"
    assert not (rproject.root / ".dagain" / "local" / "incidents.log").exists()
