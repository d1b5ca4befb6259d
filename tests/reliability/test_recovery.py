"""Crashes at exact points of `gitdag run`, then a restart: nothing is left behind (issue 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project


def node_worktrees(project: Project) -> list[str]:
    found = git(project.root, "worktree", "list", "--porcelain")
    paths = [line[9:] for line in found.splitlines() if line.startswith("worktree ")]
    return [p for p in paths[1:] if "/_scratch-" not in p]


def test_crash_right_after_the_merge_commit_leaves_no_worktree(rproject: Project) -> None:
    # Found by bench/crash.py: the third state commit of a task is its merge (claim, complete,
    # merge); dying right after it used to leave the node's worktree and branch forever. The
    # worktree now goes when the attempt ends (issue 18), so only the branch is left.
    rproject.plan({"t": {"write": {"t.txt": "t\n"}}})
    assert rproject.gitdag("add", "t", "--title", "t").code == 0
    env = {**rproject.env(), "GITDAG_CRASH_AT": "store.after_cas#3"}
    res = run_gitdag(rproject.root, "run", env=env)
    assert res.code == 137
    assert rproject.show("t")["status"] == "done"
    assert node_worktrees(rproject) == []
    assert git(rproject.root, "branch", "--list", "dagain/work/*").strip() == "dagain/work/t"
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
    assert node_worktrees(rproject) == []
    assert git(rproject.root, "branch", "--list", "dagain/work/*") == ""
    assert git(rproject.root, "show", "dagain/integration:t.txt") == "t\n"


def test_crash_between_complete_and_the_checkout_removal_merges_and_tidies(
    rproject: Project,
) -> None:
    rproject.plan({"t": {"write": {"t.txt": "t\n"}}})
    assert rproject.gitdag("add", "t", "--title", "t").code == 0
    env = {**rproject.env(), "GITDAG_CRASH_AT": "store.after_cas#2"}  # right after `complete`
    assert run_gitdag(rproject.root, "run", env=env).code == 137
    assert rproject.show("t")["status"] == "merging"
    assert len(node_worktrees(rproject)) == 1  # what the crash left
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
    assert rproject.show("t")["status"] == "done"
    assert node_worktrees(rproject) == []
    assert git(rproject.root, "branch", "--list", "dagain/work/*") == ""
    assert git(rproject.root, "show", "dagain/integration:t.txt") == "t\n"


def test_crash_after_the_leftover_commit_reruns_the_attempt_and_integrates_once(
    rproject: Project,
) -> None:
    rproject.plan({"t": {"write": {"t.txt": "t\n"}}})
    assert rproject.gitdag("add", "t", "--title", "t").code == 0
    env = {**rproject.env(), "GITDAG_CRASH_AT": "workspace.after_leftover_commit"}
    assert run_gitdag(rproject.root, "run", env=env).code == 137
    assert rproject.show("t")["status"] == "running"
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
    node = rproject.show("t")
    assert node["status"] == "done" and node["attempts"] == 2
    merges = git(rproject.root, "log", "--format=%s", "dagain/integration").splitlines()
    assert [m for m in merges if m.startswith("gitdag: integrate t ")] == [
        "gitdag: integrate t (attempt 2)"
    ]
    assert node_worktrees(rproject) == []
    assert rproject.gitdag("validate", "..dagain/state").code == 0


def test_node_cancelled_while_its_supervisor_was_dead_keeps_its_work(rproject: Project) -> None:
    # Not `running` any more, so crash recovery does not see it: its orphaned runner must still
    # be stopped before its worktree goes, and the attempt's uncommitted work is kept on its
    # branch for inspection.
    rproject.plan({"t": {"write": {"t.txt": "half done\n"}, "sleep": 60}})
    assert rproject.gitdag("add", "t", "--title", "t").code == 0
    env = {**os.environ, **rproject.env()}
    sup = subprocess.Popen([sys.executable, "-m", "gitdag", "run"], cwd=rproject.root, env=env,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 30
    while not rproject.log():
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    runner = rproject.log()[0][3]
    assert rproject.gitdag("cancel", "t").code == 0
    res = rproject.gitdag("run")
    assert res.code in (0, 1), res.err
    assert [row[0] for row in rproject.log()] == ["start", "killed"]  # stopped, never restarted
    assert not Path(f"/proc/{runner}/cmdline").exists() or "Z" in Path(
        f"/proc/{runner}/stat").read_text()  # fmt: skip
    assert node_worktrees(rproject) == []
    assert git(rproject.root, "show", "dagain/work/t:t.txt") == "half done\n"


def test_retry_after_a_cancel_while_the_supervisor_was_dead_never_overlaps(
    rproject: Project,
) -> None:
    # Cancelled and retried while no supervisor ran: the node is open, not running, so only a
    # sweep of all runs finds the old attempt's runner, which must stop before attempt 2 starts.
    rproject.plan({"v": [{"sleep": 60}, {}]})
    assert rproject.gitdag("add", "v", "--title", "v", "--kind", "verify").code == 0
    env = {**os.environ, **rproject.env()}
    sup = subprocess.Popen([sys.executable, "-m", "gitdag", "run"], cwd=rproject.root, env=env,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 30
    while not rproject.log():
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    assert rproject.gitdag("cancel", "v").code == 0
    assert rproject.gitdag("retry", "v").code == 0
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
    rows = rproject.log()
    assert [(r[0], r[2]) for r in rows] == [("start", 1), ("killed", 1), ("start", 2), ("end", 2)]
    assert rows[1][4] < rows[2][4]
