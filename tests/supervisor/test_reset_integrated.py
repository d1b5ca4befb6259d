"""`reset --to` a graph from before a task ran: the task's change is already on the target.

By default it stays done (its change is not integrated a second time) and reset names it;
`--rerun-integrated` reopens it, and says so.
"""

from __future__ import annotations

from tests.conftest import git
from tests.supervisor.conftest import Project


def _ran_one_task(project: Project) -> str:
    project.plan({
        "plan-000": {"result": {"status": "success",
                                "next": {"addNodes": [{"id": "t1", "title": "one"}]}}},
        "t1": {"write": {"f1.txt": "one\n"}},
    })  # fmt: skip
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert project.show("t1")["status"] == "done"
    # The commit that added t1 (the planner's result): t1 open, nothing integrated yet.
    log = git(project.root, "log", "--format=%H %s", "dagain/state").splitlines()
    return next(line.split()[0] for line in log if line.split()[1] == "complete"
                and "plan-000" in line)  # fmt: skip


def test_reset_keeps_integrated_nodes_done_and_names_them(project: Project) -> None:
    rev = _ran_one_task(project)
    target = git(project.root, "rev-parse", "dagain/integration")
    res = project.gitdag("reset", "--to", rev)
    assert res.code == 0, res.err
    assert "kept done, their change is already on the target: t1" in res.out
    assert project.show("t1")["status"] == "done"
    assert project.gitdag("run").code == 0
    assert git(project.root, "rev-parse", "dagain/integration") == target  # nothing again


def test_reset_rerun_integrated_reopens_them(project: Project) -> None:
    rev = _ran_one_task(project)
    res = project.gitdag("reset", "--to", rev, "--rerun-integrated")
    assert res.code == 0, res.err
    assert "will run again): t1" in res.out
    assert project.show("t1")["status"] == "open"
