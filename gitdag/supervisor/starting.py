"""Starts that wait on the environment: a runner's missing executable, a missing target branch.

`preflight` refuses a run before its first claim when a runner a ready node may need does not
resolve (exit 2, nothing claimed). While running, `StartGates` keeps ready nodes whose start
cannot succeed from being claimed (their attempt would be spent on nothing), probes each cause
cheaply and at a bounded pace, and lets them start once it is gone. No attempt is spent waiting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag.config import Settings
from gitdag.core import graph, scheduling
from gitdag.core.model import HoldKind, Kind, Node, NodeSummary
from gitdag.errors import ConfigError
from gitdag.store import localholds
from gitdag.supervisor.holds import AGAIN, EnvHold, Gate, runner_hold, runner_problem
from gitdag.workspace.gitcli import read_ref

if TYPE_CHECKING:
    from gitdag.store.snapshot import Snapshot
    from gitdag.supervisor.launching import Launcher, Prepared
    from gitdag.supervisor.loop import Supervisor

CONFIG = ".dagain/config.yaml"
_NO_RUNNER = (Kind.COMMAND, Kind.CHECKPOINT)


def config_line(dagain_dir: Path, name: str) -> str:
    """Where runner `name` is configured: `.dagain/config.yaml:<line> (runners.<name>.cmd)`."""
    where = f"{CONFIG} (runners.{name}.cmd)"
    try:
        lines = (dagain_dir / "config.yaml").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return where
    in_runners, found = False, None
    key = re.compile(rf"^(\s+)['\"]?{re.escape(name)}['\"]?\s*:")
    for number, line in enumerate(lines, 1):
        if re.match(r"^runners\s*:", line):
            in_runners = True
            continue
        if in_runners and line and not line[0].isspace() and not line.startswith("#"):
            in_runners = False
        if in_runners and found is None and key.match(line):
            found = number
            continue
        if found is not None and re.match(r"^\s+cmd\s*:", line):
            return f"{CONFIG}:{number} (runners.{name}.cmd)"
    return f"{CONFIG}:{found} (runners.{name})" if found else where


def preflight(launcher: Launcher, settings: Settings, snap: Snapshot, now: dt.datetime) -> None:
    """Refuse to run when a runner a ready (or running) node may need does not resolve.

    Raises:
      ConfigError: one line naming the runner, the role and the config line (exit 2).
    """
    store = launcher.store
    ready = graph.ready(snap.nodes, now)
    running = [n.id for n in snap.nodes.values() if n.status.value == "running"]
    seen: set[str] = set()
    for node_id in [*ready, *running]:
        if snap.nodes[node_id].kind in _NO_RUNNER:
            continue
        node = store.node(snap, node_id)
        for name in launcher.pool_of(node):
            config = settings.runners.get(name)
            if name in seen or config is None:
                continue
            seen.add(name)
            problem = runner_problem(config, launcher.root)
            if problem is not None:
                where = config_line(store.paths.dagain, name)
                raise ConfigError(
                    f"{where}: runner {name!r} (role {launcher.role_of(node)}, node {node_id}): "
                    f"{problem}; install it or change that line (nothing was started)"
                )


def missing_runner(launcher: Launcher, name: str) -> EnvHold | None:
    """The hold of runner `name` when its executable does not resolve, else None."""
    config = launcher.settings.runners.get(name)
    problem = runner_problem(config, launcher.root) if config is not None else None
    if problem is None:
        return None
    roles = [r for r in sorted(launcher.settings.roles) if name in launcher.settings.pool_for(r)]
    where = config_line(launcher.store.paths.dagain, name)
    return runner_hold(name, ", ".join(roles) or None, problem, where)


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
        if summary.kind in _NO_RUNNER:
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
