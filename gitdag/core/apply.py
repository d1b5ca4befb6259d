"""`gitdag apply`: the one commit that makes the graph hold what a workflow file describes.

Pure: the compiled file and the graph's full nodes in, a Transition (or Rejected, or None when
nothing changes) out. Idempotent: only the fields a flow file sets are compared, so applying the
same file twice changes nothing. A changed file gives the minimal change: steps added, steps whose
fields changed (run state kept), and steps gone from the file removed when they never started
(otherwise left, and said).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitdag.core import flow, graph
from gitdag.core.edits import new_node
from gitdag.core.flowfile import Compiled
from gitdag.core.model import GraphFile, Node, Status
from gitdag.core.transitions import Rejected, Transition

SPEC_FIELDS = (
    "title", "description", "kind", "role", "runner", "run", "deps", "after", "exports", "when",
    "on_failure", "on_success", "timeout_s", "retry", "continue_on", "skipped_deps", "worktree",
    "ownership", "labels", "acceptance", "verify", "priority", "flow",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What an apply does: the transition (None: nothing to change) and notes for the user."""

    transition: Transition | None
    notes: tuple[str, ...] = ()


def plan(
    compiled: Compiled,
    existing: Mapping[str, Node],
    now: dt.datetime,
    graph_file: GraphFile | None = None,
) -> Plan | Rejected:
    """Return the apply's transition on a graph (`existing`: every node, full).

    With `graph_file`, the flow's `schedule:` is recorded in `graph.yaml` (`schedules`).
    """
    desired: dict[str, Node] = {}
    for nid, fields in compiled.nodes.items():
        built = new_node(fields, now)
        if isinstance(built, Rejected):
            return Rejected(built.reason, field=f"{nid}.{built.field}" if built.field else nid)
        desired[nid] = built
    put: list[Node] = []
    notes: list[str] = []
    for nid, want in desired.items():
        have = existing.get(nid)
        if have is None:
            put.append(want)
        elif have.flow != compiled.name:
            return Rejected(
                f"node {nid!r} exists and was not made by flow {compiled.name!r}", field=nid
            )
        else:
            spec = {name: getattr(want, name) for name in SPEC_FIELDS}
            if any(getattr(have, name) != value for name, value in spec.items()):
                put.append(have.model_copy(update={**spec, "updated_at": now}))
                if have.status is not Status.OPEN:
                    notes.append(f"{nid} changed but is {have.status.value}: "
                                 f"`gitdag retry --force {nid}` runs it again")  # fmt: skip
    gone = [n for n in existing.values() if n.flow == compiled.name and n.id not in desired]
    remove = [n.id for n in gone if n.status is Status.OPEN and n.attempts == 0]
    notes += [f"{n.id} is no longer in the file but is {n.status.value}: left as is"
              for n in gone if n.id not in remove]  # fmt: skip
    after: dict[str, Any] = {k: v for k, v in existing.items() if k not in remove}
    after.update({n.id: n for n in put})
    for node in after.values():
        for name, refs in (("deps", node.deps), ("after", node.after)):
            missing = [r for r in refs if r not in after]
            if missing:
                why = " (removed from the flow)" if missing[0] in remove else ""
                return Rejected(f"{node.id}.{name}: unknown node {missing[0]!r}{why}")
    cycle = graph.find_cycle(after, roots=[n.id for n in put]) if put else None
    if cycle is not None:
        return Rejected("cycle: " + " -> ".join(cycle), field="depends")
    for node in put:
        problem = flow.check_node(node, after.get)
        if problem is not None:
            return problem
    new_graph = _scheduled(graph_file, compiled)
    if not put and not remove and new_graph is None:
        return Plan(None, tuple(notes))
    added = [n.id for n in put if n.id not in existing]
    changed = [n.id for n in put if n.id in existing]
    parts = [f"{label} {', '.join(ids)}" for label, ids in
             (("added", added), ("changed", changed), ("removed", remove)) if ids]  # fmt: skip
    if new_graph is not None:
        parts.append("schedule " + (", ".join(compiled.schedule) or "removed"))
    transition = Transition(
        verb="edit",
        subject=compiled.name,
        summary=f"apply flow {compiled.name}: " + "; ".join(parts),
        put=tuple(put),
        remove=tuple(remove),
        graph=new_graph,
        nodes=tuple([n.id for n in put] + remove),
    )
    return Plan(transition, tuple(notes))


def _scheduled(graph_file: GraphFile | None, compiled: Compiled) -> GraphFile | None:
    """Return graph.yaml with the flow's schedule recorded, or None when it is already."""
    if graph_file is None:
        return None
    table = dict(graph_file.schedules or {})
    crons = tuple(" ".join(c.split()) for c in compiled.schedule)
    if table.get(compiled.name, ()) == crons:
        return None
    if crons:
        table[compiled.name] = crons
    else:
        table.pop(compiled.name, None)
    return graph_file.model_copy(update={"schedules": dict(sorted(table.items())) or None})
