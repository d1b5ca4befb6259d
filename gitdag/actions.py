"""High-level operations behind the graph commands: each composes core decisions and the store.

`init` lives in gitdag.initrepo (all or nothing) and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gitdag.core import edits, graph
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected
from gitdag.errors import GraphError
from gitdag.initrepo import InitResult, init
from gitdag.store import repo as repos
from gitdag.store.snapshot import Problem
from gitdag.store.state import Committed, StateStore

__all__ = ["InitResult", "add", "init", "status", "validate"]


def add(store: StateStore, fields: dict[str, Any]) -> Committed:
    """Add one node, recomputed on the new head if another writer got there first."""
    outcome = store.transact(
        lambda snap, now: edits.add_transition(snap.nodes, fields, now),
        actor=repos.human_actor(store.repo),
    )
    if isinstance(outcome, Rejected):
        raise GraphError(str(outcome))
    assert isinstance(outcome, Committed)
    return outcome


def status(store: StateStore, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return counts per status, and the ready, blocked, running and merging nodes."""
    snap = store.snapshot()
    now = now or store.clock()
    nodes = snap.nodes
    running = sorted(nid for nid, n in nodes.items() if n.status is Status.RUNNING)
    merging = [nid for nid, n in nodes.items() if n.status is Status.MERGING]
    human = sorted(nid for nid, n in nodes.items() if n.status is Status.NEEDS_HUMAN)
    failed = sorted(nid for nid, n in nodes.items() if n.status is Status.FAILED)
    running_detail = []
    for nid in running:
        node = store.node(snap, nid)
        claim = node.claim
        running_detail.append(
            {
                "id": nid,
                "attempt": claim.attempt if claim else node.attempts,
                "worker": claim.worker if claim else None,
                "since": claim.since.isoformat() if claim else None,
            }
        )
    queue = sorted(
        merging, key=lambda nid: (store.node(snap, nid).updated_at, nid)
    )  # queue order: when they entered `merging`
    return {
        "head": snap.head,
        "goal": snap.graph.goal,
        "target": snap.graph.target,
        "paused": snap.graph.control.paused,
        "total": len(nodes),
        "counts": graph.counts(nodes.values()),
        "ready": graph.ready(nodes, now, paused=snap.graph.control.paused),
        "blocked": graph.blocked(nodes),
        "running": running_detail,
        "merge_queue": queue,
        "needs_human": human,
        "failed": failed,
    }


def validate(store: StateStore, rev: str | None) -> list[Problem]:
    """Return every problem of the graph at `rev` (default: the head), empty when valid."""
    commit = store.resolve(rev) if rev else store.head()
    if commit is None:
        return [Problem("dagain/state", "branch does not exist (run `gitdag init`)")]
    return list(store.snapshot_of(commit, strict=False).problems)
