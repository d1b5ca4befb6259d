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
