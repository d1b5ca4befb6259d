"""Transaction groups (docs/merge-queue.md): nodes whose changes land all together or not at all.

Decided purely here: which nodes form a group, in which order their branches merge, whether the
group is ready to integrate, and the transitions of its outcome. A landed group is ONE `merge`
commit that moves every member `merging -> done` (with the target's advance, in one ref
transaction); a refused group sends every member back: the members involved (whose branch
conflicted, or whose merge made the check fail) as a failed merge that spends an attempt, the
others to `open` with the attempt given back and their branch carried, each with the reason.
Every such commit carries a `Gitdag-Group: <name>` trailer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gitdag.core import graph, lifecycle
from gitdag.core.model import Carry, ErrorKind, Node, NodeError, NodeSummary, Status
from gitdag.core.transitions import Rejected, Transition

GROUP_TRAILER = "Gitdag-Group"
MAX_ERROR_SUMMARY = 4000


@dataclass(frozen=True)
class Readiness:
    """Whether a group can integrate now: its members in merge order, or why it waits."""

    group: str
    members: tuple[str, ...]  # every member, in dependency order
    merging: tuple[str, ...]  # those to integrate now (the rest are done already)
    waiting: str | None  # None when ready


def members(nodes: Mapping[str, NodeSummary], group: str) -> tuple[str, ...]:
    """Return a group's members in dependency order (ties by claim order)."""
    found = {nid: n for nid, n in nodes.items() if n.group == group}
    order = graph.topological_order(found)
    return tuple(order)


def readiness(nodes: Mapping[str, NodeSummary], group: str) -> Readiness:
    """Tell whether every member of `group` is ready to merge (or already done).

    A member that is open, running or waiting for a human makes the group wait for it; a failed
    or cancelled member makes it wait for a person (`gitdag retry`, or take it out of the group).
    """
    ids = members(nodes, group)
    merging = tuple(nid for nid in ids if nodes[nid].status is Status.MERGING)
    pending = [nid for nid in ids if nodes[nid].status not in (Status.MERGING, Status.DONE)]
    waiting = None
    if pending:
        shown = ", ".join(f"{nid} ({nodes[nid].status.value})" for nid in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        waiting = f"group {group} waits for {shown}{more}"
    elif not merging:
        waiting = f"group {group} has nothing to merge"
    return Readiness(group, ids, merging, waiting)


def _with_group(transition: Transition, group: str) -> Transition:
    return dataclasses.replace(transition, trailers=(*transition.trailers, (GROUP_TRAILER, group)))


def landed(
    group: str, nodes: list[Node], *, merged_commit: str, now: dt.datetime
) -> Transition | Rejected:
    """Every merging member of the group is integrated by `merged_commit`: one `merge` commit."""
    put: list[Node] = []
    for node in nodes:  # each member exactly as it would merge alone, all in one commit
        one = lifecycle.merged(node, merged_commit=merged_commit, now=now)
        if isinstance(one, Rejected):
            return one
        put.extend(one.put)
    first = nodes[0].id
    others = f" (with {', '.join(n.id for n in nodes[1:])})" if len(nodes) > 1 else ""
    return _with_group(
        Transition(
            verb="merge",
            subject=first,
            from_status="merging",
            to_status="done",
            summary=f"group {group} integrated into {merged_commit[:12]}{others}",
            put=tuple(put),
            nodes=tuple(n.id for n in put),
            attempt=nodes[0].attempts,
        ),
        group,
    )


def sent_back(
    node: Node, *, group: str, kind: ErrorKind, reason: str, now: dt.datetime
) -> Transition | Rejected:
    """A member not involved in its group's refusal: back to open, nothing spent, branch kept.

    Its next attempt resumes from its own branch (`carry`), and its packet says why the group
    did not land (`error`, of the group's failure kind).
    """
    if node.status is not Status.MERGING or node.work is None:
        return Rejected(f"{node.id} is {node.status.value}, not merging")
    work = node.work
    carry = (node.carry or Carry()).model_copy(
        # The loop's clock restarts with the next attempt, as after a `needs` wait: the wait
        # for the group was not this member's time.
        update={"branch": work.branch, "base": work.base, "head": work.head, "since": None}
    )
    summary = f"group {group} did not land: {reason}"
    error = NodeError(kind=kind, summary=summary[:MAX_ERROR_SUMMARY], attempt=node.attempts)
    new = node.model_copy(
        update={
            "status": Status.OPEN,
            "error": error,
            "hold": None,
            "carry": carry,
            "not_before": None,
            "attempt_base": node.attempt_base + 1,  # not this member's doing: nothing spent
            "updated_at": now,
        }
    )
    return _with_group(
        Transition(
            verb="merge",
            subject=node.id,
            from_status="merging",
            to_status="open",
            summary=f"{summary} (not involved: no attempt spent)",
            put=(new,),
            attempt=node.attempts,
        ),
        group,
    )


def tag(transition: Transition | Rejected, group: str) -> Transition | Rejected:
    """Add the `Gitdag-Group` trailer to a member's own failed merge."""
    return transition if isinstance(transition, Rejected) else _with_group(transition, group)


def check(
    old: Node, new: Node, verb: str | None, trailers: Mapping[str, list[str]]
) -> list[tuple[str, str | None]]:
    """Return the group rules one node's change breaks, as (message, field).

    A member of a group reaches `done` by `merge` only in its group's commit (a `Gitdag-Group`
    trailer naming its group), and a `Gitdag-Group` commit changes only members of that group
    (their escalation nodes aside, which are added, not changed).
    """
    named = trailers.get(GROUP_TRAILER, [])
    group = new.group or old.group
    problems: list[tuple[str, str | None]] = []
    entered_done = old.status is not Status.DONE and new.status is Status.DONE
    if verb == "merge" and entered_done and new.group and named != [new.group]:
        problems.append((f"a member of group {new.group} merged alone (no {GROUP_TRAILER}: "
                         f"{new.group} trailer)", "group"))  # fmt: skip
    if named and (len(named) != 1 or group != named[0]):
        problems.append((f"{GROUP_TRAILER} {', '.join(named)} on a node of group {group}",
                         "group"))  # fmt: skip
    if named and verb != "merge":
        problems.append((f"{GROUP_TRAILER} on a {verb!r} (only merge)", None))
    return problems
