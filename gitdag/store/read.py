"""Reading the state tree of one commit into a Snapshot, incrementally when a base is known."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dulwich.objects import Blob, Commit, ObjectID, Tree

from gitdag.core import graph as graphs
from gitdag.core.ids import is_valid_id, shard
from gitdag.core.summary import NodeSummary
from gitdag.errors import StoreError
from gitdag.store.cache import ParseCache
from gitdag.store.layout import GRAPH_FILE, NODES_DIR, README_FILE, node_id_from_path
from gitdag.store.snapshot import Layered, Problem, Snapshot, StoredGraph
from gitdag.store.treerules import FORGE_DIR, entry_problem

if TYPE_CHECKING:
    from dulwich.object_store import BaseObjectStore
    from dulwich.repo import BaseRepo

    from gitdag.core.model import GraphFile

# The codec and the models (pydantic) are imported where a file is parsed: a snapshot read from
# the index cache, and the nodes the light table knows, need neither (issue 18 part 5).

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.cache
def placeholder_graph() -> GraphFile:
    """The `graph.yaml` of a tree that has none (or an unreadable one), and of an empty branch."""
    from gitdag.core.model import GraphFile

    return GraphFile(created_at=_EPOCH)


def _tree(store: BaseObjectStore, sha: bytes) -> Tree:
    obj = store[ObjectID(sha)]
    if not isinstance(obj, Tree):
        raise StoreError(f"{sha.decode()[:12]} is not a tree (its entry says directory)")
    return obj


def _hex(sha: bytes | str) -> str:
    return sha.decode() if isinstance(sha, bytes) else sha


def commit_tree(repo: BaseRepo, commit: str) -> str:
    """Return the root tree (hex) of a commit."""
    try:
        obj = repo.object_store[ObjectID(commit.encode())]
    except KeyError:
        raise StoreError(f"commit {commit[:12]} is missing from the object store") from None
    if not isinstance(obj, Commit):
        raise StoreError(f"{commit[:12]} is not a commit")
    return _hex(obj.tree)


def _blob_bytes(repo: BaseRepo, sha: str) -> bytes:
    obj = repo.object_store[ObjectID(sha.encode())]
    if not isinstance(obj, Blob):
        raise StoreError(f"{sha[:12]} is not a blob")
    return obj.as_raw_string()


class _Loader:
    def __init__(self, repo: BaseRepo, cache: ParseCache) -> None:
        self.repo = repo
        self.cache = cache
        self.problems: list[Problem] = []

    def entry(self, path: str, mode: int) -> bool:
        """Tell whether the entry may stand in the state tree, noting the problem when not."""
        problem = entry_problem(path, mode)
        if problem is None:
            return True
        nid = node_id_from_path(path)
        self.problems.append(Problem(path, problem, nid if nid and is_valid_id(nid) else None))
        return False

    def node(self, path: str, name: str, sha: str, mode: int) -> NodeSummary | None:
        if not self.entry(path, mode):
            return None
        nid = name[: -len(".yaml")]
        light = self.cache.light(sha)
        if light is not None:
            if light[0].id != nid:
                self._mismatch(path, light[0].id, nid)
                return None
            return light[0]
        from gitdag.core.codec import DecodeError, load_node
        from gitdag.core.model import summarize

        cached = self.cache.get(sha)
        if cached is not None:
            if cached.id != nid:
                self._mismatch(path, cached.id, nid)
                return None
            return summarize(cached)
        raw = _blob_bytes(self.repo, sha)
        try:
            node = load_node(raw)
        except DecodeError as exc:
            self.problems.append(Problem(path, str(exc), nid))
            return None
        if node.id != nid:
            self._mismatch(path, node.id, nid)
            return None
        self.cache.put(sha, node)
        return summarize(node)

    def _mismatch(self, path: str, inside: str, nid: str) -> None:
        message = f"field id: {inside!r} does not match the file name"
        self.problems.append(Problem(path, message, nid))

    def graph(self, sha: str | None) -> GraphFile:
        if sha is None:
            self.problems.append(Problem(GRAPH_FILE, "missing"))
            return placeholder_graph()
        from gitdag.core.codec import DecodeError, load_graph

        try:
            return load_graph(_blob_bytes(self.repo, sha))
        except DecodeError as exc:
            self.problems.append(Problem(GRAPH_FILE, str(exc)))
            return placeholder_graph()


def load_snapshot(
    repo: BaseRepo, commit: str, cache: ParseCache, base: Snapshot | None = None
) -> Snapshot:
    """Read the graph at `commit`; with a valid `base`, read only what changed since it.

    Args:
      repo: the repository.
      commit: the commit (hex) to read.
      cache: the parse cache (blob sha -> node).
      base: an earlier snapshot of the same branch; its tree is diffed against the new one.

    Returns:
      The snapshot; anything wrong with the tree is listed in `problems`, never raised.
    """
    if base is not None and not base.problems and base.head == commit and base.tree is not None:
        return base  # the index cache's snapshot is the head's: no object to read
    tree = commit_tree(repo, commit)
    if base is not None and not base.problems and base.tree == tree:
        return Snapshot(
            commit, tree, base.stored_graph, base.nodes, base.blobs, base.graph_blob,
            lineage=base.lineage.child(()),
        )  # fmt: skip
    loader = _Loader(repo, cache)
    if base is not None and not base.problems and base.tree is not None:
        snap = _load_incremental(repo, commit, tree, base, loader)
    else:
        snap = _load_full(repo, commit, tree, loader)
    cache.flush()
    return snap


def _load_full(repo: BaseRepo, commit: str, tree: str, loader: _Loader) -> Snapshot:
    store = repo.object_store
    root = store[ObjectID(tree.encode())]
    assert isinstance(root, Tree)
    graph_sha: str | None = None
    nodes: dict[str, NodeSummary] = {}
    blobs: dict[str, str] = {}
    usable: dict[bytes, bytes] = {}
    for entry in root.iteritems():
        if loader.entry(entry.path.decode(errors="replace"), entry.mode):
            usable[entry.path] = entry.sha
    if GRAPH_FILE.encode() in usable:
        graph_sha = _hex(usable[GRAPH_FILE.encode()])
    graph_file = loader.graph(graph_sha)
    if NODES_DIR.encode() in usable:
        nodes_tree = _tree(store, usable[NODES_DIR.encode()])
        for shard_entry in nodes_tree.iteritems():
            shard_name = shard_entry.path.decode(errors="replace")
            if not loader.entry(f"{NODES_DIR}/{shard_name}", shard_entry.mode):
                continue
            for entry in _tree(store, shard_entry.sha).iteritems():
                name = entry.path.decode(errors="replace")
                path = f"{NODES_DIR}/{shard_name}/{name}"
                sha = _hex(entry.sha)
                summary = loader.node(path, name, sha, entry.mode)
                if summary is not None:
                    nodes[summary.id] = summary
                    blobs[summary.id] = sha
    problems = loader.problems + graph_problems(nodes, nodes.keys(), full=True)
    return Snapshot(
        commit, tree, graph_file, Layered(nodes), Layered(blobs), graph_sha, tuple(problems)
    )


def _load_incremental(
    repo: BaseRepo, commit: str, tree: str, base: Snapshot, loader: _Loader
) -> Snapshot:
    put_nodes: dict[str, NodeSummary] = {}
    put_blobs: dict[str, str] = {}
    gone: list[str] = []
    graph_file: GraphFile | StoredGraph = base.stored_graph
    graph_sha = base.graph_blob
    changed: list[str] = []
    removed = False
    assert base.tree is not None
    from dulwich.diff_tree import tree_changes

    for change in tree_changes(
        repo.object_store, ObjectID(base.tree.encode()), ObjectID(tree.encode())
    ):
        old, new = change.old, change.new
        path_b = (new.path if new is not None and new.path else None) or (old.path if old else b"")
        path = path_b.decode(errors="replace")
        if (
            new is not None
            and new.path
            and new.mode is not None
            and not loader.entry(path, new.mode)
        ):
            continue
        if path == GRAPH_FILE:
            graph_sha = _hex(new.sha) if new is not None and new.sha else None
            graph_file = loader.graph(graph_sha)
            continue
        if path == README_FILE or path.startswith(FORGE_DIR + "/"):
            continue
        nid = node_id_from_path(path)
        if nid is None:
            continue  # a file the rules allow that is not a node (only README.md and .github/)
        if old is not None and old.path and nid in base.blobs and (new is None or not new.sha):
            gone.append(nid)
            removed = True
            continue
        if new is None or not new.sha or new.mode is None:
            continue
        name = path.rsplit("/", 1)[-1]
        summary = loader.node(path, name, _hex(new.sha), new.mode)
        if summary is not None:
            put_nodes[summary.id] = summary
            put_blobs[summary.id] = _hex(new.sha)
            changed.append(summary.id)
    nodes = Layered.of(base.nodes).changed(put_nodes, gone)
    blobs = Layered.of(base.blobs).changed(put_blobs, gone)
    # The base has no unknown reference and no cycle: only a node whose references changed (or
    # a new one) can bring one. A claim or a result changes none, and checking it would walk
    # every node it depends on (most of a 10k graph for a late node).
    before = base.nodes
    moved = [nid for nid in changed if _references(before.get(nid)) != _references(nodes[nid])]
    problems = loader.problems + graph_problems(nodes, moved, full=removed)
    lineage = base.lineage.child([*changed, *gone])
    return Snapshot(commit, tree, graph_file, nodes, blobs, graph_sha, tuple(problems), lineage)


def _references(node: NodeSummary | None) -> tuple[object, ...] | None:
    return None if node is None else (node.deps, node.after, node.parent)


def graph_problems(
    nodes: Mapping[str, NodeSummary], changed: Iterable[str], *, full: bool
) -> list[Problem]:
    """Return unknown references and cycles, checking only around `changed` unless `full`."""
    problems: list[Problem] = []
    scope = nodes if full else {nid: nodes[nid] for nid in changed if nid in nodes}
    for nid, field, ref in graphs.unknown_refs(_View(nodes, scope)):
        path = f"{NODES_DIR}/{shard(nid)}/{nid}.yaml"
        problems.append(Problem(path, f"field {field}: unknown node {ref!r}", nid))
    roots = list(nodes) if full else [nid for nid in changed if nid in nodes]
    cycle = graphs.find_cycle(nodes, roots=roots) if roots else None
    if cycle is not None:
        first = cycle[0]
        path = f"{NODES_DIR}/{shard(first)}/{first}.yaml"
        problems.append(Problem(path, "field deps: cycle " + " -> ".join(cycle), first))
    return problems


class _View(dict[str, NodeSummary]):
    """Iterates only `scope` but answers membership for the whole graph (for unknown_refs)."""

    def __init__(
        self, everything: Mapping[str, NodeSummary], scope: Mapping[str, NodeSummary]
    ) -> None:
        super().__init__(scope)
        self._everything = everything

    def __contains__(self, key: object) -> bool:
        return key in self._everything
