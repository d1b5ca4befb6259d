"""Garbage collection for `gitdag gc` and `gitdag doctor --fix`.

What the graph says is live or integrated, handed to the workspace's gc. It lives in doctor/ (a
repair of the checkout), not in supervisor/, which never calls it.
"""

from __future__ import annotations

from gitdag.attempts.lock import SupervisorLock
from gitdag.attempts.waiting import waiting_nodes
from gitdag.config import load_settings
from gitdag.core.model import Status
from gitdag.store.state import StateStore
from gitdag.workspace.gc import GcReport, gc
from gitdag.workspace.worktrees import Worktrees


def collect_garbage(
    store: StateStore, *, delete_unmerged: bool = False, runs_older_than_s: float | None = None
) -> GcReport:
    """Remove leftover worktrees, scratch checkouts and branches; never while a supervisor runs."""
    snap = store.snapshot()
    live = {nid for nid, n in snap.nodes.items() if n.status in (Status.RUNNING, Status.MERGING)}
    done = [nid for nid, n in snap.nodes.items() if n.status is Status.DONE]
    integrated = {
        nid for nid, node in store.nodes(snap, done).items() if node.work and node.work.merged
    }
    settings = load_settings(store.paths.dagain)
    # Holding the supervisor lock for the duration: a running supervisor's scratch checkouts and
    # worktrees are never pulled from under it (a second `run` meanwhile exits with code 4).
    with SupervisorLock(store.paths.ensure_local(), store.paths.git_dir):
        # A node waiting for what it `needs` keeps its worktree and branch for its next attempt.
        live |= waiting_nodes(store, snap, Worktrees(store.paths.root, store.paths.git_dir,
                                                     store.paths.local))  # fmt: skip
        return gc(
            store.paths.root,
            store.paths.git_dir,
            store.paths.local,
            live,
            integrated,
            archive=settings.merge.archive_branches,
            delete_unmerged=delete_unmerged,
            runs_older_than_s=runs_older_than_s,
        )
