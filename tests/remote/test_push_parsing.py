"""`git push --porcelain` as data, and the backoff window: pure, no git needed."""

from __future__ import annotations

import random

from gitdag.store.contention import MAX_S, MIN_S, Contention
from gitdag.store.gitpush import PushOutcome, parse_porcelain

OK_AND_NEW = """To ../r.git
 \t3f3a:refs/heads/dagain/state\tf0be171..3f3aa62
*\t3f3a:refs/heads/dagain/work/x\t[new branch]
-\t:refs/heads/dagain/work/y\t[deleted]
Done
"""
STALE_ATOMIC = """To ../r.git
!\tf0be:refs/heads/dagain/integration\t[rejected] (stale info)
!\tf0be:refs/heads/dagain/state\t[rejected] (atomic push failed)
Done
"""
SERVER_LOST = "!\tab12:refs/heads/dagain/state\t[remote rejected] (failed to update ref)\n"
HOOK = "!\tab12:refs/heads/dagain/state\t[remote rejected] (pre-receive hook declined)\n"
DELETE_STALE = "!\t(delete):refs/heads/dagain/work/x\t[rejected] (stale info)\n"


def test_landed_refs() -> None:
    outcome = PushOutcome(parse_porcelain(OK_AND_NEW))
    assert outcome.ok
    assert [s.ref for s in outcome.statuses] == [
        "refs/heads/dagain/state", "refs/heads/dagain/work/x", "refs/heads/dagain/work/y",
    ]  # fmt: skip


def test_a_lost_race_names_the_ref_whose_lease_failed() -> None:
    outcome = PushOutcome(parse_porcelain(STALE_ATOMIC))
    assert not outcome.ok
    assert outcome.stale_refs() == ("refs/heads/dagain/integration",)
    assert outcome.refusals() == ()  # the state ref was only collateral
    server = PushOutcome(parse_porcelain(SERVER_LOST))
    assert server.stale_refs() == ("refs/heads/dagain/state",) and server.refusals() == ()
    delete = PushOutcome(parse_porcelain(DELETE_STALE))
    assert delete.stale_refs() == ("refs/heads/dagain/work/x",)


def test_a_hook_refusal_is_not_a_race() -> None:
    outcome = PushOutcome(parse_porcelain(HOOK))
    assert outcome.stale_refs() == ()
    summaries = [s.summary for s in outcome.refusals()]
    assert summaries == ["[remote rejected] (pre-receive hook declined)"]
    assert not PushOutcome(parse_porcelain("fatal: unable to connect\n")).ok


def test_backoff_window() -> None:
    c = Contention(rng=random.Random(1))
    assert c.pause() == 0.0  # a lone writer never waits
    for _ in range(10):
        c.lost()
    assert c.window_s == MAX_S
    pauses = [c.pause() for _ in range(200)]
    assert max(pauses) <= MAX_S and sum(p > 0 for p in pauses) > 150
    for _ in range(10):
        c.won()
    assert c.window_s == MIN_S and c.pause() == 0.0
