"""Graph algorithms against brute-force definitions, on random DAGs (acyclic by construction)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import graph
from gitdag.core.model import SATISFIED, TERMINAL, NodeSummary, Status
from tests.strategies import EPOCH, Dag, dags, summary


def brute_ready(nodes: dict[str, NodeSummary], now: dt.datetime) -> set[str]:
    """Spec §3: open, every dep done, every after terminal, not_before passed."""
    found = set()
    for nid, n in nodes.items():
        if n.status is not Status.OPEN:
            continue
        if n.not_before is not None and n.not_before > now:
            continue
        if not all(d in nodes and nodes[d].status is Status.DONE for d in n.deps):
            continue
        if not all(a in nodes and nodes[a].status in TERMINAL for a in n.after):
            continue
        found.add(nid)
    return found


def brute_blocked(nodes: dict[str, NodeSummary]) -> set[str]:
    """Open nodes with a failed/cancelled dep, transitively through open deps (a fixpoint)."""
    blocked: set[str] = set()
    changed = True
    while changed:
        changed = False
        for nid, n in nodes.items():
            if n.status is not Status.OPEN or nid in blocked:
                continue
            for d in n.deps:
                dep = nodes.get(d)
                if dep is not None and (
                    dep.status in (Status.FAILED, Status.CANCELLED) or d in blocked
                ):
                    blocked.add(nid)
                    changed = True
                    break
    return blocked


@given(dags())
def test_ready_equals_brute_force(dag: Dag) -> None:
    got = graph.ready(dag.nodes, dag.now)
    assert set(got) == brute_ready(dag.nodes, dag.now)
    assert len(got) == len(set(got))
    # Claim order: priority (high first), then kind order, creation time, id.
    keys = [graph.claim_key(dag.nodes[nid]) for nid in got]
    assert keys == sorted(keys)


@given(dags())
def test_paused_graph_has_nothing_ready(dag: Dag) -> None:
    assert graph.ready(dag.nodes, dag.now, paused=True) == []


@given(dags())
def test_blocked_equals_brute_force(dag: Dag) -> None:
    assert set(graph.blocked(dag.nodes)) == brute_blocked(dag.nodes)


@given(dags(), st.booleans())
def test_open_nodes_are_ready_blocked_or_waiting_with_a_reason(dag: Dag, paused: bool) -> None:
    """Every open node is in exactly one of ready, blocked, waiting; waiting ones say why."""
    blocked = graph.blocked(dag.nodes)
    stopped = [n for n, s in dag.nodes.items() if s.status in (Status.FAILED, Status.CANCELLED)]
    assert graph.blocked(dag.nodes, stopped) == blocked
    ready, waiting = graph.open_sets(dag.nodes, dag.now, paused=paused, blocked_ids=blocked)
    assert ready == graph.ready(dag.nodes, dag.now, paused=paused)
    opened = {nid for nid, n in dag.nodes.items() if n.status is Status.OPEN}
    assert set(ready) | set(blocked) | set(waiting) == opened
    assert not (set(ready) & set(waiting)) and not (set(blocked) & set(waiting))
    for nid, reasons in waiting.items():
        node = dag.nodes[nid]
        assert reasons
        assert ("graph paused" in reasons) == paused
        for dep in node.deps:
            if dep in dag.nodes and dag.nodes[dep].status not in SATISFIED:
                shown = "blocked" if dep in blocked else dag.nodes[dep].status.value
                assert f"dep {dep}: {shown}" in reasons


@given(dags())
def test_topological_order_respects_every_edge(dag: Dag) -> None:
    order = graph.topological_order(dag.nodes)
    assert sorted(order) == sorted(dag.nodes)
    pos = {nid: i for i, nid in enumerate(order)}
    for nid, n in dag.nodes.items():
        for ref in (*n.deps, *n.after):
            assert pos[ref] < pos[nid], f"{ref} must come before {nid}"


@given(dags())
def test_acyclic_graphs_have_no_cycle(dag: Dag) -> None:
    assert graph.find_cycle(dag.nodes) is None


@given(dags(max_nodes=25), st.data())
def test_find_cycle_finds_a_planted_cycle(dag: Dag, data: st.DataObject) -> None:
    ids = dag.order
    if len(ids) < 1:
        return
    # Plant a back edge: an earlier node now depends on a later (or the same) one, closing a loop
    # through a chain of deps we make sure exists.
    length = data.draw(st.integers(1, min(len(ids), 6)))
    start = data.draw(st.integers(0, len(ids) - length))
    chain = ids[start : start + length]
    nodes = dict(dag.nodes)
    for prev, nxt in itertools.pairwise(chain):
        n = nodes[nxt]
        nodes[nxt] = n._replace(deps=(*n.deps, prev) if prev not in n.deps else n.deps)
    first = nodes[chain[0]]
    field = data.draw(st.sampled_from(["deps", "after"]))
    if field == "deps":
        nodes[chain[0]] = first._replace(deps=(*first.deps, chain[-1]))
    else:
        nodes[chain[0]] = first._replace(after=(*first.after, chain[-1]))
    cycle = graph.find_cycle(nodes)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    # Every step of the reported cycle is a real edge: node -> something it waits for.
    for a, b in itertools.pairwise(cycle):
        assert b in graph.edges(nodes[a]), (a, b, cycle)
    # Searching only from one of the planted nodes finds it too (what `add` does).
    assert graph.find_cycle(nodes, roots=[chain[0]]) is not None
    with pytest.raises(ValueError, match="cycle"):
        graph.topological_order(nodes)


def test_cycle_names_its_nodes() -> None:
    nodes = {
        "a": summary("a", deps=("c",)),
        "b": summary("b", deps=("a",)),
        "c": summary("c", deps=("b",)),
        "d": summary("d", deps=("a",)),
    }
    cycle = graph.find_cycle(nodes)
    assert cycle is not None and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    with pytest.raises(ValueError, match=r"cycle: .*a.*->"):
        graph.topological_order(nodes)


def test_self_dependency_is_a_cycle() -> None:
    assert graph.find_cycle({"a": summary("a", deps=("a",))}) == ["a", "a"]


def test_unknown_refs_are_named_with_their_field() -> None:
    nodes = {
        "a": summary("a", deps=("ghost",), after=("spook",), parent="nobody"),
        "b": summary("b", deps=("a",)),
    }
    assert sorted(graph.unknown_refs(nodes)) == [
        ("a", "after", "spook"), ("a", "deps", "ghost"), ("a", "parent", "nobody"),
    ]  # fmt: skip


def test_backoff_and_after_semantics() -> None:
    now = EPOCH + dt.timedelta(hours=1)
    nodes = {
        "done": summary("done", status=Status.DONE),
        "failed": summary("failed", status=Status.FAILED),
        "later": summary("later", not_before=now + dt.timedelta(seconds=1)),
        "now": summary("now", not_before=now),
        "needs-done": summary("needs-done", deps=("failed",)),
        "after-failed": summary("after-failed", after=("failed",)),
        "after-open": summary("after-open", after=("later",)),
    }
    assert set(graph.ready(nodes, now)) == {"now", "after-failed"}
    assert graph.blocked(nodes) == ["needs-done"]


def test_scope_counts_and_descendants() -> None:
    from gitdag.core.model import Kind

    nodes = {
        "p": summary("p", kind=Kind.PLAN),
        "c1": summary("c1", parent="p"),
        "c2": summary("c2", parent="p", kind=Kind.PLAN),
        "g": summary("g", parent="c2", status=Status.DONE),
        "other": summary("other"),
    }
    assert graph.scope(nodes, "p") == {"c1", "c2", "g"}
    assert graph.scope(nodes, "c1") == {"c1"}
    assert graph.nearest_plan(nodes, "g") == "c2"
    assert graph.counts(nodes.values())["open"] == 4
    assert graph.counts(nodes.values())["done"] == 1
    assert graph.dependents({"a": summary("a"), "b": summary("b", deps=("a",))}, "a") == ["b"]
