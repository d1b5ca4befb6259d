"""`gitdag run`: snapshot -> plan -> claim -> launch -> collect -> judge -> commit -> merge.

One thread owns the store and makes every state commit (through `attempts.port.LocalPort`);
the attempts in flight are `attempts.running.Attempts`' (shared with `gitdag work`), the merge
queue is `merging.LocalMerges`, and why the run stops is `core.stopping.why_stopped`. What is
`run`'s own: the guard over commits it did not write, claims lost to a rewound branch, starts
held per cause (`starting.py`), proposals under review (`review.py`), `--once` and `--watch`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from gitdag import crash
from gitdag.attempts.holds import EnvHold, SaidOnce
from gitdag.attempts.launching import Launcher, Settled
from gitdag.attempts.lock import SupervisorLock
from gitdag.attempts.port import CommitPort, LocalPort, on_node
from gitdag.attempts.preflight import preflight
from gitdag.attempts.progress import Progress, Running
from gitdag.attempts.running import Attempt, Attempts
from gitdag.config import Settings
from gitdag.core import lifecycle, scheduling
from gitdag.core.model import ErrorKind, Kind, Node, Status
from gitdag.core.stopping import LocalFacts, why_stopped
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import InputError
from gitdag.store import repo as repos
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.supervisor.crash_recovery import recover_orphans, remove_stale_worktrees
from gitdag.supervisor.guard import Guard
from gitdag.supervisor.merging import LocalMerges
from gitdag.supervisor.review import Reviews
from gitdag.supervisor.rewinds import Ledger
from gitdag.supervisor.starting import StartGates


@dataclass(frozen=True)
class RunOptions:
    """How `gitdag run` behaves."""

    workers: int = 2
    once: bool = False
    watch: bool = False
    poll_s: float = 0.2  # control commits are honoured within this (well under a second)


class Supervisor:
    """Runs the graph of one repository until nothing more can be done (or forever with watch)."""

    def __init__(
        self,
        store: StateStore,
        settings: Settings,
        options: RunOptions,
        progress: Progress | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        port: CommitPort | None = None,
    ) -> None:
        """`port`: where commits go; the local state branch by default (`LocalPort`).

        Attempts, claims, holds and the stop line go through the port; landing a merge
        (`landing.py`, one local ref transaction with the target) and crash recovery still assume
        the local branch, so a `RemotePort` here needs those two to learn the remote first.
        """
        self.store = store
        self.settings = settings
        self.options = options
        self.progress = progress or Progress()
        self.actor = repos.supervisor_actor()
        if clock is not None:
            store.clock = clock
        self.launcher = Launcher(store, settings)
        self.port = port or LocalPort(store, self.actor)
        self.attempts = Attempts(self.port, self.launcher, self.progress, self, crash_points=True)
        self.merges = LocalMerges(self)
        self.reviews = Reviews(self)
        self.last_finished: list[str] = []  # nodes whose attempt ended, in order (for --once)
        self.guard = Guard(store, self.actor)
        self.lost = Ledger(store.paths.local)
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
                snap = self.snapshot()
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
        once = self.options.once
        while True:
            snap = self.snapshot()
            if self._stop is not None:
                return self._interrupted()
            self.attempts.honour(snap, "no longer running here")
            snap = self.attempts.collect() or snap
            snap = self.merges.step(snap)
            finished = self.attempts.finished
            if once and finished >= 1 and not self.attempts.running and not self.merges.merge:
                return self._once_code(snap)
            if not (once and (finished or self.attempts.running)):
                snap = self._start_ready(snap)
            self._show(snap)
            busy = bool(self.attempts.running) or self.merges.busy()
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

    def snapshot(self) -> Snapshot:
        """The head to build on, once the guard has checked what others committed since."""
        head = self.store.head()
        if head is not None and head != self._last_head:
            # The one legality check of commits this supervisor did not write (guard.py).
            self.guard.check(head)
            self._last_head = head
            self._count_rewinds()
        return self.port.snapshot()

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

    def _wait(self, timeout: float) -> None:
        if self.merges.running():
            timeout = min(timeout, 0.02)
        self.attempts.wait(timeout)

    # --- starting nodes ---------------------------------------------------------------------

    def _start_ready(self, snap: Snapshot) -> Snapshot:
        capacity = self.options.workers - len(self.attempts)
        if self.options.once:
            capacity = min(capacity, 1)
        dispatches = scheduling.plan(
            self.starts.startable(snap),
            capacity=capacity,
            now=self.store.clock(),
            paused=snap.graph.control.paused,
            in_flight=list(self.attempts.running),
            index=snap.index,
        )
        for dispatch in dispatches:
            if dispatch.action == "checkpoint":
                opened = self.attempts.commit(
                    dispatch.node_id, lambda n, s, now: lifecycle.checkpoint_open(n, now=now)
                )
                snap = opened or snap
                continue
            snap = self._launch(dispatch.node_id, snap)
        return snap

    def _launch(self, node_id: str, snap: Snapshot) -> Snapshot:
        lease = snap.graph.defaults.lease_s
        claimed = self.attempts.commit(
            node_id, lambda n, s, now: lifecycle.claim(n, worker=self.actor, now=now, lease_s=lease)
        )
        if claimed is None:
            return snap
        crash.crash_point("supervisor.after_claim")
        node = self.store.node(claimed, node_id)
        self._count_rewinds()  # the claim's own commit may have been built on a rewound head
        lost = self.lost.lost(node_id, node.attempt_base)
        policy = lifecycle.policy_of(node, claimed.graph)
        if lost and node.attempts - node.attempt_base + lost > policy.max_attempts:
            # Its earlier starts were real (the branch lost their claims): the budget is spent.
            why = (f"started {lost + node.attempts - node.attempt_base - 1} time(s); each time "
                   f"{STATE_BRANCH} was moved back below its claim (see .dagain/local/"
                   "incidents.log)")  # fmt: skip
            return self._give_up(node_id, node.attempts, why) or claimed
        _, committed = self.attempts.start(claimed, node)
        return committed or claimed

    def _give_up(self, node_id: str, attempt: int, summary: str) -> Snapshot | None:
        """Fail a claimed node without starting it: its attempts are spent."""

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return lifecycle.fail(
                node, snap.nodes, snap.graph, kind=ErrorKind.TASK_FAILURE, summary=summary,
                now=now, attempt=attempt, spent=True,
            )  # fmt: skip

        return self.attempts.after(None, self.port.transact(on_node(self.store, node_id, op)))

    # --- what the attempts ask of `run` (attempts.running.Host) -------------------------------

    def announce(self, transition: Transition) -> None:
        t = transition
        ending = ("complete", "merge", "fail", "escalate", "checkpoint", "answer", "lease")
        if t.verb in ending and t.to_status in ("done", "failed", "needs_human", "merging", "open"):
            self.last_finished.append(t.subject)
        self.progress.transition(t)

    def hold_start(self, node: Node, hold: EnvHold) -> None:
        self.starts.hold_start(node, hold)

    def runner_missing(self, attempt: Attempt) -> EnvHold | None:
        return self.starts.runner_missing(attempt.prepared)

    def stopped(self, attempt: Attempt) -> None:
        self.progress.event(f"{attempt.node_id}: runner stopped")

    def result(self, attempt: Attempt, settled: Settled) -> Snapshot | None:
        node_id, result = attempt.node_id, settled.result
        assert result is not None
        if (
            self.settings.review == "required"
            and attempt.prepared.kind is Kind.PLAN
            and result.status == "success"
            and result.next.addNodes
        ):
            proposed = self.reviews.propose(node_id, attempt.attempt, result)
            if isinstance(proposed, Rejected):
                return self.attempts.fail(node_id, attempt.attempt, ErrorKind.INVALID_RESULT,
                                          f"proposal rejected: {proposed}", attempt)  # fmt: skip
            result = proposed
        judged = self.attempts.judged(node_id, attempt.attempt, result, settled.work)
        snap = self.attempts.after(
            attempt, self.port.transact(on_node(self.store, node_id, judged))
        )
        summary = snap.nodes.get(node_id) if snap is not None else None
        if settled.hold is not None and summary is not None and summary.status is Status.MERGING:
            snap = self.merges.hold(node_id, settled.hold) or snap  # its leftovers wait
        return snap

    def entered(self, attempt: Attempt, status: Status | None) -> None:
        if status is Status.MERGING:
            self.merges.queue.append(attempt.node_id)
            self.launcher.release(attempt.prepared, keep_worktree=True)
        else:
            # Done without code: nothing to keep. Failed or retrying: the branch keeps the
            # attempt's work for inspection (the next attempt starts afresh from the tip).
            self.launcher.release(attempt.prepared, keep_branch=status is not Status.DONE)

    # --- endings ----------------------------------------------------------------------------

    def _once_code(self, snap: Snapshot) -> int:
        last = self.last_finished[-1] if self.last_finished else None
        if last is None or last not in snap.nodes:
            return 1
        return 0 if snap.nodes[last].status is Status.DONE else 1

    def _final(self, snap: Snapshot) -> int:
        # Nothing runs now: a checkout recovery had to leave (its orphan would not stop) goes.
        remove_stale_worktrees(self, snap)
        merge_hold, held_merges = self.merges.held()
        facts = LocalFacts(
            proposals=self.reviews.pending(snap),
            held_starts=tuple(self.starts.held_reasons(snap)),
            merge_hold=merge_hold,
            held_merges=held_merges,
            group_waits=tuple(self.merges.groups.reasons()),
        )
        paused = snap.graph.control.paused
        stop = why_stopped(snap.nodes, paused=paused, now=self.store.clock(), facts=facts)
        self.progress.event(stop.line)
        return stop.code

    def _interrupted(self) -> int:
        self.progress.event(f"{self._stop}: stopping runners")
        self.attempts.interrupt("supervisor interrupted")
        return 130

    def _shutdown(self) -> None:
        self.starts.publish(stopping=True)
        # Runners still in flight (an error stopped the run): their nodes are recovered by the
        # next start, which finds their worktrees as they were.
        self.attempts.shutdown(release=False)
        self.merges.close()
        self.progress.close()
        with contextlib.suppress(OSError):  # a cache: a full disk must not hide why we stopped
            self.store.save_index()

    # --- display ----------------------------------------------------------------------------

    def _show(self, snap: Snapshot) -> None:
        if not self.progress.live:  # plain output: nothing to compute each turn of the loop
            return
        rows = [
            Running(a.node_id, a.prepared.spec.runner, a.handle.started_at, a.prepared.run_dir)
            for _, a in sorted(self.attempts.running.items())
        ]
        self.progress.status(snap.index.counts(), rows, len(self.merges.queue))


def run(
    store: StateStore,
    settings: Settings,
    options: RunOptions,
    progress: Progress | None = None,
    port: CommitPort | None = None,
) -> int:
    """Run the supervisor on a repository's store; return the exit code (spec §5).

    `port` chooses where its commits go (default: the local state branch, `LocalPort`).
    """
    if options.workers < 1:
        raise InputError("--workers must be at least 1")
    return Supervisor(store, settings, options, progress, port=port).run()
