"""Judging a runner's result against the graph (spec §4): accept it whole, or reject it whole.

An accepted result becomes one `complete` (or `checkpoint`/`fail`) transition; a rejected one
becomes a failed attempt with `invalid_result`, and nothing of the proposal is applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gitdag.core import agent_loops, flow, graph, lifecycle
from gitdag.core.edits import Overlay, check_additions, new_node
from gitdag.core.model import (
    Checkpoint,
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
from gitdag.core.states import can_move
from gitdag.core.transitions import Rejected, Transition

MAX_ADD_NODES = 100
SETTABLE = frozenset({Status.OPEN, Status.CANCELLED})


@dataclass(frozen=True)
class PoolRules:
    """Runner-pool promotion parameters for failures (from the config)."""

    size: int = 1
    promote_on: frozenset[ErrorKind] = frozenset()
    promote_after: int = 2


def judge(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    full: Mapping[str, Node],
    graph_file: GraphFile,
    result: RunnerResult,
    *,
    attempt: int,
    now: dt.datetime,
    work: Work | None = None,
    pool: PoolRules = PoolRules(),
) -> Transition | Rejected:
    """Turn a runner's result into the transition to commit.

    Args:
      node: the node as stored now (must be running this attempt).
      nodes: summaries of the whole graph.
      full: full records of the nodes the result's setStatus names (looked up by the caller).
      graph_file: graph defaults.
      result: the parsed result.
      attempt: the attempt the result belongs to.
      now: the current time.
      work: for a code-changing node whose branch has commits to integrate: its work record.
      pool: promotion rules, for failures.

    Returns:
      The transition (complete / checkpoint / fail / escalate), or Rejected when the attempt is
      not the node's current one (a stale worker: nothing is written at all).
    """
    stale = lifecycle.stale_attempt(node, attempt)
    if stale is not None:
        return stale
    failing = _Failing(node, nodes, graph_file, attempt, now, pool)
    if result.status == "fail":
        summary = result.summary or "; ".join(result.errors) or "the runner reported failure"
        return failing.fail(ErrorKind.TASK_FAILURE, summary)
    if result.status == "checkpoint":
        if result.checkpoint is None:
            return failing.fail(
                ErrorKind.INVALID_RESULT, "status checkpoint without a checkpoint question"
            )
        return _checkpoint(node, result, attempt=attempt, now=now)
    if result.status == "continue":
        looped = agent_loops.iterate(node, graph_file, result, attempt=attempt, now=now, work=work)
        return failing.settle(looped)
    if result.status == "needs":
        return _needs(node, nodes, full, graph_file, result, failing, work)
    unset = flow.missing_exports(node, result.outputs)  # workflow outputs (docs/workflows.md)
    if unset is not None:
        return failing.fail(ErrorKind.INVALID_RESULT, unset)
    verdict = _check_proposal(node, nodes, full, result, now)
    if isinstance(verdict, Rejected):
        return failing.fail(ErrorKind.INVALID_RESULT, f"result rejected: {verdict}")
    added, changed = verdict
    return _complete(node, result, added, changed, attempt=attempt, now=now, work=work)


@dataclass(frozen=True)
class _Failing:
    """What every failure of one judged attempt shares: only the kind and summary vary."""

    node: Node
    nodes: Mapping[str, NodeSummary]
    graph_file: GraphFile
    attempt: int
    now: dt.datetime
    pool: PoolRules

    def fail(self, kind: ErrorKind, summary: str) -> Transition | Rejected:
        """Record this attempt as failed with `kind` and `summary` (retry, or fail and escalate)."""
        return fail_attempt(
            self.node,
            self.nodes,
            self.graph_file,
            kind=kind,
            summary=summary,
            attempt=self.attempt,
            now=self.now,
            pool=self.pool,
        )

    def settle(self, outcome: Transition | agent_loops.AgentFailure) -> Transition | Rejected:
        """Return a transition as it is, and record an agent failure as this attempt's."""
        if isinstance(outcome, agent_loops.AgentFailure):
            return self.fail(outcome.kind, outcome.summary)
        return outcome


