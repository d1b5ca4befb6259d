"""A project whose agents run tests/agents/loop_runner.py (counter state, needs, hangs)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, git, make_repo, run_gitdag
from tests.remote.conftest import daemons  # test_remote_loops: the served remote's fixture

LOOP = Path(__file__).with_name("loop_runner.py")
__all__ = ["daemons"]


@dataclass
class Row:
    kind: str
    node: str
    attempt: int
    iteration: str
    n: int
    pid: int
    t: float


@dataclass
class LoopProject:
    root: Path
    plan_path: Path
    log_path: Path
    tmp: Path

    def plan(self, nodes: list[dict[str, object]], behaviours: dict[str, object]) -> None:
        """The root planner adds `nodes`; each node then behaves as `behaviours` says."""
        plan = {"plan-000": {"results": [{"status": "success", "next": {"addNodes": nodes}}]}}
        self.plan_path.write_text(json.dumps({**plan, **behaviours}))

    def config(self, extra: str = "", timeout_s: float = 60) -> None:
        roles = "  planner: loop\n  executor: loop\n  verifier: loop\n"
        (self.root / ".dagain" / "config.yaml").write_text(
            "schema_version: 1\nrunners:\n"
            f"  loop:\n    cmd: {sys.executable} {LOOP}\n    timeout_s: {timeout_s:g}\n"
            f"roles:\n{roles}defaults:\n  kill_grace_s: 1\n{extra}"
        )

    def env(self) -> dict[str, str]:
        return {"LOOP_PLAN": str(self.plan_path), "LOOP_LOG": str(self.log_path)}

    def gitdag(self, *args: str, timeout: float = 180) -> Result:
        return run_gitdag(self.root, *args, env=self.env(), timeout=timeout)

    def rows(self, node: str | None = None) -> list[Row]:
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            kind, nid, attempt, iteration, n, pid, t = line.split()
            if node is None or nid == node:
                out.append(Row(kind, nid, int(attempt), iteration, int(n), int(pid), float(t)))
        return out

    def show(self, node_id: str) -> dict[str, object]:
        res = self.gitdag("show", node_id, "--json")
        assert res.code == 0, res.err
        data: dict[str, object] = json.loads(res.out)
        return data

    def target_log(self) -> list[str]:
        return git(self.root, "log", "--format=%s", "dagain/integration").splitlines()

    def state_log(self) -> list[str]:
        log = git(self.root, "log", "--format=%B%x00", "dagain/state")
        return [m.strip() for m in log.split("\x00")]


@pytest.fixture
def loops(tmp_path: Path) -> LoopProject:
    files = {"README.md": "# p\n", "src/app.py": "x = 1\n", ".gitignore": "build/\n"}
    root = make_repo(tmp_path / "proj", files)
    proj = LoopProject(root, tmp_path / "plan.json", tmp_path / "runs.log", tmp_path)
    proj.plan_path.write_text("{}")
    res = proj.gitdag("init", "--goal", "Test goal", "--backoff", "0")
    assert res.code == 0, res.err
    proj.config()
    return proj
