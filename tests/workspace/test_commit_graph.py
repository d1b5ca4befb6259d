"""The merge queue keeps git's commit-graph up to date (`workspace/commit_graph.py`).

Without it, every merge of a branch cut from an old tip walks the loose commits in between to
find the merge base, and the cost of a merge grows with the graph (docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.workspace import commit_graph
from tests.conftest import git, make_repo, run_gitdag
from tests.supervisor.conftest import Project

TASKS = 5
CHAIN = Path(".git/objects/info/commit-graphs/commit-graph-chain")


def _project(where: Path) -> Project:
    root = make_repo(where / "proj", {"README.md": "# p\n", "src/app.py": "x = 1\n"})
    proj = Project(root, where / "plan.json", where / "runs.log")
    tasks = [{"id": f"t{i}", "title": f"file {i}"} for i in range(TASKS)]
    plan: dict[str, object] = {
        "plan-000": {"result": {"status": "success", "next": {"addNodes": tasks}}}
    }
    for i in range(TASKS):
        plan[f"t{i}"] = {"write": {f"f{i}.txt": f"content {i}\n"}}
    proj.plan(plan)
    res = proj.gitdag("init", "--goal", "Test goal", "--backoff", "0")
    assert res.code == 0, res.err
    proj.config()
    return proj


def _run(proj: Project, every: str) -> None:
    env = {**proj.env(), commit_graph.ENV: every}
    res = run_gitdag(proj.root, "run", "--workers", "3", env=env)
    assert res.code == 0, res.err


def _verified(root: Path) -> list[str]:
    """The commit-graph's layers, checked by `git commit-graph verify`."""
    git(root, "commit-graph", "verify")
    layers = (root / CHAIN).read_text().split()
    assert layers
    return layers


def test_gitdag_run_writes_a_valid_commit_graph_and_merges_the_same(tmp_path: Path) -> None:
    with_graph = _project(tmp_path / "with")
    without = _project(tmp_path / "without")
    _run(with_graph, "2")
    _run(without, "0")
    assert (with_graph.root / CHAIN).is_file()
    assert not (without.root / CHAIN).exists()
    assert not (without.root / ".git/objects/info/commit-graph").exists()
    _verified(with_graph.root)
    # Every merge landed on the target, with the same tree either way.
    for proj in (with_graph, without):
        subjects = git(proj.root, "log", "--first-parent", "--format=%s", "dagain/integration")
        merged = sorted(s.split()[2] for s in subjects.splitlines() if "integrate" in s)
        assert merged == [f"t{i}" for i in range(TASKS)]
    trees = {git(p.root, "rev-parse", "dagain/integration^{tree}") for p in (with_graph, without)}
    assert len(trees) == 1
    # The user's config is untouched: the commit-graph is a file, not a setting.
    assert "commitgraph" not in git(with_graph.root, "config", "--list", "--local").lower()


def test_every_nth_landing_adds_a_layer_and_zero_never_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    git_dir = root / ".git"
    monkeypatch.setenv(commit_graph.ENV, "3")
    wrote = [commit_graph.landed(root, git_dir) for _ in range(3)]
    assert wrote == [False, False, True]
    assert (root / CHAIN).is_file()
    first = _verified(root)
    for i in range(3):  # new commits, then three more landings: a new layer holds them
        (root / "a.txt").write_text(f"a{i}\n")
        git(root, "commit", "-qam", f"c{i}")
    assert [commit_graph.landed(root, git_dir) for _ in range(3)] == [False, False, True]
    assert _verified(root) != first
    monkeypatch.setenv(commit_graph.ENV, "0")
    (root / CHAIN).unlink()
    assert not any(commit_graph.landed(root, git_dir) for _ in range(10))
    assert not (root / CHAIN).exists()


def test_a_write_that_fails_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another git holding the graph's lock: no write, no error (the graph is only a cache)."""
    root = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    lock = root / ".git/objects/info/commit-graphs/commit-graph-chain.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    monkeypatch.setenv(commit_graph.ENV, "1")
    assert commit_graph.landed(root, root / ".git") is False
    assert not (root / CHAIN).exists()
    lock.unlink()  # once the other git is done, the next landing writes
    assert commit_graph.landed(root, root / ".git") is True
    git(root, "commit-graph", "verify")
