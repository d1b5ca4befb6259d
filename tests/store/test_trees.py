"""`DirRecords` changes the raw bytes of `nodes/` exactly as rebuilding the tree would."""

from __future__ import annotations

from dulwich.objects import Blob, Tree
from hypothesis import given
from hypothesis import strategies as st

from gitdag.store import trees

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
