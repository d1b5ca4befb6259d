"""The merge queue's transaction groups, for `gitdag run` (decisions in `core.groups`).

Members of a group (`group:` on the node) leave the single-node queue: the group waits until
every member is `merging` (or done), then one integration (`workspace.groups`) merges them all on
the merge thread, and its landing records every member's `merge` in the same ref transaction as
the target's advance. A refused group sends its members back, each in its own commit. One that
cannot proceed (git trouble, a target checkout with changes) says why once and is tried again at
a backoff (`attempts/group_waits.py`).
"""

from __future__ import annotations

from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag import crash
from gitdag.attempts import group_outcomes
from gitdag.attempts.group_waits import GroupWaits
from gitdag.core import groups
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected
from gitdag.errors import ENVIRONMENT_ERRORS
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, Compute, Moved
from gitdag.store.write import RefMove
from gitdag.supervisor.landing import Desk, still_merging
from gitdag.workspace.advance import Landing
from gitdag.workspace.groups import GroupResult, Member, integrate_group

if TYPE_CHECKING:
    from gitdag.supervisor.merging import LocalMerges


@dataclass
class _Job:
    group: str
    attempts: dict[str, int]  # member -> the attempt that is merging
    future: Future[GroupResult]
    desk: Desk = field(default_factory=Desk)


