"""A worker's link to its remote: bounded calls, going on while the remote is down, prompt stops.

A worker must not sit inside one remote call while its runners finish, its leases run out or a
person presses Ctrl-C. So, once its loop runs:

- **Each call is bounded** (`cap`, installed as `Retry.cap`): while the remote answers, a call
  retries transient failures for at most `SLICE_S`, and never past the earliest lease end of the
  attempts the worker holds; while it is down, a call is tried once (the loop is the retry).
  One try waits at most `SLICE_S` for a silent remote (`Retry.try_s`), below `remote.timeout_s`:
  except a result push, a merge's fetch of a node's branch and its push of the target
  (`Retry.patient`: objects may be many, hooks may run, and a slow but alive server gets the
  floor).
- **Down** (a call gave up: `RemoteUnreachable`): the loop keeps turning. It collects finished
  runners: their result (or failure) goes to the journal (`.dagain/local/pending/`, one line
  each) instead of the remote; it stops a runner whose lease ran out by its own clock; it does
  not claim, renew, merge or reclaim. It looks at the remote again at a capped, jittered backoff
  (`PROBE_FIRST_S` doubling to `PROBE_CAP_S`), and wakes at once when a runner exits.
- **Up again** (a fetch answered): the kept results are pushed first, each judged on the
  remote head while its claim is still this worker's (journal.replay: one whose lease was lost
  meanwhile is discarded with a line), and a claim of this worker whose push was cut off but
  landed (no runner holds it) is given back.
- **Giving up**: after `remote.retry_for_s` without an answer, once no runner of this worker is
  left running, the worker exits 2 (the journal stays for the next worker in this clone).
- **Stopping** (`stopping`): on Ctrl-C or SIGTERM the signal handler aborts the call in flight
  (`Interrupted`, transport/retry.py); giving the nodes back then gets `GIVE_BACK_S` in all, a
  call hanging past it is aborted by SIGALRM; what is not given back keeps its lease (the next
  worker in this clone gives it back at once, docs/many-machines.md).
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from gitdag.attempts.port import give_back
from gitdag.attempts.running import Attempt, Attempts
from gitdag.core.model import ErrorKind, Status
from gitdag.errors import RemoteUnreachable, StaleSnapshotError
from gitdag.remote import journal
from gitdag.store.layout import STATE_BRANCH
from gitdag.store.snapshot import Snapshot
from gitdag.transport.retry import Interrupted

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker

SLICE_S = 5.0  # the longest one call of a running worker retries before its loop turns again
PROBE_FIRST_S = 0.5  # while down: the first wait before looking at the remote again
PROBE_CAP_S = 5.0  # ... doubling up to this
GIVE_BACK_S = 5.0  # on Ctrl-C: the time given to give the nodes back
_REARM_S = 0.2  # a deadline that passed outside a call aborts the next one this soon
_GAVE_UP = re.compile(r" \(gave up after [0-9.e+-]+ s\)$")


class Link:
    """Whether the remote answers, as this worker last saw it (module doc)."""

    def __init__(self, worker: Worker, rng: random.Random | None = None) -> None:
        self.w = worker
        self.down_since: float | None = None
        self.next_probe = 0.0
        self.step = PROBE_FIRST_S
        self.kept: set[str] = set()  # nodes whose finished attempt waits in the journal
        self.recovering = False  # up again: kept results and cut-off claims to settle
        self.rng = rng or random.Random()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def name(self) -> str:
        return self.w.remote.remote

    def install(self) -> None:
        """Bound every later call of this worker (the loop runs from now on)."""
        retry = self.w.remote.retry
        retry.cap = self.cap
        # A silent remote holds one try for the slice, not `remote.timeout_s`: a look cut then
        # is "no answer yet", and the loop collects its runners. A result push keeps the floor.
        retry.try_s = min(retry.floor_s, SLICE_S)

    def uninstall(self) -> None:
        """The loop ended: later calls (`run`'s last sync) get `remote.retry_for_s` again."""
        retry = self.w.remote.retry
        if retry.cap == self.cap:
            retry.cap = None
            retry.try_s = None

    def cap(self) -> float:
        """How long the call starting now may retry (0: once)."""
        if self.down:
            return 0.0
        bound = SLICE_S
        ends = [r.lease_until for r in self.w.attempts.running.values()
                if r.lease_until is not None and not r.stopped]  # fmt: skip
        if ends:
            left = (min(ends) - self.w.store.clock()).total_seconds()
            bound = min(bound, max(0.0, left))
        return bound

    # --- the remote's answers ---------------------------------------------------------------

    def failed(self, exc: RemoteUnreachable) -> None:
        """A call gave up: go on without the remote, or give up once nothing is left running.

        Raises:
          RemoteUnreachable: down for `remote.retry_for_s` and no runner of ours is running.
        """
        now = time.monotonic()
        said = _GAVE_UP.sub("", str(exc))
        if self.down_since is None:
            self.down_since = now
            self.step = PROBE_FIRST_S
            self.w.progress.error(f"{said}; waiting for it: the runners go on, results are kept "
                                  "in .dagain/local/pending/ until it answers")  # fmt: skip
        self.next_probe = now + self.rng.uniform(self.step / 2, self.step)
        self.step = min(self.step * 2, PROBE_CAP_S)
        budget = self.w.remote.retry.retry_for_s
        if now - self.down_since >= budget and not self.w.attempts.running:
            raise RemoteUnreachable(
                f"remote {self.name}: gave up after {budget:g} s (remote.retry_for_s) without "
                f"an answer; last: {said}"
            ) from exc

    def answered(self) -> None:
        """A fetch answered: settle what waited for it (`catch_up`, in the loop)."""
        if self.down_since is None:
            return
        self.w.progress.event(f"remote {self.name} answers again (after "
                              f"{time.monotonic() - self.down_since:.0f} s)")  # fmt: skip
        self.down_since = None
        self.recovering = True

    def probe_due(self) -> bool:
        return time.monotonic() >= self.next_probe

    def wait_s(self, longest: float) -> float:
        """How long the loop may sleep (while down: until the next look at the remote)."""
        if not self.down:
            return longest
        return max(0.0, min(longest, self.next_probe - time.monotonic()))

    # --- what the loop does while down, and after --------------------------------------------

    def keep(self, node_id: str, attempt: int, running: Attempt | None, what: str,
             until: str = "") -> None:  # fmt: skip
        """A finished attempt's result (or failure) waits in the journal for the remote."""
        if running is not None:
            self.w.launcher.release(running.prepared, keep_branch=True)
        if node_id not in self.kept:
            self.kept.add(node_id)
            until = until or f"until {self.name} answers"
            self.w.progress.event(f"{node_id}: {what} of attempt {attempt} kept in "
                                  f".dagain/local/pending/ {until}")  # fmt: skip

    def keep_busy(self, node_id: str, attempt: int, running: Attempt | None, what: str) -> None:
        """Keep a result whose push lost every race (many writers at once) for the next turn.

        The remote's state branch kept moving past the push's bound: the result waits in the
        journal, and `catch_up` pushes it again on the loop's next turn.
        """
        self.keep(node_id, attempt, running, what,
                  f"(the remote's {STATE_BRANCH} kept moving); pushed again next turn")  # fmt: skip

    def lapse(self) -> None:
        """While down: stop each runner whose lease ran out by our clock (no renewal possible)."""
        from gitdag.remote.leases import LAPSED

        now = self.w.store.clock()
        for running in list(self.w.attempts.running.values()):
            until = running.lease_until
            if not running.stopped and until is not None and now >= until:
                self.w.attempts.stop(running, LAPSED)

    def catch_up(self) -> None:
        """Up again: push the kept results, give back our claims no runner holds."""
        if not self.kept and not self.recovering:
            return
        if self.kept:
            try:
                journal.replay(self.w.pending, self.w.remote, self.w.token,
                               lambda e: push_kept(self.w, e), self.w.progress.event,
                               self.w.merges.adopt)  # fmt: skip
            except StaleSnapshotError as exc:
                # Busy, not broken: what did not land stays in the journal for the next turn.
                self.w.progress.event(f"kept results not all pushed yet: {exc}")
                return
            # A result whose push lost every race again is still in the journal (keep_busy):
            # it stays kept, so the next turn pushes it again.
            self.kept = {nid for nid in self.kept if self.w.pending.has(nid)}
        if self.recovering:
            self._orphans(self.w.remote.snapshot())
            self.recovering = False

    def _orphans(self, snap: Snapshot) -> None:
        """Claims of ours that landed while the remote did not answer: run them, or give back.

        A push cut off after it went, or a combined claim another worker made for our raised
        hand during the outage: the claim is ours and its lease runs. With a slot free and
        time left on the lease we run it (giving it back would cost two commits and move the
        node to its next attempt number for nothing); otherwise we give it back.
        """
        w = self.w
        now = w.store.clock()
        for node_id, summary in snap.nodes.items():
            if summary.status is not Status.RUNNING or node_id in w.attempts.running:
                continue
            claim = w.store.node(snap, node_id).claim
            if claim is None or claim.worker != w.worker_id or w.pending.has(node_id):
                continue
            until = claim.lease_until
            if until is not None and (until - now).total_seconds() > ADOPT_MARGIN_S \
                    and w.may_start():  # fmt: skip
                w.progress.event(f"{node_id}: its claim landed while {self.name} did not "
                                 "answer; running it")  # fmt: skip
                w.run_claimed(snap, node_id)
                continue
            why = f"attempt {claim.attempt}: its claim landed while {self.name} did not answer"
            w.push_node(node_id, give_back(claim.attempt, why))

    # --- stopping ---------------------------------------------------------------------------

    @contextmanager
    def stopping(self, seconds: float = GIVE_BACK_S) -> Iterator[None]:
        """Bound what is left to say to the remote (giving nodes back) to `seconds` in all.

        Raises:
          Interrupted: a call was still in flight at the deadline (or a second signal came).
        """
        retry = self.w.remote.retry
        end = time.monotonic() + seconds
        old_cap = retry.cap
        retry.cap = lambda: max(0.0, end - time.monotonic())

        def alarm(signum: int, frame: FrameType | None) -> None:
            if retry.calls > 0:
                raise Interrupted(f"no answer from {self.name} within {seconds:g} s")
            signal.setitimer(signal.ITIMER_REAL, _REARM_S)

        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            retry.cap = old_cap


# Time a found claim's lease must still have for us to run it: the loop renews leases on its
# turns, and a turn may take a slice (5 s) while the remote is slow.
ADOPT_MARGIN_S = 10.0


class KeepingAttempts(Attempts):
    """A worker's attempts: a finished runner's failure is journaled like a result (Link.keep)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker.port, worker.launcher, worker.progress, worker)
        self.worker = worker

    def fail(self, node_id: str, attempt: int, kind: ErrorKind, summary: str,
             running: Attempt | None = None) -> Snapshot | None:  # fmt: skip
        if running is None:  # not a runner's end (a kept failure pushed again, a failed start)
            return super().fail(node_id, attempt, kind, summary, running)
        w = self.worker
        w.pending.save_failure(node_id, attempt, kind, summary)
        if w.link.down:
            w.link.keep(node_id, attempt, running, "failure")
            return None
        try:
            snap = super().fail(node_id, attempt, kind, summary, running)
        except RemoteUnreachable:
            w.link.keep(node_id, attempt, running, "failure")
            raise
        except StaleSnapshotError:
            w.link.keep_busy(node_id, attempt, running, "failure")
            return None
        w.pending.drop(node_id)
        return snap


def push_kept(w: Worker, entry: journal.Entry) -> None:
    """Push one kept result or failure (its claim checked by journal.replay)."""
    if entry.failure is not None:
        kind, summary = entry.failure
        w.attempts.fail(entry.node_id, entry.attempt, kind, summary)
        w.pending.drop(entry.node_id)
        return
    assert entry.result is not None
    w.results.push(entry.node_id, entry.attempt, entry.result, entry.work)
