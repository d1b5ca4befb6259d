"""The light forms the read-only commands load without the models (issue 18 part 5).

The parse cache keeps each node's summary, and a running or merging node's status detail, in a
table read back without pydantic; the index cache pickles a snapshot's graph apart, so loading
it builds no model until something asks for the graph.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest

from gitdag.core import codec, lifecycle
from gitdag.core.model import GraphFile, Hold, HoldKind, Node, Status, detail, summarize
from gitdag.core.summary import GraphSummary, HoldSummary, NodeDetail
from gitdag.store.cache import IndexCache, ParseCache
from gitdag.store.snapshot import Layered, Snapshot, StoredGraph

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _node(nid: str, **fields: object) -> Node:
    return Node.model_validate({"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW,
                                **fields})  # fmt: skip


def test_the_light_table_answers_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "nodes.sqlite"
    open_node = _node("a", deps=["b"], priority=3)
    claimed = lifecycle.claim(_node("b"), worker="w@h:1", now=NOW, lease_s=60)
    assert not isinstance(claimed, lifecycle.Rejected)
    running = claimed.put[0]
    first = ParseCache(path)
    first.put("blob-a", open_node)
    first.put("blob-b", running)
    first.close()

    again = ParseCache(path)  # another process: nothing in memory
    light_a = again.light("blob-a")
    light_b = again.light("blob-b")
    assert light_a == (summarize(open_node), None)  # an open node has no detail
    assert light_b is not None and light_b[0] == summarize(running)
    assert light_b[1] == NodeDetail(attempt=1, worker="w@h:1", since=NOW, iteration=1,
                                    updated_at=NOW, hold=None)  # fmt: skip
    assert again.light("blob-unknown") is None
    again.close()


def test_a_held_merge_keeps_its_hold_in_the_detail() -> None:
    hold = Hold(kind=HoldKind.TARGET_DIRTY, reason="edits", repair="commit them", since=NOW)
    merging = _node("m", status=Status.MERGING, attempts=1, hold=hold)
    assert detail(merging).hold == HoldSummary(HoldKind.TARGET_DIRTY, "edits", "commit them", NOW)


def test_nodes_parsed_before_the_light_table_get_their_row_when_read(tmp_path: Path) -> None:
    path = tmp_path / "nodes.sqlite"
    cache = ParseCache(path)
    cache.put("blob-a", _node("a"))
    cache.close()
    # A cache file from before the light table: only the full node is there.
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM light")
    older = ParseCache(path)
    assert older.light("blob-a") is None
    assert older.get("blob-a") == _node("a")
    older.close()
    newer = ParseCache(path)
    assert newer.light("blob-a") == (summarize(_node("a")), None)
    newer.close()


def test_a_pickled_snapshot_keeps_its_graph_apart_until_asked(tmp_path: Path) -> None:
    graph = codec.load_graph(codec.dump(GraphFile(goal="g", target="t/x", created_at=NOW)))
    nodes = {n.id: summarize(n) for n in (_node("a"), _node("b", deps=["a"]))}
    snap = Snapshot("c" * 40, "d" * 40, graph, Layered(nodes), Layered({"a": "1", "b": "2"}))
    index = IndexCache(tmp_path / "index.pickle")
    index.save(snap)
    back = index.load()
    assert back is not None
    assert isinstance(back.stored_graph, StoredGraph)  # not unpickled yet
    assert back.graph_summary == GraphSummary(goal="g", target="t/x", paused=False)
    assert dict(back.nodes) == nodes and type(back.nodes["a"]).__name__ == "NodeSummary"
    assert back.graph == graph  # unpickled on first use
    assert back == snap
    assert pickle.loads(pickle.dumps(back)) == snap


def test_an_index_of_an_older_format_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "index.pickle"
    path.write_bytes(pickle.dumps({"format": 2, "snapshot": None}))
    assert IndexCache(path).load() is None


def test_a_snapshot_is_immutable() -> None:
    snap = Snapshot(None, None, GraphFile(created_at=NOW), {}, {})
    with pytest.raises(AttributeError, match="immutable"):
        snap.head = "x"  # type: ignore[misc]
