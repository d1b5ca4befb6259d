"""Human edits of the graph, decided purely: init and add. Each returns a Transition or Rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from gitdag.core import codec, flow, graph
from gitdag.core.codec import validation_message
from gitdag.core.ids import id_problem
from gitdag.core.model import GraphFile, Kind, Node, NodeSummary, Status
from gitdag.core.transitions import Rejected, Transition

ROOT_PLAN_ID = "plan-000"


def init_transition(
    goal: str, target: str, now: dt.datetime, defaults: Mapping[str, Any] | None = None
) -> Transition | Rejected:
    """Return the first transition: `graph.yaml`, plus the root plan node when a goal is given.

    Args:
      goal: the goal; non-empty creates the root plan node `plan-000`.
      target: the branch the merge queue integrates into.
      now: the current time.
      defaults: graph-wide defaults (`retry`, `lease_s`, `escalation_depth`), if not the built-in.
    """
    try:
        extra = {"defaults": dict(defaults)} if defaults else {}
        graph_file = GraphFile.model_validate(
            {"goal": goal, "target": target, "created_at": now, **extra}
        )
    except ValidationError as exc:
        return Rejected(validation_message(exc))
    put: tuple[Node, ...] = ()
    if goal.strip():
        root = Node(
            id=ROOT_PLAN_ID,
            title=_first_line(goal),
            description=goal,
            kind=Kind.PLAN,
            created_at=now,
            updated_at=now,
        )
        put = (root,)
    return Transition(
        verb="init",
        subject="graph",
        summary=goal or "empty graph",
        put=put,
        graph=graph_file,
        nodes=tuple(n.id for n in put),
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "plan"
    return line if len(line) <= 120 else line[:119] + "…"


def new_node(fields: Mapping[str, Any], now: dt.datetime) -> Node | Rejected:
    """Build a fresh open node from user- or runner-given fields, naming the bad field if any."""
    nid = fields.get("id")
    problem = id_problem(nid)
    if problem is not None:
        return Rejected(f"invalid id: {problem}", field="id")
    if fields.get("kind") == "command" and not fields.get("run"):
        return Rejected("a command node needs `run`", field="run", nodes=(str(nid),))
    data = {k: v for k, v in fields.items() if v is not None}
    data.update(status=Status.OPEN, attempts=0, created_at=now, updated_at=now)
    try:
        node = Node.model_validate(data)
    except ValidationError as exc:
        return Rejected(validation_message(exc), nodes=(str(nid),))
    size = len(codec.dump(node).encode())
    if size > codec.MAX_FILE_BYTES:
        # Each field is within its own limit, but together they would make a file no reader
        # accepts: refuse before anything is written.
        return Rejected(
            f"the node file would be {size} bytes, over the limit of {codec.MAX_FILE_BYTES}",
            field=str(nid),
            nodes=(str(nid),),
        )
    return node


class Overlay(Mapping[str, "graph.NodeLike"]):
    """A graph with a few nodes added or replaced, read through without copying the graph."""

    def __init__(self, base: Mapping[str, graph.NodeLike], top: Mapping[str, graph.NodeLike]):
        self._base, self._top = base, top

    def __getitem__(self, key: str) -> graph.NodeLike:
        found = self._top.get(key)
        return found if found is not None else self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._top or key in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._top
        yield from (k for k in self._base if k not in self._top)

    def __len__(self) -> int:
        return len(self._base) + sum(1 for k in self._top if k not in self._base)


def check_additions(
    existing: Mapping[str, NodeSummary | Node], added: list[Node]
) -> Rejected | None:
    """Check that new nodes fit the graph: unique ids, known refs, no cycle.

    Args:
      existing: the graph before the change.
      added: the nodes to add (none of them may exist yet).
    """
    if not added:
        return None
    seen: set[str] = set()
    for node in added:
        if node.id in existing or node.id in seen:
            return Rejected(f"node {node.id!r} already exists", field="id", nodes=(node.id,))
        seen.add(node.id)
    # A view, not a copy: a planner adding 5 nodes to a graph of 100k reads only around them.
    merged = Overlay(existing, {n.id: n for n in added})
    for node in added:
        for field, refs in (("deps", node.deps), ("after", node.after)):
            for ref in refs:
                if ref not in merged:
                    return Rejected(f"unknown node {ref!r}", field=f"{node.id}.{field}")
        if node.parent is not None and node.parent not in merged:
            return Rejected(f"unknown node {node.parent!r}", field=f"{node.id}.parent")
    cycle = graph.find_cycle(merged, roots=[n.id for n in added])
    if cycle is not None:
        return Rejected("cycle: " + " -> ".join(cycle), field="deps", nodes=tuple(cycle))
    return None


def add_transition(
    existing: Mapping[str, NodeSummary | Node],
    fields: Mapping[str, Any],
    now: dt.datetime,
    get: flow.Get | None = None,
) -> Transition | Rejected:
    """Return the transition that adds one node, or why it cannot be added.

    `get` reads the graph's full nodes: with it, the node's workflow fields are checked
    (`core/flow.check_node`) and a dep on a `continue_on: failure` node becomes an `after`.
    """
    node = new_node(fields, now)
    if isinstance(node, Rejected):
        return node
    problem = check_additions(existing, [node])
    if problem is not None:
        return problem
    handlers: list[Node] = []
    if get is not None:
        node = flow.normalize(node, get)
        problem = flow.check_node(node, get)
        if problem is not None:
            return problem
        attached = flow.attach_handlers(node, get)
        if isinstance(attached, Rejected):
            return attached
        handlers = attached
        merged: dict[str, graph.NodeLike] = {**existing, node.id: node}
        merged.update({h.id: h for h in handlers})
        cycle = graph.find_cycle(merged, roots=[node.id])
        if cycle is not None:
            return Rejected("cycle: " + " -> ".join(cycle), field="on_failure", nodes=(node.id,))
    return Transition(
        verb="add",
        subject=node.id,
        summary=node.title,
        to_status=node.status.value,
        put=(node, *handlers),
        nodes=(node.id, *(h.id for h in handlers)),
    )
