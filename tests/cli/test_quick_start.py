"""The quick start of a warm `status` / `ready`: the kept report, read without the store.

After one status at a head, the next `python -m gitdag status` (or `ready`) at the same head
reads the state ref from the repository's files and prints the report kept for it
(store/reportcache.py): no dulwich, no index, no models. It must print what click prints, never
a stale graph, and decline to the store path for anything it does not read (issue 18 part 5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitdag.store.state import StateStore
from tests.cli.test_fast_start import CLICK, _claim, _loaded
from tests.conftest import REPO_ROOT, git, run_gitdag

# What a quick status or ready never loads.
STORE = ("dulwich", "gitdag.store.state", "gitdag.store.snapshot", "gitdag.actions",
         "gitdag.core.summary", "pydantic", "click", "pickle", "sqlite3")  # fmt: skip
# The real entry (`python -m gitdag`), its exit code kept, the modules it loaded on stderr.
FAST_PROBE = """
import json, sys
from gitdag.__main__ import main
sys.argv = ["gitdag", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
REPORT = Path(".dagain/local/cache/report-refs_heads_dagain_state.marshal")


def _gitdag(cwd: Path, code: str, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    full = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=full,
                          capture_output=True, text=True, check=False)  # fmt: skip


def _store_modules(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m in STORE or m.startswith(tuple(f"{n}." for n in STORE)))


def _warm(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    """Run `python -m gitdag status`: it keeps the report (click's status does not)."""
    proc = _gitdag(cwd, FAST_PROBE, *args, "status", env=env)
    assert proc.returncode == 0, proc.stderr


def _same_as_click(cwd: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    """Run the real entry and click's path; assert equal output and code; the entry's modules."""
    slow = _gitdag(cwd, CLICK, *args, env=env)
    fast = _gitdag(cwd, FAST_PROBE, *args, env=env)
    loaded = _loaded(fast)
    err = "\n".join(fast.stderr.splitlines()[:-1])  # the last line is the probe's module list
    err = err + "\n" if err else ""
    assert (fast.returncode, fast.stdout, err) == (slow.returncode, slow.stdout, slow.stderr)
    return loaded


@pytest.fixture
def graph(repo: Path) -> Path:
    """A graph with ready, waiting and blocked nodes, and no running one (no elapsed times)."""
    assert run_gitdag(repo, "init", "--goal", "ship it").code == 0
    assert run_gitdag(repo, "add", "t1", "--title", "one").code == 0
    assert run_gitdag(repo, "add", "t2", "--title", "two", "--deps", "t1").code == 0
    assert run_gitdag(repo, "add", "t3", "--title", "three", "--after", "t2").code == 0
    return repo


ARGS = [["status"], ["status", "--json"], ["ready"], ["ready", "--json"]]


@pytest.mark.parametrize("args", ARGS)
def test_a_warm_status_or_ready_prints_the_kept_report_without_the_store(
    graph: Path, args: list[str]
) -> None:
    _warm(graph)
    first = _same_as_click(graph, *args)
    assert (graph / REPORT).is_file()
    assert _store_modules(first) == [], f"gitdag {' '.join(args)} loaded {_store_modules(first)}"


@pytest.mark.parametrize("shape", ["packed", "state only packed", "worktree", "-C"])
def test_the_quick_start_reads_packed_refs_worktrees_and_other_directories(
    graph: Path, shape: str
) -> None:
    cwd, prefix = graph, []
    if shape in ("packed", "state only packed"):
        git(graph, "pack-refs", "--all")
        assert not (graph / ".git/refs/heads/dagain/state").exists()
        if shape == "state only packed":
            git(graph, "tag", "-a", "v1", "-m", "peeled line in packed-refs")
            git(graph, "pack-refs", "--all")
            assert "^" in (graph / ".git/packed-refs").read_text()
    elif shape == "worktree":
        git(graph, "worktree", "add", "-q", str(graph.parent / "wt"), "-b", "side")
        cwd = graph.parent / "wt"
    else:
        (graph / "sub").mkdir()
        cwd, prefix = graph.parent, ["-C", str(graph / "sub")]
    _warm(cwd, *prefix)
    for args in (["status"], ["ready"]):
        loaded = _same_as_click(cwd, *prefix, *args)
        assert _store_modules(loaded) == [], f"{shape}: loaded {_store_modules(loaded)}"


def test_a_status_after_the_head_moved_shows_the_new_graph(graph: Path) -> None:
    _warm(graph)
    assert _store_modules(_same_as_click(graph, "status")) == []
    before = git(graph, "rev-parse", "dagain/state").strip()
    assert run_gitdag(graph, "add", "t4", "--title", "four").code == 0
    fast = _gitdag(graph, FAST_PROBE, "status")
    assert "4 nodes" not in fast.stdout and "5 nodes:" in fast.stdout, fast.stdout
    assert "gitdag.store.state" in _loaded(fast)  # the kept report was another head's
    # Moved back by hand (a reset): the report kept for the newer head is not the graph.
    _warm(graph)
    assert _store_modules(_same_as_click(graph, "status")) == []
    git(graph, "update-ref", "refs/heads/dagain/state", before)
    fast = _gitdag(graph, FAST_PROBE, "ready", "--json")
    assert "gitdag.store.state" in _loaded(fast)
    assert json.loads(fast.stdout) == ["plan-000", "t1"]
    fast = _gitdag(graph, FAST_PROBE, "status", "--json")
    assert json.loads(fast.stdout)["total"] == 4 and "t4" not in fast.stdout
    _same_as_click(graph, "status")


def test_running_attempts_get_their_elapsed_time_now(graph: Path) -> None:
    _claim(graph, "plan-000")
    _warm(graph)
    fast = _gitdag(graph, FAST_PROBE, "status", "--json")
    assert _store_modules(_loaded(fast)) == []
    slow = _gitdag(graph, CLICK, "status", "--json")
    quick, full = json.loads(fast.stdout), json.loads(slow.stdout)
    [q_run], [f_run] = quick.pop("running"), full.pop("running")
    assert quick == full
    assert abs(q_run.pop("elapsed_s") - f_run.pop("elapsed_s")) <= 5  # seconds apart at most
    assert q_run == f_run and q_run["worker"] == "w1@host:1"


@pytest.mark.parametrize("case", ["proposal branch", "GIT_DIR", "config include", "bad report",
                                  "foreign index and report", "remote in config.yaml"])  # fmt: skip
def test_what_the_quick_start_does_not_read_goes_through_the_store(graph: Path, case: str) -> None:
    _warm(graph)
    env = None
    if case == "proposal branch":
        git(graph, "branch", "dagain/proposals/p1", "dagain/state")
    elif case == "GIT_DIR":
        env = {"GIT_DIR": str(graph / ".git")}
    elif case == "config include":
        git(graph, "config", "include.path", "nowhere.cfg")
    elif case == "bad report":
        (graph / REPORT).write_bytes(b"\x00not marshal")
    elif case == "foreign index and report":
        for path in (graph / ".dagain/local/cache").glob("*"):
            if path.suffix in (".pickle", ".marshal"):
                path.write_bytes(b"\x80\x05K\x01.")  # a valid pickle of the number 1
    else:
        (graph / ".dagain/config.yaml").write_text("remote_docs: none\n")
    # A status through the store keeps a fresh report, which `ready` (that needs neither the
    # remote nor the proposals) may then use: it must print the same as click either way.
    declined = _same_as_click(graph, "status", env=env)
    assert "gitdag.store.state" in declined, f"{case}: status did not use the store"
    loaded = _same_as_click(graph, "ready", env=env)
    if case in ("GIT_DIR", "config include"):
        assert "gitdag.store.state" in loaded, f"{case}: ready did not use the store"


def test_the_kept_report_is_another_heads_after_a_store_write(graph: Path) -> None:
    # A store write (the supervisor's, in-process) never touches the report: the ref decides.
    _warm(graph)
    _claim(graph, "plan-000")
    store = StateStore.open(graph)
    try:
        head = store.head()
    finally:
        store.close()
    fast = _gitdag(graph, FAST_PROBE, "status", "--json")
    assert json.loads(fast.stdout)["head"] == head
    assert "gitdag.store.state" in _loaded(fast)


SHOW_STORE = ("gitdag.store.state", "dulwich.repo", "pydantic", "click", "gitdag.core.model")


def _show_store(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m in SHOW_STORE or m.startswith("pydantic."))


@pytest.mark.parametrize("packed", [False, True])
def test_show_of_a_file_gitdag_wrote_reads_no_store(graph: Path, packed: bool) -> None:
    _warm(graph)  # a status read this head without a problem: show may trust it
    if packed:
        git(graph, "gc", "-q")  # trees and blobs in a pack: dulwich's object store reads them
        assert not any((graph / ".git/objects").glob("??/*"))
    (graph / ".dagain/local/runs/t2/1").mkdir(parents=True)  # a run directory it names
    for args in (["show", "t1"], ["show", "t2"], ["-C", "sub", "show", "t3"]):
        (graph / "sub").mkdir(exist_ok=True)
        loaded = _same_as_click(graph, *args)
        assert _show_store(loaded) == [], f"{args} loaded {_show_store(loaded)}"
        if not packed:
            assert "dulwich" not in loaded, args
    assert "gitdag.store.state" in _same_as_click(graph, "show", "nope")  # the store says so


def test_show_of_a_node_with_attempts_walks_the_history_without_the_store(graph: Path) -> None:
    _claim(graph, "plan-000")
    _warm(graph)
    fast = _gitdag(graph, FAST_PROBE, "show", "plan-000")
    slow = _gitdag(graph, CLICK, "show", "plan-000")
    assert _show_store(_loaded(fast)) == []

    def steady(text: str) -> list[str]:  # the running attempt's length moves with the clock
        moving = ("# attempts", "# total")
        return [line for line in text.splitlines() if not line.startswith(moving)]

    assert steady(fast.stdout) == steady(slow.stdout) and "# attempts: 1 running" in fast.stdout


def test_show_without_a_checked_head_reads_the_store(graph: Path) -> None:
    _warm(graph)
    assert run_gitdag(graph, "add", "t4", "--title", "four").code == 0  # the report is older
    loaded = _same_as_click(graph, "show", "t4")
    assert "gitdag.store.state" in loaded
