"""What an agent loop's next run (or a deferred node's next attempt) starts from.

The decisions are in `core.agent_loops`; here the node's `carry` becomes a worktree to resume,
a run directory per iteration, the `$GITDAG_STATE`/`$GITDAG_ITERATION` environment and the
packet's Iteration section.
"""

from __future__ import annotations

import json
from pathlib import Path

from gitdag.core.agent_loops import limits
from gitdag.core.model import GraphFile, Node
from gitdag.runner.packet import LoopInfo

# Result statuses whose worktree changes are committed on the node's branch before judging:
# a success integrates them, a `continue` or `needs` carries them to the next run.
KEEPS_WORK = frozenset({"success", "continue", "needs"})


def carried_work(node: Node) -> tuple[str, str] | None:
    """Return (head, base) of the work a node's worktree resumes from, or None to start afresh."""
    carry = node.carry
    if carry is None or carry.head is None or carry.base is None:
        return None
    return carry.head, carry.base


def iteration(node: Node) -> int:
    """Return the iteration a run of the node is (1 without a loop)."""
    return node.carry.iteration if node.carry is not None else 1


def run_dir(runs: Path, node: Node) -> Path:
    """Return the run directory: `<node>/<attempt>/`, and `iteration-<n>/` inside it after 1."""
    base = runs / node.id / str(node.attempts)
    number = iteration(node)
    return base if number == 1 else base / f"iteration-{number}"


def environment(node: Node) -> dict[str, str]:
    """Return `$GITDAG_ITERATION` and `$GITDAG_STATE` (the carried state as compact JSON)."""
    state = node.carry.state if node.carry is not None else {}
    return {
        "GITDAG_ITERATION": str(iteration(node)),
        "GITDAG_STATE": json.dumps(state, separators=(",", ":"), ensure_ascii=False),
    }


def packet_loop(node: Node, graph_file: GraphFile) -> LoopInfo | None:
    """Return the packet's Iteration section, or None for a node that never iterated nor waited."""
    carry = node.carry
    if carry is None:
        return None
    max_iterations, _ = limits(node, graph_file)
    return LoopInfo(
        iteration=carry.iteration,
        max_iterations=max_iterations,
        state=dict(carry.state),
        waited=carry.waited,
    )
