from __future__ import annotations

import datetime as dt

import pytest

from gitdag.core import judging, lifecycle
from gitdag.core.model import ErrorKind, GraphFile, Node, Status, Work, summarize
from gitdag.core.results import RunnerResult, parse_result
from gitdag.core.transitions import Rejected, Transition

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
GRAPH = GraphFile(created_at=NOW)


def node(nid: str, **kw: object) -> Node:
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return Node.model_validate(base)


def running(n: Node) -> Node:
    t = lifecycle.claim(n, worker="w", now=NOW, lease_s=60)
    assert isinstance(t, Transition)
    return t.put[0]


def graph_with(*nodes: Node) -> dict[str, Node]:
    return {n.id: n for n in nodes}


def judge(
    n: Node, full: dict[str, Node], result: dict[str, object], **kw: object
) -> Transition | Rejected:
    parsed = RunnerResult.model_validate(result)
    summaries = {k: summarize(v) for k, v in full.items()}
    return judging.judge(n, summaries, full, GRAPH, parsed, attempt=n.attempts, now=NOW, **kw)  # type: ignore[arg-type]


def test_plan_adds_nodes_in_one_transition() -> None:
    plan = running(node("plan", kind="plan"))
    full = graph_with(plan)
    t = judge(
        plan,
        full,
        {
            "status": "success",
            "summary": "planned",
            "next": {
                "addNodes": [
                    {"id": "t1", "title": "one"},
                    {"id": "t2", "title": "two", "dependsOn": ["t1"]},
                    {"id": "v", "title": "verify", "type": "verify", "deps": ["t1", "t2"]},
                ]
            },
        },
    )
    assert isinstance(t, Transition) and t.verb == "complete"
    ids = [n.id for n in t.put]
    assert ids == ["plan", "t1", "t2", "v"]
    assert t.put[0].status is Status.DONE and t.put[0].outputs["summary"] == "planned"
    assert all(n.parent == "plan" for n in t.put[1:])
    assert t.put[2].deps == ("t1",)


@pytest.mark.parametrize(
    ("next_", "needle"),
    [
        (
            {
                "addNodes": [
                    {"id": "a", "title": "a", "deps": ["b"]},
                    {"id": "b", "title": "b", "deps": ["a"]},
                ]
            },
            "cycle",
        ),
        ({"addNodes": [{"id": "a", "title": "a", "deps": ["ghost"]}]}, "unknown node 'ghost'"),
        ({"addNodes": [{"id": "other", "title": "different"}]}, "already exists"),
        ({"addNodes": [{"id": f"n{i}", "title": "x"} for i in range(101)]}, "more than 100"),
        ({"setStatus": [{"id": "other", "status": "cancelled"}]}, "outside this node's scope"),
    ],
)
def test_bad_proposals_fail_the_attempt_and_apply_nothing(
    next_: dict[str, object], needle: str
) -> None:
    plan = running(node("plan", kind="plan"))
    other = node("other")
    t = judge(plan, graph_with(plan, other), {"status": "success", "next": next_})
    assert isinstance(t, Transition) and t.verb == "fail"
    assert [n.id for n in t.put] == ["plan"]
    failed = t.put[0]
    assert failed.status is Status.OPEN and failed.error is not None
    assert failed.error.kind is ErrorKind.INVALID_RESULT and needle in failed.error.summary


def test_same_node_from_same_parent_is_idempotent() -> None:
    plan = running(node("plan", kind="plan"))
    t1 = node("t1", parent="plan")
    t = judge(
        plan,
        graph_with(plan, t1),
        {"status": "success", "next": {"addNodes": [{"id": "t1", "title": "t1"}]}},
    )
    assert isinstance(t, Transition) and [n.id for n in t.put] == ["plan"]


def test_set_status_within_scope_and_escalation_reopens_target() -> None:
    plan = running(node("plan", kind="plan"))
    child = node("c", parent="plan", status="failed", attempts=3)
    t = judge(
        plan,
        graph_with(plan, child),
        {"status": "success", "next": {"setStatus": [{"id": "c", "status": "open"}]}},
    )
    assert isinstance(t, Transition)
    reopened = t.put[1]
    assert reopened.status is Status.OPEN and reopened.attempt_base == 3
    esc = running(node("escalate-x", kind="plan", after=["x"]))
    x = node("x", status="failed")
    t = judge(
        esc,
        graph_with(esc, x),
        {"status": "success", "next": {"setStatus": [{"id": "x", "status": "open"}]}},
    )
    assert isinstance(t, Transition) and t.put[1].status is Status.OPEN


def test_task_with_work_goes_to_merging_and_checkpoint_and_fail() -> None:
    task = running(node("t"))
    work = Work(branch="dagain/work/t", base="a" * 40, head="b" * 40)
    t = judge(task, graph_with(task), {"status": "success", "summary": "did"}, work=work)
    assert isinstance(t, Transition) and t.put[0].status is Status.MERGING and t.put[0].work == work
    t = judge(
        task,
        graph_with(task),
        {"status": "checkpoint", "checkpoint": {"question": "A or B?", "options": ["A", "B"]}},
    )
    assert isinstance(t, Transition) and t.put[0].status is Status.NEEDS_HUMAN
    t = judge(task, graph_with(task), {"status": "fail", "summary": "nope"})
    assert isinstance(t, Transition) and t.put[0].error is not None
    assert t.put[0].error.kind is ErrorKind.TASK_FAILURE


def test_stale_attempt_changes_nothing() -> None:
    task = running(node("t"))
    parsed = RunnerResult.model_validate({"status": "success"})
    out = judging.judge(
        task, {"t": summarize(task)}, {}, GRAPH, parsed, attempt=task.attempts - 1 or 99, now=NOW
    )
    assert isinstance(out, Rejected)


def test_parse_result_problems_are_values() -> None:
    assert isinstance(parse_result('{"status": "success"}'), RunnerResult)
    bad = parse_result('{"status": "maybe"}')
    assert not isinstance(bad, RunnerResult)
