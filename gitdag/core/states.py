"""The status table of spec §3: which stored status may follow which, and by which verb."""

from __future__ import annotations

from gitdag.core.model import TERMINAL, Status

_S = Status

# (from, to) -> verbs that may make that move. Everything else is illegal.
TRANSITIONS: dict[tuple[Status, Status], frozenset[str]] = {
    (_S.OPEN, _S.RUNNING): frozenset({"claim"}),
    (_S.OPEN, _S.NEEDS_HUMAN): frozenset({"checkpoint"}),
    (_S.RUNNING, _S.DONE): frozenset({"complete"}),
    (_S.RUNNING, _S.MERGING): frozenset({"complete"}),
    # `defer`: a `needs` result; the node waits for the nodes it named (core/agent_loops.py).
    (_S.RUNNING, _S.OPEN): frozenset({"fail", "lease", "reset", "revert", "defer"}),
    # `escalate` is a final failure that also adds the escalation node (lifecycle.fail).
    (_S.RUNNING, _S.FAILED): frozenset({"fail", "escalate"}),
    (_S.RUNNING, _S.NEEDS_HUMAN): frozenset({"checkpoint"}),
    (_S.MERGING, _S.DONE): frozenset({"merge"}),
    (_S.MERGING, _S.OPEN): frozenset({"merge", "fail"}),
    (_S.MERGING, _S.FAILED): frozenset({"merge", "fail", "escalate"}),
    (_S.NEEDS_HUMAN, _S.OPEN): frozenset({"answer"}),
    (_S.NEEDS_HUMAN, _S.DONE): frozenset({"answer"}),
    (_S.FAILED, _S.OPEN): frozenset({"retry", "escalate", "edit"}),
    (_S.CANCELLED, _S.OPEN): frozenset({"retry", "escalate", "edit"}),
    (_S.DONE, _S.OPEN): frozenset({"retry", "edit"}),
    # A skipped node is reopened like a finished one (and then runs: its `when` is not asked again).
    (_S.SKIPPED, _S.OPEN): frozenset({"retry", "edit"}),
}
# "any but done -> cancelled" by `gitdag cancel`.
for _from in (_S.OPEN, _S.RUNNING, _S.MERGING, _S.FAILED, _S.NEEDS_HUMAN):
    TRANSITIONS[(_from, _S.CANCELLED)] = frozenset({"cancel"})

# `hold` (merging -> merging) is no status change: it records why a merging node's integration
# waits for an environment repair (`Node.hold`); any move out of merging clears it (legality.py).
HOLD_VERB = "hold"

# Verbs that restore an earlier state (a revert undoes one commit, a reset restores a whole earlier
# graph): they may make any move, because the status they restore was itself reached legally.
RESTORING_VERBS = frozenset({"revert", "reset"})

# `open -> skipped` is no verb's own move: it rides in the commit that settles the node's last
# upstream (core/flow.py), and legality checks it by its own rule (flow.skip_problem).


def is_terminal(status: Status) -> bool:
    """Tell whether a status ends a node's run (done, failed, cancelled)."""
    return status in TERMINAL


def can_move(from_status: Status, to_status: Status, verb: str | None = None) -> bool:
    """Tell whether `from_status -> to_status` is legal, optionally by the given verb.

    Args:
      from_status: the stored status before.
      to_status: the stored status after.
      verb: the transition verb; None accepts any verb the table lists for that move.
    """
    if from_status == to_status or verb in RESTORING_VERBS:
        return True
    verbs = TRANSITIONS.get((from_status, to_status))
    if verbs is None:
        return False
    return verb is None or verb in verbs


def successors(status: Status) -> frozenset[Status]:
    """Return every status reachable from `status` in one legal move."""
    return frozenset(to for (frm, to) in TRANSITIONS if frm == status)
