"""The node lifecycle as pure decisions: each function returns a Transition or a Rejected.

Claims, failures with retry and backoff, escalation, checkpoints, leases, holds and merges (the
verbs a person gives, answer, cancel, retry, pause and resume, are in `core/human_verbs.py`).
`now` is always a parameter; nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from gitdag.core import graph
from gitdag.core.model import (
    Checkpoint,
    Claim,
    ErrorKind,
    GraphFile,
    Hold,
    HoldKind,
    Kind,
    Node,
    NodeError,
    NodeSummary,
    PoolState,
    RetryPolicy,
    Status,
    Work,
)
from gitdag.core.transitions import Rejected, Transition

ESCALATE_PREFIX = "escalate-"
MAX_ERROR_SUMMARY = 4000
# Failure kinds that are never retried nor escalated: another run would meet them again.
FINAL_KINDS = frozenset({ErrorKind.PUSH_REFUSED})


def policy_of(node: Node, graph_file: GraphFile) -> RetryPolicy:
    """Return the retry policy in force for a node (its own, else the graph's default)."""
    return node.retry or graph_file.defaults.retry


def backoff_s(policy: RetryPolicy, failures: int) -> float:
    """Return the wait before the next attempt after `failures` failures: exponential, capped."""
    if failures <= 0:
        return 0.0
    return float(min(policy.backoff_max_s, policy.backoff_s * (2 ** (failures - 1))))


def touch(node: Node, now: dt.datetime, **changes: object) -> Node:
    """Return the node with `changes` and `updated_at=now`; leaving `merging` ends its hold."""
    new = node.model_copy(update={**changes, "updated_at": now})
    # A hold belongs to a waiting integration: whatever ends the `merging` state ends it too.
    if new.hold is not None and new.status is not Status.MERGING:
        new = new.model_copy(update={"hold": None})
    return new


def claim(
    node: Node, *, worker: str, now: dt.datetime, lease_s: int, nonce: str | None = None
) -> Transition | Rejected:
    """Start the next attempt of an open node: open -> running, attempts + 1, a fresh claim."""
    if node.status is not Status.OPEN:
        return Rejected(f"{node.id} is {node.status.value}, not open", field="status")
    if node.not_before is not None and node.not_before > now:
        return Rejected(f"{node.id} backs off until {node.not_before.isoformat()}")
    attempt = node.attempts + 1
    new = touch(
        node,
        now,
        status=Status.RUNNING,
        attempts=attempt,
        not_before=None,
        claim=Claim(
            worker=worker,
            attempt=attempt,
            since=now,
            lease_until=now + dt.timedelta(seconds=lease_s),
        ),
    )
    trailers = (("Gitdag-Nonce", nonce),) if nonce else ()
    return Transition(
        verb="claim",
        subject=node.id,
        from_status="open",
        to_status="running",
        summary=f"attempt {attempt} by {worker}",
        put=(new,),
        attempt=attempt,
        trailers=trailers,
    )


def renew_lease(
    node: Node, *, attempt: int, now: dt.datetime, lease_s: int
) -> Transition | Rejected:
    """Extend the lease of a running attempt (running -> running)."""
    problem = stale_attempt(node, attempt)
    if problem is not None:
        return problem
    assert node.claim is not None
    new = touch(
        node,
        now,
        claim=node.claim.model_copy(update={"lease_until": now + dt.timedelta(seconds=lease_s)}),
    )
    return Transition(
        verb="lease", subject=node.id, summary="lease renewed", put=(new,), attempt=attempt
    )


def stale_attempt(node: Node, attempt: int) -> Rejected | None:
    """Say why `attempt` is not the node's running attempt (a stale worker), or None if it is."""
    if node.status is not Status.RUNNING or node.claim is None:
        return Rejected(f"{node.id} is {node.status.value}, not running", field="status")
    if node.claim.attempt != attempt:
        return Rejected(
            f"attempt {attempt} of {node.id} is superseded by attempt {node.claim.attempt}",
            field="attempt",
        )
    return None


def checkpoint_open(node: Node, *, now: dt.datetime) -> Transition | Rejected:
    """A ready `checkpoint` node asks its question: open -> needs_human."""
    if node.kind is not Kind.CHECKPOINT or node.status is not Status.OPEN:
        return Rejected(f"{node.id} is not an open checkpoint node")
    question = node.description.strip() or node.title
    options = node.checkpoint.options if node.checkpoint else ()
    new = touch(
        node,
        now,
        status=Status.NEEDS_HUMAN,
        checkpoint=Checkpoint(question=question, options=options),
    )
    return Transition(
        verb="checkpoint",
        subject=node.id,
        from_status="open",
        to_status="needs_human",
        summary=question,
        put=(new,),
    )


def _promote(
    node: Node, kind: ErrorKind, pool_size: int, promote_on: frozenset[ErrorKind], after: int
) -> PoolState | None:
    if pool_size <= 1:
        return node.pool
    state = node.pool or PoolState()
    last = pool_size - 1
    if kind in promote_on:
        return PoolState(index=min(state.index + 1, last), failures=0)
    if kind is ErrorKind.TASK_FAILURE:
        failures = state.failures + 1
        if failures >= after and state.index < last:
            return PoolState(index=state.index + 1, failures=0)
        return PoolState(index=state.index, failures=failures)
    return state


def fail(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    graph_file: GraphFile,
    *,
    kind: ErrorKind,
    summary: str,
    now: dt.datetime,
    attempt: int | None = None,
    paths: tuple[str, ...] = (),
    pool_size: int = 1,
    promote_on: frozenset[ErrorKind] = frozenset(),
    promote_after: int = 2,
    verb: str = "fail",
    spent: bool = False,
) -> Transition | Rejected:
    """Record a failed attempt: back to open with a backoff, or failed (and escalated) when spent.

    Args:
      node: the running (or merging) node.
      nodes: the graph's summaries (for escalation).
      graph_file: graph defaults (retry policy, escalation depth).
      kind: why it failed.
      summary: one paragraph for the commit and the next packet.
      now: the current time.
      attempt: the attempt that failed; a superseded attempt is rejected.
      paths: conflicting paths (merge conflicts).
      pool_size: the runner pool's length (promotion).
      promote_on: error kinds that promote to the next runner at once.
      promote_after: task failures on one runner before promoting.
      verb: `fail`, or `merge` when the merge queue refuses the node.
      spent: the budget is used up whatever `attempts` says (starts the state branch lost).
    """
    if node.status is Status.RUNNING:
        if attempt is not None:
            problem = stale_attempt(node, attempt)
            if problem is not None:
                return problem
    elif node.status is not Status.MERGING:
        return Rejected(f"{node.id} is {node.status.value}; only running or merging nodes fail")
    policy = policy_of(node, graph_file)
    error = NodeError(
        kind=kind, summary=summary[:MAX_ERROR_SUMMARY], attempt=node.attempts, paths=paths
    )
    pool = _promote(node, kind, pool_size, promote_on, promote_after)
    # A failure of the environment that another attempt would meet again (the remote refuses
    # the node's branch) spends no more runs: failed at once, and not escalated to a planner.
    final = kind in FINAL_KINDS
    # A retry policy that names kinds retries only those: another kind fails the node at once.
    unlisted = policy.kinds is not None and kind not in policy.kinds
    left = 0 if final or spent or unlisted else node.attempts_left(policy)
    if left > 0:
        failures = node.attempts - node.attempt_base
        new = touch(
            node,
            now,
            status=Status.OPEN,
            claim=None,
            error=error,
            pool=pool,
            not_before=now + dt.timedelta(seconds=backoff_s(policy, failures)),
            carry=None,  # a failed attempt's loop and branch are not resumed: it starts afresh
        )
        return Transition(
            verb=verb,
            subject=node.id,
            from_status=node.status.value,
            to_status="open",
            summary=f"{kind.value}: {summary} ({left} attempt{'s' if left != 1 else ''} left)",
            put=(new,),
            attempt=node.attempts,
        )
    new = touch(
        node,
        now,
        status=Status.FAILED,
        claim=None,
        error=error,
        pool=pool,
        not_before=None,
        carry=None,
    )
    escalation = None if final else escalate(new, nodes, graph_file, now=now)
    put: tuple[Node, ...] = (new,) if escalation is None else (new, escalation)
    return Transition(
        verb="escalate" if escalation is not None else verb,
        subject=node.id,
        from_status=node.status.value,
        to_status="failed",
        summary=f"{kind.value}: {summary}"
        + (f" (escalated to {escalation.id})" if escalation is not None else ""),
        put=put,
        nodes=tuple(n.id for n in put),
        attempt=node.attempts,
    )


def escalation_depth(node_id: str) -> int:
    """Return how many escalations deep a node id is (`escalate-escalate-x` is 2)."""
    depth = 0
    while node_id.startswith(ESCALATE_PREFIX * (depth + 1)):
        depth += 1
    return depth


def escalate(
    failed: Node, nodes: Mapping[str, NodeSummary], graph_file: GraphFile, *, now: dt.datetime
) -> Node | None:
    """Return the plan node `escalate-<id>` to add or reopen for a failed node, or None.

    None when escalation is too deep (graph `defaults.escalation_depth`), when the id would be
    too long, or when the escalation node is running already.
    """
    if escalation_depth(failed.id) >= graph_file.defaults.escalation_depth:
        return None
    esc_id = ESCALATE_PREFIX + failed.id
    if len(esc_id) > 64:
        return None
    error = failed.error
    description = (
        f"Node {failed.id} ({failed.title}) failed after {failed.attempts} attempt(s).\n"
        f"Last error ({error.kind.value if error else 'unknown'}): "
        f"{error.summary if error else ''}\n"
        f"Replan: reopen {failed.id} with a better description (setStatus open), or add nodes "
        f"that work around it, or cancel what depends on it."
    )
    existing = nodes.get(esc_id)
    parent = graph.nearest_plan(nodes, failed.id) if failed.id in nodes else failed.parent
    if existing is not None:
        if existing.status in (Status.RUNNING, Status.MERGING, Status.NEEDS_HUMAN):
            return None
        # Reopened in place: a fresh budget, the new failure in its description.
        return (
            None
            if existing.status is Status.OPEN
            else _reopen_escalation(esc_id, existing, description, now)
        )
    return Node(
        id=esc_id,
        title=f"Replan after {failed.id} failed",
        description=description,
        kind=Kind.PLAN,
        after=(failed.id,),
        parent=parent if parent != esc_id else None,
        inputs=(),
        created_at=now,
        updated_at=now,
    )


def _reopen_escalation(
    esc_id: str, existing: NodeSummary, description: str, now: dt.datetime
) -> Node:
    # The caller only has the summary; the supervisor re-reads the full node when it claims it,
    # so the rebuilt record carries what matters: open, fresh budget, the new description.
    return Node(
        id=esc_id,
        title=f"Replan after {esc_id[len(ESCALATE_PREFIX) :]} failed",
        description=description,
        kind=Kind.PLAN,
        status=Status.OPEN,
        after=existing.after,
        parent=existing.parent,
        attempts=existing.attempts,
        attempt_base=existing.attempts,
        created_at=existing.created_at,
        updated_at=now,
    )


def to_merging(
    node: Node, work: Work, *, attempt: int, summary: str, outputs: dict[str, str], now: dt.datetime
) -> Node:
    """Return the node after a successful attempt with code to integrate."""
    return touch(
        node,
        now,
        status=Status.MERGING,
        claim=None,
        error=None,
        work=work,
        outputs={**outputs, "summary": summary or outputs.get("summary") or "done"},
    )


def merged(node: Node, *, merged_commit: str, now: dt.datetime) -> Transition | Rejected:
    """The merge queue integrated the node: merging -> done with `work.merged`."""
    if node.status is not Status.MERGING or node.work is None:
        return Rejected(f"{node.id} is {node.status.value}, not merging")
    new = touch(
        node, now, status=Status.DONE, work=node.work.model_copy(update={"merged": merged_commit})
    )
    return Transition(
        verb="merge",
        subject=node.id,
        from_status="merging",
        to_status="done",
        summary=f"integrated into {merged_commit[:12]}",
        put=(new,),
        attempt=node.attempts,
    )


def hold(
    node: Node, *, kind: HoldKind, reason: str, repair: str, now: dt.datetime
) -> Transition | Rejected:
    """A merging node's integration waits for an environment repair (no attempt is spent).

    The same kind again is no change (Rejected), so a cause that persists is recorded once.
    """
    if node.status is not Status.MERGING:
        return Rejected(f"{node.id} is {node.status.value}, not merging")
    if node.hold is not None and node.hold.kind is kind:
        return Rejected(f"{node.id} is already held ({kind.value})")
    record = Hold(kind=kind, reason=reason[:MAX_ERROR_SUMMARY], repair=repair[:2000], since=now)
    return Transition(
        verb="hold",
        subject=node.id,
        summary=f"{kind.value}: {reason} (repair: {repair})",
        put=(touch(node, now, hold=record),),
        attempt=node.attempts,
    )


def recover(node: Node, *, reason: str, now: dt.datetime) -> Transition | Rejected:
    """A running node whose worker is gone (crash, expired lease) goes back to open.

    The lost attempt does not count against the retry budget: it was the worker that failed,
    not the node. The next claim starts a new attempt, so a late result of the old one is
    rejected as superseded.
    """
    if node.status is not Status.RUNNING:
        return Rejected(f"{node.id} is {node.status.value}, not running")
    error = NodeError(kind=ErrorKind.LEASE_EXPIRED, summary=reason, attempt=node.attempts)
    new = touch(
        node,
        now,
        status=Status.OPEN,
        claim=None,
        error=error,
        not_before=None,
        attempt_base=node.attempt_base + 1,
    )
    return Transition(
        verb="lease",
        subject=node.id,
        from_status="running",
        to_status="open",
        summary=reason,
        put=(new,),
        attempt=node.attempts,
    )
