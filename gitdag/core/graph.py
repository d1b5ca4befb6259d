"""Graph algorithms over node summaries: cycles, order, ready and blocked sets, scopes.

Every function takes a mapping of id -> node-like record (a `NodeSummary` or a full `Node`) and
never mutates it.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from gitdag.core.summary import SATISFIED, TERMINAL, Kind, Status


class NodeLike(Protocol):
    """What the algorithms read of a node."""

    @property
    def id(self) -> str: ...  # noqa: D102
    @property
    def kind(self) -> Kind: ...  # noqa: D102
    @property
    def status(self) -> Status: ...  # noqa: D102
    @property
    def deps(self) -> tuple[str, ...]: ...  # noqa: D102
    @property
    def after(self) -> tuple[str, ...]: ...  # noqa: D102
    @property
    def parent(self) -> str | None: ...  # noqa: D102
    @property
    def not_before(self) -> dt.datetime | None: ...  # noqa: D102
    @property
    def priority(self) -> int: ...  # noqa: D102
    @property
    def created_at(self) -> dt.datetime: ...  # noqa: D102


Nodes = Mapping[str, NodeLike]


def edges(node: NodeLike) -> tuple[str, ...]:
    """Return the ids a node waits for: its deps, then its `after` list."""
    return node.deps + node.after if node.after else node.deps


def unknown_refs(nodes: Nodes) -> list[tuple[str, str, str]]:
    """Return `(node, field, id)` for every dep, after or parent naming an unknown node."""
    missing: list[tuple[str, str, str]] = []
    for node in nodes.values():
        for field, refs in (("deps", node.deps), ("after", node.after)):
            missing.extend((node.id, field, ref) for ref in refs if ref not in nodes)
        if node.parent is not None and node.parent not in nodes:
            missing.append((node.id, "parent", node.parent))
    return missing


def find_cycle(nodes: Nodes, roots: Iterable[str] | None = None) -> list[str] | None:
    """Return one cycle as a list of ids (first id repeated at the end), or None if acyclic.

    Args:
      nodes: the graph; edges to unknown ids are ignored.
      roots: where to start looking (default: every node). A cycle through new nodes can only
        be reached from them, so callers adding a few nodes pass just those.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in roots if roots is not None else nodes:
        if root not in nodes or state.get(root) == 2:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(edges(nodes[root])))]
        state[root] = 1
        path.append(root)
        while stack:
            current, children = stack[-1]
            advanced = False
            for child in children:
                if child not in nodes:
                    continue
                mark = state.get(child)
                if mark == 1:
                    return [*path[path.index(child) :], child]
                if mark is None:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(edges(nodes[child]))))
                    advanced = True
                    break
            if not advanced:
                state[current] = 2
                path.pop()
                stack.pop()
    return None


