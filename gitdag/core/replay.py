"""Replaying one local transition on top of a remote graph that moved on (`gitdag sync`).

A clone's `dagain/state` and its remote's diverged: both have commits since their merge base.
Each local commit is replayed, oldest first, as the same transition (verb, subject, attempt,
summary, trailers) whose change is the commit's own change (its parent -> it, node by node)
merged into the graph as it is now with the semantic three-way merge the proposals use
(`merge3`): a field only the local commit changed takes its value, one only the remote changed
keeps the remote's, a field both changed differently is a conflict naming the node and field.
The result must still be a legal step for its verb (`legality.check_step`, `check_graph`), so a
replay never records what the rules would refuse: a conflict or a broken rule refuses the whole
sync and names the nodes. Nothing is ever written with conflict markers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gitdag.core import graph as graphs
from gitdag.core.commit_message import StepInfo
from gitdag.core.graph_checks import check_graph, edges_changed
from gitdag.core.legality import check_step
from gitdag.core.merge3 import merge_graphs
from gitdag.core.model import GraphFile, Node, summarize
from gitdag.core.transitions import TRAILER_KEYS, Rejected, Transition

REPLAYED = "Gitdag-Replayed"  # trailer: the local commit a replayed commit stands for
_TITLE = re.compile(r"^(\S+) (\S+?)(?:: (\S+) -> (\S+))?$")


@dataclass(frozen=True)
class LocalStep:
    """One local commit to replay: what its message says and what it changed.

    Attributes:
      commit: its sha.
      info: its title and trailers (`commit_message.step_info`).
      summary: its summary paragraph.
      before: the nodes it changed, at its parent (absent: it added them).
      after: the nodes it changed, at it (absent: it removed them).
      ids: every node it changed.
      graph_before: `graph.yaml` at its parent, when it changed it.
      graph_after: `graph.yaml` at it, when it changed it.
    """

    commit: str
    info: StepInfo
    summary: str
    before: Mapping[str, Node]
    after: Mapping[str, Node]
    ids: Sequence[str]
    graph_before: GraphFile | None = None
    graph_after: GraphFile | None = None


def replay(
    step: LocalStep,
    current: Mapping[str, Node],
    graph_now: GraphFile,
    context: Mapping[str, graphs.NodeLike],
) -> Transition | Rejected | None:
    """Return the transition that replays `step` on the graph as it is now.

    Args:
      step: the local commit.
      current: the nodes it changed, as they are now (absent: they do not exist now).
      graph_now: `graph.yaml` now.
      context: the whole graph now, as summaries.

    Returns:
      The transition (its trailers name the local commit); None when the graph holds its change
      already; Rejected naming the conflicting nodes and fields, or the rule the result breaks.
    """
    info = step.info
    short = step.commit[:12]
    merged = merge_graphs(
        step.ids, step.before, current, step.after, graph_base=step.graph_before,
        graph_ours=graph_now, graph_theirs=step.graph_after,
    )  # fmt: skip
    if merged.conflicts:
        nodes = tuple(sorted({c.node for c in merged.conflicts if c.node}))
        what = "; ".join(
            str(c).replace("(state:", "(remote:").replace("proposal:", "here:")
            for c in merged.conflicts
        )
        return Rejected(f"{info.title} ({short}) conflicts with the remote's graph: {what}",
                        nodes=nodes)  # fmt: skip
    if not merged.put and not merged.remove and merged.graph is None:
        return None
    verb = info.verb or "edit"
    match = _TITLE.match(info.title)
    subject = (match.group(2) if match else None) or info.subject or "graph"
    own = set(TRAILER_KEYS)
    extra = tuple((k, v) for k, values in info.trailers.items() if k not in own
                  for v in values)  # fmt: skip
    changed = {n.id for n in merged.put} | set(merged.remove)
    transition = Transition(
        verb=verb,
        subject=subject,
        summary=step.summary,
        from_status=match.group(3) if match else None,
        to_status=match.group(4) if match else None,
        put=tuple(merged.put),
        remove=tuple(merged.remove),
        graph=merged.graph,
        nodes=tuple(dict.fromkeys([*info.nodes, *sorted(changed)])),
        attempt=info.attempt,
        trailers=(*extra, (REPLAYED, step.commit)),
    )
    before = {nid: current[nid] for nid in changed if nid in current}
    after = {n.id: n for n in merged.put}
    check = replace(info, nodes=transition.node_ids())
    violations = check_step(
        before, after, check, context=context, graph_changed=merged.graph is not None,
        graph_before=graph_now, graph_after=merged.graph,
    )  # fmt: skip
    summaries = dict(context)
    for nid in merged.remove:
        summaries.pop(nid, None)
    summaries.update({n.id: summarize(n) for n in merged.put})
    violations += check_graph(summaries, edges_changed(before, after), merged.remove)
    if violations:
        nodes = tuple(sorted({v.node for v in violations if v.node}))
        what = "; ".join(str(v) for v in violations)
        return Rejected(f"{info.title} ({short}) cannot be replayed on the remote's graph: {what}",
                        nodes=nodes)  # fmt: skip
    return transition
