"""core/replay.py: one local transition replayed on a remote graph that moved on."""

from __future__ import annotations

import datetime as dt

from gitdag.core import edits, human_verbs, lifecycle
from gitdag.core.commit_message import step_info
from gitdag.core.model import GraphFile, Node, NodeSummary, Status, summarize
from gitdag.core.replay import REPLAYED, LocalStep, replay
from gitdag.core.transitions import Rejected, Transition, message

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
GRAPH = GraphFile(created_at=NOW)


def node(nid: str, **kw: object) -> Node:
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return Node.model_validate(base)


def step(t: Transition, before: dict[str, Node], sha: str = "f" * 40) -> LocalStep:
    after = {n.id: n for n in t.put}
    ids = sorted(set(after) | set(t.remove))
    info = step_info(message(t, "person <p@example.com>"))
    return LocalStep(sha, info, t.summary, {k: v for k, v in before.items() if k in ids},
                     after, ids)  # fmt: skip


def summaries(nodes: dict[str, Node]) -> dict[str, NodeSummary]:
    return {nid: summarize(n) for nid, n in nodes.items()}


def test_an_add_lands_on_a_graph_that_moved_and_names_its_original() -> None:
    x = node("x")
    local = edits.add_transition({"x": summarize(x)}, {"id": "z", "title": "Z", "deps": ["x"]},
                                 NOW)  # fmt: skip
    assert isinstance(local, Transition)
    done = node("x", status="done", attempts=1, outputs={"summary": "ok"})
    out = replay(step(local, {}), {}, GRAPH, summaries({"x": done}))
    assert isinstance(out, Transition)
    assert out.verb == "add" and out.subject == "z" and [n.id for n in out.put] == ["z"]
    assert (REPLAYED, "f" * 40) in out.trailers


def test_a_field_both_sides_changed_is_a_conflict_naming_the_node() -> None:
    x = node("x")
    cancel = human_verbs.cancel(x, now=NOW, by="person")
    assert isinstance(cancel, Transition)
    done = node("x", status="done", attempts=1, outputs={"summary": "ok"})
    out = replay(step(cancel, {"x": x}), {"x": done}, GRAPH, summaries({"x": done}))
    assert isinstance(out, Rejected) and out.nodes == ("x",)
    assert "field status" in str(out) and "(remote: 'done', here: 'cancelled')" in str(out)


def test_a_change_the_remote_already_has_is_nothing_to_replay() -> None:
    x = node("x")
    cancel = human_verbs.cancel(x, now=NOW, by="person")
    assert isinstance(cancel, Transition)
    there = cancel.put[0]
    out = replay(step(cancel, {"x": x}), {"x": there}, GRAPH, summaries({"x": there}))
    assert out is None


def test_a_merge_that_breaks_the_rules_of_its_verb_is_refused() -> None:
    """A claim merges cleanly with a remote edit that added an unfinished dep: not legal."""
    x, y = node("x"), node("y")
    claim = lifecycle.claim(x, worker="laptop", now=NOW, lease_s=60)
    assert isinstance(claim, Transition)
    edited = x.model_copy(update={"deps": ("y",)})
    now = {"x": edited, "y": y}
    out = replay(step(claim, {"x": x}), {"x": edited}, GRAPH, summaries(now))
    assert isinstance(out, Rejected) and out.nodes == ("x",)
    assert "cannot be replayed" in str(out)
    assert x.status is Status.OPEN
