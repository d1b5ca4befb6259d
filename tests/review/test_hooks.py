"""Hooks with real pushes: pre-push on a clone, pre-receive on a bare remote; installing them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from gitdag.store.hooks import shim
from gitdag.template import template_dir
from tests.conftest import REPO_ROOT, git, run_gitdag
from tests.review import helpers as h


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", *args], cwd=repo, capture_output=True, text=True,
                          check=False)  # fmt: skip


def make_bad_commit(repo: Path, nid: str) -> str:
    name, text = h.node_file(repo, nid)
    return h.hand_commit(repo, {name: text.replace("status: running", "status: done")}, "by hand")


def with_remote(tmp_path: Path, repo: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    return remote


def test_pre_push_blocks_an_invalid_range_and_allows_a_valid_one(
    tmp_path: Path, repo: Path
) -> None:
    h.init(repo, "", a={})
    remote = with_remote(tmp_path, repo)
    r = run_gitdag(repo, "hooks", "install")
    assert r.code == 0 and "installed" in r.out
    assert push(repo, "-q", "origin", "dagain/state").returncode == 0  # valid: allowed
    h.claim(repo, "a")
    bad = make_bad_commit(repo, "a")
    proc = push(repo, "origin", "dagain/state")
    assert proc.returncode != 0
    assert f"commit {bad[:12]}: node a: field status" in proc.stderr
    assert f"gitdag revert {bad[:12]}" in proc.stderr
    assert bad not in git(remote, "rev-parse", "dagain/state")
    assert run_gitdag(repo, "revert", bad).code == 0
    proc = push(repo, "origin", "dagain/state")
    assert proc.returncode == 0, proc.stderr
    assert git(remote, "rev-parse", "dagain/state").strip() == h.head(repo)


def test_pre_receive_on_a_bare_remote_blocks_a_push_without_hooks(
    tmp_path: Path, repo: Path
) -> None:
    h.init(repo, "", a={})
    remote = with_remote(tmp_path, repo)
    r = run_gitdag(remote, "hooks", "install", "--server")
    assert r.code == 0 and (remote / "hooks" / "pre-receive").exists()
    assert push(repo, "-q", "origin", "dagain/state").returncode == 0
    h.claim(repo, "a")
    good = h.head(repo)
    make_bad_commit(repo, "a")
    proc = push(repo, "--no-verify", "origin", "dagain/state")
    assert proc.returncode != 0
    assert "pre-receive" in proc.stderr and "node a: field status" in proc.stderr
    assert git(remote, "rev-parse", "dagain/state").strip() != h.head(repo)
    # the quarantined objects were visible to the hook, and nothing was written in the remote
    assert not (remote / "dagain-local").exists()
    git(repo, "branch", "-f", "dagain/state", good)
    assert push(repo, "--no-verify", "origin", "dagain/state").returncode == 0


def test_update_hook_checks_proposal_branches(tmp_path: Path, repo: Path) -> None:
    h.init(repo, "", a={})
    remote = with_remote(tmp_path, repo)
    assert run_gitdag(remote, "hooks", "install", "--hook", "update").code == 0
    assert push(repo, "-q", "origin", "dagain/state").returncode == 0
    assert run_gitdag(repo, "propose", "p", "--add", "b", "--title", "B").code == 0
    assert push(repo, "-q", "origin", "dagain/proposals/p").returncode == 0
    git(repo, "branch", "-q", "dagain/proposals/q", "dagain/state")
    name, text = h.node_file(repo, "a")
    h.hand_commit(repo, {name: text.replace("status: open", "status: done")}, "x",
                  branch="dagain/proposals/q")  # fmt: skip
    proc = push(repo, "origin", "dagain/proposals/q")
    assert proc.returncode != 0 and "dagain/proposals/q: commit" in proc.stderr


def test_install_never_clobbers_a_foreign_hook(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    mine = "#!/bin/sh\necho mine\n"
    (hooks / "pre-push").write_text(mine)
    r = run_gitdag(repo, "hooks", "install")
    assert r.code == 0
    assert (hooks / "pre-push").read_text() == mine
    assert (hooks / "pre-push.gitdag").exists()
    assert "NOT active" in r.out and "pre-push.gitdag" in r.out
    again = run_gitdag(repo, "hooks", "install")
    assert again.code == 0 and (hooks / "pre-push").read_text() == mine


def test_reinstall_updates_our_own_hook(repo: Path) -> None:
    assert run_gitdag(repo, "hooks", "install").code == 0
    r = run_gitdag(repo, "hooks", "install")
    assert "updated" in r.out


def test_shipped_hook_files_are_the_shims() -> None:
    for name in ("pre-push", "pre-receive", "update"):
        path = REPO_ROOT / "hooks" / name
        assert path.read_text() == shim(name)
        assert path.stat().st_mode & 0o111


def test_ci_workflow_template_runs_validate_on_prs_into_state(repo: Path) -> None:
    text = (template_dir() / "ci" / "validate-state.yml").read_text()
    data = YAML(typ="safe").load(text)
    assert data["on"]["pull_request"]["branches"] == ["dagain/state"]
    runs = [step.get("run", "") for step in data["jobs"]["validate"]["steps"]]
    assert any('gitdag validate "$BASE..$HEAD"' in run for run in runs)
    checkout = data["jobs"]["validate"]["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0  # the whole range must be fetched
    h.init(repo, "", a={})
    r = run_gitdag(repo, "hooks", "install", "--ci")
    assert r.code == 0, r.err
    shown = git(repo, "show", "dagain/state:.github/workflows/validate-state.yml")
    assert shown == text
    # the state branch stays valid with the workflow on it, and transitions keep it
    assert run_gitdag(repo, "validate", "..dagain/state").code == 0
    h.add(repo, "b")
    assert "validate-state.yml" in git(repo, "ls-tree", "-r", "--name-only", "dagain/state")
    assert run_gitdag(repo, "validate").code == 0
