"""Control from another shell while `gitdag run` works: answer, cancel, pause (issue 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.conftest import git
from tests.supervisor.conftest import Project
from tests.timing import within


@contextmanager
def supervisor(project: Project, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run", *args],
        cwd=project.root,
        text=True,
        env={**os.environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def runner_gone(project: Project, node_id: str) -> bool:
    """The runner process of `node_id` (pid from its `start` line) no longer exists."""
    pids = [r[3] for r in project.log() if r[0] == "start" and r[1] == node_id]
    if not pids:
        return False
    try:
        os.kill(pids[-1], 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone for our purposes: it runs nothing
        with open(f"/proc/{pids[-1]}/stat") as fh:
            return fh.read().split(") ")[1].startswith("Z")
    except OSError:
        return True


def status_of(project: Project, node_id: str) -> str:
    res = project.gitdag("show", node_id, "--json")
    return str(json.loads(res.out)["status"]) if res.code == 0 else "?"


def test_checkpoint_answer_from_another_shell_reaches_the_next_packet(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    packet = tmp_path / "q-{attempt}.md"
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": "q", "title": "decide"}]},
                }
            },
            "q": [
                {
                    "result": {
                        "status": "checkpoint",
                        "checkpoint": {
                            "question": "Postgres or SQLite?",
                            "options": ["postgres", "sqlite"],
                        },
                    }
                },
                {
                    "copy_packet": str(packet),
                    "result": {"status": "success", "summary": "used the answer"},
                },
            ],
        }
    )
    with supervisor(project, "--watch") as proc:
        wait_for(lambda: status_of(project, "q") == "needs_human")
        res = project.gitdag("answer", "q", "--option", "2")
        assert res.code == 0, res.err
        wait_for(lambda: status_of(project, "q") == "done")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    text = (tmp_path / "q-2.md").read_text()
    assert "sqlite" in text and "Postgres or SQLite?" in text
    node = project.show("q")
    assert node["checkpoint"]["answer"] == "sqlite"  # type: ignore[index]
    log = git(project.root, "log", "--format=%s", "dagain/state")
    assert "answer q: needs_human -> open" in log


def test_checkpoint_node_waits_for_a_human_and_run_exits_1(project: Project) -> None:
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {
                        "addNodes": [
                            {
                                "id": "gate",
                                "title": "Ship?",
                                "kind": "checkpoint",
                                "description": "Ship it?",
                            }
                        ]
                    },
                }
            }
        }
    )
    res = project.gitdag("run")
    assert res.code == 1 and "wait for an answer" in res.err
    assert status_of(project, "gate") == "needs_human"
    assert project.gitdag("answer", "gate", "yes").code == 0
    assert status_of(project, "gate") == "done"
    assert project.gitdag("run").code == 0


def test_cancel_stops_the_runner_within_two_seconds(project: Project) -> None:
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {"addNodes": [{"id": "slow", "title": "slow"}]},
                }
            },
            "slow": {"sleep": 60},
        }
    )
    with supervisor(project) as proc:
        wait_for(lambda: any(r[0] == "start" and r[1] == "slow" for r in project.log()))
        t0 = time.monotonic()
        assert project.gitdag("cancel", "slow").code == 0
        wait_for(lambda: runner_gone(project, "slow"), timeout=10)
        assert time.monotonic() - t0 < within(2.0 + 0.6)  # the CLI process start is in it too
        assert proc.wait(timeout=20) == 0  # cancelled nodes settle the graph
    assert status_of(project, "slow") == "cancelled"


def test_pause_stops_new_claims_and_resume_continues(project: Project) -> None:
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {
                        "addNodes": [
                            {"id": "a", "title": "a", "kind": "command", "run": "sleep 4"},
                            {
                                "id": "b",
                                "title": "b",
                                "kind": "command",
                                "run": "true",
                                "deps": ["a"],
                            },
                        ]
                    },
                }
            }
        }
    )
    with supervisor(project) as proc:
        wait_for(lambda: status_of(project, "a") == "running")
        assert project.gitdag("pause").code == 0
        assert proc.wait(timeout=20) == 1
    assert status_of(project, "a") == "done" and status_of(project, "b") == "open"
    assert "paused" in project.gitdag("run").err
    assert project.gitdag("resume").code == 0
    assert project.gitdag("run").code == 0
    assert status_of(project, "b") == "done"


def test_result_for_a_superseded_attempt_is_rejected_and_writes_nothing(project: Project) -> None:
    import datetime as dt

    from gitdag.core import judging, lifecycle
    from gitdag.core.results import RunnerResult
    from gitdag.store.state import StateStore

    with StateStore.open(project.root) as store:
        for _ in range(2):  # attempt 1 is lost (worker gone), attempt 2 is current
            store.transact(
                lambda s, now: lifecycle.claim(
                    store.node(s, "plan-000"), worker="w", now=now, lease_s=60
                ),
                actor="t",
            )
            store.transact(
                lambda s, now: lifecycle.recover(store.node(s, "plan-000"), reason="gone", now=now),
                actor="t",
            )
        store.transact(
            lambda s, now: lifecycle.claim(
                store.node(s, "plan-000"), worker="w", now=now, lease_s=60
            ),
            actor="t",
        )
        head = store.head()
        late = RunnerResult(status="success", summary="late")
        out = store.transact(
            lambda s, now: judging.judge(
                store.node(s, "plan-000"), s.nodes, {}, s.graph, late, attempt=1, now=now
            ),
            actor="t",
        )
        assert out is not None and "superseded" in str(out)
        assert store.head() == head
        assert dt is not None


def test_reset_from_another_shell_stops_runners_the_new_graph_does_not_run(
    project: Project,
) -> None:
    root_commit = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    project.plan(
        {
            "plan-000": [  # attempt numbers never go back: after the reset, plan-000 runs attempt 2
                {
                    "result": {
                        "status": "success",
                        "next": {"addNodes": [{"id": "slow", "title": "slow"}]},
                    }
                },
                {"result": {"status": "success", "summary": "replanned: nothing to do"}},
            ],
            "slow": {"sleep": 60},
        }
    )
    with supervisor(project) as proc:
        wait_for(lambda: any(r[0] == "start" and r[1] == "slow" for r in project.log()))
        t0 = time.monotonic()
        res = project.gitdag("reset", "--to", root_commit)
        assert res.code == 0, res.err
        wait_for(lambda: runner_gone(project, "slow"), timeout=10)
        assert time.monotonic() - t0 < within(2.6)
        assert proc.wait(timeout=30) == 0  # plan-000 reran on the reset graph and settled it
    ids = {n["id"] for n in json.loads(project.gitdag("graph", "--format", "json").out)["nodes"]}
    assert ids == {"plan-000"}
