"""A task's worktree stays as the agent left it between iterations (issue 17 part 1)."""

from __future__ import annotations

from tests.agents.conftest import LoopProject
from tests.conftest import git


def test_files_git_ignores_survive_between_iterations_and_never_land(loops: LoopProject) -> None:
    # `.gitignore` says build/: iteration 1 writes build/cache.bin, iterations 2 and 3 find it.
    loops.plan([{"id": "grow", "title": "grow"}], {"grow": {"until": 2, "write": True,
                                                           "cache": True}})  # fmt: skip
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    caches = [(r.kind, r.iteration) for r in loops.rows("grow") if r.kind.startswith("cache")]
    assert caches == [("cache-hit", "2"), ("cache-hit", "3")]
    assert loops.show("grow")["status"] == "done"
    for n in range(3):
        assert git(loops.root, "show", f"dagain/integration:grow-{n}.txt") != ""
    assert len([s for s in loops.target_log() if s.startswith("gitdag: integrate grow")]) == 1
    # The ignored file was never committed: not on the target, not in any commit of any branch.
    everything = git(loops.root, "log", "--all", "--format=", "--name-only")
    assert "build/cache.bin" not in everything
    assert "grow-0.txt" in everything
    assert loops.gitdag("validate").code == 0


def test_an_iteration_that_changed_no_tracked_file_keeps_the_worktree(loops: LoopProject) -> None:
    # Nothing for git to commit after iteration 1: the worktree stays all the same.
    loops.plan([{"id": "warm", "title": "warm"}], {"warm": {"until": 1, "cache": True}})
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    caches = [(r.kind, r.iteration) for r in loops.rows("warm") if r.kind.startswith("cache")]
    assert caches == [("cache-hit", "2")]
    assert "build/cache.bin" not in git(loops.root, "log", "--all", "--format=", "--name-only")
