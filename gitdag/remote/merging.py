"""The merge queue across machines: integrate a merging node by a CAS push of the target branch.

The git work is the local merge queue's (`Launcher.integrate`: merge-tree, the check, a CAS
update of the local target, which mirrors the remote's). Landing it is one atomic push: the
target moves from the tip the merge was computed on to the merge (lease on the old tip) together
with the node's `merge` transition (lease on the state head). So on the remote the code and the
graph never disagree, and a merge is never lost: if another machine moved the target first, our
push is refused as a whole, the local target is rolled back, and the node is merged again on the
new tip (its check runs again, on exactly what will land). A node merged by a machine that died
before recording it is found already merged and simply recorded.

Each worker integrates the nodes it produced, in order; a merging node whose worker went away
(no progress for one lease) is adopted by any worker. Two workers may then compute the same
merge at once, but only one lands it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag import crash
from gitdag.attempts.holds import EnvHold, Gate, cause_gone, classify_error, classify_result
from gitdag.core import judging, lifecycle
from gitdag.core.model import ErrorKind, HoldKind, Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import (
    ENVIRONMENT_ERRORS,
    RefRefused,
    RemoteError,
    RemoteUnreachable,
    StaleSnapshotError,
)
from gitdag.remote.group_merges import RemoteGroups
from gitdag.remote.landing import land
from gitdag.remote.mirror import move_target
from gitdag.store.remote import tracking_ref
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import RefPush
from gitdag.workspace.gitcli import read_ref, run_git
from gitdag.workspace.merge_queue import MergeResult, conflict_summary

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker

KNOWN_FILE = "remote-merges"  # node branch heads known to be on the remote (see mirror.py)


@dataclass
class _Job:
    node_id: str
    attempt: int
    head: str  # the node's branch head being merged
    tip: str  # the target tip the merge is computed on
    future: Future[MergeResult]
    stop: threading.Event  # set once the node is no longer merging this attempt: kill the check


class RemoteMerges:
    """One integration at a time, in a background thread; its outcome pushed from the main one."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.queue: list[str] = []  # merging nodes this worker produced, in order
        self.job: _Job | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitdag-merge")
        self.known_path = worker.local / KNOWN_FILE
        self._known: set[str] | None = None
        self.gate: Gate | None = None  # the queue waits on an environment repair (re-checked)
        self.groups = RemoteGroups(self)  # transaction groups land whole (group_merges.py)
        self.unfetched: set[str] = set()  # merges waiting for their branch (said once each)

    def running(self) -> bool:
        """A merge's git work is under way (the local target must not be moved meanwhile)."""
        return self.job is not None or self.groups.running()

    def busy(self) -> bool:
        """A merge is running, or nodes this worker produced still wait to be integrated."""
        waiting = bool(self.queue) and self.gate is None  # a held queue waits for a person
        return self.running() or waiting

    def gated(self) -> bool:
        """The queue waits on a repair and it is not yet time to look again (docs/many-machines.md).

        A cheap probe (the target's checkout, the target branch) runs when due; a cause only a
        retry can tell (a refused push, a full disk) is retried at the gate's backoff.
        """
        gate = self.gate
        if gate is None:
            return False
        if not gate.due():
            return True
        paths = self.worker.store.paths
        gone = cause_gone(gate.hold, root=Path(paths.root), git_dir=Path(paths.git_dir),
                          target=self.worker.remote.target or "")  # fmt: skip
        if gone is False:
            gate.failed_again()
            return True
        return False  # gone, or only a retry tells: merge again (it holds again if not)

    def adopt(self, node_id: str) -> None:
        if node_id not in self.queue:
            self.queue.append(node_id)

    def close(self) -> None:
        self.groups.close()
        if self.job is not None:
            self.job.stop.set()  # a running check is killed rather than waited for
            self.job.future.cancel()
        self.pool.shutdown(wait=True)

    # --- heads on the remote ------------------------------------------------------------------

    def known_heads(self) -> set[str]:
        if self._known is None:
            try:
                self._known = set(self.known_path.read_text().split())
            except OSError:
                self._known = set()
        return self._known

    def remember(self, head: str) -> None:
        known = self.known_heads()
        if head not in known:
            known.add(head)
            with self.known_path.open("a") as fh:
                fh.write(head + "\n")

    # --- the step ---------------------------------------------------------------------------

    def step(self) -> None:
        """Finish the running merge if it is done; else start the next one, if any."""
        if self.job is None and self.groups.step(self.worker.remote.snapshot(), self.queue):
            return  # a transaction group holds the queue (remote/group_merges.py)
        if self.job is not None:
            if not self.job.future.done():
                self._stop_if_moved_on(self.job)
                return
            job, self.job = self.job, None
            try:
                result = job.future.result()
            except ENVIRONMENT_ERRORS as exc:  # a bug of ours goes on to the crash log (exit 3)
                self._rollback(job, None)
                target = self.worker.remote.target or ""
                hold = classify_error(exc, target=target, base=job.tip)
                if hold is not None:  # not the node's doing: it stays merging, nothing re-runs
                    self._hold(job, hold)
                    return
                self._fail(job.node_id, job.attempt, ErrorKind.TASK_FAILURE,
                           f"merge failed: {exc}", ())  # fmt: skip
                return
            self._record(job, result)
            return
        self._start()

    def _start(self) -> None:
        w = self.worker
        if self.gated():
            return  # waiting for a repair: integrating now would fail the same way
        snap = w.remote.snapshot()
        # Transaction groups land whole (remote/group_merges.py), never one member alone.
        merging = {
            nid for nid, n in snap.nodes.items() if n.status is Status.MERGING and n.group is None
        }
        self.queue = [nid for nid in self.queue if nid in merging]
        node_id = self.queue[0] if self.queue else self._orphan(merging)
        if node_id is None:
            if self.gate is not None:  # nothing waits any more (merged elsewhere, cancelled)
                self.worker.said.forget(self.gate.hold)
                self.gate = None
            return
        node = w.store.node(snap, node_id)
        if node.work is None or node.work.head is None:
            self._fail(node_id, node.attempts, ErrorKind.CHECK_FAILED,
                       "merging without a work record", ())  # fmt: skip
            return
        head = node.work.head
        try:
            self.bring_branch(node.work.branch, head)
        except RemoteUnreachable as exc:
            # The network, not the node: the merge is tried again when the remote answers.
            if node_id not in self.unfetched:  # said once per wait, not every turn
                self.unfetched.add(node_id)
                w.progress.event(f"{node_id}: merge waits for the remote: its branch "
                                 f"{node.work.branch} could not be fetched ({exc})")  # fmt: skip
            return
        except RemoteError as exc:
            self._fail(node_id, node.attempts, ErrorKind.CHECK_FAILED,
                       f"its branch cannot be fetched: {exc}", ())  # fmt: skip
            return
        self.unfetched.discard(node_id)
        self.remember(head)
        w.mirror()
        target = snap.graph.target
        tip = read_ref(w.store.paths.git_dir, "refs/heads/" + target)
        if tip is None:
            return
        stop = threading.Event()
        future = self.pool.submit(self._integrate, snap, node, stop)
        self.job = _Job(node_id, node.attempts, head, tip, future, stop)

    def _integrate(self, snap: Snapshot, node: Node, stop: threading.Event) -> MergeResult:
        crash.fail_point("merge.integrate")
        return self.worker.launcher.integrate(snap, node, cancelled=stop.is_set)

    def _stop_if_moved_on(self, job: _Job) -> None:
        """Kill the check of a node cancelled (or reset) meanwhile, as last fetched."""
        summary = self.worker.remote.snapshot().nodes.get(job.node_id)
        if (
            summary is None
            or summary.status is not Status.MERGING
            or (summary.attempts != job.attempt)
        ):
            job.stop.set()

    def _orphan(self, merging: set[str]) -> str | None:
        """The oldest merging node nobody seems to integrate (untouched for one lease)."""
        w = self.worker
        snap = w.remote.snapshot()
        now = w.store.clock()
        lease = dt.timedelta(seconds=snap.graph.defaults.lease_s)
        stale = []
        for nid in merging:
            node = w.store.node(snap, nid)
            # A held node waits for a repair, not for its worker: any worker may retry it.
            if node.updated_at + lease < now or node.hold is not None:
                stale.append((node.updated_at, nid))
        return min(stale)[1] if stale else None

    def bring_branch(self, branch: str, head: str) -> None:
        """Make the local node branch point at the recorded head (fetched if we lack it)."""
        w = self.worker
        paths = w.store.paths
        ref = "refs/heads/" + branch
        if read_ref(paths.git_dir, ref) == head:
            return
        fetched = tracking_ref(w.remote.remote, "branch")
        with w.remote.retry.patient():  # a node's work may be big: the floor, not the slice
            w.remote.fetch(extra=[(ref, fetched)])
        proc = run_git(["update-ref", ref, head], paths.root, check=False)
        if proc.returncode != 0:
            raise RemoteError(f"{branch} on {w.remote.remote} does not contain {head[:12]}")

    # --- recording the outcome --------------------------------------------------------------

    def _record(self, job: _Job, result: MergeResult) -> None:
        if result.status in ("merged", "already_merged") and result.merged:
            self._land(job, result)
            return
        self._rollback(job, None)
        if result.status == "abandoned":
            # Cancelled meanwhile: nothing landed, and the push below would be refused anyway.
            self.worker.progress.event(f"{job.node_id}: merge abandoned ({result.output_tail})")
            self._done(job.node_id, integrated=False)
            return
        if result.status == "conflict":
            self._fail(job.node_id, job.attempt, ErrorKind.MERGE_CONFLICT,
                       conflict_summary(result), tuple(result.paths))  # fmt: skip
        elif result.status == "check_failed":
            output = result.output_tail[-3000:]
            self._fail(job.node_id, job.attempt, ErrorKind.CHECK_FAILED,
                       "check failed on the merged tree:\n" + output, ())  # fmt: skip
        else:
            # The target's checkout in this clone is in the way: not the node's fault.
            hold = classify_result(result)
            assert hold is not None
            self._hold(job, hold)

    def _hold(self, job: _Job, hold: EnvHold) -> None:
        """The merge waits for a repair: recorded on the waiting nodes, said once, re-checked.

        The queue stops (`gated`) while this worker goes on claiming and running other nodes;
        the node stays merging with its branch on the remote, so this or any other worker
        merges it later without running its agent.
        """
        gate = self.gate
        if gate is not None and gate.hold.kind is hold.kind:
            gate.failed_again()
        else:
            self.gate = Gate(hold)
            self.gate.failed_again()
        if job.node_id not in self.queue:
            self.queue.insert(0, job.node_id)  # first again once repaired
        self.worker.said.say(job.node_id, hold)

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return lifecycle.hold(
                node, kind=hold.kind, reason=hold.reason, repair=hold.repair, now=now
            )

        for node_id in self.queue:  # every waiting node shows the hold in `gitdag status`
            with contextlib.suppress(RemoteError, StaleSnapshotError):
                self.worker.push_node(node_id, op)
        self.worker.launcher.after_merge(job.node_id, integrated=False)

    def _repaired(self) -> None:
        """A merge went through again: the cause is gone (said once)."""
        if self.gate is not None:
            self.worker.progress.event(f"repaired: {self.gate.hold.kind.value}; merging again")
            self.worker.said.forget(self.gate.hold)
            self.gate = None

    def _refused(self, job: _Job, exc: RefRefused) -> EnvHold:
        """The hold of a merge push the server refused for a ref that is not the state branch."""
        w = self.worker
        branch = exc.ref.removeprefix("refs/heads/")
        return EnvHold(
            HoldKind.REF_REFUSED,
            f"the remote {w.remote.remote} refused branch {branch}: {exc.reason}"[-600:],
            f"let this worker push {branch} to {w.remote.remote} (the server's hook or branch "
            "protection), then gitdag work (a worker with --idle-exit goes on by itself)",
        )

    def _land(self, job: _Job, result: MergeResult) -> None:
        w = self.worker
        merged = result.merged or ""
        target = w.remote.target or ""
        refs = []
        if result.status == "merged":
            refs.append(RefPush(merged, "refs/heads/" + target, job.tip))
        if w.settings.merge.archive_branches:
            refs.append(RefPush(job.head, f"refs/heads/dagain/archive/{job.node_id}"))
        # The node's branch goes with the merge that integrates it (if it is where we think).
        tidy = RefPush("", f"refs/heads/dagain/work/{job.node_id}", job.head)

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node.status is not Status.MERGING or node.work is None or node.work.head != job.head:
                return Rejected(f"{node.id} is {node.status.value}; not recording the merge")
            return lifecycle.merged(node, merged_commit=merged, now=now)

        landing = land(
            lambda up: w.push_node(job.node_id, op, refs=list(up), max_tries=40), refs, [tidy],
            who=job.node_id, rollback=lambda: self._rollback(job, result), worker=w,
        )  # fmt: skip
        if landing.kind == "landed":
            self._repaired()
            self._done(job.node_id, integrated=True)
        elif landing.refused is not None:
            self._hold(job, self._refused(job, landing.refused))
        elif landing.kind == "moved_on":
            # Rejected or nothing to do: the node moved on (integrated elsewhere, cancelled...).
            summary = w.remote.snapshot().nodes.get(job.node_id)
            integrated = summary is not None and summary.status is Status.DONE
            self._done(job.node_id, integrated=integrated)

    def _done(self, node_id: str, *, integrated: bool, final: bool = False) -> None:
        if node_id in self.queue:
            self.queue.remove(node_id)
        self.worker.launcher.after_merge(node_id, integrated=integrated, final=final)

    def _rollback(self, job: _Job, result: MergeResult | None) -> None:
        self.rollback_to(job.tip, result.merged if result is not None else None)

    def rollback_to(self, tip: str, merged: str | None) -> None:
        """Put the local target back at `tip`, where a merge that did not land started.

        Only from our own merge `merged` (from any local move, when None).
        """
        w = self.worker
        paths = w.store.paths
        target = w.remote.target or ""
        current = read_ref(paths.git_dir, "refs/heads/" + target)
        ours = merged is None or current == merged
        if current is not None and current != tip and ours:
            move_target(Path(paths.root), Path(paths.git_dir), target, current, tip,
                        "gitdag: merge did not land on the remote", Path(paths.local))  # fmt: skip

    def _fail(self, node_id: str, attempt: int, kind: ErrorKind, summary: str,
              paths: tuple[str, ...]) -> None:  # fmt: skip
        w = self.worker

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node.status is not Status.MERGING:
                return Rejected(f"{node.id} is {node.status.value}, not merging")
            return judging.fail_attempt(
                node, snap.nodes, snap.graph, kind=kind, summary=summary, attempt=attempt, now=now,
                paths=paths, verb="merge",
            )  # fmt: skip

        outcome = w.push_node(node_id, op)
        final = False
        if isinstance(outcome, Committed):
            summary_now = outcome.snapshot.nodes.get(node_id)
            final = summary_now is not None and summary_now.status is Status.FAILED
        self._done(node_id, integrated=False, final=final)
