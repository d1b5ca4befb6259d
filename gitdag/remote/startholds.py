"""A worker's held starts: one environment cause that keeps `gitdag work` from claiming.

A start that failed for the environment (a runner's executable missing, the target branch gone,
a full disk) gives its attempt back; claiming again at once would fail the same way. So the
worker stops claiming until the cause is gone: a cheap probe when one exists (a PATH lookup, a
ref read), else one claim is tried again, at a backoff from 1 s doubling to 60 s. Each cause is
said once; `gitdag status` in the clone shows it (`.dagain/local/holds.json`) while it lasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitdag.attempts.holds import EnvHold, Gate
from gitdag.attempts.preflight import missing_runner
from gitdag.core.model import HoldKind
from gitdag.store import localholds
from gitdag.workspace.gitcli import read_ref

if TYPE_CHECKING:
    from gitdag.remote.worker import Worker


class StartHold:
    """The cause the worker's starts wait on, if any (one at a time: it stops every claim)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.gate: Gate | None = None
        self.runner: str | None = None  # the runner whose executable is missing, if that

    def hold(self, who: str, hold: EnvHold, runner: str | None = None) -> None:
        """Stop claiming until the cause is gone (said once, re-checked at a backoff)."""
        w = self.worker
        w.said.say(who, hold)
        gate = self.gate
        if gate is None or gate.hold.kind is not hold.kind:
            gate = self.gate = Gate(hold, max_s=60.0)
            self.runner = runner
            localholds.write(w.local, [{
                "kind": hold.kind.value, "reason": hold.reason, "repair": hold.repair,
                "since": w.store.clock().isoformat(), "nodes": [], "count": None,
            }])  # fmt: skip
        gate.failed_again()

    def may_claim(self) -> bool:
        """No cause, or it is due and gone (or only a claim can tell)."""
        gate = self.gate
        if gate is None:
            return True
        if not gate.due():
            return False
        w = self.worker
        gone: bool | None = None
        if gate.hold.kind is HoldKind.RUNNER_MISSING and self.runner is not None:
            gone = missing_runner(w.launcher, self.runner) is None
        elif gate.hold.kind is HoldKind.TARGET_MISSING and w.remote.target is not None:
            gone = read_ref(w.store.paths.git_dir, "refs/heads/" + w.remote.target) is not None
        if gone is False:
            gate.failed_again()
            return False
        if gone:
            self.repaired()
        return True  # a claim tries again; a failed start holds again, at a longer backoff

    def started(self, runner: str) -> None:
        """A start went through: the cause is gone unless it was another runner's executable."""
        if self.runner in (None, runner):
            self.repaired()

    def repaired(self) -> None:
        """The cause is gone (said once); claims go on."""
        if self.gate is not None:
            w = self.worker
            w.progress.event(f"repaired: {self.gate.hold.kind.value}; claiming again")
            w.said.forget(self.gate.hold)
            self.gate = None
            localholds.write(w.local, [])
