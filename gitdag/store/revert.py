"""Revert and reset as forward commits on the state branch (history is never rewritten).

Both are computed inside `StateStore.transact`, so a concurrent writer makes them recompute on the
new head rather than clobber it. Only the files that differ are read: a revert walks the tree
diffs from the head back to its target, a reset diffs the head's tree against the target's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from gitdag.core.ids import id_problem
from gitdag.core.model import GraphFile, Node, Status
from gitdag.core.revert import (
    RevertPlan,
    Touch,
    integrated_reopened,
    plan_revert,
    restore_transition,
)
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import InputError, NotInitialisedError
from gitdag.store.delta import NodeReader, RawChange, TreeDiffer, commit_of, raw_changes, resolve
from gitdag.store.layout import GRAPH_FILE, STATE_BRANCH, node_id_from_path
from gitdag.store.snapshot import Problem, Snapshot
from gitdag.store.state import Committed, StateStore


@dataclass
class _Changes:
    """One commit's raw changes, by node id, plus its graph.yaml change."""

    touch: Touch
    nodes: dict[str, RawChange]
    graph: RawChange | None


def _changes_of(store: StateStore, commit: str, differ: TreeDiffer) -> _Changes:
    obj = commit_of(store.repo, commit)
    parent = obj.parents[0].decode() if obj.parents else None
    old_tree = commit_of(store.repo, parent).tree.decode() if parent else None
    nodes: dict[str, RawChange] = {}
    graph: RawChange | None = None
    for change in raw_changes(store.repo, old_tree, obj.tree.decode(), differ):
        if change.path == GRAPH_FILE:
            graph = change
            continue
        nid = node_id_from_path(change.path)
        if nid is not None and id_problem(nid) is None:
            nodes[nid] = change
    title = obj.message.decode("utf-8", errors="replace").split("\n", 1)[0].strip()
    added = frozenset(nid for nid, c in nodes.items() if c.old is None)
    return _Changes(Touch(commit, title, frozenset(nodes), added, graph is not None), nodes, graph)


def _history(store: StateStore, head: str, target: str) -> list[_Changes] | Rejected:
    """Return the changes of `target` and every later commit up to `head`, oldest first."""
    found: list[_Changes] = []
    current: str | None = head
    differ = TreeDiffer(store.repo)
    while current is not None:
        changes = _changes_of(store, current, differ)
        found.append(changes)
        if current == target:
            found.reverse()
            return found
        parents = commit_of(store.repo, current).parents
        current = parents[0].decode() if parents else None
    return Rejected(f"{target[:12]} is not a commit of {STATE_BRANCH} (not behind its head)")


class _Versions:
    """Loads node and graph versions from blob shas, through the parse cache."""

    def __init__(self, store: StateStore) -> None:
        self.reader = NodeReader(store.repo, store.cache)

    def node(self, change: RawChange, side: str) -> Node | None:
        sha = change.old if side == "old" else change.new
        if sha is None:
            return None
        loaded = self.reader.node(sha, change.path)
        if isinstance(loaded, Problem):
            raise InputError(f"cannot restore {loaded}")
        return loaded

    def graph(self, change: RawChange, side: str) -> GraphFile | None:
        sha = change.old if side == "old" else change.new
        if sha is None:
            return None
        loaded = self.reader.graph(sha)
        if isinstance(loaded, Problem):
            raise InputError(f"cannot restore {loaded}")
        return loaded


def _current_nodes(store: StateStore, snap: Snapshot, ids: list[str]) -> dict[str, Node]:
    return {nid: store.node(snap, nid) for nid in ids if nid in snap.blobs}


def revert_transition(
    store: StateStore, snap: Snapshot, target: str, *, force: bool
) -> Transition | Rejected | None:
    """Compute the revert of `target` on the graph `snap` (see `core.revert`)."""
    assert snap.head is not None
    history = _history(store, snap.head, target)
    if isinstance(history, Rejected):
        return history
    first = history[0]
    if not commit_of(store.repo, target).parents:
        return Rejected(
            f"{target[:12]} is the root (init) commit: use `gitdag reset --to` to go back that far"
        )
    by_commit = {c.touch.commit: c for c in history}
    versions = _Versions(store)

    def status_before(commit: str, nid: str) -> Status | None:
        node = versions.node(by_commit[commit].nodes[nid], "old")
        return node.status if node is not None else None

    plan = plan_revert(
        first.touch, [c.touch for c in history[1:]], snap.nodes, status_before, force=force
    )
    if isinstance(plan, Rejected):
        return plan
    return _apply_plan(store, snap, plan, by_commit, versions)


