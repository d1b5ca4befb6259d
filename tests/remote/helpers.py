"""In-process helpers for the remote tests: replaying a stale worker's result through the API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gitdag.core import judging, lifecycle
from gitdag.core.model import Work
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import LostRef, RefPush

Outcome = Committed | Rejected | LostRef | None


def replay_result(clone: Path, node_id: str, attempt: int, *, work: Work | None = None,
                  refs: list[RefPush] | None = None) -> Outcome:  # fmt: skip
    """Push a success result of `attempt` of a node, as its (late) worker would."""
    result = RunnerResult(status="success", summary="late result")
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            node = remote.store.node(snap, node_id)
            return judging.judge(node, snap.nodes, {}, snap.graph, result, attempt=attempt,
                                   now=now, work=work)  # fmt: skip

        return remote.push_transition(compute, actor="worker@late:1", refs=refs or ())


def replay_renewal(clone: Path, node_id: str, attempt: int) -> Outcome:
    """Push a lease renewal of `attempt`, as its (late) worker would."""
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            node = remote.store.node(snap, node_id)
            return lifecycle.renew_lease(node, attempt=attempt, now=now, lease_s=60)

        return remote.push_transition(compute, actor="worker@late:1")


def reopen(clone: Path, node_id: str, reason: str = "lease lost (test)") -> Outcome:
    """Give a running node back (`running -> open`), as a worker whose lease ran out would."""
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return lifecycle.recover(remote.store.node(snap, node_id), reason=reason, now=now)

        return remote.push_transition(compute, actor="worker@other:1")
