"""Processes per task node (issue 18 part 3): at most 7 git (and rm) processes, end to end.

A `git` and an `rm` shim first on PATH log every invocation; `gitdag run` runs a graph whose
planner adds 1, then 3 task nodes, each writing one file that is committed and merged. The
difference between the two runs, per extra node, is what one task node costs: its worktree,
its leftover commit, its merge and landing, its removal.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import git, make_repo, run_gitdag
from tests.supervisor.conftest import Project

LIMIT = 7


def shims(bin_dir: Path, log: Path) -> dict[str, str]:
    bin_dir.mkdir()
    for name in ("git", "rm"):
        real = shutil.which(name)
        assert real is not None
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\nexec {real} "$@"\n')
        shim.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_tasks(base: Path, n: int) -> list[str]:
    root = make_repo(base / "proj", {"README.md": "# p\n"})
    proj = Project(root, base / "plan.json", base / "runs.log")
    tasks = [{"id": f"t{i}", "title": f"file {i}"} for i in range(n)]
    plan: dict[str, object] = {
        "plan-000": {"result": {"status": "success", "next": {"addNodes": tasks}}}
    }
    for i in range(n):
        plan[f"t{i}"] = {"write": {f"f{i}.txt": f"content {i}\n"}}
    proj.plan(plan)
    assert proj.gitdag("init", "--goal", "g", "--backoff", "0").code == 0
    proj.config()
    log = base / "processes.log"
    env = {**proj.env(), **shims(base / "bin", log)}
    res = run_gitdag(root, "run", "--workers", "1", env=env)
    assert res.code == 0, res.err
    for i in range(n):
        assert git(root, "show", f"dagain/integration:f{i}.txt") == f"content {i}\n"
    return log.read_text().splitlines()


def test_a_task_node_costs_at_most_seven_git_processes(tmp_path: Path) -> None:
    one = run_tasks(tmp_path / "one", 1)
    three = run_tasks(tmp_path / "three", 3)
    per_node = (len(three) - len(one)) / 2
    assert per_node <= LIMIT, "\n".join(three)
    # The commits and ref moves after write-tree and merge-tree are written in-process.
    assert not any(line.startswith("git commit-tree") for line in three), three
