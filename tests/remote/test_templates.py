"""The CI templates say what docs/many-machines.md promises, pass the real linters, and `gitdag
init` ships them.

Linting: check-jsonschema (a `test` extra) validates each file against the GitHub workflow and
GitLab CI schemas it vendors (offline). actionlint is not used: its PyPI wrapper downloads the
binary at build time, which this project's machines cannot; the checks actionlint made here
(every `matrix.X` an expression reads is defined by the matrix) are made below instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from gitdag.template import copy_template, template_dir


def load(name: str) -> dict[str, object]:
    data: dict[str, object] = YAML(typ="safe").load((template_dir() / "ci" / name).read_text())
    return data


def test_github_actions_matrix_of_workers() -> None:
    wf = load("github-actions.yml")
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["dagain/state"] and on["schedule"]
    job = wf["jobs"]["work"]
    workers = job["strategy"]["matrix"]["include"]
    assert len(workers) >= 2 and all(set(w) == {"worker", "labels"} for w in workers)
    # One group per matrix slot, never cancelling a running worker.
    assert "matrix.worker" in job["concurrency"]["group"]
    assert job["concurrency"]["cancel-in-progress"] is False
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    assert "default_branch" in checkout["with"]["ref"]
    assert any("gitdag work" in str(step.get("run", "")) for step in job["steps"])
    assert wf["permissions"] == {"contents": "write"}


def test_gitlab_parallel_workers() -> None:
    ci = load("gitlab-ci.yml")
    job = ci["gitdag-work"]
    assert job["parallel"] >= 2 and "CI_NODE_INDEX" in job["resource_group"]
    assert ci["variables"]["GIT_DEPTH"] == "0"
    assert any("gitdag work" in line for line in job["script"])


def test_init_copies_them(tmp_path: Path) -> None:
    created = {p.relative_to(tmp_path).as_posix() for p in copy_template(tmp_path)}
    assert {"ci/github-actions.yml", "ci/gitlab-ci.yml"} <= created


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("github-actions.yml", "vendor.github-workflows"),
        ("validate-state.yml", "vendor.github-workflows"),
        ("gitlab-ci.yml", "vendor.gitlab-ci"),
    ],
)
def test_templates_pass_the_schema_linter(name: str, schema: str) -> None:
    path = template_dir() / "ci" / name
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_linter_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(bad)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout


def _matrix_keys(matrix: dict[str, object]) -> set[str]:
    keys = {k for k in matrix if k not in ("include", "exclude")}
    for entry in matrix.get("include", []) or []:  # type: ignore[attr-defined]
        keys |= set(entry)
    return keys


@pytest.mark.parametrize("name", ["github-actions.yml", "validate-state.yml"])
def test_every_matrix_property_read_is_defined(name: str) -> None:
    text = (template_dir() / "ci" / name).read_text()
    wf = load(name)
    for job_name, job in wf["jobs"].items():  # type: ignore[attr-defined]
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        job_text = YAML(typ="safe").load(text)["jobs"][job_name]
        used = set(re.findall(r"matrix\.([A-Za-z_][\w-]*)", str(job_text)))
        assert used <= _matrix_keys(matrix), (job_name, used - _matrix_keys(matrix))


def test_the_workflows_never_install_an_unnamed_gitdag() -> None:
    for name in ("github-actions.yml", "validate-state.yml", "gitlab-ci.yml"):
        text = (template_dir() / "ci" / name).read_text()
        installs = re.findall(r"pip install (\S+)", text)
        assert installs == ['"$GITDAG_FROM"'], (name, installs)
        assert "GITDAG_FROM" in text and "gitdag==" in text  # says what to set it to
    upload = [
        s
        for s in load("github-actions.yml")["jobs"]["work"]["steps"]  # type: ignore[index]
        if "upload-artifact" in str(s.get("uses", ""))
    ]
    assert upload and upload[0]["with"]["include-hidden-files"] is True


def test_github_template_says_the_workflow_token_cannot_push_workflow_files() -> None:
    text = (template_dir() / "ci" / "github-actions.yml").read_text()
    assert "workflows` permission" in text and "Workflows: Read and write" in text
    checkout = load("github-actions.yml")["jobs"]["work"]["steps"][0]  # type: ignore[index]
    assert checkout["with"]["token"] == "${{ secrets.GITDAG_PUSH_TOKEN || github.token }}"


def test_gitlab_template_pushes_with_a_credential_of_the_free_tier() -> None:
    text = (template_dir() / "ci" / "gitlab-ci.yml").read_text()
    assert "gitlab.com Free" in text and "Deploy keys" in text
    script = "\n".join(load("gitlab-ci.yml")["gitdag-work"]["before_script"])  # type: ignore[index]
    assert "GITDAG_DEPLOY_KEY" in script and "core.sshCommand" in script
    assert "GITDAG_PUSH_TOKEN" in script  # a token still works where the tier allows one


def test_templates_let_idle_workers_back_off() -> None:
    from click.testing import CliRunner

    from gitdag.cli import cli

    help_text = CliRunner().invoke(cli, ["work", "--help"]).output
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        text = (template_dir() / "ci" / name).read_text()
        assert '--poll-max "$POLL_MAX"' in text, name
        # Every option the templates pass with a value exists (`--idle-exit "$IDLE_EXIT"`, ...).
        for option in re.findall(r'--[a-z-]+(?= ")', text):
            assert option in help_text, (name, option)
