"""A snapshot of the graph at one commit of the state branch: plain data, never written."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gitdag.core.graphindex import GraphIndex
from gitdag.core.summary import GraphSummary, NodeSummary

if TYPE_CHECKING:
    from gitdag.core.model import GraphFile

V = TypeVar("V")
# Each new snapshot copies the delta; folding copies the base. Folding every 1024 changes keeps
# both small: at 100k nodes ~3 ms per fold, ~3 us per transition amortised.
FOLD_AT = 1024
_GONE: Any = object()  # marks a key removed in an overlay's delta


class Layered(Mapping[str, V], Generic[V]):
    """An immutable mapping: a shared base dict plus a small delta of changes on top of it.

    Each transition changes a handful of nodes of a graph that may hold 100k; copying the
    whole id -> summary dict per transition would make its cost grow with the graph. A new
    snapshot instead shares its parent's base and copies only the delta, which is folded into
    a fresh base once it grows past a fraction of the base (amortised O(1) per change).
    Neither the base nor the delta is ever mutated after construction.
    """

    __slots__ = ("_base", "_delta", "_len")

    def __init__(self, base: dict[str, V] | None = None) -> None:
        self._base: dict[str, V] = base if base is not None else {}
        self._delta: dict[str, V] = {}
        self._len = len(self._base)

    @classmethod
    def of(cls, mapping: Mapping[str, V]) -> Layered[V]:
        """Return `mapping` as a Layered (itself if it is one already; a dict is copied)."""
        return mapping if isinstance(mapping, Layered) else cls(dict(mapping))

    def changed(self, put: Mapping[str, V], remove: Iterable[str] = ()) -> Layered[V]:
        """Return a new mapping with `put` set and `remove` deleted; self is unchanged."""
        delta = dict(self._delta)
        base = self._base
        size = self._len

        def present(key: str) -> bool:  # in the mapping being built, not in self
            return delta[key] is not _GONE if key in delta else key in base

        for key, value in put.items():
            if not present(key):
                size += 1
            delta[key] = value
        for key in remove:
            if key not in put and present(key):
                size -= 1
                delta[key] = _GONE
        new: Layered[V] = Layered.__new__(Layered)
        if len(delta) > FOLD_AT:
            folded = dict(base)
            for key, value in delta.items():
                if value is _GONE:
                    folded.pop(key, None)
                else:
                    folded[key] = value
            new._base, new._delta = folded, {}
        else:
            new._base, new._delta = self._base, delta
        new._len = size
        return new

    def changes_since(self, other: Mapping[str, V]) -> int | None:
        """Return how many keys changed since `other`, or None when that is not cheap to tell.

        Cheap when self was derived from `other` by `changed` calls that did not fold.
        """
        if isinstance(other, Layered) and self._base is other._base and not other._delta:
            return len(self._delta)
        return None

    def flat(self) -> dict[str, V]:
        """Return a plain dict copy.

        For pickling, for callers that need to mutate, and for a one-shot reader's passes over
        every node (a dict iterates several times faster than the layers).
        """
        flat = dict(self._base)
        for key, value in self._delta.items():  # the order of `items()`: new keys last
            if value is _GONE:
                flat.pop(key, None)
            else:
                flat[key] = value
        return flat

    def __getitem__(self, key: str) -> V:
        value = self._delta.get(key, _GONE) if self._delta else _GONE
        if value is _GONE:
            if key in self._delta:
                raise KeyError(key)
            return self._base[key]
        result: V = value
        return result

    def get(self, key: str, default: Any = None) -> Any:  # noqa: D102 - Mapping.get
        if self._delta:
            value = self._delta.get(key, _GONE)
            if value is not _GONE:
                return value
            if key in self._delta:
                return default
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        if self._delta and key in self._delta:
            return self._delta[key] is not _GONE
        return key in self._base

    def __iter__(self) -> Iterator[str]:
        if not self._delta:
            return iter(self._base)
        return (k for k, _ in self.items())

    def __len__(self) -> int:
        return self._len

    def items(self) -> ItemsView[str, V]:  # noqa: D102 - Mapping.items, faster than the generic view
        if not self._delta:
            return self._base.items()
        return _Items(self)

    def _merged_items(self) -> Iterator[tuple[str, V]]:
        delta = self._delta
        for key, value in self._base.items():
            if key in delta:
                changed = delta[key]
                if changed is not _GONE:
                    yield key, changed
            else:
                yield key, value
        base = self._base
        for key, value in delta.items():
            if value is not _GONE and key not in base:
                yield key, value

    def values(self) -> ValuesView[V]:  # noqa: D102 - Mapping.values
        if not self._delta:
            return self._base.values()
        return _Values(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Layered, (self.flat(),))

    def __repr__(self) -> str:
        return f"Layered({len(self)} items, {len(self._delta)} in delta)"


class _Items(ItemsView[str, V]):
    _mapping: Layered[V]

    def __iter__(self) -> Iterator[tuple[str, V]]:
        return self._mapping._merged_items()


class _Values(ValuesView[V]):
    _mapping: Layered[V]

    def __iter__(self) -> Iterator[V]:
        return (value for _, value in self._mapping._merged_items())


# A lineage link is cut when replaying its chain would cost about what a rebuild costs.
MAX_CHAIN = 256


class Lineage:
    """Where a snapshot's `GraphIndex` comes from: its own, or its parent's plus what changed.

    The index is handed down, not copied (copying it would cost the graph's size again): the
    first descendant that asks takes its ancestor's index, applies the ids changed since, and
    keeps it. An ancestor asked again afterwards builds a fresh one (correct, only slower). The
    supervisor asks for the index of its newest snapshot only, so each change is applied once.
    """

    __slots__ = ("changed", "index", "parent", "pending")

    def __init__(self) -> None:
        self.index: GraphIndex | None = None
        self.parent: Lineage | None = None
        self.changed: tuple[str, ...] = ()
        self.pending = 0  # ids changed along the chain up to an ancestor that holds an index

    def child(self, changed: Iterable[str]) -> Lineage:
        """Return the lineage of a snapshot derived from this one by changing `changed`."""
        new = Lineage()
        new.changed = tuple(changed)
        new.pending = (0 if self.index is not None else self.pending) + len(new.changed)
        if new.pending <= MAX_CHAIN * 4 and (self.index is not None or self.parent is not None):
            new.parent = self
        return new

    def index_for(self, nodes: Mapping[str, NodeSummary]) -> GraphIndex:
        """Return the index of `nodes` (this lineage's graph), taking an ancestor's when linked."""
        if self.index is not None:
            return self.index
        changed: list[str] = []
        link: Lineage | None = self
        while link is not None and link.index is None:
            changed.extend(link.changed)
            link = link.parent
        taken = link.index if link is not None else None
        if link is None or taken is None:
            index = GraphIndex.build(nodes)
        else:
            index, link.index = taken, None  # handed down: the ancestor no longer has it
            index.update(nodes, changed)
        self.index, self.parent, self.changed = index, None, ()
        return index

    def kept(self) -> bool:
        """Tell whether this lineage holds an index or is linked to an ancestor that does.

        Then `index_for` costs the changes since that ancestor; otherwise it builds one from
        the whole graph.
        """
        link: Lineage | None = self
        while link is not None:
            if link.index is not None:
                return True
            link = link.parent
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lineage, ())  # derived data: a pickled snapshot rebuilds it when asked


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a state tree: the path (or `path: field`) and what is wrong."""

    path: str
    message: str
    node: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class StoredGraph:
    """A snapshot's `graph.yaml` as the index cache keeps it: pickled, with its summary beside.

    Unpickling a `GraphFile` imports pydantic and builds every record model, which costs more
    than the whole of `gitdag status` on a warm index; the summary answers what the read-only
    commands show, and the record is unpickled only when something asks for it.
    """

    __slots__ = ("data", "summary")

    def __init__(self, data: bytes, summary: GraphSummary) -> None:
        self.data = data
        self.summary = summary

    @classmethod
    def of(cls, graph: GraphFile) -> StoredGraph:
        """Return `graph` pickled, with its summary."""
        import pickle

        from gitdag.core.model import summarize_graph

        return cls(pickle.dumps(graph, protocol=5), summarize_graph(graph))

    def load(self) -> GraphFile:
        """Return the record (this imports the models)."""
        import pickle

        from gitdag.core.model import GraphFile

        graph = pickle.loads(self.data)
        if not isinstance(graph, GraphFile):
            raise TypeError(f"the stored graph is a {type(graph).__name__}")
        return graph

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoredGraph, (self.data, self.summary))


class Snapshot:
    """The graph at one commit; immutable.

    Attributes:
      head: the commit (hex), or None for an empty branch.
      tree: its root tree (hex).
      graph: the parsed `graph.yaml` (for the read-only commands, `graph_summary` is lighter).
      nodes: id -> summary (what scheduling and status need).
      blobs: id -> blob sha (hex) of the node's file; full nodes are loaded through the store.
      graph_blob: blob sha of `graph.yaml`.
      problems: what is wrong with the tree (empty for a valid one).
      lineage: how its `index` is derived (`Lineage.child` of the snapshot it was built from).
    """

    __slots__ = ("_graph", "blobs", "graph_blob", "head", "lineage", "nodes", "problems", "tree")
    head: str | None
    tree: str | None
    nodes: Mapping[str, NodeSummary]
    blobs: Mapping[str, str]
    graph_blob: str | None
    problems: tuple[Problem, ...]
    lineage: Lineage
    _graph: GraphFile | StoredGraph

    def __init__(
        self,
        head: str | None,
        tree: str | None,
        graph: GraphFile | StoredGraph,
        nodes: Mapping[str, NodeSummary],
        blobs: Mapping[str, str],
        graph_blob: str | None = None,
        problems: tuple[Problem, ...] = (),
        lineage: Lineage | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "head", head)
        setattr_(self, "tree", tree)
        setattr_(self, "_graph", graph)
        setattr_(self, "nodes", nodes)
        setattr_(self, "blobs", blobs)
        setattr_(self, "graph_blob", graph_blob)
        setattr_(self, "problems", problems)
        setattr_(self, "lineage", lineage if lineage is not None else Lineage())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Snapshot is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Snapshot is immutable (cannot delete {name!r})")

    @property
    def graph(self) -> GraphFile:
        """The parsed `graph.yaml` (unpickled on first use when read from the index cache)."""
        graph = self._graph
        if isinstance(graph, StoredGraph):
            graph = graph.load()
            object.__setattr__(self, "_graph", graph)  # a cache of the same value
        return graph

    @property
    def stored_graph(self) -> GraphFile | StoredGraph:
        """The graph as held: what a snapshot derived from this one passes on unread."""
        return self._graph

    @property
    def graph_summary(self) -> GraphSummary:
        """Goal, target and paused: what the read-only commands show, without the models."""
        graph = self._graph
        if isinstance(graph, StoredGraph):
            return graph.summary
        return GraphSummary(graph.goal, graph.target, graph.control.paused)

    @property
    def index(self) -> GraphIndex:
        """The ready set, counts and ids by status of `nodes`, updated from the parent's."""
        return self.lineage.index_for(self.nodes)

    def _fields(self) -> tuple[Any, ...]:
        return (self.head, self.tree, self.graph, self.nodes, self.blobs, self.graph_blob,
                self.problems)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside, as before

    def __repr__(self) -> str:
        return (f"Snapshot(head={self.head!r}, tree={self.tree!r}, nodes={len(self.nodes)}, "
                f"problems={len(self.problems)})")  # fmt: skip

    def __reduce__(self) -> tuple[Any, ...]:
        # The index cache pickles snapshots: the graph goes as a StoredGraph, so that loading
        # one back imports no models; the lineage is derived data, rebuilt when asked. (The
        # summaries stay NamedTuples: plain tuples rebuilt on load measured no faster.)
        graph = self._graph
        stored = graph if isinstance(graph, StoredGraph) else StoredGraph.of(graph)
        return (Snapshot, (self.head, self.tree, stored, self.nodes, self.blobs,
                           self.graph_blob, self.problems))  # fmt: skip

    def kept_index(self) -> GraphIndex | None:
        """Its `index` when that costs the changes since an ancestor's, else None (no build).

        A one-shot command that never asked for an index would pay the whole graph to build
        one; a caller with a cheaper fallback (a scan) asks this instead.
        """
        return self.index if self.lineage.kept() else None
