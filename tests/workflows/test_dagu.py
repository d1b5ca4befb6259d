"""`gitdag apply --from dagu` on Dagu DAG files written here in Dagu's format (issue 16 part 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git
from tests.supervisor.conftest import Project

DAGS = sorted((Path(__file__).parent / "dagu").glob("*.yaml"))

# What each file must report as not mapped (every line it reports is listed).
UNMAPPED = {
    "07_handlers.yaml": ["handlerOn.cancel"],
    "08_retry_timeout.yaml": ["steps[0] (flaky).retryPolicy.exitCode"],
    "09_continue_on.yaml": [
        "steps[1] (optional).preconditions[0]", "steps[2] (test).continueOn.exitCode",
        "steps[2] (test).continueOn.markSuccess",
    ],
    "10_unsupported.yaml": [
        "env", "params", "maxActiveSteps", "mailOn", "steps[0] (container).executor",
        "steps[1] (in-dir).dir", "steps[1] (in-dir).repeatPolicy",
        "steps[1] (in-dir).signalOnStop", "steps[1] (in-dir).mailOnError", "schedule",
    ],
}  # fmt: skip


def test_there_are_at_least_ten_dagu_files() -> None:
    assert len(DAGS) >= 10


@pytest.mark.parametrize("dag", DAGS, ids=lambda p: p.name)
def test_each_dagu_file_imports_and_reports_what_it_cannot_map(project: Project, dag: Path) -> None:
    res = project.gitdag("apply", "--from", "dagu", str(dag), "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["changed"]
    reported = [line.split(":")[0] for line in data["unmapped"]]
    assert reported == UNMAPPED.get(dag.name, [])
    # Applying the same file again is a no-op; validate accepts the file as it stands.
    again = json.loads(project.gitdag("apply", "--from", "dagu", str(dag), "--json").out)
    assert not again["changed"]
    assert project.gitdag("validate", "--from", "dagu", str(dag)).code == 0


def test_each_unmapped_feature_is_one_line_of_the_text_output(project: Project) -> None:
    res = project.gitdag("apply", "--from", "dagu", str(DAGS[9]), "--dry-run")
    lines = [line for line in res.out.splitlines() if line.startswith("not mapped: ")]
    assert len(lines) == len(UNMAPPED["10_unsupported.yaml"])


def run_dag(project: Project, name: str) -> dict[str, str]:
    project.plan({"*": {"result": {"status": "success", "summary": "ok"}}})
    path = Path(__file__).parent / "dagu" / name
    assert project.gitdag("apply", "--from", "dagu", str(path)).code == 0
    project.gitdag("run", "--workers", "2")
    status = json.loads(project.gitdag("graph", "--json").out)
    return {n["id"]: n["status"] for n in status["nodes"]}


def test_output_and_preconditions_run_as_in_dagu(project: Project) -> None:
    statuses = run_dag(project, "06_preconditions.yaml")
    assert statuses["deploy-prod"] == "done"
    assert statuses["deploy-staging"] == "skipped" and statuses["smoke"] == "skipped"
    out = project.root / ".dagain" / "local" / "runs" / "deploy-prod" / "1" / "stdout"
    assert out.read_text() == "deploying to prod\n"


def test_output_variables_reach_later_steps(project: Project) -> None:
    statuses = run_dag(project, "05_output.yaml")
    assert statuses["announce"] == "done"
    runs = project.root / ".dagain" / "local" / "runs"
    assert (runs / "tag" / "1" / "stdout").read_text() == "tagging v1.2.3\n"
    assert (runs / "announce" / "1" / "stdout").read_text() == "released 1.2.3\n"


def test_handlers_and_continue_on_run_as_in_dagu(project: Project) -> None:
    statuses = run_dag(project, "07_handlers.yaml")
    assert statuses["work"] == "failed"
    assert statuses["on-failure"] == "done" and statuses["on-exit"] == "done"
    assert statuses["on-success"] == "skipped"
    root = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    assert project.gitdag("validate", f"{root}..dagain/state").code == 0


def test_continue_on_failure_lets_the_next_step_run(project: Project) -> None:
    statuses = run_dag(project, "09_continue_on.yaml")
    assert statuses["lint"] == "failed" and statuses["test"] == "done"
