"""Legality of agent loops and deferrals on the state branch (docs/state-branch.md).

Called by `core.legality.check_step` for every node a commit changes (present before and after):

- `iterate` keeps the node `running` under the same claim and attempt, moves `carry.iteration`
  up by exactly one, names it in a `Gitdag-Iteration` trailer, and changes nothing else (but the
  carried state, the branch head and the lease).
- No other verb moves `carry.iteration` (a crash recovery or a deferral keeps it; a failure or a
  retry may drop the whole `carry`), and only `iterate` carries a `Gitdag-Iteration` trailer.
- `defer` moves `running -> open`, keeps `attempts`, gives the attempt back (`attempt_base` + 1),
  only adds deps, and moves `carry.deferrals` up by exactly one; no other verb changes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from gitdag.core.agent_loops import DEFER_VERB, ITERATE_VERB, ITERATION_TRAILER
from gitdag.core.model import Node, Status

# (message, field): `core.legality` turns each into a Violation of the node.
Problem = tuple[str, str | None]

_ITERATE_MAY_CHANGE = frozenset({"carry", "claim", "updated_at"})


def check(
    old: Node,
    new: Node,
    verb: str | None,
    *,
    subject: str | None,
    trailers: Mapping[str, list[str]],
) -> list[Problem]:
    """Return the loop and deferral rules the change `old -> new` by `verb` breaks.

    Args:
      old: the node at the parent commit.
      new: the node at the commit.
      verb: the commit's transition verb.
      subject: the node the commit's title names.
      trailers: the commit's `Gitdag-*` trailers.
    """
    nid = new.id
    problems: list[Problem] = []
    old_iteration = old.carry.iteration if old.carry else 1
    new_iteration = new.carry.iteration if new.carry else None
    old_deferrals = old.carry.deferrals if old.carry else 0
    new_deferrals = new.carry.deferrals if new.carry else None
    trailer = trailers.get(ITERATION_TRAILER, [])
    if verb == ITERATE_VERB:
        if nid == subject:
            problems += _iterate_problems(old, new, old_iteration, trailer)
    elif new_iteration is not None and new_iteration != old_iteration:
        problems.append(
            (
                f"carry.iteration {old_iteration} -> {new_iteration} by "
                f"{verb!r} (only iterate moves it)",
                "carry.iteration",
            )
        )
    if trailer and verb != ITERATE_VERB and nid == subject:
        problems.append((f"{ITERATION_TRAILER} trailer on a {verb!r}", None))
    if verb == DEFER_VERB and nid == subject:
        problems += _defer_problems(old, new, old_deferrals, new_deferrals)
    elif new_deferrals is not None and new_deferrals != old_deferrals:
        problems.append(
            (
                f"carry.deferrals {old_deferrals} -> {new_deferrals} by "
                f"{verb!r} (only defer moves it)",
                "carry.deferrals",
            )
        )
    return problems


def _iterate_problems(old: Node, new: Node, before: int, trailer: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    if old.status is not Status.RUNNING or new.status is not Status.RUNNING:
        problems.append(("iterate on a node that is not running", "status"))
    if new.carry is None or new.carry.iteration != before + 1:
        got = new.carry.iteration if new.carry else "none"
        problems.append(
            (
                f"iterate must move carry.iteration from {before} to {before + 1}, not {got}",
                "carry.iteration",
            )
        )
    elif trailer != [str(new.carry.iteration)]:
        problems.append(
            (
                f"{ITERATION_TRAILER} {trailer} is not the new iteration {new.carry.iteration}",
                "carry.iteration",
            )
        )
    if old.claim is None or new.claim is None or old.claim.attempt != new.claim.attempt:
        problems.append(("iterate must keep the running claim", "claim"))
    elif new.claim.model_copy(update={"lease_until": old.claim.lease_until}) != old.claim:
        problems.append(("iterate may only renew the claim's lease", "claim"))
    same = new.model_copy(update={k: getattr(old, k) for k in _ITERATE_MAY_CHANGE})
    if same != old:
        changed = sorted(k for k in Node.model_fields if getattr(same, k) != getattr(old, k))
        problems.append((f"iterate changed {', '.join(changed)}", changed[0]))
    return problems


def _defer_problems(old: Node, new: Node, before: int, after: int | None) -> list[Problem]:
    problems: list[Problem] = []
    if after != before + 1:
        problems.append(
            (f"defer must move carry.deferrals from {before} to {before + 1}", "carry.deferrals")
        )
    if new.attempt_base != old.attempt_base + 1:
        problems.append(("defer must give the attempt back (attempt_base + 1)", "attempt_base"))
    dropped = [d for d in old.deps if d not in new.deps]
    if dropped:
        problems.append((f"defer dropped deps {', '.join(dropped)}", "deps"))
    if new.claim is not None:
        problems.append(("a deferred node keeps no claim", "claim"))
    return problems
