"""Control from any shell: answer, pause, resume, cancel, retry — one state commit each.

A running supervisor sees the new head within a second and acts on it (stops a cancelled node's
runner, starts an answered node's next attempt, stops claiming while paused).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gitdag.core import human_verbs
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import InputError
from gitdag.store import repo as repos
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore


def _apply(
    store: StateStore,
    compute: Callable[[Snapshot, dt.datetime], Transition | Rejected],
    actor: str | None = None,
) -> Committed:
    outcome = store.transact(compute, actor=actor or repos.human_actor(store.repo))
    if isinstance(outcome, Rejected):
        raise InputError(str(outcome))
    if outcome is None:
        raise InputError("nothing to change")
    return outcome


def _node_op(
    store: StateStore,
    node_id: str,
    op: Callable[..., Transition | Rejected],
    actor: str | None = None,
    **kwargs: object,
) -> Committed:
    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if node_id not in snap.nodes:
            return Rejected(f"unknown node {node_id!r}")
        return op(store.node(snap, node_id), now=now, **kwargs)

    return _apply(store, compute, actor)


# `actor` is who the commit names (default: the git user, as for a command typed in a shell);
# `gitdag ui` passes `ui@<host>` so that steering from the page is told apart in the history.


def answer(
    store: StateStore,
    node_id: str,
    text: str,
    option: int | None = None,
    *,
    actor: str | None = None,
) -> Committed:
    """Answer a node waiting for a human (text, or the N-th of its options, 1-based)."""
    by = actor or repos.human_actor(store.repo)
    return _node_op(store, node_id, human_verbs.answer, by, text=text, by=by, option=option)


def cancel(store: StateStore, node_id: str, *, actor: str | None = None) -> Committed:
    """Cancel a node; a supervisor running it stops its runner within 2 s."""
    by = actor or repos.human_actor(store.repo)
    return _node_op(store, node_id, human_verbs.cancel, by, by=by)


def retry(
    store: StateStore, node_id: str, force: bool = False, *, actor: str | None = None
) -> Committed:
    """Reopen a failed or cancelled node (a done one with force) with a fresh budget."""
    return _node_op(store, node_id, human_verbs.retry, actor, force=force)


def set_paused(store: StateStore, paused: bool, *, actor: str | None = None) -> Committed:
    """Pause (nothing new starts; running nodes finish) or resume the graph."""
    return _apply(store, lambda snap, now: human_verbs.set_paused(snap.graph, paused), actor)