def _needs(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    full: Mapping[str, Node],
    graph_file: GraphFile,
    result: RunnerResult,
    failing: _Failing,
    work: Work | None,
) -> Transition | Rejected:
    # New nodes named in `needs` are judged exactly like a planner's `next.addNodes`.
    if result.next.setStatus:
        return failing.fail(ErrorKind.INVALID_RESULT, "next.setStatus: not with status needs")
    new_nodes = tuple(item for item in result.needs if not isinstance(item, str))
    proposal = result.model_copy(
        update={"next": result.next.model_copy(update={"addNodes": (*new_nodes,
                                                                    *result.next.addNodes)})}
    )  # fmt: skip
    verdict = _check_proposal(node, nodes, full, proposal, failing.now)
    if isinstance(verdict, Rejected):
        return failing.fail(ErrorKind.INVALID_RESULT, f"result rejected: {verdict}")
    added, _ = verdict
    deferred = agent_loops.defer(
        node, nodes, graph_file, result, added, attempt=failing.attempt, now=failing.now, work=work
    )
    return failing.settle(deferred)


def _checkpoint(node: Node, result: RunnerResult, *, attempt: int, now: dt.datetime) -> Transition:
    assert result.checkpoint is not None
    cp = Checkpoint(question=result.checkpoint.question, options=tuple(result.checkpoint.options))
    new = node.model_copy(
        update={
            "status": Status.NEEDS_HUMAN,
            "claim": None,
            "checkpoint": cp,
            "outputs": _outputs(result),
            "updated_at": now,
        }
    )
    return Transition(
        verb="checkpoint",
        subject=node.id,
        from_status="running",
        to_status="needs_human",
        summary=cp.question,
        put=(new,),
        attempt=attempt,
    )


def _complete(
    node: Node,
    result: RunnerResult,
    added: list[Node],
    changed: list[Node],
    *,
    attempt: int,
    now: dt.datetime,
    work: Work | None,
) -> Transition:
    outputs = _outputs(result)
    if work is not None and node.changes_code():
        done = lifecycle.to_merging(
            node, work, attempt=attempt, summary=result.summary, outputs=outputs, now=now
        )
    else:
        done = node.model_copy(
            update={
                "status": Status.DONE,
                "claim": None,
                "error": None,
                "outputs": outputs,
                "updated_at": now,
                **({"work": work} if work is not None else {}),
            }
        )
    put = (done, *added, *changed)
    return Transition(
        verb="complete",
        subject=node.id,
        from_status="running",
        to_status=done.status.value,
        summary=(result.summary or "done") + _edits_note(added, changed),
        put=put,
        nodes=tuple(n.id for n in put),
        attempt=attempt,
    )


def _edits_note(added: list[Node], changed: list[Node]) -> str:
    extra = ""
    if added:
        extra += f" (+{len(added)} node{'s' if len(added) != 1 else ''})"
    if changed:
        extra += f" (set {', '.join(f'{n.id}={n.status.value}' for n in changed)})"
    return extra


def _outputs(result: RunnerResult) -> dict[str, str]:
    # Every finished node records a summary: dependents' packets show it, and a done node
    # without one is what a hand-made (illegal) edit looks like to `gitdag validate`.
    outputs = dict(result.outputs)
    outputs["summary"] = (
        result.summary or outputs.get("summary") or f"{result.status} (no summary given)"
    )
    return outputs


def fail_attempt(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    graph_file: GraphFile,
    *,
    kind: ErrorKind,
    summary: str,
    attempt: int,
    now: dt.datetime,
    pool: PoolRules = PoolRules(),
    paths: tuple[str, ...] = (),
    verb: str = "fail",
) -> Transition | Rejected:
    """Record a failed attempt that produced no usable result (timeout, spawn error, ...)."""
    return lifecycle.fail(
        node,
        nodes,
        graph_file,
        kind=kind,
        summary=summary,
        now=now,
        attempt=attempt,
        paths=paths,
        pool_size=pool.size,
        promote_on=pool.promote_on,
        promote_after=pool.promote_after,
        verb=verb,
    )


