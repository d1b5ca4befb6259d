"""Leases across machines: renewal while a runner works, reclaim after a kill -9, fencing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from gitdag.core.model import Status, Work
from gitdag.core.transitions import Rejected, parse_trailers
from gitdag.transport.outcomes import RefPush
from tests.conftest import git
from tests.remote.conftest import (
    Daemon,
    build_cluster,
    finish,
    task,
    wait_for,
)
from tests.remote.helpers import replay_renewal, replay_result


def transitions(bare: Path) -> list[tuple[int, str, dict[str, list[str]]]]:
    """(commit time, subject, trailers) of each remote state commit, oldest first."""
    out = git(bare, "log", "--reverse", "--format=%ct%x01%B%x00", "dagain/state")
    found = []
    for entry in out.split("\0"):
        if "\x01" not in entry:
            continue
        stamp, _, body = entry.strip("\n").partition("\x01")
        found.append((int(stamp), body.splitlines()[0], parse_trailers(body)))
    return found


def test_lease_renewed_then_killed_worker_reclaimed_and_fenced(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("slow")], lease=5)
    victim, rescuer = cluster.clone("victim"), cluster.clone("rescuer")
    try:
        a = cluster.work(victim, "--idle-exit", "60", SLOW_NODE="slow")
        wait_for(lambda: ("slow", 1) in [(r[0], r[1]) for r in cluster.rows()], 30, "attempt 1")
        # The rescuer watches from the start: while the victim renews, it must not step in.
        b = cluster.work(rescuer, "--idle-exit", "60", SLOW_NODE="slow")
        wait_for(lambda: renewals(cluster.bare) >= 1, 30, "a lease renewal")
        node = cluster.nodes()["slow"]
        assert node.status is Status.RUNNING and node.attempts == 1
        os.kill(a.pid, signal.SIGKILL)  # mid-node: its runner is still sleeping
        a.wait()
        claimed = cluster.nodes()["slow"].claim
        code, err = finish(b, timeout=60)
        assert code == 0, err
    finally:
        cluster.stop_all()
    node = cluster.nodes()["slow"]
    assert node.status is Status.DONE and node.attempts == 2
    runs = [(r[0], r[1], r[3]) for r in cluster.rows()]
    assert runs == [("slow", 1, str(victim)), ("slow", 2, str(rescuer))]
    # Renewals are few and small: about one per half lease while the victim lived.
    assert 1 <= renewals(cluster.bare) <= 3
    # The rescuer reopened the node only after the last renewed lease (and the grace) ran out.
    history = transitions(cluster.bare)
    reopened = [t for t, s, _ in history if s.startswith("lease slow: running -> open")]
    assert len(reopened) == 1
    assert reopened[0] >= int(claimed.lease_until.timestamp()) + 2
    # The killed worker's late result and lease renewal are rejected: nothing is written.
    head = cluster.state_head()
    late = replay_result(victim, "slow", 1, work=Work(branch="dagain/work/slow", head=head))
    assert isinstance(late, Rejected)
    assert "superseded" in str(late) or "not running" in str(late)
    assert isinstance(replay_renewal(victim, "slow", 1), Rejected)
    assert cluster.state_head() == head
    # ... even when it comes with its branch: the branch is not pushed either (atomic push).
    work = Work(branch="dagain/work/slow", head=head)
    fenced = replay_result(victim, "slow", 1, work=work,
                           refs=[RefPush(head, "refs/heads/dagain/work/slow-late")])  # fmt: skip
    assert isinstance(fenced, Rejected)
    assert cluster.remote_git("branch", "--list", "dagain/work/slow-late") == ""
    # Every transition on the remote (claims, renewals, the reclaim, the merge) is legal.
    git(rescuer, "fetch", "-q", "origin")
    res = cluster.gitdag(rescuer, "validate", "..origin/dagain/state")
    assert res.code == 0, res.out + res.err


def renewals(bare: Path) -> int:
    return sum(1 for _, s, tr in transitions(bare)
               if s == "lease slow" and tr.get("Gitdag-Transition") == ["lease"])  # fmt: skip
