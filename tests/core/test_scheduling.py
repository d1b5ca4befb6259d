from __future__ import annotations

import datetime as dt

from gitdag.core import scheduling
from gitdag.core.model import Node, summarize

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def s(nid: str, **kw: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return summarize(Node.model_validate(base))


def test_globs_overlap_is_conservative() -> None:
    assert scheduling.globs_overlap("src/*.py", "src/x.py")
    assert scheduling.globs_overlap("src/**", "src/a/b.py")
    assert not scheduling.globs_overlap("src/a/**", "src/b/*.py")
    assert not scheduling.globs_overlap("docs/x.md", "docs/y.md")
    assert scheduling.globs_overlap("docs", "docs/y.md")


def test_plan_respects_capacity_priority_and_ownership() -> None:
    nodes = {
        "a": s("a", ownership=["src/**"]),
        "b": s("b", ownership=["src/x.py"], priority=5),
        "c": s("c", ownership=["docs/**"]),
        "d": s("d"),
        "q": s("q", kind="checkpoint"),
    }
    plan = scheduling.plan(nodes, capacity=3, now=NOW)
    ids = [d.node_id for d in plan]
    assert ids[0] == "b"  # highest priority first
    assert "a" not in ids  # overlaps b's ownership
    assert "q" in ids and next(d for d in plan if d.node_id == "q").action == "checkpoint"
    assert len([d for d in plan if d.action == "run"]) == 3
    assert scheduling.plan(nodes, capacity=3, now=NOW, paused=True) == []
    held = scheduling.plan(nodes, capacity=5, now=NOW, in_flight=["b"])
    assert "a" not in [d.node_id for d in held]


def test_labels_route_work() -> None:
    nodes = {"g": s("g", labels=["gpu"]), "p": s("p")}
    assert [d.node_id for d in scheduling.plan(nodes, capacity=5, now=NOW, labels=[])] == ["p"]
    got = {d.node_id for d in scheduling.plan(nodes, capacity=5, now=NOW, labels=["gpu"])}
    assert got == {"g", "p"}


def test_next_wakeup_and_outcome() -> None:
    later = NOW + dt.timedelta(seconds=30)
    nodes = {"a": s("a", not_before=later), "b": s("b", deps=["a"])}
    assert scheduling.next_wakeup(nodes, NOW) == later
    assert scheduling.can_progress(nodes, NOW, paused=False)
    assert not scheduling.can_progress(nodes, NOW, paused=True)
    done = {"a": s("a", status="done"), "c": s("c", status="cancelled")}
    assert scheduling.outcome_code(done) == 0
    assert scheduling.outcome_code({"a": s("a", status="failed")}) == 1
