"""`gitdag gc`'s workspace part: remove checkouts and branches nobody needs, report the disk freed.

What goes:
- node worktrees (`local/worktrees/<id>`) of nodes that are not live (running or merging);
- scratch checkouts not in use (they are recreated on demand);
- whatever removed checkouts still wait in `local/trash/` (a background delete cut short);
- git's registrations of checkouts under `local/` whose directory is gone;
- `dagain/work/<id>` branches of integrated nodes that are not live (archived instead with
  `archive=True`), and with `delete_unmerged=True` those of every other node that is not live;
- optionally, run directories (`local/runs/<id>/`) untouched for `runs_older_than_s`.

Branches of failed or cancelled nodes are kept by default: they hold the only copy of that work.
Bytes are counted with a directory walk just before deleting (allocated blocks, each inode once,
the way `du` counts), so the report is what the deletion gave back.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from gitdag.errors import WorkspaceError
from gitdag.workspace.checkouts import checkouts_of
from gitdag.workspace.gitcli import held, run_git
from gitdag.workspace.worktrees import (
    ARCHIVE_PREFIX,
    SCRATCH_PREFIX,
    WORK_PREFIX,
    Worktrees,
    admin_dir,
)


@dataclass(frozen=True)
class GcReport:
    """What gc removed, kept, and the bytes it freed."""

    removed_worktrees: tuple[str, ...]
    removed_scratch: tuple[str, ...]
    deleted_branches: tuple[str, ...]
    archived_branches: tuple[str, ...]
    kept_branches: tuple[str, ...]
    removed_runs: tuple[str, ...]
    bytes_freed: int


def disk_usage(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes allocated to `path` and everything under it (symlinks not followed, like `du -B1`)."""
    seen = set() if seen is None else seen
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += _allocated(st)
        if os.path.isdir(current) and not os.path.islink(current):
            try:
                with os.scandir(current) as entries:
                    stack.extend(e.path for e in entries)
            except OSError:
                continue
    return total


def _allocated(st: os.stat_result) -> int:
    blocks = getattr(st, "st_blocks", None)
    return blocks * 512 if blocks is not None else st.st_size


def gc(
    root: Path,
    git_dir: Path,
    local: Path,
    live_nodes: set[str],
    integrated: set[str],
    *,
    archive: bool = False,
    delete_unmerged: bool = False,
    runs_older_than_s: float | None = None,
) -> GcReport:
    """Remove what no live node needs; see the module docstring for exactly what.

    Args:
      root: the main working tree (the git dir of a bare repository).
      git_dir: the common git directory.
      local: `.dagain/local/`.
      live_nodes: nodes whose worktree, branch and run directories must stay (running, merging).
      integrated: nodes whose work is on the target: their branches go.
      archive: rename integrated branches to `dagain/archive/<id>` instead of deleting them.
      delete_unmerged: also delete the branches of nodes that are neither live nor integrated.
      runs_older_than_s: also remove run directories of non-live nodes older than this.
    """
    root, git_dir, local = Path(root), Path(git_dir), Path(local)
    wt = Worktrees(root, git_dir, local, background_delete=False)
    seen: set[tuple[int, int]] = set()
    freed = 0
    removed: list[str] = []
    scratch: list[str] = []

    if wt.dir.is_dir():
        for entry in sorted(wt.dir.iterdir()):
            name = entry.name
            if name.startswith(SCRATCH_PREFIX):
                try:
                    # A scratch checkout in use right now stays.
                    with held(local, "scratch-" + name[len(SCRATCH_PREFIX) :], timeout=0):
                        freed += _discard(wt, entry, seen)
                except WorkspaceError:
                    continue
                scratch.append(name[len(SCRATCH_PREFIX) :])
            elif name not in live_nodes:
                freed += _discard(wt, entry, seen)
                removed.append(name)

    if wt.trash.is_dir():
        for entry in sorted(wt.trash.iterdir()):
            freed += disk_usage(entry, seen)
            _rm(entry)

    freed += _forget_missing(git_dir, local, seen)
    run_git(["worktree", "prune", "--expire=3.months.ago"], root)

    deleted, archived, kept = _branches(root, git_dir, live_nodes, integrated, archive,
                                        delete_unmerged)  # fmt: skip

    runs: list[str] = []
    runs_dir = local / "runs"
    if runs_older_than_s is not None and runs_dir.is_dir():
        cutoff = time.time() - runs_older_than_s
        for entry in sorted(runs_dir.iterdir()):
            if entry.name in live_nodes or _newest_mtime(entry) >= cutoff:
                continue
            freed += disk_usage(entry, seen)
            _rm(entry)
            runs.append(entry.name)

    return GcReport(
        removed_worktrees=tuple(removed),
        removed_scratch=tuple(scratch),
        deleted_branches=tuple(deleted),
        archived_branches=tuple(archived),
        kept_branches=tuple(kept),
        removed_runs=tuple(runs),
        bytes_freed=freed,
    )


def _discard(wt: Worktrees, path: Path, seen: set[tuple[int, int]]) -> int:
    admin = admin_dir(path)
    size = disk_usage(path, seen)
    if admin is not None and admin.is_dir():
        size += disk_usage(admin, seen)
    with held(wt.local, "worktrees"):
        wt.discard_unlocked(path)
    return size


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _forget_missing(git_dir: Path, local: Path, seen: set[tuple[int, int]]) -> int:
    """Drop git's registrations of checkouts under `local/` whose directory is gone."""
    admins = git_dir / "worktrees"
    if not admins.is_dir():
        return 0
    freed = 0
    mine = local.resolve()
    with held(local, "worktrees"):
        for admin in sorted(admins.iterdir()):
            try:
                checkout = Path((admin / "gitdir").read_text().strip()).parent
            except OSError:
                continue
            if checkout.exists() or not checkout.is_relative_to(mine):
                continue
            freed += disk_usage(admin, seen)
            shutil.rmtree(admin, ignore_errors=True)
    return freed


def _branches(
    root: Path,
    git_dir: Path,
    live: set[str],
    integrated: set[str],
    archive: bool,
    delete_unmerged: bool,
) -> tuple[list[str], list[str], list[str]]:
    listing = run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/" + WORK_PREFIX],
        root,
    ).stdout
    deleted: list[str] = []
    archived: list[str] = []
    kept: list[str] = []
    commands: list[str] = []
    prefix = "refs/heads/" + WORK_PREFIX
    for line in listing.splitlines():
        sha, ref = line.split(" ", 1)
        node_id = ref[len(prefix) :]
        if node_id in live:
            continue
        goes = node_id in integrated or delete_unmerged
        if not goes or checkouts_of(root, git_dir, ref):
            # Kept: unmerged work, or checked out by someone (deleting it would orphan a HEAD).
            kept.append(node_id)
            continue
        if archive and node_id in integrated:
            commands.append(f"update refs/heads/{ARCHIVE_PREFIX}{node_id} {sha}")
            archived.append(node_id)
        else:
            deleted.append(node_id)
        commands.append(f"delete {ref} {sha}")
    if commands:
        # One transaction; each delete names the value it expects (nobody moved it meanwhile).
        run_git(["update-ref", "--stdin"], root, input="\n".join(commands) + "\n")
    return deleted, archived, kept


def _newest_mtime(path: Path) -> float:
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames, "."]:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                continue
    return newest
