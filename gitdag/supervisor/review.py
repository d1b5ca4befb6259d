"""`review: required`: a planner's new nodes go to a proposal branch a person applies.

The plan node completes with `outputs.proposal` naming the branch; a run that ends with a
proposal of its own still unapplied exits 1 and names it (core/stopping.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected
from gitdag.store.proposal_branches import propose_nodes
from gitdag.store.snapshot import Snapshot

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor


class Reviews:
    """The proposals this run wrote, and writing one."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.written: list[tuple[str, tuple[str, ...]]] = []  # (name, proposed ids), this run

    def propose(self, node_id: str, attempt: int, result: RunnerResult) -> RunnerResult | Rejected:
        """Write the plan's new nodes as a proposal; the result to commit without them."""
        sup = self.sup
        name = f"{node_id}-a{attempt}"
        nodes = [p.to_fields() for p in result.next.addNodes]
        outcome = propose_nodes(
            sup.store, name, nodes, parent=node_id, actor=sup.actor, summary=result.summary
        )
        if isinstance(outcome, Rejected):
            return outcome
        ids = tuple(str(n["id"]) for n in nodes)
        self.written.append((name, ids))
        sup.progress.event(
            f"{node_id}: proposed {len(ids)} node(s) for review on dagain/proposals/{name} "
            f"(gitdag diff dagain/state dagain/proposals/{name}; gitdag apply-proposal {name})"
        )
        outputs = {**result.outputs, "proposal": f"dagain/proposals/{name}"}
        summary = (
            f"{result.summary or 'planned'} "
            f"(proposed {len(ids)} node(s) on dagain/proposals/{name} for review)"
        )
        return result.model_copy(
            update={
                "next": result.next.model_copy(update={"addNodes": ()}),
                "outputs": outputs,
                "summary": summary,
            }
        )

    def pending(self, snap: Snapshot) -> tuple[str, ...]:
        """The proposals of this run none of whose nodes are in the graph yet."""
        return tuple(name for name, ids in self.written if not any(i in snap.nodes for i in ids))
