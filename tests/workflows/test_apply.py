"""`gitdag apply FLOW.yaml` through the real CLI (issue 16 part 4)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.supervisor.conftest import Project

FLOW = """\
name: release
steps:
  - id: build
    run: echo "VERSION=1.2.3" >> "$GITDAG_OUTPUT"
    outputs: [VERSION]
    on_failure: [notify]
  - id: checks
    depends: [build]
    steps:
      - id: unit
        run: echo unit ${build.outputs.VERSION}
      - id: lint
        run: "true"
        continue_on: failure
      - id: report
        depends: [unit, lint]
        run: echo report
  - id: deploy
    depends: [checks]
    when: build.outputs.VERSION != ''
    run: echo deploy ${build.outputs.VERSION} > deployed.txt
  - id: notify
    run: echo "$GITDAG_FAILURE"
"""


def state_head(project: Project) -> str:
    return git(project.root, "rev-parse", "dagain/state").strip()


def write(project: Project, text: str, name: str = "release.yaml") -> Path:
    path = project.root / name
    path.write_text(text)
    return path


def test_apply_adds_the_flow_in_one_commit_and_twice_is_a_no_op(project: Project) -> None:
    write(project, FLOW)
    before = state_head(project)
    res = project.gitdag("apply", "release.yaml")
    assert res.code == 0, res.err
    assert git(project.root, "rev-list", "--count", f"{before}..dagain/state").strip() == "1"
    for nid in ("build", "checks.unit", "checks.lint", "checks.report", "deploy", "notify"):
        assert f"+ {nid} (open)" in res.out
    # Namespaced sub-flow; the group's depends reach its steps; a continue_on dep is an after.
    report = project.show("checks.report")
    assert report["deps"] == ["build", "checks.unit"] and report["after"] == ["checks.lint"]
    assert project.show("notify")["when"] == "build.status == 'failed'"
    head = state_head(project)
    again = project.gitdag("apply", "release.yaml")
    assert again.code == 0 and "nothing to change" in again.out
    assert state_head(project) == head


def test_edited_file_changes_only_the_changed_nodes(project: Project) -> None:
    write(project, FLOW)
    assert project.gitdag("apply", "release.yaml").code == 0
    root = state_head(project)
    edited = FLOW.replace("run: echo report", "run: echo report v2")
    audit = '  - id: audit\n    run: "true"\n'
    edited = edited.replace("  - id: notify\n", audit + "  - id: notify\n")
    write(project, edited)
    res = project.gitdag("apply", "release.yaml")
    assert res.code == 0, res.err
    data = json.loads(project.gitdag("diff", root, "dagain/state", "--json").out)
    touched = sorted(c["id"] for kind in ("added", "changed", "removed") for c in data[kind])
    assert touched == ["audit", "checks.report"]
    assert "~ checks.report" in res.out and "+ audit" in res.out
    # Dropping a step that never started removes it.
    write(project, FLOW)
    res = project.gitdag("apply", "release.yaml")
    assert "- audit" in res.out
    assert project.gitdag("show", "audit").code == 2


def test_dry_run_writes_nothing(project: Project) -> None:
    write(project, FLOW)
    head = state_head(project)
    res = project.gitdag("apply", "release.yaml", "--dry-run")
    assert res.code == 0 and "+ deploy (open)" in res.out and "dry run" in res.out
    assert state_head(project) == head


def test_applied_flow_runs_end_to_end_and_stays_legal(project: Project) -> None:
    project.plan({"plan-000": {"result": {"status": "success", "summary": "nothing to plan"}}})
    write(project, FLOW)
    root = state_head(project)
    assert project.gitdag("apply", "release.yaml").code == 0
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert project.show("notify")["status"] == "skipped"
    assert project.show("deploy")["status"] == "done"
    assert project.gitdag("validate", f"{root}..dagain/state").code == 0


def test_validate_checks_a_flow_file_without_applying_it(project: Project) -> None:
    write(project, FLOW)
    head = state_head(project)
    res = project.gitdag("validate", "release.yaml")
    assert res.code == 0 and "ok: flow release, 6 steps" in res.out
    bad = FLOW.replace("when: build.outputs.VERSION != ''", "when: build.outputs.NOPE != ''")
    write(project, bad, "bad.yaml")
    res = project.gitdag("validate", "bad.yaml")
    assert res.code == 2 and "bad.yaml" in res.err and "exports no 'NOPE'" in res.err
    res = project.gitdag("apply", "bad.yaml")  # a when: over a missing output: refused at apply
    assert res.code == 2 and "deploy.when" in res.err and "exports no 'NOPE'" in res.err
    write(project, "steps:\n  - id: a\n    depends: [ghost]\n    run: 'true'\n", "ghost.yaml")
    res = project.gitdag("apply", "ghost.yaml")
    assert res.code == 2 and "unknown step 'ghost'" in res.err
    write(project, "steps:\n  - id: a\n    bogus: 1\n", "typo.yaml")
    res = project.gitdag("apply", "typo.yaml")
    assert res.code == 2 and "bogus" in res.err
    assert state_head(project) == head


def test_the_json_schema_ships_and_matches_the_model() -> None:
    from importlib import resources

    from gitdag.core import flowfile

    text = resources.files("gitdag").joinpath("schemas/flow.schema.json").read_text()
    # Regenerate: json.dumps(flowfile.schema(), indent=1, sort_keys=True) into that file.
    assert json.loads(text) == flowfile.schema()
