"""A worker's leases: renewing its own, reopening others' that ran out, recovering its clone's.

What `gitdag work` has that `gitdag run` does not: a claim on a shared remote is a lease. The
worker renews its own at half their length and stops a runner whose lease ran out before it
could be renewed; it reopens a node whose lease ran out `kill_grace_s + CLOCK_SKEW_S` ago (its
worker is gone, or cut off); and at start it takes back the claims an earlier worker of the same
clone left (it crashed): their runners are stopped, a result kept on disk is pushed again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING

from gitdag.attempts import loops
from gitdag.attempts.port import NodeOp, give_back
from gitdag.attempts.running import Attempt
from gitdag.core import lifecycle
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import RemoteError, StaleSnapshotError
from gitdag.remote import journal
from gitdag.runner.orphans import read_pid_info, stop_orphan
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker

CLOCK_SKEW_S = 2.0  # how far apart the workers' clocks may be without two runs overlapping
LAPSED = "its lease ran out before it could be renewed"


def renew(w: Worker) -> None:
    """Renew the lease of each attempt in flight at half its length (stop it once it lapsed)."""
    for running in list(w.attempts.running.values()):
        if running.stopped or running.lease_until is None:
            continue
        now = w.store.clock()
        if now < running.lease_until - dt.timedelta(seconds=running.lease_s / 2):
            continue
        try:
            outcome = w.push_node(running.node_id, _renewal(running.attempt, running.lease_s))
        except (RemoteError, StaleSnapshotError) as exc:
            if w.store.clock() >= running.lease_until:
                w.attempts.stop(running, LAPSED)
            else:
                w.progress.error(f"lease of {running.node_id} not renewed yet: {exc}")
            continue
        if isinstance(outcome, Committed):
            claim = w.store.node(outcome.snapshot, running.node_id).claim
            if claim is not None and claim.lease_until is not None:
                running.lease_until = claim.lease_until
        elif isinstance(outcome, Rejected):
            w.attempts.stop(running, str(outcome))


def lapsed(w: Worker, running: Attempt) -> None:
    """A stopped attempt ended: one whose lease lapsed is given back if nobody took it yet."""
    if running.stopped == LAPSED:
        with contextlib.suppress(RemoteError, StaleSnapshotError):
            reason = f"attempt {running.attempt}: {LAPSED}"
            w.push_node(running.node_id, give_back(running.attempt, reason))


def reclaim(w: Worker) -> None:
    """Reopen running nodes whose lease ran out (plus the grace), so anyone can claim them."""
    snap = w.remote.snapshot()
    now = w.store.clock()
    grace = dt.timedelta(seconds=float(w.settings.defaults.kill_grace_s) + CLOCK_SKEW_S)
    for node_id, summary in snap.nodes.items():
        if summary.status is not Status.RUNNING or node_id in w.attempts.running:
            continue
        if summary.lease_until is None or summary.lease_until + grace >= now:
            continue

        def op(node: Node, s: Snapshot, t: dt.datetime) -> Transition | Rejected:
            claim = node.claim
            if node.status is not Status.RUNNING or claim is None or claim.lease_until is None:
                return Rejected(f"{node.id} is no longer running")
            if claim.lease_until + grace >= t:
                return Rejected(f"{node.id}'s lease was renewed")
            reason = (f"attempt {claim.attempt} by {claim.worker}: lease expired at "
                      f"{claim.lease_until.isoformat()}")  # fmt: skip
            return lifecycle.recover(node, reason=reason, now=t)

        w.push_node(node_id, op)


def recover_own(w: Worker) -> None:
    """Claims of an earlier worker in this clone (it crashed): stop its runners, reopen them.

    The journal is finished first: a kept result whose claim is still this clone's is pushed
    (its agent does not run again), one whose lease was lost is discarded with a line.
    """
    from gitdag.remote.link import push_kept

    journal.replay(w.pending, w.remote, w.token, lambda e: push_kept(w, e), w.progress.event,
                   w.merges.adopt)  # fmt: skip
    snap = w.remote.snapshot()
    suffix = "." + w.token
    for node_id, summary in snap.nodes.items():
        if summary.status is not Status.RUNNING:
            continue
        node = w.store.node(snap, node_id)
        claim = node.claim
        if claim is None or not claim.worker.endswith(suffix) or claim.worker == w.worker_id:
            continue
        run_dir = loops.run_dir(w.local / "runs", node)  # an agent loop's iteration has its own
        info = read_pid_info(run_dir)
        grace = min(2.0, float(w.settings.defaults.kill_grace_s))
        stopped = info is not None and stop_orphan(info, grace_s=grace)
        why = f"attempt {claim.attempt}: its worker in this clone is gone"
        why += " (its runner was stopped)" if stopped else ""
        w.push_node(node_id, give_back(claim.attempt, why))


def _renewal(attempt: int, lease_s: int) -> NodeOp:
    def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        return lifecycle.renew_lease(node, attempt=attempt, now=now, lease_s=lease_s)

    return op
