"""`max_duration_s` bounds an agent loop while it runs, across iterations and crashes (issue 17)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time

from tests.agents.conftest import LoopProject
from tests.conftest import run_gitdag

ONE_ATTEMPT = {"max_attempts": 1, "backoff_s": 0}


def error_of(loops: LoopProject, node_id: str) -> dict[str, object]:
    shown = loops.show(node_id)
    assert shown["status"] == "failed", shown
    error = shown["error"]
    assert isinstance(error, dict)
    return error


def test_a_loop_past_max_duration_s_is_stopped_in_its_iteration(loops: LoopProject) -> None:
    # Iteration 2 sleeps two minutes; the runner's own timeout_s is 60 s: the loop's bound (8 s
    # from iteration 1's start) is what stops it, well before either.
    node = {"id": "slow", "title": "slow", "kind": "verify", "max_duration_s": 8,
            "retry": ONE_ATTEMPT}  # fmt: skip
    loops.plan([node], {"slow": {"until": 100, "sleep_at": 1}})
    began = time.time()
    res = loops.gitdag("run")
    assert res.code != 0
    ended = time.time()
    rows = [(r.kind, r.iteration) for r in loops.rows("slow")]
    # TERM to its process group, as for a timeout (then KILL a second later: on a loaded
    # machine its handler may not get to log "killed").
    assert rows in ([("start", "1"), ("end", "1"), ("start", "2")],
                    [("start", "1"), ("end", "1"), ("start", "2"), ("killed", "2")])  # fmt: skip
    assert ended - began < 100  # far from the sleep's two minutes
    stopped = loops.root / ".dagain" / "local" / "runs" / "slow" / "1" / "iteration-2"
    outcome = json.loads((stopped / "outcome.json").read_text())
    assert outcome["timed_out"] is True and outcome["verdict"] == "task_failure"
    # Not before the bound: the clock starts at the claim (after `began`), but node files keep
    # whole seconds, so the recorded start is up to 1 s earlier than the claim itself.
    assert ended - began >= 8 - 1
    error = error_of(loops, "slow")
    assert error["kind"] == "task_failure"
    summary = str(error["summary"])
    assert "ran past max_duration_s 8" in summary and "stopped in iteration 2" in summary
    assert "process group stopped" in summary
    assert loops.gitdag("validate").code == 0


def test_a_runner_timeout_shorter_than_the_loop_bound_is_a_timeout(loops: LoopProject) -> None:
    # Each iteration gets its own timeout_s; the loop's max_duration_s only cuts it shorter.
    node = {"id": "slow", "title": "slow", "kind": "verify", "max_duration_s": 600,
            "retry": ONE_ATTEMPT}  # fmt: skip
    loops.config(timeout_s=4)  # iteration 2 sleeps: the test waits this out once
    loops.plan([node], {"slow": {"until": 100, "sleep_at": 1}})
    assert loops.gitdag("run").code != 0
    error = error_of(loops, "slow")
    assert error["kind"] == "timeout"
    assert "timed out after 4" in str(error["summary"])


def test_a_crash_does_not_reset_the_loops_clock(loops: LoopProject) -> None:
    # Iteration 2 hangs; the supervisor is killed (-9) and restarted only after the bound has
    # passed: the recovered loop fails at once (its clock is in the node file), without a run.
    bound = 20
    node = {"id": "slow", "title": "slow", "kind": "verify", "max_duration_s": bound,
            "retry": ONE_ATTEMPT}  # fmt: skip
    loops.plan([node], {"slow": {"until": 100, "sleep_at": 1}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=loops.root,
        env={**os.environ, **loops.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(
            r.kind == "start" and r.iteration == "2" for r in loops.rows("slow")
        ):
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rows = loops.rows("slow")
    assert [(r.kind, r.iteration) for r in rows] == [("start", "1"), ("end", "1"), ("start", "2")]
    crashed = time.time()
    first = rows[0].t
    time.sleep(max(0.0, first + bound + 1 - time.time()))
    res = loops.gitdag("run")
    assert res.code != 0
    after = [r for r in loops.rows("slow") if r.t > crashed]
    assert [r.kind for r in after] in ([], ["killed"])  # the orphan, stopped: no new run
    summary = str(error_of(loops, "slow")["summary"])
    assert f"ran past max_duration_s {bound}" in summary and "no time was left" in summary
    # The clock named is iteration 1's start, before the crash, not the restart's claim.
    since = re.search(r"start at (\S+)\)", summary)
    assert since is not None
    assert dt.datetime.fromisoformat(since.group(1)).timestamp() <= first
    assert loops.gitdag("validate").code == 0


def test_init_and_add_set_the_loop_bounds(loops: LoopProject) -> None:
    # Graph defaults at `init`, a node's own at `add`; the node's wins, a bad value is refused.
    fresh = loops.tmp / "fresh"
    fresh.mkdir()
    git_init = subprocess.run(["git", "init", "-q"], cwd=fresh)
    assert git_init.returncode == 0
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=fresh, check=True)
    res = run_gitdag(fresh, "init", "--max-iterations", "5", "--max-duration", "90")
    assert res.code == 0, res.err
    graph = subprocess.run(["git", "show", "dagain/state:graph.yaml"], cwd=fresh,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "max_iterations: 5\n" in graph and "max_duration_s: 90\n" in graph
    res = loops.gitdag("add", "count", "--title", "count", "--kind", "verify",
                       "--max-iterations", "2", "--max-duration", "600")  # fmt: skip
    assert res.code == 0, res.err
    shown = loops.show("count")
    assert shown["max_iterations"] == 2 and shown["max_duration_s"] == 600
    bad = loops.gitdag("add", "bad", "--title", "bad", "--max-duration", "0")
    assert bad.code == 2 and "--max-duration" in bad.err
    loops.plan([], {"count": {"until": 100}})
    assert loops.gitdag("run").code != 0
    assert [r.n for r in loops.rows("count") if r.kind == "start"][-2:] == [0, 1]
    assert "max_iterations is 2" in str(loops.show("count")["error"])
