"""`gitdag run`'s merge queue: one merge at a time on a thread, its outcome committed on the loop's.

A merge that passed its check lands with its record (`landing.py`).
A merge's git work may take minutes (the check), so it runs on one thread of its own; the loop
thread serves its landing, records what it came to, holds the queue on an environment cause
(said once, re-checked at a bounded pace) and starts the next one.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitdag import crash
from gitdag.attempts.holds import EnvHold, Gate, cause_gone, classify_error, classify_result
from gitdag.core import judging, lifecycle
from gitdag.core.model import ErrorKind, Node, Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import ENVIRONMENT_ERRORS
from gitdag.store.snapshot import Snapshot
from gitdag.supervisor import batching
from gitdag.supervisor.group_merges import GroupMerges
from gitdag.supervisor.landing import Desk, still_merging
from gitdag.workspace.batch import BatchResult
from gitdag.workspace.merge_queue import MergeResult, conflict_summary

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor


@dataclass
class _Merge:
    node_id: str
    attempt: int
    future: Future[Any]  # MergeResult, or BatchResult for a batch
    desk: Desk
    batch: batching.Members = ()  # a batch's members (merge.batch), in queue order


class LocalMerges:
    """The merging nodes of one `gitdag run`, integrated in the order they entered the queue."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.merge: _Merge | None = None
        self.queue: list[str] = []  # merging nodes in the order they entered the queue
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitdag-merge")
        self.gate: Gate | None = None  # the merge queue waits on an environment repair
        self.groups = GroupMerges(self)  # transaction groups integrate whole (group_merges.py)
        self._seen: str | None = None  # the state head `queue` was last checked against

    def busy(self) -> bool:
        """A merge runs, or nodes wait to be merged (a held queue waits for a person)."""
        waiting = bool(self.queue) and self.gate is None
        return self.merge is not None or waiting or self.groups.busy()

    def running(self) -> bool:
        """A merge's git work is under way and not finished (the loop polls it often)."""
        return self.merge is not None and not self.merge.future.done()

    def held(self) -> tuple[tuple[str, str] | None, int]:
        """The queue's environment cause as (kind, repair), and how many merges wait on it."""
        if self.gate is None:
            return None, 0
        return (self.gate.hold.kind.value, self.gate.hold.repair), len(self.queue)

    def close(self) -> None:
        if self.merge is not None:
            self.merge.desk.close()  # a running check is killed; nothing lands from now on
            wait([self.merge.future])  # its outcome, even an exception, is for the next run
        self.groups.close()
        self.pool.shutdown(wait=True)

    # --- the step ---------------------------------------------------------------------------

    def step(self, snap: Snapshot) -> Snapshot:
        sup = self.sup
        if snap.head != self._seen:  # which nodes are merging changes only with a commit
            merging = snap.index.ids(Status.MERGING)
            known = set(self.queue)
            extra = sorted(
                (nid for nid in merging if nid not in known),
                key=lambda nid: (sup.store.node(snap, nid).updated_at, nid),
            )
            self.queue = [nid for nid in self.queue if nid in merging] + extra
            self._seen = snap.head
        self.queue, snap = self.groups.step(snap, self.queue)
        if self.merge is not None:
            members = self.merge.batch or ((self.merge.node_id, self.merge.attempt),)
            if not batching.all_merging(snap, members):
                self.merge.desk.stop.set()  # cancelled, reset, ...: kill its check, never land
            if members := self.merge.batch:  # the batch lands with its records (batching.py)
                self.merge.desk.answer(lambda m, cwd, rec: batching.land(sup, members, m, cwd, rec))
            else:
                self.merge.desk.serve(sup, self.merge.node_id, self.merge.attempt)
            if not self.merge.future.done():
                return snap
            job, self.merge = self.merge, None
            try:
                outcome: MergeResult | BatchResult | BaseException = job.future.result()
            except ENVIRONMENT_ERRORS as exc:  # trouble that is no merge outcome: whose is it?
                outcome = exc  # anything else is a bug of ours: on to the crash log (exit 3)
            if job.batch:
                return batching.record(job.batch, outcome, self._batch_member(job)) or (
                    sup.snapshot()
                )
            assert not isinstance(outcome, BatchResult)
            if job.node_id in self.queue:
                self.queue.remove(job.node_id)
            # A fresh snapshot either way: whether the run can go on is judged on the state
            # after this merge, never on one read before it (a cancel may have come since).
            snap = self._outcome(job, snap, outcome) or sup.snapshot()
        if self.merge is None and self.queue and not self.groups.busy() and not self._gated(snap):
            if batch := batching.start(self, snap):
                self.merge = _Merge(*batch[2][0], batch[0], batch[1], batch[2])
                return snap
            node_id = self.queue[0]
            node = sup.store.node(snap, node_id)
            if node.work is None:
                self.queue.pop(0)
                failed = self._fail(
                    node_id, node.attempts, ErrorKind.CHECK_FAILED, "merging without a work record"
                )
                return failed or snap
            desk = Desk()
            future = self.pool.submit(self._integrate, snap, node, desk)
            self.merge = _Merge(node_id, node.attempts, future, desk)
        return snap

    def _batch_member(self, job: _Merge) -> batching.RecordOne:
        """Record one member of a finished batch as the serial queue records its merge."""

        def one(node_id: str, attempt: int, result: MergeResult | BaseException) -> Snapshot | None:
            waits = isinstance(result, MergeResult) and result.status == "abandoned"
            if node_id in self.queue and not waits:  # an abandoned one keeps its place
                self.queue.remove(node_id)
            member = _Merge(node_id, attempt, job.future, job.desk)
            return self._outcome(member, self.sup.snapshot(), result)

        return one

    def _integrate(self, snap: Snapshot, node: Node, desk: Desk) -> MergeResult:
        crash.fail_point("merge.integrate")
        return self.sup.launcher.integrate(snap, node, land=desk.land, cancelled=desk.cancelled)

    def _outcome(
        self, job: _Merge, snap: Snapshot, outcome: MergeResult | BaseException
    ) -> Snapshot | None:
        """Record a merge's outcome: an environment cause holds the node, the rest is recorded."""
        node_id = job.node_id
        if isinstance(outcome, MergeResult):
            hold = classify_result(outcome)
        else:
            base = None
            if node_id in snap.nodes:
                work = self.sup.store.node(snap, node_id).work
                base = work.base if work else None
            hold = classify_error(outcome, target=snap.graph.target, base=base)
            if hold is None:
                return self._fail(
                    node_id, job.attempt, ErrorKind.TASK_FAILURE, f"cannot merge: {outcome}"
                )
        if hold is not None:
            self.queue.insert(0, node_id)  # it keeps its place in line
            return self.hold(node_id, hold)
        assert isinstance(outcome, MergeResult)
        self.gate = None
        return self._record(job, outcome)

    # --- holding ------------------------------------------------------------------------------

    def hold(self, node_id: str, hold: EnvHold) -> Snapshot | None:
        """The merge queue waits for a repair: record the hold once, say it once."""
        gate = self.gate
        if gate is not None and gate.hold.kind is hold.kind:
            gate.failed_again()
        else:
            self.gate = Gate(hold)
            self.gate.failed_again()
        self.sup.said.say(node_id, hold)
        return self._commit_hold(node_id, hold)

    def _commit_hold(self, node_id: str, hold: EnvHold) -> Snapshot | None:
        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return lifecycle.hold(
                node, kind=hold.kind, reason=hold.reason, repair=hold.repair, now=now
            )

        return self.sup.attempts.commit(node_id, op, quiet=True)  # the cause was said once

    def _gated(self, snap: Snapshot) -> bool:
        """Tell whether the queue still waits on its environment cause (probed, bounded)."""
        gate, sup = self.gate, self.sup
        if gate is None:
            return False
        for node_id in self.queue:  # every waiting node shows the hold in `gitdag status`
            held = sup.store.node(snap, node_id).hold
            if held is None or held.kind is not gate.hold.kind:
                self._commit_hold(node_id, gate.hold)
        if not gate.due():
            return True
        paths = sup.store.paths
        gone = cause_gone(gate.hold, root=paths.root, git_dir=paths.git_dir,
                          target=snap.graph.target)  # fmt: skip
        if gone is False:
            gate.failed_again()
            return True
        if gone:
            sup.progress.event(f"repaired: {gate.hold.kind.value}; merging again")
            sup.said.forget(gate.hold)
        return False  # gone, or only a retry tells: try the merge (it re-holds if not)

    # --- recording ----------------------------------------------------------------------------

    def _record(self, job: _Merge, result: MergeResult) -> Snapshot | None:
        sup, node_id = self.sup, job.node_id
        if result.status in ("merged", "already_merged") and result.recorded:
            # Landed together with its `merge` transition (landing.py): only tidy up.
            sup.launcher.after_merge(node_id, integrated=True)
            return sup.snapshot()
        if result.status == "abandoned":
            now = sup.snapshot()
            sup.progress.event(
                f"{node_id}: merge abandoned, the target was not touched ({result.output_tail})"
            )
            if not still_merging(now, node_id, job.attempt):
                sup.launcher.after_merge(node_id, integrated=False)
            return now
        if result.status in ("merged", "already_merged") and result.merged:
            crash.crash_point("supervisor.before_merge_commit")
            merged = result.merged

            def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
                return lifecycle.merged(node, merged_commit=merged, now=now)

            snap = sup.attempts.commit(node_id, op)
            if snap is not None:
                sup.launcher.after_merge(node_id, integrated=True)
            return snap
        if result.status == "conflict":
            return self._fail(node_id, job.attempt, ErrorKind.MERGE_CONFLICT,
                              conflict_summary(result), tuple(result.paths))  # fmt: skip
        if result.status == "check_failed":
            output = result.output_tail[-3000:]
            return self._fail(node_id, job.attempt, ErrorKind.CHECK_FAILED,
                              "check failed on the merged tree:\n" + output)  # fmt: skip
        return self._fail(node_id, job.attempt, ErrorKind.CHECK_FAILED,
                          result.output_tail or f"merge refused: {result.status}")  # fmt: skip

    def _fail(self, node_id: str, attempt: int, kind: ErrorKind, summary: str,
              paths: tuple[str, ...] = ()) -> Snapshot | None:  # fmt: skip
        sup = self.sup
        pool = sup.launcher.pool_rules

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return judging.fail_attempt(
                node, snap.nodes, snap.graph, kind=kind, summary=summary, attempt=attempt,
                now=now, pool=pool(node), paths=paths, verb="merge",
            )  # fmt: skip

        snap = sup.attempts.commit(node_id, op)
        if snap is not None:
            status = snap.nodes.get(node_id)
            final = status is not None and status.status is Status.FAILED
            sup.launcher.after_merge(node_id, integrated=False, final=final)
        return snap
