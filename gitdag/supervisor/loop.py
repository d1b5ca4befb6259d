"""`gitdag run`: snapshot -> plan -> claim -> launch -> collect -> judge -> commit -> merge.

One thread owns the store and makes every state commit; runners are child processes watched
through pidfds, so a finished runner is noticed at once; the merge queue's git work runs in one
background thread (a check command may take minutes) and its outcome is committed here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import selectors
import signal
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gitdag import crash
from gitdag.config import Settings
from gitdag.core import graph, lifecycle, proposals, scheduling
from gitdag.core.model import ErrorKind, Kind, Node, Status, Work
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import ConfigError, InputError
from gitdag.runner.launch import RunHandle, RunOutcome
from gitdag.store import repo as repos
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.proposals import propose_nodes
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore
from gitdag.supervisor.guard import Guard
from gitdag.supervisor.holds import (
    EnvHold,
    Gate,
    SaidOnce,
    cause_gone,
    classify_error,
    classify_result,
    classify_start_error,
    disk_error,
)
from gitdag.supervisor.landing import Desk, still_merging
from gitdag.supervisor.launching import Launcher, Prepared
from gitdag.supervisor.lock import SupervisorLock
from gitdag.supervisor.progress import Progress, Running
from gitdag.supervisor.recovery import recover_orphans
from gitdag.supervisor.rewinds import Ledger
from gitdag.supervisor.starting import StartGates, preflight
from gitdag.workspace.merge_queue import MergeResult, conflict_summary


@dataclass(frozen=True)
class RunOptions:
    """How `gitdag run` behaves."""

    workers: int = 2
    once: bool = False
    watch: bool = False
    poll_s: float = 0.2  # control commits are honoured within this (well under a second)


@dataclass
class _Flight:
    node_id: str
    attempt: int
    handle: RunHandle
    prepared: Prepared
    pidfd: int | None = None
    cancelled: bool = False


@dataclass
class _Merge:
    node_id: str
    attempt: int
    future: Future[MergeResult]
    desk: Desk


@dataclass
class _Stats:
    finished: int = 0
    last_finished: list[str] = field(default_factory=list)


class Supervisor:
    """Runs the graph of one repository until nothing more can be done (or forever with watch)."""

    def __init__(
        self,
        store: StateStore,
        settings: Settings,
        options: RunOptions,
        progress: Progress | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.options = options
        self.progress = progress or Progress()
        self.actor = repos.supervisor_actor()
        if clock is not None:
            store.clock = clock
        self.launcher = Launcher(store, settings)
        self.flights: dict[str, _Flight] = {}
        self.merge: _Merge | None = None
        self.queue: list[str] = []  # merging nodes in the order they entered the queue
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitdag-merge")
        self.selector = selectors.DefaultSelector()
        self.stats = _Stats()
        self.proposals: list[tuple[str, tuple[str, ...]]] = []  # (name, proposed ids), this run
        self.guard = Guard(store, self.actor)
        self.lost = Ledger(store.paths.local)
        self.merge_gate: Gate | None = None  # the merge queue waits on an environment repair
        self.starts = StartGates(self)  # starts waiting on one (a missing runner, no target)
        self.said = SaidOnce(self.progress)
        self._stop: str | None = None
        self._last_head: str | None = None

    # --- entry ------------------------------------------------------------------------------

    def run(self) -> int:
        with SupervisorLock(self.store.paths.ensure_local(), self.store.paths.git_dir):
            old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for sig in old:
                signal.signal(sig, self._on_signal)
            try:
                snap = self._snapshot()
                preflight(self.launcher, self.settings, snap, self.store.clock())
                recover_orphans(self, snap)
                return self._loop()
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
                with contextlib.suppress(OSError):  # a full disk: the next run checks again
                    self.guard.settle()  # this run's last commits: a restart need not check them
                self._shutdown()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = signal.Signals(signum).name

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        while True:
            snap = self._snapshot()
            if self._stop is not None:
                return self._interrupted()
            self._honour_control(snap)
            snap = self._collect(snap)
            snap = self._merge_step(snap)
            if (
                self.options.once
                and self.stats.finished >= 1
                and not self.flights
                and not self.merge
            ):
                return self._once_code(snap)
            if not (self.options.once and (self.stats.finished or self.flights)):
                snap = self._start_ready(snap)
            self._show(snap)
            waiting = bool(self.queue) and self.merge_gate is None
            busy = bool(self.flights) or self.merge is not None or waiting
            if not busy:
                now = self.store.clock()
                paused = snap.graph.control.paused
                if not self.starts.can_progress(snap, now, paused=paused):
                    if self.options.watch:
                        self._wait(self.options.poll_s)
                        continue
                    return self._final(snap)
                wake = scheduling.next_wakeup(snap.nodes, now, index=snap.index)
                if wake is not None and not snap.index.ready(now, paused=paused):
                    self._wait(min(self.options.poll_s, max(0.0, (wake - now).total_seconds())))
                    continue
            self._wait(self.options.poll_s)

    def _snapshot(self) -> Snapshot:
        head = self.store.head()
        if head is not None and head != self._last_head:
            # The one legality check of commits this supervisor did not write (guard.py).
            self.guard.check(head)
            self._last_head = head
            self._count_rewinds()
        return self.store.snapshot()

    def _count_rewinds(self) -> None:
        """Claims a rewind of the state branch dropped still count (rewinds.py); say it once."""
        if not self.guard.rewinds:
            return
        snap = self.store.snapshot()
        for known, head, lost in self.guard.rewinds:
            for node_id in lost:
                base = self.store.node(snap, node_id).attempt_base if node_id in snap.nodes else 0
                self.lost.add(node_id, base)
            self.progress.error(
                f"{STATE_BRANCH} moved back from {known[:12]} to {head[:12]}, below the claim of "
                f"{', '.join(dict.fromkeys(lost))} (recorded in .dagain/local/incidents.log); "
                "those starts still count"
            )
        self.guard.rewinds.clear()

    def _transact(
        self, compute: Callable[[Snapshot, dt.datetime], Transition | Rejected]
    ) -> Committed | Rejected | None:
        """Every commit of this supervisor goes through here, signed with its actor.

        Raises:
          DiskError: the disk is full or read-only (exit 2, one line naming the path): the ref
            moves only after its objects are written, so nothing half-written is visible, and
            a restart recovers the nodes that were running.
        """
        objects = Path(self.store.paths.git_dir) / "objects"
        try:
            crash.fault_point("supervisor.state_commit", str(objects))
            return self.store.transact(compute, actor=self.actor)
        except OSError as exc:
            error = disk_error(exc, objects)
            if error is None:
                raise
            raise error from exc

    def _wait(self, timeout: float) -> None:
        if self.merge is not None and not self.merge.future.done():
            timeout = min(timeout, 0.02)
        if not self.selector.get_map():
            if timeout > 0:
                import time

                time.sleep(timeout)
            return
        self.selector.select(timeout)

    # --- control ----------------------------------------------------------------------------

    def _honour_control(self, snap: Snapshot) -> None:
        """Stop runners whose node is no longer running this attempt (cancel, reset, revert)."""
        for flight in list(self.flights.values()):
            if flight.cancelled:
                continue
            summary = snap.nodes.get(flight.node_id)
            still = summary is not None and summary.status is Status.RUNNING
            if still:
                node = self.store.node(snap, flight.node_id)
                still = node.claim is not None and node.claim.attempt == flight.attempt
            if not still:
                flight.cancelled = True
                flight.handle.cancel()
                self.progress.event(f"stopping {flight.node_id}: no longer running here")

    # --- starting nodes ---------------------------------------------------------------------

    def _start_ready(self, snap: Snapshot) -> Snapshot:
        capacity = self.options.workers - len(self.flights)
        if self.options.once:
            capacity = min(capacity, 1)
        dispatches = scheduling.plan(
            self.starts.startable(snap),
            capacity=capacity,
            now=self.store.clock(),
            paused=snap.graph.control.paused,
            in_flight=list(self.flights),
            index=snap.index,
        )
        for dispatch in dispatches:
            if dispatch.action == "checkpoint":
                snap = (
                    self._commit_node(
                        dispatch.node_id, lambda n, now: lifecycle.checkpoint_open(n, now=now)
                    )
                    or snap
                )
                continue
            snap = self._launch(dispatch.node_id, snap)
        return snap

    def _commit_node(
        self, node_id: str, op: Callable[[Node, dt.datetime], Transition | Rejected]
    ) -> Snapshot | None:
        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            return op(self.store.node(snap, node_id), now)

        outcome = self._transact(compute)
        if isinstance(outcome, Committed):
            self._announce(outcome.transition)
            return outcome.snapshot
        return None

    def _launch(self, node_id: str, snap: Snapshot) -> Snapshot:
        lease = snap.graph.defaults.lease_s
        claimed = self._commit_node(
            node_id, lambda n, now: lifecycle.claim(n, worker=self.actor, now=now, lease_s=lease)
        )
        if claimed is None:
            return snap
        crash.crash_point("supervisor.after_claim")
        node = self.store.node(claimed, node_id)
        attempt = node.attempts
        self._count_rewinds()  # the claim's own commit may have been built on a rewound head
        lost = self.lost.lost(node_id, node.attempt_base)
        policy = lifecycle.policy_of(node, claimed.graph)
        if lost and node.attempts - node.attempt_base + lost > policy.max_attempts:
            # Its earlier starts were real (the branch lost their claims): the budget is spent.
            why = (f"started {lost + node.attempts - node.attempt_base - 1} time(s); each time "
                   f"{STATE_BRANCH} was moved back below its claim (see .dagain/local/"
                   "incidents.log)")  # fmt: skip
            return self._give_up(node_id, attempt, why) or claimed
        try:
            prepared = self.launcher.prepare(claimed, node)
            handle = self.launcher.start(prepared)
        except ConfigError:
            # The user's configuration is wrong, not the node: give the attempt back and stop.
            self._commit_node(node_id, _recover_attempt(attempt, "configuration error"))
            raise
        except Exception as exc:  # the node's environment could not be set up
            hold = classify_start_error(exc, target=claimed.graph.target)
            if hold is not None:  # not the node's doing: the attempt is given back, it waits
                self.starts.hold_start(node, hold)
                return self._commit_node(node_id, _recover_attempt(attempt, hold.reason)) or claimed
            return (
                self._fail(node_id, attempt, ErrorKind.SPAWN_ERROR, f"could not start: {exc}")
                or claimed
            )
        flight = _Flight(node_id, attempt, handle, prepared)
        try:
            if handle.pid is None:
                raise ValueError("not started")
            flight.pidfd = os.pidfd_open(handle.pid)
            self.selector.register(flight.pidfd, selectors.EVENT_READ, node_id)
        except (OSError, AttributeError, ValueError):
            flight.pidfd = None  # the poll interval still notices the exit
        self.flights[node_id] = flight
        crash.crash_point("supervisor.after_launch")
        return claimed

    # --- collecting results -----------------------------------------------------------------

    def _collect(self, snap: Snapshot) -> Snapshot:
        for flight in list(self.flights.values()):
            outcome = flight.handle.poll()
            if outcome is None:
                continue
            self._forget(flight)
            self.stats.finished += 1
            crash.crash_point("supervisor.after_runner_exit")
            committed = self._apply(flight, outcome)
            if committed is not None:
                snap = committed
        return snap

    def _forget(self, flight: _Flight) -> None:
        del self.flights[flight.node_id]
        if flight.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(flight.pidfd)
            os.close(flight.pidfd)

    def _apply(self, flight: _Flight, outcome: RunOutcome) -> Snapshot | None:
        node_id, attempt = flight.node_id, flight.attempt
        if flight.cancelled or outcome.cancelled:
            self.launcher.release(flight.prepared, keep_branch=True)
            self.progress.event(f"{node_id}: runner stopped")
            return None
        settled = self.launcher.settle(flight.prepared, outcome)
        if settled.problem is not None:
            problem = settled.problem
            if problem.kind is ErrorKind.SPAWN_ERROR:
                missing = self.starts.runner_missing(flight.prepared)
                if missing is not None:  # the agent never ran: give the attempt back and wait
                    self.launcher.release(flight.prepared, keep_branch=True)
                    return self._commit_node(node_id, _recover_attempt(attempt, missing.reason))
            return self._fail(node_id, attempt, problem.kind, problem.reason, flight)
        assert settled.result is not None
        snap = self._judge(flight, settled.result, settled.work)
        merging = (
            snap is not None
            and node_id in snap.nodes
            and (snap.nodes[node_id].status is Status.MERGING)
        )
        if settled.hold is not None and merging:  # its leftovers wait to be committed
            snap = self._hold_merge(node_id, settled.hold) or snap
        return snap

    def _judge(self, flight: _Flight, result: RunnerResult, work: Work | None) -> Snapshot | None:
        node_id, attempt = flight.node_id, flight.attempt
        if (
            self.settings.review == "required"
            and flight.prepared.kind is Kind.PLAN
            and result.status == "success"
            and result.next.addNodes
        ):
            proposed = self._propose(node_id, attempt, result)
            if isinstance(proposed, Rejected):
                return self._fail(
                    node_id,
                    attempt,
                    ErrorKind.INVALID_RESULT,
                    f"proposal rejected: {proposed}",
                    flight,
                )
            result = proposed

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            node = self.store.node(snap, node_id)
            wanted = [s.id for s in result.next.setStatus]
            wanted += [a.id for a in result.next.addNodes if a.id in snap.nodes]
            full = self.store.nodes(snap, [i for i in dict.fromkeys(wanted) if i in snap.nodes])
            return proposals.judge(
                node,
                snap.nodes,
                full,
                snap.graph,
                result,
                attempt=attempt,
                now=now,
                work=work,
                pool=self.launcher.pool_rules(node),
            )

        outcome = self._transact(compute)
        return self._after(flight, outcome)

    def _propose(self, node_id: str, attempt: int, result: RunnerResult) -> RunnerResult | Rejected:
        """`review: required`: a planner's new nodes go to a proposal branch a person applies."""
        name = f"{node_id}-a{attempt}"
        nodes = [p.to_fields() for p in result.next.addNodes]
        outcome = propose_nodes(
            self.store, name, nodes, parent=node_id, actor=self.actor, summary=result.summary
        )
        if isinstance(outcome, Rejected):
            return outcome
        ids = tuple(str(n["id"]) for n in nodes)
        self.proposals.append((name, ids))
        self.progress.event(
            f"{node_id}: proposed {len(ids)} node(s) for review on dagain/proposals/{name} "
            f"(gitdag diff dagain/state dagain/proposals/{name}; gitdag apply-proposal {name})"
        )
        outputs = {**result.outputs, "proposal": f"dagain/proposals/{name}"}
        summary = (
            f"{result.summary or 'planned'} "
            f"(proposed {len(ids)} node(s) on dagain/proposals/{name} for review)"
        )
        return result.model_copy(
            update={
                "next": result.next.model_copy(update={"addNodes": ()}),
                "outputs": outputs,
                "summary": summary,
            }
        )

    def _pending_proposals(self, snap: Snapshot) -> list[str]:
        return [name for name, ids in self.proposals if not any(i in snap.nodes for i in ids)]

    def _fail(
        self,
        node_id: str,
        attempt: int,
        kind: ErrorKind,
        summary: str,
        flight: _Flight | None = None,
    ) -> Snapshot | None:
        outcome = self._transact(self._failure(node_id, attempt, kind, summary))
        if flight is None:
            self.stats.finished += 1
        return self._after(flight, outcome)

    def _give_up(self, node_id: str, attempt: int, summary: str) -> Snapshot | None:
        """Fail a claimed node without starting it: its attempts are spent."""

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            node = self.store.node(snap, node_id)
            return lifecycle.fail(
                node, snap.nodes, snap.graph, kind=ErrorKind.TASK_FAILURE, summary=summary,
                now=now, attempt=attempt, spent=True,
            )  # fmt: skip

        return self._after(None, self._transact(compute))

    def _failure(
        self,
        node_id: str,
        attempt: int,
        kind: ErrorKind,
        summary: str,
        paths: tuple[str, ...] = (),
        verb: str = "fail",
    ) -> Callable[[Snapshot, dt.datetime], Transition | Rejected]:
        """The compute of a failed attempt (a runner's, or the merge queue's with `verb=merge`)."""

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            node = self.store.node(snap, node_id)
            return proposals.fail_attempt(
                node, snap.nodes, snap.graph, kind=kind, summary=summary, attempt=attempt,
                now=now, pool=self.launcher.pool_rules(node), paths=paths, verb=verb,
            )  # fmt: skip

        return compute

    def _after(
        self, flight: _Flight | None, outcome: Committed | Rejected | None
    ) -> Snapshot | None:
        if isinstance(outcome, Rejected):
            self.progress.event(f"result not applied: {outcome}")
            if flight is not None:
                self.launcher.release(flight.prepared, keep_branch=True)
            return None
        if outcome is None:
            return None
        crash.crash_point("supervisor.after_result_commit")
        self._announce(outcome.transition)
        snap = outcome.snapshot
        if flight is not None:
            node_id = flight.node_id
            status = snap.nodes[node_id].status if node_id in snap.nodes else None
            if status is Status.MERGING:
                self.queue.append(node_id)
                self.launcher.release(flight.prepared, keep_worktree=True)
            else:
                # Done without code: nothing to keep. Failed or retrying: the branch keeps the
                # attempt's work for inspection (the next attempt starts afresh from the tip).
                self.launcher.release(flight.prepared, keep_branch=status is not Status.DONE)
        return snap

    # --- the merge queue --------------------------------------------------------------------

    def _merge_step(self, snap: Snapshot) -> Snapshot:
        merging = snap.index.ids(Status.MERGING)
        known = set(self.queue)
        extra = sorted(
            (nid for nid in merging if nid not in known),
            key=lambda nid: (self.store.node(snap, nid).updated_at, nid),
        )
        self.queue = [nid for nid in self.queue if nid in merging] + extra
        if self.merge is not None:
            if not still_merging(snap, self.merge.node_id, self.merge.attempt):
                self.merge.desk.stop.set()  # cancelled, reset, ...: kill its check, never land
            self.merge.desk.serve(self, self.merge.node_id, self.merge.attempt)
            if not self.merge.future.done():
                return snap
            job, self.merge = self.merge, None
            try:
                outcome: MergeResult | BaseException = job.future.result()
            except Exception as exc:  # trouble that is no merge outcome: whose is it?
                outcome = exc
            if job.node_id in self.queue:
                self.queue.remove(job.node_id)
            # A fresh snapshot either way: whether the run can go on is judged on the state
            # after this merge, never on one read before it (a cancel may have come since).
            snap = self._merge_outcome(job, snap, outcome) or self._snapshot()
        if self.merge is None and self.queue and not self._merge_gated(snap):
            node_id = self.queue[0]
            node = self.store.node(snap, node_id)
            if node.work is None:
                self.queue.pop(0)
                return (
                    self._fail_merge(
                        node_id,
                        node.attempts,
                        ErrorKind.CHECK_FAILED,
                        "merging without a work record",
                        (),
                    )
                    or snap
                )
            desk = Desk()
            future = self.pool.submit(
                self.launcher.integrate, snap, node, land=desk.land, cancelled=desk.cancelled
            )
            self.merge = _Merge(node_id, node.attempts, future, desk)
        return snap

    def _merge_outcome(
        self, job: _Merge, snap: Snapshot, outcome: MergeResult | BaseException
    ) -> Snapshot | None:
        """Record a merge's outcome: an environment cause holds the node, the rest is recorded."""
        node_id = job.node_id
        if isinstance(outcome, MergeResult):
            hold = classify_result(outcome)
        else:
            base = None
            if node_id in snap.nodes:
                work = self.store.node(snap, node_id).work
                base = work.base if work else None
            hold = classify_error(outcome, target=snap.graph.target, base=base)
            if hold is None:
                return self._fail_merge(
                    node_id, job.attempt, ErrorKind.TASK_FAILURE, f"cannot merge: {outcome}", ()
                )
        if hold is not None:
            self.queue.insert(0, node_id)  # it keeps its place in line
            return self._hold_merge(node_id, hold)
        assert isinstance(outcome, MergeResult)
        self.merge_gate = None
        return self._record_merge(job, outcome)

    def _hold_merge(self, node_id: str, hold: EnvHold) -> Snapshot | None:
        """The merge queue waits for a repair: record the hold once, say it once."""
        gate = self.merge_gate
        if gate is not None and gate.hold.kind is hold.kind:
            gate.failed_again()
        else:
            self.merge_gate = Gate(hold)
            self.merge_gate.failed_again()
        self.said.say(node_id, hold)
        return self._commit_hold(node_id, hold)

    def _commit_hold(self, node_id: str, hold: EnvHold) -> Snapshot | None:
        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            node = self.store.node(snap, node_id)
            return lifecycle.hold(
                node, kind=hold.kind, reason=hold.reason, repair=hold.repair, now=now
            )

        outcome = self._transact(compute)  # quiet: the cause was reported once
        return outcome.snapshot if isinstance(outcome, Committed) else None

    def _merge_gated(self, snap: Snapshot) -> bool:
        """Tell whether the queue still waits on its environment cause (probed, bounded)."""
        gate = self.merge_gate
        if gate is None:
            return False
        for node_id in self.queue:  # every waiting node shows the hold in `gitdag status`
            held = self.store.node(snap, node_id).hold
            if held is None or held.kind is not gate.hold.kind:
                self._commit_hold(node_id, gate.hold)
        if not gate.due():
            return True
        paths = self.store.paths
        gone = cause_gone(gate.hold, root=paths.root, git_dir=paths.git_dir,
                          target=snap.graph.target)  # fmt: skip
        if gone is False:
            gate.failed_again()
            return True
        if gone:
            self.progress.event(f"repaired: {gate.hold.kind.value}; merging again")
            self.said.forget(gate.hold)
        return False  # gone, or only a retry tells: try the merge (it re-holds if not)

    def _record_merge(self, job: _Merge, result: MergeResult) -> Snapshot | None:
        if result.status == "merged" and result.recorded:
            # Landed together with its `merge` transition (landing.py): only tidy up.
            self.launcher.after_merge(job.node_id, integrated=True)
            return self._snapshot()
        if result.status == "abandoned":
            now = self._snapshot()
            self.progress.event(
                f"{job.node_id}: merge abandoned, the target was not touched ({result.output_tail})"
            )
            if not still_merging(now, job.node_id, job.attempt):
                self.launcher.after_merge(job.node_id, integrated=False)
            return now
        if result.status in ("merged", "already_merged") and result.merged:
            crash.crash_point("supervisor.before_merge_commit")
            snap = self._commit_node(
                job.node_id,
                lambda n, now: lifecycle.merged(n, merged_commit=result.merged or "", now=now),
            )
            if snap is not None:
                self.launcher.after_merge(job.node_id, integrated=True)
            return snap
        if result.status == "conflict":
            return self._fail_merge(
                job.node_id,
                job.attempt,
                ErrorKind.MERGE_CONFLICT,
                conflict_summary(result),
                tuple(result.paths),
            )
        if result.status == "check_failed":
            return self._fail_merge(
                job.node_id,
                job.attempt,
                ErrorKind.CHECK_FAILED,
                "check failed on the merged tree:\n" + result.output_tail[-3000:],
                (),
            )
        return self._fail_merge(
            job.node_id,
            job.attempt,
            ErrorKind.CHECK_FAILED,
            result.output_tail or f"merge refused: {result.status}",
            (),
        )

    def _fail_merge(
        self, node_id: str, attempt: int, kind: ErrorKind, summary: str, paths: tuple[str, ...]
    ) -> Snapshot | None:
        outcome = self._transact(self._failure(node_id, attempt, kind, summary, paths, "merge"))
        if isinstance(outcome, Committed):
            self._announce(outcome.transition)
            status = outcome.snapshot.nodes.get(node_id)
            final = status is not None and status.status is Status.FAILED
            self.launcher.after_merge(node_id, integrated=False, final=final)
            return outcome.snapshot
        return None

    # --- endings ----------------------------------------------------------------------------

    def _once_code(self, snap: Snapshot) -> int:
        last = self.stats.last_finished[-1] if self.stats.last_finished else None
        if last is None or last not in snap.nodes:
            return 1
        return 0 if snap.nodes[last].status is Status.DONE else 1

    def _final(self, snap: Snapshot) -> int:
        pending = self._pending_proposals(snap)
        code = 1 if pending else scheduling.outcome_code(snap.nodes)
        counts = graph.counts(snap.nodes.values())
        summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        if code == 0:
            self.progress.event(f"all done ({summary})")
        else:
            why = []
            if snap.graph.control.paused:
                why.append("the graph is paused (gitdag resume)")
            if counts["needs_human"]:
                why.append(f"{counts['needs_human']} node(s) wait for an answer (gitdag answer)")
            if counts["failed"]:
                why.append(f"{counts['failed']} node(s) failed (gitdag show / gitdag retry)")
            why += self.starts.held_reasons(snap)
            if self.merge_gate is not None:
                hold = self.merge_gate.hold
                why.append(f"{len(self.queue)} merge(s) wait for a repair ({hold.kind.value}: "
                           f"{hold.repair})")  # fmt: skip
            blocked = graph.blocked(snap.nodes)
            if blocked:
                why.append(f"{len(blocked)} node(s) blocked by failed deps")
            why += [
                f"proposal {name} awaits review (gitdag apply-proposal {name})" for name in pending
            ]
            held_here = len(self.queue) if self.merge_gate is not None else 0
            for status, here in (("running", 0), ("merging", held_here)):
                if counts[status] - here > 0:  # held merges were named above
                    why.append(
                        f"{counts[status] - here} node(s) {status} elsewhere (gitdag status)"
                    )
            if not why:
                why.append("no node is ready (gitdag status)")
            self.progress.event(f"stopped: nothing more can run ({summary}); " + "; ".join(why))
        return code

    def _interrupted(self) -> int:
        self.progress.event(f"{self._stop}: stopping runners")
        for flight in list(self.flights.values()):
            flight.handle.cancel()
        for flight in list(self.flights.values()):
            flight.handle.wait()
            self._forget(flight)
            self._commit_node(
                flight.node_id, _recover_attempt(flight.attempt, "supervisor interrupted")
            )
            self.launcher.release(flight.prepared, keep_branch=True)
        return 130

    def _shutdown(self) -> None:
        self.starts.publish(stopping=True)
        for flight in list(self.flights.values()):
            flight.handle.cancel()
            flight.handle.wait()
        if self.merge is not None:
            self.merge.desk.close()  # a running check is killed; nothing lands from now on
            wait([self.merge.future])  # its outcome, even an exception, is for the next run
        self.pool.shutdown(wait=True)
        self.selector.close()
        self.progress.close()
        with contextlib.suppress(OSError):  # a cache: a full disk must not hide why we stopped
            self.store.save_index()

    # --- display ----------------------------------------------------------------------------

    def _announce(self, transition: Transition) -> None:
        t = transition
        ending = ("complete", "merge", "fail", "escalate", "checkpoint", "answer", "lease")
        if t.verb in ending and t.to_status in ("done", "failed", "needs_human", "merging", "open"):
            self.stats.last_finished.append(t.subject)
        self.progress.transition(t)

    def _show(self, snap: Snapshot) -> None:
        if not self.progress.live:  # plain output: nothing to compute each turn of the loop
            return
        rows = [
            Running(f.node_id, f.prepared.spec.runner, f.handle.started_at, f.prepared.run_dir)
            for _, f in sorted(self.flights.items())
        ]
        self.progress.status(snap.index.counts(), rows, len(self.queue))


def _recover_attempt(
    attempt: int, reason: str
) -> Callable[[Node, dt.datetime], Transition | Rejected]:
    def op(node: Node, now: dt.datetime) -> Transition | Rejected:
        if node.claim is None or node.claim.attempt != attempt:
            return Rejected(f"{node.id} moved on from attempt {attempt}")
        return lifecycle.recover(node, reason=reason, now=now)

    return op


def run(
    store: StateStore, settings: Settings, options: RunOptions, progress: Progress | None = None
) -> int:
    """Run the supervisor on a repository's store; return the exit code (spec §5)."""
    if options.workers < 1:
        raise InputError("--workers must be at least 1")
    return Supervisor(store, settings, options, progress).run()
