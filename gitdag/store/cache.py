"""Caches under `.dagain/local/cache/`: parsed nodes by blob sha, and the last snapshot's index.

A blob never changes, so the parse cache never needs invalidating; the index of the last snapshot
lets the next process start from it and read only what a tree diff says changed. Beside each
parsed node the parse cache keeps its light form (summary, and the status detail of a running or
merging node), which reads back without the pydantic models: `gitdag status` on a warm index
imports none of them (issue 18 part 5).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from gitdag.core.model import Node
    from gitdag.core.summary import NodeDetail, NodeSummary
    from gitdag.store.snapshot import Snapshot

# The summaries and the snapshot are imported where they are read: `gitdag show` of a file
# gitdag wrote asks only `is_canonical` and `light` (gitdag/readonly.py's quick start).

_FORMAT = 2  # bump when the pickled shapes change; old caches are then ignored
_INDEX_FORMAT = 3  # 3: the graph pickled apart (snapshot.StoredGraph), summaries in core/summary
_LIGHT_FORMAT = 1

Light = tuple["NodeSummary", "NodeDetail | None"]


MEMORY_NODES = 4096  # full nodes kept in memory; a 100k graph would otherwise hold ~1 GB
PENDING_NODES = 1024  # parsed nodes not yet written to the file: written in batches


class ParseCache:
    """Blob sha -> parsed Node, in memory and in a sqlite file (safe across processes).

    Memory holds the most recently used MEMORY_NODES; the file holds every node ever parsed, and
    its light form (`light`) in a table of its own.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, memory_limit: int = MEMORY_NODES
    ) -> None:
        self._memory: dict[str, Node] = {}
        self._limit = max(1, memory_limit)
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._empty = False
        self._pending: dict[str, Node] = {}  # pickled at flush, off the transition's path
        self._pending_light: dict[str, Node] = {}  # nodes whose light row is not in the file
        self._canonical: set[str] = set()  # blobs gitdag wrote itself (codec.dump of the node)
        self._pending_canonical: list[str] = []

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and self._path is not None:
            try:
                os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
                db = sqlite3.connect(os.fspath(self._path), timeout=10, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")  # a lost cache entry is re-parsed, no harm
                for table in ("nodes", "light"):
                    db.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} "
                        "(blob TEXT PRIMARY KEY, fmt INT, data BLOB)"
                    )
                db.execute("CREATE TABLE IF NOT EXISTS canonical (blob TEXT PRIMARY KEY)")
                # A new (cold) cache answers every lookup with a miss: skip the queries.
                self._empty = db.execute("SELECT 1 FROM nodes LIMIT 1").fetchone() is None
                self._db = db
            except sqlite3.Error:
                self._path = None  # an unusable cache only costs speed
        return self._db

    def get(self, blob: str) -> Node | None:
        """Return the parsed node of a blob, if known."""
        node = self._memory.pop(blob, None)
        if node is not None:
            self._memory[blob] = node  # most recently used last
            return node
        node = self._pending.get(blob)
        if node is not None:
            return node
        db = self._connect()
        if db is None or self._empty:
            return None
        try:
            row = db.execute("SELECT fmt, data FROM nodes WHERE blob = ?", (blob,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != _FORMAT:
            return None
        try:
            node = pickle.loads(row[1])
        except Exception:
            return None
        from gitdag.core.model import Node

        if isinstance(node, Node):
            self._remember(blob, node)
            self._pending_light.setdefault(blob, node)  # a file from before the light table
            return node
        return None

    def light(self, blob: str) -> Light | None:
        """Return the summary of a blob's node, and its detail when it is running or merging.

        Answered from the light table without loading the models when the node was parsed by
        any process before; None when it never was (the caller then parses the blob).
        """
        node = self._memory.get(blob) or self._pending.get(blob)
        if node is not None:
            return _light(node)
        db = self._connect()
        if db is None or self._empty:
            return None
        try:
            row = db.execute("SELECT fmt, data FROM light WHERE blob = ?", (blob,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != _LIGHT_FORMAT:
            return None
        try:
            found = pickle.loads(row[1])
        except Exception:
            return None
        from gitdag.core.summary import NodeSummary  # loaded by the unpickling already

        if isinstance(found, tuple) and len(found) == 2 and isinstance(found[0], NodeSummary):
            return found
        return None

    def _remember(self, blob: str, node: Node) -> None:
        memory = self._memory
        memory[blob] = node
        if len(memory) > self._limit:
            del memory[next(iter(memory))]

    def put(self, blob: str, node: Node, *, canonical: bool = False) -> None:
        """Remember a parsed node; written to disk on `flush()`.

        Args:
          blob: the blob's sha (hex).
          node: the node its text holds.
          canonical: the blob's text is `codec.dump(node)` (gitdag wrote it): `gitdag show` may
            print the stored file as it is, without the models (`is_canonical`).
        """
        self._remember(blob, node)
        if canonical:
            self._canonical.add(blob)
        if self._path is not None:
            self._pending[blob] = node
            self._pending_light[blob] = node
            if canonical:
                self._pending_canonical.append(blob)
            if len(self._pending) >= PENDING_NODES:
                self.flush()

    def is_canonical(self, blob: str) -> bool:
        """Tell whether gitdag wrote this blob as the canonical text of its node."""
        if blob in self._canonical:
            return True
        db = self._connect()
        if db is None or self._empty:
            return False
        try:
            row = db.execute("SELECT 1 FROM canonical WHERE blob = ?", (blob,)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None

    def flush(self) -> None:
        """Write remembered nodes (and their light rows) to the sqlite file in one transaction."""
        if not self._pending and not self._pending_light:
            return
        db = self._connect()
        pending, self._pending = self._pending, {}
        pending_light, self._pending_light = self._pending_light, {}
        canonical, self._pending_canonical = self._pending_canonical, []
        if db is None:
            return
        rows = [(b, _FORMAT, pickle.dumps(n, protocol=5)) for b, n in pending.items()]
        light = [(b, _LIGHT_FORMAT, pickle.dumps(_light(n), protocol=5))
                 for b, n in pending_light.items()]  # fmt: skip
        with contextlib.suppress(sqlite3.Error):
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO nodes (blob, fmt, data) VALUES (?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO light (blob, fmt, data) VALUES (?, ?, ?)", light)
            db.executemany("INSERT OR IGNORE INTO canonical (blob) VALUES (?)",
                           [(b,) for b in canonical])  # fmt: skip
            db.execute("COMMIT")
            self._empty = False

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Unpickling 100k summaries allocates ~1M tuples; each allocation burst triggers collections
    that scan everything built so far. Pausing them makes the load 2-3x faster (measured in
    bench/status.py); nothing built here is cyclic garbage. Afterwards the objects are frozen
    (moved out of the collector's generations): otherwise the first collection after the load
    walks all of them at once (10-20 ms at 10k nodes, most of a warm `gitdag status`), and each
    older generation later again. Frozen objects are still freed by reference counting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class IndexCache:
    """The last snapshot this repository loaded, pickled to one file, replaced atomically."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def load(self) -> Snapshot | None:
        """Return the cached snapshot, or None when there is none or it is unreadable."""
        if self._path is None or not self._path.exists():
            return None
        try:
            with self._path.open("rb") as fh, _no_gc():
                data: dict[str, Any] = pickle.load(fh)
        except Exception:
            return None
        from gitdag.store.snapshot import Snapshot

        if not isinstance(data, dict) or data.get("format") != _INDEX_FORMAT:
            return None  # another version's, or not ours at all: read the tree instead
        snap = data.get("snapshot")
        if not isinstance(snap, Snapshot):
            return None
        return snap

    def save(self, snapshot: Snapshot) -> None:
        """Replace the cached snapshot (a valid one only: problems are never cached)."""
        if self._path is None or snapshot.problems or snapshot.head is None:
            return
        import tempfile  # shutil, bz2, lzma: only a writer of the index pays for them

        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".index-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump({"format": _INDEX_FORMAT, "snapshot": snapshot}, fh, protocol=5)
                os.replace(tmp, self._path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


def _light(node: Node) -> Light:
    from gitdag.core.model import detail, summarize
    from gitdag.core.summary import DETAILED

    return summarize(node), detail(node) if node.status in DETAILED else None


def summaries_of(snapshot: Snapshot) -> dict[str, NodeSummary]:
    """Return a mutable copy of a snapshot's summaries (for building the next snapshot)."""
    return dict(snapshot.nodes)
