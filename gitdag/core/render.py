"""Rendering the graph as text for people and tools: mermaid, dot, json-ready data."""

from __future__ import annotations

# `duration` is all the read-only commands' quick start uses (gitdag/readonly.py): the rest of
# the imports wait for the renderings that need them, and the tables are keyed by the statuses'
# values (a `Status` is a str and finds them).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from gitdag.core.graph import NodeLike

_MERMAID_CLASS = {
    "open": "open",
    "running": "running",
    "merging": "merging",
    "done": "done",
    "failed": "failed",
    "needs_human": "human",
    "cancelled": "cancelled",
    "skipped": "skipped",
}


def duration(seconds: float) -> str:
    """Return a short human duration: `0.4s`, `42s`, `3m05s`, `2h07m`, `3d04h`."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _mid(node_id: str) -> str:
    # Mermaid ids must stay plain words; ids may hold '.', '-' and '_', so escape them injectively
    # ('a-b' and 'a_b' must not become the same node) and prefix so no id is a keyword (`end`).
    out = ["n_"]
    for char in node_id:
        out.append({"_": "__", "-": "_h", ".": "_d"}.get(char, char))
    return "".join(out)


# Inside a quoted mermaid label `"` ends the label and `#...;` is an entity; `<`/`>` would be
# taken as HTML (GitHub strips it). Mermaid's own entity codes keep all of them as text.
_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _label(text: str) -> str:
    flat = " ".join(text.split())[:80]
    return "".join(_ENTITIES.get(char, char) for char in flat)


def _group(node: NodeLike) -> str | None:
    # Summaries and full nodes carry `group`; other NodeLikes (none in gitdag) have none.
    group = getattr(node, "group", None)
    return group if isinstance(group, str) else None


def groups_of(nodes: Mapping[str, NodeLike]) -> dict[str, list[str]]:
    """Return each transaction group's members (sorted ids), for the graph renderings."""
    found: dict[str, list[str]] = {}
    for nid in sorted(nodes):
        group = _group(nodes[nid])
        if group is not None:
            found.setdefault(group, []).append(nid)
    return found


def mermaid(nodes: Mapping[str, NodeLike], titles: Mapping[str, str] | None = None) -> str:
    """Return a mermaid flowchart (GitHub renders it inside a ```mermaid block)."""
    lines = ["flowchart TD"]
    for nid in sorted(nodes):
        node = nodes[nid]
        title = (titles or {}).get(nid, "")
        label = f"{nid}<br/>{_label(title)}" if title else nid  # ids need no escaping
        css = _MERMAID_CLASS[node.status]
        lines.append(f'  {_mid(nid)}["{label} ({node.status.value})"]:::{css}')
    for nid in sorted(nodes):
        node = nodes[nid]
        lines.extend(f"  {_mid(dep)} --> {_mid(nid)}" for dep in node.deps if dep in nodes)
        lines.extend(f"  {_mid(ref)} -.-> {_mid(nid)}" for ref in node.after if ref in nodes)
    for index, (name, ids) in enumerate(sorted(groups_of(nodes).items())):
        lines.append(f'  subgraph group_{index}["group {_label(name)}"]')
        lines.extend(f"    {_mid(nid)}" for nid in ids)
        lines.append("  end")
    lines += [
        "  classDef open fill:#eee,stroke:#999",
        "  classDef running fill:#cde,stroke:#369",
        "  classDef merging fill:#dcf,stroke:#639",
        "  classDef done fill:#cfc,stroke:#393",
        "  classDef failed fill:#fcc,stroke:#c33",
        "  classDef human fill:#ffc,stroke:#cc3",
        "  classDef cancelled fill:#ddd,stroke:#666",
        "  classDef skipped fill:#f5f5f5,stroke:#bbb,stroke-dasharray:3 3",
    ]
    return "\n".join(lines) + "\n"


def dot(nodes: Mapping[str, NodeLike], titles: Mapping[str, str] | None = None) -> str:
    """Return a Graphviz digraph."""
    import json

    colours = {
        "open": "white", "running": "lightblue", "merging": "plum", "done": "palegreen",
        "failed": "salmon", "needs_human": "khaki", "cancelled": "lightgrey",
        "skipped": "whitesmoke",
    }  # fmt: skip
    lines = ["digraph gitdag {", "  rankdir=LR;", "  node [shape=box, style=filled];"]
    for nid in sorted(nodes):
        node = nodes[nid]
        title = (titles or {}).get(nid, "")
        label = json.dumps(f"{nid}\n{title}" if title else nid)
        lines.append(f"  {json.dumps(nid)} [label={label}, fillcolor={colours[node.status]}];")
    for nid in sorted(nodes):
        node = nodes[nid]
        lines.extend(f"  {json.dumps(d)} -> {json.dumps(nid)};" for d in node.deps if d in nodes)
        lines.extend(
            f"  {json.dumps(a)} -> {json.dumps(nid)} [style=dashed];"
            for a in node.after
            if a in nodes
        )
    for index, (name, ids) in enumerate(sorted(groups_of(nodes).items())):
        lines.append(f"  subgraph cluster_group_{index} {{")
        lines.append(f"    label={json.dumps('group ' + name)}; style=dashed;")
        lines.extend(f"    {json.dumps(nid)};" for nid in ids)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def as_data(nodes: Mapping[str, NodeLike]) -> dict[str, Any]:
    """Return the graph as plain data: nodes with status and edges."""
    return {
        "nodes": [
            {"id": nid, "kind": nodes[nid].kind.value, "status": nodes[nid].status.value}
            | ({"group": group} if (group := _group(nodes[nid])) else {})
            for nid in sorted(nodes)
        ],
        "edges": [
            {"from": dep, "to": nid, "type": "deps"}
            for nid in sorted(nodes)
            for dep in nodes[nid].deps
        ]
        + [
            {"from": ref, "to": nid, "type": "after"}
            for nid in sorted(nodes)
            for ref in nodes[nid].after
        ],
    }
