"""Helpers for the store tests: edit dagain/state by hand, as a person would."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitdag.core.ids import node_path
from tests.conftest import git


def state_head(repo: Path) -> str:
    """The commit dagain/state points at."""
    return git(repo, "rev-parse", "refs/heads/dagain/state").strip()


@contextmanager
def state_checkout(repo: Path, message: str = "edit by hand") -> Iterator[Path]:
    """Check dagain/state out in a temporary worktree, let the caller edit files, commit them.

    This is how a person fixes (or breaks) the graph by hand: `git worktree add`, edit, commit.
    """
    where = repo.parent / f"state-wt-{abs(hash(message)) % 10**8}"
    git(repo, "worktree", "add", "-q", str(where), "dagain/state")
    try:
        yield where
        git(where, "add", "-A")
        git(where, "commit", "-q", "--no-verify", "-m", message)
    finally:
        git(repo, "worktree", "remove", "--force", str(where))
        shutil.rmtree(where, ignore_errors=True)


def node_file(worktree: Path, node_id: str) -> Path:
    """The path of a node's file inside a checkout of dagain/state (parents created)."""
    path = worktree / node_path(node_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
