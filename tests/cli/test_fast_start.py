"""Light commands import only what they need (issue 18 part 5): checked by module, not by time.

`status`, `ready` and `show` start without click through `python -m gitdag` (gitdag/readonly.py);
the same command lines through click must print the same bytes and exit with the same code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitdag import readonly
from gitdag.core import lifecycle
from gitdag.store.state import StateStore
from tests.conftest import REPO_ROOT, run_gitdag

# What `status`, `ready` and `show` never need: the writer's config file machinery (filelock,
# ruamel), the network client, and the run/work machinery.
HEAVY = (
    "ruamel.yaml",
    "filelock",
    "dulwich.client",
    "gitdag.initrepo",
    "gitdag.transport.client",
    "gitdag.supervisor",
    "gitdag.remote",
    "gitdag.workspace",
    "gitdag.store.ranges",
)
# What the fast start leaves out as well: click, and (for status and ready, which read the
# summaries and details the caches keep) pydantic, the models and the YAML codec.
NO_CLICK = ("click", "gitdag.cli")
NO_MODELS = ("pydantic", "pydantic_core", "gitdag.core.model", "gitdag.core.codec")

PROBE = """
import json, sys
from gitdag.cli import main
sys.argv = ["gitdag", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

# The real entry (`python -m gitdag`, the console script), with the modules it loaded on stderr.
FAST_PROBE = """
import json, sys
from gitdag.__main__ import main
sys.argv = ["gitdag", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

# The click path alone, for comparing output with the fast start.
CLICK = "import sys; from gitdag.cli import main; sys.argv = ['gitdag', *sys.argv[1:]]; main()"


def _run(cwd: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def _loaded(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def _heavy(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if m in names or m.startswith(tuple(n + "." for n in names)))


@pytest.mark.parametrize("args", [["status"], ["ready"], ["show", "plan-000"]])
def test_light_commands_do_not_import_heavy_modules(repo: Path, args: list[str]) -> None:
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    proc = _run(repo, PROBE, *args)
    loaded = _loaded(proc)
    assert "gitdag.cli.graph_cmds" in loaded  # the command really ran
    assert proc.stdout.strip(), proc.stderr
    found = _heavy(loaded, HEAVY)
    assert found == [], f"gitdag {' '.join(args)} imported {found}"


def _claim(repo: Path, node_id: str) -> None:
    """Claim a node in-process, as a supervisor does (its store writes the parse cache)."""
    store = StateStore.open(repo)
    try:
        store.transact(
            lambda snap, now: lifecycle.claim(
                store.node(snap, node_id), worker="w1@host:1", now=now, lease_s=600
            ),
            actor="supervisor@host:1",
        )
    finally:
        store.close()


@pytest.fixture
def busy(repo: Path) -> Path:
    """A graph with a running node, a ready one and a waiting one; the index one commit behind."""
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    assert run_gitdag(repo, "add", "t1", "--title", "one").code == 0
    assert run_gitdag(repo, "add", "t2", "--title", "two", "--deps", "t1").code == 0
    assert run_gitdag(repo, "status").code == 0  # the index now matches the head
    _claim(repo, "plan-000")
    return repo


@pytest.mark.parametrize(
    ("args", "allowed"),
    [(["status"], ()), (["status", "--json"], ()), (["ready"], ()), (["show", "t1"], ()),
     (["show", "--json", "t1"], NO_MODELS)],
)  # fmt: skip
def test_the_fast_start_loads_neither_click_nor_the_models(
    busy: Path, args: list[str], allowed: tuple[str, ...]
) -> None:
    # status and ready read the summaries (and a running node's detail) from the caches,
    # including the one node the claim changed since the index was saved; show prints a file
    # gitdag wrote as it is stored, and with --json dumps the validated node (the models).
    proc = _run(busy, FAST_PROBE, *args)
    loaded = _loaded(proc)
    assert "gitdag.readonly" in loaded
    names = tuple(n for n in (*HEAVY, *NO_CLICK, *NO_MODELS) if n not in allowed)
    found = _heavy(loaded, names)
    assert found == [], f"gitdag {' '.join(args)} imported {found}"
    if args[0] == "status":
        assert "plan-000" in proc.stdout and "w1@host:1" in proc.stdout, proc.stdout
    if args[0] == "ready":
        assert proc.stdout.split() == ["t1"], proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["ready"],
        ["ready", "--json"],
        ["show", "t2"],
        ["show", "--json", "t2"],
        ["show", "nope"],
        ["-C", "sub", "status"],
        ["status", "--help"],
        ["status", "--bogus"],
        ["show"],
        ["ready", "extra"],
    ],
)
def test_the_fast_start_prints_what_click_prints(repo: Path, args: list[str]) -> None:
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    assert run_gitdag(repo, "add", "t1", "--title", "one").code == 0
    assert run_gitdag(repo, "add", "t2", "--title", "two", "--deps", "t1").code == 0
    (repo / "sub").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    fast = subprocess.run([sys.executable, "-m", "gitdag", *args], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    slow = _run(repo, CLICK, *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode, slow.stdout, slow.stderr
    )  # fmt: skip


def test_show_prints_a_stored_file_gitdag_wrote_as_the_codec_would(busy: Path) -> None:
    from gitdag.core import codec

    store = StateStore.open(busy)
    try:
        snap = store.snapshot()
        blob = snap.blobs["t1"]
        assert store.cache.is_canonical(blob)
        expected = codec.dump(store.node(snap, "t1"))
    finally:
        store.close()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    fast = subprocess.run([sys.executable, "-m", "gitdag", "show", "t1"], cwd=busy, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert fast.stdout == expected


def test_an_uninitialised_repository_gets_the_same_error(repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    fast = subprocess.run([sys.executable, "-m", "gitdag", "status"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    slow = _run(repo, CLICK, "status")
    assert fast.returncode == slow.returncode == 2
    assert fast.stderr == slow.stderr
    assert fast.stderr.startswith("gitdag: error: no dagain/state branch here")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["--version"],
        ["status", "--remote", "origin"],
        ["status", "--json", "--json"],
        ["show", "--json"],
        ["show", "a", "b"],
        ["show", "-x"],
        ["-C"],
        ["-C", "/no/such/dir", "status"],
        ["log"],
        ["ready", "-h"],
    ],
)
def test_the_fast_start_declines_what_it_does_not_parse(argv: list[str]) -> None:
    # Declined command lines go to click, which prints its help or its error as always.
    assert readonly.fast_main(argv) is None
