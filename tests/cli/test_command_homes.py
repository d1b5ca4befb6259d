"""`gitdag <command>` loads the module of that command only (besides the graph commands).

A `gitdag run` started by a test, a harness or a person does not import the remote worker, the
review, doctor or ui code: each costs time at every start, and the suite starts hundreds.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click

import gitdag.cli
from gitdag.cli import COMMAND_HOMES
from tests.conftest import REPO_ROOT, make_repo


def test_every_command_outside_graph_cmds_has_its_home_named() -> None:
    registered: dict[str, str] = {}
    for found in pkgutil.iter_modules(gitdag.cli.__path__):
        if not found.name.endswith("_cmds") or found.name == "graph_cmds":
            continue
        group = click.Group()
        importlib.import_module(f"gitdag.cli.{found.name}").register(group)
        registered.update(dict.fromkeys(group.commands, found.name))
    assert registered == COMMAND_HOMES


PROBE = """
import json, sys
from gitdag.__main__ import main
sys.argv = ["gitdag", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_run_does_not_load_the_other_commands_modules(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")  # not initialised: `run` says so, exit 2
    proc = subprocess.run([sys.executable, "-c", PROBE, "run"], cwd=repo, capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)},
                          timeout=120)  # fmt: skip
    *said, modules_line = proc.stderr.strip().splitlines()
    assert "gitdag init" in "".join(said), proc.stderr
    modules = set(json.loads(modules_line))
    assert "gitdag.cli.run_cmds" in modules
    loaded = {m for m in modules if m.startswith("gitdag.cli.") and m.endswith("_cmds")}
    assert loaded == {"gitdag.cli.graph_cmds", "gitdag.cli.run_cmds"}
    assert "gitdag.remote.worker" not in modules