def _apply_plan(
    store: StateStore,
    snap: Snapshot,
    plan: RevertPlan,
    by_commit: dict[str, _Changes],
    versions: _Versions,
) -> Transition | Rejected | None:
    restored = {
        nid: versions.node(by_commit[commit].nodes[nid], "old")
        for nid, commit in plan.restore.items()
    }
    graph_restored = None
    if plan.graph_from is not None:
        change = by_commit[plan.graph_from].graph
        assert change is not None
        graph_restored = versions.graph(change, "old")
        if graph_restored is None:
            return Rejected("the revert would remove graph.yaml")
    target = by_commit[plan.commits[-1]].touch
    subject = target.title.split()[1].rstrip(":") if len(target.title.split()) > 1 else "graph"
    if subject not in restored:
        subject = next(iter(restored)) if len(restored) == 1 else "graph"
    summary = f"Revert {target.commit[:12]} ({target.title})."
    if len(plan.commits) > 1:
        others = ", ".join(f"{c[:12]} ({by_commit[c].touch.title})" for c in plan.commits[:-1])
        summary += f" Also reverted, because they built on it: {others}."
    return restore_transition(
        verb="revert",
        subject=subject,
        summary=summary,
        current=_current_nodes(store, snap, sorted(restored)),
        restored=restored,
        graph_now=snap.graph,
        graph_restored=graph_restored,
        summaries=snap.nodes,
        trailers=tuple(("Gitdag-Reverts", c) for c in plan.commits),
    )


def reset_transition(
    store: StateStore,
    snap: Snapshot,
    target: str,
    *,
    rerun_integrated: bool = False,
    integrated: list[str] | None = None,
) -> Transition | Rejected | None:
    """Compute the commit that makes the graph of `snap` equal the graph at `target`.

    Nodes whose change is already on the target (done, `work.merged`) and that the reset would
    reopen keep their done state unless `rerun_integrated`; either way their ids are put in
    `integrated` (when given) so the caller can say so.
    """
    assert snap.tree is not None
    problems = store.snapshot_of(target, strict=False).problems
    if problems:
        return Rejected(f"{target[:12]} is not a valid graph ({problems[0]}); pick another commit")
    versions = _Versions(store)
    restored: dict[str, Node | None] = {}
    current: dict[str, Node] = {}
    graph_restored: GraphFile | None = None
    target_tree = commit_of(store.repo, target).tree.decode()
    for change in raw_changes(store.repo, snap.tree, target_tree):
        if change.path == GRAPH_FILE:
            graph_restored = versions.graph(change, "new")
            continue
        nid = node_id_from_path(change.path)
        if nid is None:
            continue
        restored[nid] = versions.node(change, "new")
        if nid in snap.blobs:
            current[nid] = store.node(snap, nid)
    title = commit_of(store.repo, target).message.decode("utf-8", "replace").split("\n", 1)[0]
    reopened = integrated_reopened(current, restored)
    if integrated is not None:
        integrated[:] = reopened
    summary = f"Reset the graph to {target[:12]} ({title.strip()})."
    if reopened and not rerun_integrated:
        for nid in reopened:
            restored[nid] = current[nid]  # already on the target: stays done
        summary += f" Kept done (already integrated): {', '.join(reopened)}."
    elif reopened:
        summary += f" Reopened although integrated (--rerun-integrated): {', '.join(reopened)}."
    return restore_transition(
        verb="reset",
        subject="graph",
        summary=summary,
        current=current,
        restored=restored,
        graph_now=snap.graph,
        graph_restored=graph_restored,
        summaries=snap.nodes,
        trailers=(("Gitdag-Reset-To", target),),
    )


Decide = Callable[[Snapshot], "Transition | Rejected | None"]


def _commit(store: StateStore, decide: Decide, actor: str) -> Committed | Rejected | None:
    def run(snap: Snapshot, now: dt.datetime) -> Transition | Rejected | None:
        return decide(snap)

    # Not strict: these are the repair tools for a head that fails validation.
    return store.transact(run, actor=actor, strict=False)


def revert(
    store: StateStore, rev: str, *, actor: str, force: bool = False
) -> Committed | Rejected | None:
    """Commit the revert of the transition `rev` (recomputed on a new head if the branch moves).

    Returns:
      Committed; Rejected (nothing written) with the reason; None when nothing would change.

    Raises:
      InputError: `rev` names no commit, or a file to restore cannot be read.
    """
    if store.head() is None:
        raise NotInitialisedError(f"no {STATE_BRANCH} branch here: run `gitdag init` first")
    target = resolve(store, rev)
    return _commit(store, lambda snap: revert_transition(store, snap, target, force=force), actor)


def reset(
    store: StateStore,
    rev: str,
    *,
    actor: str,
    rerun_integrated: bool = False,
    integrated: list[str] | None = None,
) -> Committed | Rejected | None:
    """Commit a reset of the graph to its state at `rev` (one new commit; history kept).

    Args:
      store: the state store.
      rev: the revision whose graph to restore.
      actor: who resets.
      rerun_integrated: reopen nodes whose change is already on the target (default: they stay
        done, so their change is not integrated a second time).
      integrated: when given, filled with those nodes' ids (kept or reopened).

    Returns:
      Committed; Rejected (nothing written) with the reason; None when the graphs are equal.
    """
    if store.head() is None:
        raise NotInitialisedError(f"no {STATE_BRANCH} branch here: run `gitdag init` first")
    target = resolve(store, rev)
    return _commit(
        store,
        lambda snap: reset_transition(
            store, snap, target, rerun_integrated=rerun_integrated, integrated=integrated
        ),
        actor,
    )
