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
(named with their repair); results a worker kept in `.dagain/local/pending/` that never landed;
the loose object count (suggests `git gc`).

In a clone without a local state branch (a `gitdag work --remote` worker's clone, or a plain clone
whose remote has `dagain/state`: clone_checks.py) the advice names the remote instead of
`gitdag init`, and only the checks that make sense there run: configuration and runners, the
tracking ref's locks, orphaned runners, checkouts, pending results, objects.
"""

from __future__ import annotations

from gitdag.doctor.clone_checks import check_no_state, check_pending, clone_kind, describe
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
from gitdag.store.remote import tracking_ref
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore

__all__ = [
    "LOOSE_OBJECTS_LIMIT", "TRASH_STALE_S", "VERIFIED_HEAD", "Finding", "Report", "check_checkouts",
    "check_config", "check_holds",
    "check_locks", "check_objects", "check_orphans", "check_pending", "check_state", "check_target",
    "check_worktrees", "examine", "repair",
]  # fmt: skip


def examine(store: StateStore) -> Report:
    """Run every check (read-only)."""
    local = store.paths.local
    supervisor = running_supervisor(local)
    findings: list[Finding] = []
    findings += check_config(store)
    if store.head() is None:
        return _examine_clone(store, supervisor, findings)
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
    findings += check_pending(store, clone_kind(store), supervisor)
    findings += check_objects(store)
    return Report(findings, supervisor)


def _examine_clone(store: StateStore, supervisor: str | None, findings: list[Finding]) -> Report:
    """A clone without a local state branch: a worker's, a plain clone's, or not initialised."""
    kind = clone_kind(store)
    findings += check_no_state(store, kind)
    for remote in kind.workers:
        # The worker writes its graph's tracking ref: a lock a killed worker left is stale here.
        tracking = StateStore(store.repo, store.paths, ref=tracking_ref(remote, "state").encode())
        findings += check_locks(tracking, supervisor)
    findings += check_orphans(store)
    findings += check_checkouts(store, supervisor)
    findings += check_pending(store, kind, supervisor)
    findings += check_objects(store)
    return Report(findings, supervisor, describe(kind))
