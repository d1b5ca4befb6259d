"""In-process commits and ref moves (workspace/objects.py) behave as the git commands did."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdag.errors import WorkspaceError
from tests.conftest import git

from .helpers import TARGET, merge, rev, setup_repo, start_node


def test_merge_commit_is_git_identical_in_shape_and_logged(tmp_path: Path) -> None:
    root = setup_repo(tmp_path / "repo")
    head = start_node(root, "n", {"a.txt": "a\n"})
    tip = rev(root, TARGET)
    result = merge(root, "n")
    assert result.status == "merged" and result.merged == rev(root, TARGET)
    git(root, "fsck", "--no-dangling")  # the objects we wrote are valid git objects
    assert git(root, "log", "-1", "--format=%P|%an <%ae>|%s", TARGET).strip() == (
        f"{tip} {head}|Test User <test@example.com>|gitdag: integrate n"
    )
    assert git(root, "reflog", "-1", "--format=%gs", TARGET).strip() == "gitdag: merge n"
    # The leftover commit went through the worktree's HEAD: its reflog says so too.
    wt = root / ".dagain" / "local" / "worktrees" / "n"
    assert "uncommitted work of n" in git(wt, "reflog", "-1", "--format=%gs", "HEAD")


def test_a_reference_transaction_hook_still_decides(tmp_path: Path) -> None:
    root = setup_repo(tmp_path / "repo")
    start_node(root, "n", {"a.txt": "a\n"})
    hook = root / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        '#!/bin/sh\n[ "$1" = prepared ] && grep -q refs/heads/dagain/integration && exit 1\n'
        "exit 0\n"
    )
    hook.chmod(0o755)
    tip = rev(root, TARGET)
    with pytest.raises(WorkspaceError, match="kept moving"):  # refused each round
        merge(root, "n")
    assert rev(root, TARGET) == tip
