"""The batching merge queue's git work (workspace/batch.py): the serial queue's result, faster."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from gitdag.errors import WorkspaceError
from gitdag.workspace.batch import BatchResult, Entry, Probe, bounds, integrate_batch, plan_probes
from tests.conftest import git

from .helpers import TARGET, merge, rev, setup_repo, start_node

SERIAL = "serial/target"
# Fails when any tracked file says BROKEN: the culprit is the change that wrote it.
CHECK = "! git grep -q BROKEN HEAD --"


def decide(n: int, culprit: int, width: int) -> tuple[dict[Probe, bool], int]:
    """Run the planner against a single culprit (merge number `culprit`, 0 = none)."""
    known: dict[Probe, bool] = {}
    rounds = 0
    while probes := plan_probes(n, known, width):
        rounds += 1
        assert len(probes) <= width and rounds <= n + 1
        for p in probes:
            known[p] = culprit == 0 or (p.k == culprit if p.without else p.k < culprit)
    return known, rounds


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8])
def test_the_planner_finds_any_single_culprit_with_few_rounds(width: int) -> None:
    for n, culprit in itertools.chain.from_iterable(
        ((n, c) for c in range(n + 1)) for n in range(1, 13)
    ):
        known, rounds = decide(n, culprit, width)
        if culprit == 0:
            assert known[Probe(n)] and rounds == 1
            continue
        lo, hi = bounds(n, known)
        assert (lo, hi) == (culprit - 1, culprit)
        if width >= 4 and n <= 8:
            assert rounds <= 2, (n, culprit, known)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {f"m{i}.txt": f"line {i}\n" for i in range(8)}
    root = setup_repo(tmp_path / "repo", {"README.md": "# p\n", **files})
    git(root, "branch", SERIAL, TARGET)
    return root


def entries(ids: list[str]) -> list[Entry]:
    return [Entry(i, f"dagain/work/{i}", f"gitdag: integrate {i}") for i in ids]


def batch(
    root: Path, ids: list[str], *, check: str | None = CHECK, parallel: int = 1
) -> BatchResult:
    return integrate_batch(
        root, root / ".git", root / ".dagain" / "local", entries=entries(ids), target=TARGET,
        check_cmd=check, check_timeout_s=60, parallel=parallel,
    )  # fmt: skip


def serial(root: Path, ids: list[str], check: str | None = CHECK) -> dict[str, str]:
    return {i: merge(root, i, check=check, target=SERIAL).status for i in ids}


def make_changes(
    root: Path, n: int, culprit: int | None, conflict: tuple[int, int] | None = None
) -> list[str]:
    ids = [f"c{i}" for i in range(n)]
    for i, nid in enumerate(ids):
        name = f"m{i}.txt"
        text = f"line {i} changed\n" + ("BROKEN\n" if i == culprit else "")
        if conflict and i == conflict[1]:
            name, text = f"m{conflict[0]}.txt", "a colliding change\n"
        start_node(root, nid, {name: text})
    return ids


@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("culprit", [None, 0, 3, 5])
def test_a_batch_lands_what_the_serial_queue_lands(
    root: Path, culprit: int | None, parallel: int
) -> None:
    ids = make_changes(root, 6, culprit)
    tip = rev(root, TARGET)
    result = batch(root, ids, parallel=parallel)
    expected = serial(root, ids)
    for node_id, decided in result.results.items():
        assert decided.status == expected[node_id]
    assert all(expected[node_id] == "merged" for node_id in result.pending)
    if result.pending:  # the rest waits for the next batch: land it, as the serial queue did
        again = batch(root, list(result.pending), parallel=parallel)
        assert all(r.status == "merged" for r in again.results.values())
    assert rev(root, f"{TARGET}^{{tree}}") == rev(root, f"{SERIAL}^{{tree}}")
    first_parents = git(root, "log", "--first-parent", "--format=%s", f"{tip}..{TARGET}")
    first_parents = first_parents.splitlines()
    landed = [i for i in ids if expected[i] == "merged"]
    assert sorted(s.removeprefix("gitdag: integrate ") for s in first_parents if s) == sorted(
        landed
    )
    if culprit is not None:
        failed = result.results[ids[culprit]]
        assert failed.status == "check_failed" and failed.check_log is not None
        assert failed.check_log.name == f"{ids[culprit]}.log"
    if culprit is None:
        assert result.checks == 1 or parallel > 1
        # one compare-and-swap: one reflog entry for the whole batch
        assert len(git(root, "reflog", "--format=%gs", TARGET).splitlines()) == 2


def test_a_conflict_in_a_batch_is_met_where_the_serial_queue_meets_it(root: Path) -> None:
    ids = make_changes(root, 4, None, conflict=(1, 2))
    result = batch(root, ids)
    expected = serial(root, ids)
    assert {k: v.status for k, v in result.results.items()} == expected
    assert expected["c2"] == "conflict" and result.results["c2"].paths == ("m1.txt",)
    assert rev(root, f"{TARGET}^{{tree}}") == rev(root, f"{SERIAL}^{{tree}}")


def test_without_a_check_every_clean_merge_lands_in_one_move(root: Path) -> None:
    ids = make_changes(root, 5, None)
    result = batch(root, ids, check=None)
    assert [r.status for r in result.results.values()] == ["merged"] * 5
    assert result.landed == rev(root, TARGET) and result.checks == 0
    merges = [r.merged for r in result.results.values()]
    assert (
        git(root, "rev-list", "--first-parent", f"{merges[0]}^..{TARGET}").split() == merges[::-1]
    )


def test_branches_already_on_the_target_are_found_once(root: Path) -> None:
    ids = make_changes(root, 3, None)
    first = batch(root, ids, check=None)
    again = batch(root, ids, check=None)
    assert [r.status for r in again.results.values()] == ["already_merged"] * 3
    assert [r.merged for r in again.results.values()] == [r.merged for r in first.results.values()]


def test_a_later_branch_gone_waits_and_the_rest_lands(root: Path) -> None:
    ids = make_changes(root, 4, None)
    git(root, "update-ref", "-d", "refs/heads/dagain/work/c2")
    result = batch(root, ids, check=None)
    assert [r.status for r in result.results.values()] == ["merged", "merged"]
    assert result.pending == ("c2", "c3")  # c2's own trouble is raised when it leads a batch
    with pytest.raises(WorkspaceError, match="dagain/work/c2 does not exist"):
        batch(root, list(result.pending), check=None)


def test_a_cancel_during_the_check_abandons_the_batch_untouched(root: Path, tmp_path: Path) -> None:
    ids = make_changes(root, 3, None)
    tip = rev(root, TARGET)
    flag = tmp_path / "cancelled"
    start = time.monotonic()
    result = integrate_batch(
        root, root / ".git", root / ".dagain" / "local", entries=entries(ids), target=TARGET,
        check_cmd=f"touch {flag}; sleep 30", check_timeout_s=60, cancelled=flag.exists,
    )  # fmt: skip
    assert time.monotonic() - start < 25  # the check was stopped, not waited out
    assert [r.status for r in result.results.values()] == ["abandoned"] * 3
    assert rev(root, TARGET) == tip and result.landed is None
