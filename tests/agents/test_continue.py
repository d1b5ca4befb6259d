"""Agent loops: a result may `continue` with a bounded state (issue 17 part 1)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

from tests.agents.conftest import LoopProject
from tests.conftest import git

ONE_ATTEMPT = {"max_attempts": 1, "backoff_s": 0}


def test_a_runner_that_continues_three_times_sees_its_counter_0_1_2_3(loops: LoopProject) -> None:
    loops.plan([{"id": "count", "title": "count", "kind": "verify"}], {"count": {"until": 3}})
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    starts = [(r.iteration, r.n) for r in loops.rows("count") if r.kind == "start"]
    assert starts == [("1", 0), ("2", 1), ("3", 2), ("4", 3)]
    assert {r.attempt for r in loops.rows("count")} == {1}  # one attempt, four iterations
    node = loops.show("count")
    assert node["status"] == "done"
    iterates = [m for m in loops.state_log() if "Gitdag-Transition: iterate" in m]
    assert len(iterates) == 3
    assert [m.split("Gitdag-Iteration: ")[1].split()[0] for m in reversed(iterates)] == [
        "2",
        "3",
        "4",
    ]
    assert loops.gitdag("validate").code == 0


def test_the_iteration_over_max_iterations_fails_the_node(loops: LoopProject) -> None:
    node = {"id": "count", "title": "count", "kind": "verify", "max_iterations": 3,
            "retry": ONE_ATTEMPT}  # fmt: skip
    loops.plan([node], {"count": {"until": 100}})
    res = loops.gitdag("run")
    assert res.code != 0
    starts = [r.n for r in loops.rows("count") if r.kind == "start"]
    assert starts == [0, 1, 2]  # the third iteration's `continue` would start a fourth
    shown = loops.show("count")
    assert shown["status"] == "failed"
    error = shown["error"]
    assert isinstance(error, dict)
    assert "max_iterations is 3" in str(error["summary"])
    assert loops.gitdag("validate").code == 0


def test_without_a_node_bound_the_graph_default_ends_the_loop(loops: LoopProject) -> None:
    node = {"id": "count", "title": "count", "kind": "verify", "retry": ONE_ATTEMPT}
    loops.plan([node], {"count": {"until": 100}})
    res = loops.gitdag("run")  # the default bound (20 iterations) ends the loop
    assert res.code != 0
    assert len([r for r in loops.rows("count") if r.kind == "start"]) == 20
    assert "max_iterations is 20" in str(loops.show("count")["error"])


def test_a_task_keeps_its_worktree_between_iterations_and_lands_once(loops: LoopProject) -> None:
    loops.plan([{"id": "grow", "title": "grow"}], {"grow": {"until": 2, "write": True}})
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    assert loops.show("grow")["status"] == "done"
    for n in range(3):
        assert git(loops.root, "show", f"dagain/integration:grow-{n}.txt") != ""
    lands = [s for s in loops.target_log() if s.startswith("gitdag: integrate grow")]
    assert len(lands) == 1
    # Each iteration's work was committed on the node's branch when it continued.
    landed = git(loops.root, "log", "--format=%s", "dagain/integration").splitlines()
    assert sum("grow attempt 1" in s for s in landed) == 3
    assert loops.gitdag("validate").code == 0


def test_kill_9_during_iteration_2_resumes_at_iteration_2_without_overlap(
    loops: LoopProject,
) -> None:
    flag = loops.tmp / "hung"
    loops.plan(
        [{"id": "grow", "title": "grow"}],
        {"grow": {"until": 3, "write": True, "hang_at": 1, "hang_flag": str(flag)}},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=loops.root,
        env={**os.environ, **loops.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 90
    while time.time() < deadline and not flag.exists():
        time.sleep(0.05)
    assert flag.exists(), "iteration 2 never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    rows = loops.rows("grow")
    starts = [(r.iteration, r.n) for r in rows if r.kind == "start"]
    assert starts == [("1", 0), ("2", 1), ("2", 1), ("3", 2), ("4", 3)]
    # No overlap: every run ended (or was stopped) before the next one started.
    spans: list[tuple[float, float]] = []
    for r in rows:
        if r.kind == "start":
            spans.append((r.t, r.t))
        else:
            spans[-1] = (spans[-1][0], r.t)
    assert [kind for kind in (r.kind for r in rows)].count("killed") == 1
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    # Iteration 1's file survived the crash on the node's branch, and everything landed once.
    for n in range(4):
        assert git(loops.root, "show", f"dagain/integration:grow-{n}.txt") != ""
    assert len([s for s in loops.target_log() if s.startswith("gitdag: integrate grow")]) == 1
    assert loops.gitdag("validate").code == 0
