"""docs/runner-protocol.md stays true: its minimal runner and its scripted example really work."""

from __future__ import annotations

import re
from pathlib import Path

from gitdag.config import RunnerConfig
from gitdag.core.results import RunnerResult
from gitdag.runner.launch import launch, runner_command

from .helpers import spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "runner-protocol.md"


def block(marker: str) -> str:
    text = DOC.read_text()
    section = text.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_minimal_runner_works_and_is_short(tmp_path: Path) -> None:
    code = block("minimal-runner")
    assert len(code.strip().splitlines()) <= 15
    script = tmp_path / "runner.sh"
    script.write_text(code)
    s = spec(tmp_path, f"sh {script}")
    outcome = launch(s).wait(timeout=30)
    assert outcome is not None
    verdict = outcome.verdict()
    assert isinstance(verdict, RunnerResult), verdict
    assert verdict.status == "success" and verdict.outputs == {"file": "done-task-a.txt"}
    assert (s.cwd / "done-task-a.txt").read_text() == "Title of task-a\n"
    assert "node task-a, attempt 1: Title of task-a" in (s.run_dir / "stderr").read_text()


def test_the_scripted_example_parses_and_answers(tmp_path: Path) -> None:
    text = DOC.read_text().split("## The scripted runner")[1]
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    (tmp_path / "script.yaml").write_text(example.group(1))
    cmd = runner_command(RunnerConfig(builtin="scripted", script="script.yaml"), tmp_path)
    outcome = launch(spec(tmp_path / "p", cmd, node_id="plan-000")).wait(timeout=30)
    assert outcome is not None
    verdict = outcome.verdict()
    assert isinstance(verdict, RunnerResult), verdict
    assert [n.id for n in verdict.next.addNodes] == ["task-a", "task-b", "check"]
    first = launch(spec(tmp_path / "t", cmd, node_id="task-a")).wait(timeout=30)
    assert first is not None
    failed = first.verdict()
    assert isinstance(failed, RunnerResult) and failed.summary == "flaky first try of task-a"
