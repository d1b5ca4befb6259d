"""A bug of gitdag around an attempt crashes (exit 3, a crash log); the world's error fails the
node as before (issue 14, part 4). Faults are injected with GITDAG_FAIL_AT=<point>:<kind>."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_gitdag
from tests.supervisor.conftest import Project


def crash_logs(root: Path) -> list[str]:
    logs = root / ".dagain" / "local" / "logs"
    return [p.read_text() for p in sorted(logs.glob("crash-*.log"))] if logs.is_dir() else []


def run_with(project: Project, fault: str) -> tuple[int, str]:
    env = {**project.env(), "GITDAG_FAIL_AT": fault}
    res = run_gitdag(project.root, "run", env=env, timeout=120)
    return res.code, res.err


def spent(project: Project, node_id: str) -> int:
    node = project.show(node_id)
    return int(node.get("attempts", 0)) - int(node.get("attempt_base", 0))  # type: ignore[call-overload]


def add_command(project: Project) -> None:
    res = project.gitdag("add", "c1", "--title", "one", "--kind", "command", "--run", "true")
    assert res.code == 0, res.err


def add_task(project: Project) -> None:
    assert project.gitdag("add", "t1", "--title", "one").code == 0
    project.plan({"t1": {"write": {"one.txt": "1\n"}}})


@pytest.mark.parametrize("point", ["attempt.start", "attempt.settle"])
def test_a_bug_around_an_attempt_crashes_and_spends_nothing(project: Project, point: str) -> None:
    add_command(project)
    code, err = run_with(project, f"{point}:TypeError")
    assert code == 3, err
    assert "unexpected error; traceback in" in err, err
    logs = crash_logs(project.root)
    assert len(logs) == 1 and "TypeError" in logs[0] and point in logs[0], logs
    # The attempt the bug hit was given back (the other one in flight is recovered at restart):
    # no node failed, nothing escalated.
    statuses = {n: project.show(n)["status"] for n in ("plan-000", "c1")}
    assert set(statuses.values()) <= {"open", "running"}, statuses
    assert "gitdag crashed while it handled this attempt" in err, err
    again = project.gitdag("run")
    assert again.code == 0, again.err
    for node_id in ("plan-000", "c1"):
        assert project.show(node_id)["status"] == "done"
        assert spent(project, node_id) == 1, node_id  # only the attempt that succeeded counts
    assert "escalate" not in project.gitdag("graph", "--format", "json").out


@pytest.mark.parametrize("point", ["attempt.start", "attempt.settle"])
def test_an_os_error_around_an_attempt_still_fails_it(project: Project, point: str) -> None:
    add_command(project)
    code, err = run_with(project, f"{point}:EIO")
    assert code == 1, err
    assert crash_logs(project.root) == []
    node = project.show("c1")
    error = node["error"]
    assert isinstance(error, dict), node
    kind = "spawn_error" if point == "attempt.start" else "task_failure"
    assert error["kind"] == kind and "Input/output error" in error["summary"], error
    assert node["status"] == "failed" and spent(project, "c1") == 3, node


def test_a_bug_in_a_merge_crashes_and_leaves_the_node_merging(project: Project) -> None:
    add_task(project)
    code, err = run_with(project, "merge.integrate:KeyError")
    assert code == 3, err
    logs = crash_logs(project.root)
    assert len(logs) == 1 and "KeyError" in logs[0], logs
    node = project.show("t1")
    assert node["status"] == "merging" and node.get("error") is None, node
    assert spent(project, "t1") == 1  # its one agent run; the merge spent nothing
    again = project.gitdag("run")
    assert again.code == 0, again.err
    assert project.show("t1")["status"] == "done"
    assert [r[1] for r in project.log() if r[0] == "start"].count("t1") == 1  # no agent re-run


def test_an_os_error_in_a_merge_still_holds_the_node(project: Project) -> None:
    add_task(project)
    code, err = run_with(project, "merge.integrate:EIO")
    assert code == 1, err
    assert crash_logs(project.root) == []
    node = project.show("t1")
    hold = node.get("hold")
    assert node["status"] == "merging" and isinstance(hold, dict), node
    assert hold["kind"] == "git_error" and "Input/output error" in hold["reason"], hold
    assert "held (git_error)" in err, err
