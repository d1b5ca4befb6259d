"""Where transitions are committed: the one commit port of `gitdag run` and `gitdag work`.

`run` commits to the local state branch (`LocalPort`: `StateStore.transact`, compare-and-swap
on the ref); `work` pushes to a shared remote's (`RemotePort`: `RemoteState.push_transition`,
compare-and-swap on the remote ref, the node's branch in the same atomic push). Either way a lost
race is recomputed on the new head, never rebased, and the caller sees one of three values:
`Committed` (the transition is the head now), `Rejected` (compute refused: the node moved on),
or None (nothing to write, or a ref pushed along lost its lease).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from gitdag import crash
from gitdag.attempts.holds import disk_error
from gitdag.core import lifecycle
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, Compute, StateStore
from gitdag.transport.outcomes import LostRef, RefPush

Outcome = Committed | Rejected | None
NodeOp = Callable[[Node, Snapshot, dt.datetime], "Transition | Rejected"]


class CommitPort(Protocol):
    """Where an attempt's transitions go (the local state branch, or a remote's)."""

    store: StateStore  # the clone's store: nodes, clock, paths
    actor: str  # the `Gitdag-Actor` of every commit

    def snapshot(self) -> Snapshot:
        """The state the next commit will be computed on (as last read or fetched)."""
        ...

    def transact(self, compute: Compute, *, refs: Sequence[RefPush] = ()) -> Outcome:
        """Commit `compute(snapshot, now)`, recomputed on the new head after a lost race.

        `refs` (remote only) are pushed atomically with it: a node's branch with its result.
        """
        ...


class LocalPort:
    """`gitdag run`: commits on the local `dagain/state` with compare-and-swap."""

    def __init__(self, store: StateStore, actor: str) -> None:
        self.store = store
        self.actor = actor

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    def transact(self, compute: Compute, *, refs: Sequence[RefPush] = ()) -> Outcome:
        """Commit locally (a node's branch is local already: `refs` must be empty).

        Raises:
          DiskError: the disk is full or read-only (exit 2, one line naming the path): the ref
            moves only after its objects are written, so nothing half-written is visible, and
            a restart recovers the nodes that were running.
        """
        if refs:
            raise ValueError("a local commit pushes no refs")
        objects = Path(self.store.paths.git_dir) / "objects"
        try:
            crash.fault_point("supervisor.state_commit", str(objects))
            return self.store.transact(compute, actor=self.actor)
        except OSError as exc:
            error = disk_error(exc, objects)
            if error is None:
                raise
            raise error from exc


class RemotePort:
    """`gitdag work`: pushes to a remote's state branch with compare-and-swap (its public API)."""

    def __init__(self, remote: RemoteState, actor: str) -> None:
        self.remote = remote
        self.store = remote.store
        self.actor = actor

    def snapshot(self) -> Snapshot:
        return self.remote.snapshot()

    def transact(self, compute: Compute, *, refs: Sequence[RefPush] = ()) -> Outcome:
        """Push it; a ref pushed along that lost its lease is None here (nothing landed).

        Raises:
          RemoteError: the remote refused the push for another reason, or is unreachable.
          StaleSnapshotError: the remote head kept moving past the bound.
        """
        outcome = self.push(compute, refs=refs)
        return None if isinstance(outcome, LostRef) else outcome

    def push(
        self,
        compute: Compute,
        *,
        refs: Sequence[RefPush] = (),
        read_back: bool = False,
        max_tries: int = 40,
    ) -> Committed | Rejected | LostRef | None:
        """The remote's full answer, for callers that act on a lost ref (the merge queue)."""
        return self.remote.push_transition(
            compute, actor=self.actor, refs=refs, read_back=read_back, max_tries=max_tries
        )


def on_node(store: StateStore, node_id: str, op: NodeOp) -> Compute:
    """The compute of a transition of one node (Rejected once the node no longer exists)."""

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if node_id not in snap.nodes:
            return Rejected(f"{node_id} no longer exists")
        return op(store.node(snap, node_id), snap, now)

    return compute


def give_back(attempt: int, reason: str) -> NodeOp:
    """Reopen a node still running `attempt`, its retry budget intact (`lifecycle.recover`)."""

    def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if node.status is not Status.RUNNING or node.claim is None or node.claim.attempt != attempt:
            return Rejected(f"{node.id} moved on from attempt {attempt}")
        return lifecycle.recover(node, reason=reason, now=now)

    return op
