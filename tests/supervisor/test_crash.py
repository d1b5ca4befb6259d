"""kill -9 of the supervisor with runners in flight, then `gitdag run` again (issue 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.supervisor.conftest import Project


def test_kill_9_with_three_runners_in_flight_recovers_without_overlap(project: Project) -> None:
    project.plan(
        {
            "plan-000": {
                "result": {
                    "status": "success",
                    "next": {
                        "addNodes": [{"id": f"w{i}", "title": f"w{i}"} for i in range(3)]
                        + [{"id": "after", "title": "after", "deps": ["w0", "w1", "w2"]}]
                    },
                }
            },
            "w0": {"sleep": 3},
            "w1": {"sleep": 3},
            "w2": {"sleep": 3},
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run", "--workers", "3"],
        cwd=project.root,
        env={**os.environ, **project.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        started = {r[1] for r in project.log() if r[0] == "start" and r[1].startswith("w")}
        if len(started) == 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = project.gitdag("run", "--workers", "3")
    assert res.code == 0, res.err
    assert "recovered" in res.err
    rows = project.log()
    for node in ("w0", "w1", "w2"):
        spans: dict[int, list[float]] = {}
        for _kind, nid, attempt, _pid, t in rows:
            if nid == node:
                spans.setdefault(attempt, []).append(t)
        assert sorted(spans) == [1, 2], spans  # the lost attempt, then a new one
        first_end = max(spans[1])  # its `killed` line: the orphan was stopped...
        assert len(spans[1]) == 2, spans
        assert first_end < min(spans[2])  # ...before attempt 2 started
    for node in ("plan-000", "w0", "w1", "w2", "after"):
        assert project.show(node)["status"] == "done"
    assert project.gitdag("validate").code == 0
