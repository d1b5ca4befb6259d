"""The worktree of a node that waits for what it `needs`, kept in the clone that ran it.

A `needs` result sends the node back to `open` with its branch carried (`carry.head`). Its
worktree stays where it is, at that head, with the files git ignores (build caches): a marker in
the worktree's git admin directory (`gitdag-waiting`, holding the carried head, or nothing when
the attempt committed no work) says it is kept for the wait, so it goes with the worktree.

- The node's next attempt in this clone takes it back (`take`) when it is still on the node's
  branch at the carried head (or, with no carried work, still at the base it started from: it is
  then moved to the target's tip, ignored files kept). Otherwise — moved, damaged, missing — the
  attempt gets today's fresh checkout of the carried head.
- Whatever removes leftover worktrees (crash recovery, `gitdag gc`, `doctor`) leaves a waiting
  node's alone (`waiting_nodes`); the loops of `run` and `work` remove it as soon as the node is
  no longer waiting (`Waiting.sweep`: cancelled, failed, done, reset, claimed elsewhere).

Nothing here runs for a node that never deferred: no marker, no git process.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gitdag.attempts import loops
from gitdag.core.model import Node, Status
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.workspace.gitcli import NO_HOOKS, read_ref, run_git
from gitdag.workspace.worktrees import (
    BASE_FILE,
    SCRATCH_PREFIX,
    WorkInfo,
    Worktrees,
    admin_dir,
    work_branch,
)

MARKER = "gitdag-waiting"


def _marker_path(worktrees: Worktrees, node_id: str) -> Path | None:
    admin = admin_dir(worktrees.path_for(node_id))
    return admin / MARKER if admin is not None and admin.is_dir() else None


def mark_of(worktrees: Worktrees, node_id: str) -> str | None:
    """Return the head a node's worktree was kept at ("" for none), or None if it is not kept."""
    if not (worktrees.path_for(node_id) / ".git").is_file():
        return None  # the common case, a node that never waited: one stat
    marker = _marker_path(worktrees, node_id)
    try:
        return marker.read_text().strip() if marker is not None else None
    except OSError:
        return None


def still_waiting(node: Node, mark: str) -> bool:
    """Tell whether a worktree kept at `mark` still belongs to the node's wait.

    The node is open again (nothing claimed it) and still carries what the wait kept: a reset, a
    failure or a retry drops the carry, a new attempt's work moves its head.
    """
    carry = node.carry
    return (
        node.status is Status.OPEN
        and carry is not None
        and carry.deferrals > 0
        and (carry.head or "") == mark
    )


def kept_worktrees(worktrees: Worktrees) -> dict[str, str]:
    """Return node id -> mark of every worktree kept for a wait (a scan of `worktrees/`)."""
    found: dict[str, str] = {}
    if not worktrees.dir.is_dir():
        return found
    for entry in worktrees.dir.iterdir():
        if entry.name.startswith(SCRATCH_PREFIX):
            continue
        mark = mark_of(worktrees, entry.name)
        if mark is not None:
            found[entry.name] = mark
    return found


def waiting_nodes(store: StateStore, snap: Snapshot, worktrees: Worktrees) -> set[str]:
    """Return the nodes whose kept worktree must stay: they still wait (crash recovery, gc)."""
    kept = set()
    for node_id, mark in kept_worktrees(worktrees).items():
        summary = snap.nodes.get(node_id)
        if summary is None or summary.status is not Status.OPEN:
            continue
        if still_waiting(store.node(snap, node_id), mark):
            kept.add(node_id)
    return kept


class Waiting:
    """The worktrees one `run` or `work` keeps for its waiting nodes."""

    def __init__(self, worktrees: Worktrees) -> None:
        self.worktrees = worktrees
        self._kept: dict[str, str] | None = None  # read from disk at the first sweep
        self._swept: str | None = None  # the state head the last sweep looked at

    def keep(self, node: Node) -> bool:
        """A deferral was committed: keep the node's worktree for its next attempt here."""
        marker = _marker_path(self.worktrees, node.id)
        if marker is None or node.carry is None:
            return False
        mark = node.carry.head or ""
        try:
            marker.write_text(mark + "\n")
        except OSError:
            return False
        if self._kept is not None:
            self._kept[node.id] = mark
        self._swept = None
        return True

    def take(self, node: Node, target: str) -> WorkInfo | None:
        """The node's kept worktree for the attempt starting now, if still usable, else None.

        Unusable ones are left to `Worktrees.create`, which makes a fresh checkout in their place.
        """
        mark = mark_of(self.worktrees, node.id)
        if mark is None:
            return None
        if self._kept is not None:
            self._kept.pop(node.id, None)
        marker = _marker_path(self.worktrees, node.id)
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()  # a crash in this attempt: the worktree goes as any other's
        carried = loops.carried_work(node)
        if carried is not None:
            if carried[0] != mark:
                return None
            # `keep`: reused if it is on the node's branch at the carried head, else made afresh.
            return self.worktrees.create(node.id, target, resume=carried, keep=True)
        return self._at_tip(node.id, target)

    def _at_tip(self, node_id: str, target: str) -> WorkInfo | None:
        """A wait that carried no work: the worktree, still at its base, moves to the tip."""
        wt = self.worktrees
        path, branch = wt.path_for(node_id), work_branch(node_id)
        admin = admin_dir(path)
        base = wt.base_of(node_id)
        head = read_ref(wt.git_dir, "refs/heads/" + branch)
        tip = read_ref(wt.git_dir, "refs/heads/" + target)
        if admin is None or base is None or head != base or tip is None:
            return None
        try:
            head_file = (admin / "HEAD").read_text().strip()
        except OSError:
            return None
        if head_file != "ref: refs/heads/" + branch:
            return None
        # `reset --hard` moves the branch and the tracked files; ignored files stay.
        if run_git([*NO_HOOKS, "reset", "-q", "--hard", tip], path, check=False).returncode:
            return None
        (admin / BASE_FILE).write_text(tip + "\n")
        return WorkInfo(path=path, branch=branch, base=tip)

    def sweep(self, store: StateStore, snap: Snapshot) -> list[str]:
        """Remove the kept worktrees of nodes no longer waiting; return their ids.

        Costs nothing without kept worktrees; otherwise it looks once per new state head.
        """
        if self._kept is None:
            self._kept = kept_worktrees(self.worktrees)
        if not self._kept or snap.head == self._swept:
            return []
        self._swept = snap.head
        gone = []
        for node_id, mark in list(self._kept.items()):
            summary = snap.nodes.get(node_id)
            open_ = summary is not None and summary.status is Status.OPEN
            if open_ and still_waiting(store.node(snap, node_id), mark):
                continue
            # Its work is on its branch already (committed before the deferral): only the
            # checkout goes.
            self.worktrees.remove(node_id, delete_branch=False, archive=False)
            del self._kept[node_id]
            gone.append(node_id)
        return gone
