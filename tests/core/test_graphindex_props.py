"""The incremental GraphIndex equals the full recomputations after any sequence of transitions."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import graph, scheduling
from gitdag.core.graphindex import GraphIndex
from gitdag.core.model import Kind, NodeSummary, Status
from tests.strategies import EPOCH, Dag, dags, summary

IDS = [f"n{i:03d}" for i in range(14)]  # changes may name ids the graph does not have yet


@st.composite
def change(draw: st.DrawFn, nodes: dict[str, NodeSummary], now: dt.datetime) -> dict[str, object]:
    """One node's change: a status move (most), a removal, an addition or an edit of edges."""
    nid = draw(st.sampled_from(sorted(nodes) or IDS) if nodes else st.sampled_from(IDS))
    what = draw(st.sampled_from(["status", "status", "status", "remove", "put"]))
    if what == "status" and nid in nodes:
        return {"id": nid, "node": nodes[nid]._replace(status=draw(st.sampled_from(list(Status))))}
    if what == "remove":
        return {"id": nid, "node": None}
    # put: a new node, or an existing one rewritten (edges, priority, backoff, kind)
    others = [i for i in IDS if i != nid]
    offset = draw(st.integers(-60, 60))
    node = summary(
        nid,
        status=draw(st.sampled_from(list(Status))),
        kind=draw(st.sampled_from(list(Kind))),
        deps=tuple(draw(st.lists(st.sampled_from(others), max_size=3))),
        after=tuple(draw(st.lists(st.sampled_from(others), max_size=2))),
        not_before=draw(st.none() | st.just(now + dt.timedelta(minutes=offset))),
        priority=draw(st.integers(-1, 1)),
        created_at=EPOCH + dt.timedelta(seconds=draw(st.integers(0, 50))),
    )
    return {"id": nid, "node": node}


def check(index: GraphIndex, nodes: dict[str, NodeSummary], now: dt.datetime) -> None:
    assert index.ready(now) == graph.ready(nodes, now)
    assert index.ready(now, paused=True) == []
    assert index.counts() == graph.counts(nodes.values())
    assert index.next_wakeup(now) == scheduling.next_wakeup(nodes, now)
    for status in Status:
        assert index.ids(status) == {n for n, s in nodes.items() if s.status is status}
    wanted = sum(1 for n in graph.ready(nodes, dt.datetime.max.replace(tzinfo=dt.UTC))
                 if nodes[n].kind is Kind.CHECKPOINT)  # fmt: skip
    assert index.ready_checkpoints() == wanted


@given(dags(max_nodes=12), st.data())
def test_index_follows_any_sequence_of_transitions(dag: Dag, data: st.DataObject) -> None:
    nodes = dict(dag.nodes)
    index = GraphIndex.build(nodes)
    check(index, nodes, dag.now)
    for _ in range(data.draw(st.integers(1, 12))):
        changes = data.draw(st.lists(change(nodes, dag.now), min_size=1, max_size=4))
        for item in changes:  # a transition may touch several nodes; later wins
            if item["node"] is None:
                nodes.pop(str(item["id"]), None)
            else:
                node = item["node"]
                assert isinstance(node, NodeSummary)
                nodes[node.id] = node
        # More ids than changed is harmless: sometimes name an untouched one too.
        extra = data.draw(st.lists(st.sampled_from(IDS), max_size=1))
        index.update(nodes, [str(c["id"]) for c in changes] + extra)
        check(index, nodes, dag.now)


GLOBS = [(), (), ("src/a/**",), ("src/*",), ("docs/x.md",)]


@given(
    dags(max_nodes=12),
    st.integers(0, 3),
    st.lists(st.sampled_from(IDS), max_size=3),
    st.lists(st.sampled_from(GLOBS), min_size=12, max_size=12),
)
def test_plan_with_index_equals_plan_without(
    dag: Dag, capacity: int, flying: list[str], globs: list[tuple[str, ...]]
) -> None:
    for i, nid in enumerate(sorted(dag.nodes)):  # ownership: running nodes hold their globs
        dag.nodes[nid] = dag.nodes[nid]._replace(ownership=globs[i])
    index = GraphIndex.build(dag.nodes)
    for now in (dag.now, dag.now + dt.timedelta(hours=3)):
        plain = scheduling.plan(dag.nodes, capacity=capacity, now=now, in_flight=flying)
        fast = scheduling.plan(dag.nodes, capacity=capacity, now=now, in_flight=flying, index=index)
        assert fast == plain
        assert scheduling.can_progress(dag.nodes, now, paused=False, index=index) == (
            scheduling.can_progress(dag.nodes, now, paused=False)
        )
    # A caller holding ready nodes back passes the graph without them; the index is the whole's.
    held = set(graph.ready(dag.nodes, dag.now)[:2])
    kept = {k: v for k, v in dag.nodes.items() if k not in held}
    assert scheduling.plan(kept, capacity=capacity, now=dag.now, index=index) == scheduling.plan(
        kept, capacity=capacity, now=dag.now
    )
