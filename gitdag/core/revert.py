"""Reverting a transition as a new commit: which commits must go, and what the graph becomes.

A revert restores every node (and `graph.yaml`) the commit changed to its version before that
commit. That is only sound when nothing later built on the change; a later transition *built on
it* when:

- it changed one of the same nodes again (reverting a claim whose node has since completed);
- the revert removes a node (the commit added it) that a node refers to now (deps, after, parent);
- the revert takes a node out of `done` (or another terminal status) that a dependent has since
  been run after (its deps were satisfied by the change being undone).

Without `force` such a revert is refused with those reasons. With `force`, the later transitions
are reverted too, until nothing left builds on the set (a closure), and one commit restores every
touched node to its version before the oldest reverted commit that touched it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gitdag.core.graph import NodeLike
from gitdag.core.graph_checks import check_graph, edges_changed
from gitdag.core.legality import Violation
from gitdag.core.model import TERMINAL, GraphFile, Node, NodeSummary, Status, summarize
from gitdag.core.transitions import Rejected, Transition


@dataclass(frozen=True)
class Touch:
    """What one commit changed, by id only (cheap to collect from tree diffs).

    Attributes:
      commit: the commit (hex).
      title: its first line, for messages.
      nodes: ids of the node files it changed.
      added: ids among those that did not exist at its parent.
      graph: whether it changed `graph.yaml`.
    """

    commit: str
    title: str
    nodes: frozenset[str]
    added: frozenset[str] = frozenset()
    graph: bool = False


@dataclass(frozen=True)
class RevertPlan:
    """Which commits a revert undoes and where each restored file comes from.

    Attributes:
      commits: the reverted commits, newest first (the target last).
      restore: node id -> the commit whose parent holds the version to restore.
      graph_from: the commit whose parent's `graph.yaml` is restored, when one changed it.
      reasons: why later commits were included (empty for a plain revert).
    """

    commits: tuple[str, ...]
    restore: dict[str, str]
    graph_from: str | None
    reasons: tuple[str, ...] = field(default=())


# (commit, node id) -> the node's status at that commit's parent (None: it did not exist).
StatusBefore = Callable[[str, str], Status | None]


def _short(touch: Touch) -> str:
    return f"{touch.commit[:12]} ({touch.title})"


def plan_revert(
    target: Touch,
    later: Sequence[Touch],
    current: Mapping[str, NodeLike],
    status_before: StatusBefore,
    *,
    force: bool,
) -> RevertPlan | Rejected:
    """Decide what reverting `target` takes (see the module docstring).

    Args:
      target: the commit to revert.
      later: every commit after it up to the head, oldest first.
      current: the graph at the head, as summaries.
      status_before: the status of a node at a commit's parent (loads one file).
      force: revert the later transitions that build on it too.

    Returns:
      The plan, or Rejected naming every later transition that builds on the target and why.
    """
    order = [target, *later]
    chosen = {0}
    reasons: list[str] = []
    dependents = _dependents_index(current)
    while True:
        first: dict[str, int] = {}
        graph_first: int | None = None
        for i in sorted(chosen):
            for nid in order[i].nodes:
                first.setdefault(nid, i)
            if order[i].graph and graph_first is None:
                graph_first = i
        # why -> the later commits it pulls in (a dict keeps the order reasons were found in)
        wanted: dict[str, list[int]] = {}
        for nid, i in first.items():
            later_js = [j for j in range(i + 1, len(order))
                        if j not in chosen and nid in order[j].nodes]  # fmt: skip
            if later_js:
                wanted.setdefault(f"node {nid} changed since", []).extend(later_js)
        if graph_first is not None:
            later_js = [j for j in range(graph_first + 1, len(order))
                        if j not in chosen and order[j].graph]  # fmt: skip
            if later_js:
                wanted.setdefault("graph.yaml changed since", []).extend(later_js)
        for nid, i in first.items():
            restored = None if nid in order[i].added else status_before(order[i].commit, nid)
            now = current.get(nid)
            if now is None:
                continue
            for other, how in dependents.get(nid, ()):
                why = _builds_on(now.status, restored, how, current[other])
                if why is None or other in first:
                    continue
                later_js = [j for j in range(i + 1, len(order))
                            if j not in chosen and other in order[j].nodes]  # fmt: skip
                if later_js:
                    wanted.setdefault(f"node {other} {why} {nid} ({how})", []).extend(later_js)
        if not wanted:
            break
        lines = [
            f"{why}: {', '.join(_short(order[j]) for j in sorted(set(js)))}"
            for why, js in wanted.items()
        ]
        if not force:
            return Rejected(
                f"later transitions build on {_short(target)}: "
                + "; ".join(lines)
                + ". Revert them first, or use --force to revert them too",
                nodes=tuple(sorted(target.nodes)),
            )
        reasons += lines
        for js in wanted.values():
            chosen.update(js)
    restore = {nid: order[i].commit for nid, i in first.items()}
    commits = tuple(order[i].commit for i in sorted(chosen, reverse=True))
    graph_from = order[graph_first].commit if graph_first is not None else None
    return RevertPlan(commits, restore, graph_from, tuple(reasons))


def _has_run(node: NodeLike) -> bool:
    return node.status in (Status.RUNNING, Status.MERGING, Status.DONE, Status.NEEDS_HUMAN) or (
        getattr(node, "attempts", 0) > 0
    )


def _builds_on(now: Status, restored: Status | None, how: str, other: NodeLike) -> str | None:
    """Return how `other` builds on a node going from `now` to `restored`, or None."""
    if restored is None:
        return "refers to"  # the node would disappear under a reference
    if how == "parent" or not _has_run(other):
        return None  # a reopened parent or a dependent that never ran loses nothing
    if how == "deps" and now is Status.DONE and restored is not Status.DONE:
        return "ran after"
    if how == "after" and now in TERMINAL and restored not in TERMINAL:
        return "ran after"
    return None


def _dependents_index(current: Mapping[str, NodeLike]) -> dict[str, list[tuple[str, str]]]:
    index: dict[str, list[tuple[str, str]]] = {}
    for node in current.values():
        for ref in node.deps:
            index.setdefault(ref, []).append((node.id, "deps"))
        for ref in node.after:
            index.setdefault(ref, []).append((node.id, "after"))
        if node.parent is not None:
            index.setdefault(node.parent, []).append((node.id, "parent"))
    return index


def stop_list(current: Mapping[str, Node], restored: Mapping[str, Node | None]) -> list[str]:
    """Return the nodes running now whose current attempt the restored graph does not run.

    A supervisor stops their runners (the `Gitdag-Stop` trailers of a revert or reset).
    """
    stop = []
    for nid, now in sorted(current.items()):
        if now.status is not Status.RUNNING or nid not in restored:
            continue
        after = restored[nid]
        if after is None or after.status is not Status.RUNNING or after.claim != now.claim:
            stop.append(nid)
    return stop


def keep_attempts(now: Node | None, back: Node | None) -> Node | None:
    """Return `back` with its attempt counter never below `now`'s.

    Attempt numbers fence results: a late result of attempt N is applied only while N is the
    current attempt. Restoring an older counter would let a new claim reuse a number whose runner
    may still deliver, so a revert or reset restores everything but the counter: the attempts
    the restored version had used are kept as used (`attempt_base` moves with the counter), and a
    restored claim of an attempt that is over becomes `open`.
    """
    if now is None or back is None or back.attempts >= now.attempts:
        return back
    used = back.attempts - back.attempt_base
    update: dict[str, object] = {"attempts": now.attempts, "attempt_base": now.attempts - used}
    if back.status is Status.RUNNING:
        update.update(status=Status.OPEN, claim=None)
    return back.model_copy(update=update)


def integrated_reopened(
    current: Mapping[str, Node], restored: Mapping[str, Node | None]
) -> list[str]:
    """Return the nodes a restore would reopen although their change is already on the target.

    A code-changing node that is `done` with `work.merged` set has its commit on the target; put
    back to an earlier, not-done version it would run again and integrate its change a second
    time. `gitdag reset` keeps such nodes done unless asked to rerun them (docs/review.md).

    Args:
      current: the touched nodes as they are now.
      restored: the same ids -> the version a restore would put in place (None: removed).
    """
    found = []
    for nid, node in restored.items():
        now = current.get(nid)
        if node is None or now is None or now.status is not Status.DONE:
            continue
        if now.work is not None and now.work.merged and node.status is not Status.DONE:
            found.append(nid)
    return sorted(found)


def restore_transition(
    *,
    verb: str,
    subject: str,
    summary: str,
    current: Mapping[str, Node],
    restored: Mapping[str, Node | None],
    graph_now: GraphFile,
    graph_restored: GraphFile | None,
    summaries: Mapping[str, NodeSummary],
    trailers: tuple[tuple[str, str], ...] = (),
) -> Transition | Rejected | None:
    """Build the commit that puts `restored` in place of `current`, if the result is valid.

    Shared by revert and reset: both restore earlier versions of some nodes and `graph.yaml`.

    Args:
      verb: `revert` or `reset`.
      subject: the node the title names (or `graph`).
      summary: the commit body.
      current: the touched nodes as they are now (absent: they do not exist now).
      restored: the same ids -> the version to restore (None: the node must not exist).
      graph_now: `graph.yaml` now.
      graph_restored: `graph.yaml` to restore, or None to keep it.
      summaries: the whole graph now, as summaries (for the graph checks).
      trailers: extra trailers (`Gitdag-Reverts`, ...).

    Returns:
      The transition; Rejected when the result would break the graph; None when nothing changes.
    """
    restored = {nid: keep_attempts(current.get(nid), node) for nid, node in restored.items()}
    put = [node for nid, node in sorted(restored.items())
           if node is not None and current.get(nid) != node]  # fmt: skip
    remove = [nid for nid, node in sorted(restored.items()) if node is None and nid in current]
    graph = graph_restored if graph_restored is not None and graph_restored != graph_now else None
    if not put and not remove and graph is None:
        return None
    after: dict[str, NodeLike] = dict(summaries)
    for nid in remove:
        after.pop(nid, None)
    for node in put:
        after[node.id] = summarize(node)
    before_nodes = {nid: current[nid] for nid in restored if nid in current}
    problems: list[Violation] = check_graph(
        after, edges_changed(before_nodes, {n.id: n for n in put}), remove
    )
    if problems:
        return Rejected(
            f"the {verb} would leave an invalid graph: " + "; ".join(str(p) for p in problems[:5]),
            nodes=tuple(p.node for p in problems if p.node),
        )
    stops = stop_list(current, restored)
    changed = sorted({n.id for n in put} | set(remove))
    head = current.get(subject)
    back = restored.get(subject) if subject in restored else None
    return Transition(
        verb=verb,
        subject=subject,
        summary=summary,
        from_status=head.status.value if head is not None and subject in changed else None,
        to_status=back.status.value if back is not None and subject in changed else None,
        put=tuple(put),
        remove=tuple(remove),
        graph=graph,
        nodes=tuple(changed),
        trailers=(*trailers, *(("Gitdag-Stop", nid) for nid in stops)),
    )
