"""A group that cannot proceed says each cause once and is retried at a growing backoff."""

from __future__ import annotations

import io
import itertools
import time

from gitdag.attempts import group_waits
from gitdag.attempts.group_waits import GroupWaits
from gitdag.attempts.progress import Progress


def test_each_cause_is_said_once_and_the_retries_space_out_to_the_cap() -> None:
    out = io.StringIO()
    waits = GroupWaits(Progress(stream=out, live=False))
    assert waits.due("api")
    gaps = []
    for _ in range(8):
        before = time.monotonic()
        waits.wait("api", "unreachable", "group api: merge waits for the remote", error=False)
        assert not waits.due("api")
        gaps.append(waits._waits["api"].next_at - before)
    assert out.getvalue().count("merge waits for the remote") == 1
    assert gaps[0] >= group_waits.FIRST_S and gaps[1] >= 2 * group_waits.FIRST_S
    assert all(b >= a - 0.5 for a, b in itertools.pairwise(gaps))  # never shorter
    assert max(gaps) <= group_waits.MAX_S + 0.5
    waits.wait("api", "refused", "group api: the remote refused refs/heads/main: hook")
    assert out.getvalue().count("gitdag: group api: the remote refused") == 1  # a new cause
    waits.gone("api", "unreachable")
    waits.wait("api", "unreachable", "group api: merge waits for the remote", error=False)
    assert out.getvalue().count("merge waits for the remote") == 2  # it came back: said again
    waits.done("api")
    assert waits.due("api")  # landed or sent back: nothing holds it any more