def topological_order(nodes: Nodes) -> list[str]:
    """Return every id so that each node comes after all it waits for (ties: by id).

    Raises:
      ValueError: when the graph has a cycle (the message names it).
    """
    indegree = {nid: 0 for nid in nodes}
    dependents: dict[str, list[str]] = {nid: [] for nid in nodes}
    for node in nodes.values():
        for ref in set(edges(node)):
            if ref in nodes:
                indegree[node.id] += 1
                dependents[ref].append(node.id)
    heap = [nid for nid, deg in indegree.items() if deg == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        nid = heapq.heappop(heap)
        order.append(nid)
        for child in dependents[nid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, child)
    if len(order) != len(nodes):
        cycle = find_cycle(nodes) or []
        raise ValueError("cycle: " + " -> ".join(cycle))
    return order


def is_ready(node: NodeLike, nodes: Nodes, now: dt.datetime) -> bool:
    """Tell whether an open node may start now (graph pause is the caller's business)."""
    if node.status is not Status.OPEN:
        return False
    if node.not_before is not None and node.not_before > now:
        return False
    for dep in node.deps:
        other = nodes.get(dep)
        if other is None or other.status not in SATISFIED:
            return False
    for ref in node.after:
        other = nodes.get(ref)
        if other is None or other.status not in TERMINAL:
            return False
    return True


def ready(nodes: Nodes, now: dt.datetime, *, paused: bool = False) -> list[str]:
    """Return the ready ids in claim order: higher priority, then kind, then age, then id.

    Args:
      nodes: the graph.
      now: the current time (backoffs end at `not_before`).
      paused: a paused graph has nothing ready.
    """
    if paused:
        return []
    found = [n for n in nodes.values() if n.status is Status.OPEN and is_ready(n, nodes, now)]
    found.sort(key=claim_key)
    return [n.id for n in found]


# Plans first (they create work), then checkpoints (cheap, they only ask), then work, then checks.
KIND_ORDER = {Kind.PLAN: 0, Kind.CHECKPOINT: 1, Kind.TASK: 2, Kind.COMMAND: 3, Kind.VERIFY: 4}


def claim_key(node: NodeLike) -> tuple[int, int, dt.datetime, str]:
    """Sort key for claiming: priority (high first), kind order, creation time, id."""
    return (-node.priority, KIND_ORDER[node.kind], node.created_at, node.id)


def blocked(nodes: Nodes, stopped: Iterable[str] | None = None) -> list[str]:
    """Return ids of open nodes that cannot become ready: a dep failed or was cancelled.

    Blocking spreads: an open node whose dep is blocked is blocked too.

    Args:
      nodes: the graph.
      stopped: the failed and cancelled ids, when the caller has them (saves a pass).
    """
    open_ = Status.OPEN  # a local: an enum member lookup per node costs more than the test
    waiting_on: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.status is open_:
            for dep in node.deps:
                waiting_on.setdefault(dep, []).append(node.id)
    if stopped is None:
        ends = (Status.FAILED, Status.CANCELLED)
        stopped = [n.id for n in nodes.values() if n.status in ends]
    stack = list(stopped)
    found: set[str] = set()
    while stack:
        for child in waiting_on.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return sorted(found)


def open_sets(
    nodes: Nodes, now: dt.datetime, *, paused: bool = False, blocked_ids: Iterable[str] = ()
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Return the ready ids (claim order) and the waiting open nodes with what each waits for.

    One pass for both, because `gitdag status` needs both on graphs of 100k nodes. A waiting
    node is open, not ready and not blocked; a reason is `dep ID: STATUS`, `after ID: STATUS`
    (`blocked` for an open node that is blocked), `missing ID`, `not before ISO-TIME` or
    `graph paused`, in that order, every one that holds.

    Args:
      nodes: the graph.
      now: the current time (a `not_before` in the past is no longer a reason).
      paused: the graph is paused: nothing is ready, every open node waits for `gitdag resume`.
      blocked_ids: the nodes `blocked()` returned; they are listed there, not here.
    """
    skip = set(blocked_ids)
    ready_nodes: list[NodeLike] = []
    found: dict[str, tuple[str, ...]] = {}
    open_, done = Status.OPEN, Status.DONE  # locals: enum member lookups are slow in a hot loop
    for node in nodes.values():
        if node.status is not open_ or node.id in skip:
            continue
        reasons: list[str] = []
        for dep in node.deps:
            other = nodes.get(dep)
            if other is None:
                reasons.append(f"missing {dep}")
            elif other.status is not done and other.status not in SATISFIED:
                reasons.append(f"dep {dep}: {_shown_status(other, skip)}")
        for ref in node.after:
            other = nodes.get(ref)
            if other is None:
                reasons.append(f"missing {ref}")
            elif other.status not in TERMINAL:
                reasons.append(f"after {ref}: {_shown_status(other, skip)}")
        if node.not_before is not None and node.not_before > now:
            reasons.append(f"not before {node.not_before.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        if paused:
            reasons.append("graph paused")
        if reasons:
            found[node.id] = tuple(reasons)
        else:
            ready_nodes.append(node)
    ready_nodes.sort(key=claim_key)
    return [n.id for n in ready_nodes], dict(sorted(found.items()))


def _shown_status(node: NodeLike, blocked_ids: set[str]) -> str:
    return "blocked" if node.id in blocked_ids else node.status.value


def children_index(nodes: Nodes) -> dict[str, list[str]]:
    """Return parent id -> ids of the nodes it created."""
    index: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parent is not None:
            index.setdefault(node.parent, []).append(node.id)
    return index


def descendants(nodes: Nodes, root: str) -> set[str]:
    """Return every node created (directly or transitively) by `root`, not `root` itself."""
    index = children_index(nodes)
    seen: set[str] = set()
    stack = list(index.get(root, ()))
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        stack.extend(index.get(nid, ()))
    return seen


def scope(nodes: Nodes, node_id: str) -> set[str]:
    """Return the ids whose status a node's result may set (spec §4).

    A plan node's scope is its descendants; any other node's scope is itself.
    """
    node = nodes[node_id]
    if node.kind is Kind.PLAN:
        return descendants(nodes, node_id)
    return {node_id}


def dependents(nodes: Nodes, node_id: str) -> list[str]:
    """Return the ids that list `node_id` in their deps or after."""
    return sorted(n.id for n in nodes.values() if node_id in n.deps or node_id in n.after)


def nearest_plan(nodes: Nodes, node_id: str) -> str | None:
    """Return the closest plan ancestor (following `parent`) of a node, or None."""
    seen: set[str] = set()
    current = nodes[node_id].parent
    while current is not None and current not in seen and current in nodes:
        seen.add(current)
        if nodes[current].kind is Kind.PLAN:
            return current
        current = nodes[current].parent
    return None


def counts(nodes: Iterable[NodeLike]) -> dict[str, int]:
    """Return the number of nodes in each stored status (every status present, zero or not)."""
    result = {status.value: 0 for status in Status}
    for node in nodes:
        result[node.status.value] += 1
    return result


def order_subset(nodes: Nodes, ids: Sequence[str]) -> list[str]:
    """Return `ids` in claim order."""
    return sorted(ids, key=lambda nid: claim_key(nodes[nid]))
