"""The `README.md` of the next state commit, from the current one and the transition.

A handful of object reads (the root tree, the old README, the head commit's parent) and the
transition's own nodes: the cost does not depend on the size of the graph, except once when the
old README cannot be trusted (then it is rebuilt from the snapshot's summaries).
"""

from __future__ import annotations

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import BaseRepo

from gitdag.core import codec, readme
from gitdag.core.model import Status
from gitdag.core.transitions import Transition
from gitdag.store.layout import README_FILE
from gitdag.store.snapshot import Snapshot

_NAME = README_FILE.encode()


def oid(sha: str) -> ObjectID:
    """Return a hex sha as dulwich's object id type."""
    return ObjectID(sha.encode())


def _current(repo: BaseRepo, snap: Snapshot) -> readme.ReadmeData | None:
    if snap.tree is None or snap.head is None:
        return None
    try:
        root = repo.object_store[oid(snap.tree)]
        if not isinstance(root, Tree) or _NAME not in root:
            return None
        blob = repo.object_store[root[_NAME][1]]
        head = repo.object_store[oid(snap.head)]
    except KeyError:
        return None
    if not isinstance(blob, Blob) or not isinstance(head, Commit):
        return None
    data = readme.parse(blob.as_raw_string().decode("utf-8", errors="replace"))
    parent = head.parents[0].decode() if head.parents else None
    # Trust the counts only if they were computed for this very head (on its parent).
    return data if data is not None and data.base == parent else None


def _held(repo: BaseRepo, snap: Snapshot) -> dict[str, str]:
    """Every held merging node -> its hold's kind (the rebuild: reads the merging nodes only)."""
    found: dict[str, str] = {}
    for nid, summary in snap.nodes.items():
        if summary.status is not Status.MERGING or nid not in snap.blobs:
            continue
        try:
            node = codec.load_node(repo.object_store[oid(snap.blobs[nid])].as_raw_string())
        except (KeyError, codec.DecodeError):
            continue
        if node.hold is not None:
            found[nid] = node.hold.kind.value
    return found


Memo = tuple[str, readme.ReadmeData]  # (a head this process wrote, the data of its README)


def next_readme(
    repo: BaseRepo, snap: Snapshot, transition: Transition, memo: Memo | None = None
) -> tuple[str, readme.ReadmeData]:
    """Return the README text (and its data) of the commit applying `transition` on `snap`.

    Args:
      repo: the repository.
      snap: the graph the transition builds on.
      transition: what changes.
      memo: the data of the README this process wrote last, with that commit: when `snap` is
        that commit (the supervisor's steady state) nothing needs to be read at all.
    """
    data = memo[1] if memo is not None and memo[0] == snap.head else _current(repo, snap)
    if data is None:
        data = readme.from_nodes(snap.nodes.values(), snap.head, _held(repo, snap))
    moves = readme.moves_of(snap.nodes, transition.put, transition.remove)
    data = readme.update(data, moves, snap.head)
    data = readme.update_held(data, transition.put, transition.remove)
    data = readme.update_groups(data, transition.put, transition.remove)
    graph = transition.graph or snap.graph
    text = readme.render(data, goal=graph.goal, target=graph.target, paused=graph.control.paused)
    return text, data


def readme_for(repo: BaseRepo, snap: Snapshot, transition: Transition) -> str:
    """Return the README text of the commit applying `transition` on `snap` (no memo)."""
    return next_readme(repo, snap, transition)[0]
