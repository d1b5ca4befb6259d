"""Why a run stops: the exit code and the last line of `gitdag run` and `gitdag work`.

Computed once, here, from the snapshot and the few facts only the running process knows (the
proposals it wrote this run, the starts and merges it holds back for a repair, a worker's
labels), so `run` and `work` explain a stop the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gitdag.core import graph, scheduling
from gitdag.core.model import NodeSummary


@dataclass(frozen=True)
class LocalFacts:
    """What the stopping process knows that the snapshot does not show.

    Attributes:
      proposals: proposal branches this run wrote that nobody applied yet.
      held_starts: one phrase per environment cause its ready nodes wait on.
      merge_hold: the merge queue's cause, as (kind, repair), if it waits on one.
      held_merges: the merging nodes that wait on that cause here.
      labels: a worker's labels (`gitdag work`); None for `gitdag run`.
      group_waits: one phrase per transaction group whose integration waits (`gitdag run`).
    """

    proposals: tuple[str, ...] = ()
    held_starts: tuple[str, ...] = ()
    merge_hold: tuple[str, str] | None = None
    held_merges: int = 0
    labels: tuple[str, ...] | None = None
    group_waits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stop:
    """The exit code, and the one line that says why (and which command helps)."""

    code: int
    line: str


def why_stopped(
    nodes: Mapping[str, NodeSummary], *, paused: bool, now: dt.datetime, facts: LocalFacts
) -> Stop:
    """Explain a stop once nothing more can run here: 0 when all is done, else 1 and why.

    A worker whose only ready nodes need labels it lacks stops with 0: the graph is not stuck,
    another worker takes them.
    """
    code = 1 if facts.proposals else scheduling.outcome_code(nodes)
    counts = graph.counts(nodes.values())
    summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    if code == 0:
        return Stop(0, f"all done ({summary})")
    blocked = graph.blocked(nodes)
    others = graph.ready(nodes, now) if facts.labels is not None and not paused else []
    if others and not blocked and not counts["failed"] and not facts.proposals:
        names = ", ".join(others[:5])
        return Stop(0, f"nothing left for this worker ({summary}); {len(others)} ready node(s) "
                       f"need labels it lacks: {names}")  # fmt: skip
    why = []
    if paused:
        why.append("the graph is paused (gitdag resume)")
    if counts["needs_human"]:
        why.append(f"{counts['needs_human']} node(s) wait for an answer (gitdag answer)")
    if counts["failed"]:
        why.append(f"{counts['failed']} node(s) failed (gitdag show / gitdag retry)")
    why += facts.held_starts
    if facts.merge_hold is not None:
        kind, repair = facts.merge_hold
        why.append(f"{facts.held_merges} merge(s) wait for a repair ({kind}: {repair})")
    if blocked:
        why.append(f"{len(blocked)} node(s) blocked by failed deps")
    why += facts.group_waits
    if others:
        why.append(f"{len(others)} ready node(s) need labels this worker lacks")
    why += [
        f"proposal {name} awaits review (gitdag apply-proposal {name})" for name in facts.proposals
    ]
    held_here = facts.held_merges if facts.merge_hold is not None else 0
    for status, here in (("running", 0), ("merging", held_here)):
        if counts[status] - here > 0:  # held merges were named above
            why.append(f"{counts[status] - here} node(s) {status} elsewhere (gitdag status)")
    if not why:
        why.append("no node is ready (gitdag status)")
    return Stop(code, f"stopped: nothing more can run ({summary}); " + "; ".join(why))
