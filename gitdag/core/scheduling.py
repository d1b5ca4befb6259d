"""Scheduling decisions: what to start now. Decides, never launches (the caller dispatches)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from gitdag.core import graph
from gitdag.core.graphindex import GraphIndex
from gitdag.core.model import Kind, NodeSummary, Status

_WILDCARDS = "*?["


def _literal_prefix(glob: str) -> str:
    cut = min((i for i, c in enumerate(glob) if c in _WILDCARDS), default=len(glob))
    return glob[:cut]


def globs_overlap(a: str, b: str) -> bool:
    """Tell whether two path globs may match a common path (conservative: never misses one).

    Two globs overlap when the literal part before the first wildcard of one is a prefix of the
    other's; `src/a/**` and `src/b/*` do not overlap, `src/*.py` and `src/x.py` do.
    """
    pa, pb = _literal_prefix(a), _literal_prefix(b)
    if pa == a and pb == b:  # two plain paths: equal, or one is a directory holding the other
        return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")
    return pa.startswith(pb) or pb.startswith(pa)


def ownership_conflicts(a: Collection[str], b: Collection[str]) -> bool:
    """Tell whether two nodes' ownership lists overlap (an empty list locks nothing)."""
    return any(globs_overlap(x, y) for x in a for y in b)


@dataclass(frozen=True)
class Dispatch:
    """One decision: start this node now, as a checkpoint question or with a runner."""

    node_id: str
    kind: Kind
    action: str  # "checkpoint" (ask a human: no runner) or "run"


def plan(
    nodes: Mapping[str, NodeSummary],
    *,
    capacity: int,
    now: dt.datetime,
    paused: bool = False,
    in_flight: Collection[str] = (),
    labels: Collection[str] | None = None,
    index: GraphIndex | None = None,
) -> list[Dispatch]:
    """Return what to start now, in claim order, within `capacity` free worker slots.

    Args:
      nodes: the graph's summaries (a caller may leave out ready nodes it holds back).
      capacity: free worker slots; checkpoint questions need no slot.
      now: the current time.
      paused: a paused graph starts nothing.
      in_flight: ids running (or merging) anywhere: their ownership globs are held.
      labels: this worker's labels; a node with labels only goes to a worker that has them all.
        None means "no label filter" (a local supervisor runs every node).
      index: the index of the whole graph `nodes` was taken from (`Snapshot.index`): the ready
        set and the running nodes come from it instead of a pass over every node, and the
        walk stops once the slots are spent and no ready checkpoint is left.
    """
    if paused:
        return []
    held = [nodes[nid].ownership for nid in in_flight if nid in nodes and nodes[nid].ownership]
    running = index.by_status[Status.RUNNING] if index is not None else None
    others = (
        (nodes[nid] for nid in running if nid in nodes) if running is not None else nodes.values()
    )
    held += [
        n.ownership for n in others
        if n.status is Status.RUNNING and n.ownership and n.id not in in_flight
    ]  # fmt: skip
    if index is not None:
        ready: Iterable[str] = index.iter_ready(now)
        checkpoints = index.ready_checkpoints()
    else:
        ready = graph.ready(nodes, now)
        checkpoints = -1  # unknown: look at every ready node
    chosen: list[Dispatch] = []
    slots = capacity
    for nid in ready:
        if slots <= 0 and checkpoints == 0:
            break  # nothing left that could start
        node = nodes.get(nid)
        if node is None:
            continue  # held back by the caller
        if node.kind is Kind.CHECKPOINT:
            chosen.append(Dispatch(nid, node.kind, "checkpoint"))
            checkpoints -= 1
            continue
        if slots <= 0:
            continue
        if labels is not None and not set(node.labels) <= set(labels):
            continue
        if node.ownership and any(ownership_conflicts(node.ownership, h) for h in held):
            continue
        chosen.append(Dispatch(nid, node.kind, "run"))
        if node.ownership:
            held.append(node.ownership)
        slots -= 1
    return chosen


def next_wakeup(
    nodes: Mapping[str, NodeSummary], now: dt.datetime, *, index: GraphIndex | None = None
) -> dt.datetime | None:
    """Return the earliest future `not_before` of an open node whose deps are satisfied.

    That is when the graph can make progress again on its own; None when nothing is waiting on
    a backoff (so only outside action can help). With the graph's `index`, no pass is made.
    """
    if index is not None:
        return index.next_wakeup(now)
    soonest: dt.datetime | None = None
    for node in nodes.values():
        if node.status is not Status.OPEN or node.not_before is None or node.not_before <= now:
            continue
        pretend = node._replace(not_before=None)
        if graph.is_ready(pretend, nodes, now) and (soonest is None or node.not_before < soonest):
            soonest = node.not_before
    return soonest


def can_progress(
    nodes: Mapping[str, NodeSummary],
    now: dt.datetime,
    *,
    paused: bool,
    index: GraphIndex | None = None,
) -> bool:
    """Tell whether anything can still start without outside action (now or after a backoff)."""
    if paused:
        return False
    if index is not None:
        return next(index.iter_ready(now), None) is not None or index.next_wakeup(now) is not None
    return bool(graph.ready(nodes, now)) or next_wakeup(nodes, now) is not None


def outcome_code(nodes: Mapping[str, NodeSummary]) -> int:
    """Return `gitdag run`'s exit code for a graph that cannot progress: 0 all done, else 1."""
    ends = (Status.DONE, Status.CANCELLED, Status.SKIPPED)
    settled = all(n.status in ends for n in nodes.values())
    return 0 if settled else 1
