"""The batching merge queue in `gitdag run` (`merge.batch: N`): which nodes go, and their records.

The git work is `workspace/batch.py` (one chain of merges, one check, one compare-and-swap).
Here: the batch is the first N nodes in line whose work is committed, in queue order; when it
finishes, each decided node's result is recorded exactly as the serial queue records one (a
`merge` transition per node, a conflict or failed check as a retry), and the nodes left pending
keep their place at the head of the line.

A batch lands with its records, as a single merge does (`landing.py`): the target's move and
every integrated node's `merge` transition — one commit per node, in queue order, chained — are
one ref transaction (`StateStore.transact_chain_along`), so a crash leaves both or neither, and a
member cancelled up to that transaction refuses it (the target untouched; the batch is abandoned
and its other members merge in the next one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag import crash
from gitdag.attempts.launching import merge_message
from gitdag.core import lifecycle
from gitdag.core.model import Node
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Compute, Moved
from gitdag.store.write import RefMove
from gitdag.supervisor.landing import Desk, still_merging
from gitdag.workspace.advance import Landing
from gitdag.workspace.batch import BatchResult, Entry, integrate_batch
from gitdag.workspace.merge_queue import MergeResult

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor
    from gitdag.supervisor.merging import LocalMerges

Members = tuple[tuple[str, int], ...]  # (node id, attempt), in queue order
RecordOne = Callable[[str, int, "MergeResult | BaseException"], "Snapshot | None"]


def start(merges: LocalMerges, snap: Snapshot) -> tuple[Future[BatchResult], Desk, Members] | None:
    """Submit a batch of the queue's first nodes to the merge thread; None when not batching."""
    sup = merges.sup
    merge = sup.settings.merge
    if merge.batch <= 1:
        return None
    nodes: list[Node] = []
    for node_id in merges.queue[: merge.batch]:
        node = sup.store.node(snap, node_id)
        if node.work is None or node.work.head is None:
            break  # its leftovers still wait to be committed: the serial path handles it
        nodes.append(node)
    if len(nodes) < 2:
        return None
    entries = [Entry(n.id, n.work.branch, merge_message(n)) for n in nodes if n.work is not None]
    desk = Desk()
    paths = sup.store.paths
    future = merges.pool.submit(
        integrate_batch, paths.root, paths.git_dir, sup.launcher.local, entries=entries,
        target=snap.graph.target, check_cmd=merge.check,
        check_timeout_s=float(merge.check_timeout_s), parallel=merge.batch_checks,
        cancelled=desk.cancelled, land=desk.land_records,
    )  # fmt: skip
    return future, desk, tuple((n.id, n.attempts) for n in nodes)


def land(
    sup: Supervisor, members: Members, move: RefMove, cwd: Path, records: Mapping[str, str]
) -> Landing:
    """On the loop thread: the target's move and each node's `merge` in one ref transaction."""
    attempts = dict(members)

    def merged(node_id: str, commit: str) -> Compute:
        attempt = attempts[node_id]

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if not still_merging(snap, node_id, attempt):
                return Rejected(f"{node_id} is no longer merging attempt {attempt}")
            return lifecycle.merged(sup.store.node(snap, node_id), merged_commit=commit, now=now)

        return compute

    computes = [merged(nid, commit) for nid, commit in records.items() if nid in attempts]
    crash.crash_point("supervisor.before_merge_commit")
    outcome = sup.store.transact_chain_along(computes, actor=sup.actor, move=move, cwd=cwd)
    if isinstance(outcome, list):
        for committed in outcome:
            sup.announce(committed.transition)
        return Landing("landed")
    if isinstance(outcome, Moved):
        return Landing("moved")
    return Landing("abandoned", str(outcome) if outcome is not None else "nothing to record")


def all_merging(snap: Snapshot, members: Members) -> bool:
    """Tell whether every member still merges its attempt (else the batch must not land)."""
    return all(still_merging(snap, node_id, attempt) for node_id, attempt in members)


def record(
    members: Members, outcome: BatchResult | MergeResult | BaseException, one: RecordOne
) -> Snapshot | None:
    """Record each decided member through `one` (the serial queue's recording), in order.

    Trouble that is no merge outcome (a `WorkspaceError`) is the first member's, as when it
    merges alone; the others wait behind it.
    """
    if not isinstance(outcome, BatchResult):
        return one(*members[0], outcome)
    snap = None
    for node_id, attempt in members:
        if node_id in outcome.results:
            snap = one(node_id, attempt, outcome.results[node_id]) or snap
    return snap
