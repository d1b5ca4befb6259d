"""`gitdag init` through the real CLI: all or nothing, roles that fit the machine, --json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, run_gitdag
from tests.runner.test_agent_presets import standin_bin

BARE_PATH = "/usr/bin:/bin"


def snapshot(repo: Path) -> tuple[str, list[str]]:
    """Every ref with its value, and every file and directory (ignored ones too), but .git's."""
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    files = sorted(
        str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.relative_to(repo).parts
    )
    return refs, files


def roles_of(repo: Path) -> str:
    text = (repo / ".dagain" / "config.yaml").read_text()
    return text[text.index("\nroles:") : text.index("\npool:")].strip()


def test_no_agent_cli_on_path_writes_the_scripted_runner(repo: Path) -> None:
    res = run_gitdag(repo, "init", "--goal", "g", env={"PATH": BARE_PATH})
    assert res.code == 0, res.err
    assert (
        roles_of(repo) == "roles:\n  planner: scripted\n  executor: scripted\n  verifier: scripted"
    )
    hint = [line for line in res.out.splitlines() if "no agent CLI on PATH" in line]
    assert len(hint) == 1 and "roles:" in hint[0]
    assert (repo / ".dagain" / "script.yaml").is_file()
    run = run_gitdag(repo, "run", "--quiet", env={"PATH": BARE_PATH})  # the plan succeeds, idle
    assert run.code == 0, run.out + run.err


def test_claude_and_codex_on_path_get_the_roles(repo: Path, tmp_path: Path) -> None:
    bin_dir = standin_bin(tmp_path / "bin", ["claude", "codex"])
    res = run_gitdag(repo, "init", env={"PATH": f"{bin_dir}:{BARE_PATH}"})
    assert res.code == 0, res.err
    assert roles_of(repo) == (
        "roles:\n  planner: claude\n  executor: [codex, claude]\n  verifier: claude"
    )
    assert "found on PATH: claude, codex" in res.out
    assert not (repo / ".dagain" / "script.yaml").exists()


def test_runner_option_chooses_and_json_says_what_was_done(repo: Path) -> None:
    res = run_gitdag(repo, "init", "--runner", "gemini", "--json", env={"PATH": BARE_PATH})
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["roles"] == {r: ["gemini"] for r in ("planner", "executor", "verifier")}
    assert data["roles_from"] == "option" and data["config_written"] is True
    assert data["target"] == "dagain/integration" and data["target_created"] is True
    assert ".dagain/config.yaml" in data["files"] and len(data["head"]) == 40
    assert any("gemini is not on PATH" in note for note in data["notes"])


def test_unknown_runner_is_refused_and_nothing_written(repo: Path) -> None:
    before = snapshot(repo)
    res = run_gitdag(repo, "init", "--runner", "nope")
    assert res.code == 2 and "--runner nope: no such runner" in res.err, res.err
    assert len(res.err.strip().splitlines()) == 1
    assert snapshot(repo) == before


@pytest.mark.parametrize("broken", ["bad-yaml", "bad-role"])
def test_a_broken_template_leaves_the_repository_as_it_was(
    repo: Path, tmp_path: Path, broken: str
) -> None:
    template = tmp_path / "template"
    (template / "prompts").mkdir(parents=True)
    (template / "prompts" / "executor.md").write_text("Do it.\n")
    text = "runners: {x: {cmd: true}}\nroles: {planner: y}\n"
    (template / "config.yaml").write_text("runners: [\n" if broken == "bad-yaml" else text)
    before = snapshot(repo)
    res = run_gitdag(repo, "init", "--goal", "g", env={"GITDAG_TEMPLATE": str(template)})
    assert res.code == 2 and "config.yaml" in res.err, res.err
    assert snapshot(repo) == before


@pytest.mark.parametrize("point", ["init.after_files", "init.after_target"])
def test_a_failure_before_the_state_branch_undoes_everything(repo: Path, point: str) -> None:
    git(repo, "branch", "existing")
    (repo / ".dagain").mkdir()
    (repo / ".dagain" / "mine.txt").write_text("the user's\n")
    before = snapshot(repo)
    res = run_gitdag(repo, "init", "--target", "dagain/integration", env={"GITDAG_FAIL_AT": point})
    assert res.code == 3, res.out + res.err
    assert snapshot(repo) == before  # no dagain/state, no target, no files, mine.txt kept
    again = run_gitdag(repo, "init", "--target", "existing")
    assert again.code == 0, again.err
    assert "exists, left as it is" in again.out


def test_a_kill_before_the_state_branch_is_completed_by_a_second_init(repo: Path) -> None:
    res = run_gitdag(repo, "init", env={"GITDAG_CRASH_AT": "init.after_target"})
    assert res.code == 137
    assert not git(repo, "for-each-ref", "refs/heads/dagain/state")
    again = run_gitdag(repo, "init", "--goal", "g")
    assert again.code == 0, again.err
    assert "config.yaml exists: kept as it is" in again.out
    assert run_gitdag(repo, "status").code == 0


def test_init_twice_says_initialised_and_changes_nothing(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    before = snapshot(repo)
    res = run_gitdag(repo, "init")
    assert res.code == 2 and "already exists" in res.err
    assert snapshot(repo) == before


def test_installed_template_override_must_have_a_config(repo: Path, tmp_path: Path) -> None:
    res = run_gitdag(repo, "init", env={"GITDAG_TEMPLATE": str(tmp_path)})
    assert res.code == 2 and "GITDAG_TEMPLATE" in res.err
    assert not (repo / ".dagain").exists()


def test_bare_repository_init_still_works(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    git(tmp_path, "clone", "-q", "--bare", str(src), str(tmp_path / "bare.git"))
    res = run_gitdag(tmp_path / "bare.git", "init", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["files"] == []
    assert os.path.isdir(tmp_path / "bare.git" / "dagain-local")
