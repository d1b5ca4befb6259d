"""The attempts in flight: start, watch, collect, stop, interrupt and shut down (run and work).

One component owns the life of an attempt after its claim, for `gitdag run` and `gitdag work`
alike; they differ only in the commit port it is given (the local state branch, or a remote's)
and in what their `Host` decides at a few points (how a result is judged and committed, what a
committed status means for the worktree and the merge queue, how a held start waits).

- Starting: `Launcher.prepare` + `start`. A configuration error gives the attempt back and
  stops the run (exit 2); the world's error (`ENVIRONMENT_ERRORS`) holds the start (the attempt
  is given back) or fails the node with `spawn_error`; anything else is a bug of gitdag: the
  attempt is given back (its budget intact) and the error goes on to the exit-3 crash log.
- Watching: each runner's pidfd is registered with one selector, so an exit wakes the loop.
- Collecting: a finished runner is settled (its verdict read, its leftovers committed) and
  becomes exactly one commit through the port (or none, when it was stopped).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import selectors
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from gitdag import crash
from gitdag.attempts.holds import EnvHold, classify_start_error
from gitdag.attempts.launching import Launcher, Prepared, Settled
from gitdag.attempts.port import CommitPort, NodeOp, Outcome, give_back, on_node
from gitdag.attempts.progress import Progress
from gitdag.core import agent_loops, judging
from gitdag.core.agent_loops import DEFER_VERB, ITERATE_VERB
from gitdag.core.model import ErrorKind, Node, Status, Work
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import ENVIRONMENT_ERRORS, ConfigError, RemoteError, StaleSnapshotError
from gitdag.runner.launch import RunHandle, RunOutcome
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed

CRASHED = "gitdag crashed while it handled this attempt (see .dagain/local/logs/)"


@dataclass
class Attempt:
    """One attempt in flight: its runner, what was prepared for it, and why it was stopped."""

    node_id: str
    attempt: int
    handle: RunHandle
    prepared: Prepared
    pidfd: int | None = None
    stopped: str | None = None  # why we stopped it (a cancel, a lease that ran out, ...)
    lease_until: dt.datetime | None = None  # `gitdag work`: renewed at half its length
    lease_s: int = 0


class Host(Protocol):
    """What `run` and `work` decide at the points where they differ."""

    def announce(self, transition: Transition) -> None:
        """A transition of an attempt was committed: say it."""
        ...

    def hold_start(self, node: Node, hold: EnvHold) -> None:
        """A start failed for an environment cause: wait until it is gone."""
        ...

    def runner_missing(self, attempt: Attempt) -> EnvHold | None:
        """After a spawn error: the hold of its runner if the executable is gone, else None."""
        ...

    def stopped(self, attempt: Attempt) -> None:
        """An attempt we stopped has ended (its worktree is released already)."""
        ...

    def result(self, attempt: Attempt, settled: Settled) -> Snapshot | None:
        """Commit a finished attempt's result (`Attempts.judged` + `Attempts.after`)."""
        ...

    def entered(self, attempt: Attempt, status: Status | None) -> None:
        """Its result is committed with this status: release (or keep) its worktree."""
        ...


