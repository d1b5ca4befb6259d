"""`git push --porcelain` as data, and taking turns on a remote: pure, no git needed."""

from __future__ import annotations

import random

from gitdag.core.contention import JITTER_S, MAX_S, Contention
from gitdag.transport.outcomes import PushOutcome, parse_porcelain

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


def test_a_landed_push_is_proven_by_its_report_only_for_our_commit() -> None:
    state = PushOutcome(parse_porcelain(OK_AND_NEW)).statuses[0]
    assert state.moved("f0be171aaaa", "3f3aa62bbbb")
    assert not state.moved("f0be171aaaa", "3f3aa63bbbb")  # somebody else's commit
    assert not state.moved("abcdef0", "3f3aa62bbbb")  # not from the head we expected
    up_to_date = parse_porcelain("=\t3f3a:refs/heads/dagain/state\t[up to date]\n")[0]
    assert up_to_date.ok and not up_to_date.moved("f0be171", "3f3aa62")  # ambiguous: read back
    created = PushOutcome(parse_porcelain(OK_AND_NEW)).statuses[1]
    assert created.moved("", "3f3a") and not state.moved("", "3f3aa62")


def test_turn_taking() -> None:
    c = Contention(rng=random.Random(1))
    assert c.ahead() == 0  # a writer nobody has seen land goes at once
    assert 0 <= c.lost() <= JITTER_S  # a lost race: retry promptly
    c.seen(["b", "me", "a", "c"], "me")  # b landed after us, a and c before: they go first
    assert (c.rivals, c.rank, c.ahead()) == (3, 2, 2)
    far = c.nap()
    c.seen(["a", "me", "c"], "me")
    assert c.rank == 1 and c.nap() < far  # next in line: look more often
    c.seen(["a", "b"], "me")  # we have not landed lately: we go first
    assert c.rank == 0 and c.ahead() == 0
    c.won(0.2)
    assert c.rank == 2 and c.cycle > 0.05  # just won: everybody else goes first; pace learnt
    c.queued = 1  # a writer that keeps losing unseen raised its hand: it goes first too
    assert c.ahead() == 3 and c.idle() > c.cycle
    c.queued = 0
    c.seen(["x"], "me")
    assert not c.should_enqueue()
    c.lost()
    assert c.should_enqueue()  # lost, and nobody can see us waiting: raise a hand
    c.won()
    assert c.losses == 0 and c.cycle <= MAX_S


def test_waiters_poll_less_when_the_server_is_slow() -> None:
    c = Contention(rng=random.Random(2))
    c.seen(["me", "a", "b"], "me")  # a and b landed before us: both go first
    assert c.ahead() == 2
    c.passed()  # the head moved while two were ahead: one of them took its turn (no fetch)
    assert c.ahead() == 1
    c.passed()
    c.passed()  # never below zero
    assert c.rank == 0
    c.seen(["me", "a"], "me")  # next in line, long after the last landing
    quick = c.nap(since_move=10.0)
    assert quick < 0.1 and c.nap(since_move=10.0, poll_s=0.4) == 0.4  # no faster than a poll
