"""The legality rules accept every transition a real `gitdag run` writes (and reject forgeries)."""

from __future__ import annotations

from tests.supervisor.conftest import Project, project  # noqa: F401  (the fixture)

PLAN = {
    "plan-000": {
        "result": {
            "status": "success",
            "summary": "planned",
            "next": {
                "addNodes": [
                    {"id": "a", "title": "A", "kind": "command", "run": "true"},
                    {"id": "b", "title": "B", "kind": "command", "run": "true", "deps": ["a"]},
                    {"id": "t", "title": "T", "deps": ["a"]},
                    {"id": "flaky", "title": "flaky"},
                    {"id": "q", "title": "ask", "kind": "checkpoint"},
                ]
            },
        }
    },
    "t": {"result": {"status": "success"}},
    "flaky": {"result": {"status": "fail", "summary": "compiler exploded"}},
    "escalate-flaky": {
        "result": {
            "status": "success",
            "summary": "gave up",
            "next": {"setStatus": [{"id": "flaky", "status": "cancelled"}]},
        }
    },
}


def test_a_real_run_history_validates(project: Project) -> None:  # noqa: F811
    project.plan(PLAN)
    res = project.gitdag("run", "--workers", "2")
    assert res.code in (0, 1), res.err
    assert project.gitdag("answer", "q", "yes").code == 0
    assert project.gitdag("pause").code == 0
    assert project.gitdag("resume").code == 0
    project.gitdag("run", "--workers", "2")
    check = project.gitdag("validate", "..dagain/state")
    assert check.code == 0, check.err
    log = project.gitdag("log", "--json").out
    assert '"escalate"' in log and '"checkpoint"' in log and '"answer"' in log
    t = project.show("t")
    assert t["status"] == "done" and "summary" in t["outputs"]  # type: ignore[operator]
