"""Where things live: refs, paths in the state tree, and the local (git-ignored) directory."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from gitdag.store.where import PROPOSAL_BRANCH_PREFIX as PROPOSAL_BRANCH_PREFIX
from gitdag.store.where import STATE_BRANCH as STATE_BRANCH
from gitdag.store.where import STATE_REF as STATE_REF
from gitdag.store.where import local_dir

GRAPH_FILE = "graph.yaml"
README_FILE = "README.md"
NODES_DIR = "nodes"
WORK_BRANCH_PREFIX = "dagain/work/"
ARCHIVE_BRANCH_PREFIX = "dagain/archive/"


def branch_ref(branch: str) -> bytes:
    """Return the full ref name of a branch."""
    return b"refs/heads/" + branch.encode()


def node_id_from_path(path: str) -> str | None:
    """Return the id a path under `nodes/` names, or None for any other path."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == NODES_DIR and parts[2].endswith(".yaml"):
        return parts[2][: -len(".yaml")]
    return None


@dataclass(frozen=True)
class RepoPaths:
    """The directories gitdag uses in one repository.

    Attributes:
      root: the main working tree (or the git dir of a bare repository).
      git_dir: the common git directory (objects, refs).
      local: `.dagain/local/`, git-ignored: locks, caches, run directories, worktrees.
    """

    root: Path
    git_dir: Path
    local: Path

    @property
    def dagain(self) -> Path:
        """`.dagain/` in the main working tree."""
        return self.root / ".dagain"

    def ensure_local(self) -> Path:
        """Create the local directory (and its .gitignore guard) if missing, and return it."""
        self.local.mkdir(parents=True, exist_ok=True)
        ignore = self.dagain / ".gitignore"
        if self.dagain.is_dir() and not ignore.exists():
            with contextlib.suppress(OSError):
                ignore.write_text("local/\n")
        return self.local


def local_dir_for(root: Path, git_dir: Path, bare: bool) -> Path:
    """Return the local directory: under `.dagain/` of the working tree, or in a bare git dir."""
    return Path(local_dir(str(root), str(git_dir), bare))
