"""The pure decisions of agent loops, `needs` and groups (core/agent_loops.py, core/groups.py)."""

from __future__ import annotations

import datetime as dt

from gitdag.core import agent_rules, groups, judging, lifecycle
from gitdag.core.model import ErrorKind, GraphFile, Node, Status, Work, summarize
from gitdag.core.results import RunnerResult, parse_result
from gitdag.core.transitions import Rejected, Transition

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
GRAPH = GraphFile(created_at=NOW)


def node(nid: str = "a", **kw: object) -> Node:
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return Node.model_validate(base)


def running(n: Node) -> Node:
    t = lifecycle.claim(n, worker="w", now=NOW, lease_s=60)
    assert isinstance(t, Transition)
    return t.put[0]


def result(text: str) -> RunnerResult:
    parsed = parse_result(text)
    assert isinstance(parsed, RunnerResult), parsed
    return parsed


def judge(n: Node, others: list[Node], res: RunnerResult, now: dt.datetime = NOW,
          work: Work | None = None) -> Transition | Rejected:  # fmt: skip
    nodes = {x.id: summarize(x) for x in [n, *others]}
    return judging.judge(n, nodes, {}, GRAPH, res, attempt=n.attempts, now=now, work=work)


def test_continue_iterates_under_the_same_claim_and_carries_state_and_branch() -> None:
    a = running(node(kind="verify"))
    work = Work(branch="dagain/work/a", base="b" * 40, head="c" * 40)
    t = judge(a, [], result('{"status": "continue", "state": {"n": 1}}'), work=work)
    assert isinstance(t, Transition) and t.verb == "iterate"
    new = t.put[0]
    assert new.status is Status.RUNNING and new.claim is not None
    assert a.claim is not None and new.claim.attempt == a.claim.attempt
    assert new.carry is not None and new.carry.iteration == 2 and new.carry.state == {"n": 1}
    assert (new.carry.head, new.carry.base) == ("c" * 40, "b" * 40)
    assert ("Gitdag-Iteration", "2") in t.trailers
    info = {"Gitdag-Iteration": ["2"]}
    assert agent_rules.check(a, new, "iterate", subject="a", trailers=info) == []


def test_continue_after_max_duration_fails_the_attempt() -> None:
    a = running(node(kind="verify", max_duration_s=60, retry={"max_attempts": 1}))
    later = NOW + dt.timedelta(seconds=61)
    t = judge(a, [], result('{"status": "continue"}'), now=later)
    assert isinstance(t, Transition) and t.put[0].status is Status.FAILED
    error = t.put[0].error
    assert error is not None and error.kind is ErrorKind.TASK_FAILURE
    assert "max_duration_s is 60" in error.summary


def test_a_crash_keeps_the_carry_and_a_failure_drops_it() -> None:
    a = running(node(kind="verify"))
    t = judge(a, [], result('{"status": "continue", "state": {"n": 1}}'))
    assert isinstance(t, Transition)
    looping = t.put[0]
    recovered = lifecycle.recover(looping, reason="crash", now=NOW)
    assert isinstance(recovered, Transition)
    assert recovered.put[0].carry == looping.carry
    failed = lifecycle.fail(looping, {}, GRAPH, kind=ErrorKind.TIMEOUT, summary="x", now=NOW)
    assert isinstance(failed, Transition) and failed.put[0].carry is None


def test_needs_refuses_unknown_self_and_dead_nodes() -> None:
    a = running(node(retry={"max_attempts": 1}))
    dead = node("dead", status="cancelled")
    for needs, reason in (('["nope"]', "unknown node 'nope'"), ('["a"]', "wait for itself"),
                          ('["dead"]', "dead is cancelled")):  # fmt: skip
        t = judge(a, [dead], result(f'{{"status": "needs", "needs": {needs}}}'))
        assert isinstance(t, Transition) and t.put[0].status is Status.FAILED
        assert t.put[0].error is not None and reason in t.put[0].error.summary


def test_needs_gives_the_attempt_back_and_adds_the_edges() -> None:
    a = running(node(deps=["z"]))
    b, z = node("b"), node("z", status="done")
    t = judge(a, [b, z], result('{"status": "needs", "needs": ["b", {"id": "c", "title": "c"}]}'))
    assert isinstance(t, Transition) and t.verb == "defer"
    new = t.put[0]
    assert new.status is Status.OPEN and new.deps == ("z", "b", "c")
    assert new.attempt_base == a.attempt_base + 1 and new.claim is None
    assert new.carry is not None and new.carry.waited == ("b", "c") and new.carry.deferrals == 1
    assert [n.id for n in t.put] == ["a", "c"]
    assert agent_rules.check(a, new, "defer", subject="a", trailers={}) == []
    dropped = new.model_copy(update={"deps": ("b", "c")})
    assert agent_rules.check(a, dropped, "defer", subject="a", trailers={})


def test_a_group_is_ready_only_when_every_member_merges() -> None:
    m1 = summarize(node("m1", group="g", status="merging"))
    m2 = summarize(node("m2", group="g", deps=["m1"]))
    ready = groups.readiness({"m1": m1, "m2": m2}, "g")
    assert ready.waiting == "group g waits for m2 (open)"
    m2 = m2._replace(status=Status.MERGING)
    ready = groups.readiness({"m1": m1, "m2": m2}, "g")
    assert ready.waiting is None and ready.merging == ("m1", "m2")


def test_a_group_lands_in_one_merge_and_a_member_never_alone() -> None:
    work = Work(branch="w", base="b" * 40, head="c" * 40)
    m1 = node("m1", group="g", status="merging", work=work, attempts=1)
    m2 = node("m2", group="g", status="merging", work=work, attempts=1)
    t = groups.landed("g", [m1, m2], merged_commit="d" * 40, now=NOW)
    assert isinstance(t, Transition) and [n.status for n in t.put] == [Status.DONE] * 2
    assert ("Gitdag-Group", "g") in t.trailers
    trailers = {"Gitdag-Group": ["g"]}
    assert groups.check(m1, t.put[0], "merge", trailers) == []
    assert groups.check(m1, t.put[0], "merge", {}) != []
    back = groups.sent_back(m2, group="g", kind=ErrorKind.CHECK_FAILED, reason="x", now=NOW)
    assert isinstance(back, Transition) and back.put[0].status is Status.OPEN
    assert back.put[0].attempt_base == m2.attempt_base + 1
    assert back.put[0].carry is not None and back.put[0].carry.head == "c" * 40
