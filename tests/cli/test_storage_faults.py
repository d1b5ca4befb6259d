"""A full disk or a read-only repository: one line naming the path, exit 2, nothing half written.

Tests run as root, so `chmod` stops nothing: the full disk comes from the fault seam in the one
place objects and refs are written (`GITDAG_FAULT_AT`, gitdag/crash.py), the read-only repository
from a read-only bind mount when the machine allows mounting.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Result, git, make_repo, run_gitdag

COMMANDS = [
    ["add", "x", "--title", "t"],
    ["answer", "q", "yes"],
    ["cancel", "a"],
    ["pause"],
    ["retry", "a"],
    ["reset", "--to", "dagain/state~1"],
]


def one_line(r: Result, path_part: str) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert path_part in lines[0], lines[0]
    return lines[0]


def snapshot(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "a").code == 0
    assert run_gitdag(repo, "add", "q", "--title", "q?", "--kind", "checkpoint").code == 0
    return repo


@pytest.mark.parametrize(
    ("point", "shown"), [("store.write_object", "objects"), ("store.write_ref", "dagain/state")]
)
@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_commands_on_a_full_or_read_only_store(
    graph: Path, point: str, shown: str, errno_name: str
) -> None:
    before = snapshot(graph)
    for args in COMMANDS:
        r = run_gitdag(graph, *args, env={"GITDAG_FAULT_AT": f"{point}:{errno_name}"})
        if r.code == 2 and "nothing was changed" not in r.err:
            continue  # refused for its own reason before writing (e.g. retry of an open node)
        line = one_line(r, shown)
        assert ("No space left" if errno_name == "ENOSPC" else "Read-only") in line
        assert snapshot(graph) == before, args
    assert run_gitdag(graph, "validate").code == 0


@pytest.mark.parametrize("point", ["store.write_object", "store.write_ref"])
def test_init_on_a_full_disk_writes_nothing(tmp_path: Path, point: str) -> None:
    repo = make_repo(tmp_path / "repo")
    before = snapshot(repo)
    one_line(run_gitdag(repo, "init", env={"GITDAG_FAULT_AT": point}), "No space left")
    assert snapshot(repo) == before
    assert not (repo / ".dagain").exists()


@pytest.fixture
def read_only(graph: Path, tmp_path: Path) -> Iterator[Path]:
    view = tmp_path / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(graph), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("this machine does not allow bind mounts")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip("this machine does not allow read-only remounts")
        yield view
    finally:
        # Lazy: this process may still hold a file of the view open (in-process CLI calls).
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_repository(graph: Path, read_only: Path) -> None:
    before = snapshot(graph)
    for args in (["add", "x", "--title", "t"], ["pause"], ["cancel", "a"]):
        one_line(run_gitdag(read_only, *args), "Read-only file system")
    assert snapshot(graph) == before
    assert run_gitdag(read_only, "status").code in (0, 2)  # reading needs no writes, or says why
