"""Pushing a finished attempt's result to the remote, with the node's branch, atomically.

The node's branch lands with its result or not at all (one atomic push). Until it lands the
result is kept in `.dagain/local/pending/`: while the remote does not answer the worker goes on
and pushes it when it does (remote/link.py); a refused push (a hook, a permission) is pushed again
by the next worker of this clone without running the agent again (`leases.recover_own`). A
refusal of the node's branch itself fails the node, once; of the state branch, stops the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitdag.attempts.port import give_back, on_node
from gitdag.attempts.running import Attempt
from gitdag.core.model import ErrorKind, Status, Work
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected
from gitdag.errors import RefRefused, RemoteError, RemoteUnreachable, StaleSnapshotError
from gitdag.store.state import Committed
from gitdag.transport.outcomes import RefPush
from gitdag.transport.retry import Interrupted

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker


class Results:
    """Pushes the results of one worker's attempts (and of its clone's kept ones)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def push(self, node_id: str, attempt: int, result: RunnerResult, work: Work | None,
             running: Attempt | None = None) -> None:  # fmt: skip
        """Push a finished attempt's result (`running`'s, or one kept on disk when None)."""
        w = self.worker
        judged = w.attempts.judged(node_id, attempt, result, work)
        refs = []
        if work is not None and work.head is not None:
            refs.append(RefPush(work.head, "refs/heads/" + work.branch))
        w.pending.save(node_id, attempt, result, work)
        if w.link.down:  # not now: pushed when the remote answers again (remote/link.py)
            w.link.keep(node_id, attempt, running, "result")
            return
        try:
            with w.remote.retry.patient():  # the node's work may be big: the floor, not the slice
                outcome = w.port.transact(on_node(w.store, node_id, judged), refs=refs)
        except RefRefused as exc:
            if not any(exc.ref == r.dst for r in refs):
                if running is not None:  # the state branch itself: this worker cannot go on
                    w.launcher.release(running.prepared, keep_branch=True)
                raise
            # The server will not take this node's branch (a hook, a token without the right
            # to push some files): the node fails, once; the work stays here.
            w.pending.drop(node_id)
            w.progress.error(f"{node_id}: {exc}")
            summary = f"the remote refused branch {exc.ref.removeprefix('refs/heads/')}: "
            w.attempts.fail(node_id, attempt, ErrorKind.PUSH_REFUSED, summary + exc.reason,
                            running)  # fmt: skip
            return
        except RemoteUnreachable:
            w.link.keep(node_id, attempt, running, "result")
            raise
        except StaleSnapshotError:
            # Lost the race every time (many writers at once): the result is safe in the
            # journal and pushed again on the next turn, while the lease is still ours.
            w.link.keep_busy(node_id, attempt, running, "result")
            return
        except (RemoteError, Interrupted):
            if running is not None:
                w.launcher.release(running.prepared, keep_branch=True)
            raise
        w.pending.drop(node_id)
        if running is not None:
            w.attempts.after(running, outcome)
            return
        # A kept result: what landed is adopted as a running attempt's would be.
        if isinstance(outcome, Committed):
            w.announce(outcome.transition)
            landed = outcome.snapshot.nodes.get(node_id)
            if landed is not None and landed.status is Status.MERGING:
                w.merges.adopt(node_id)
            return
        w.push_node(node_id, give_back(attempt, "its kept result was not applied"))
        if isinstance(outcome, Rejected):
            w.progress.event(f"result not applied: {outcome}")
