"""The trees a state commit rewrites, at a cost that does not grow with the graph.

Each transition rewrites the root tree, the `nodes/` tree and one shard tree. Read back from the
object store and rebuilt entry by entry, the `nodes/` tree costs its entry count twice per
commit (parse and copy, then serialise): ~140 entries at 200 nodes, 256 from ~1,500 nodes on,
the largest part of the supervisor's growth per node from 200 to 2,000 nodes.

So the raw bytes of the trees this process wrote or read last are kept (`RawTrees`: objects are
content-addressed, so a sha names the same bytes in every repository), and one entry of the
`nodes/` tree is replaced in its raw bytes (`DirRecords`: its records have one fixed size, so
the entry is found by bisection) instead of re-serialising every entry.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from dulwich.objects import ObjectID, RawObjectID, Tree, hex_to_sha, sha_to_hex
from dulwich.repo import BaseRepo

from gitdag.errors import StoreError

# A `nodes/` tree entry: `40000 <2 hex>\0<20-byte sha>` — every record is this long.
_RECORD = 29
_NAME_AT = 6
_DIR_RECORDS = re.compile(rb"(?:40000 [0-9a-f]{2}\x00.{20})*", re.DOTALL)


class RawTrees:
    """A small bounded map of tree sha (hex bytes) -> raw tree bytes; safe across threads."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._raw: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha: bytes) -> bytes | None:
        """Return the raw bytes of tree `sha`, if kept."""
        with self._lock:
            return self._raw.get(sha)

    def put(self, sha: bytes, raw: bytes) -> None:
        """Keep the raw bytes of tree `sha` (the oldest kept one goes when full)."""
        with self._lock:
            self._raw[sha] = raw
            self._raw.move_to_end(sha)
            while len(self._raw) > self._size:
                self._raw.popitem(last=False)


RAW = RawTrees()


def read(repo: BaseRepo, sha: bytes | None) -> Tree:
    """Return tree `sha` as a new Tree the caller may change (an empty one for None)."""
    if sha is None:
        return Tree()
    return parse(raw_of(repo, sha))


def parse(raw: bytes) -> Tree:
    """Return a new Tree of the raw bytes `raw`."""
    tree = Tree.from_raw_string(Tree.type_num, raw)
    assert isinstance(tree, Tree)
    return tree


def raw_of(repo: BaseRepo, sha: bytes) -> bytes:
    """Return the raw bytes of tree `sha`, from memory when this process wrote or read it."""
    raw = RAW.get(sha)
    if raw is None:
        obj = repo.object_store[ObjectID(sha)]
        if not isinstance(obj, Tree):
            raise StoreError(f"{sha.decode()[:12]} is not a tree")
        raw = obj.as_raw_string()
        RAW.put(sha, raw)
    return raw


def made(tree: Tree) -> Tree:
    """Remember a tree about to be written (its raw bytes) and return it."""
    RAW.put(tree.id, tree.as_raw_string())
    return tree


class DirRecords:
    """The raw bytes of a tree whose entries are all subtrees with two-character names.

    Such records (`nodes/`'s) all have one size and sort by name alone, so one entry is found
    by bisection and replaced in the bytes: a change costs a copy of the bytes, not a parse and
    a serialisation of every entry.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    @classmethod
    def of(cls, raw: bytes) -> DirRecords | None:
        """Return the records of tree `raw`, or None when its entries are not all such."""
        if len(raw) % _RECORD or not _DIR_RECORDS.fullmatch(raw):
            return None
        return cls(raw)

    def _find(self, name: bytes) -> tuple[int, bool]:
        raw = self._raw
        lo, hi = 0, len(raw) // _RECORD
        while lo < hi:
            mid = (lo + hi) // 2
            at = mid * _RECORD + _NAME_AT
            if raw[at : at + 2] < name:
                lo = mid + 1
            else:
                hi = mid
        start = lo * _RECORD
        return start, raw[start + _NAME_AT : start + _NAME_AT + 2] == name

    def get(self, name: bytes) -> bytes | None:
        """Return the sha (hex) of entry `name`, or None."""
        start, present = self._find(name)
        if not present:
            return None
        return sha_to_hex(RawObjectID(self._raw[start + _RECORD - 20 : start + _RECORD]))

    def set(self, name: bytes, sha: bytes | None) -> None:
        """Set entry `name` (two hex digits: a shard) to subtree `sha` (None: remove it)."""
        if not re.fullmatch(rb"[0-9a-f]{2}", name):
            raise ValueError(f"not a shard name: {name!r}")
        start, present = self._find(name)
        end = start + _RECORD if present else start
        record = b"" if sha is None else b"40000 " + name + b"\x00" + hex_to_sha(ObjectID(sha))
        self._raw = self._raw[:start] + record + self._raw[end:]

    def tree(self) -> Tree:
        """Return the tree these records make (remembered in `RAW`)."""
        return made(parse(self._raw))
