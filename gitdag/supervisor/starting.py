"""Starts of `gitdag run` that wait on the environment: a runner's missing executable, no target.

(`preflight`, before the first claim, is `attempts/preflight.py`.) While running, `StartGates`
keeps ready nodes whose start cannot succeed from being claimed (their attempt would be spent on
nothing), probes each cause cheaply and at a bounded pace, and lets them start once it is gone.
No attempt is spent waiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gitdag.attempts.holds import AGAIN, EnvHold, Gate, runner_problem
from gitdag.attempts.preflight import NO_RUNNER, missing_runner
from gitdag.core import scheduling
from gitdag.core.model import HoldKind, Kind, Node, NodeSummary
from gitdag.errors import ConfigError
from gitdag.store import localholds
from gitdag.workspace.gitcli import read_ref

if TYPE_CHECKING:
    from gitdag.attempts.launching import Prepared
    from gitdag.store.snapshot import Snapshot
    from gitdag.supervisor.loop import Supervisor


class StartGates:
    """Ready nodes held back from a claim by an environment cause, keyed by that cause."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.gates: dict[str, Gate] = {}  # "runner:<name>", "code" (worktrees), "scratch"
        self.held: dict[str, str] = {}  # ready node -> the gate key it waits on
        self._tries: dict[str, int] = {}  # a cause that comes back waits longer each time
        self._since: dict[str, str] = {}  # gate key -> when it first held (for `gitdag status`)
        self._published: object = None  # what holds.json says now (rewritten only on change)

    # --- what may start ---------------------------------------------------------------------

    def startable(self, snap: Snapshot) -> Mapping[str, NodeSummary]:
        """The graph as the scheduler should see it: held ready nodes left out."""
        self._probe(snap)
        self.held = {}
        if not self.gates:
            self.publish()
            return snap.nodes
        now = self.sup.store.clock()
        for nid in snap.index.iter_ready(now, paused=snap.graph.control.paused):
            key = self._key(snap, nid)
            if key is not None:
                self.held[nid] = key
        self.publish()
        if not self.held:
            return snap.nodes
        return {k: v for k, v in snap.nodes.items() if k not in self.held}

    def publish(self, *, stopping: bool = False) -> None:
        """Keep `.dagain/local/holds.json` true for `gitdag status` (written only on change)."""
        holds = []
        for key, gate in [] if stopping else sorted(self.gates.items()):
            ids = sorted(nid for nid, k in self.held.items() if k == key)
            since = self._since.setdefault(key, self.sup.store.clock().isoformat())
            holds.append({"kind": gate.hold.kind.value, "reason": gate.hold.reason,
                          "repair": gate.hold.repair, "since": since,
                          "nodes": ids[: localholds.SHOWN], "count": len(ids)})  # fmt: skip
        for key in set(self._since) - set(self.gates):
            del self._since[key]
        if holds != self._published:
            self._published = holds
            localholds.write(self.sup.store.paths.local, holds)

    def can_progress(self, snap: Snapshot, now: dt.datetime, *, paused: bool) -> bool:
        """`scheduling.can_progress`, not counting nodes that wait on a repair."""
        if paused:
            return False
        if any(nid not in self.held for nid in snap.index.iter_ready(now)):
            return True
        return scheduling.next_wakeup(snap.nodes, now, index=snap.index) is not None

    def held_reasons(self, snap: Snapshot) -> list[str]:
        """One phrase per cause for `run`'s last line."""
        out = []
        for key, gate in self.gates.items():
            count = sum(1 for k in self.held.values() if k == key)
            if count:
                hold = gate.hold
                out.append(f"{count} node(s) wait for a repair ({hold.kind.value}: "
                           f"{hold.repair})")  # fmt: skip
        return out

    # --- causes -----------------------------------------------------------------------------

    def hold_start(self, node: Node, hold: EnvHold) -> None:
        """A claimed node could not start for an environment cause: hold its kind of start."""
        key = "code" if node.changes_code() else "scratch"
        if hold.kind is HoldKind.RUNNER_MISSING:
            key = "runner:" + self.sup.launcher.runner_for(node)[0]
        gate = self.gates.get(key)
        if gate is None or gate.hold.kind is not hold.kind:
            gate = self.gates[key] = Gate(hold, max_s=60.0, tries=self._tries.get(key, 0))
        gate.failed_again()
        self._tries[key] = gate.tries
        self.sup.said.say(node.id, hold)

    def runner_missing(self, prepared: Prepared) -> EnvHold | None:
        """The hold of a spawn error whose runner's executable does not resolve, else None."""
        name = prepared.spec.runner
        hold = missing_runner(self.sup.launcher, name)
        if hold is None:
            return None  # it resolves: the exit 127 was the agent's own
        gate = self.gates["runner:" + name] = Gate(hold, max_s=2.0)
        gate.failed_again()
        self.sup.said.say(prepared.node_id, hold)
        return hold

    def _key(self, snap: Snapshot, node_id: str) -> str | None:
        summary = snap.nodes[node_id]
        if summary.kind is Kind.CHECKPOINT:
            return None
        node = self.sup.store.node(snap, node_id)
        if node.changes_code() and "code" in self.gates:
            return "code"
        if not node.changes_code() and "scratch" in self.gates:
            return "scratch"
        if summary.kind in NO_RUNNER:
            return None
        try:
            name = self.sup.launcher.runner_for(node)[0]
        except ConfigError:
            return None
        return "runner:" + name if "runner:" + name in self.gates else None

    def _probe(self, snap: Snapshot) -> None:
        """Look at each cause again when due: a file read or a PATH lookup, never the agent."""
        sup = self.sup
        target = snap.graph.target
        missing = read_ref(sup.store.paths.git_dir, "refs/heads/" + target) is None
        code = self.gates.get("code")
        if missing and (code is None or code.hold.kind is not HoldKind.TARGET_MISSING):
            hold = EnvHold(
                HoldKind.TARGET_MISSING,
                f"the target branch {target} does not exist",
                f"git branch {target} <commit> (recreate it at a commit of yours), " + AGAIN,
            )
            self.gates["code"] = Gate(hold, max_s=2.0)
            sup.said.say("code nodes", hold)
        for key, gate in list(self.gates.items()):
            if not gate.due():
                continue
            if gate.hold.kind is HoldKind.TARGET_MISSING:
                gone = not missing
            elif key.startswith("runner:"):
                config = sup.settings.runners.get(key.removeprefix("runner:"))
                gone = config is None or runner_problem(config, sup.launcher.root) is None
            else:
                gone = True  # only trying again tells (a full disk): the next claim does
            if gone:
                del self.gates[key]
                sup.progress.event(f"repaired: {gate.hold.kind.value}; starting again")
                sup.said.forget(gate.hold)
            else:
                gate.failed_again()
