"""An agent loop's orphaned runner is found in its iteration's run directory after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.agents.conftest import LoopProject


def test_an_orphan_of_iteration_2_is_stopped_after_its_node_was_cancelled(
    loops: LoopProject,
) -> None:
    # The supervisor dies (-9) in iteration 2; the node is cancelled while it is dead: the next
    # `gitdag run` must still stop the runner (its pid.json is in runs/<node>/1/iteration-2/).
    flag = loops.tmp / "hung"
    loops.plan(
        [{"id": "grow", "title": "grow", "kind": "verify"}],
        {"grow": {"until": 3, "hang_at": 1, "hang_flag": str(flag)}},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=loops.root,
        env={**os.environ, **loops.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not flag.exists():
            time.sleep(0.05)
        assert flag.exists(), "iteration 2 never started"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    res = loops.gitdag("cancel", "grow")
    assert res.code == 0, res.err
    assert [r.kind for r in loops.rows("grow")] == ["start", "end", "start"]
    res = loops.gitdag("run")
    assert "stopped the orphaned runner of attempt 1" in res.err, res.err
    # TERM, then KILL a second later (on a loaded machine its handler may not log "killed").
    assert [r.kind for r in loops.rows("grow")][:3] == ["start", "end", "start"]
    assert len(loops.rows("grow")) <= 4
    assert loops.show("grow")["status"] == "cancelled"
