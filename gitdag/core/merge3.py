"""The semantic three-way merge of node files: field by field, never with conflict markers.

A proposal branched from the state at some commit (the merge base); since then the state branch
moved on (claims, results) and the proposal edited or added nodes. For each node the proposal
touched, every field is merged on its own: a field only one side changed takes that side's value,
equal changes agree, and a field both sides changed differently is a conflict naming the node and
the field. Nested mappings (`outputs`, `claim`, `retry`, ...) are merged key by key the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gitdag.core.codec import validation_message
from gitdag.core.model import GraphFile, Node

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Conflict:
    """A field both sides changed differently (node None: `graph.yaml`)."""

    node: str | None
    field: str
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        where = f"node {self.node}" if self.node else "graph.yaml"
        return (
            f"{where}: field {self.field}: changed on both sides "
            f"(state: {_show(self.ours)}, proposal: {_show(self.theirs)})"
        )


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else repr(" ".join(value.split()))
    return text if len(text) <= 60 else text[:59] + "…"


@dataclass
class Merged:
    """The outcome of merging a proposal into the current graph.

    Attributes:
      put: nodes to write (added by the proposal, or merged edits that differ from the state).
      remove: ids the proposal removed and the state did not change.
      graph: the merged `graph.yaml`, when it differs from the state's.
      conflicts: fields both sides changed differently; nothing may be written when not empty.
    """

    put: list[Node] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    graph: GraphFile | None = None
    conflicts: list[Conflict] = field(default_factory=list)


_ABSENT = object()


# Bookkeeping that both sides always touch: the later value wins, never a conflict.
_LATEST = frozenset({".updated_at"})


def _later(a: Any, b: Any) -> Any:
    try:
        return max(a, b, key=lambda v: dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return a


def _merge_value(
    path: str, base: Any, ours: Any, theirs: Any, out: list[tuple[str, Any, Any]]
) -> Any:
    if theirs == base:
        return ours
    if ours in (base, theirs):
        return theirs
    if path in _LATEST:
        return _later(ours, theirs)
    if isinstance(base, dict) and isinstance(ours, dict) and isinstance(theirs, dict):
        merged: dict[str, Any] = {}
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            value = _merge_value(
                f"{path}.{key}", base.get(key, _ABSENT), ours.get(key, _ABSENT),
                theirs.get(key, _ABSENT), out,
            )  # fmt: skip
            if value is not _ABSENT:
                merged[key] = value
        return merged
    out.append((path, ours, theirs))
    return ours


def merge_record(
    model: type[R], name: str | None, base: R | None, ours: R | None, theirs: R | None
) -> tuple[R | None, list[Conflict]]:
    """Merge three versions of one record (None: it does not exist on that side).

    Returns:
      The merged record (None: removed) and the conflicts (the record is then ours).
    """
    if theirs == base:
        return ours, []
    if ours in (base, theirs):
        return theirs, []
    if ours is None or theirs is None:
        side = "the state removed it" if ours is None else "the proposal removed it"
        return ours, [Conflict(name, "(whole node)" if name else "(whole file)", side, "changed")]
    raw: list[tuple[str, Any, Any]] = []
    data = _merge_value(
        "", base.model_dump(mode="json") if base is not None else {},
        ours.model_dump(mode="json"), theirs.model_dump(mode="json"), raw,
    )  # fmt: skip
    if raw:
        return ours, [Conflict(name, path.lstrip("."), o, t) for path, o, t in raw]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return ours, [Conflict(name, "(merged)", "valid", validation_message(exc))]


def merge_graphs(
    ids: Iterable[str],
    base: Mapping[str, Node],
    ours: Mapping[str, Node],
    theirs: Mapping[str, Node],
    *,
    graph_base: GraphFile | None = None,
    graph_ours: GraphFile | None = None,
    graph_theirs: GraphFile | None = None,
) -> Merged:
    """Merge the proposal's changes (`base -> theirs`) into the state (`ours`).

    Args:
      ids: the nodes the proposal changed (only these are looked at).
      base: those nodes at the merge base (absent: they did not exist).
      ours: those nodes in the state now (absent: they do not exist).
      theirs: those nodes in the proposal (absent: it removed them).
      graph_base: `graph.yaml` at the merge base, when the proposal changed it.
      graph_ours: `graph.yaml` in the state now.
      graph_theirs: `graph.yaml` in the proposal, when it changed it.
    """
    result = Merged()
    for nid in sorted(set(ids)):
        now = ours.get(nid)
        merged, conflicts = merge_record(Node, nid, base.get(nid), now, theirs.get(nid))
        result.conflicts += conflicts
        if conflicts or merged == now:
            continue
        if merged is None:
            result.remove.append(nid)
        else:
            result.put.append(merged)
    if graph_theirs is not None and graph_ours is not None:
        merged_graph, conflicts = merge_record(
            GraphFile, None, graph_base, graph_ours, graph_theirs
        )
        result.conflicts += conflicts
        if not conflicts and merged_graph is not None and merged_graph != graph_ours:
            result.graph = merged_graph
    return result
