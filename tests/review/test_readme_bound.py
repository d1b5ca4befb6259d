"""The state-branch README carries a bounded sample of ids; its cost stays flat."""

from __future__ import annotations

from gitdag.core import readme
from gitdag.core.model import Status


def test_readme_data_stays_bounded_while_counts_stay_exact() -> None:
    data = readme.ReadmeData(None, {s.value: 0 for s in Status}, {})
    moves = [(f"n{i:04d}", None, Status.RUNNING) for i in range(500)]
    data = readme.update(data, moves, "base")
    assert data.counts["running"] == 500
    assert len(data.lists["running"]) == readme.SHOWN
    data = readme.update(
        data, [(f"n{i:04d}", Status.RUNNING, Status.DONE) for i in range(10)], "b2"
    )
    assert data.counts["running"] == 490 and data.counts["done"] == 10
    text = readme.render(data, goal="g", target="t", paused=False)
    assert "## Running (490)" in text
    assert f"… and {490 - len(data.lists['running'])} more" in text
    assert len(data.to_json()) < 2000


def test_held_merges_are_listed_bounded_and_leave_with_their_hold() -> None:
    import datetime as dt

    from gitdag.core.model import Hold, HoldKind, Kind, Node

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hold = Hold(kind=HoldKind.REF_REFUSED, reason="protected", repair="allow it", since=now)

    def merging(nid: str, held: bool) -> Node:
        return Node(id=nid, title=nid, kind=Kind.TASK, status=Status.MERGING,
                    created_at=now, updated_at=now, hold=hold if held else None)  # fmt: skip

    data = readme.ReadmeData(None, {s.value: 0 for s in Status}, {})
    data = readme.update_held(data, [merging(f"n{i:04d}", True) for i in range(200)], [])
    assert len(data.held) == readme.SHOWN and data.held_more  # bounded: no growth with nodes
    assert len(data.to_json()) < 4000
    text = readme.render(data, goal="g", target="t", paused=False)
    assert f"## Held for a repair ({readme.SHOWN} or more)" in text
    assert "n0000](nodes/" in text and ": ref_refused" in text
    data = readme.update_held(data, [merging("n0000", False)], ["n0001"])
    assert "n0000" not in data.held and "n0001" not in data.held
    parsed = readme.parse(readme.render(data, goal="g", target="t", paused=False))
    assert parsed is not None and parsed.held == data.held and parsed.held_more
