"""Checks of the working files: leftover worktrees, half-deleted or half-moved checkouts."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from gitdag.attempts.lock import SupervisorLock
from gitdag.attempts.waiting import waiting_nodes
from gitdag.core.model import Status
from gitdag.doctor.findings import Finding
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.workspace.advance import Leftover, find_leftovers, settle
from gitdag.workspace.gitcli import run_git
from gitdag.workspace.worktrees import SCRATCH_PREFIX, Worktrees

LOOSE_OBJECTS_LIMIT = 5000  # git's own `gc.auto` threshold is 6700
TRASH_STALE_S = 60.0  # a background `rm -rf` of a checkout takes well under this


def check_worktrees(store: StateStore, snap: Snapshot, supervisor: str | None) -> list[Finding]:
    """Worktrees of nodes neither running, merging nor waiting; half-deleted checkouts."""
    local = store.paths.local
    found: list[Finding] = []
    wt_dir = local / "worktrees"
    live = {Status.RUNNING, Status.MERGING}
    left = []
    if wt_dir.is_dir():
        # A node waiting for what it `needs` keeps its worktree (attempts/waiting.py).
        worktrees = Worktrees(store.paths.root, store.paths.git_dir, local)
        waiting = waiting_nodes(store, snap, worktrees)
        for entry in sorted(wt_dir.iterdir()):
            if entry.name.startswith(SCRATCH_PREFIX) or entry.name in waiting:
                continue
            node = snap.nodes.get(entry.name)
            if node is None or node.status not in live:
                left.append(entry.name)
    trash = local / "trash"
    leftovers = _stale_entries(trash) if trash.is_dir() else []
    if left:
        found.append(Finding(
            "worktree",
            f"{len(left)} leftover worktree(s) of nodes not running or merging: "
            + ", ".join(left[:10]) + ("…" if len(left) > 10 else ""),
            "gitdag gc",
            None if supervisor else (lambda: _gc(store)),
        ))  # fmt: skip
    if leftovers:
        found.append(Finding(
            "worktree",
            f"{len(leftovers)} removed checkout(s) still waiting in {trash} (a deletion was cut "
            "short)",
            "gitdag gc",
            None if supervisor or left else (lambda: _gc(store)),
        ))  # fmt: skip
    return found


def _stale_entries(trash: Path, age_s: float = TRASH_STALE_S) -> list[str]:
    """Checkouts moved into `trash/` longer ago than `age_s` (younger ones are being deleted)."""
    found = []
    now = time.time()
    for entry in trash.iterdir():
        try:
            moved = entry.lstat().st_ctime  # a rename sets the ctime: when it entered trash/
        except OSError:
            continue
        if now - moved > age_s:
            found.append(entry.name)
    return sorted(found)


def _gc(store: StateStore) -> str:
    from gitdag.doctor.housekeeping import collect_garbage

    report = collect_garbage(store)
    return (f"removed {len(report.removed_worktrees)} worktree(s), freed "
            f"{report.bytes_freed // 1024} KiB")  # fmt: skip


def check_objects(store: StateStore) -> list[Finding]:
    """Many loose objects (each transition leaves about five): suggest `git gc`."""
    proc = run_git(["count-objects", "-v"], store.paths.root, check=False)
    counts = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    loose = int(counts.get("count", "0") or 0)
    if loose <= LOOSE_OBJECTS_LIMIT:
        return []
    return [Finding(
        "objects",
        f"{loose} loose objects (each transition leaves about five): reads get slower",
        "git gc",
        lambda: _git_gc(store),
    )]  # fmt: skip


def _git_gc(store: StateStore) -> str:
    # Not while a supervisor writes: packing refs under a concurrent writer is what the
    # architecture notes warn about.
    with SupervisorLock(store.paths.ensure_local(), store.paths.git_dir):
        run_git(["gc", "--quiet"], store.paths.root)
    return "ran git gc"


def check_checkouts(store: StateStore, supervisor: str | None) -> list[Finding]:
    """A checkout of the target that a crash left half-moved by a merge (advance.py)."""
    found = []
    for left in find_leftovers(store.paths.local):
        fix = None
        if left.verdict != "stuck" and supervisor is None:
            fix = functools.partial(_settle, store, left)
        found.append(Finding("checkout", left.describe(), left.repair(), fix))
    return found


def _settle(store: StateStore, left: Leftover) -> str:
    # Never under a live supervisor: its merge queue may be moving that checkout right now.
    with SupervisorLock(store.paths.ensure_local()):
        return settle(left)
