"""Live checkouts stay as few as the running nodes (issue 18 part 2).

A finished task's work is committed on its branch, which is all its merge needs, so its
worktree is removed as soon as it finishes rather than after its merge: every merge reads every
registration (`checkouts_of`), and with tasks finishing faster than the queue merges them,
hundreds of idle checkouts made each merge slower.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import git, run_gitdag
from tests.supervisor.conftest import Project, project  # noqa: F401 (the fixture)

SCRIPT = """import os, subprocess
out = subprocess.run(["git", "worktree", "list", "--porcelain"], capture_output=True, text=True)
names = [line.split("/")[-1] for line in out.stdout.splitlines() if line.startswith("worktree ")]
with open(os.environ["SEEN"], "a") as fh:
    fh.write(" ".join([os.environ["GITDAG_NODE_ID"], *names]) + "\\n")
"""


def test_a_merging_node_has_no_checkout_and_still_merges(
    project: Project,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen.txt"
    tasks = [{"id": f"t{i}", "title": f"file {i}"} for i in range(3)]
    behaviours: dict[str, object] = {
        "plan-000": {"result": {"status": "success", "next": {"addNodes": tasks}}}
    }
    for i in range(3):
        behaviours[f"t{i}"] = {"write": {f"f{i}.txt": f"content {i}\n"}}
    project.plan(behaviours)
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    project.config(f"merge:\n  check: {sys.executable} {script}\n")
    env = {**project.env(), "SEEN": str(seen)}
    res = run_gitdag(project.root, "run", "--workers", "1", env=env)
    assert res.code == 0, res.err
    for i in range(3):
        assert git(project.root, "show", f"dagain/integration:f{i}.txt") == f"content {i}\n"
    rows = [line.split() for line in seen.read_text().splitlines()]
    assert sorted(r[0] for r in rows) == ["t0", "t1", "t2"]
    for node_id, *listed in rows:
        assert node_id not in listed  # its checkout was gone while it merged
