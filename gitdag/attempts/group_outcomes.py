"""A transaction group's outcome as transitions, the same for `gitdag run` and `gitdag work`.

The git work is `workspace/groups.py`; the decisions are `core/groups.py`. What both composers
need between them: the compute of the ONE `merge` commit that lands every member, and the
compute of each member's commit when the group did not land (the members involved fail the
merge and spend an attempt; the others go back without spending one), with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from gitdag.core import groups, judging
from gitdag.core.model import ErrorKind, Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Compute, StateStore
from gitdag.workspace.groups import GroupResult


def merging(snap: Snapshot, node_id: str, attempt: int) -> bool:
    """Tell whether the member is merging this very attempt (else the group must not land)."""
    summary = snap.nodes.get(node_id)
    return summary is not None and summary.status is Status.MERGING and summary.attempts == attempt


def landed(
    store: StateStore,
    group: str,
    attempts: Mapping[str, int],
    merged: str,
    heads: Mapping[str, str] | None = None,
) -> Compute:
    """The compute of the group's one `merge` commit: every member `merging -> done`.

    Refused when a member is no longer merging the attempt that was integrated (or, with
    `heads`, its recorded branch head is no longer the one merged).
    """

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        for nid, attempt in attempts.items():
            if not merging(snap, nid, attempt):
                return Rejected(f"{nid} is no longer merging attempt {attempt}")
        nodes = [store.node(snap, nid) for nid in attempts]
        if heads is not None:
            for node in nodes:
                if node.work is None or node.work.head != heads.get(node.id):
                    return Rejected(f"{node.id}'s branch moved on; not recording the group")
        return groups.landed(group, nodes, merged_commit=merged, now=now)

    return compute


def refusal(result: GroupResult) -> tuple[ErrorKind, str]:
    """The error kind and reason every member of a refused group is sent back with."""
    if result.status == "conflict":
        reason = f"merge conflict in {', '.join(result.paths[:20])} between members " + (
            ", ".join(result.involved)
        )
        if result.collided:
            reason += " (with the change of " + ", ".join(result.collided) + ")"
        return ErrorKind.MERGE_CONFLICT, reason
    reason = (
        f"the check failed once {', '.join(result.involved)} was merged:\n"
        + result.output_tail[-3000:]
    )
    return ErrorKind.CHECK_FAILED, reason


Pool = Callable[[Node], judging.PoolRules]


def sent_back(
    store: StateStore,
    group: str,
    node_id: str,
    attempt: int,
    result: GroupResult,
    pool: Pool | None = None,
) -> Compute:
    """The compute of one member's commit after its group was refused (`refusal`).

    A member involved (its branch conflicted, or its merge made the check fail) fails the merge
    as a single node would, spending an attempt; any other goes back to `open`, nothing spent,
    its branch carried.
    """
    kind, reason = refusal(result)
    involved = node_id in result.involved

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if not merging(snap, node_id, attempt):
            return Rejected(f"{node_id} is no longer merging attempt {attempt}")
        node = store.node(snap, node_id)
        if not involved:
            return groups.sent_back(node, group=group, kind=kind, reason=reason, now=now)
        failed = judging.fail_attempt(
            node, snap.nodes, snap.graph, kind=kind, summary=f"group {group}: {reason}",
            attempt=attempt, now=now, pool=pool(node) if pool else judging.PoolRules(),
            paths=result.paths if kind is ErrorKind.MERGE_CONFLICT else (), verb="merge",
        )  # fmt: skip
        return groups.tag(failed, group)

    return compute
