from __future__ import annotations

import datetime as dt

from gitdag.core import human_verbs, lifecycle
from gitdag.core.model import ErrorKind, GraphFile, Kind, Node, RetryPolicy, Status, summarize
from gitdag.core.states import can_move
from gitdag.core.transitions import Rejected, Transition

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
GRAPH = GraphFile(created_at=NOW)


def node(nid: str = "a", **kw: object) -> Node:
    base: dict[str, object] = {"id": nid, "title": nid, "created_at": NOW, "updated_at": NOW}
    base.update(kw)
    return Node.model_validate(base)


def claimed(n: Node) -> Node:
    t = lifecycle.claim(n, worker="w", now=NOW, lease_s=60)
    assert isinstance(t, Transition)
    return t.put[0]


def test_claim_starts_next_attempt_with_lease() -> None:
    t = lifecycle.claim(node(), worker="sup@h:1", now=NOW, lease_s=60, nonce="xyz")
    assert isinstance(t, Transition)
    new = t.put[0]
    assert new.status is Status.RUNNING and new.attempts == 1
    assert new.claim is not None and new.claim.attempt == 1
    assert new.claim.lease_until == NOW + dt.timedelta(seconds=60)
    assert ("Gitdag-Nonce", "xyz") in t.trailers
    assert can_move(Status.OPEN, Status.RUNNING, t.verb)


def test_claim_refuses_backoff_and_non_open() -> None:
    later = NOW + dt.timedelta(seconds=5)
    assert isinstance(
        lifecycle.claim(node(not_before=later), worker="w", now=NOW, lease_s=5), Rejected
    )
    assert isinstance(lifecycle.claim(claimed(node()), worker="w", now=NOW, lease_s=5), Rejected)


def test_fail_backs_off_exponentially_then_fails_and_escalates() -> None:
    plan = node("plan", kind="plan")
    n = node("a", parent="plan", retry={"max_attempts": 3, "backoff_s": 5, "backoff_max_s": 300})
    nodes = {"plan": summarize(plan)}
    waits = []
    for attempt in (1, 2, 3):
        running = claimed(n)
        nodes["a"] = summarize(running)
        t = lifecycle.fail(
            running,
            nodes,
            GRAPH,
            kind=ErrorKind.TASK_FAILURE,
            summary="boom",
            now=NOW,
            attempt=attempt,
        )
        assert isinstance(t, Transition)
        n = t.put[0]
        if attempt < 3:
            assert n.status is Status.OPEN and n.not_before is not None
            waits.append((n.not_before - NOW).total_seconds())
            n = n.model_copy(update={"not_before": None})
    assert waits == [5, 10]
    assert (
        n.status is Status.FAILED and n.error is not None and n.error.kind is ErrorKind.TASK_FAILURE
    )
    assert t.verb == "escalate"
    esc = t.put[1]
    assert esc.id == "escalate-a" and esc.kind is Kind.PLAN and esc.after == ("a",)
    assert esc.parent == "plan" and "boom" in esc.description


def test_escalation_depth_is_bounded() -> None:
    deep = node("escalate-escalate-a", status="failed")
    assert lifecycle.escalation_depth(deep.id) == 2
    assert lifecycle.escalate(deep, {}, GRAPH, now=NOW) is None
    assert lifecycle.escalate(node("x", status="failed"), {}, GRAPH, now=NOW) is not None


def test_stale_attempt_is_rejected() -> None:
    running = claimed(node())
    t = lifecycle.fail(running, {}, GRAPH, kind=ErrorKind.TIMEOUT, summary="t", now=NOW, attempt=7)
    assert isinstance(t, Rejected) and "superseded" in t.reason


