"""The built-in scripted runner, run as a real process through `launch`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from gitdag.config import RunnerConfig
from gitdag.core.model import ErrorKind, Kind
from gitdag.core.results import ResultProblem, RunnerResult
from gitdag.runner.launch import RunOutcome, launch, runner_command
from gitdag.runner.packet import Resume

from .helpers import spec


def run_script(tmp: Path, script: str | dict[str, Any], node_id: str = "task-a", attempt: int = 1,
               cwd: Path | None = None, name: str = "script.yaml",
               packet_fields: dict[str, Any] | None = None) -> RunOutcome:  # fmt: skip
    path = tmp / name
    path.write_text(script if isinstance(script, str) else json.dumps(script))
    cmd = runner_command(RunnerConfig(builtin="scripted", script=name), tmp)
    s = spec(tmp / f"run-{node_id}-{attempt}", cmd, node_id=node_id, attempt=attempt, cwd=cwd,
             packet_fields=packet_fields)  # fmt: skip
    outcome = launch(s).wait(timeout=60)
    assert outcome is not None
    return outcome


def result(outcome: RunOutcome) -> RunnerResult:
    verdict = outcome.verdict()
    assert isinstance(verdict, RunnerResult), verdict
    return verdict


def problem(outcome: RunOutcome) -> ResultProblem:
    verdict = outcome.verdict()
    assert isinstance(verdict, ResultProblem), verdict
    return verdict


def stderr(outcome: RunOutcome) -> str:
    return (outcome.run_dir / "stderr").read_text()


def test_plan_adds_nodes(tmp_path: Path) -> None:
    script = """
plan-000:
  summary: planned
  outputs: {plan: two tasks}
  addNodes:
    - {id: task-a, title: Write a, ownership: ["a/**"]}
    - {id: task-b, title: Write b, dependsOn: [task-a], type: verify}
"""
    r = result(run_script(tmp_path, script, node_id="plan-000"))
    assert r.status == "success" and r.summary == "planned" and r.outputs == {"plan": "two tasks"}
    assert [n.id for n in r.next.addNodes] == ["task-a", "task-b"]
    assert r.next.addNodes[1].deps == ("task-a",) and r.next.addNodes[1].kind is Kind.VERIFY


def test_one_response_per_attempt_and_the_last_repeats(tmp_path: Path) -> None:
    script = """
task-*:
  - {status: fail, summary: "first {node} try {attempt}"}
  - {summary: "second"}
"""
    first = result(run_script(tmp_path, script, attempt=1))
    assert first.status == "fail" and first.summary == "first task-a try 1"
    assert result(run_script(tmp_path, script, attempt=2)).summary == "second"
    assert result(run_script(tmp_path, script, attempt=5)).summary == "second"


def test_exact_id_beats_patterns_and_patterns_go_in_order(tmp_path: Path) -> None:
    script = {
        "*": {"summary": "star"},
        "task-a": {"summary": "exact"},
        "task-*": {"summary": "pattern"},
    }
    assert result(run_script(tmp_path, script, name="s.json")).summary == "exact"
    assert result(run_script(tmp_path, script, node_id="task-b", name="s.json")).summary == "star"


def test_no_entry_succeeds_and_says_so(tmp_path: Path) -> None:
    r = result(run_script(tmp_path, "other: {}\n"))
    assert r.status == "success" and "no entry for task-a" in r.summary


def test_write_append_and_commit_in_the_worktree(tmp_path: Path, repo: Path) -> None:
    (repo / "log.txt").write_text("start\n")
    script = """
task-a:
  write: {"src/{node}.txt": "made by {node}\\n"}
  append: {log.txt: "more\\n"}
  commit: "{node}: add its file"
