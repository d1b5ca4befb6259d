"""The bad-input corpus (spec §9): every case is refused with its one-line error, nothing written.

One file per case under `cases/`, each a YAML mapping:

  kind:    node | graph | config | result | cli
  input:   the bad content (or `input_expr`: a Python expression building it, for huge or
           binary inputs); for `cli`, `args` is the argument list instead
  expect:  a substring of the expected error
  error_kind: (result) the node's error kind, when not `invalid_result`
  node:    (node) the id whose file `input` replaces or adds (default `bad`); `files` maps
           more node ids to contents
  setup:   (optional) gitdag commands run first, e.g. [[add, a, --title, a]]

node / graph: the bad file is committed onto dagain/state by hand (git plumbing); `gitdag
status` must exit 2 with one line naming the problem, `gitdag validate` must exit 2 and name it,
`gitdag run` must exit 2, and the branch must not move.
config: `.dagain/config.yaml` is replaced; `gitdag run` must exit 2 with one line, nothing moves.
result: a runner returns the input; the node's error must be `invalid_result` naming the
problem, and nothing of the proposal may be applied (no node added, no other status changed).
cli: the command must exit 2 with one line on stderr, and dagain/state must not move.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitdag.core.ids import node_path
from tests.conftest import git, make_repo, run_gitdag

HERE = Path(__file__).resolve().parent
CASES = sorted((HERE / "cases").glob("*.yaml"))
RUNNER = HERE / "raw_runner.py"


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    if "input_expr" in case:
        builtins = {"range": range, "chr": chr}
        # Our own case files: huge or binary inputs are easier to read as an expression.
        case["input"] = eval(case["input_expr"], {"__builtins__": builtins})
    return case


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised repository with one valid node `ok` and a runner returning bad results."""
    root = make_repo(tmp_path_factory.mktemp("corpus") / "repo")
    for args in (["init", "--backoff", "0"], ["add", "ok", "--title", "a valid node"]):
        res = run_gitdag(root, *args)
        assert res.code == 0, res.err
    (root / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\n"
        f"runners:\n  raw:\n    cmd: {sys.executable} {RUNNER}\n    timeout_s: 30\n"
        "roles:\n  planner: raw\n  executor: raw\n  verifier: raw\n"
    )
    return root


def state(root: Path) -> str:
    return git(root, "rev-parse", "dagain/state").strip()


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def hand_commit(root: Path, files: dict[str, bytes]) -> str:
    """Commit files onto dagain/state with git plumbing, the way a person or a script might."""
    env = {**os.environ, "GIT_INDEX_FILE": str(root / ".git" / "corpus-index")}
    head = state(root)
    subprocess.run(["git", "read-tree", head], cwd=root, env=env, check=True)
    for path, data in files.items():
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=root, input=data,
                              capture_output=True, check=True).stdout.decode().strip()  # fmt: skip
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"],
                       cwd=root, env=env, check=True)  # fmt: skip
    tree = subprocess.run(["git", "write-tree"], cwd=root, env=env, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    commit = subprocess.run(["git", "commit-tree", tree, "-p", head, "-m", "hand edit"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    git(root, "update-ref", "refs/heads/dagain/state", commit, head)
    return commit


def node_files(root: Path) -> list[str]:
    listing = git(root, "ls-tree", "-r", "--name-only", "dagain/state", "nodes")
    return sorted(listing.split())


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path, template: Path, tmp_path: Path) -> None:
    case = load_case(path)
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    for args in case.get("setup", []):
        res = run_gitdag(root, *args)
        assert res.code == 0, res.err
    expect = case["expect"]
    kind = case["kind"]
    if kind in ("node", "graph"):
        files: dict[str, bytes] = {}
        if "input" in case:
            where = "graph.yaml" if kind == "graph" else node_path(case.get("node", "bad"))
            files[case.get("path", where)] = as_bytes(case["input"])
        for nid, text in case.get("files", {}).items():
            files[node_path(nid)] = as_bytes(text)
        bad = hand_commit(root, files)
        res = run_gitdag(root, "status")
        assert res.code == 2, res.err
        assert expect in one_line_error(res.err)
        res = run_gitdag(root, "validate")
        assert res.code == 2 and expect in res.err, res.err
        res = run_gitdag(root, "run")
        assert res.code == 2, res.err
        line = one_line_error(res.err)  # the supervisor names the bad commit and how to repair it
        assert expect in line or (f"commit {bad[:12]}" in line and "gitdag revert" in line), line
        assert state(root) == bad
    elif kind == "config":
        before = state(root)
        (root / ".dagain" / "config.yaml").write_bytes(as_bytes(case["input"]))
        res = run_gitdag(root, "run")
        assert res.code == 2, res.err
        assert expect in one_line_error(res.err)
        assert state(root) == before
    elif kind == "result":
        result_file = tmp_path / "result.bin"
        result_file.write_bytes(as_bytes(case["input"]))
        env = {"CORPUS_RESULT": str(result_file)}
        if case.get("stdout"):
            env["CORPUS_STDOUT"] = "1"
        before = node_files(root)
        res = run_gitdag(root, "run", "--once", env=env)
        assert res.code == 1, res.err
        assert "Traceback" not in res.err
        node = json.loads(run_gitdag(root, "show", "ok", "--json").out)
        wanted = case.get("error_kind", "invalid_result")
        assert node["status"] == "open" and node["error"]["kind"] == wanted, node
        assert expect in node["error"]["summary"], node["error"]
        assert node_files(root) == before  # nothing added
        assert node["outputs"] == {}
        for other in before:
            if not other.endswith("/ok.yaml"):  # nothing else changed either
                assert "status: open" in git(root, "show", f"dagain/state:{other}")
    elif kind == "cli":
        before = state(root)
        res = run_gitdag(root, *case["args"])
        assert res.code == 2, (res.out, res.err)
        assert expect in one_line_error(res.err)
        assert state(root) == before
    else:
        raise AssertionError(f"{path.name}: unknown kind {kind!r}")


def test_the_corpus_is_big_and_covers_every_kind() -> None:
    kinds = [load_case(p)["kind"] for p in CASES]
    assert len(CASES) >= 40
    assert set(kinds) == {"node", "graph", "config", "result", "cli"}
