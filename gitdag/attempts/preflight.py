"""Before a start: does a runner's executable resolve? (`gitdag run` and `gitdag work` alike).

`preflight` refuses a run before its first claim when a runner a ready node may need does not
resolve (exit 2, nothing claimed); `missing_runner` is the hold of one runner whose executable is
gone mid-run; `config_line` names the line of `.dagain/config.yaml` to change.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gitdag.attempts.holds import EnvHold, runner_hold, runner_problem
from gitdag.config import Settings
from gitdag.core import graph
from gitdag.core.model import Kind
from gitdag.errors import ConfigError

if TYPE_CHECKING:
    from gitdag.attempts.launching import Launcher
    from gitdag.store.snapshot import Snapshot

CONFIG = ".dagain/config.yaml"
NO_RUNNER = (Kind.COMMAND, Kind.CHECKPOINT)


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
        if snap.nodes[node_id].kind in NO_RUNNER:
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