class Attempts:
    """The attempts in flight of one `run` or `work`, committed through one port."""

    def __init__(
        self,
        port: CommitPort,
        launcher: Launcher,
        progress: Progress,
        host: Host,
        *,
        crash_points: bool = False,
    ) -> None:
        self.port = port
        self.launcher = launcher
        self.progress = progress
        self.host = host
        self.crash_points = crash_points  # `run`'s crash-injection points (crash.py)
        self.running: dict[str, Attempt] = {}
        self.selector = selectors.DefaultSelector()
        self.finished = 0  # attempts that ended: a result, a failure, a failed start

    def __len__(self) -> int:
        return len(self.running)

    def _point(self, name: str) -> None:
        if self.crash_points:
            crash.crash_point("supervisor." + name)

    # --- committing ---------------------------------------------------------------------------

    def commit(self, node_id: str, op: NodeOp, *, quiet: bool = False) -> Snapshot | None:
        """Commit one node's transition through the port; announced unless `quiet`."""
        outcome = self.port.transact(on_node(self.port.store, node_id, op))
        if isinstance(outcome, Committed):
            if not quiet:
                self.host.announce(outcome.transition)
            return outcome.snapshot
        return None

    def fail(self, node_id: str, attempt: int, kind: ErrorKind, summary: str,
             running: Attempt | None = None) -> Snapshot | None:  # fmt: skip
        """Fail an attempt (backoff, promotion, escalation when its budget is spent)."""
        pool = self.launcher.pool_rules

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            return judging.fail_attempt(
                node, snap.nodes, snap.graph, kind=kind, summary=summary, attempt=attempt,
                now=now, pool=pool(node),
            )  # fmt: skip

        return self.after(running, self.port.transact(on_node(self.port.store, node_id, op)))

    def judged(self, node_id: str, attempt: int, result: RunnerResult, work: Work | None) -> NodeOp:
        """The transition a runner's result asks for, judged on the head it is committed on."""
        store, pool = self.port.store, self.launcher.pool_rules

        def op(node: Node, snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            wanted = [s.id for s in result.next.setStatus]
            wanted += [a.id for a in result.next.addNodes if a.id in snap.nodes]
            full = store.nodes(snap, [i for i in dict.fromkeys(wanted) if i in snap.nodes])
            return judging.judge(
                node, snap.nodes, full, snap.graph, result, attempt=attempt, now=now, work=work,
                pool=pool(node),
            )  # fmt: skip

        return op

    def after(self, running: Attempt | None, outcome: Outcome) -> Snapshot | None:
        """Announce a committed outcome of an attempt and let the host release its worktree."""
        if isinstance(outcome, Rejected):
            self.progress.event(f"result not applied: {outcome}")
        if not isinstance(outcome, Committed):
            if running is not None:
                self.launcher.release(running.prepared, keep_branch=True)
            return None
        self._point("after_result_commit")
        self.host.announce(outcome.transition)
        snap = outcome.snapshot
        if running is not None:
            if outcome.transition.verb == ITERATE_VERB:  # an agent loop: its next iteration
                return self._next_iteration(running, snap)
            if outcome.transition.verb == DEFER_VERB and self.launcher.keep_waiting(
                running.prepared, snap
            ):
                return snap  # `needs`: its worktree waits with it (attempts/waiting.py)
            self._entered(running, snap)
        return snap

    def _entered(self, running: Attempt, snap: Snapshot) -> None:
        node = snap.nodes.get(running.node_id)
        self.host.entered(running, node.status if node is not None else None)

    def _next_iteration(self, running: Attempt, snap: Snapshot) -> Snapshot:
        """Start an agent loop's next iteration on the same claim, in the same worktree.

        Iterations never overlap: the last one's runner has ended. If the next one does not
        start (no time left, a hold), the worktree is released as after any ending.
        """
        self.launcher.between_iterations(running.prepared)
        node = self.port.store.node(snap, running.node_id)
        lease = node.claim.lease_until if node.claim is not None else None
        started, committed = self.start(snap, node, lease_until=lease if running.lease_until
                                        else None, same_worktree=True)  # fmt: skip
        snap = committed or snap
        if started is None:
            self._entered(running, snap)
        return snap

    # --- starting -----------------------------------------------------------------------------

    def start(
        self, claimed: Snapshot, node: Node, *, lease_until: dt.datetime | None = None,
        same_worktree: bool = False,
    ) -> tuple[Attempt | None, Snapshot | None]:  # fmt: skip
        """Start the attempt `node` was just claimed for; its start's commit if it did not start.

        `same_worktree`: an agent loop's next iteration (`Launcher.prepare`).

        Raises:
          ConfigError: the user's configuration is wrong (the attempt was given back).
          Exception: a bug of gitdag (not one of ENVIRONMENT_ERRORS; the attempt was given back).
        """
        node_id, attempt = node.id, node.attempts
        overdue = agent_loops.overdue(node, claimed.graph, self.port.store.clock())
        if overdue is not None:  # its loop's max_duration_s ran out (a restart came too late)
            self.finished += 1
            return None, self.fail(node_id, attempt, overdue.kind, overdue.summary)
        try:
            crash.fail_point("attempt.start")
            prepared = self.launcher.prepare(claimed, node, same_worktree=same_worktree)
            handle = self.launcher.start(prepared)
        except ConfigError:
            # The user's configuration is wrong, not the node: give the attempt back and stop.
            self.commit(node_id, give_back(attempt, "configuration error"))
            raise
        except ENVIRONMENT_ERRORS as exc:  # the node's environment could not be set up
            hold = classify_start_error(exc, target=claimed.graph.target)
            if hold is not None:  # not the node's doing: the attempt is given back, it waits
                self.host.hold_start(node, hold)
                return None, self.commit(node_id, give_back(attempt, hold.reason))
            self.finished += 1  # an attempt that ended before it began
            why = f"could not start: {exc}"
            return None, self.fail(node_id, attempt, ErrorKind.SPAWN_ERROR, why)
        except Exception:
            self._give_back_after_bug(node_id, attempt)
            raise
        running = Attempt(node_id, attempt, handle, prepared, lease_until=lease_until,
                          lease_s=claimed.graph.defaults.lease_s)  # fmt: skip
        try:
            if handle.pid is None:
                raise ValueError("not started")
            running.pidfd = os.pidfd_open(handle.pid)
            self.selector.register(running.pidfd, selectors.EVENT_READ, node_id)
        except (OSError, AttributeError, ValueError):
            running.pidfd = None  # the poll interval still notices the exit
        self.running[node_id] = running
        self._point("after_launch")
        return running, None

    def _give_back_after_bug(self, node_id: str, attempt: int) -> None:
        """Before a bug of ours reaches the crash log: the node is not the one to pay for it."""
        with contextlib.suppress(Exception):  # the bug is what must be reported, not this
            self.commit(node_id, give_back(attempt, CRASHED))

    # --- watching -----------------------------------------------------------------------------

    def honour(self, snap: Snapshot, why: str) -> None:
        """Stop runners whose node is no longer running their attempt (cancel, reset, reclaim).

        And remove the worktrees kept for nodes that no longer wait (attempts/waiting.py).
        """
        self.launcher.waiting.sweep(self.port.store, snap)
        for running in list(self.running.values()):
            if running.stopped:
                continue
            summary = snap.nodes.get(running.node_id)
            still = summary is not None and summary.status is Status.RUNNING
            if still:
                claim = self.port.store.node(snap, running.node_id).claim
                still = claim is not None and claim.attempt == running.attempt
            if not still:
                self.stop(running, why)

    def stop(self, running: Attempt, why: str) -> None:
        """Stop one runner (TERM, then KILL after the grace); its end is collected as usual."""
        running.stopped = why
        running.handle.cancel()
        self.progress.event(f"stopping {running.node_id} (attempt {running.attempt}): {why}")

    def wait(self, timeout: float) -> None:
        """Sleep until a runner exits or `timeout` passes."""
        if any(r.pidfd is None for r in self.running.values()):
            timeout = min(timeout, 0.05)
        if not self.selector.get_map():
            if timeout > 0:
                time.sleep(timeout)
            return
        self.selector.select(timeout)

    def _forget(self, running: Attempt) -> None:
        self.running.pop(running.node_id, None)
        if running.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None

    # --- collecting ---------------------------------------------------------------------------

    def collect(self) -> Snapshot | None:
        """Commit the outcome of every runner that exited; the last snapshot committed."""
        snap = None
        for running in list(self.running.values()):
            outcome = running.handle.poll()
            if outcome is None:
                continue
            self._forget(running)
            self.finished += 1
            self._point("after_runner_exit")
            snap = self._finish(running, outcome) or snap
        return snap

    def _finish(self, running: Attempt, outcome: RunOutcome) -> Snapshot | None:
        node_id, attempt = running.node_id, running.attempt
        if running.stopped or outcome.cancelled:
            self.launcher.release(running.prepared, keep_branch=True)
            self.host.stopped(running)
            return None
        with self._bug_gives_back(node_id, attempt):
            settled = self.launcher.settle(running.prepared, outcome)
        if settled.problem is not None:
            problem = settled.problem
            if problem.kind is ErrorKind.SPAWN_ERROR:
                missing = self.host.runner_missing(running)
                if missing is not None:  # the agent never ran: give the attempt back and wait
                    self.launcher.release(running.prepared, keep_branch=True)
                    return self.commit(node_id, give_back(attempt, missing.reason))
            return self.fail(node_id, attempt, problem.kind, problem.reason, running)
        assert settled.result is not None
        return self.host.result(running, settled)

    @contextlib.contextmanager
    def _bug_gives_back(self, node_id: str, attempt: int) -> Iterator[None]:
        try:
            yield
        except ENVIRONMENT_ERRORS:
            raise
        except Exception:
            self._give_back_after_bug(node_id, attempt)
            raise

    # --- endings ------------------------------------------------------------------------------

    def interrupt(self, reason: str) -> None:
        """Ctrl-C or SIGTERM: stop every runner and give its node back (its budget intact)."""
        for running in self.running.values():
            running.handle.cancel()
        for running in list(self.running.values()):
            running.handle.wait()
            self._forget(running)
            self.launcher.release(running.prepared, keep_branch=True)
            try:
                self.commit(running.node_id, give_back(running.attempt, reason))
            except (RemoteError, StaleSnapshotError) as exc:
                self.progress.error(
                    f"{running.node_id}: not given back ({exc}); its lease will run out"
                )

    def shutdown(self, *, release: bool) -> None:
        """Stop what still runs (after an error or a crash of ours).

        With `release`, their worktrees are released too; else the next start recovers them.
        """
        for running in list(self.running.values()):
            running.handle.cancel()
            running.handle.wait()
            self._forget(running)
            if release:
                self.launcher.release(running.prepared, keep_branch=True)
        self.selector.close()
