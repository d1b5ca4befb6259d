"""Whether a commit left the graph whole: no unknown reference and no cycle where it changed.

The graph-shape half of the legality rules (`core/legality.py` judges each node's move); every
commit's result, restoring verbs included, must pass these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gitdag.core import graph as graphs
from gitdag.core.legality import Violation
from gitdag.core.model import Node


def check_graph(
    nodes: Mapping[str, graphs.NodeLike], edges_changed: Iterable[str], removed: Iterable[str]
) -> list[Violation]:
    """Return unknown references and cycles a commit introduced, looking only where it changed.

    Args:
      nodes: the graph after the commit.
      edges_changed: nodes added, or whose deps/after/parent changed.
      removed: nodes removed (every remaining node is checked for references to them).
    """
    problems: list[Violation] = []
    roots = [nid for nid in edges_changed if nid in nodes]
    for nid in roots:
        node = nodes[nid]
        for name, refs in (("deps", node.deps), ("after", node.after)):
            problems.extend(
                Violation(f"unknown node {ref!r}", nid, name) for ref in refs if ref not in nodes
            )
        if node.parent is not None and node.parent not in nodes:
            problems.append(Violation(f"unknown node {node.parent!r}", nid, "parent"))
    gone = {nid for nid in removed if nid not in nodes}
    if gone:
        for node in nodes.values():
            for name, refs in (("deps", node.deps), ("after", node.after)):
                problems.extend(
                    Violation(f"refers to removed node {ref!r}", node.id, name)
                    for ref in refs if ref in gone
                )  # fmt: skip
            if node.parent in gone:
                problems.append(Violation(f"refers to removed node {node.parent!r}", node.id,
                                          "parent"))  # fmt: skip
    if roots:
        cycle = graphs.find_cycle(nodes, roots=roots)
        if cycle is not None:
            problems.append(Violation("cycle " + " -> ".join(cycle), cycle[0], "deps"))
    return problems


def edges_changed(before: Mapping[str, Node], after: Mapping[str, Node]) -> list[str]:
    """Return the ids added, or whose deps, after or parent differ."""
    found = []
    for nid, new in after.items():
        old = before.get(nid)
        if old is None or (old.deps, old.after, old.parent) != (new.deps, new.after, new.parent):
            found.append(nid)
    return found
