"""What changed in the state tree between two commits, loading only the files that differ.

The tree diff skips identical subtrees by sha, so with sharded `nodes/<xx>/` the cost of
a delta depends on how many node files changed, not on the size of the graph; the changed files are
parsed through the store's parse cache (a blob is parsed once, ever).
"""

from __future__ import annotations

import re
import stat
from collections import OrderedDict
from dataclasses import dataclass, field

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import BaseRepo

from gitdag.core import codec
from gitdag.core.diff import GraphDiff, diff_graphs
from gitdag.core.ids import id_problem, is_valid_id, node_path
from gitdag.core.model import GraphFile, Node
from gitdag.errors import InputError, StoreError
from gitdag.store.cache import ParseCache
from gitdag.store.layout import GRAPH_FILE, README_FILE, node_id_from_path
from gitdag.store.snapshot import Problem
from gitdag.store.state import StateStore
from gitdag.store.treerules import FORGE_DIR, entry_problem


@dataclass
class Delta:
    """The changes between two state trees.

    Attributes:
      old: the older commit (None: the empty tree before the root commit).
      new: the newer commit.
      before: changed nodes as they were (absent: the node was added).
      after: changed nodes as they are (absent: the node was removed).
      ids: every changed node id, sorted.
      graph_changed: whether `graph.yaml` differs.
      graph_before: `graph.yaml` before, when it changed (None when it did not exist).
      graph_after: `graph.yaml` after, when it changed (None when it was removed).
      problems: files that cannot be read as what their path says they are.
      unreadable_before: ids whose old file could not be read (their change cannot be judged).
    """

    old: str | None
    new: str
    before: dict[str, Node] = field(default_factory=dict)
    after: dict[str, Node] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    graph_changed: bool = False
    graph_before: GraphFile | None = None
    graph_after: GraphFile | None = None
    problems: list[Problem] = field(default_factory=list)
    unreadable_before: set[str] = field(default_factory=set)

    @property
    def added(self) -> list[str]:
        """Ids only the new tree has."""
        return [nid for nid in self.ids if nid not in self.before and nid in self.after]

    @property
    def removed(self) -> list[str]:
        """Ids only the old tree has."""
        return [nid for nid in self.ids if nid in self.before and nid not in self.after]

    def semantic(self) -> GraphDiff:
        """Return the node-by-node diff of this delta."""
        if self.graph_changed:
            return diff_graphs(self.before, self.after, self.graph_before, self.graph_after)
        return diff_graphs(self.before, self.after, None, None)


@dataclass(frozen=True)
class RawChange:
    """One changed path, with the blob shas (hex) on each side (None where absent)."""

    path: str
    old: str | None
    new: str | None
    new_mode: int | None


def oid(sha: str) -> ObjectID:
    """Return a hex sha as dulwich's object id type."""
    return ObjectID(sha.encode())


def commit_of(repo: BaseRepo, sha: str) -> Commit:
    """Return the commit object `sha` (hex).

    Raises:
      StoreError: when it is missing or not a commit.
    """
    try:
        obj = repo.object_store[oid(sha)]
    except KeyError:
        raise StoreError(f"commit {sha[:12]} is missing from the object store") from None
    if not isinstance(obj, Commit):
        raise StoreError(f"{sha[:12]} is not a commit")
    return obj


_SUFFIX = re.compile(r"^(.*?)((?:[~^][0-9]*)*)$")
_STEP = re.compile(r"([~^])([0-9]*)")


def resolve(store: StateStore, rev: str) -> str:
    """Return the commit a revision names, with git's `~N` and `^N` suffixes (`dagain/state~2`).

    Raises:
      InputError: when the revision names no commit.
    """
    match = _SUFFIX.match(rev.strip())
    base, suffix = (match.group(1), match.group(2)) if match else (rev, "")
    if not suffix or not base:
        return store.resolve(rev)
    commit = store.resolve(base)
    for op, digits in _STEP.findall(suffix):
        count = int(digits) if digits else 1
        if op == "~":
            for _ in range(count):
                commit = _parent(store.repo, commit, 1, rev)
        elif count:
            commit = _parent(store.repo, commit, count, rev)
    return commit


