"""After a crash: find running nodes whose worker is gone, stop their orphaned runners, reopen them.

An attempt never runs twice at once: an orphaned runner process of the old attempt is stopped
(or waited for) before the node is reopened, and the next claim starts a new attempt, so a late
result of the old one is rejected as superseded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from typing import TYPE_CHECKING

from gitdag.attempts import loops
from gitdag.attempts.waiting import waiting_nodes
from gitdag.core import lifecycle
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import RunnerError
from gitdag.runner.orphans import is_alive, is_collected, read_pid_info, stop_orphan
from gitdag.runner.procs import proc_stat
from gitdag.store.snapshot import Snapshot
from gitdag.supervisor.adopt import adopt
from gitdag.supervisor.worktree_sweep import prune_lost_registrations
from gitdag.workspace.advance import find_leftovers, settle
from gitdag.workspace.worktrees import SCRATCH_PREFIX

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor

LOCAL_PREFIX = "supervisor@"


def is_orphaned(node: Node, now: dt.datetime) -> bool:
    """Tell whether a claim's worker is gone.

    Any local supervisor's claim is orphaned (we hold the lock now); a remote worker's claim
    only once its lease ran out.
    """
    claim = node.claim
    if claim is None:
        return True
    if claim.worker.startswith(LOCAL_PREFIX):
        return True
    return claim.lease_until is not None and claim.lease_until < now


def recover_orphans(sup: Supervisor, snap: Snapshot) -> None:
    """Reopen every running node whose worker is gone (called with the supervisor lock held)."""
    store = sup.store
    settle_checkouts(sup)
    now = store.clock()
    running = [nid for nid, n in snap.nodes.items() if n.status is Status.RUNNING]
    for node_id in running:
        node = store.node(snap, node_id)
        if not is_orphaned(node, now):
            continue
        attempt = node.claim.attempt if node.claim else node.attempts
        run_dir = loops.run_dir(store.paths.local / "runs", node)  # an iteration's own
        info = read_pid_info(run_dir)
        if adopt(sup, node, run_dir, info):  # a command's orphan: its outcome is kept
            continue
        alive = info is not None and is_alive(info)
        if info is not None and not stop_orphan(
            info, grace_s=min(2.0, sup.settings.defaults.kill_grace_s)
        ):
            # Never two live processes for one node: if the orphan cannot be stopped, stop here.
            raise RunnerError(
                f"{node_id}: the orphaned runner (pid {info.pid}) of attempt {attempt} "
                "could not be stopped; stop it by hand, then run again"
            )
        stopped = alive
        reason = f"attempt {attempt}: its supervisor is gone"
        if stopped:
            reason += " (its orphaned runner was stopped)"

        def compute(
            s: Snapshot, t: dt.datetime, nid: str = node_id, a: int = attempt, why: str = reason
        ) -> Transition | Rejected:
            if nid not in s.nodes:
                return Rejected("gone")
            current = store.node(s, nid)
            if current.claim is None or current.claim.attempt != a:
                return Rejected("moved on")
            return lifecycle.recover(current, reason=why, now=t)

        outcome = sup.port.transact(compute)
        if not isinstance(outcome, Rejected) and outcome is not None:
            sup.progress.event(f"{node_id}: recovered ({reason})")
    stop_stray_runners(sup)
    remove_stale_worktrees(sup, store.snapshot())


def settle_checkouts(sup: Supervisor) -> None:
    """Finish or undo a checkout advance a crash cut short (workspace/advance.py).

    A checkout left with the merge's files but its old HEAD is put back (the merge and its
    record had not landed: the node is still merging and is integrated again, once). One that
    changed since is left alone and named; its merges wait (the checkout is not clean).
    """
    for left in find_leftovers(sup.store.paths.local):
        if left.verdict == "stuck":
            sup.progress.error(f"{left.describe()}; repair: {left.repair()}")
        else:
            sup.progress.event(settle(left))


def stop_stray_runners(sup: Supervisor) -> list[str]:
    """Stop every runner still alive whose supervisor is dead, whatever its node's status now.

    `recover_orphans` handles the nodes still `running`; a node cancelled (and maybe retried)
    while its supervisor was dead is not running, yet its old runner may be: left alone, a retry
    would run two attempts of the node at once. Runs found dead are marked collected, so later
    scans skip them. Returns the run directories stopped.
    """
    runs = sup.store.paths.local / "runs"
    stopped: list[str] = []
    if not runs.is_dir():
        return stopped
    # <node>/<attempt>/, and an agent loop's <node>/<attempt>/iteration-<n>/ (attempts.loops)
    pid_files = [*runs.glob("*/*/pid.json"), *runs.glob("*/*/iteration-*/pid.json")]
    for pid_file in sorted(pid_files):
        run_dir = pid_file.parent
        info = None if is_collected(run_dir) else read_pid_info(run_dir)
        if info is None or _launcher_alive(info.supervisor_pid, info.supervisor_start_ticks):
            continue
        alive = is_alive(info)
        if stop_orphan(info, grace_s=min(2.0, sup.settings.defaults.kill_grace_s)) and alive:
            stopped.append(str(run_dir))
            sup.progress.event(
                f"{info.node_id}: stopped the orphaned runner of attempt {info.attempt}"
            )
    return stopped


def _launcher_alive(pid: int, start_ticks: int | None) -> bool:
    """Tell whether the process that launched a runner is alive (this one counts as alive)."""
    if pid == os.getpid():
        return True
    launcher = proc_stat(pid) if pid else None
    if launcher is None or launcher.state in ("Z", "X"):
        return False
    return start_ticks is None or launcher.start_ticks == start_ticks


def remove_stale_worktrees(sup: Supervisor, snap: Snapshot) -> list[str]:
    """Remove the worktrees of nodes neither running, merging nor waiting; return their ids.

    A crash between a node's last transition and the removal of its worktree (after a merge, or
    a conflict that used up its attempts) would leave the checkout forever: nothing else removes
    the worktree of a node that never runs again (found by bench/crash.py). The branch goes too
    when the node's work is integrated, as after a merge; otherwise whatever the attempt left
    uncommitted is committed on it first, and it stays for inspection (as after a failure).
    A node waiting for what it `needs` keeps its worktree for its next attempt (waiting.py).
    """
    worktrees = sup.launcher.worktrees
    worktrees.empty_trash()  # what a crash left between moving a checkout and deleting it
    prune_lost_registrations(worktrees)  # ... or between moving it and dropping its registration
    removed = _integrated_branches(sup, snap)
    if not worktrees.dir.is_dir():
        return removed
    waiting = waiting_nodes(sup.store, snap, worktrees)
    for entry in sorted(worktrees.dir.iterdir()):
        node_id = entry.name
        if node_id.startswith(SCRATCH_PREFIX) or node_id in waiting:
            continue
        summary = snap.nodes.get(node_id)
        if summary is not None and summary.status in (Status.RUNNING, Status.MERGING):
            continue
        if not _no_live_runner(sup, node_id):
            continue  # another live process's runner works there (or an orphan would not stop)
        node = sup.store.node(snap, node_id) if summary is not None else None
        if node is not None and node.status is Status.DONE and node.work and node.work.merged:
            sup.launcher.after_merge(node_id, integrated=True)
            removed.append(node_id)
            continue
        attempt = node.attempts if node is not None else 0
        # Best effort: a half-made checkout has nothing worth keeping.
        with contextlib.suppress(Exception):
            worktrees.commit_leftovers(
                node_id,
                attempt,
                f"gitdag: {node_id} attempt {attempt} (cut short by a crash; kept for inspection)",
            )
        worktrees.remove(node_id, delete_branch=False, archive=False)
        removed.append(node_id)
    return removed


def _integrated_branches(sup: Supervisor, snap: Snapshot) -> list[str]:
    """Delete the branches of integrated nodes whose worktree was already gone; return the ids.

    A merging node's checkout goes when its attempt ends, so a crash right after its merge
    leaves only its branch (found by tests/reliability/test_recovery.py).
    """
    worktrees = sup.launcher.worktrees
    done = []
    for node_id in worktrees.work_branches():
        summary = snap.nodes.get(node_id)
        if summary is None or summary.status is not Status.DONE:
            continue
        if worktrees.path_for(node_id).exists():
            continue  # handled with its worktree below
        node = sup.store.node(snap, node_id)
        if node.work is not None and node.work.merged:
            sup.launcher.after_merge(node_id, integrated=True)
            done.append(node_id)
    return done


def _no_live_runner(sup: Supervisor, node_id: str) -> bool:
    """Stop orphaned runners of a node (their launcher is dead); False if one must be left alone.

    A node cancelled while its supervisor was dead is not `running`, so `recover_orphans` does
    not see its runner; it must be stopped before its worktree goes.
    """
    runs = sup.store.paths.local / "runs" / node_id
    if not runs.is_dir():
        return True
    for run_dir in runs.iterdir():
        info = read_pid_info(run_dir)
        if info is None or is_collected(run_dir) or not is_alive(info):
            continue
        if _launcher_alive(info.supervisor_pid, info.supervisor_start_ticks):
            return False
        if not stop_orphan(info, grace_s=min(2.0, sup.settings.defaults.kill_grace_s)):
            return False
    return True
