"""Keeping git's commit-graph up to date while the merge queue lands merges.

Every merge asks git for a merge base (`git merge-tree`), and a node branch cut from an old tip
is merged onto a tip hundreds of merges ahead: without a commit-graph, git parses every loose
commit in between (measured: a branch 2,000 commits behind took 203 ms to merge, 200 behind
48 ms, and 21 ms once `git commit-graph write --reachable` had run). The queue adds two commits
per task (the leftovers commit and the merge) and nothing else writes a commit-graph until the
user's next `git gc` or `git maintenance`, so the cost of a merge grew with the graph.

So after every `EVERY` (64) landings in one process (a batch or a group landing counts once), the
queue runs `git commit-graph write --reachable --split` right after the landing, under the
merge lock the landing already holds (so two of gitdag's own writes never race). `--split`
writes only the commits not yet in the graph as a new layer and merges small layers
(`--size-multiple`), so a write costs about what the new commits cost, not the history. It is
the file `git gc` and `git maintenance` write anyway (`.git/objects/info/commit-graphs/`), the
repository's config is not touched, and a failed write (another git holding the lock, a
read-only object store) is ignored: the graph is a cache, merges are correct without it.

Why 64: with the graph 32 / 64 / 128 / 256 merges behind the tip, a merge-tree took 9 / 7 / 16 /
19 ms, and a write of 64-256 merges' commits 12-25 ms (synthetic, load 5; docs/merge-queue.md).

`GITDAG_COMMIT_GRAPH_EVERY` (a number of landings; 0 = never) overrides `EVERY`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gitdag.workspace.gitcli import run_git

EVERY = 64
ENV = "GITDAG_COMMIT_GRAPH_EVERY"
SIZE_MULTIPLE = 4  # fewer, larger layers than git's default 2: merges of layers stay rare

_lock = threading.Lock()
_landed: dict[Path, int] = {}  # landings since this process last wrote, by common git dir


def every() -> int:
    """How many landings between two writes (0: never), from the environment or `EVERY`."""
    text = os.environ.get(ENV, "").strip()
    try:
        return max(0, int(text)) if text else EVERY
    except ValueError:
        return EVERY


def landed(root: Path, git_dir: Path) -> bool:
    """Count one landing on `git_dir`; every `every()`-th one writes the commit-graph.

    Returns whether a write ran and succeeded (tests and the benchmark look; callers need not).
    """
    n = every()
    if n == 0:
        return False
    key = Path(git_dir).resolve()
    with _lock:
        _landed[key] = _landed.get(key, 0) + 1
        if _landed[key] < n:
            return False
        _landed[key] = 0
    return write(root)


def write(root: Path) -> bool:
    """Add the commits not yet in the commit-graph as a new layer (`--split`); True if it did."""
    args = ["commit-graph", "write", "--reachable", "--split", f"--size-multiple={SIZE_MULTIPLE}"]
    return run_git(args, Path(root), check=False).returncode == 0
