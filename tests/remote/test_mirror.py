"""The clone's target branch mirrors the remote's: fast-forward, self-healing, never destructive."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.errors import InputError
from gitdag.remote.mirror import mirror
from tests.conftest import git, make_repo

TARGET = "dagain/integration"


def local_of(root: Path) -> Path:
    return root / ".dagain" / "local"


def commit(root: Path, name: str, *parents: str) -> str:
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    args = [a for p in parents for a in ("-p", p)]
    return git(root, "commit-tree", tree, *args, "-m", name).strip()


def test_mirror_creates_and_fast_forwards(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    base = git(root, "rev-parse", "HEAD").strip()
    mirror(root, root / ".git", TARGET, base, "origin", local_dir=local_of(root))
    assert git(root, "rev-parse", TARGET).strip() == base
    ahead = commit(root, "remote moved", base)
    mirror(root, root / ".git", TARGET, ahead, "origin", local_dir=local_of(root))
    assert git(root, "rev-parse", TARGET).strip() == ahead


def test_mirror_drops_only_its_own_remade_merges(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    base = git(root, "rev-parse", "HEAD").strip()
    node_head = commit(root, "node work", base)
    ours = commit(root, "gitdag: integrate n1 (attempt 1)", base, node_head)
    git(root, "branch", TARGET, ours)
    remote_tip = commit(root, "someone else's merge", base)
    # A local merge whose push never happened: its node branch is known to be on the remote.
    mirror(
        root,
        root / ".git",
        TARGET,
        remote_tip,
        "origin",
        known={node_head},
        local_dir=local_of(root),
    )
    assert git(root, "rev-parse", TARGET).strip() == remote_tip


def test_mirror_refuses_to_discard_anything_else(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    base = git(root, "rev-parse", "HEAD").strip()
    mine = commit(root, "a commit of the user's", base)
    git(root, "branch", TARGET, mine)
    remote_tip = commit(root, "remote moved", base)
    with pytest.raises(InputError, match="will not discard"):
        mirror(root, root / ".git", TARGET, remote_tip, "origin", local_dir=local_of(root))
    assert git(root, "rev-parse", TARGET).strip() == mine
    # An integration merge of a branch nobody said was on the remote is kept as well.
    node_head = commit(root, "node work", base)
    merge = commit(root, "gitdag: integrate n2 (attempt 1)", base, node_head)
    git(root, "branch", "-f", TARGET, merge)
    with pytest.raises(InputError):
        mirror(root, root / ".git", TARGET, remote_tip, "origin", local_dir=local_of(root))


def test_mirror_moves_a_clean_checkout_and_refuses_a_dirty_one(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.txt": "1\n"})
    git(root, "checkout", "-q", "-b", TARGET)
    base = git(root, "rev-parse", "HEAD").strip()
    (root / "a.txt").write_text("2\n")
    git(root, "commit", "-q", "-am", "two")
    two = git(root, "rev-parse", "HEAD").strip()
    git(root, "reset", "-q", "--hard", base)
    mirror(root, root / ".git", TARGET, two, "origin", local_dir=local_of(root))
    assert (root / "a.txt").read_text() == "2\n"
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    (root / "a.txt").write_text("mine\n")
    three = commit(root, "three", two)
    with pytest.raises(InputError, match="not clean"):
        mirror(root, root / ".git", TARGET, three, "origin", local_dir=local_of(root))
    assert (root / "a.txt").read_text() == "mine\n"
