"""After a crash: a `command` node's orphaned run is waited for and its outcome adopted.

A command node's shell command is wrapped so that it records its own exit code in its run
directory (`runner/bindings.py`), so a run that outlived its supervisor can be judged from its
files: exit 0 is a success (with its `$GITDAG_OUTPUT`), anything else a `task_failure`. Adopting
it instead of stopping and rerunning it is what makes a handler run exactly once even when the
supervisor is killed mid-handler (docs/workflows.md). Agents are not adopted (their result needs
the supervisor's view of the worktree), nor are command nodes with `worktree: true`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag.core import judging
from gitdag.core.model import ErrorKind, Kind, Node
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.runner.bindings import EXIT_FILE
from gitdag.runner.collect import with_output_file
from gitdag.runner.orphans import PidInfo, wait_orphan
from gitdag.runner.run_files import OUTCOME_FILE, OUTPUT_FILE
from gitdag.store.snapshot import Snapshot

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor


def _is_handler(sup: Supervisor, node: Node) -> bool:
    snap = sup.store.snapshot()
    for up in node.after:
        if up in snap.nodes:
            other = sup.store.node(snap, up)
            if node.id in (other.on_failure or ()) + (other.on_success or ()):
                return True
    return False


def adopt(sup: Supervisor, node: Node, run_dir: Path, info: PidInfo | None) -> bool:
    """Wait for an orphaned command run and commit its outcome; False when it cannot be adopted."""
    if node.kind is not Kind.COMMAND or node.worktree or info is None or node.claim is None:
        return False
    # A handler's orphan is waited for (up to its timeout): it must run exactly once. Any other
    # command's orphan is adopted only when it has already ended (else stopped and rerun, as
    # before), so a long build left running does not hold the restart up.
    limit = (
        float(node.timeout_s or sup.settings.defaults.timeout_s) if _is_handler(sup, node) else 0
    )
    if not wait_orphan(info, limit):
        return False
    try:
        code = int((run_dir / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return False  # it did not get to record its exit: rerun it
    attempt = node.claim.attempt
    if code == 0:
        found = with_output_file(
            RunnerResult(status="success", summary="exited 0 (adopted after a restart)"),
            run_dir / OUTPUT_FILE,
        )
    else:
        found = None
    pool = sup.launcher.pool_rules(node)

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if node.id not in snap.nodes:
            return Rejected("gone")
        current = sup.store.node(snap, node.id)
        if isinstance(found, RunnerResult):
            return judging.judge(current, snap.nodes, {}, snap.graph, found,
                                   attempt=attempt, now=now, pool=pool)  # fmt: skip
        why = f"command exited with code {code}" if found is None else found.reason
        kind = ErrorKind.TASK_FAILURE if found is None else found.kind
        return judging.fail_attempt(current, snap.nodes, snap.graph, kind=kind, summary=why,
                                      attempt=attempt, now=now, pool=pool)  # fmt: skip

    outcome = sup.port.transact(compute)
    record = {"node_id": node.id, "attempt": attempt, "exit_code": code, "adopted": True}
    (run_dir / OUTCOME_FILE).write_text(json.dumps(record) + "\n", encoding="utf-8")
    if outcome is not None and not isinstance(outcome, Rejected):
        sup.progress.event(f"{node.id}: adopted attempt {attempt}'s outcome (exit {code})")
    return True
