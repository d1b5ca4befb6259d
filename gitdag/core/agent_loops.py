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


def _carried(node: Node, work: Work | None) -> Carry:
    """The node's carry (a fresh one at iteration 1), with a task's branch updated from `work`."""
    carry = node.carry or Carry(since=node.claim.since if node.claim else None)
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
    since = carry.since or now
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
            "carry": carry.model_copy(update={"deferrals": carry.deferrals + 1, "waited": wanted}),
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
