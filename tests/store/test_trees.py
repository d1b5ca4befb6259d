"""`DirRecords` changes the raw bytes of `nodes/` exactly as rebuilding the tree would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dulwich.objects import Blob, Tree
from hypothesis import given
from hypothesis import strategies as st

from gitdag import actions
from gitdag.core.model import Node
from gitdag.core.transitions import Transition
from gitdag.store import trees
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from tests.conftest import make_repo

SHARDS = [f"{i:02x}".encode() for i in range(256)]
SHAS = [Blob.from_string(str(i).encode()).id for i in range(8)]


def dir_tree(entries: dict[bytes, bytes]) -> Tree:
    tree = Tree()
    for name, sha in entries.items():
        tree.add(name, 0o040000, sha)
    return tree


@given(
    st.dictionaries(st.sampled_from(SHARDS), st.sampled_from(SHAS), max_size=40),
    st.lists(
        st.tuples(st.sampled_from(SHARDS), st.none() | st.sampled_from(SHAS)), min_size=1,
        max_size=6,
    ),
)  # fmt: skip
def test_setting_entries_in_the_raw_bytes_equals_rebuilding_the_tree(
    start: dict[bytes, bytes], changes: list[tuple[bytes, bytes | None]]
) -> None:
    records = trees.DirRecords.of(dir_tree(start).as_raw_string())
    assert records is not None
    entries = dict(start)
    for name, sha in changes:
        assert records.get(name) == entries.get(name)
        records.set(name, sha)
        if sha is None:
            entries.pop(name, None)
        else:
            entries[name] = sha
    assert records.tree().id == dir_tree(entries).id
    for name in SHARDS[:40]:
        assert records.get(name) == entries.get(name)


def test_a_tree_with_other_entries_is_not_taken_as_records() -> None:
    tree = dir_tree({b"ab": SHAS[0]})
    tree.add(b"ab.yaml", 0o100644, SHAS[1])  # a file: records of another size
    assert trees.DirRecords.of(tree.as_raw_string()) is None
    odd = Tree()
    odd.add(b"abc", 0o040000, SHAS[0])
    assert trees.DirRecords.of(odd.as_raw_string()) is None
    assert trees.DirRecords.of(b"") is not None  # no shard yet


def test_the_raw_cache_keeps_the_newest() -> None:
    kept = trees.RawTrees(size=2)
    for i in range(3):
        kept.put(str(i).encode(), b"raw%d" % i)
    assert kept.get(b"0") is None and kept.get(b"2") == b"raw2"


def _objects_read_by_one_edit(repo_dir: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Objects read from disk by the second of two edits of one node, on a graph of n nodes."""
    repo = make_repo(repo_dir)
    with StateStore.open(repo, use_disk_cache=False) as store:
        actions.init(store, "goal", "dagain/integration")
        t = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        nodes = tuple(Node(id=f"n{i:04d}", title="t", created_at=t, updated_at=t) for i in range(n))
        store.transact(lambda s, now: Transition(verb="add", subject="n0000", put=nodes), actor="t")

        def edit(snap: Snapshot, now: dt.datetime) -> Transition:
            node = store.node(snap, "n0001")
            changed = node.model_copy(update={"priority": node.priority + 1})
            return Transition(verb="edit", subject="n0001", put=(changed,))

        store.transact(edit, actor="t")
        reads = 0
        kind = type(store.repo.object_store)
        original = kind.__getitem__

        def counting(self: object, sha: bytes) -> object:
            nonlocal reads
            reads += 1
            return original(self, sha)  # type: ignore[arg-type]

        monkeypatch.setattr(kind, "__getitem__", counting)
        store.transact(edit, actor="t")
        monkeypatch.setattr(kind, "__getitem__", original)
        return reads


def test_a_state_commit_reads_no_tree_back_whatever_the_graph_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trees a commit changes come from memory: the objects read do not grow with the graph."""
    small = _objects_read_by_one_edit(tmp_path / "small", 20, monkeypatch)
    big = _objects_read_by_one_edit(tmp_path / "big", 1500, monkeypatch)  # every shard is used
    assert small == big == 0
