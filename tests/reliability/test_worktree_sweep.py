"""A node that is not running keeps no checkout past a run's end (bench/crash.py's `worktrees`).

Once the crash harness found a done node's worktree still listed by `git worktree list` after
the run that finished the graph. Two ways a checkout outlives its node, each made here exactly:
a kill between moving a checkout away and dropping its registration, and a checkout recovery
must leave because a live process launched the runner working there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from gitdag.runner.procs import start_ticks
from tests.conftest import git
from tests.reliability.test_recovery import node_worktrees
from tests.supervisor.conftest import Project
from tests.timing import within


def _finish_one_task(project: Project, extra: dict[str, object] | None = None) -> None:
    project.plan({"t": {"write": {"t.txt": "t\n"}}, **(extra or {})})
    assert project.gitdag("add", "t", "--title", "t").code == 0
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert node_worktrees(project) == []


def test_a_registration_left_without_its_checkout_is_dropped_by_the_next_run(
    rproject: Project,
) -> None:
    # What a supervisor killed inside a removal leaves (worktrees.py `_discard`): the checkout
    # moved into trash/ (and deleted since), its registration still in .git/worktrees/.
    _finish_one_task(rproject)
    checkout = rproject.root / ".dagain" / "local" / "worktrees" / "t"
    git(rproject.root, "worktree", "add", "-q", "--detach", str(checkout), "dagain/integration")
    shutil.rmtree(checkout)
    assert node_worktrees(rproject) == [str(checkout)]  # git lists it (prunable)
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
    assert node_worktrees(rproject) == []
    assert rproject.show("t")["status"] == "done"


def test_a_checkout_recovery_had_to_leave_goes_when_the_run_ends(rproject: Project) -> None:
    # At the start, t's checkout is in use by a runner whose launcher still lives (another
    # process): recovery must leave it. The launcher dies while the run works on u; once nothing
    # runs, the run stops that orphan and removes the checkout before it exits.
    go = rproject.root.parent / "go"
    _finish_one_task(rproject, {"u": {"shell": f"while [ ! -e {go} ]; do sleep 0.05; done"}})
    checkout = rproject.root / ".dagain" / "local" / "worktrees" / "t"
    git(rproject.root, "worktree", "add", "-q", "--detach", str(checkout), "dagain/integration")
    launcher = subprocess.Popen(["sleep", "300"])
    orphan = subprocess.Popen(["sleep", "300"], cwd=checkout, start_new_session=True)
    run_dir = rproject.root / ".dagain" / "local" / "runs" / "t" / "9"
    run_dir.mkdir(parents=True)
    (run_dir / "pid.json").write_text(json.dumps({
        "pid": orphan.pid, "pgid": orphan.pid, "start_ticks": start_ticks(orphan.pid),
        "node_id": "t", "attempt": 9, "run_id": "planted", "supervisor_pid": launcher.pid,
        "supervisor_start_ticks": start_ticks(launcher.pid),
    }))  # fmt: skip
    assert rproject.gitdag("add", "u", "--title", "u").code == 0
    assert node_worktrees(rproject) == [str(checkout)]
    sup = subprocess.Popen([sys.executable, "-m", "gitdag", "run"], cwd=rproject.root,
                           env={**os.environ, **rproject.env()}, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + within(30)
        while not any(r[:2] == ("start", "u") for r in rproject.log()):
            assert time.monotonic() < deadline and sup.poll() is None
            time.sleep(0.05)
        assert str(checkout) in node_worktrees(rproject)  # recovery left it: in use
        launcher.kill()
        launcher.wait()
        go.touch()
        _, err = sup.communicate(timeout=within(30))
    finally:
        go.touch()  # u's runner ends however the test went (it runs in a session of its own)
        for proc in (sup, launcher, orphan):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sup.returncode == 0, err
    assert node_worktrees(rproject) == []
    assert orphan.wait(timeout=within(5)) is not None  # stopped, not left running
