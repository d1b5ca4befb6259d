"""`gitdag doctor`: what a crash, a kill -9 or a hand edit can leave behind, and how to repair it.

Each check returns findings: one line saying what is wrong, the command that repairs it, and,
when the repair is safe to make without a person's judgement, a function that makes it
(`gitdag doctor --fix`). Safe means: nothing anyone still needs is lost and no live process is
disturbed; repairs that touch worktrees, runners or the merge queue hold the supervisor lock, so
they never run under a live `gitdag run`. What needs judgement (an invalid state branch, a done
node whose code is not on the target) is reported with its repair command only.

Checks: the configuration loads; the state branch is valid (legality of the commits since the
last verified head, the graph at the head) and has no open incident; no stale locks (the
supervisor's, `refs/heads/<branch>.lock` of the state and target branches); no orphaned runners
(alive, their supervisor dead); no leftover node worktrees or half-deleted checkouts; no checkout
of the target left half-moved by a merge a crash cut short (`workspace/advance.py`); the target
branch agrees with the `done` and `merging` records; merges held for an environment repair
(named with their repair); the loose object count (suggests `git gc`).
"""

from __future__ import annotations

from gitdag.doctor.findings import Finding, Report, repair
from gitdag.doctor.process_checks import check_locks, check_orphans, running_supervisor
from gitdag.doctor.state_checks import VERIFIED_HEAD, check_config, check_holds, check_state
from gitdag.doctor.target_checks import check_target
from gitdag.doctor.workspace_checks import (
    LOOSE_OBJECTS_LIMIT,
    TRASH_STALE_S,
    check_checkouts,
    check_objects,
    check_worktrees,
)
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore

__all__ = [
    "LOOSE_OBJECTS_LIMIT", "TRASH_STALE_S", "VERIFIED_HEAD", "Finding", "Report", "check_checkouts",
    "check_config", "check_holds",
    "check_locks", "check_objects", "check_orphans", "check_state", "check_target",
    "check_worktrees", "examine", "repair",
]  # fmt: skip


def examine(store: StateStore) -> Report:
    """Run every check (read-only)."""
    local = store.paths.local
    supervisor = running_supervisor(local)
    findings: list[Finding] = []
    findings += check_config(store)
    snap: Snapshot | None = None
    state = check_state(store)
    findings += state
    if not any(f.check == "state" for f in state):
        snap = store.snapshot(strict=False)
    findings += check_locks(store, supervisor)
    findings += check_orphans(store)
    findings += check_checkouts(store, supervisor)
    if snap is not None:
        findings += check_worktrees(store, snap, supervisor)
        findings += check_target(store, snap)
        findings += check_holds(store, snap)
    findings += check_objects(store)
    return Report(findings, supervisor)