def test_pool_promotion_immediate_on_timeout_and_after_task_failures() -> None:
    running = claimed(node(retry={"max_attempts": 9, "backoff_s": 0, "backoff_max_s": 0}))
    t = lifecycle.fail(
        running,
        {},
        GRAPH,
        kind=ErrorKind.TIMEOUT,
        summary="t",
        now=NOW,
        attempt=1,
        pool_size=3,
        promote_on=frozenset({ErrorKind.TIMEOUT}),
        promote_after=2,
    )
    assert isinstance(t, Transition) and t.put[0].pool is not None and t.put[0].pool.index == 1
    n = t.put[0]
    indexes = []
    for attempt in (2, 3, 4, 5):
        n = claimed(n)
        t = lifecycle.fail(
            n,
            {},
            GRAPH,
            kind=ErrorKind.TASK_FAILURE,
            summary="f",
            now=NOW,
            attempt=attempt,
            pool_size=3,
            promote_on=frozenset({ErrorKind.TIMEOUT}),
            promote_after=2,
        )
        assert isinstance(t, Transition)
        n = t.put[0]
        assert n.pool is not None
        indexes.append(n.pool.index)
    assert indexes == [1, 2, 2, 2]  # two task failures promote; the last runner sticks


def test_checkpoint_answer_and_retry_budget() -> None:
    cp = node("gate", kind="checkpoint", description="Ship it?")
    t = lifecycle.checkpoint_open(cp, now=NOW)
    assert isinstance(t, Transition) and t.put[0].status is Status.NEEDS_HUMAN
    waiting = t.put[0]
    ans = human_verbs.answer(waiting, text="yes", by="Ann <a@x>", now=NOW)
    assert isinstance(ans, Transition)
    done = ans.put[0]
    assert done.status is Status.DONE and done.checkpoint is not None
    assert done.checkpoint.answer == "yes" and done.checkpoint.answered_by == "Ann <a@x>"
    opts = waiting.model_copy(
        update={"checkpoint": waiting.checkpoint.model_copy(update={"options": ("a", "b")})}
    )  # type: ignore[union-attr]
    picked = human_verbs.answer(opts, text="", by="x", now=NOW, option=2)
    assert isinstance(picked, Transition) and picked.put[0].checkpoint.answer == "b"  # type: ignore[union-attr]
    assert isinstance(human_verbs.answer(opts, text="", by="x", now=NOW, option=3), Rejected)


def test_retry_gives_a_fresh_budget_and_keeps_attempts_monotonic() -> None:
    failed = node(status="failed", attempts=3)
    policy = RetryPolicy(max_attempts=3)
    assert failed.attempts_left(policy) == 0
    t = human_verbs.retry(failed, force=False, now=NOW)
    assert isinstance(t, Transition)
    reopened = t.put[0]
    assert reopened.attempts == 3 and reopened.attempts_left(policy) == 3
    assert isinstance(human_verbs.retry(node(status="done"), force=False, now=NOW), Rejected)
    assert isinstance(human_verbs.retry(node(status="done"), force=True, now=NOW), Transition)


def test_recover_and_cancel_and_pause() -> None:
    running = claimed(node())
    t = lifecycle.recover(running, reason="gone", now=NOW)
    assert isinstance(t, Transition)
    back = t.put[0]
    assert back.status is Status.OPEN and back.claim is None and back.attempt_base == 1
    assert back.error is not None and back.error.kind is ErrorKind.LEASE_EXPIRED
    c = human_verbs.cancel(running, by="me", now=NOW)
    assert isinstance(c, Transition) and c.put[0].status is Status.CANCELLED
    assert isinstance(human_verbs.cancel(node(status="done"), by="me", now=NOW), Rejected)
    p = human_verbs.set_paused(GRAPH, True)
    assert isinstance(p, Transition) and p.graph is not None and p.graph.control.paused
    assert isinstance(human_verbs.set_paused(GRAPH, False), Rejected)


def test_every_lifecycle_move_is_in_the_status_table() -> None:
    n = node()
    r = claimed(n)
    moves = [
        (n, lifecycle.claim(n, worker="w", now=NOW, lease_s=5)),
        (r, lifecycle.fail(r, {}, GRAPH, kind=ErrorKind.TIMEOUT, summary="x", now=NOW)),
        (r, lifecycle.recover(r, reason="x", now=NOW)),
        (r, human_verbs.cancel(r, by="x", now=NOW)),
    ]
    for before, t in moves:
        assert isinstance(t, Transition)
        assert can_move(before.status, t.put[0].status, t.verb), t
