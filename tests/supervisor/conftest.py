from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, make_repo, run_gitdag

FAKE = Path(__file__).with_name("fake_runner.py")


@dataclass
class Project:
    root: Path
    plan_path: Path
    log_path: Path

    def plan(self, behaviours: dict[str, object]) -> None:
        self.plan_path.write_text(json.dumps(behaviours))

    def config(self, extra: str = "", runners: str = "", roles: str = "") -> None:
        cmd = f"{sys.executable} {FAKE}"
        default_roles = "  planner: fake\n  executor: fake\n  verifier: fake\n"
        text = (
            "schema_version: 1\n"
            "runners:\n"
            f"  fake:\n    cmd: {cmd}\n    timeout_s: 30\n"
            f"{runners}"
            "roles:\n"
            f"{roles or default_roles}"
            "defaults:\n  kill_grace_s: 1\n"
            f"{extra}"
        )
        (self.root / ".dagain" / "config.yaml").write_text(text)

    def env(self) -> dict[str, str]:
        return {"FAKE_PLAN": str(self.plan_path), "FAKE_LOG": str(self.log_path)}

    def gitdag(self, *args: str, timeout: float = 120) -> Result:
        return run_gitdag(self.root, *args, env=self.env(), timeout=timeout)

    def log(self) -> list[tuple[str, str, int, int, float]]:
        if not self.log_path.exists():
            return []
        rows = []
        for line in self.log_path.read_text().splitlines():
            kind, node, attempt, pid, t = line.split()
            rows.append((kind, node, int(attempt), int(pid), float(t)))
        return rows

    def show(self, node_id: str) -> dict[str, object]:
        res = self.gitdag("show", node_id, "--json")
        assert res.code == 0, res.err
        data: dict[str, object] = json.loads(res.out)
        return data


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = make_repo(tmp_path / "proj", {"README.md": "# p\n", "src/app.py": "x = 1\n"})
    proj = Project(root, tmp_path / "plan.json", tmp_path / "runs.log")
    proj.plan({})
    res = proj.gitdag("init", "--goal", "Test goal", "--backoff", "0")
    assert res.code == 0, res.err
    proj.config()
    return proj
