"""Landing a merge on the remote: one atomic push, and what each of its outcomes means.

The single-node merge queue (merging.py) and transaction groups (group_merges.py) land the same
way: the target moved from the tip the merge was computed on (lease on it), the `merge` record on
`dagain/state` (lease on its head), and the merged work branches deleted (lease on their heads),
all in one push. How its outcomes are judged is the same too, and lives here:

- landed: `Committed`;
- a work branch moved since (its lease lost): pushed again without deleting it;
- a lost race past the bound (`StaleSnapshotError`) or the target moved (`LostRef`): the local
  target is rolled back and the merge is tried again on the next turn;
- a ref other than the state branch refused (a hook, branch protection): rolled back, and the
  caller decides (a hold, a wait);
- the state branch itself refused, or any other remote error: rolled back, and raised (the
  worker cannot record anything);
- `Rejected` or nothing to do (the node moved on meanwhile): rolled back, the caller decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gitdag.core.transitions import Rejected
from gitdag.errors import RefRefused, RemoteError, StaleSnapshotError
from gitdag.store.layout import STATE_REF
from gitdag.store.state import Committed
from gitdag.transport.outcomes import LostRef, RefPush

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker

Push = Callable[[Sequence[RefPush]], "Committed | Rejected | LostRef | None"]


@dataclass(frozen=True)
class Landing:
    """What came of a landing push; unless `landed`, the local target was rolled back.

    Attributes:
      kind: "landed", "again" (try on the next turn: said already), "refused" (a ref other
        than the state branch), or "moved_on" (Rejected, or nothing to do).
      committed: the landed transition ("landed").
      refused: the refusal ("refused").
      outcome: the Rejected, or None ("moved_on").
    """

    kind: Literal["landed", "again", "refused", "moved_on"]
    committed: Committed | None = None
    refused: RefRefused | None = None
    outcome: Rejected | None = None


def land(push: Push, refs: Sequence[RefPush], tidy: Sequence[RefPush], *, who: str,
         rollback: Callable[[], None], worker: Worker) -> Landing:  # fmt: skip
    """Push `refs` with the work branches' deletions `tidy`, and judge the outcome (module doc).

    Args:
      push: pushes the merge's transition with the refs given (max tries and actor its own).
      refs: the target's move and the archive branches.
      tidy: the deletions of the merged work branches (dropped if one of them moved).
      who: the node id, or "group NAME", for the lines said.
      rollback: puts the local target back where the merge started.
      worker: says the lines, fetches after the target moved.

    Raises:
      RefRefused: the state branch itself was refused.
      RemoteError: unreachable, or refused otherwise.
    """
    try:
        # The target's move runs the server's hooks on the merged code: the floor, not a
        # worker loop's slice, for a slow but alive server (remote/link.py).
        with worker.remote.retry.patient():
            outcome = push([*refs, *tidy])
            if isinstance(outcome, LostRef) and outcome.ref in {t.dst for t in tidy}:
                outcome = push(refs)  # a work branch moved since: it stays, the merge lands
    except StaleSnapshotError as exc:
        rollback()
        worker.progress.event(f"{who}: merge not recorded yet ({exc}); trying again")
        return Landing("again")
    except RefRefused as exc:
        rollback()
        if exc.ref == STATE_REF.decode():
            raise  # the state branch itself: nothing can be recorded, this worker stops
        return Landing("refused", refused=exc)
    except RemoteError:
        rollback()
        raise
    if isinstance(outcome, Committed):
        return Landing("landed", committed=outcome)
    rollback()
    if isinstance(outcome, LostRef):
        worker.progress.event(f"{who}: the target moved on the remote; merging again")
        worker.remote.fetch()
        return Landing("again")
    return Landing("moved_on", outcome=outcome)