"""
    r = result(run_script(tmp_path, script, cwd=repo))
    assert r.status == "success"
    assert (repo / "src/task-a.txt").read_text() == "made by task-a\n"
    assert (repo / "log.txt").read_text() == "start\nmore\n"
    log = subprocess.run(
        ["git", "log", "--format=%s", "-1"], cwd=repo, capture_output=True, text=True
    )
    assert log.stdout.strip() == "task-a: add its file"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True
    )
    assert status.stdout == ""


def test_writes_outside_the_worktree_are_refused(tmp_path: Path) -> None:
    outcome = run_script(tmp_path, 'task-a: {write: {"../escape.txt": "x"}}\n')
    assert outcome.exit_code == 2 and "outside the working directory" in stderr(outcome)
    assert not (tmp_path / "escape.txt").exists()


def test_exit_code_stdout_and_stderr(tmp_path: Path) -> None:
    outcome = run_script(
        tmp_path, "task-a: {status: fail, exit_code: 3, stdout: 'hello out', stderr: 'hello err'}\n"
    )
    assert outcome.exit_code == 3
    assert result(outcome).status == "fail"  # a fail result is honoured despite the exit code
    assert "hello out" in (outcome.run_dir / "stdout").read_text()
    assert "hello err" in stderr(outcome)


def test_no_result_and_raw_result(tmp_path: Path) -> None:
    assert (
        problem(run_script(tmp_path, "task-a: {no_result: true}\n")).kind
        is ErrorKind.MISSING_RESULT
    )
    bad = problem(run_script(tmp_path, "task-a: {raw_result: '{not json'}\n"))
    assert bad.kind is ErrorKind.INVALID_RESULT and "malformed JSON" in bad.reason
    unknown = problem(run_script(tmp_path, """task-a: {raw_result: '{"status": "maybe"}'}\n"""))
    assert "unknown value 'maybe'" in unknown.reason


def test_result_on_stdout(tmp_path: Path) -> None:
    outcome = run_script(tmp_path, "task-a: {result_via: stdout, summary: printed}\n")
    assert outcome.result_source == "stdout" and result(outcome).summary == "printed"


def test_sleep(tmp_path: Path) -> None:
    outcome = run_script(tmp_path, "task-a: {sleep_s: 0.4}\n")
    assert outcome.duration_s >= 0.4 and result(outcome).status == "success"


def test_run_a_shell_command(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    r = result(run_script(tmp_path, "task-a: {run: 'echo ran > ran.txt'}\n", cwd=work))
    assert r.status == "success" and (work / "ran.txt").read_text() == "ran\n"
    failed = result(run_script(tmp_path, "task-a: {run: 'exit 5'}\n", cwd=work))
    assert failed.status == "fail" and "exited 5" in failed.summary


def test_checkpoint_then_answer_from_the_packet(tmp_path: Path) -> None:
    script = """
task-a:
  status: checkpoint
  checkpoint: {question: "Which database?", options: [sqlite, postgres]}
  answered:
    summary: "using {answer}"
    outputs: {db: "{answer}"}
"""
    asked = result(run_script(tmp_path, script))
    assert asked.status == "checkpoint" and asked.checkpoint is not None
    assert asked.checkpoint.options == ("sqlite", "postgres")
    resume = Resume(question="Which database?", answer="postgres")
    answered = result(run_script(tmp_path, script, attempt=2, packet_fields={"resume": resume}))
    assert answered.status == "success" and answered.summary == "using postgres"
    assert answered.outputs == {"db": "postgres"}


def test_set_status_and_errors_pass_through(tmp_path: Path) -> None:
    script = "task-a: {status: fail, errors: [e1, e2], setStatus: [{id: task-b, status: open}]}\n"
    r = result(run_script(tmp_path, script))
    assert r.errors == ("e1", "e2") and r.next.setStatus[0].id == "task-b"


def test_bad_scripts_exit_2_with_a_reason(tmp_path: Path) -> None:
    unknown = run_script(tmp_path, "task-a: {colour: red}\n")
    assert unknown.exit_code == 2 and "unknown key 'colour'" in stderr(unknown)
    assert problem(unknown).kind is ErrorKind.TASK_FAILURE
    broken = run_script(tmp_path, "task-a: [unclosed\n")
    assert broken.exit_code == 2 and "malformed YAML" in stderr(broken)
    cmd = runner_command(RunnerConfig(builtin="scripted", script="missing.yaml"), tmp_path)
    outcome = launch(spec(tmp_path / "m", cmd)).wait(timeout=60)
    assert (
        outcome is not None
        and outcome.exit_code == 2
        and "cannot read the script" in stderr(outcome)
    )
