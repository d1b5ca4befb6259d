"""Workflow schedules into the CI workers' triggers (issue 16 part 6)."""

from __future__ import annotations

import json

from ruamel.yaml import YAML

from tests.conftest import git
from tests.supervisor.conftest import Project

FLOW = """\
name: nightly
schedule: ["0 3 * * *", "30 12 * * 1-5"]
steps:
  - id: build
    run: "true"
"""


def test_schedule_is_recorded_and_written_into_the_ci_triggers(project: Project) -> None:
    (project.root / "nightly.yaml").write_text(FLOW)
    res = project.gitdag("apply", "nightly.yaml")
    assert res.code == 0, res.err
    graph_yaml = git(project.root, "show", "dagain/state:graph.yaml")
    assert "nightly:" in graph_yaml and "0 3 * * *" in graph_yaml
    res = project.gitdag("hooks", "install", "--ci")
    assert res.code == 0, res.err
    assert "GitLab: add a pipeline schedule" in res.out and "'0 3 * * *'" in res.out
    workflow = project.root / ".github" / "workflows" / "gitdag-workers.yml"
    data = YAML(typ="safe").load(workflow.read_text())
    crons = [item["cron"] for item in data["on"]["schedule"]]
    assert crons == ["*/30 * * * *", "0 3 * * *", "30 12 * * 1-5"]
    # A second install changes nothing; the state branch stays legal.
    again = project.gitdag("hooks", "install", "--ci", "--json")
    assert json.loads(again.out)["schedules"]["changed"] is False
    root = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    assert project.gitdag("validate", f"{root}..dagain/state").code == 0


def test_removing_the_schedule_from_the_file_removes_it_from_the_graph(project: Project) -> None:
    (project.root / "nightly.yaml").write_text(FLOW)
    assert project.gitdag("apply", "nightly.yaml").code == 0
    (project.root / "nightly.yaml").write_text(
        FLOW.replace('schedule: ["0 3 * * *", "30 12 * * 1-5"]\n', "")
    )
    res = project.gitdag("apply", "nightly.yaml")
    assert res.code == 0 and "schedules" in res.out
    assert "nightly" not in git(project.root, "show", "dagain/state:graph.yaml")
    assert project.gitdag("apply", "nightly.yaml").out.startswith("flow nightly: nothing to change")


def test_a_bad_cron_is_refused_naming_the_field(project: Project) -> None:
    (project.root / "bad.yaml").write_text(FLOW.replace("0 3 * * *", "every night"))
    res = project.gitdag("apply", "bad.yaml")
    assert res.code == 2 and "schedule" in res.err and "bad.yaml" in res.err
