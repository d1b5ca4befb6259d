"""Crashes at exact points of `gitdag run`, then a restart: nothing is left behind (issue 7)."""

from __future__ import annotations

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project


def node_worktrees(project: Project) -> list[str]:
    found = git(project.root, "worktree", "list", "--porcelain")
    paths = [line[9:] for line in found.splitlines() if line.startswith("worktree ")]
    return [p for p in paths[1:] if "/_scratch-" not in p]


def test_crash_right_after_the_merge_commit_leaves_no_worktree(rproject: Project) -> None:
    # Found by bench/crash.py: the third state commit of a task is its merge (claim, complete,
    # merge); dying right after it used to leave the node's worktree and branch forever.
    rproject.plan({"t": {"write": {"t.txt": "t\n"}}})
    assert rproject.gitdag("add", "t", "--title", "t").code == 0
    env = {**rproject.env(), "GITDAG_CRASH_AT": "store.after_cas#3"}
    res = run_gitdag(rproject.root, "run", env=env)
    assert res.code == 137
    assert rproject.show("t")["status"] == "done"
    assert len(node_worktrees(rproject)) == 1  # what the crash left
    res = rproject.gitdag("run")
    assert res.code == 0, res.err
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
