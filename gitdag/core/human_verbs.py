"""The verbs a person gives a node or the graph, as pure decisions: answer, cancel, retry, pause.

Each function returns a Transition or a Rejected; `now` is always a parameter. The supervisor's
control commands (`supervisor/control.py`) commit what these decide.
"""

from __future__ import annotations

import datetime as dt

from gitdag.core.lifecycle import touch
from gitdag.core.model import ErrorKind, GraphFile, Kind, Node, NodeError, Status
from gitdag.core.transitions import Rejected, Transition


def answer(
    node: Node, *, text: str, by: str, now: dt.datetime, option: int | None = None
) -> Transition | Rejected:
    """A person answers a node waiting for them: needs_human -> done (checkpoint node) or open."""
    if node.status is not Status.NEEDS_HUMAN or node.checkpoint is None:
        return Rejected(f"{node.id} is {node.status.value}, not waiting for an answer")
    cp = node.checkpoint
    if option is not None:
        if not 1 <= option <= len(cp.options):
            return Rejected(
                f"--option {option}: {node.id} has {len(cp.options)} option(s)", field="option"
            )
        text = cp.options[option - 1]
    if not text.strip():
        return Rejected("the answer is empty", field="answer")
    recorded = cp.model_copy(update={"answer": text, "answered_by": by, "answered_at": now})
    if node.kind is Kind.CHECKPOINT:
        new = touch(
            node,
            now,
            status=Status.DONE,
            checkpoint=recorded,
            outputs={**node.outputs, "summary": text, "answer": text},
        )
        to = "done"
    else:
        # The attempt that asked is over; the answer goes into the next attempt's packet and
        # does not use up the retry budget.
        new = touch(
            node,
            now,
            status=Status.OPEN,
            checkpoint=recorded,
            not_before=None,
            attempt_base=node.attempt_base + 1,
        )
        to = "open"
    return Transition(
        verb="answer",
        subject=node.id,
        from_status="needs_human",
        to_status=to,
        summary=text,
        put=(new,),
    )


def cancel(node: Node, *, by: str, now: dt.datetime) -> Transition | Rejected:
    """Cancel a node that is not done (its runner, if any, is stopped by the supervisor)."""
    if node.status in (Status.DONE, Status.CANCELLED, Status.SKIPPED):
        return Rejected(f"{node.id} is {node.status.value}; cannot cancel")
    error = NodeError(kind=ErrorKind.CANCELLED, summary=f"cancelled by {by}", attempt=node.attempts)
    new = touch(node, now, status=Status.CANCELLED, claim=None, error=error, not_before=None)
    return Transition(
        verb="cancel",
        subject=node.id,
        from_status=node.status.value,
        to_status="cancelled",
        summary=f"cancelled by {by}",
        put=(new,),
    )


def retry(node: Node, *, force: bool, now: dt.datetime) -> Transition | Rejected:
    """Reopen a failed or cancelled node with a fresh retry budget (done needs `force`)."""
    allowed = {Status.FAILED, Status.CANCELLED, Status.SKIPPED} | (
        {Status.DONE} if force else set()
    )
    if node.status not in allowed:
        hint = " (use --force to rerun a done node)" if node.status is Status.DONE else ""
        return Rejected(f"{node.id} is {node.status.value}; cannot retry{hint}")
    new = touch(
        node,
        now,
        status=Status.OPEN,
        claim=None,
        not_before=None,
        attempt_base=node.attempts,
        pool=None,
        carry=None,
    )
    return Transition(
        verb="retry",
        subject=node.id,
        from_status=node.status.value,
        to_status="open",
        summary="reopened with a fresh retry budget",
        put=(new,),
    )


def set_paused(graph_file: GraphFile, paused: bool) -> Transition | Rejected:
    """Pause or resume the whole graph (running nodes finish; nothing new starts)."""
    if graph_file.control.paused == paused:
        return Rejected("the graph is already " + ("paused" if paused else "running"))
    new = graph_file.model_copy(
        update={"control": graph_file.control.model_copy(update={"paused": paused})}
    )
    verb = "pause" if paused else "resume"
    return Transition(
        verb=verb,
        subject="graph",
        from_status="active" if paused else "paused",
        to_status="paused" if paused else "active",
        summary=f"graph {verb}d",
        graph=new,
    )
