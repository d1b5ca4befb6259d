"""`gitdag run` end to end through the real CLI with a fake runner script (issue 3)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import git
from tests.supervisor.conftest import Project

PLAN_OK = {
    "plan-000": {
        "result": {
            "status": "success",
            "summary": "planned",
            "next": {
                "addNodes": [
                    {"id": "a", "title": "A", "kind": "command", "run": "sleep 0.4"},
                    {"id": "b", "title": "B", "kind": "command", "run": "sleep 0.4"},
                    {"id": "c", "title": "C", "kind": "command", "run": "sleep 0.4"},
                    {"id": "d", "title": "D", "kind": "command", "run": "true", "deps": ["a", "b"]},
                    {"id": "e", "title": "E", "kind": "command", "run": "true", "deps": ["d"]},
                    {
                        "id": "v",
                        "title": "verify",
                        "kind": "verify",
                        "deps": ["a", "b", "c", "d", "e"],
                    },
                ]
            },
        }
    },
}


def transitions(project: Project) -> list[dict[str, object]]:
    res = project.gitdag("log", "--json")
    assert res.code == 0, res.err
    data: list[dict[str, object]] = json.loads(res.out)
    return data


def test_plan_adds_tasks_they_run_in_order_and_in_parallel(project: Project) -> None:
    project.plan(PLAN_OK)
    before = git(project.root, "status", "--porcelain")
    res = project.gitdag("run", "--workers", "3")
    assert res.code == 0, res.err
    status = json.loads(project.gitdag("status", "--json").out)
    assert status["counts"]["done"] == 7 and status["total"] == 7
    entries = transitions(project)
    # One commit per transition: each commit carries one verb; claims and completes pair up.
    verbs = [e["verb"] for e in entries]
    assert verbs.count("claim") == 7 and verbs.count("complete") == 7 and verbs[-1] == "init"
    assert len(entries) == 15
    # Dependency order, from the commit history (newest first -> reverse).
    done_order = [e["nodes"][0] for e in reversed(entries) if e["verb"] == "complete"]
    assert done_order.index("d") > max(done_order.index("a"), done_order.index("b"))
    assert done_order.index("e") > done_order.index("d") and done_order[-1] == "v"
    # a, b, c ran at the same time: their run windows (from each run's log) overlap.
    windows = {}
    for nid in ("a", "b", "c"):
        outcome = json.loads(
            (project.root / ".dagain/local/runs" / nid / "1" / "outcome.json").read_text()
        )
        windows[nid] = (outcome["started_at"], outcome["ended_at"])
    starts = sorted(w[0] for w in windows.values())
    ends = sorted(w[1] for w in windows.values())
    assert starts[-1] < ends[0], windows
    assert git(project.root, "status", "--porcelain") == before


@pytest.mark.parametrize(
    ("behaviour", "kind", "needle"),
    [
        ({"raw": '{"status": "success",'}, "invalid_result", "malformed JSON"),
        ({"no_result": True}, "missing_result", "result"),
        ({"result": {"status": "maybe"}}, "invalid_result", "status"),
        ({"big": 1_100_000}, "invalid_result", "1 MiB"),
        (
            {
                "result": {
                    "status": "success",
                    "next": {
                        "addNodes": [
                            {"id": "x1", "title": "x", "deps": ["x2"]},
                            {"id": "x2", "title": "x", "deps": ["x1"]},
                        ]
                    },
                }
            },
            "invalid_result",
            "cycle",
        ),
        (
            {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": "x1", "title": "x", "deps": ["ghost"]}]},
                }
            },
            "invalid_result",
            "unknown node 'ghost'",
        ),
        (
            {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": "other", "title": "x"}]},
                }
            },
            "invalid_result",
            "already exists",
        ),
        (
            {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": f"n{i}", "title": "x"} for i in range(101)]},
                }
            },
            "invalid_result",
            "more than 100",
        ),
        (
            {
                "result": {
                    "status": "success",
                    "next": {"setStatus": [{"id": "other", "status": "cancelled"}]},
                }
            },
            "invalid_result",
            "outside this node's scope",
        ),
        ({"exit": 3, "no_result": True}, "task_failure", "exited with code 3"),
        ({"sleep": 30}, "timeout", "timed out"),
    ],
)
def test_bad_runner_outcomes_fail_the_attempt_and_apply_nothing(
    project: Project, behaviour: dict[str, object], kind: str, needle: str
) -> None:
    assert (
        project.gitdag(
            "add", "other", "--title", "someone else's", "--kind", "command", "--run", "true"
        ).code
        == 0
    )
    cancelled = project.gitdag("cancel", "other")
    assert cancelled.code == 0, cancelled.err
    if kind == "timeout":
        cfg = (
            (project.root / ".dagain/config.yaml")
            .read_text()
            .replace("timeout_s: 30", "timeout_s: 1")
        )
        (project.root / ".dagain/config.yaml").write_text(cfg)
    project.plan({"plan-000": behaviour})
    res = project.gitdag("run", "--once")
    assert res.code == 1, res.err
    node = project.show("plan-000")
    assert node["status"] == "open"
    error = node["error"]
    assert isinstance(error, dict) and error["kind"] == kind, error
    assert needle in str(error["summary"]), error["summary"]
    ids = {n["id"] for n in json.loads(project.gitdag("graph", "--format", "json").out)["nodes"]}
    assert ids == {"plan-000", "other"}  # nothing of the proposal was applied
    assert project.show("other")["status"] == "cancelled"
    last = transitions(project)[0]
    assert last["verb"] == "fail" and kind in str(last["summary"])  # the reason is in the commit


def test_runner_command_that_does_not_exist_is_refused_before_any_claim(project: Project) -> None:
    cfg = (
        (project.root / ".dagain/config.yaml")
        .read_text()
        .replace("cmd: ", "cmd: /nonexistent/agent ")
    )
    (project.root / ".dagain/config.yaml").write_text(cfg)
    before = git(project.root, "rev-parse", "dagain/state")
    res = project.gitdag("run", "--once")
    assert res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "runner 'fake'" in lines[0] and "role planner" in lines[0]
    assert ".dagain/config.yaml:4" in lines[0] and "/nonexistent/agent" in lines[0]
    assert git(project.root, "rev-parse", "dagain/state") == before  # nothing claimed
    doctor = project.gitdag("doctor")
    assert doctor.code != 0 and "/nonexistent/agent" in doctor.out + doctor.err


def test_failing_three_times_escalates_with_the_failure_in_the_packet(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    packet = tmp_path / "esc-packet.md"
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": "flaky", "title": "flaky"}]},
                }
            },
            "flaky": {"result": {"status": "fail", "summary": "compiler exploded"}},
            "escalate-flaky": {
                "copy_packet": str(packet),
                "result": {"status": "success", "summary": "gave up"},
            },
        }
    )
    res = project.gitdag("run", "--workers", "2")
    assert res.code == 1  # flaky failed for good
    flaky = project.show("flaky")
    assert flaky["status"] == "failed" and flaky["attempts"] == 3
    esc = project.show("escalate-flaky")
    assert esc["status"] == "done" and esc["after"] == ["flaky"] and esc["parent"] == "plan-000"
    text = packet.read_text()
    assert "compiler exploded" in text and "flaky" in text
    verbs = [e["verb"] for e in transitions(project)]
    assert "escalate" in verbs


def test_pool_promotes_to_second_runner_on_timeout(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sys

    from tests.supervisor.conftest import FAKE

    marker = tmp_path / "second-ran"
    project.config(
        runners=f"  slow:\n    cmd: sleep 30\n    timeout_s: 1\n"
        f"  second:\n    cmd: touch {marker} && {sys.executable} {FAKE}\n",
        roles="  planner: [slow, second]\n  executor: fake\n  verifier: fake\n",
    )
    res = project.gitdag("run", "--once")
    assert project.show("plan-000")["error"]["kind"] == "timeout"  # type: ignore[index]
    assert project.show("plan-000")["pool"] == {"index": 1, "failures": 0}
    res = project.gitdag("run", "--once")
    assert res.code == 0, res.err
    assert marker.exists() and project.show("plan-000")["status"] == "done"


def test_exit_code_and_output_of_a_second_supervisor(project: Project) -> None:
    # The runner holds the first supervisor until the test releases it (a fixed sleep lost the
    # race under load: the second process started after the first had finished).
    release = project.root.parent / "release"
    wait = f"i=0; while [ ! -f {release} ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done"
    project.plan({"plan-000": {"shell": wait}})
    first = subprocess.Popen(
        [__import__("sys").executable, "-m", "gitdag", "run"],
        cwd=project.root,
        env={**__import__("os").environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        import time

        deadline = time.time() + 10
        while time.time() < deadline and not project.log():
            time.sleep(0.05)
        second = project.gitdag("run")
        assert second.code == 4 and "another supervisor" in second.err
    finally:
        release.write_text("")
        first.wait(timeout=120)
    assert first.returncode == 0
