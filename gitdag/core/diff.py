"""The semantic diff of two graphs: node by node and field by field, never line by line.

A field change names its path in the node file (`status`, `claim.attempt`, `outputs.summary`), with
the old and the new value as JSON-ready data. Nested records are flattened to dotted paths so that a
reviewer sees `claim.attempt: null -> 2` rather than two YAML blocks; lists are compared whole.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel

from gitdag.core.model import GraphFile, Node

_MISSING: Any = None  # a field absent on one side reads as null


@dataclass(frozen=True)
class FieldChange:
    """One field whose value differs: its dotted path, and the old and new JSON-ready values."""

    path: str
    old: Any
    new: Any

    def as_data(self) -> dict[str, Any]:
        """Return the change as plain data."""
        return {"field": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class NodeChange:
    """What happened to one node: `added`, `removed` or `changed`.

    Attributes:
      id: the node.
      change: `added`, `removed` or `changed`.
      old_status: its status before (None when added).
      new_status: its status after (None when removed).
      fields: the fields that differ (for `added`/`removed`: the node's own fields).
      title: the node's title (after, or before when removed), for readable output.
    """

    id: str
    change: str
    old_status: str | None
    new_status: str | None
    fields: tuple[FieldChange, ...]
    title: str = ""

    @property
    def status_changed(self) -> bool:
        """Tell whether the stored status differs (always true for an add or a removal)."""
        return self.old_status != self.new_status

    def as_data(self) -> dict[str, Any]:
        """Return the change as plain data."""
        return {
            "id": self.id,
            "change": self.change,
            "title": self.title,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "fields": [f.as_data() for f in self.fields],
        }


@dataclass(frozen=True)
class GraphDiff:
    """The difference between two graphs.

    Attributes:
      nodes: one entry per node that differs, sorted by id.
      graph: field changes of `graph.yaml`.
    """

    nodes: tuple[NodeChange, ...] = ()
    graph: tuple[FieldChange, ...] = ()

    @property
    def added(self) -> tuple[NodeChange, ...]:
        """The nodes only the new graph has."""
        return tuple(c for c in self.nodes if c.change == "added")

    @property
    def removed(self) -> tuple[NodeChange, ...]:
        """The nodes only the old graph has."""
        return tuple(c for c in self.nodes if c.change == "removed")

    @property
    def changed(self) -> tuple[NodeChange, ...]:
        """The nodes both graphs have, with different content."""
        return tuple(c for c in self.nodes if c.change == "changed")

    def is_empty(self) -> bool:
        """Tell whether the two graphs are equal."""
        return not self.nodes and not self.graph

    def as_data(self) -> dict[str, Any]:
        """Return the diff as plain data (what `gitdag diff --json` prints)."""
        return {
            "added": [c.as_data() for c in self.added],
            "removed": [c.as_data() for c in self.removed],
            "changed": [c.as_data() for c in self.changed],
            "graph": [f.as_data() for f in self.graph],
        }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return a record or mapping as `dotted.path -> leaf` (lists and scalars are leaves).

    Args:
      value: a pydantic record (dumped as JSON-ready data) or a plain mapping.
      prefix: the path of `value` itself.
    """
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    flat: dict[str, Any] = {}
    _flatten_into(data, prefix, flat)
    return flat


def _flatten_into(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, Mapping) and (data or not prefix):
        for key, item in data.items():
            _flatten_into(item, f"{prefix}.{key}" if prefix else str(key), out)
        return
    out[prefix] = data


def field_changes(old: BaseModel | None, new: BaseModel | None) -> tuple[FieldChange, ...]:
    """Return the leaf fields that differ between two records, in the file's field order.

    A record that is null on one side and set on the other is compared leaf by leaf against null,
    so `claim: null` becoming a claim shows as `claim.worker`, `claim.attempt`, ... changes.
    """
    record = new if new is not None else old
    if record is None:
        return ()
    changes: list[FieldChange] = []
    for name in type(record).model_fields:
        before = getattr(old, name) if old is not None else None
        after = getattr(new, name) if new is not None else None
        if before == after and old is not None and new is not None:
            continue  # only differing fields are converted: most of a node never changes
        old_flat = flatten({name: jsonable(before)}) if old is not None else {}
        new_flat = flatten({name: jsonable(after)}) if new is not None else {}
        _expand_nulls(old_flat, new_flat)
        _expand_nulls(new_flat, old_flat)
        for key in [*new_flat, *(k for k in old_flat if k not in new_flat)]:
            a, b = old_flat.get(key, _MISSING), new_flat.get(key, _MISSING)
            if a != b:
                changes.append(FieldChange(key, a, b))
    return tuple(changes)


def jsonable(value: Any) -> Any:
    """Return a field value as JSON-ready data (what `model_dump(mode="json")` gives)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _expand_nulls(flat: dict[str, Any], other: Mapping[str, Any]) -> None:
    # `claim: null` on this side, `claim.worker` etc. on the other: compare leaves with null.
    # An empty mapping (`outputs: {}`) is likewise a leaf on this side only.
    for key in [k for k, v in flat.items() if v is None or v == {}]:
        nested = [k for k in other if k.startswith(key + ".")]
        if nested:
            del flat[key]
            for sub in nested:
                flat.setdefault(sub, None)


def node_change(old: Node | None, new: Node | None) -> NodeChange | None:
    """Return how one node changed, or None when it did not (or exists on neither side)."""
    if old is None and new is None:
        return None
    if old is not None and new is not None:
        if old == new:
            return None
        return NodeChange(
            old.id, "changed", old.status.value, new.status.value, field_changes(old, new),
            new.title,
        )  # fmt: skip
    if new is not None:
        return NodeChange(
            new.id, "added", None, new.status.value, field_changes(None, new), new.title
        )
    assert old is not None
    return NodeChange(
        old.id, "removed", old.status.value, None, field_changes(old, None), old.title
    )


def diff_graphs(
    old_nodes: Mapping[str, Node],
    new_nodes: Mapping[str, Node],
    old_graph: GraphFile | None,
    new_graph: GraphFile | None,
) -> GraphDiff:
    """Return the semantic diff of two graphs.

    The mappings may hold whole graphs or only the nodes that changed (a node absent from one side
    is added or removed); equal nodes are skipped.

    Args:
      old_nodes: id -> node before.
      new_nodes: id -> node after.
      old_graph: `graph.yaml` before (None: unknown or unchanged).
      new_graph: `graph.yaml` after (None: unknown or unchanged).
    """
    changes = []
    for nid in sorted(set(old_nodes) | set(new_nodes)):
        change = node_change(old_nodes.get(nid), new_nodes.get(nid))
        if change is not None:
            changes.append(change)
    graph: tuple[FieldChange, ...] = ()
    if (old_graph is not None or new_graph is not None) and old_graph != new_graph:
        graph = field_changes(old_graph, new_graph)
    return GraphDiff(tuple(changes), graph)


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = " ".join(value.split())
        if not text:
            return json.dumps(value)  # "" (or only blanks) must stay visible
        return text if len(text) <= 72 else text[:71] + "…"
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_default(value: Any) -> bool:
    return value is None or value is False or value in ([], {}, "", 0)


_SKIP_ON_ADD = frozenset({"schema_version", "id", "created_at", "updated_at"})


def render_text(diff: GraphDiff, *, limit: int = 200) -> str:
    """Return the diff for people: one block per node, `field: old -> new` lines.

    Args:
      diff: the diff.
      limit: show at most this many nodes (a count of the rest follows).
    """
    if diff.is_empty():
        return "no changes to the graph\n"
    lines: list[str] = []
    if diff.graph:
        lines.append("~ graph.yaml")
        lines.extend(f"    {f.path}: {_show(f.old)} -> {_show(f.new)}" for f in diff.graph)
    for change in diff.nodes[:limit]:
        if change.change == "added":
            lines.append(f"+ {change.id} ({change.new_status}): {_show(change.title)}")
            lines.extend(
                f"    {f.path}: {_show(f.new)}"
                for f in change.fields
                if f.path not in _SKIP_ON_ADD
                and not _is_default(f.new)
                and f.path not in ("title", "status")
            )
        elif change.change == "removed":
            lines.append(f"- {change.id} ({change.old_status}): {_show(change.title)}")
        else:
            status = f" {change.old_status} -> {change.new_status}" if change.status_changed else ""
            lines.append(f"~ {change.id}{status}")
            lines.extend(
                f"    {f.path}: {_show(f.old)} -> {_show(f.new)}"
                for f in change.fields
                if f.path != "status"
            )
    if len(diff.nodes) > limit:
        lines.append(f"… and {len(diff.nodes) - limit} more nodes (use --json for all)")
    n_add, n_rem, n_chg = len(diff.added), len(diff.removed), len(diff.changed)
    lines.append(f"{n_add} added, {n_rem} removed, {n_chg} changed")
    return "\n".join(lines) + "\n"
