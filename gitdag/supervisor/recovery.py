"""After a crash: find running nodes whose worker is gone, stop their orphaned runners, reopen them.

An attempt never runs twice at once: an orphaned runner process of the old attempt is stopped
(or waited for) before the node is reopened, and the next claim starts a new attempt, so a late
result of the old one is rejected as superseded.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from gitdag.core import lifecycle
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import RunnerError
from gitdag.runner.orphans import is_alive, read_pid_info, stop_orphan
from gitdag.store.snapshot import Snapshot
from gitdag.workspace.worktrees import SCRATCH_PREFIX

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor

LOCAL_PREFIX = "supervisor@"


def is_orphaned(node: Node, now: dt.datetime) -> bool:
    """A local supervisor's claim is orphaned once we hold the lock; a remote one when its lease ran out."""
    claim = node.claim
    if claim is None:
        return True
    if claim.worker.startswith(LOCAL_PREFIX):
        return True
    return claim.lease_until is not None and claim.lease_until < now


def recover_orphans(sup: Supervisor, snap: Snapshot) -> None:
    """Reopen every running node whose worker is gone (called with the supervisor lock held)."""
    store = sup.store
    now = store.clock()
    running = [nid for nid, n in snap.nodes.items() if n.status is Status.RUNNING]
    for node_id in running:
        node = store.node(snap, node_id)
        if not is_orphaned(node, now):
            continue
        attempt = node.claim.attempt if node.claim else node.attempts
        run_dir = store.paths.local / "runs" / node_id / str(attempt)
        info = read_pid_info(run_dir)
        alive = info is not None and is_alive(info)
        if info is not None and not stop_orphan(info, grace_s=min(2.0, sup.settings.defaults.kill_grace_s)):
            # Never two live processes for one node: if the orphan cannot be stopped, stop here.
            raise RunnerError(f"{node_id}: the orphaned runner (pid {info.pid}) of attempt {attempt} "
                              "could not be stopped; stop it by hand, then run again")  # fmt: skip
        stopped = alive
        reason = f"attempt {attempt}: its supervisor is gone"
        if stopped:
            reason += " (its orphaned runner was stopped)"

        def compute(s: Snapshot, t: dt.datetime, nid: str = node_id, a: int = attempt,
                    why: str = reason) -> Transition | Rejected:  # fmt: skip
            if nid not in s.nodes:
                return Rejected("gone")
            current = store.node(s, nid)
            if current.claim is None or current.claim.attempt != a:
                return Rejected("moved on")
            return lifecycle.recover(current, reason=why, now=t)

        outcome = sup._transact(compute)
        if not isinstance(outcome, Rejected) and outcome is not None:
            sup.progress.event(f"{node_id}: recovered ({reason})")
    remove_stale_worktrees(sup, store.snapshot())


def remove_stale_worktrees(sup: Supervisor, snap: Snapshot) -> list[str]:
    """Remove the worktrees of nodes that are neither running nor merging; return their ids.

    A crash between a node's last transition and the removal of its worktree (after a merge, or
    a conflict that used up its attempts) would leave the checkout forever: nothing else removes
    the worktree of a node that never runs again (found by bench/crash.py). The branch goes too
    when the node's work is integrated, as after a merge; otherwise it stays for inspection.
    """
    worktrees = sup.launcher.worktrees
    if not worktrees.dir.is_dir():
        return []
    removed = []
    for entry in sorted(worktrees.dir.iterdir()):
        node_id = entry.name
        if node_id.startswith(SCRATCH_PREFIX):
            continue
        summary = snap.nodes.get(node_id)
        if summary is not None and summary.status in (Status.RUNNING, Status.MERGING):
            continue
        integrated = False
        if summary is not None and summary.status is Status.DONE:
            node = sup.store.node(snap, node_id)
            integrated = node.work is not None and node.work.merged is not None
        if integrated:
            sup.launcher.after_merge(node_id, integrated=True)
        else:
            worktrees.remove(node_id, delete_branch=False, archive=False)
        removed.append(node_id)
    return removed
