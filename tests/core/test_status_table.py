"""The status table of spec §3 (gitdag/core/states.py), and what random walks through it can do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitdag.core import states
from gitdag.core.model import TERMINAL, Status
from gitdag.core.transitions import VERBS

S = Status

# Spec §3, transcribed independently of the code: (from, to) -> verbs.
SPEC_MOVES = {
    (S.OPEN, S.RUNNING), (S.OPEN, S.NEEDS_HUMAN), (S.RUNNING, S.DONE), (S.RUNNING, S.MERGING),
    (S.RUNNING, S.OPEN), (S.RUNNING, S.FAILED), (S.RUNNING, S.NEEDS_HUMAN), (S.MERGING, S.DONE),
    (S.MERGING, S.OPEN), (S.MERGING, S.FAILED), (S.NEEDS_HUMAN, S.OPEN), (S.NEEDS_HUMAN, S.DONE),
    (S.FAILED, S.OPEN), (S.CANCELLED, S.OPEN), (S.DONE, S.OPEN), (S.SKIPPED, S.OPEN),
    *((s, S.CANCELLED) for s in Status if s not in (S.DONE, S.CANCELLED, S.SKIPPED)),
}  # fmt: skip


def test_table_is_exactly_the_spec() -> None:
    assert set(states.TRANSITIONS) == SPEC_MOVES
    assert all(verbs <= VERBS for verbs in states.TRANSITIONS.values())


def test_done_is_left_only_by_retry_or_edit() -> None:
    assert states.successors(S.DONE) == {S.OPEN}
    assert states.TRANSITIONS[(S.DONE, S.OPEN)] == {"retry", "edit"}
    assert not states.can_move(S.DONE, S.CANCELLED)  # "any but done -> cancelled"
    assert not states.can_move(S.DONE, S.OPEN, "claim")


def test_dependents_never_unblock_at_merging() -> None:
    # A task's dependents wait for done; merging is not terminal.
    assert S.MERGING not in TERMINAL
    assert states.can_move(S.MERGING, S.DONE, "merge")
    assert not states.can_move(S.MERGING, S.DONE, "complete")


verbs = st.sampled_from(sorted(VERBS - states.RESTORING_VERBS))


@given(st.lists(st.tuples(st.sampled_from(list(Status)), verbs), max_size=60))
def test_walks_leave_terminal_statuses_only_by_the_table(steps: list[tuple[Status, str]]) -> None:
    """Apply each proposed move when the table allows it; every time a walk leaves a terminal
    status, that exact (from, to, verb) is a row of the spec's table."""
    status = S.OPEN
    visited = {status}
    for to, verb in steps:
        if not states.can_move(status, to, verb):
            continue
        if status != to and states.is_terminal(status):
            assert (status, to) in SPEC_MOVES
            assert to is S.OPEN  # the only way out of done/failed/cancelled is back to open
            assert verb in states.TRANSITIONS[(status, to)]
            if status is S.DONE:
                assert verb in {"retry", "edit"}
        status = to
        visited.add(status)
    assert status in Status


@given(st.sampled_from(list(Status)), st.sampled_from(list(Status)), verbs)
def test_can_move_agrees_with_table(frm: Status, to: Status, verb: str) -> None:
    expected = frm == to or verb in states.TRANSITIONS.get((frm, to), frozenset())
    assert states.can_move(frm, to, verb) is expected


def test_restoring_verbs_may_make_any_move() -> None:
    assert states.can_move(S.DONE, S.RUNNING, "revert")
    assert states.can_move(S.CANCELLED, S.MERGING, "reset")
