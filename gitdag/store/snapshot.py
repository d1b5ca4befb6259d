"""A snapshot of the graph at one commit of the state branch: plain data, never written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitdag.core.model import GraphFile, NodeSummary


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a state tree: the path (or `path: field`) and what is wrong."""

    path: str
    message: str
    node: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Snapshot:
    """The graph at one commit.

    Attributes:
      head: the commit (hex), or None for an empty branch.
      tree: its root tree (hex).
      graph: the parsed `graph.yaml`.
      nodes: id -> summary (what scheduling and status need).
      blobs: id -> blob sha (hex) of the node's file; full nodes are loaded through the store.
      graph_blob: blob sha of `graph.yaml`.
      problems: what is wrong with the tree (empty for a valid one).
    """

    head: str | None
    tree: str | None
    graph: GraphFile
    nodes: Mapping[str, NodeSummary]
    blobs: Mapping[str, str]
    graph_blob: str | None = None
    problems: tuple[Problem, ...] = field(default=())
