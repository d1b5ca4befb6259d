"""Transaction groups across machines: a worker integrates a whole group and lands it in one push.

Members of a group may be produced by different workers; their work is on `dagain/work/<id>` on
the remote. Once every member is `merging` (or done), one worker integrates the group: the worker
that produced the member that entered `merging` last (it is the one that saw the group become
ready), or any worker once the group has seen no progress for one lease (its integrator went
away) or waits on a hold. The worker fetches every member's branch, merges them in dependency
order onto the target's tip and checks the combined tree once (`workspace/groups.py`, the local
target moved by compare-and-swap as the single-node queue does), then lands it with ONE atomic
push: the target from that tip to the group's commit (lease on the tip), the group's one `merge`
commit on `dagain/state` (lease on the head), and the deletion of every member's work branch
(lease on its recorded head). Either all of it lands or none; a lost race rolls the local target
back and the group is merged again on the new tip.

A conflict or a failing check sends the members back as `gitdag run` does
(`attempts/group_outcomes.py`): only the members involved spend an attempt. A group that cannot
proceed (a branch the remote does not give, git trouble, a refused push) stays merging, says why
once and is tried again at a backoff (`attempts/group_waits.py`).
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag import crash
from gitdag.attempts import group_outcomes
from gitdag.attempts.group_waits import GroupWaits
from gitdag.core import groups
from gitdag.core.model import Status
from gitdag.errors import ENVIRONMENT_ERRORS, RemoteError, RemoteUnreachable, StaleSnapshotError
from gitdag.remote.landing import land
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import RefPush
from gitdag.workspace.gitcli import read_ref
from gitdag.workspace.groups import GroupResult, Member, integrate_group

if TYPE_CHECKING:
    from gitdag.remote.merging import RemoteMerges


@dataclass
class _Job:
    group: str
    attempts: dict[str, int]  # member -> the attempt that is merging
    heads: dict[str, str]  # member -> its branch head being merged
    tip: str
    future: Future[GroupResult]
    stop: threading.Event


class RemoteGroups:
    """One group integration at a time, on the merge queue's thread; pushed from the main one."""

    def __init__(self, merges: RemoteMerges) -> None:
        self.merges = merges
        self.worker = merges.worker
        self.job: _Job | None = None
        self.mine: set[str] = set()  # grouped members this worker produced
        self.waits = GroupWaits(self.worker.progress)  # groups that cannot proceed now

    def running(self) -> bool:
        """A group's git work is under way (the local target must not be moved meanwhile)."""
        return self.job is not None

    def close(self) -> None:
        if self.job is not None:
            self.job.stop.set()  # a running check is killed rather than waited for
            self.job.future.cancel()

    def step(self, snap: Snapshot, queue: list[str]) -> bool:
        """Move a group integration along, or start one; True when the queue is taken by it.

        `queue`: the merging nodes this worker produced (its grouped ones are noted here).
        """
        merging = set(snap.index.ids(Status.MERGING))  # kept per change, not a scan
        self.mine = (
            self.mine | {nid for nid in queue if nid in snap.nodes and snap.nodes[nid].group}
        ) & merging
        if self.job is not None:
            if not self.job.future.done():
                if not all(
                    group_outcomes.merging(snap, n, a) for n, a in self.job.attempts.items()
                ):
                    self.job.stop.set()  # a member was cancelled or reset: never land
                return True
            job, self.job = self.job, None
            self._finish(job)
            return True
        return self._start(snap, merging)

    # --- starting ---------------------------------------------------------------------------

    def _start(self, snap: Snapshot, merging: set[str]) -> bool:
        # A group can be ready only when one of its members is merging.
        names = sorted({g for nid in merging if (g := snap.nodes[nid].group) is not None})
        for name in names:
            ready = groups.readiness(snap.nodes, name)
            if ready.waiting is not None or not self.waits.due(name):
                continue
            if not self._ours(snap, ready.merging):
                continue
            return self._submit(snap, name, ready.merging)
        return False

    def _ours(self, snap: Snapshot, ids: tuple[str, ...]) -> bool:
        """Tell whether this worker integrates the group (made its last member; or stale)."""
        w = self.worker
        nodes = [w.store.node(snap, nid) for nid in ids]
        last = max(nodes, key=lambda n: (n.updated_at, n.id))
        if last.id in self.mine:
            return True
        lease = dt.timedelta(seconds=snap.graph.defaults.lease_s)
        now = w.store.clock()
        return all(n.updated_at + lease < now for n in nodes) or any(n.hold for n in nodes)

    def _submit(self, snap: Snapshot, name: str, ids: tuple[str, ...]) -> bool:
        w = self.worker
        nodes = [w.store.node(snap, nid) for nid in ids]
        if any(n.work is None or n.work.head is None for n in nodes):
            return False  # a member without its branch recorded: nothing to merge yet
        for node in nodes:
            assert node.work is not None and node.work.head is not None
            try:
                self.merges.bring_branch(node.work.branch, node.work.head)
            except RemoteUnreachable as exc:  # the network, not the members: nothing is spent
                self.waits.wait(name, "unreachable", f"group {name}: merge waits for the remote: "
                                f"{node.id}'s branch {node.work.branch} could not be fetched "
                                f"({exc})", error=False)  # fmt: skip
                return False
            except RemoteError as exc:
                self.waits.wait(name, "fetch", f"group {name}: {node.id}'s branch "
                                f"{node.work.branch} cannot be fetched: {exc}")  # fmt: skip
                return False
        self.waits.gone(name, "unreachable")
        self.waits.gone(name, "fetch")
        heads = {n.id: n.work.head for n in nodes if n.work is not None and n.work.head}
        for head in heads.values():
            self.merges.remember(head)
        w.mirror()
        target = snap.graph.target
        tip = read_ref(w.store.paths.git_dir, "refs/heads/" + target)
        if tip is None:
            return False
        members = [Member(n.id, n.work.branch) for n in nodes if n.work is not None]
        merge = w.settings.merge
        titles = "".join(f"- {n.id}: {n.title}\n" for n in nodes)
        stop = threading.Event()
        paths = w.store.paths
        root, git_dir, local = Path(paths.root), Path(paths.git_dir), Path(paths.local)
        message = f"gitdag: integrate group {name} ({len(nodes)} nodes)\n\n{titles}"

        def integrate() -> GroupResult:
            crash.fail_point("merge.integrate")
            return integrate_group(
                root, git_dir, local, group=name, members=members, target=target,
                check_cmd=merge.check, check_timeout_s=float(merge.check_timeout_s),
                message=message, cancelled=stop.is_set,
            )  # fmt: skip

        future = self.merges.pool.submit(integrate)
        self.job = _Job(name, {n.id: n.attempts for n in nodes}, heads, tip, future, stop)
        w.progress.event(f"group {name}: integrating {', '.join(ids)} together")
        return True

    # --- finishing --------------------------------------------------------------------------

    def _finish(self, job: _Job) -> None:
        w = self.worker
        try:
            result = job.future.result()
        except ENVIRONMENT_ERRORS as exc:  # git trouble, no merge outcome: say it, try later
            self._rollback(job, None)
            self.waits.wait(job.group, "git", f"group {job.group}: cannot merge: {exc}")
            return
        if result.status in ("merged", "already_merged") and result.merged:
            self._land(job, result)
            return
        self._rollback(job, None)
        if result.status in ("conflict", "check_failed"):
            self._send_back(job, result)
        elif result.status == "target_checked_out_dirty":
            self.waits.wait(job.group, "dirty", f"group {job.group} waits: {result.output_tail}")
        else:
            self.waits.done(job.group)
            w.progress.event(f"group {job.group}: not integrated ({result.output_tail})")

    def _land(self, job: _Job, result: GroupResult) -> None:
        """One atomic push: target, the group's record, every member's branch deleted."""
        w = self.worker
        merged = result.merged or ""
        refs = []
        if result.status == "merged":
            refs.append(RefPush(merged, "refs/heads/" + (w.remote.target or ""), job.tip))
        if w.settings.merge.archive_branches:
            refs += [RefPush(h, f"refs/heads/dagain/archive/{n}") for n, h in job.heads.items()]
        tidy = [RefPush("", f"refs/heads/dagain/work/{n}", h) for n, h in job.heads.items()]
        compute = group_outcomes.landed(w.store, job.group, job.attempts, merged, job.heads)
        crash.crash_point("merge.before_group_push")
        landing = land(
            lambda up: w.port.push(compute, refs=up, max_tries=40), refs, tidy,
            who=f"group {job.group}", rollback=lambda: self._rollback(job, result), worker=w,
        )  # fmt: skip
        if landing.committed is not None:
            self.waits.done(job.group)
            w.announce(landing.committed.transition)
            for nid in job.attempts:
                self.mine.discard(nid)
                w.launcher.after_merge(nid, integrated=True)
        elif landing.refused is not None:
            exc = landing.refused
            self.waits.wait(
                job.group,
                "refused",
                f"group {job.group}: the remote refused {exc.ref}: {exc.reason}",
            )
        elif landing.kind == "moved_on":  # a member moved on
            self.waits.done(job.group)
            w.progress.event(f"group {job.group}: not recorded ({landing.outcome})")

    def _send_back(self, job: _Job, result: GroupResult) -> None:
        w = self.worker
        self.waits.done(job.group)
        for nid, attempt in job.attempts.items():
            compute = group_outcomes.sent_back(w.store, job.group, nid, attempt, result,
                                               w.launcher.pool_rules)  # fmt: skip
            try:
                outcome = w.port.push(compute, max_tries=40)
            except StaleSnapshotError as exc:
                w.progress.event(f"{nid}: not sent back yet ({exc}); trying again")
                continue
            final = False
            if isinstance(outcome, Committed):
                w.announce(outcome.transition)
                state = outcome.snapshot.nodes.get(nid)
                final = state is not None and state.status is Status.FAILED
            self.mine.discard(nid)
            w.launcher.after_merge(nid, integrated=False, final=final)

    def _rollback(self, job: _Job, result: GroupResult | None) -> None:
        self.merges.rollback_to(job.tip, result.merged if result is not None else None)
