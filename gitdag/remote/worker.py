"""`gitdag work --remote NAME`: one worker that takes ready nodes from a shared remote.

The remote is the coordination point and compare-and-swap on its refs the only lock. A worker
loops: fetch -> stop runners whose attempt is no longer current -> push the results of finished
runners (with the node's branch, atomically) -> renew leases at half their length -> integrate
one merging node (its own first) by a CAS push of the target -> reopen nodes whose lease expired
-> claim ready nodes (scheduling.plan with this worker's labels; a claim is a push with a unique
nonce, read back) and run them as the local supervisor would (the same Launcher).

Fencing: every result is judged against the node as it is on the remote head when pushed, so a
result whose attempt is no longer current is rejected and nothing of it lands. A worker that
cannot renew its lease stops its runner when the lease runs out; other workers reclaim a node
only `kill_grace_s + 2` seconds after its lease ran out, so the two never run at the same time
as long as the machines' clocks agree to within those 2 seconds (see docs/many-machines.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from gitdag.config import Settings
from gitdag.core import graph, lifecycle, proposals, scheduling
from gitdag.core.agent_loops import ITERATE_VERB
from gitdag.core.model import ErrorKind, Node, Status, Work
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.errors import ConfigError, InputError, RefRefused, RemoteError, StaleSnapshotError
from gitdag.remote import claims, mirror
from gitdag.remote.idle import IdlePoll
from gitdag.remote.merging import RemoteMerges
from gitdag.remote.pending import PendingResults
from gitdag.remote.startholds import StartHold
from gitdag.runner.launch import RunHandle, RunOutcome
from gitdag.runner.orphans import read_pid_info, stop_orphan
from gitdag.store import localholds
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.supervisor.holds import EnvHold, SaidOnce, classify_start_error
from gitdag.supervisor.launching import Launcher, Prepared
from gitdag.supervisor.lock import SupervisorLock
from gitdag.supervisor.progress import Progress
from gitdag.supervisor.starting import missing_runner, preflight
from gitdag.transport.outcomes import LostRef, RefPush

CLOCK_SKEW_S = 2.0  # how far apart the workers' clocks may be without two runs overlapping
FETCH_FAILURES = 3  # consecutive failed fetches an idle worker tolerates before giving up
LAPSED = "its lease ran out before it could be renewed"
Op = Callable[[Node, dt.datetime], "Transition | Rejected"]


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


@dataclass
class _Flight:
    node_id: str
    attempt: int
    handle: RunHandle
    prepared: Prepared
    lease_until: dt.datetime
    lease_s: int
    pidfd: int | None = None
    stopped: str | None = None  # why we stopped it


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
        self.merges = RemoteMerges(self)
        self.flights: dict[str, _Flight] = {}
        self.selector = selectors.DefaultSelector()
        self.started = 0  # attempts claimed
        self.finished = 0  # attempts whose outcome was pushed (or rejected)
        self.grace = dt.timedelta(seconds=float(settings.defaults.kill_grace_s) + CLOCK_SKEW_S)
        self._stop: str | None = None
        self._fetch_failures = 0
        # An environment cause of a failed start: no claims until it is gone (re-checked).
        self.starts = StartHold(self)
        self.said = SaidOnce(self.progress)
        self.pending = PendingResults(self.local)

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
                self._recover_own()
                return self._loop()
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
                self._shutdown()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = signal.Signals(signum).name

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        idle_since = time.monotonic()
        last_fetch = time.monotonic()
        poll = IdlePoll(self.options.poll_s, self.options.poll_max_s)
        while True:
            if self._stop is not None:
                return self._interrupted()
            if time.monotonic() - last_fetch >= poll.interval:
                before = self.store.head()
                self._fetch()
                last_fetch = time.monotonic()
                poll.fetched(changed=self.store.head() != before)
            self._honour()
            self._collect()
            self._renew()
            self.merges.step()
            self._reclaim()
            claimed = self._claim()
            busy = bool(self.flights) or self.merges.busy()
            if busy or claimed:
                poll.busy()
            # A retry of held work is not work: it must not keep an --idle-exit worker alive.
            retrying = self.merges.gate is not None or (claimed and self.starts.gate is not None)
            if self.flights or ((busy or claimed) and not retrying):
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
                    self.progress.event(f"ran {self.finished} node(s) (--max-nodes): stopping")
                    return 0
                code = self._nothing_left()
                if code is not None:
                    return code
                idle = time.monotonic() - idle_since
                if self.options.idle_exit_s is not None and idle >= self.options.idle_exit_s:
                    self.progress.event(f"idle for {idle:.0f} s (--idle-exit): stopping")
                    return 0
            self._wait(busy)

    def _fetch(self) -> None:
        try:
            self.remote.fetch()
            self._fetch_failures = 0
        except RemoteError as exc:
            self._fetch_failures += 1
            if not self.flights and self._fetch_failures >= FETCH_FAILURES:
                raise
            self.progress.error(f"{exc} (will retry)")
            return
        if not self.merges.running():
            self.mirror()

    def mirror(self) -> None:
        tip, target = self.remote.target_tip(), self.remote.target
        if tip is not None and target is not None:
            paths = self.store.paths
            mirror.mirror(paths.root, paths.git_dir, target, tip, self.remote.remote,
                          self.merges.known_heads(), local_dir=paths.local)  # fmt: skip

    def _wait(self, busy: bool) -> None:
        timeout = self.options.poll_s
        if self.merges.running():
            timeout = min(timeout, 0.02)
        elif any(f.pidfd is None for f in self.flights.values()):
            timeout = min(timeout, 0.05)
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        self.selector.select(timeout)

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
        code = scheduling.outcome_code(nodes)
        counts = graph.counts(nodes.values())
        summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        others = [] if paused else graph.ready(nodes, now)
        if code == 0:
            self.progress.event(f"all done ({summary})")
        elif others and not graph.blocked(nodes) and not counts["failed"]:
            names = ", ".join(others[:5])
            self.progress.event(f"nothing left for this worker ({summary}); {len(others)} "
                                f"ready node(s) need labels it lacks: {names}")  # fmt: skip
            return 0
        else:
            why = (
                "the graph is paused"
                if paused
                else ("some nodes failed, are blocked or wait for a human")
            )
            self.progress.event(f"stopped: nothing more can run ({summary}); {why}")
        return code

    # --- pushing one node's transition --------------------------------------------------------

    def push_node(self, node_id: str, op: Op, *, refs: list[RefPush] | None = None,
                  read_back: bool = False,
                  max_tries: int = 40) -> Committed | Rejected | LostRef | None:  # fmt: skip
        """Push `op(node)` for one node, recomputed on the new remote head after a lost race."""

        def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
            if node_id not in snap.nodes:
                return Rejected(f"{node_id} no longer exists")
            return op(self.store.node(snap, node_id), now)

        outcome = self.remote.push_transition(compute, actor=self.actor, refs=refs or (),
                                              read_back=read_back, max_tries=max_tries)  # fmt: skip
        if isinstance(outcome, Committed):
            self.announce(outcome.transition)
        return outcome

    def announce(self, transition: Transition) -> None:
        self.progress.transition(transition)

    # --- claiming ---------------------------------------------------------------------------

    def hold(self, who: str, hold: EnvHold, runner: str | None = None) -> None:
        """Stop claiming until the cause is gone (remote/startholds.py)."""
        self.starts.hold(who, hold, runner)

    def _claim(self) -> bool:
        claimed = False
        while (
            self.starts.may_claim()
            and not self._max_reached()
            and len(self.flights) < self.options.workers
        ):
            snap = self.remote.snapshot()
            asks, runs = claims.candidates(
                snap, self.store.clock(), labels=self.options.labels, spread=self.options.spread,
                slots=self.options.workers - len(self.flights), in_flight=list(self.flights),
            )  # fmt: skip
            for node_id in asks:
                self.push_node(node_id, lambda n, now: lifecycle.checkpoint_open(n, now=now))
            if not runs:
                return claimed
            try:
                outcome = claims.claim(
                    self.remote, worker=self.worker_id, labels=self.options.labels,
                    lease_s=snap.graph.defaults.lease_s, spread=self.options.spread,
                    in_flight=list(self.flights),
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
        snap = outcome.snapshot
        node = self.store.node(snap, node_id)
        assert node.claim is not None and node.claim.lease_until is not None
        attempt, lease_s = node.attempts, snap.graph.defaults.lease_s
        try:
            prepared = self.launcher.prepare(snap, node)
            handle = self.launcher.start(prepared)
        except ConfigError:
            self.push_node(node_id, _give_back(attempt, "configuration error"))
            raise
        except Exception as exc:  # the node's environment could not be set up
            hold = classify_start_error(exc, target=snap.graph.target)
            if hold is not None:  # not the node's doing: give the attempt back, stop claiming
                self.hold(node_id, hold)
                self.push_node(node_id, _give_back(attempt, hold.reason))
                return
            self._push_fail(node_id, attempt, ErrorKind.SPAWN_ERROR, f"could not start: {exc}")
            self.finished += 1
            return
        flight = _Flight(node_id, attempt, handle, prepared, node.claim.lease_until, lease_s)
        try:
            if handle.pid is None:
                raise ValueError("not started")
            flight.pidfd = os.pidfd_open(handle.pid)
            self.selector.register(flight.pidfd, selectors.EVENT_READ, node_id)
        except (OSError, AttributeError, ValueError):
            flight.pidfd = None  # polling still notices the exit
        self.flights[node_id] = flight
        self.starts.started(prepared.spec.runner)

    # --- watching runs ----------------------------------------------------------------------

    def _honour(self) -> None:
        """Stop runners whose node is no longer running their attempt (cancel, reclaim, reset)."""
        snap = self.remote.snapshot()
        for flight in self.flights.values():
            if flight.stopped:
                continue
            summary = snap.nodes.get(flight.node_id)
            still = summary is not None and summary.status is Status.RUNNING
            if still:
                claim = self.store.node(snap, flight.node_id).claim
                still = claim is not None and claim.attempt == flight.attempt
            if not still:
                self._stop_flight(flight, "no longer running this attempt on the remote")

    def _stop_flight(self, flight: _Flight, why: str) -> None:
        flight.stopped = why
        flight.handle.cancel()
        self.progress.event(f"stopping {flight.node_id} (attempt {flight.attempt}): {why}")

    def _renew(self) -> None:
        for flight in list(self.flights.values()):
            if flight.stopped:
                continue
            now = self.store.clock()
            if now < flight.lease_until - dt.timedelta(seconds=flight.lease_s / 2):
                continue
            try:
                outcome = self.push_node(flight.node_id, _renewal(flight.attempt, flight.lease_s))
            except (RemoteError, StaleSnapshotError) as exc:
                if self.store.clock() >= flight.lease_until:
                    self._stop_flight(flight, LAPSED)
                else:
                    self.progress.error(f"lease of {flight.node_id} not renewed yet: {exc}")
                continue
            if isinstance(outcome, Committed):
                claim = self.store.node(outcome.snapshot, flight.node_id).claim
                if claim is not None and claim.lease_until is not None:
                    flight.lease_until = claim.lease_until
            elif isinstance(outcome, Rejected):
                self._stop_flight(flight, str(outcome))

    def _collect(self) -> None:
        for node_id, flight in list(self.flights.items()):
            outcome = flight.handle.poll()
            if outcome is None:
                continue
            self._forget(flight)
            del self.flights[node_id]
            self.finished += 1
            self._apply(flight, outcome)

    def _forget(self, flight: _Flight) -> None:
        if flight.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(flight.pidfd)
            os.close(flight.pidfd)
            flight.pidfd = None

    def _apply(self, flight: _Flight, outcome: RunOutcome) -> None:
        node_id, attempt = flight.node_id, flight.attempt
        if flight.stopped or outcome.cancelled:
            self.launcher.release(flight.prepared, keep_branch=True)
            if flight.stopped == LAPSED:
                # Give the attempt back if the remote is reachable again and nobody took it.
                with contextlib.suppress(RemoteError, StaleSnapshotError):
                    self.push_node(node_id, _give_back(attempt, f"attempt {attempt}: {LAPSED}"))
            return
        settled = self.launcher.settle(flight.prepared, outcome)
        if settled.problem is not None:
            problem = settled.problem
            missing = None
            if problem.kind is ErrorKind.SPAWN_ERROR:
                missing = missing_runner(self.launcher, flight.prepared.spec.runner)
            if missing is not None:  # the agent never ran: give the attempt back
                self.hold(node_id, missing, runner=flight.prepared.spec.runner)
                self.launcher.release(flight.prepared, keep_branch=True)
                self.push_node(node_id, _give_back(attempt, missing.reason))
                return
            self._push_fail(node_id, attempt, problem.kind, problem.reason, flight)
            return
        assert settled.result is not None
        if settled.hold is not None:  # leftovers not committable (a full disk): keep it all
            self.hold(node_id, settled.hold)
            self.launcher.release(flight.prepared, keep_branch=True, keep_worktree=True)
            return
        self._push_result(flight, settled.result, settled.work)

    def _push_result(
        self,
        flight: _Flight | None,
        result: RunnerResult,
        work: Work | None,
        kept: tuple[str, int] | None = None,
    ) -> None:
        """Push a finished attempt's result (a flight's, or `kept`: (node, attempt) from disk)."""
        if flight is not None:
            node_id, attempt = flight.node_id, flight.attempt
        else:
            assert kept is not None
            node_id, attempt = kept

        def op(node: Node, now: dt.datetime) -> Transition | Rejected:
            snap = self.remote.snapshot()
            wanted = [s.id for s in result.next.setStatus]
            wanted += [a.id for a in result.next.addNodes if a.id in snap.nodes]
            full = self.store.nodes(snap, [i for i in dict.fromkeys(wanted) if i in snap.nodes])
            return proposals.judge(
                node, snap.nodes, full, snap.graph, result, attempt=attempt, now=now, work=work,
                pool=self.launcher.pool_rules(node),
            )  # fmt: skip

        # The node's branch lands with its result or not at all (one atomic push).
        refs = []
        if work is not None and work.head is not None:
            refs.append(RefPush(work.head, "refs/heads/" + work.branch))
        # Kept until it lands: a refused push is pushed again by the next worker of this clone,
        # without running the agent again (`_recover_own`).
        self.pending.save(node_id, attempt, result, work)
        try:
            outcome = self.push_node(node_id, op, refs=refs)
        except RefRefused as exc:
            if not any(exc.ref == r.dst for r in refs):
                if flight is not None:  # the state branch itself: this worker cannot go on
                    self.launcher.release(flight.prepared, keep_branch=True)
                raise
            # The server will not take this node's branch (a hook, a token without the right
            # to push some files): the node fails, once; the work stays here.
            self.pending.drop(node_id)
            self.progress.error(f"{node_id}: {exc}")
            summary = f"the remote refused branch {exc.ref.removeprefix('refs/heads/')}: "
            self._push_fail(node_id, attempt, ErrorKind.PUSH_REFUSED, summary + exc.reason, flight)
            return
        except RemoteError:
            if flight is not None:
                self.launcher.release(flight.prepared, keep_branch=True)
            raise
        self.pending.drop(node_id)
        if flight is None:  # a kept result: what landed is adopted as a flight's would be
            if isinstance(outcome, Committed):
                self.announce(outcome.transition)
                landed = outcome.snapshot.nodes.get(node_id)
                if landed is not None and landed.status is Status.MERGING:
                    self.merges.adopt(node_id)
            else:
                self.push_node(node_id, _give_back(attempt, "its kept result was not applied"))
        self._after(flight, outcome)

    def _push_fail(self, node_id: str, attempt: int, kind: ErrorKind, summary: str,
                   flight: _Flight | None = None) -> None:  # fmt: skip
        def op(node: Node, now: dt.datetime) -> Transition | Rejected:
            snap = self.remote.snapshot()
            return proposals.fail_attempt(
                node, snap.nodes, snap.graph, kind=kind, summary=summary, attempt=attempt, now=now,
                pool=self.launcher.pool_rules(node),
            )  # fmt: skip

        self._after(flight, self.push_node(node_id, op))

    def _after(self, flight: _Flight | None,
               outcome: Committed | Rejected | LostRef | None) -> None:  # fmt: skip
        if isinstance(outcome, Rejected):
            self.progress.event(f"result not applied: {outcome}")
        if flight is None:
            return
        if not isinstance(outcome, Committed):
            self.launcher.release(flight.prepared, keep_branch=True)
            return
        node = outcome.snapshot.nodes.get(flight.node_id)
        status = node.status if node is not None else None
        if status is Status.MERGING:
            self.merges.adopt(flight.node_id)
        self.launcher.release(flight.prepared, keep_branch=status is not Status.FAILED)
        if outcome.transition.verb == ITERATE_VERB:  # an agent loop: its next iteration, here
            self._start(outcome)

    # --- leases of others -------------------------------------------------------------------

    def _reclaim(self) -> None:
        """Reopen running nodes whose lease ran out (plus the grace), so anyone can claim them."""
        snap = self.remote.snapshot()
        now = self.store.clock()
        for node_id, summary in snap.nodes.items():
            if summary.status is not Status.RUNNING or node_id in self.flights:
                continue
            if summary.lease_until is None or summary.lease_until + self.grace >= now:
                continue

            def op(node: Node, t: dt.datetime) -> Transition | Rejected:
                claim = node.claim
                if node.status is not Status.RUNNING or claim is None or claim.lease_until is None:
                    return Rejected(f"{node.id} is no longer running")
                if claim.lease_until + self.grace >= t:
                    return Rejected(f"{node.id}'s lease was renewed")
                reason = (f"attempt {claim.attempt} by {claim.worker}: lease expired at "
                          f"{claim.lease_until.isoformat()}")  # fmt: skip
                return lifecycle.recover(node, reason=reason, now=t)

            self.push_node(node_id, op)

    def _recover_own(self) -> None:
        """Claims of an earlier worker in this clone (it crashed): stop its runners, reopen them."""
        snap = self.remote.snapshot()
        suffix = "." + self.token
        for node_id, summary in snap.nodes.items():
            if summary.status is not Status.RUNNING:
                continue
            claim = self.store.node(snap, node_id).claim
            if claim is None or not claim.worker.endswith(suffix) or claim.worker == self.worker_id:
                continue
            run_dir = self.local / "runs" / node_id / str(claim.attempt)
            info = read_pid_info(run_dir)
            grace = min(2.0, float(self.settings.defaults.kill_grace_s))
            stopped = info is not None and stop_orphan(info, grace_s=grace)
            kept = self.pending.load(node_id, claim.attempt)
            if kept is not None:  # its result was refused (a hook, a permission): push it again
                self.progress.event(
                    f"{node_id}: pushing the kept result of attempt {claim.attempt} again "
                    "(its agent does not run again)"
                )
                result, work = kept
                self._push_result(None, result, work, kept=(node_id, claim.attempt))
                continue
            why = f"attempt {claim.attempt}: its worker in this clone is gone"
            why += " (its runner was stopped)" if stopped else ""
            self.push_node(node_id, _give_back(claim.attempt, why))

    # --- endings ----------------------------------------------------------------------------

    def _interrupted(self) -> int:
        self.progress.event(f"{self._stop}: stopping runners and giving their nodes back")
        for flight in self.flights.values():
            flight.handle.cancel()
        for flight in list(self.flights.values()):
            flight.handle.wait()
            self._forget(flight)
            del self.flights[flight.node_id]
            self.launcher.release(flight.prepared, keep_branch=True)
            try:
                self.push_node(flight.node_id, _give_back(flight.attempt, "worker interrupted"))
            except (RemoteError, StaleSnapshotError) as exc:
                self.progress.error(
                    f"{flight.node_id}: not given back ({exc}); its lease will run out"
                )
        return 130

    def _shutdown(self) -> None:
        localholds.write(self.local, [])
        for flight in list(self.flights.values()):
            flight.handle.cancel()
            flight.handle.wait()
            self._forget(flight)
            self.launcher.release(flight.prepared, keep_branch=True)
        self.merges.close()
        self.selector.close()
        self.progress.close()
        self.store.save_index()


def _renewal(attempt: int, lease_s: int) -> Op:
    def op(node: Node, now: dt.datetime) -> Transition | Rejected:
        return lifecycle.renew_lease(node, attempt=attempt, now=now, lease_s=lease_s)

    return op


def _give_back(attempt: int, reason: str) -> Op:
    def op(node: Node, now: dt.datetime) -> Transition | Rejected:
        if node.status is not Status.RUNNING or node.claim is None or node.claim.attempt != attempt:
            return Rejected(f"{node.id} moved on from attempt {attempt}")
        return lifecycle.recover(node, reason=reason, now=now)

    return op


def run_worker(remote: RemoteState, settings: Settings, options: WorkOptions,
               progress: Progress | None = None) -> int:  # fmt: skip
    """Run a worker on a remote; return the exit code (0 done or stopped as asked, 1 stuck)."""
    if options.workers < 1:
        raise InputError("--workers must be at least 1")
    return Worker(remote, settings, options, progress).run()
