"""Agents that iterate and agents that discover what they need (docs/runner-protocol.md).

Two result statuses that are neither a finish nor a failure, decided purely:

- `continue`: the node stays `running` under the same claim and attempt; its `carry` records the
  next iteration's number, the state handed on and (for a task) its branch's head, so a crash
  loses at most the iteration that was running. Transition verb `iterate`, trailer
  `Gitdag-Iteration: <the iteration that starts next>`.
- `needs`: the node waits for other nodes (existing, or new ones it proposes): the edges become
  `deps`, the node goes back to `open` without spending an attempt, and its branch is carried so
  the next attempt starts from its own work. Transition verb `defer`.

A bound broken (`max_iterations`, `max_duration_s`, `max_deferrals`) or a `needs` that names an
unknown node or makes a cycle is an `AgentFailure`: the caller records it as a failed attempt.

The loop's clock (`max_duration_s`) starts with iteration 1 (the claim's `since`) and is kept in
`carry.since` from the first `iterate` on, so a crash, a restart or a given-back attempt does not
reset it; it is wall-clock time. A `defer` stops it: the next attempt, after the wait, starts it
again. `time_left` is what a run may still use: the launcher stops a runner that outlives it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gitdag.core import graph
from gitdag.core.model import (
    Carry,
    ErrorKind,
    GraphFile,
    Kind,
    Node,
    NodeSummary,
    Status,
    Work,
    summarize,
)
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Transition

ITERATION_TRAILER = "Gitdag-Iteration"
ITERATE_VERB = "iterate"
DEFER_VERB = "defer"


@dataclass(frozen=True)
class AgentFailure:
    """A `continue` or `needs` the graph cannot accept: recorded as a failed attempt."""

    kind: ErrorKind
    summary: str


def limits(node: Node, graph_file: GraphFile) -> tuple[int, float]:
    """Return the node's (max_iterations, max_duration_s): its own, else the graph's defaults."""
    defaults = graph_file.defaults
    iterations = node.max_iterations or defaults.max_iterations
    duration = node.max_duration_s or defaults.max_duration_s
    return iterations, float(duration)


def loop_since(node: Node) -> dt.datetime | None:
    """Return when the node's loop started: `carry.since`, else its claim's start, else None."""
    if node.carry is not None and node.carry.since is not None:
        return node.carry.since
    return node.claim.since if node.claim is not None else None


def time_left(node: Node, graph_file: GraphFile, now: dt.datetime) -> float | None:
    """Return the seconds a run of the node may still use under `max_duration_s` (None: no clock).

    Commands never iterate: their runs are bounded by `timeout_s` alone.
    """
    since = loop_since(node)
    if since is None or node.kind is Kind.COMMAND:
        return None
    _, max_duration_s = limits(node, graph_file)
    return max_duration_s - (now - since).total_seconds()


def duration_reason(node: Node, graph_file: GraphFile) -> str:
    """Return the failure summary of a loop that ran past `max_duration_s` (kind task_failure)."""
    _, max_duration_s = limits(node, graph_file)
    since = loop_since(node)
    start = f" at {since.isoformat(timespec='seconds')}" if since is not None else ""
    iteration = node.carry.iteration if node.carry is not None else 1
    return (
        f"ran past max_duration_s {max_duration_s:g} (counted from iteration 1's start{start}); "
        f"stopped in iteration {iteration}"
    )


def overdue(node: Node, graph_file: GraphFile, now: dt.datetime) -> AgentFailure | None:
    """Return the failure of a run that would start with no time left, or None if it may start."""
    left = time_left(node, graph_file, now)
    if left is None or left > 0:
        return None
    return AgentFailure(ErrorKind.TASK_FAILURE, duration_reason(node, graph_file) + " (before it "
                        "began: no time was left)")  # fmt: skip


def _carried(node: Node, work: Work | None) -> Carry:
    """The node's carry (a fresh one at iteration 1), with a task's branch updated from `work`."""
    carry = node.carry or Carry()
    carry = carry.model_copy(update={"since": loop_since(node)})
    if work is not None and work.head is not None:
        carry = carry.model_copy(
            update={"branch": work.branch, "base": work.base, "head": work.head}
        )
    return carry


def iterate(
    node: Node,
    graph_file: GraphFile,
    result: RunnerResult,
    *,
    attempt: int,
    now: dt.datetime,
    work: Work | None = None,
) -> Transition | AgentFailure:
    """Turn a `continue` result of a running node into its `iterate` transition.

    Args:
      node: the node, running `attempt` (the caller checked the attempt is current).
      graph_file: graph defaults (the bounds and the lease).
      result: a result with status `continue`.
      attempt: the attempt the iteration belongs to.
      now: the current time.
      work: a task's branch after this iteration's leftovers were committed, if it has any.

    Returns:
      The transition (same status, same claim with a renewed lease, `carry` one iteration on),
      or an AgentFailure when the next iteration would break `max_iterations`/`max_duration_s`.
    """
    carry = _carried(node, work)
    max_iterations, max_duration_s = limits(node, graph_file)
    if carry.iteration >= max_iterations:
        return AgentFailure(
            ErrorKind.TASK_FAILURE,
            f"iteration {carry.iteration} asked to continue, but max_iterations is "
            f"{max_iterations}",
        )
    since = carry.since or now  # `_carried` filled it from the claim; `now` only without one
    elapsed = (now - since).total_seconds()
    if elapsed > max_duration_s:
        return AgentFailure(
            ErrorKind.TASK_FAILURE,
            f"iterating for {elapsed:.0f}s asked to continue, but max_duration_s is "
            f"{max_duration_s:g}",
        )
    following = carry.iteration + 1
    carry = carry.model_copy(update={"iteration": following, "state": dict(result.state),
                                     "since": since})  # fmt: skip
    claim = node.claim
    if claim is not None:
        lease = dt.timedelta(seconds=graph_file.defaults.lease_s)
        claim = claim.model_copy(update={"lease_until": now + lease})
    new = node.model_copy(update={"carry": carry, "claim": claim, "updated_at": now})
    summary = result.summary or "progress (no summary given)"
    return Transition(
        verb=ITERATE_VERB,
        subject=node.id,
        summary=f"iteration {following - 1}: {summary}",
        put=(new,),
        attempt=attempt,
        trailers=((ITERATION_TRAILER, str(following)),),
    )


def wanted_ids(result: RunnerResult) -> tuple[str, ...]:
    """Return the ids a `needs` result names, in order, each once."""
    ids = [item if isinstance(item, str) else item.id for item in result.needs]
    return tuple(dict.fromkeys(ids))


def defer(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    graph_file: GraphFile,
    result: RunnerResult,
    added: list[Node],
    *,
    attempt: int,
    now: dt.datetime,
    work: Work | None = None,
) -> Transition | AgentFailure:
    """Turn a `needs` result into its `defer` transition: new deps, back to open, nothing spent.

    Args:
      node: the node, running `attempt`.
      nodes: the graph's summaries.
      graph_file: graph defaults (`max_deferrals`).
      result: a result with status `needs`.
      added: the new nodes it proposes, already judged against the planner bounds.
      attempt: the attempt that deferred.
      now: the current time.
      work: a task's branch with this attempt's work, carried to the next attempt.

    Returns:
      The transition, or an AgentFailure naming the bound, the unknown node or the cycle.
    """
    carry = _carried(node, work)
    limit = graph_file.defaults.max_deferrals
    if carry.deferrals >= limit:
        return AgentFailure(
            ErrorKind.TASK_FAILURE,
            f"deferred {carry.deferrals} time(s) already; max_deferrals is {limit}",
        )
    merged: dict[str, graph.NodeLike] = dict(nodes)
    merged.update({n.id: summarize(n) for n in added})
    wanted = wanted_ids(result)
    for index, nid in enumerate(wanted):
        if nid == node.id:
            return AgentFailure(ErrorKind.INVALID_RESULT, f"needs[{index}]: a node cannot wait "
                                "for itself")  # fmt: skip
        if nid not in merged:
            return AgentFailure(ErrorKind.INVALID_RESULT, f"needs[{index}]: unknown node {nid!r}")
        if merged[nid].status in (Status.FAILED, Status.CANCELLED):
            return AgentFailure(
                ErrorKind.INVALID_RESULT,
                f"needs[{index}]: {nid} is {merged[nid].status.value}; it will never be done",
            )
    deps = tuple(dict.fromkeys((*node.deps, *wanted)))
    new = node.model_copy(
        update={
            "status": Status.OPEN,
            "claim": None,
            "deps": deps,
            "not_before": None,
            "attempt_base": node.attempt_base + 1,  # waiting is not failing: nothing spent
            # The clock stops while it waits: the next attempt starts it again (`since` None).
            "carry": carry.model_copy(
                update={"deferrals": carry.deferrals + 1, "waited": wanted, "since": None}
            ),
            "updated_at": now,
        }
    )
    merged[node.id] = summarize(new)
    cycle = graph.find_cycle(merged, roots=[node.id])
    if cycle is not None:
        return AgentFailure(
            ErrorKind.INVALID_RESULT, "needs would make a cycle: " + " -> ".join(cycle)
        )
    put = (new, *added)
    summary = result.summary or "waits for other nodes"
    return Transition(
        verb=DEFER_VERB,
        subject=node.id,
        from_status="running",
        to_status="open",
        summary=f"{summary} (waits for {', '.join(wanted)})",
        put=put,
        nodes=tuple(n.id for n in put),
        attempt=attempt,
    )
