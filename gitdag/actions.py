"""High-level operations behind the graph commands: each composes core decisions and the store.

`init` lives in gitdag.initrepo (all or nothing) and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dulwich.refs import Ref

from gitdag.core import graph
from gitdag.core.summary import NodeSummary, Status
from gitdag.errors import GraphError
from gitdag.store import localholds
from gitdag.store import repo as repos
from gitdag.store.layout import PROPOSAL_BRANCH_PREFIX
from gitdag.store.snapshot import Layered, Problem, Snapshot
from gitdag.store.state import Committed, StateStore

if TYPE_CHECKING:
    from gitdag.initrepo import InitResult, init  # re-exported lazily (__getattr__)
    from gitdag.store.proposal_branches import Pending

__all__ = ["InitResult", "add", "init", "status", "validate"]


def add(store: StateStore, fields: dict[str, Any]) -> Committed:
    """Add one node, recomputed on the new head if another writer got there first."""
    from gitdag.core import edits
    from gitdag.core.transitions import Rejected

    outcome = store.transact(
        lambda snap, now: edits.add_transition(
            snap.nodes,
            fields,
            now,
            lambda nid: store.node(snap, nid) if nid in snap.nodes else None,
        ),
        actor=repos.human_actor(store.repo),
    )
    if isinstance(outcome, Rejected):
        raise GraphError(str(outcome))
    assert isinstance(outcome, Committed)
    return outcome


def group_report(nodes: Mapping[str, NodeSummary]) -> list[dict[str, Any]]:
    """Return each transaction group: its members with their status, and what it waits for."""
    names = sorted({n.group for n in nodes.values() if n.group is not None})
    report: list[dict[str, Any]] = []
    if not names:
        return report
    from gitdag.core import groups  # brings the lifecycle and the models: only when needed

    for name in names:
        ready = groups.readiness(nodes, name)
        members = [{"id": nid, "status": nodes[nid].status.value} for nid in ready.members]
        landed = all(nodes[nid].status is Status.DONE for nid in ready.members)
        state = "landed" if landed else (ready.waiting or "ready to integrate")
        report.append({"name": name, "members": members, "state": state})
    return report


def status(store: StateStore, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return counts per status, the nodes in each list `gitdag status` shows, and proposals.

    The lists: ready, blocked, waiting (with what each waits for), running (with elapsed time),
    the merge queue, needs-human and failed nodes, and the proposals waiting for review.
    """
    snap = store.snapshot()
    now = now or store.clock()
    # Several passes over every node follow: a plain dict iterates faster than the layers.
    nodes = snap.nodes.flat() if isinstance(snap.nodes, Layered) else snap.nodes
    # The graph's summary and the nodes' details come from the caches without the models
    # (pydantic) when they are warm: `gitdag status` starts fast (issue 18 part 5).
    head = snap.graph_summary
    paused = head.paused
    # One pass sorts every node into its status (status runs on graphs of 100k nodes).
    by_status: dict[Status, list[str]] = {s: [] for s in Status}
    for nid, n in nodes.items():
        by_status[n.status].append(nid)
    running = sorted(by_status[Status.RUNNING])
    merging = by_status[Status.MERGING]
    human = sorted(by_status[Status.NEEDS_HUMAN])
    failed = sorted(by_status[Status.FAILED])
    running_detail = []
    for nid in running:
        d = store.detail(snap, nid)
        running_detail.append(
            {
                "id": nid,
                "attempt": d.attempt,
                "worker": d.worker,
                "since": d.since.isoformat() if d.since else None,
                "elapsed_s": round((now - d.since).total_seconds(), 1) if d.since else None,
                "iteration": d.iteration,  # agent loops
            }
        )
    details = {nid: store.detail(snap, nid) for nid in merging}
    queue = sorted(
        merging, key=lambda nid: (details[nid].updated_at, nid)
    )  # queue order: when they entered `merging`
    blocked = graph.blocked(nodes, failed + by_status[Status.CANCELLED])
    ready, waiting = graph.open_sets(nodes, now, paused=paused, blocked_ids=blocked)
    held = []  # merges waiting for an environment repair (docs/state-branch.md, `hold`)
    for nid in queue:
        hold = details[nid].hold
        if hold is not None:
            held.append({"id": nid, "kind": hold.kind.value, "reason": hold.reason,
                         "repair": hold.repair, "since": hold.since.isoformat()})  # fmt: skip
    return {
        "head": snap.head,
        "goal": head.goal,
        "target": head.target,
        "paused": paused,
        "total": len(nodes),
        "counts": {s.value: len(ids) for s, ids in by_status.items()},
        "ready": ready,
        "blocked": blocked,
        "waiting": [{"id": nid, "for": list(why)} for nid, why in waiting.items()],
        "running": running_detail,
        "merge_queue": queue,
        "held": held,
        "groups": group_report(nodes),
        # Starts the running supervisor or worker keeps back (nothing on the branch says so).
        "start_holds": localholds.read(store.paths.local),
        "needs_human": human,
        "failed": failed,
        "proposals": [
            {
                "name": p.name,
                "branch": p.branch,
                "head": p.head,
                "nodes": list(p.nodes),
                "conflict": p.conflict,
                "review": f"gitdag diff dagain/state {p.branch}",
                "apply": f"gitdag apply-proposal {p.name}",
            }
            for p in _pending_proposals(store, snap)
        ],
    }


def _pending_proposals(store: StateStore, snap: Snapshot) -> list[Pending]:
    # Most repositories have no proposal branch: one ref listing, and the merge code stays unloaded.
    if not store.repo.refs.keys(base=Ref(("refs/heads/" + PROPOSAL_BRANCH_PREFIX).encode())):
        return []
    from gitdag.store import proposal_branches

    return list(proposal_branches.pending(store, snap))


def validate(store: StateStore, rev: str | None) -> list[Problem]:
    """Return every problem of the graph at `rev` (default: the head), empty when valid."""
    commit = store.resolve(rev) if rev else store.head()
    if commit is None:
        return [Problem("dagain/state", "branch does not exist (run `gitdag init`)")]
    from gitdag.store.ranges import graph_problems_at  # a full check: `status` does not pay

    return graph_problems_at(store, commit)


def __getattr__(name: str) -> Any:
    # `init` and its result type live in gitdag.initrepo, which brings filelock, the config
    # models and ruamel: loaded on first use, so `gitdag status` / `ready` / `show` start
    # without them (tests/cli/test_fast_start.py).
    if name in ("init", "InitResult"):
        from gitdag import initrepo

        return getattr(initrepo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
