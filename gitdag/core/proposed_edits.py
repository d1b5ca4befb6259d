"""Graph edits proposed for review: new nodes, and changes to what existing nodes ask for.

A proposal may add nodes (fresh, `open`) and change the *definition* of existing ones (title,
description, deps, ...). It never touches run state (status, attempts, claim, outputs, ...): that
belongs to the supervisor, and a reviewer approves plans, not outcomes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from gitdag.core import graph
from gitdag.core.codec import validation_message
from gitdag.core.edits import check_additions, new_node
from gitdag.core.model import Node, NodeSummary, summarize
from gitdag.core.transitions import Rejected, Transition

EDITABLE = frozenset({
    "title", "description", "kind", "priority", "deps", "after", "parent", "role", "runner",
    "run", "worktree", "ownership", "labels", "acceptance", "verify", "inputs", "retry",
})  # fmt: skip
ALIASES = {"dependsOn": "deps", "type": "kind"}
MAX_NODES = 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def name_problem(name: str) -> str | None:
    """Return why `name` cannot name a proposal branch, or None."""
    if not _NAME.match(name) or ".." in name or name.endswith((".", ".lock")):
        return f"proposal name {name!r} must match {_NAME.pattern} (no '..', no '.lock' ending)"
    return None


def _fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {ALIASES.get(key, key): value for key, value in entry.items()}


def proposal_transition(
    summaries: Mapping[str, NodeSummary],
    current: Mapping[str, Node],
    entries: Sequence[Any],
    *,
    name: str,
    now: dt.datetime,
    parent: str | None = None,
    summary: str = "",
) -> Transition | Rejected:
    """Return the commit of one proposal step: adds and definition edits, checked as a whole.

    Args:
      summaries: the graph the proposal builds on.
      current: full records of the existing nodes that `entries` name.
      entries: node field mappings; an id that exists is an edit of the fields given.
      name: the proposal's name (the `Gitdag-Proposal` trailer).
      now: the time of the change.
      parent: the default `parent` of added nodes (the plan node proposing them).
      summary: the commit body (defaults to a list of what changes).
    """
    if not entries:
        return Rejected("the proposal changes nothing", field="nodes")
    if len(entries) > MAX_NODES:
        return Rejected(f"{len(entries)} nodes in one step (at most {MAX_NODES})", field="nodes")
    added: list[Node] = []
    edited: list[Node] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"nodes[{index}]"
        if not isinstance(entry, Mapping):
            return Rejected(f"expected a mapping of node fields, got {type(entry).__name__}",
                            field=where)  # fmt: skip
        fields = _fields(entry)
        nid = fields.get("id")
        if isinstance(nid, str) and nid in seen:
            return Rejected(f"node {nid!r} appears twice", field=f"{where}.id")
        if isinstance(nid, str):
            seen.add(nid)
        if isinstance(nid, str) and nid in current:
            node = _edit(current[nid], fields, now, where)
            if isinstance(node, Rejected):
                return node
            edited.append(node)
            continue
        if parent is not None and fields.get("parent") is None:
            fields["parent"] = parent
        built = new_node(fields, now)
        if isinstance(built, Rejected):
            return Rejected(built.reason, field=f"{where}.{built.field}" if built.field else where)
        added.append(built)
    problem = check_additions(summaries, added)
    if problem is not None:
        return problem
    problem = _check_edits(summaries, added, edited)
    if problem is not None:
        return problem
    put = (*added, *edited)
    ids = tuple(n.id for n in put)
    if not summary:
        parts = []
        if added:
            parts.append("adds " + ", ".join(n.id for n in added))
        if edited:
            parts.append("changes " + ", ".join(n.id for n in edited))
        summary = f"proposal {name}: " + "; ".join(parts)
    return Transition(
        verb="edit" if edited else "add",
        subject=ids[0],
        summary=summary,
        to_status=None,
        put=put,
        nodes=ids,
        trailers=(("Gitdag-Proposal", name),),
    )


def _edit(node: Node, fields: Mapping[str, Any], now: dt.datetime, where: str) -> Node | Rejected:
    for key in fields:
        if key != "id" and key not in EDITABLE:
            return Rejected(
                f"{key} is run state or unknown; a proposal changes only "
                + ", ".join(sorted(EDITABLE)),
                field=f"{where}.{key}",
            )
    data = node.model_dump()
    data.update({k: v for k, v in fields.items() if k != "id"})
    data["updated_at"] = now
    try:
        return Node.model_validate(data)
    except ValidationError as exc:
        return Rejected(validation_message(exc), field=where, nodes=(node.id,))


def _check_edits(
    summaries: Mapping[str, NodeSummary], added: list[Node], edited: list[Node]
) -> Rejected | None:
    if not edited:
        return None
    merged: dict[str, graph.NodeLike] = dict(summaries)
    merged.update({n.id: summarize(n) for n in added})
    merged.update({n.id: summarize(n) for n in edited})
    for node in edited:
        for name, refs in (("deps", node.deps), ("after", node.after)):
            for ref in refs:
                if ref not in merged:
                    return Rejected(f"unknown node {ref!r}", field=f"{node.id}.{name}")
        if node.parent is not None and node.parent not in merged:
            return Rejected(f"unknown node {node.parent!r}", field=f"{node.id}.parent")
    cycle = graph.find_cycle(merged, roots=[n.id for n in edited])
    if cycle is not None:
        return Rejected("cycle: " + " -> ".join(cycle), field="deps", nodes=tuple(cycle))
    return None
