"""The input rules of docs/input-rules.md through the real CLI: each refusal is exit 2, one line,
and leaves dagain/state (or the whole repository) as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import Result, git, make_repo, run_gitdag
from tests.store.helpers import state_checkout, state_head


def refused(r: Result) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("dagain/state", "gitdag's own branches"),
        ("dagain/work", "gitdag's own branches"),
        ("dagain/work/x", "gitdag's own branches"),
        ("dagain", "gitdag's own branches"),
        ("HEAD", "not a branch"),
        ("refs/heads/foo", "starts with 'refs/'"),
        ("foo/bar", "branch 'foo' exists"),
        ("main/x", "branch 'main' exists"),
        ("a..b", "'..'"),
        ("x.lock", ".lock"),
        ("a/.b", "starting with '.'"),
        ("a b", "does not allow"),
        ("a~1", "does not allow"),
        ("a@{1}", "'@{'"),
        ("@", "HEAD"),
        ("a/", "empty path component"),
        ("a.", "ends with '.'"),
        ("-x", "starts with '-'"),
        ("x" * 300, "characters long"),
    ],
)
def test_init_refuses_each_target_rule_and_writes_nothing(
    tmp_path: Path, target: str, expected: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "foo")
    before = refs(repo)
    line = refused(run_gitdag(repo, "init", "--target", target))
    assert expected in line, line
    assert refs(repo) == before
    assert not (repo / ".dagain").exists()


def test_init_accepts_a_target_beside_existing_branches(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "foo")
    assert run_gitdag(repo, "init", "--target", "foo-integration").code == 0


def test_validate_refuses_a_hand_edited_target(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    with state_checkout(repo) as wt:
        graph = wt / "graph.yaml"
        graph.write_text(graph.read_text().replace("dagain/integration", "dagain/state"))
    r = run_gitdag(repo, "validate")
    assert r.code == 2 and "target" in r.out + r.err, (r.out, r.err)
    assert "target" in refused(run_gitdag(repo, "status"))


def test_validate_refuses_a_target_that_clashes_with_a_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init", "--target", "team/integration").code == 0
    git(repo, "update-ref", "-d", "refs/heads/team/integration")
    git(repo, "branch", "team")  # now the target can never be created
    r = run_gitdag(repo, "validate")
    assert r.code == 2 and "branch 'team' exists" in r.out + r.err, (r.out, r.err)


@pytest.mark.parametrize("node_id", ["x.lock", "x.", "..x", ".x", "a/b", "x@{1}", "X", "x~1"])
def test_add_refuses_ids_git_cannot_name(tmp_path: Path, node_id: str) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    head = state_head(repo)
    assert "invalid id" in refused(run_gitdag(repo, "add", node_id, "--title", "t"))
    assert state_head(repo) == head


@pytest.mark.parametrize(
    "args",
    [
        ["init", "--backoff", "nan"], ["init", "--backoff", "inf"], ["init", "--backoff", "-1"],
        ["init", "--max-attempts", "0"], ["init", "--max-attempts", "1e3"],
        ["init", "--lease", "99999999999999999999"],
        ["add", "x", "--title", "t", "--priority", "99999999999999999999"],
        ["add", "x", "--title", "t", "--priority", "nan"],
        ["log", "-n", "-1"], ["answer", "x", "--option", "0"],
        ["gc", "--runs-older-than", "nan"], ["gc", "--runs-older-than", "1e308"],
        ["work", "--remote", "origin", "--idle-exit", "inf"],
        ["work", "--remote", "origin", "--poll", "nan"],
    ],
)  # fmt: skip
def test_numeric_options_refuse_nan_inf_negative_and_huge(tmp_path: Path, args: list[str]) -> None:
    repo = make_repo(tmp_path / "repo")
    if args[0] != "init":
        assert run_gitdag(repo, "init").code == 0
    before = refs(repo)
    r = run_gitdag(repo, *args)
    assert r.code == 2, (r.code, r.err)
    assert refs(repo) == before


@pytest.mark.parametrize(
    "line",
    [
        "defaults:\n  timeout_s: .nan\n", "defaults:\n  timeout_s: .inf\n",
        "defaults:\n  timeout_s: -5\n", "defaults:\n  timeout_s: true\n",
        "defaults:\n  timeout_s: '30'\n", "defaults:\n  workers: 1e9\n",
        "merge:\n  check_timeout_s: .inf\n", "merge:\n  check_timeout_s: 1e400\n",
        "defaults:\n  kill_grace_s: 99999999999999999999999\n",
        "packet:\n  max_bytes: true\n", "pool:\n  promote_after_attempts: 0\n",
    ],
)  # fmt: skip
def test_config_numbers_are_checked(tmp_path: Path, line: str) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    (repo / ".dagain" / "config.yaml").write_text("schema_version: 1\n" + line)
    assert "config.yaml" in refused(run_gitdag(repo, "run", "--once"))


@pytest.mark.parametrize(
    "edit",
    [("backoff_s: 5", "backoff_s: .nan"), ("backoff_s: 5", "backoff_s: .inf"),
     ("backoff_s: 5", "backoff_s: true"), ("lease_s: 600", "lease_s: 1e3"),
     ("max_attempts: 3", "max_attempts: -1")],
)  # fmt: skip
def test_graph_yaml_numbers_are_checked(tmp_path: Path, edit: tuple[str, str]) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    with state_checkout(repo) as wt:
        graph = wt / "graph.yaml"
        assert edit[0] in graph.read_text()
        graph.write_text(graph.read_text().replace(*edit))
    assert "graph.yaml" in refused(run_gitdag(repo, "status"))


def test_sha256_repository_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--object-format=sha256", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "first")
    before = refs(repo)
    for args in (["init"], ["status"], ["doctor"], ["add", "x", "--title", "t"]):
        assert "sha256" in refused(run_gitdag(repo, *args))
    assert refs(repo) == before
    assert not (repo / ".dagain").exists()
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
