"""`README.md` on the state branch: the goal and progress, readable on any forge (spec §3).

Its cost must not grow with the number of nodes, so it is never computed from the whole graph on
a transition: the README carries its own counts and the ids that are running, waiting for a human
or failed (in a trailing HTML comment), and each transition updates them from the statuses it
changes. The data also names the commit it was computed on; a README that does not match (a
commit written without one, a hand edit) is rebuilt once from the whole graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitdag.core.graph import NodeLike
from gitdag.core.ids import node_path
from gitdag.core.loaders import load_json
from gitdag.core.model import Node, Status

DATA_OPEN = "<!-- gitdag-readme "
DATA_CLOSE = " -->"
LISTED = {Status.RUNNING: "running", Status.NEEDS_HUMAN: "needs_human", Status.FAILED: "failed"}
SHOWN = 50  # ids listed (and carried) per section; the counts say how many there are in all


@dataclass(frozen=True)
class ReadmeData:
    """What the README shows, carried from one transition to the next.

    Attributes:
      base: the commit this README was computed on (the parent of the commit that holds it).
      counts: nodes per stored status.
      lists: `running`, `needs_human`, `failed` -> up to SHOWN sorted ids (a bounded sample:
        carrying every id would make each transition's cost grow with those lists).
      held: merging nodes that wait for an environment repair -> the hold's kind (up to SHOWN).
      held_more: more nodes were held than `held` carries (exact again once rebuilt).
      groups: transaction groups not yet landed -> member -> status (up to SHOWN of each).
    """

    base: str | None
    counts: dict[str, int] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    held_more: bool = False
    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the data as one line of JSON."""
        return json.dumps(
            {"base": self.base, "counts": self.counts,
             "lists": {k: list(v) for k, v in self.lists.items()},
             "held": self.held, "held_more": self.held_more, "groups": self.groups},
            separators=(",", ":"), sort_keys=True,
        )  # fmt: skip


def parse(text: str) -> ReadmeData | None:
    """Return the data a README carries, or None when it has none (or it is damaged)."""
    start = text.rfind(DATA_OPEN)
    if start < 0:
        return None
    end = text.find(DATA_CLOSE, start + len(DATA_OPEN))
    if end < 0:
        return None
    try:
        raw: Any = load_json(text[start + len(DATA_OPEN) : end], max_bytes=1 << 30)
        counts = {str(k): int(v) for k, v in raw["counts"].items()}
        lists = {str(k): tuple(str(i) for i in v) for k, v in raw["lists"].items()}
        base = raw["base"]
        held = {str(k): str(v) for k, v in raw.get("held", {}).items()}
        held_more = bool(raw.get("held_more", False))
        groups = {
            str(g): {str(k): str(v) for k, v in members.items()}
            for g, members in raw.get("groups", {}).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if base is not None and not isinstance(base, str):
        return None
    if set(counts) != {s.value for s in Status}:
        return None
    return ReadmeData(base, counts, lists, held, held_more, groups)


def from_nodes(
    nodes: Iterable[NodeLike], base: str | None, held: Mapping[str, str] | None = None
) -> ReadmeData:
    """Return the data of a whole graph (the fallback; O(nodes)).

    Args:
      nodes: every node (summaries suffice).
      base: the commit the data is computed on.
      held: every held merging node -> its hold's kind (summaries do not carry holds).
    """
    nodes = list(nodes)  # read twice: counts and lists, then groups
    counts = {s.value: 0 for s in Status}
    lists: dict[str, list[str]] = {name: [] for name in LISTED.values()}
    for node in nodes:
        counts[node.status.value] += 1
        name = LISTED.get(node.status)
        if name is not None:
            lists[name].append(node.id)
    kept = dict(sorted((held or {}).items())[:SHOWN])
    data = ReadmeData(
        base,
        counts,
        {k: tuple(sorted(v)[:SHOWN]) for k, v in lists.items()},
        kept,
        len(held or {}) > len(kept),
    )
    return update_groups(data, nodes, ())


def update_groups(data: ReadmeData, put: Iterable[NodeLike], remove: Iterable[str]) -> ReadmeData:
    """Return the data with the group members a transition puts (a landed group is dropped).

    Only the nodes a transition puts can change a group, so the cost is that of the transition.
    """
    groups = {g: dict(m) for g, m in data.groups.items()}
    gone = set(remove)
    for node in put:
        gone.add(node.id)  # it may have left its group; put back below if it is in one
    for members in groups.values():
        for nid in gone:
            members.pop(nid, None)
    for node in put:
        group = getattr(node, "group", None)
        if not isinstance(group, str):
            continue
        members = groups.setdefault(group, {})
        if node.id in members or len(members) < SHOWN:
            members[node.id] = node.status.value
    kept = {
        g: m
        for g, m in sorted(groups.items())
        if m and any(status != Status.DONE.value for status in m.values())
    }
    kept = dict(list(kept.items())[:SHOWN])
    return data if kept == data.groups else replace(data, groups=kept)


def update_held(data: ReadmeData, put: Iterable[Node], remove: Iterable[str]) -> ReadmeData:
    """Return the data with the holds of a transition's nodes (bounded like the other lists).

    Only the nodes a transition puts can gain or lose a hold, so the cost is that of the
    transition. Beyond SHOWN held nodes the rest are not carried: `held_more` says so.
    """
    held, more = dict(data.held), data.held_more
    for node in put:
        if node.status is Status.MERGING and node.hold is not None:
            if node.id in held or len(held) < SHOWN:
                held[node.id] = node.hold.kind.value
            else:
                more = True
        else:
            held.pop(node.id, None)
    for nid in remove:
        held.pop(nid, None)
    if held == data.held and more == data.held_more:
        return data
    return replace(data, held=held, held_more=more)


def update(
    data: ReadmeData,
    moves: Iterable[tuple[str, Status | None, Status | None]],
    base: str | None,
) -> ReadmeData:
    """Return the data after a transition, from its (id, old status, new status) moves.

    Args:
      data: the data before (computed on the parent).
      moves: every node the transition put or removed: None for absent before or after.
      base: the commit the transition builds on.
    """
    counts = dict(data.counts)
    lists = {name: set(data.lists.get(name, ())) for name in LISTED.values()}
    for nid, old, new in moves:
        if old == new:
            continue
        if old is not None:
            counts[old.value] -= 1
            if old in LISTED:
                lists[LISTED[old]].discard(nid)
        if new is not None:
            counts[new.value] += 1
            if new in LISTED:
                lists[LISTED[new]].add(nid)
    return replace(data, base=base, counts=counts,
                   lists={k: tuple(sorted(v)[:SHOWN]) for k, v in lists.items()})  # fmt: skip


def _escape(text: str) -> str:
    # Keep Markdown from turning a goal into headings, tables or HTML.
    for char in "\\`*_{}[]<>#|":
        text = text.replace(char, "\\" + char)
    return text


def render(data: ReadmeData, *, goal: str, target: str, paused: bool, links: bool = True) -> str:
    """Return the README text.

    Args:
      data: counts and lists.
      goal: the graph's goal.
      target: the target branch.
      paused: whether the graph is paused.
      links: link ids to their node files.
    """
    lines = ["# gitdag: the work graph", ""]
    goal_lines = goal.strip().splitlines()
    if goal_lines:
        lines += ["**Goal:** " + _escape(goal_lines[0]), ""]
        if len(goal_lines) > 1:
            lines += ["> " + _escape(line) if line.strip() else ">" for line in goal_lines[1:]]
            lines.append("")
    total = sum(data.counts.values())
    done = data.counts.get("done", 0)
    state = "paused" if paused else "active"
    lines += [
        f"Target branch: `{target}` · graph {state} · {done} of {total} nodes done", "",
        "| status | nodes |", "|---|---:|",
    ]  # fmt: skip
    lines += [f"| {s.value} | {data.counts.get(s.value, 0)} |" for s in Status]
    lines.append(f"| **total** | **{total}** |")
    for status, title in ((Status.RUNNING, "Running"), (Status.NEEDS_HUMAN, "Waiting for a human"),
                          (Status.FAILED, "Failed")):  # fmt: skip
        ids = data.lists.get(LISTED[status], ())
        count = max(data.counts.get(status.value, 0), len(ids))
        if not count:
            continue
        lines += ["", f"## {title} ({count})", ""]
        for nid in ids[:SHOWN]:
            lines.append(f"- [{nid}]({node_path(nid)})" if links else f"- {nid}")
        if count > len(ids[:SHOWN]):
            lines.append(f"- … and {count - len(ids[:SHOWN])} more (`gitdag status`)")
    if data.groups:
        lines += ["", f"## Transaction groups ({len(data.groups)})", ""]
        for group, members in sorted(data.groups.items()):
            shown = ", ".join(
                (f"[{nid}]({node_path(nid)})" if links else nid) + f" {status}"
                for nid, status in sorted(members.items())
            )
            lines.append(f"- {_escape(group)}: {shown} (lands all together, or not at all)")
    if data.held:
        more = " or more" if data.held_more else ""
        lines += ["", f"## Held for a repair ({len(data.held)}{more})", ""]
        for nid, kind in sorted(data.held.items()):
            name = f"[{nid}]({node_path(nid)})" if links else nid
            lines.append(f"- {name}: {kind} (`gitdag status` says what to repair)")
        if data.held_more:
            lines.append("- … and more (`gitdag status`)")
    lines += [
        "",
        "<sub>Written by gitdag with every transition. Each node is a file under `nodes/`; "
        "`git log` is the history of the work; `gitdag status` and "
        "`gitdag graph --format mermaid` show more.</sub>",
        "",
        DATA_OPEN + data.to_json() + DATA_CLOSE,
    ]
    return "\n".join(lines) + "\n"


def moves_of(
    before: Mapping[str, NodeLike], put: Iterable[NodeLike], remove: Iterable[str]
) -> list[tuple[str, Status | None, Status | None]]:
    """Return the (id, old status, new status) moves of a transition on the graph `before`."""
    moves: list[tuple[str, Status | None, Status | None]] = []
    for node in put:
        old = before.get(node.id)
        moves.append((node.id, old.status if old is not None else None, node.status))
    for nid in remove:
        old = before.get(nid)
        if old is not None:
            moves.append((nid, old.status, None))
    return moves
