"""A kill -9 while a transaction group lands: its code and its record move together, or neither."""

from __future__ import annotations

import pytest

from tests.agents.conftest import LoopProject
from tests.conftest import git, run_gitdag

FILES = ("k1.txt", "k2.txt", "k3.txt")


def held_on_target(loops: LoopProject) -> set[str]:
    files = set(git(loops.root, "ls-tree", "--name-only", "dagain/integration").split())
    return files & set(FILES)


@pytest.mark.parametrize(
    "point", ["supervisor.before_merge_commit", "merge.group_after_advance", "store.after_cas#9"]
)
def test_a_kill_while_a_group_lands_leaves_all_or_nothing_and_it_lands_once(
    loops: LoopProject, point: str
) -> None:
    nodes = [{"id": f"k{i}", "title": f"change k{i}", "group": "api"} for i in (1, 2, 3)]
    loops.plan(nodes, {f"k{i}": {"files": [{f"k{i}.txt": f"{i}\n"}]} for i in (1, 2, 3)})
    env = {**loops.env(), "GITDAG_CRASH_AT": point}
    killed = run_gitdag(loops.root, "run", "--workers", "3", env=env, timeout=180)
    assert killed.code == 137, killed.err
    statuses = {loops.show(f"k{i}")["status"] for i in (1, 2, 3)}
    # The target holds the group exactly when its members are recorded done.
    assert (held_on_target(loops), statuses) in (
        (set(), {"merging"}),
        (set(), {"merging", "running"}),
        (set(), {"running"}),
        (set(FILES), {"done"}),
    ), (held_on_target(loops), statuses)
    res = loops.gitdag("run", "--workers", "3")
    assert res.code == 0, res.err
    assert held_on_target(loops) == set(FILES)
    lands = [s for s in loops.target_log() if s.startswith("gitdag: integrate")]
    assert lands == ["gitdag: integrate group api (3 nodes)"]
    assert loops.gitdag("validate").code == 0
    branches = git(loops.root, "for-each-ref", "--format=%(refname)", "refs/heads/dagain/work")
    assert branches.strip() == ""
