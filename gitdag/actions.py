"""High-level operations behind the graph commands: each composes core decisions and the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from dulwich.objects import Commit
from dulwich.refs import Ref

from gitdag.core import edits, graph
from gitdag.core.model import Status
from gitdag.core.refnames import target_problem
from gitdag.core.transitions import Rejected
from gitdag.errors import GraphError, InputError
from gitdag.store import repo as repos
from gitdag.store.layout import branch_ref
from gitdag.store.ranges import graph_problems_at
from gitdag.store.snapshot import Problem
from gitdag.store.state import Committed, StateStore
from gitdag.template import copy_template


@dataclass(frozen=True)
class InitResult:
    """What `gitdag init` did."""

    head: str
    target: str
    target_created: bool
    files: tuple[str, ...]


def init(
    store: StateStore, goal: str, target: str, defaults: dict[str, Any] | None = None
) -> InitResult:
    """Create the state branch (one commit), copy the template to `.dagain/`, create the target."""
    _check_target(store, target)
    try:
        head_commit = store.repo[b"HEAD"]
    except KeyError:
        raise InputError(
            "HEAD has no commit yet: commit something first, gitdag starts the target branch there"
        ) from None
    if not isinstance(head_commit, Commit):
        raise InputError("HEAD does not point at a commit")
    transition = edits.init_transition(goal, target, store.clock(), defaults)
    if isinstance(transition, Rejected):
        raise InputError(transition.reason)
    committed = store.init(transition, repos.human_actor(store.repo))
    files: list[str] = []
    if not store.repo.bare:
        created = copy_template(store.paths.dagain)
        files = [str(p.relative_to(store.paths.root)) for p in created]
    target_created = bool(store.repo.refs.add_if_new(Ref(branch_ref(target)), head_commit.id))
    store.paths.ensure_local()
    return InitResult(committed.head, target, target_created, tuple(files))


def _check_target(store: StateStore, target: str) -> None:
    # Before anything is written: the name rules (also the model's) and the file/directory
    # clash with an existing branch, which only the repository can tell (docs/input-rules.md).
    problem = target_problem(target)
    if problem is None:
        other = repos.branch_clash(store.repo, target)
        if other is not None:
            problem = f"branch {other!r} exists, and git cannot hold both {target} and {other}"
    if problem is not None:
        raise InputError(f"--target {target[:80]!r}: {problem}; nothing was written")


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
    return graph_problems_at(store, commit)
