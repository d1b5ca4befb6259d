"""Landing a merge: the code and its record reach git together, or neither does.

The merge queue's git work runs on a background thread, but every state commit is the loop
thread's (it owns the store). So when a merge has passed its check, the merge thread hands the
landing to the loop thread through a `Desk` and waits: the loop thread computes the node's
`merge` transition on the current state head and commits it in ONE ref transaction with the
target's advance (`StateStore.transact_along`). If the state head moved meanwhile (a cancel, a
reset, another shell's commit), the transition is recomputed on the new head; a node that is no
longer `merging` this attempt is refused, and then the target is not touched either. So a node
cancelled while it merges never reaches the target: cancel wins.

The desk also carries the stop signal of the merge check: the loop thread sets it when the node
is no longer merging this attempt (or the supervisor stops), and the check is killed at once.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag import crash
from gitdag.core import lifecycle
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, Moved
from gitdag.store.write import RefMove
from gitdag.workspace.advance import Landing

if TYPE_CHECKING:
    from gitdag.supervisor.loop import Supervisor

_WAIT_S = 0.1


@dataclass
class _Request:
    ref: str
    old: str
    new: str
    cwd: Path
    answer: Future[Landing]
    records: Mapping[str, str]  # a batch's nodes -> the commit that integrated each


# (the move, where git runs, a batch's records) -> how the landing went (on the loop thread)
Lander = Callable[[RefMove, Path, Mapping[str, str]], Landing]


class Desk:
    """Where the merge thread asks the loop thread to land a merge, and learns to stop."""

    def __init__(self) -> None:
        self.stop = threading.Event()  # the node is no longer merging this attempt: give up
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._closed = threading.Event()

    def cancelled(self) -> bool:
        """Polled by the merge thread (the check, and right before landing)."""
        return self.stop.is_set()

    def land(self, ref: str, old: str, new: str, cwd: Path) -> Landing:
        """Called on the merge thread: wait for the loop thread to land (or refuse) the merge."""
        return self.land_records({}, ref, old, new, cwd)

    def land_records(
        self, records: Mapping[str, str], ref: str, old: str, new: str, cwd: Path
    ) -> Landing:
        """`land` for a chain (a batch): `records` are its nodes and the commit of each."""
        if self._closed.is_set() or self.stop.is_set():
            return Landing("abandoned", "cancelled")
        request = _Request(ref, old, new, Path(cwd), Future(), dict(records))
        self._requests.put(request)
        while True:
            try:
                return request.answer.result(timeout=_WAIT_S)
            except FutureTimeout:
                # Still pending when the supervisor stopped: nobody will serve it.
                if self._closed.is_set() and request.answer.cancel():
                    return Landing("abandoned", "the supervisor is stopping")

    def serve(self, sup: Supervisor, node_id: str, attempt: int) -> None:
        """Called on the loop thread: answer every waiting request."""
        self.answer(lambda move, cwd, _: _land(sup, node_id, attempt, move, cwd))

    def answer(self, lander: Lander) -> None:
        """Called on the loop thread: land (or refuse) every waiting request with `lander`."""
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if not request.answer.set_running_or_notify_cancel():
                continue
            try:
                move = RefMove(request.ref, request.old, request.new)
                request.answer.set_result(lander(move, request.cwd, request.records))
            except BaseException as exc:
                request.answer.set_exception(exc)
                raise

    def close(self) -> None:
        """The supervisor stops: stop the check, refuse what is asked from now on."""
        self._closed.set()
        self.stop.set()


def still_merging(snap: Snapshot, node_id: str, attempt: int) -> bool:
    """Tell whether the node is merging this very attempt (else its merge must not land)."""
    summary = snap.nodes.get(node_id)
    return summary is not None and summary.status is Status.MERGING and summary.attempts == attempt


def _land(sup: Supervisor, node_id: str, attempt: int, move: RefMove, cwd: Path) -> Landing:
    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        if not still_merging(snap, node_id, attempt):
            summary = snap.nodes.get(node_id)
            now_is = summary.status.value if summary is not None else "gone"
            return Rejected(f"{node_id} is {now_is}, no longer merging attempt {attempt}")
        return lifecycle.merged(sup.store.node(snap, node_id), merged_commit=move.new, now=now)

    crash.crash_point("supervisor.before_merge_commit")
    outcome = sup.store.transact_along(compute, actor=sup.actor, move=move, cwd=cwd)
    if isinstance(outcome, Committed):
        sup.announce(outcome.transition)
        return Landing("landed")
    if isinstance(outcome, Moved):
        return Landing("moved")
    return Landing("abandoned", str(outcome) if outcome is not None else "nothing to record")