def _parent(repo: BaseRepo, commit: str, index: int, rev: str) -> str:
    parents = commit_of(repo, commit).parents
    if len(parents) < index:
        raise InputError(f"revision {rev!r}: no such commit (history is shorter)")
    return parents[index - 1].decode()


class CommitCache:
    """Parsed commits by sha, for walks that read each commit more than once."""

    def __init__(self, repo: BaseRepo, size: int = 16384) -> None:
        self.repo = repo
        self.size = size
        self._commits: OrderedDict[str, Commit] = OrderedDict()

    def __call__(self, sha: str) -> Commit:
        """Return the commit `sha` (see `commit_of`)."""
        found = self._commits.get(sha)
        if found is None:
            found = commit_of(self.repo, sha)
            self._commits[sha] = found
            if len(self._commits) > self.size:
                self._commits.popitem(last=False)
        return found


class TreeDiffer:
    """Diffs trees by entry sha, parsing each tree once (an LRU of parsed trees).

    Walking a range, commit k's trees are commit k+1's parent trees: with the cache each is
    parsed once instead of twice, and identical subtrees are skipped by sha, as dulwich does,
    without its generic walk (measured ~2-3x faster per commit on a 10k-node graph).
    """

    def __init__(self, repo: BaseRepo, size: int = 4096) -> None:
        self.repo = repo
        self.size = size
        self._trees: OrderedDict[bytes, dict[bytes, tuple[int, bytes]]] = OrderedDict()

    def entries(self, sha: bytes) -> dict[bytes, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a tree."""
        cached = self._trees.get(sha)
        if cached is not None:
            self._trees.move_to_end(sha)
            return cached
        obj = self.repo.object_store[ObjectID(sha)]
        if not isinstance(obj, Tree):
            raise StoreError(f"{sha.decode()[:12]} is not a tree")
        found: dict[bytes, tuple[int, bytes]] = {
            entry.path: (entry.mode, entry.sha) for entry in obj.iteritems()
        }
        self._trees[sha] = found
        if len(self._trees) > self.size:
            self._trees.popitem(last=False)
        return found

    def changes(self, old_tree: str | None, new_tree: str | None) -> list[RawChange]:
        """Return the changed file paths between two trees (None: the empty tree)."""
        out: list[RawChange] = []
        old = self.entries(old_tree.encode()) if old_tree else None
        new = self.entries(new_tree.encode()) if new_tree else None
        if old_tree != new_tree:
            self._diff("", old, new, out)
        return out

    def _diff(
        self,
        prefix: str,
        old: dict[bytes, tuple[int, bytes]] | None,
        new: dict[bytes, tuple[int, bytes]] | None,
        out: list[RawChange],
    ) -> None:
        names = set(old or ()) | set(new or ())
        for name in sorted(names):
            before = old.get(name) if old else None
            after = new.get(name) if new else None
            if before == after:
                continue
            path = prefix + name.decode(errors="replace")
            old_dir = before is not None and stat.S_ISDIR(before[0])
            new_dir = after is not None and stat.S_ISDIR(after[0])
            if old_dir or new_dir:
                self._diff(
                    path + "/",
                    self.entries(before[1]) if before is not None and old_dir else None,
                    self.entries(after[1]) if after is not None and new_dir else None,
                    out,
                )
            old_file = before if before is not None and not old_dir else None
            new_file = after if after is not None and not new_dir else None
            if old_file is not None or new_file is not None:
                out.append(RawChange(
                    path,
                    old_file[1].decode() if old_file is not None else None,
                    new_file[1].decode() if new_file is not None else None,
                    new_file[0] if new_file is not None else None,
                ))  # fmt: skip


def raw_changes(
    repo: BaseRepo, old_tree: str | None, new_tree: str | None, differ: TreeDiffer | None = None
) -> list[RawChange]:
    """Return the changed file paths between two trees (None: the empty tree)."""
    return (differ or TreeDiffer(repo)).changes(old_tree, new_tree)


class NodeReader:
    """Parses node and graph blobs through the parse cache, reporting problems as values."""

    def __init__(self, repo: BaseRepo, cache: ParseCache) -> None:
        self.repo = repo
        self.cache = cache

    def node(self, sha: str, path: str) -> Node | Problem:
        """Return the node stored in blob `sha` at `path`, or the problem with it."""
        nid = node_id_from_path(path)
        if nid is None or id_problem(nid) is not None:
            return Problem(path, "not a node file (expected nodes/<xx>/<id>.yaml)")
        if path != node_path(nid):
            return Problem(path, f"node {nid!r} belongs at {node_path(nid)}", nid)
        cached = self.cache.get(sha)
        if cached is None:
            try:
                cached = codec.load_node(self._bytes(sha))
            except codec.DecodeError as exc:
                return Problem(path, str(exc), nid)
            self.cache.put(sha, cached)
        if cached.id != nid:
            return Problem(path, f"field id: {cached.id!r} does not match the file name", nid)
        return cached

    def graph(self, sha: str) -> GraphFile | Problem:
        """Return the `graph.yaml` stored in blob `sha`, or the problem with it."""
        try:
            return codec.load_graph(self._bytes(sha))
        except codec.DecodeError as exc:
            return Problem(GRAPH_FILE, str(exc))

    def _bytes(self, sha: str) -> bytes:
        obj = self.repo.object_store[oid(sha)]
        if not isinstance(obj, Blob):
            raise StoreError(f"{sha[:12]} is not a blob")
        return obj.as_raw_string()


def tree_delta(
    reader: NodeReader,
    old: str | None,
    new: str,
    old_tree: str | None,
    new_tree: str,
    differ: TreeDiffer | None = None,
) -> Delta:
    """Return the delta between two trees, parsing only the changed files.

    Args:
      reader: parses blobs through the cache.
      old: the older commit (for the record), None for the empty tree.
      new: the newer commit.
      old_tree: the older root tree (hex), None for the empty tree.
      new_tree: the newer root tree (hex).
      differ: a tree differ to reuse across calls (its cache of parsed trees).
    """
    delta = Delta(old, new)
    for change in raw_changes(reader.repo, old_tree, new_tree, differ):
        if change.new is not None and change.new_mode is not None:
            rule = entry_problem(change.path, change.new_mode)
            if rule is not None:
                nid = node_id_from_path(change.path)
                known = nid if nid is not None and is_valid_id(nid) else None
                delta.problems.append(Problem(change.path, rule, known))
                continue
        if change.path == README_FILE or change.path.startswith(FORGE_DIR + "/"):
            continue
        if change.path == GRAPH_FILE:
            delta.graph_changed = True
            for side, sha in (("before", change.old), ("after", change.new)):
                if sha is None:
                    continue
                loaded = reader.graph(sha)
                if isinstance(loaded, Problem):
                    delta.problems.append(loaded)
                elif side == "before":
                    delta.graph_before = loaded
                else:
                    delta.graph_after = loaded
            continue
        nid = node_id_from_path(change.path)
        if nid is None:
            continue  # removed: a wrong entry gone is no problem of this commit
        loaded_any = False
        for side, sha in (("before", change.old), ("after", change.new)):
            if sha is None:
                continue
            loaded_node = reader.node(sha, change.path)
            if isinstance(loaded_node, Problem):
                # Only the new side is this commit's fault; an unreadable old side was reported
                # when it was written.
                if side == "after":
                    delta.problems.append(loaded_node)
                else:
                    delta.unreadable_before.add(nid)
                continue
            loaded_any = True
            (delta.before if side == "before" else delta.after)[nid] = loaded_node
        if loaded_any:
            delta.ids.append(nid)
    delta.ids.sort()
    reader.cache.flush()
    return delta


def commit_delta(store: StateStore, old: str | None, new: str) -> Delta:
    """Return the delta between two commits (old None: the empty tree)."""
    repo = store.repo
    new_tree = commit_of(repo, new).tree.decode()
    old_tree = commit_of(repo, old).tree.decode() if old else None
    return tree_delta(NodeReader(repo, store.cache), old, new, old_tree, new_tree)


def diff_revisions(store: StateStore, rev1: str, rev2: str) -> GraphDiff:
    """Return the semantic diff between two revisions of the state branch (or a proposal).

    Raises:
      InputError: a revision names no commit, or a changed file cannot be read.
    """
    old, new = resolve(store, rev1), resolve(store, rev2)
    delta = commit_delta(store, old, new)
    if delta.problems:
        first = delta.problems[0]
        raise InputError(f"{rev2}: {first} (see `gitdag validate {rev2}`)")
    return delta.semantic()
