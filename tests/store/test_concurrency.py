"""Concurrent writers on one repository: init races, and many adds with no lost update."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dulwich.objects import Commit, Tree
from dulwich.repo import Repo

from gitdag.core.transitions import Transition
from gitdag.errors import InputError
from gitdag.store.state import StateStore
from tests.conftest import git, make_repo, run_gitdag

ADDER = textwrap.dedent(
    """
    import sys
    from gitdag import actions
    from gitdag.store.state import StateStore

    prefix, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    store = StateStore.open(".")
    while not __import__("os").path.exists(go):   # start together
        pass
    tries = 0
    for i in range(count):
        committed = actions.add(store, {"id": f"{prefix}-{i:03d}", "title": f"node {i}"})
        tries += committed.tries
    store.close()
    print(tries)
    """
)


def _node_counts(repo_path: Path) -> list[int]:
    """Number of node files in each commit of dagain/state, oldest first (first parents)."""
    repo = Repo(str(repo_path))
    counts: list[int] = []
    sha = repo.refs[b"refs/heads/dagain/state"]
    while True:
        commit = repo[sha]
        assert isinstance(commit, Commit)
        root = repo[commit.tree]
        assert isinstance(root, Tree)
        total = 0
        if b"nodes" in root:
            nodes = repo[root[b"nodes"][1]]
            assert isinstance(nodes, Tree)
            for entry in nodes.iteritems():
                shard = repo[entry.sha]
                assert isinstance(shard, Tree)
                total += len(shard)
        counts.append(total)
        if not commit.parents:
            break
        assert len(commit.parents) == 1
        sha = commit.parents[0]
    repo.close()
    return counts[::-1]


def test_two_processes_adding_200_nodes_each_lose_nothing(repo: Path, tmp_path: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    script = tmp_path / "adder.py"
    script.write_text(ADDER)
    go = tmp_path / "go"
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, str(script), name, "200", str(go)], cwd=repo,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name in ("left", "right")
    ]  # fmt: skip
    go.write_text("go")
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    total_tries = sum(int(out.strip()) for out, _ in outs)

    store = StateStore.open(repo)
    snap = store.snapshot()
    expected = {f"{side}-{i:03d}" for side in ("left", "right") for i in range(200)}
    assert set(snap.nodes) == expected
    store.close()
    assert int(git(repo, "rev-list", "--count", "dagain/state")) == 401
    # Every commit adds exactly one node to its parent's tree: no commit was built on a stale
    # head (that would drop the other writer's node), and history is linear.
    assert _node_counts(repo) == list(range(401))
    # The processes did race (some compare-and-swap lost and was recomputed) - or the test proves
    # nothing about concurrency. 400 adds in 400 tries would mean they ran one after the other.
    assert total_tries > 400


def test_racing_cli_adds(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    cmd = [sys.executable, "-m", "gitdag"]
    procs = [
        subprocess.Popen([*cmd, "add", f"{side}-{i}", "--title", "t"], cwd=repo,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4) for side in ("a", "b")
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    files = git(repo, "ls-tree", "-r", "--name-only", "dagain/state", "nodes").split()
    assert len(files) == 8
    assert int(git(repo, "rev-list", "--count", "dagain/state")) == 9
    assert _node_counts(repo) == list(range(9))


def test_concurrent_cli_init_gives_one_root(tmp_path: Path) -> None:
    for round_ in range(3):
        repo = make_repo(tmp_path / f"r{round_}")
        cmd = [sys.executable, "-m", "gitdag", "init", "--goal", "race"]
        procs = [subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]  # fmt: skip
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 2, 2], results
        for code, _, err in results:
            if code == 2:
                assert err.startswith("gitdag: error: dagain/state ")
                assert "already exists" in err or "another process" in err
                assert len(err.strip().splitlines()) == 1
        roots = git(repo, "rev-list", "--max-parents=0", "dagain/state").split()
        assert len(roots) == 1
        assert int(git(repo, "rev-list", "--count", "dagain/state")) == 1


def test_init_that_loses_the_race_after_checking_writes_nothing(repo: Path) -> None:
    """Another process creates dagain/state between this init's check and its commit."""
    other = StateStore.open(repo)
    winner: list[str] = []

    def clock_that_lets_the_other_win():  # type: ignore[no-untyped-def]
        # The store reads the clock after it has checked that the branch does not exist and
        # before it compare-and-swaps the ref: the moment another process could win.
        if not winner:
            from gitdag.core import edits

            t = edits.init_transition("", "dagain/integration", other.clock())
            assert isinstance(t, Transition)
            winner.append(other.init(t, "other").head)
        return other.clock()

    store = StateStore.open(repo, clock=clock_that_lets_the_other_win)
    from gitdag.core import edits

    t = edits.init_transition("mine", "dagain/integration", other.clock())
    assert isinstance(t, Transition)
    with pytest.raises(InputError, match="created by another process at the same moment"):
        store.init(t, "me")
    assert git(repo, "rev-parse", "dagain/state").strip() == winner[0]
    store.close()
    other.close()
