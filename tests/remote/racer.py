"""A claiming process for the race test: claim the one ready node of each round, as workers do.

Usage: racer.py CLONE NAME BARRIER_DIR ROUNDS OUT. Round r's node is `r<r>`; each depends on the
previous one, so it is the only ready node. Both racers wait at a file barrier, then claim at
once; the winner completes the node (which readies the next one). Each racer writes one line per
round to OUT: `<round> <name> won|lost`.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from pathlib import Path

from gitdag.core import graph, judging
from gitdag.core.contention import Contention
from gitdag.core.results import RunnerResult
from gitdag.core.transitions import Rejected, Transition
from gitdag.remote import claims
from gitdag.store.remote import RemoteState
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed


def main() -> None:
    clone, name, barrier, rounds, out = sys.argv[1:6]
    gate = Path(barrier)
    lines = []
    with RemoteState.open(clone, "origin") as remote:
        for r in range(int(rounds)):
            node_id = f"r{r:02d}"
            deadline = time.monotonic() + 30
            while True:  # until this round's node is ready (the last winner completed the last)
                snap = remote.snapshot()
                summary = snap.nodes[node_id]
                if graph.is_ready(summary, snap.nodes, remote.store.clock()):
                    break
                remote.fetch()
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: {node_id} never became ready")
                time.sleep(0.01)
            (gate / f"{r}-{name}").touch()
            deadline = time.monotonic() + 30
            while len(list(gate.glob(f"{r}-*"))) < 2:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: the other racer never reached round {r}")
                time.sleep(0.002)
            # A fresh backoff window each round: both push at once, a real race (a worker that
            # lost before would otherwise wait a little, and the race would be over first).
            remote.contention = Contention(rng=random.Random())
            outcome = claims.claim(
                remote, worker=f"worker@{name}", labels=(), lease_s=600, node_id=node_id
            )
            won = isinstance(outcome, Committed) and outcome.transition.subject == node_id
            lines.append(f"{r} {name} {'won' if won else 'lost'}")
            if won:
                assert isinstance(outcome, Committed)
                attempt = outcome.transition.attempt or 0

                def complete(s: Snapshot, now: dt.datetime, nid: str = node_id,
                             a: int = attempt) -> Transition | Rejected:  # fmt: skip
                    node = remote.store.node(s, nid)
                    result = RunnerResult(status="success", summary="raced")
                    return judging.judge(node, s.nodes, {}, s.graph, result, attempt=a, now=now)

                done = remote.push_transition(complete, actor=f"worker@{name}")
                assert isinstance(done, Committed), done
    Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