class GroupMerges:
    """Takes grouped nodes out of the single-node queue and integrates each group whole."""

    def __init__(self, merges: LocalMerges) -> None:
        self.merges = merges
        self.sup = merges.sup
        self.job: _Job | None = None
        self.waiting: dict[str, str] = {}  # group -> why it waits (for the final report)
        self.waits = GroupWaits(self.sup.progress)  # groups that cannot proceed now
        # The last split of the queue, and the state head it was made on: the loop asks every
        # 20 ms while a merge runs, and re-reading a long queue each time costs its length.
        self._seen: str | None = None
        self._grouped: set[str] = set()
        self._rest: list[str] = []

    def busy(self) -> bool:
        """Tell whether a group integration is under way."""
        return self.job is not None

    def step(self, snap: Snapshot, queue: list[str]) -> tuple[list[str], Snapshot]:
        """Return the queue without grouped nodes, after moving the group integration along."""
        if snap.head != self._seen or queue is not self._rest:  # else: nothing moved since
            self._grouped = {nid for nid in queue if snap.nodes[nid].group is not None}
            self._rest = [nid for nid in queue if nid not in self._grouped]
            self._seen = snap.head
        grouped, rest = self._grouped, self._rest
        if self.job is not None:
            snap = self._poll(snap)
        if self.job is None and self.merges.merge is None:
            self._start_ready(snap, grouped)
        return rest, snap

    def reasons(self) -> list[str]:
        """Why groups still wait, for `gitdag run`'s last line."""
        return list(self.waiting.values())

    def close(self) -> None:
        """The supervisor stops: stop a running check; nothing lands from now on."""
        if self.job is not None:
            self.job.desk.close()
            wait([self.job.future])

    # --- starting ---------------------------------------------------------------------------

    def _start_ready(self, snap: Snapshot, grouped: set[str]) -> None:
        self.waiting = {}
        names = {snap.nodes[nid].group for nid in grouped}
        for name in sorted(n for n in names if n is not None):
            ready = groups.readiness(snap.nodes, name)
            if ready.waiting is not None:
                self.waiting[name] = ready.waiting
                continue
            if not self.waits.due(name):
                continue
            self._start(snap, name, ready.merging)
            return

    def _start(self, snap: Snapshot, name: str, ids: tuple[str, ...]) -> None:
        sup = self.sup
        nodes = [sup.store.node(snap, nid) for nid in ids]
        members = [Member(n.id, n.work.branch) for n in nodes if n.work is not None]
        if len(members) != len(nodes):
            return  # a member without a branch: the single-node path reports such a node
        merge = sup.settings.merge
        desk = Desk()
        titles = "".join(f"- {n.id}: {n.title}\n" for n in nodes)
        future = self.merges.pool.submit(
            integrate_group,
            sup.store.paths.root,
            sup.store.paths.git_dir,
            sup.store.paths.local,
            group=name,
            members=members,
            target=snap.graph.target,
            check_cmd=merge.check,
            check_timeout_s=float(merge.check_timeout_s),
            message=f"gitdag: integrate group {name} ({len(nodes)} nodes)\n\n{titles}",
            land=desk.land,
            cancelled=desk.cancelled,
        )
        self.job = _Job(name, {n.id: n.attempts for n in nodes}, future, desk)
        sup.progress.event(f"group {name}: integrating {', '.join(ids)} together")

    # --- finishing --------------------------------------------------------------------------

    def _poll(self, snap: Snapshot) -> Snapshot:
        job = self.job
        assert job is not None
        if not all(still_merging(snap, nid, a) for nid, a in job.attempts.items()):
            job.desk.stop.set()  # a member was cancelled or reset: the group must not land
        job.desk.answer(lambda move, cwd, _: self._land(job, move, cwd))
        if not job.future.done():
            return snap
        self.job = None
        try:
            result = job.future.result()
        except ENVIRONMENT_ERRORS as exc:  # git trouble, no merge outcome: say it, try later
            self.waits.wait(job.group, "git", f"group {job.group}: cannot merge: {exc}")
            return self.sup.store.snapshot()
        return self._record(job, result)

    def _land(self, job: _Job, move: RefMove, cwd: Path) -> Landing:
        sup = self.sup
        compute = group_outcomes.landed(sup.store, job.group, job.attempts, move.new)
        crash.crash_point("supervisor.before_merge_commit")
        outcome = sup.store.transact_along(compute, actor=sup.actor, move=move, cwd=cwd)
        if isinstance(outcome, Committed):
            sup.progress.transition(outcome.transition)
            return Landing("landed")
        if isinstance(outcome, Moved):
            return Landing("moved")
        return Landing("abandoned", str(outcome) if outcome is not None else "nothing to record")

    def _record(self, job: _Job, result: GroupResult) -> Snapshot:
        sup = self.sup
        if result.status != "target_checked_out_dirty":
            self.waits.done(job.group)  # it landed, was sent back or moved on
        if result.status == "merged" and result.recorded:
            for nid in job.attempts:
                sup.launcher.after_merge(nid, integrated=True)
        elif result.status in ("merged", "already_merged") and result.merged:
            if self._commit(
                group_outcomes.landed(sup.store, job.group, job.attempts, result.merged)
            ):
                for nid in job.attempts:
                    sup.launcher.after_merge(nid, integrated=True)
        elif result.status in ("conflict", "check_failed"):
            self._send_back(job, result)
        elif result.status == "target_checked_out_dirty":
            self.waits.wait(job.group, "dirty", f"group {job.group} waits: {result.output_tail}")
        else:
            sup.progress.event(f"group {job.group}: not integrated ({result.output_tail})")
        return sup.store.snapshot()

    def _send_back(self, job: _Job, result: GroupResult) -> None:
        sup = self.sup
        for nid, attempt in job.attempts.items():
            compute = group_outcomes.sent_back(sup.store, job.group, nid, attempt, result,
                                               sup.launcher.pool_rules)  # fmt: skip
            committed = self._commit(compute)
            if committed is not None:
                state = committed.snapshot.nodes.get(nid)
                final = state is not None and state.status is Status.FAILED
                sup.launcher.after_merge(nid, integrated=False, final=final)

    def _commit(self, compute: Compute) -> Committed | None:
        outcome = self.sup.store.transact(compute, actor=self.sup.actor)
        if isinstance(outcome, Committed):
            self.sup.progress.transition(outcome.transition)
            return outcome
        if isinstance(outcome, Rejected):
            self.sup.progress.event(f"not applied: {outcome}")
        return None
