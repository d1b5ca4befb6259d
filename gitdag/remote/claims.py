"""Claiming a node on a shared remote: choose among the ready ones, push the claim, read it back.

Every worker sees the same ready list in the same order, so if all took the first they would
all collide on it: each takes one at random among the first `spread` candidates instead. A claim
is a `claim` transition with a unique `Gitdag-Nonce` trailer pushed with compare-and-swap and
read back; on a lost race it is recomputed, and the node chosen again, on the new head.
Claims combine (remote/combined.py, core/combining.py): a worker that sees others claiming raises
a hand instead, and whoever pushes next claims a node for it in the same commit.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Collection

from gitdag.core import lifecycle, scheduling
from gitdag.core.transitions import Rejected, Transition
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from gitdag.transport.outcomes import LostRef

CLAIM_TRIES = 20  # lost races before a claim gives up for now (each one chooses afresh)
HAND_LEASE_S = 30  # the first lease of a claim made for our raised hand (remote/combined.py)


def first_lease(remote: RemoteState, hand_lease_s: int) -> int:
    """The first lease to ask for a claim made for our hand: at least twice our retry bound.

    Our first renewal extends it; a renewal may wait for the remote up to `remote.retry_for_s`,
    and a lease must outlast that (as with any lease: keep the retry bound under half of it).
    """
    return max(hand_lease_s, int(2 * remote.retry.retry_for_s + 0.999))


def candidates(
    snap: Snapshot,
    now: dt.datetime,
    *,
    labels: Collection[str],
    slots: int,
    spread: int,
    in_flight: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """Return (checkpoint nodes to open, nodes this worker may claim), in claim order."""
    dispatches = scheduling.plan(
        snap.nodes, capacity=slots + spread - 1, now=now, paused=snap.graph.control.paused,
        in_flight=list(in_flight), labels=labels, index=snap.index,
    )  # fmt: skip
    asks = [d.node_id for d in dispatches if d.action == "checkpoint"]
    runs = [d.node_id for d in dispatches if d.action == "run"]
    return asks, runs


def pick(runs: list[str], spread: int, rng: random.Random | None = None) -> str:
    """Take one of the first `spread` candidates at random (workers collide less)."""
    return (rng or random).choice(runs[: max(1, spread)])


def claim(remote: RemoteState, *, worker: str, labels: Collection[str], lease_s: int,
          spread: int = 4, in_flight: Collection[str] = (), actor: str | None = None,
          max_tries: int = CLAIM_TRIES, rng: random.Random | None = None,
          node_id: str | None = None, combine: bool = True,
          hand_lease_s: int = HAND_LEASE_S) -> Committed | Rejected | LostRef | None:  # fmt: skip
    """Claim one ready node for `worker`; Committed once the remote holds the claim (read back).

    The node is chosen on each head the claim is computed on (among the first `spread`
    candidates), so losing a race to a claim of another node costs nothing but the round.

    Args:
      remote: the remote's state.
      worker: the claim's `worker` (and, without `actor`, the `Gitdag-Actor`).
      labels: this worker's labels (a labelled node needs all of its labels here).
      lease_s: the lease length.
      spread: how many of the first candidates to choose among at random.
      in_flight: nodes this worker runs already (their ownership globs are held).
      actor: the `Gitdag-Actor` trailer, if not the worker.
      max_tries: lost races before giving up (StaleSnapshotError).
      rng: the chooser (tests pass a seeded one).
      node_id: claim this node only (None: whichever is ready; never combined).
      combine: take part in combined claims (remote/combined.py): push our claim together with
        claims for the raised hands, or raise ours and be served by another's push.
      hand_lease_s: the first lease of a claim another worker makes for our raised hand (we
        renew it to `lease_s` when the node starts; if we died, it lapses this soon).

    Returns:
      Committed (its transition's subject is the node), or None when nothing (or not
      `node_id`) is ready for this worker (LostRef is not produced by a claim in practice).
    """
    if node_id is None and combine:
        from gitdag.remote.combined import claim_combined  # (it uses candidates and pick)

        return claim_combined(remote, worker=worker, labels=labels, lease_s=lease_s,
                              spread=spread, in_flight=in_flight, actor=actor or worker,
                              max_tries=max_tries, rng=rng,
                              hand_lease_s=first_lease(remote, hand_lease_s))  # fmt: skip
    store = remote.store
    chooser = rng or random.Random()

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected | None:
        _, runs = candidates(snap, now, labels=labels, slots=1, spread=spread,
                             in_flight=in_flight)  # fmt: skip
        if node_id is not None:
            runs = [n for n in runs if n == node_id]
        if not runs:
            return None
        node = store.node(snap, pick(runs, spread, chooser))
        return lifecycle.claim(node, worker=worker, now=now, lease_s=lease_s,
                               nonce=uuid.uuid4().hex)  # fmt: skip

    return remote.push_transition(compute, actor=actor or worker, read_back=True,
                                  max_tries=max_tries, polite=True)  # fmt: skip
