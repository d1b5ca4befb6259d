"""Whether one commit of the state branch is a legal transition from its parent (spec §3, §7).

The checks read only what the commit changed (the changed nodes before and after, `graph.yaml`
when it changed) plus, for a few rules, the graph at the parent as summaries. The rules, in short:

- **Trailers**: exactly one `Gitdag-Transition` naming a known verb (the title starts with it), a
  `Gitdag-Actor`, and a `Gitdag-Node` for every node the commit changes. Only the root is `init`.
- **Status**: every status change of the subject (the node the title names, or every node for
  human verbs) is allowed by the status table for the commit's verb. A result (`complete`) may also
  reopen or cancel nodes in the subject's scope (`core.judging.scope_of`: a plan's descendants,
  an escalation node's target) and add nodes (open, or cancelled at once); a failure (`fail`,
  `merge`, `escalate`) may also add or reopen the subject's escalation node `escalate-<id>`, and
  `escalate` moves its subject as `fail` would.
- **Results**: a node becomes `done`/`merging` by `complete` only with `outputs.summary` recorded
  (`merging` also needs `work`); `merging -> done` by `merge` needs `work.merged`; `answer` needs
  `checkpoint.answer`; any move to `failed` needs `error`. So a hand-made commit that flips a node
  to `done` without a result is caught whatever verb it claims.
- **Holds**: `hold` is only on a `merging` node, set only by the verb `hold`, which changes
  nothing else; any move out of `merging` clears it.
- **Claims for others**: a claim commit may also claim nodes for raised hands; each such node
  is named by exactly one `Gitdag-Claim-For: <node> <worker> <nonce>` trailer whose worker is
  its claim's, and no node is claimed twice (`core.combining.claim_for_problems`).
- **Attempts** never decrease and grow only by a `claim`, by exactly 1, with `claim.attempt` equal
  to the new count and every dep done; a `Gitdag-Attempt` trailer must match the attempt it acts on.
- **Nodes** are added only fresh (`open`, no attempts, claim, outputs, error or work) and only by
  verbs that add; removed only by `edit`, `revert` or `reset`; `created_at` never changes.
- **graph.yaml** changes only by `init`, `edit`, `pause`/`resume` (which flip `control.paused`
  and nothing else), `revert` or `reset`; it is never removed.
- **Agent loops and groups**: `iterate`, `defer` and `carry` follow `core.agent_rules`; a group
  member reaches `done` only in its group's `merge` commit (`core.groups.check`).
- **Restoring verbs** (`revert`, `reset`) may make any move, but their result must be graph-valid
  (`core.graph_checks.check_graph`), like every commit's.

The commit message is read by `core.commit_message.step_info`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gitdag.core import agent_rules, combining, flow, groups
from gitdag.core import graph as graphs
from gitdag.core.commit_message import StepInfo
from gitdag.core.judging import scope_of
from gitdag.core.lifecycle import ESCALATE_PREFIX
from gitdag.core.model import SATISFIED, TERMINAL, GraphFile, Node, Status
from gitdag.core.states import RESTORING_VERBS, can_move
from gitdag.core.transitions import VERBS

ADDING_VERBS = frozenset({"init", "add", "complete", "escalate", "fail", "merge", "edit", "defer"})
REMOVING_VERBS = frozenset({"edit"}) | RESTORING_VERBS
GRAPH_VERBS = frozenset({"init", "edit", "pause", "resume"}) | RESTORING_VERBS
# Verbs that apply to the subject only; other nodes they touch follow the secondary rules.
RESULT_VERBS = frozenset({"complete", "fail", "merge", "escalate", "iterate", "defer"})
# `escalate` is a failure that also adds (or reopens) `escalate-<id>`: the subject moves as a
# `fail` (or, from merging, a `merge`) would.
SUBJECT_VERBS = {"escalate": ("escalate", "fail", "merge")}
FINISHING_VERBS = frozenset({"complete", "merge", "answer"})
_REOPEN_FROM = frozenset({Status.FAILED, Status.CANCELLED, Status.DONE, Status.SKIPPED})


@dataclass(frozen=True)
class Violation:
    """One broken rule: what is wrong, and the node and field it concerns."""

    message: str
    node: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node {self.node}")
        if self.field:
            where.append(f"field {self.field}")
        return ": ".join([*where, self.message])


def check_trailers(info: StepInfo, changed: Iterable[str], *, is_root: bool) -> list[Violation]:
    """Check the trailers a transition commit must carry."""
    problems: list[Violation] = []
    if not info.verbs:
        problems.append(Violation("no Gitdag-Transition trailer (not a gitdag transition)"))
    elif len(info.verbs) > 1:
        problems.append(Violation(f"{len(info.verbs)} Gitdag-Transition trailers (exactly one)"))
    elif info.verbs[0] not in VERBS:
        problems.append(Violation(f"Gitdag-Transition: unknown verb {info.verbs[0]!r}"))
    else:
        verb = info.verbs[0]
        if info.title.split()[:1] != [verb]:
            problems.append(Violation(f"the title does not start with the verb {verb!r}"))
        if verb == "init" and not is_root:
            problems.append(Violation("init is only the root commit of the branch"))
    if is_root and info.verbs and info.verbs[0] != "init":
        problems.append(Violation("the root commit of the branch must be an init transition"))
    if not (info.actor or "").strip():
        problems.append(Violation("no Gitdag-Actor trailer"))
    if info.attempt_text is not None and info.attempt is None:
        problems.append(Violation(f"Gitdag-Attempt: not a number: {info.attempt_text!r}"))
    named = set(info.nodes)
    missing = sorted(nid for nid in changed if nid not in named)
    for nid in missing:
        problems.append(Violation("changed but not named in a Gitdag-Node trailer", nid))
    return problems


def _fresh_problems(node: Node, *, may_cancel: bool = False) -> list[Violation]:
    problems = []
    if node.status is not Status.OPEN and not (may_cancel and node.status is Status.CANCELLED):
        problems.append(Violation(f"added as {node.status.value!r} (new nodes are open)", node.id,
                                  "status"))  # fmt: skip
    for name, value, empty in (
        ("attempts", node.attempts, 0), ("claim", node.claim, None),
        ("outputs", node.outputs, {}), ("error", node.error, None), ("work", node.work, None),
    ):  # fmt: skip
        if value != empty:
            problems.append(Violation("a new node carries run state", node.id, name))
    return problems


def _status_problems(
    old: Node, new: Node, verb: str | None, info: StepInfo, secondary: str | None
) -> list[Violation]:
    """Rules for a node present before and after; `secondary` names the subject it follows."""
    nid = new.id
    problems: list[Violation] = []
    moved = old.status is not new.status
    if moved:
        move = f"{old.status.value} -> {new.status.value}"
        if secondary is not None:
            reopen = new.status is Status.OPEN and old.status in _REOPEN_FROM
            cancel = new.status is Status.CANCELLED and old.status is not Status.DONE
            if not (reopen or cancel):
                problems.append(Violation(
                    f"{move} is not a move a {verb} of {secondary} may make on another node",
                    nid, "status",
                ))  # fmt: skip
        elif verb is None or not any(
            can_move(old.status, new.status, v) for v in SUBJECT_VERBS.get(verb, (verb,))
        ):
            by = f"by {verb!r}" if verb else "without a transition verb"
            problems.append(Violation(f"{move} is not allowed {by}", nid, "status"))
    if secondary is not None:
        return problems
    problems += _result_problems(old, new, verb, info)
    return problems


def _result_problems(old: Node, new: Node, verb: str | None, info: StepInfo) -> list[Violation]:
    nid = new.id
    problems: list[Violation] = []
    entered = new.status if old.status is not new.status else None
    if entered in (Status.DONE, Status.MERGING) and verb not in FINISHING_VERBS:
        problems.append(Violation(
            f"{new.status.value} without a result (only {', '.join(sorted(FINISHING_VERBS))} "
            "finish a node)", nid, "status",
        ))  # fmt: skip
    if entered in (Status.DONE, Status.MERGING) and verb == "complete":
        if "summary" not in new.outputs:
            problems.append(Violation(
                f"{new.status.value} without a result (no outputs.summary)", nid, "outputs.summary"
            ))  # fmt: skip
        if entered is Status.MERGING and new.work is None:
            problems.append(Violation("merging without a branch to merge", nid, "work"))
    if entered is Status.DONE and verb == "merge" and (new.work is None or not new.work.merged):
        problems.append(Violation("done by merge without the integrating commit", nid,
                                  "work.merged"))  # fmt: skip
    if (
        verb == "answer"
        and entered is not None
        and (new.checkpoint is None or new.checkpoint.answer is None)
    ):
        problems.append(Violation("answered without an answer", nid, "checkpoint.answer"))
    problems += _hold_problems(old, new, verb)
    if entered is Status.FAILED and new.error is None:
        problems.append(Violation("failed without an error record", nid, "error"))
    acts_on_attempt = verb in ("complete", "fail", "escalate", "checkpoint", "iterate", "defer")
    stale = info.attempt is not None and info.attempt != old.attempts
    if acts_on_attempt and old.status is Status.RUNNING and nid == info.subject and stale:
        problems.append(Violation(
            f"Gitdag-Attempt {info.attempt} is not the running attempt {old.attempts}",
            nid, "attempts",
        ))  # fmt: skip
    return problems


def _hold_problems(old: Node, new: Node, verb: str | None) -> list[Violation]:
    """`hold` only on a merging node, set only by the verb `hold`, which changes nothing else."""
    nid = new.id
    if new.hold is not None and new.status is not Status.MERGING:
        return [Violation(f"held while {new.status.value} (only merging nodes wait)", nid, "hold")]
    if verb == "hold":
        unchanged = new.model_copy(update={"hold": old.hold, "updated_at": old.updated_at})
        if new.hold is None or unchanged != old:
            return [Violation("a hold may only set `hold` on a merging node", nid, "hold")]
    elif new.hold is not None and new.hold != old.hold:
        return [Violation(f"`hold` set by {verb!r} (only `hold` sets it)", nid, "hold")]
    return []


def _attempt_problems(
    old: Node, new: Node, verb: str | None, info: StepInfo, context: Mapping[str, graphs.NodeLike]
) -> list[Violation]:
    nid = new.id
    problems: list[Violation] = []
    if new.attempts < old.attempts:
        problems.append(Violation(f"attempts went down from {old.attempts} to {new.attempts}", nid,
                                  "attempts"))  # fmt: skip
    elif new.attempts > old.attempts and verb != "claim":
        problems.append(Violation(f"attempts went up without a claim ({old.attempts} -> "
                                  f"{new.attempts})", nid, "attempts"))  # fmt: skip
    if verb != "claim":
        return problems
    if new.attempts != old.attempts + 1:
        problems.append(Violation(f"a claim must add exactly one attempt ({old.attempts} -> "
                                  f"{new.attempts})", nid, "attempts"))  # fmt: skip
    if new.status is not Status.RUNNING:
        problems.append(Violation(f"claimed but {new.status.value}", nid, "status"))
    if new.claim is None:
        problems.append(Violation("claimed without a claim record", nid, "claim"))
    elif new.claim.attempt != new.attempts:
        problems.append(Violation(f"claim.attempt {new.claim.attempt} is not attempts "
                                  f"{new.attempts}", nid, "claim.attempt"))  # fmt: skip
    if info.attempt is not None and nid == info.subject and info.attempt != new.attempts:
        problems.append(Violation(f"Gitdag-Attempt {info.attempt} is not the new attempt "
                                  f"{new.attempts}", nid, "attempts"))  # fmt: skip
    if old.status is Status.OPEN:
        for dep in new.deps:
            other = context.get(dep)
            if other is None or other.status not in SATISFIED:
                state = other.status.value if other is not None else "missing"
                problems.append(Violation(f"claimed while dep {dep} is {state}", nid, "deps"))
        for ref in new.after:
            other = context.get(ref)
            if other is None or other.status not in TERMINAL:
                state = other.status.value if other is not None else "missing"
                problems.append(Violation(f"claimed while {ref} is {state}", nid, "after"))
    return problems


def _graph_file_problems(
    before: GraphFile | None, after: GraphFile | None, verb: str | None
) -> list[Violation]:
    if after is None:
        return [Violation("graph.yaml was removed", field="graph.yaml")]
    if verb in RESTORING_VERBS or verb == "init":
        return []
    if verb not in GRAPH_VERBS:
        return [Violation(f"graph.yaml changed by {verb!r}", field="graph.yaml")]
    if before is None:
        return [Violation("graph.yaml created after init", field="graph.yaml")]
    if verb in ("pause", "resume"):
        want = verb == "pause"
        expected = before.model_copy(update={"control": before.control.model_copy(
            update={"paused": want})})  # fmt: skip
        if after != expected:
            return [Violation(f"{verb} may only set control.paused to {str(want).lower()}",
                              field="graph.yaml")]  # fmt: skip
    if before.created_at != after.created_at:
        return [Violation("created_at changed", field="graph.yaml:created_at")]
    return []


class _Scope:
    """Decides, for result verbs, whether a node is the subject or one the subject may touch."""

    def __init__(
        self,
        verb: str | None,
        info: StepInfo,
        before: Mapping[str, Node],
        after: Mapping[str, Node],
        context: Mapping[str, graphs.NodeLike],
    ) -> None:
        self.verb, self.subject = verb, info.subject
        named = info.trailers.get(groups.GROUP_TRAILER, [])
        self.group = named[0] if len(named) == 1 else None
        self.before, self.after, self.context = before, after, context
        self._descendants: set[str] | None = None

    def descendants(self) -> set[str]:
        # Computed once per commit, and only when a result touches another node (rare).
        if self._descendants is None:
            merged: dict[str, graphs.NodeLike] = dict(self.context)
            merged.update(self.after)
            subject = self.subject
            node = merged.get(subject) if subject is not None else None
            if subject is not None and node is not None:
                self._descendants = scope_of(merged, subject) - {subject}
            else:
                self._descendants = set()
        return self._descendants

    def of(self, nid: str) -> tuple[str | None, Violation | None]:
        """Return (the subject `nid` follows, or None when the verb applies to it; a violation)."""
        verb, subject = self.verb, self.subject
        if verb not in RESULT_VERBS or subject is None or nid == subject:
            return None, None
        if verb == "merge" and self.group is not None:  # a group lands in one commit
            node = self.after.get(nid) or self.before.get(nid)
            if node is not None and node.group == self.group:
                return None, None
        if verb in ("fail", "merge", "escalate"):
            if nid == f"{ESCALATE_PREFIX}{subject}":
                return subject, None
            return subject, Violation(f"a {verb} of {subject} changed another node", nid)
        if verb in ("iterate", "defer"):  # agent_rules.py: only the subject, and defer's new nodes
            if nid not in self.before and verb == "defer":
                return subject, None
            return subject, Violation(f"a {verb} of {subject} changed another node", nid)
        if nid not in self.before or nid in self.descendants():
            return subject, None  # added nodes: their parent is checked by the graph rules
        return subject, Violation(f"outside the scope of {subject}, whose result changed it", nid)


def check_step(
    before: Mapping[str, Node],
    after: Mapping[str, Node],
    info: StepInfo,
    *,
    context: Mapping[str, graphs.NodeLike],
    graph_changed: bool = False,
    graph_before: GraphFile | None = None,
    graph_after: GraphFile | None = None,
    is_root: bool = False,
) -> list[Violation]:
    """Return every rule one commit breaks (see the module docstring), empty when legal.

    Args:
      before: the changed nodes at the parent (a node absent here was added).
      after: the changed nodes at the commit (a node absent here was removed).
      info: the commit message's title and trailers.
      context: the graph at the parent, as summaries (for scopes and deps).
      graph_changed: whether `graph.yaml` changed.
      graph_before: `graph.yaml` at the parent, when it changed.
      graph_after: `graph.yaml` at the commit, when it changed.
      is_root: the commit has no parent.
    """
    changed = sorted(set(before) | set(after))
    problems = check_trailers(info, changed, is_root=is_root)
    verb = info.verb
    restoring = verb in RESTORING_VERBS
    if graph_changed:
        problems += _graph_file_problems(graph_before, graph_after, verb)
    scope = _Scope(verb, info, before, after, context)

    def status_after(nid: str) -> Status | None:
        if nid in after:
            return after[nid].status
        known = context.get(nid) if nid not in before else None
        return known.status if known is not None else None

    for nid in changed:
        old, new = before.get(nid), after.get(nid)
        if _skipping(old, new) and not restoring:
            assert new is not None
            # A skip rides in whatever commit settles the node's upstream (core/flow.py).
            why = flow.skip_problem(old, new, status_after)
            if why is not None:
                problems.append(Violation(why, nid, "status"))
            if old is None and verb not in ADDING_VERBS:
                problems.append(Violation(f"added by {verb!r}", nid, "id"))
            continue
        secondary, outside = scope.of(nid)
        if outside is not None and not restoring:
            problems.append(outside)
            continue
        if old is None and new is not None:
            if not restoring:
                if verb not in ADDING_VERBS:
                    problems.append(Violation(f"added by {verb!r}", nid, "id"))
                problems += _fresh_problems(new, may_cancel=secondary is not None)
            continue
        if new is None:
            if verb not in REMOVING_VERBS:
                problems.append(Violation(f"removed by {verb!r}", nid, "id"))
            continue
        assert old is not None
        if restoring:
            continue
        if old.created_at != new.created_at:
            problems.append(Violation("created_at changed", nid, "created_at"))
        problems += _status_problems(old, new, verb, info, secondary)
        problems += _attempt_problems(old, new, verb, info, context)
        problems += [
            Violation(message, nid, name)
            for message, name in agent_rules.check(
                old, new, verb, subject=info.subject, trailers=info.trailers
            )
            + groups.check(old, new, verb, info.trailers)
        ]
    if verb == "claim":  # one claim commit may claim for raised hands too (core/combining.py)
        problems += [
            Violation(message, nid, name)
            for message, nid, name in combining.claim_for_problems(
                before, after, info.subject, info.trailers
            )
        ]
    return problems


def _skipping(old: Node | None, new: Node | None) -> bool:
    return (
        new is not None
        and new.status is Status.SKIPPED
        and (old is None or old.status is not Status.SKIPPED)
    )
