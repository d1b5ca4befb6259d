"""A claiming process for the combining tests: claim as `gitdag work` does until nothing is ready.

Usage: claimer.py CLONE NAME GO OUT. Waits for the file GO (so that every claimer starts at
once), then calls `gitdag.remote.claims.claim` back to back (the saturated case, where claims
combine) and writes the nodes it claimed, one per line, to OUT. With NAME `hand`, it instead
raises a hand (a request for one node, with a 3 s first lease) and kills itself with SIGKILL:
a worker that died after raising its hand.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from gitdag.core.combining import HandRequest
from gitdag.errors import StaleSnapshotError
from gitdag.remote import claims
from gitdag.store.remote import RemoteState
from gitdag.store.state import Committed


def main() -> None:
    clone, name, go, out = sys.argv[1:5]
    won: list[str] = []
    with RemoteState.open(clone, "origin") as remote:
        head = remote.fetch()
        if name == "hand":
            request = HandRequest("worker@dead:1.dead", "deadbeef", 3)
            assert remote.raise_hand("worker@dead:1.dead", request, head)
            Path(out).write_text("raised\n")
            os.kill(os.getpid(), signal.SIGKILL)
        while not Path(go).exists():
            time.sleep(0.005)
        while True:
            try:
                outcome = claims.claim(remote, worker=f"worker@{name}:1.tok", labels=(),
                                       lease_s=600)  # fmt: skip
            except StaleSnapshotError:
                continue
            if not isinstance(outcome, Committed):
                break
            won.append(outcome.transition.subject)
    Path(out).write_text("".join(f"{n}\n" for n in won))


if __name__ == "__main__":
    main()