def scope_of(nodes: Mapping[str, graph.NodeLike], node_id: str) -> set[str]:
    """Return the ids whose status a node's result may set (spec §4).

    A plan node's scope is its descendants; an escalation node (`escalate-<id>`) may also
    reopen the node it escalates; any other node's scope is itself.
    """
    node = nodes[node_id]
    found = graph.scope(nodes, node_id)
    if node.kind is Kind.PLAN and node_id.startswith(lifecycle.ESCALATE_PREFIX):
        found |= set(node.after)
        for target in node.after:
            if target in nodes:
                found |= graph.descendants(nodes, target)
    return found


def _check_proposal(
    node: Node,
    nodes: Mapping[str, NodeSummary],
    full: Mapping[str, Node],
    result: RunnerResult,
    now: dt.datetime,
) -> tuple[list[Node], list[Node]] | Rejected:
    proposed = result.next.addNodes
    if len(proposed) > MAX_ADD_NODES:
        return Rejected(
            f"adds {len(proposed)} nodes, more than {MAX_ADD_NODES}", field="next.addNodes"
        )
    added: list[Node] = []
    for index, proposal in enumerate(proposed):
        fields = proposal.to_fields()
        fields.setdefault("parent", node.id)
        if fields.get("parent") is None:
            fields["parent"] = node.id
        where = f"next.addNodes[{index}]"
        built = new_node(fields, now)
        if isinstance(built, Rejected):
            return Rejected(built.reason, field=f"{where}.{built.field}" if built.field else where)
        if built.parent != node.id and built.parent not in scope_of(nodes, node.id):
            return Rejected(
                f"parent {built.parent!r} is outside this node's scope", field=f"{where}.parent"
            )
        existing = nodes.get(built.id)
        if existing is not None:
            if existing.parent == built.parent and _same_request(full.get(built.id), built):
                continue  # the same node proposed again by the same parent: idempotent
            return Rejected(f"node {built.id!r} already exists", field=f"{where}.id")
        added.append(built)
    problem = check_additions(nodes, added)
    if problem is not None:
        return Rejected(
            problem.reason,
            field=f"next.addNodes: {problem.field}" if problem.field else "next.addNodes",
        )
    if not result.next.setStatus:
        return added, []
    merged = Overlay(nodes, {n.id: summarize(n) for n in added})
    allowed = scope_of(merged, node.id)
    changed: list[Node] = []
    for index, change in enumerate(result.next.setStatus):
        where = f"next.setStatus[{index}]"
        item = change
        if item.id == node.id:
            return Rejected(
                "a node cannot set its own status; report it as the result's status", field=where
            )
        if item.id not in merged:
            return Rejected(f"unknown node {item.id!r}", field=f"{where}.id")
        if item.id not in allowed:
            return Rejected(f"node {item.id!r} is outside this node's scope", field=f"{where}.id")
        target = Status(item.status)
        if target not in SETTABLE:
            return Rejected(
                f"status {target.value!r} cannot be set by a result (open or cancelled only)",
                field=f"{where}.status",
            )
        current = next((n for n in added if n.id == item.id), None) or full.get(item.id)
        if current is None:
            return Rejected(f"node {item.id!r} could not be read", field=f"{where}.id")
        if current.status is Status.RUNNING or current.status is Status.MERGING:
            return Rejected(
                f"node {item.id!r} is {current.status.value}; it cannot be changed now",
                field=f"{where}.status",
            )
        if not can_move(current.status, target, "edit" if target is Status.OPEN else "cancel"):
            return Rejected(
                f"{item.id}: {current.status.value} -> {target.value} is not allowed",
                field=f"{where}.status",
            )
        update: dict[str, object] = {"status": target, "updated_at": now, "not_before": None}
        if target is Status.OPEN:
            update["attempt_base"] = current.attempts  # reopened by a planner: a fresh budget
        changed = [c for c in changed if c.id != item.id]
        changed.append(current.model_copy(update=update))
    added_ids = {n.id for n in added}
    added = [next((c for c in changed if c.id == n.id), n) for n in added]
    changed = [c for c in changed if c.id not in added_ids]
    return added, changed


def _same_request(existing: Node | None, proposed: Node) -> bool:
    if existing is None:
        return False
    keys = (
        "title",
        "description",
        "kind",
        "deps",
        "after",
        "run",
        "ownership",
        "acceptance",
        "verify",
    )
    return all(getattr(existing, k) == getattr(proposed, k) for k in keys)
