"""`flow.follow` finds the nodes waiting on a settled one through the index, as the scan does.

The scan reads every summary of the graph (9 ms at 100k nodes, on every transition that settles
a node); `GraphIndex.waiting_on` reads only the edges into the settled ids. Both must give the
same waiters, and so the same skips, in the same order.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import flow
from gitdag.core.graphindex import GraphIndex
from gitdag.core.model import TERMINAL, Node, NodeSummary, Status, summarize
from gitdag.core.transitions import Transition
from tests.strategies import EPOCH, Dag, dags


def full(s: NodeSummary, when: str | None, skip: bool) -> Node:
    """A full node with the summary's fields and the workflow fields drawn for it."""
    return Node(
        id=s.id, title=s.id, kind=s.kind, status=s.status, deps=s.deps, after=s.after,
        when=when, skipped_deps="skip" if skip else None, created_at=EPOCH, updated_at=EPOCH,
    )  # fmt: skip


@st.composite
def graphs(draw: st.DrawFn) -> tuple[Dag, dict[str, Node]]:
    """A random DAG whose nodes sometimes carry a `when:` on an upstream or `skipped_deps: skip`."""
    dag = draw(dags(max_nodes=16))
    nodes: dict[str, Node] = {}
    for nid, s in list(dag.nodes.items()):
        # Mostly finished or open, so that settling one node often finishes a waiter's upstream.
        status = draw(st.sampled_from([Status.DONE, Status.SKIPPED, Status.OPEN, Status.FAILED]))
        s = dag.nodes[nid] = s._replace(status=status)
        upstream = sorted(set(s.deps) | set(s.after))
        when = None
        if upstream and draw(st.booleans()):
            ref = draw(st.sampled_from(upstream))
            when = f"{ref}.status == '{draw(st.sampled_from(['done', 'failed', 'skipped']))}'"
        nodes[nid] = full(s, when, skip=draw(st.booleans()))
    return dag, nodes


@given(dags(max_nodes=16), st.data())
def test_indexed_waiters_equal_the_scan(dag: Dag, data: st.DataObject) -> None:
    index = GraphIndex.build(dag.nodes)
    ids = set(data.draw(st.lists(st.sampled_from(sorted(dag.nodes) or ["x"]), max_size=4)))
    assert flow._waiting_on(dag.nodes, {}, ids, index.waiting_on) == flow._waiting_on(
        dag.nodes, {}, ids, None
    )


@given(graphs(), st.data())
def test_follow_with_the_index_equals_follow_with_the_scan(
    graph: tuple[Dag, dict[str, Node]], data: st.DataObject
) -> None:
    dag, nodes = graph
    if not nodes:
        return
    # Settle a few nodes (a result, a cancel) and maybe add an open one waiting on them.
    moved = data.draw(st.lists(st.sampled_from(sorted(nodes)), min_size=1, max_size=3, unique=True))
    put = [
        nodes[nid].model_copy(update={"status": data.draw(st.sampled_from(sorted(TERMINAL)))})
        for nid in moved
    ]
    if data.draw(st.booleans()):
        put.append(full(dag.nodes[moved[0]]._replace(id="fresh", status=Status.OPEN,
                                                     deps=tuple(moved), after=()),
                        when=f"{moved[0]}.status == 'done'", skip=True))  # fmt: skip
    transition = Transition(verb="done", subject=moved[0], put=tuple(put))
    index = GraphIndex.build(dag.nodes)
    fast = flow.follow(transition, dag.nodes, nodes.__getitem__, EPOCH, index.waiting_on)
    slow = flow.follow(transition, dag.nodes, nodes.__getitem__, EPOCH)
    assert fast == slow


def test_a_settling_transition_reads_no_summary_but_its_waiters() -> None:
    """On a 5,000-node graph, settling one node looks at its two waiters, not the other nodes."""

    class Guarded(dict[str, NodeSummary]):
        reads = 0

        def items(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the graph was scanned")

        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            Guarded.reads += 1
            return super().get(key, default)

    nodes: dict[str, Node] = {}
    for i in range(5000):
        deps = (f"n{i - 1:05d}",) if i % 1000 else ()
        node = Node(id=f"n{i:05d}", title="t", deps=deps, when="true" if i == 1 else None,
                    created_at=EPOCH, updated_at=EPOCH)  # fmt: skip
        nodes[node.id] = node
    nodes["side"] = Node(id="side", title="t", after=("n00000",), created_at=EPOCH,
                         updated_at=EPOCH)  # fmt: skip
    summaries = Guarded({nid: summarize(n) for nid, n in nodes.items()})
    index = GraphIndex.build(summaries)
    Guarded.reads = 0
    done = nodes["n00000"].model_copy(update={"status": Status.DONE})
    transition = Transition(verb="done", subject="n00000", put=(done,))
    out = flow.follow(transition, summaries, nodes.__getitem__, EPOCH, index.waiting_on)
    assert out == transition  # `when: true` does not skip
    assert Guarded.reads <= 2 * 2  # n00001 and side, each read once or twice
