"""Real repositories for the workspace tests: a target branch, worktrees, and integrate calls."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from gitdag.workspace.merge_queue import MergeResult, integrate
from gitdag.workspace.worktrees import Worktrees
from tests.conftest import git, make_repo

TARGET = "dagain/integration"


def setup_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository on `main` with a target branch at the same commit (like `gitdag init`)."""
    root = make_repo(path, files)
    git(root, "branch", TARGET)
    return root


def worktrees(root: Path, **kw: bool) -> Worktrees:
    return Worktrees(root, root / ".git", root / ".dagain" / "local", **kw)


def merge(root: Path, node_id: str, *, check: str | None = None, timeout: float = 30,
          target: str = TARGET) -> MergeResult:  # fmt: skip
    return integrate(
        root, root / ".git", root / ".dagain" / "local", branch=f"dagain/work/{node_id}",
        target=target, check_cmd=check, check_timeout_s=timeout, node_id=node_id,
        message=f"gitdag: integrate {node_id}",
    )  # fmt: skip


def rev(root: Path, what: str) -> str:
    return git(root, "rev-parse", what).strip()


def show(root: Path, ref: str, path: str) -> str:
    return git(root, "show", f"{ref}:{path}")


def user_view(root: Path) -> tuple[str, str, str, str]:
    """Everything of the user's checkout gitdag must not touch: HEAD, the index, status, files."""
    index = hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest()
    files = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in (".git", ".dagain") or not p.is_file():
            continue
        files.update(str(rel).encode() + b"\0" + p.read_bytes())
    status = git(root, "status", "--porcelain", "--untracked-files=all")
    return (
        git(root, "symbolic-ref", "HEAD").strip() + rev(root, "HEAD"),
        index,
        status,
        (files.hexdigest()),
    )


def start_node(root: Path, node_id: str, files: dict[str, str], *, commit: bool = False) -> str:
    """Create the node's worktree, write files (committing them as the agent would, or not),
    commit leftovers, and return the branch head."""
    wt = worktrees(root)
    info = wt.create(node_id, TARGET)
    for name, text in files.items():
        target = info.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if commit:
        git(info.path, "add", "-A")
        git(info.path, "commit", "-q", "-m", f"agent work on {node_id}")
    return wt.commit_leftovers(node_id, 1).head


def run_py(code: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    import os
    import sys

    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
