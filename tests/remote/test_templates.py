"""The CI templates say what docs/many-machines.md promises, and `gitdag init` ships them."""

from __future__ import annotations

from pathlib import Path

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
    assert len(job["strategy"]["matrix"]["worker"]) >= 2
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
