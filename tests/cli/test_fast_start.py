"""Light commands import only what they need (issue 18 part 5): checked by module, not by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_gitdag

# What `status`, `ready` and `show` never need: the writer's config file machinery (filelock,
# ruamel), the network client, and the run/work machinery.
HEAVY = (
    "ruamel.yaml",
    "filelock",
    "dulwich.client",
    "gitdag.initrepo",
    "gitdag.transport.client",
    "gitdag.supervisor",
    "gitdag.remote",
    "gitdag.workspace",
    "gitdag.store.ranges",
)

PROBE = """
import json, sys
from gitdag.cli import main
sys.argv = ["gitdag", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["status"], ["ready"], ["show", "plan-000"]])
def test_light_commands_do_not_import_heavy_modules(repo: Path, args: list[str]) -> None:
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    loaded = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "gitdag.cli.graph_cmds" in loaded  # the command really ran
    assert proc.stdout.strip(), proc.stderr
    found = sorted(m for m in loaded if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))
    assert found == [], f"gitdag {' '.join(args)} imported {found}"
