"""`gitdag work --remote NAME`: one worker that takes ready nodes from a shared remote.

The remote is the coordination point and compare-and-swap on its refs the only lock. A worker
loops: fetch -> stop runners whose attempt is no longer current -> push the results of finished
runners (with the node's branch, atomically) -> renew leases at half their length -> integrate
one merging node (its own first) by a CAS push of the target -> reopen nodes whose lease expired
-> claim ready nodes (scheduling.plan with this worker's labels; a claim is a push with a unique
nonce, read back) and run them as the local supervisor would (the same `attempts.running.Attempts`,
committing through `attempts.port.RemotePort`; leases are `leases.py`, results `results.py`).

Fencing: every result is judged against the node as it is on the remote head when pushed, so a
result whose attempt is no longer current is rejected and nothing of it lands. A worker that
cannot renew its lease stops its runner when the lease runs out; other workers reclaim a node
only `kill_grace_s + 2` seconds after its lease ran out, so the two never run at the same time
as long as the machines' clocks agree to within those 2 seconds (see docs/many-machines.md).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from types import FrameType

from gitdag.attempts.holds import EnvHold, SaidOnce
from gitdag.attempts.launching import Launcher, Settled
from gitdag.attempts.lock import SupervisorLock
from gitdag.attempts.port import NodeOp, RemotePort, on_node
from gitdag.attempts.preflight import missing_runner, preflight
from gitdag.attempts.progress import Progress
from gitdag.attempts.running import Attempt, Attempts
from gitdag.config import Settings
from gitdag.core import lifecycle, scheduling
from gitdag.core.model import Node, Status
from gitdag.core.stopping import LocalFacts, why_stopped
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import InputError, RemoteError, RemoteUnreachable, StaleSnapshotError
from gitdag.remote import claims, journal, leases, mirror
from gitdag.remote.idle import IdlePoll
from gitdag.remote.link import KeepingAttempts, Link
from gitdag.remote.merging import RemoteMerges
from gitdag.remote.results import Results
from gitdag.remote.startholds import StartHold
from gitdag.store import localholds
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import LostRef, RefPush
from gitdag.transport.retry import Interrupted

ON_REMOTE = "no longer running this attempt on the remote"
FETCH_FAILURES = 3  # consecutive failed fetches an idle worker tolerates before giving up


@dataclass(frozen=True)
class WorkOptions:
    """How `gitdag work` behaves.

    Attributes:
      max_nodes: stop after this many attempts were run (and this worker's merges landed).
      idle_exit_s: stop after this long with nothing to do.
      labels: this worker's labels; a node with labels only goes to a worker that has them all.
      workers: nodes run at the same time by this worker.
      poll_s: how often to fetch the remote while waiting.
      poll_max_s: while idle and the remote is quiet, the fetch interval doubles up to this
        (remote/idle.py; None: 15 x poll_s).
      spread: claim at random among the first few ready nodes, so workers collide less.
    """

    max_nodes: int | None = None
    idle_exit_s: float | None = None
    labels: tuple[str, ...] = ()
    workers: int = 1
    poll_s: float = 2.0
    poll_max_s: float | None = None
    spread: int = 4


def clone_token(local: os.PathLike[str] | str) -> str:
    """Return this clone's worker token (made once, kept in `.dagain/local/worker-token`).

    Claims carry it, so a worker restarted in the same clone recognises its predecessor's claims.
    """
    path = os.path.join(local, "worker-token")
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
        if token:
            return token
    except OSError:
        pass
    token = secrets.token_hex(4)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


class Worker:
    """Takes ready nodes from one remote until told to stop or nothing is left for it."""

    def __init__(self, remote: RemoteState, settings: Settings, options: WorkOptions,
                 progress: Progress | None = None) -> None:  # fmt: skip
        self.remote = remote
        self.store = remote.store
        self.settings = settings
        self.options = options
        self.progress = progress or Progress()
        self.local = self.store.paths.ensure_local()
        self.token = clone_token(self.local)
        host = socket.gethostname() or "localhost"
        self.worker_id = f"worker@{host}:{os.getpid()}.{self.token}"
        self.actor = self.worker_id
        self.launcher = Launcher(self.store, settings)
        self.port = RemotePort(remote, self.actor)
        self.link = Link(self)  # bounded calls; going on while the remote is down
        self.pending = journal.Journal(self.local)
        self.attempts: Attempts = KeepingAttempts(self)
        self.merges = RemoteMerges(self)
        self.results = Results(self)
        self.started = 0  # attempts claimed
        self._stop: str | None = None
        self._fetch_failures = 0
        # An environment cause of a failed start: no claims until it is gone (re-checked).
        self.starts = StartHold(self)
        self.said = SaidOnce(self.progress)

    # --- entry ------------------------------------------------------------------------------

    def run(self) -> int:
        with SupervisorLock(self.local, self.store.paths.git_dir):
            old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for sig in old:
                signal.signal(sig, self._on_signal)
            try:
                # We hold the clone's lock: a tracking-ref lock left behind is a dead worker's.
                self.remote.clear_stale_locks()
                self.remote.fetch()
                self.mirror()
                snap = self.remote.snapshot()
                preflight(self.launcher, self.settings, snap, self.store.clock())
                leases.recover_own(self)
                code = self._loop()
            except Interrupted:  # a signal cut a remote call short (remote/link.py)
                code = self._interrupted()
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
                self._shutdown()
        # A signal that came while the loop was returning was caught by our handler and would be
        # lost (`run --watch` would start watching again): it still means "stop".
        return 130 if self._stop is not None else code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = signal.Signals(signum).name
        if self.remote.retry.calls > 0:  # inside a remote call: do not wait for it to return
            raise Interrupted(self._stop)

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        idle_since = time.monotonic()
        last_fetch = time.monotonic()
        poll = IdlePoll(self.options.poll_s, self.options.poll_max_s)
        self.link.install()
        while True:
            if self._stop is not None:
                return self._interrupted()
            if self.link.down:
                if self.link.probe_due():
                    self._fetch()
                    last_fetch = time.monotonic()
            elif time.monotonic() - last_fetch >= poll.interval:
                before = self.store.head()
                self._fetch()
                last_fetch = time.monotonic()
                poll.fetched(changed=self.store.head() != before)
            self.attempts.honour(
                self.remote.snapshot(), "no longer running this attempt on the remote"
            )
            claimed = self._step()
            busy = bool(self.attempts.running) or self.merges.busy() or bool(self.link.kept)
            if busy or claimed:
                poll.busy()
            # A retry of held work is not work: it must not keep an --idle-exit worker alive.
            retrying = self.merges.gate is not None or (claimed and self.starts.gate is not None)
            if self.attempts.running or ((busy or claimed) and not retrying):
                idle_since = time.monotonic()
            holds = [g.hold for g in (self.starts.gate, self.merges.gate) if g is not None]
            if not busy and holds:
                # A cause only a person can remove: said once. Without --idle-exit the worker
                # stops; with it, it re-checks at a backoff until repaired or idle that long.
                idle = time.monotonic() - idle_since
                if self.options.idle_exit_s is None or idle >= self.options.idle_exit_s:
                    for hold in holds:
                        self.progress.event(f"stopped: waiting for a repair ({hold.kind.value}: "
                                            f"{hold.repair})")  # fmt: skip
                    return 1
            elif not busy:
                if self._max_reached():
                    self.progress.event(
                        f"ran {self.attempts.finished} node(s) (--max-nodes): stopping"
                    )
                    return 0
                code = self._nothing_left()
                if code is not None:
                    return code
                idle = time.monotonic() - idle_since
                if self.options.idle_exit_s is not None and idle >= self.options.idle_exit_s:
                    self.progress.event(f"idle for {idle:.0f} s (--idle-exit): stopping")
                    return 0
            self._wait()

    def _step(self) -> bool:
        """Collect, renew, merge, reclaim, claim; while the remote is down, only collect."""
        try:
            self.attempts.collect()
            if self.link.down:
                self.link.lapse()
                return False
            self.link.catch_up()
            leases.renew(self)
            self.merges.step()
            leases.reclaim(self)
            return self._claim()
        except RemoteUnreachable as exc:
            self.link.failed(exc)
            return False

    def _fetch(self) -> None:
        try:
            self.remote.fetch()
            self._fetch_failures = 0
        except RemoteUnreachable as exc:
            self.link.failed(exc)
            return
        except RemoteError as exc:
            self._fetch_failures += 1
            if not self.attempts.running and self._fetch_failures >= FETCH_FAILURES:
                raise
            self.progress.error(f"{exc} (will retry)")
            return
        self.link.answered()
        if not self.merges.running():
            self.mirror()

    def mirror(self) -> None:
        tip, target = self.remote.target_tip(), self.remote.target
        if tip is not None and target is not None:
            paths = self.store.paths
            mirror.mirror(paths.root, paths.git_dir, target, tip, self.remote.remote,
                          self.merges.known_heads(), local_dir=paths.local)  # fmt: skip

    def _wait(self) -> None:
        timeout = self.options.poll_s
        if self.merges.running():
            timeout = min(timeout, 0.02)
        self.attempts.wait(self.link.wait_s(timeout))

    def _max_reached(self) -> bool:
        return self.options.max_nodes is not None and self.started >= self.options.max_nodes

    def _nothing_left(self) -> int | None:
        """The exit code when nothing can progress (here or anywhere), else None."""
        snap = self.remote.snapshot()
        nodes, now = snap.nodes, self.store.clock()
        paused = snap.graph.control.paused
        if any(n.status in (Status.RUNNING, Status.MERGING) for n in nodes.values()):
            return None  # others are working: their results may unblock more
        if scheduling.plan(nodes, capacity=1, now=now, paused=paused, labels=self.options.labels):
            return None
        if not paused and scheduling.next_wakeup(nodes, now) is not None:
            return None
        facts = LocalFacts(labels=self.options.labels)
        stop = why_stopped(nodes, paused=paused, now=now, facts=facts)
        self.progress.event(stop.line)
        return stop.code

    # --- pushing one node's transition --------------------------------------------------------

    def push_node(self, node_id: str, op: NodeOp, *, refs: list[RefPush] | None = None,
                  read_back: bool = False,
                  max_tries: int = 40) -> Committed | Rejected | LostRef | None:  # fmt: skip
        """Push `op(node)` for one node, recomputed on the new remote head after a lost race."""
        outcome = self.port.push(on_node(self.store, node_id, op), refs=refs or (),
                                 read_back=read_back, max_tries=max_tries)  # fmt: skip
        if isinstance(outcome, Committed):
            self.announce(outcome.transition)
        return outcome

    # --- claiming ---------------------------------------------------------------------------

    def hold(self, who: str, hold: EnvHold, runner: str | None = None) -> None:
        """Stop claiming until the cause is gone (remote/startholds.py)."""
        self.starts.hold(who, hold, runner)

    def may_start(self) -> bool:
        """A slot is free and nothing holds our starts back (a claim may be run now)."""
        return (
            self.starts.may_claim()
            and not self._max_reached()
            and len(self.attempts) < self.options.workers
        )

    def run_claimed(self, snap: Snapshot, node_id: str) -> None:
        """Run a claim of ours already on the remote (one that landed while it did not answer)."""
        node = self.store.node(snap, node_id)
        assert node.claim is not None
        transition = Transition(
            verb="claim", subject=node_id, from_status="open", to_status="running",
            summary=f"attempt {node.claim.attempt} by {node.claim.worker} (landed while the "
                    "remote did not answer)",
            put=(node,), attempt=node.claim.attempt,
        )  # fmt: skip
        self._start(Committed(transition, snap.head or "", snap, 1))

    def _claim(self) -> bool:
        claimed = False
        while self.may_start():
            snap = self.remote.snapshot()
            in_flight = list(self.attempts.running)
            asks, runs = claims.candidates(
                snap, self.store.clock(), labels=self.options.labels, spread=self.options.spread,
                slots=self.options.workers - len(in_flight), in_flight=in_flight,
            )  # fmt: skip
            for node_id in asks:
                self.push_node(node_id, lambda n, s, now: lifecycle.checkpoint_open(n, now=now))
            if not runs:
                return claimed
            try:
                outcome = claims.claim(
                    self.remote, worker=self.worker_id, labels=self.options.labels,
                    lease_s=snap.graph.defaults.lease_s, spread=self.options.spread,
                    in_flight=in_flight,
                )  # fmt: skip
            except StaleSnapshotError as exc:
                self.progress.event(f"no claim this time: {exc}")
                return claimed
            if not isinstance(outcome, Committed):
                return claimed
            self._start(outcome)
            claimed = True
        return claimed

    def _start(self, outcome: Committed) -> None:
        node_id = outcome.transition.subject
        self.announce(outcome.transition)
        self.started += 1
        node = self.store.node(outcome.snapshot, node_id)
        assert node.claim is not None and node.claim.lease_until is not None
        running, _ = self.attempts.start(outcome.snapshot, node, lease_until=node.claim.lease_until)
        if running is not None:
            self.starts.started(running.prepared.spec.runner)

    # --- what the attempts ask of `work` (attempts.running.Host) ------------------------------

    def announce(self, transition: Transition) -> None:
        self.progress.transition(transition)

    def hold_start(self, node: Node, hold: EnvHold) -> None:
        self.hold(node.id, hold)  # not the node's doing: no claims until the cause is gone

    def runner_missing(self, attempt: Attempt) -> EnvHold | None:
        runner = attempt.prepared.spec.runner
        missing = missing_runner(self.launcher, runner)
        if missing is not None:
            self.hold(attempt.node_id, missing, runner=runner)
        return missing

    def stopped(self, attempt: Attempt) -> None:
        leases.lapsed(self, attempt)

    def result(self, attempt: Attempt, settled: Settled) -> None:
        assert settled.result is not None
        if settled.hold is not None:  # leftovers not committable (a full disk): keep it all
            self.hold(attempt.node_id, settled.hold)
            self.launcher.release(attempt.prepared, keep_branch=True, keep_worktree=True)
            return
        self.results.push(attempt.node_id, attempt.attempt, settled.result, settled.work, attempt)

    def entered(self, attempt: Attempt, status: Status | None) -> None:
        if status is Status.MERGING:
            self.merges.adopt(attempt.node_id)
        self.launcher.release(attempt.prepared, keep_branch=status is not Status.FAILED)

    # --- endings ----------------------------------------------------------------------------

    def _interrupted(self) -> int:
        self.progress.event(f"{self._stop}: stopping runners and giving their nodes back")
        try:
            with self.link.stopping():
                self.attempts.interrupt("worker interrupted")
        except Interrupted as exc:
            self.progress.error(f"{exc}: the nodes still running here are not given back (the "
                                "next gitdag work in this clone gives them back at once, else "
                                "their leases run out)")  # fmt: skip
        return 130

    def _shutdown(self) -> None:
        self.link.uninstall()
        localholds.write(self.local, [])
        self.attempts.shutdown(release=True)
        self.merges.close()
        self.progress.close()
        self.store.save_index()


def run_worker(remote: RemoteState, settings: Settings, options: WorkOptions,
               progress: Progress | None = None) -> int:  # fmt: skip
    """Run a worker on a remote; return the exit code (0 done or stopped as asked, 1 stuck)."""
    if options.workers < 1:
        raise InputError("--workers must be at least 1")
    return Worker(remote, settings, options, progress).run()
