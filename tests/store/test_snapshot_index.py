"""A snapshot's index, handed down through commits and incremental reads, equals a recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gitdag import actions
from gitdag.core import graph, scheduling
from gitdag.core.model import Status
from gitdag.core.transitions import Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from tests.conftest import make_repo

IDS = [f"n{i}" for i in range(8)]
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _matches(snap: Snapshot) -> None:
    nodes = dict(snap.nodes)
    assert snap.index.ready(NOW) == graph.ready(nodes, NOW)
    assert snap.index.counts() == graph.counts(nodes.values())
    assert snap.index.next_wakeup(NOW) == scheduling.next_wakeup(nodes, NOW)
    assert snap.index.ids(Status.MERGING) == {
        n for n, s in nodes.items() if s.status is Status.MERGING
    }


def _step(
    store: StateStore, what: str, nid: str, status: Status, deps: list[str]
) -> Callable[[Snapshot, dt.datetime], Transition | None]:
    def compute(snap: Snapshot, now: dt.datetime) -> Transition | None:
        if what == "remove":
            if nid not in snap.nodes or any(
                nid in (*n.deps, *n.after, n.parent) for n in snap.nodes.values()
            ):
                return None  # a node others name stays (the tree must be valid)
            return Transition(verb="remove", subject=nid, remove=(nid,))
        if what == "add":
            if nid in snap.nodes:
                return None
            node = store.node(snap, next(iter(snap.nodes)))
            new = node.model_copy(update={"id": nid, "deps": tuple(
                d for d in deps if d in snap.nodes)})  # fmt: skip
            return Transition(verb="add", subject=nid, put=(new,))
        if nid not in snap.nodes:
            return None
        node = store.node(snap, nid)
        return Transition(
            verb="edit", subject=nid, put=(node.model_copy(update={"status": status}),)
        )

    return compute


steps = st.lists(
    st.tuples(
        st.sampled_from(["status", "status", "add", "remove"]),
        st.sampled_from(IDS),
        st.sampled_from(list(Status)),
        st.lists(st.sampled_from(IDS), max_size=2),
        st.sampled_from(["self", "reader", "old", "none"]),  # who asks for an index afterwards
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=12)
@given(steps)
def test_index_through_commits_and_incremental_reads(tmp_path_factory: object, plan: list) -> None:  # type: ignore[type-arg]
    repo = make_repo(Path(tmp_path_factory.mktemp("r")) / "repo")  # type: ignore[attr-defined]
    with StateStore.open(repo, use_disk_cache=False) as store:
        actions.init(store, "goal", "dagain/integration")
        for nid in IDS[:4]:
            actions.add(store, {"id": nid, "title": nid, "deps": [IDS[0]] if nid != IDS[0] else []})
        snaps = [store.snapshot()]
        _matches(snaps[0])
        with StateStore.open(repo, use_disk_cache=False) as reader:
            _matches(reader.snapshot())
            for what, nid, status, deps, asker in plan:
                store.transact(_step(store, what, nid, status, deps), actor="t")
                snaps.append(store.snapshot())
                if asker == "self":
                    _matches(snaps[-1])
                elif asker == "reader":
                    _matches(reader.snapshot())  # a tree diff from the reader's last snapshot
                elif asker == "old":
                    _matches(snaps[len(snaps) // 2])  # an ancestor, maybe after its index left
            _matches(store.snapshot())
            _matches(reader.snapshot())
            for snap in snaps:
                _matches(snap)
