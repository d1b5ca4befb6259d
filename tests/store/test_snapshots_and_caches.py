"""Snapshots: incremental loads through tree diffs equal full loads; caches under .dagain/local."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gitdag import actions
from gitdag.core import edits
from gitdag.core.model import Status
from gitdag.core.transitions import Transition
from gitdag.store.snapshot import FOLD_AT, Layered
from gitdag.store.state import Committed, StateStore
from tests.conftest import git
from tests.store.helpers import node_file, state_checkout

# --- Layered: an immutable mapping that behaves exactly like a dict ------------------------------

keys = st.sampled_from([f"k{i}" for i in range(40)])
ops = st.lists(
    st.tuples(st.dictionaries(keys, st.integers(), max_size=6), st.lists(keys, max_size=4)),
    max_size=120,
)


@given(st.dictionaries(keys, st.integers()), ops)
def test_layered_behaves_like_a_dict(start: dict[str, int], steps: list) -> None:  # type: ignore[type-arg]
    model = dict(start)
    layered = Layered(dict(start))
    history = [(layered, dict(model))]
    for put, remove in steps:
        layered = layered.changed(put, remove)
        for k in remove:
            if k not in put:
                model.pop(k, None)
        model.update(put)
        history.append((layered, dict(model)))
    # Every version still reads as it did when made (nothing shared was mutated).
    for version, expected in history:
        assert dict(version) == expected
        assert len(version) == len(expected)
        assert dict(version.items()) == expected
        assert sorted(version.values()) == sorted(expected.values())
        assert set(version) == set(expected)
        for k in [f"k{i}" for i in range(40)]:
            assert (k in version) == (k in expected)
            assert version.get(k) == expected.get(k)
        assert version.flat() == expected
        assert dict(pickle.loads(pickle.dumps(version))) == expected


def test_layered_folds_its_delta_into_a_new_base() -> None:
    base = Layered({f"k{i}": i for i in range(10_000)})
    v = base
    for i in range(2000):
        v = v.changed({f"new{i}": i})
    assert len(v) == 12_000 and v["new1999"] == 1999 and "new0" in v
    assert len(v._delta) <= FOLD_AT < 2000  # folded: lookups stay one or two dict probes
    assert len(base) == 10_000 and "new0" not in base


# --- snapshots through the store ---------------------------------------------------------------


def _open(repo: Path, **kw: object) -> StateStore:
    return StateStore.open(repo, **kw)  # type: ignore[arg-type]


def _init_with(repo: Path, ids: list[str]) -> None:
    with _open(repo) as store:
        actions.init(store, "goal", "dagain/integration")
        for nid in ids:
            actions.add(store, {"id": nid, "title": f"node {nid}"})


def _same(a: object, b: object) -> None:
    from gitdag.store.snapshot import Snapshot

    assert isinstance(a, Snapshot) and isinstance(b, Snapshot)
    assert (a.head, a.tree, a.graph, a.graph_blob) == (b.head, b.tree, b.graph, b.graph_blob)
    assert dict(a.nodes) == dict(b.nodes)
    assert dict(a.blobs) == dict(b.blobs)
    assert a.problems == b.problems


def test_warm_index_then_hand_edits_are_read_incrementally(repo: Path) -> None:
    _init_with(repo, ["a", "b", "c"])
    index = repo / ".dagain" / "local" / "cache" / "index-refs_heads_dagain_state.pickle"
    assert index.is_file()  # the first process left its index for the next
    # A person edits by hand: changes one node, deletes another, adds one.
    with state_checkout(repo, "hand edits") as wt:
        b = node_file(wt, "b")
        b.write_text(b.read_text().replace("status: open", "status: done"))
        node_file(wt, "c").unlink()
        node_file(wt, "d").write_text(
            node_file(wt, "a").read_text().replace("id: a", "id: d").replace("node a", "node d")
        )
    with _open(repo) as warm, _open(repo, use_disk_cache=False) as cold:
        w, c = warm.snapshot(), cold.snapshot()
        _same(w, c)
        assert set(w.nodes) == {"plan-000", "a", "b", "d"}
        assert w.nodes["b"].status is Status.DONE
        assert warm.node(w, "d").title == "node d"


def test_incremental_equals_full_over_a_history(repo: Path) -> None:
    _init_with(repo, [f"n{i}" for i in range(12)])
    heads = git(repo, "rev-list", "dagain/state").split()
    with _open(repo, use_disk_cache=False) as store:
        # Walk backwards and forwards through history with one store: every step is a tree
        # diff from the previous snapshot; each must equal a fresh full read of that commit.
        for commit in [*heads, *reversed(heads)]:
            inc = store.snapshot_of(commit)
            with _open(repo, use_disk_cache=False) as fresh:
                _same(inc, fresh.snapshot_of(commit))


def test_transact_snapshot_equals_a_fresh_read(repo: Path) -> None:
    _init_with(repo, ["a"])
    with _open(repo) as store:
        snap = store.snapshot()
        node = store.node(snap, "a")
        now = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
        out = store.transact(
            lambda s, _: Transition(
                verb="claim", subject="a", from_status="open", to_status="running",
                put=(node.model_copy(update={"status": Status.RUNNING, "updated_at": now}),),
            ),
            actor="t",
        )  # fmt: skip
        assert isinstance(out, Committed) and out.tries == 1
        with _open(repo, use_disk_cache=False) as fresh:
            _same(out.snapshot, fresh.snapshot())
        assert git(repo, "rev-parse", "dagain/state").strip() == out.head


def test_corrupt_caches_cost_speed_not_correctness(repo: Path) -> None:
    _init_with(repo, ["a", "b"])
    cache = repo / ".dagain" / "local" / "cache"
    for f in cache.iterdir():
        f.write_bytes(b"\x00garbage" * 10)
    with _open(repo) as store:
        snap = store.snapshot()
        assert set(snap.nodes) == {"plan-000", "a", "b"}
        assert store.node(snap, "a").title == "node a"
        actions.add(store, {"id": "c", "title": "t"})
    with _open(repo) as store:
        assert set(store.snapshot().nodes) == {"plan-000", "a", "b", "c"}


def test_a_broken_tree_is_never_cached(repo: Path) -> None:
    _init_with(repo, ["a"])
    index = repo / ".dagain" / "local" / "cache" / "index-refs_heads_dagain_state.pickle"
    before = index.read_bytes()
    with state_checkout(repo, "break") as wt:
        node_file(wt, "a").write_text("not: [valid\n")
    with _open(repo) as store:
        snap = store.snapshot(strict=False)
        assert snap.problems and snap.problems[0].path.endswith("/a.yaml")
    assert index.read_bytes() == before


def test_index_is_not_rewritten_by_a_reader(repo: Path) -> None:
    _init_with(repo, ["a"])
    index = repo / ".dagain" / "local" / "cache" / "index-refs_heads_dagain_state.pickle"
    stamp = index.stat().st_mtime_ns
    with _open(repo) as store:
        actions.status(store)
    assert index.stat().st_mtime_ns == stamp


def test_parse_cache_is_keyed_by_blob(repo: Path) -> None:
    import sqlite3

    _init_with(repo, ["a", "b"])
    blobs = {
        line.split()[2] for line in git(repo, "ls-tree", "-r", "dagain/state", "nodes").splitlines()
    }
    db = sqlite3.connect(repo / ".dagain" / "local" / "cache" / "nodes.sqlite")
    stored = {row[0] for row in db.execute("SELECT blob FROM nodes")}
    db.close()
    assert blobs <= stored


def test_recompute_on_a_moved_head(repo: Path) -> None:
    """A transaction whose head moved under it recomputes on the new head (never a rebase)."""
    _init_with(repo, ["a"])
    seen: list[set[str]] = []
    with _open(repo) as mine, _open(repo) as theirs:
        mine.snapshot()

        def compute(snap, now):  # type: ignore[no-untyped-def]
            seen.append(set(snap.nodes))
            if len(seen) == 1:  # another writer commits first
                actions.add(theirs, {"id": "theirs", "title": "t"})
            return edits.add_transition(snap.nodes, {"id": "mine", "title": "t"}, now)

        out = mine.transact(compute, actor="t")
        assert isinstance(out, Committed) and out.tries == 2
        assert "theirs" not in seen[0] and "theirs" in seen[1]
        assert set(out.snapshot.nodes) == {"plan-000", "a", "theirs", "mine"}


def test_index_is_rewritten_only_when_far_behind(repo: Path) -> None:
    from gitdag.store.state import INDEX_SLACK

    _init_with(repo, ["a"])
    index = repo / ".dagain" / "local" / "cache" / "index-refs_heads_dagain_state.pickle"
    stamp = index.stat().st_mtime_ns
    with _open(repo) as store:
        actions.add(store, {"id": "b", "title": "t"})  # a small step: the saved index stays
    assert index.stat().st_mtime_ns == stamp
    with _open(repo) as store:  # ... and the next reader diffs one node on top of it
        assert set(store.snapshot().nodes) == {"plan-000", "a", "b"}
    assert index.stat().st_mtime_ns == stamp
    with _open(repo) as store:
        for i in range(INDEX_SLACK + 1):
            actions.add(store, {"id": f"bulk-{i}", "title": "t"})
    assert index.stat().st_mtime_ns != stamp
    saved = pickle.loads(index.read_bytes())["snapshot"]
    assert len(saved.nodes) == 3 + INDEX_SLACK + 1
