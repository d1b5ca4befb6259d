"""Steering the remote graph from a laptop: each command is one compare-and-swap push.

Against the real smart-HTTP server (`git http-backend` with basic auth) and git daemon on
127.0.0.1 (tests/remote/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from gitdag.core import edits
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.remote.steer import steering
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed
from tests.conftest import git
from tests.remote.conftest import Cluster, Daemon, build_cluster, command, finish, task, wait_for


def laptop(cluster: Cluster, name: str = "laptop") -> Path:
    """A clone with a local dagain/state, as a person's machine has after a fetch."""
    path = cluster.clone(name)
    git(path, "fetch", "-q", "origin", "dagain/state:dagain/state")
    return path


def remote_commits(cluster: Cluster, since: str) -> list[str]:
    """Titles of the remote's state commits after `since`, oldest first."""
    out = cluster.remote_git("log", "--reverse", "--format=%s", f"{since}..dagain/state")
    return out.splitlines()


def local_equals_remote(cluster: Cluster, clone: Path) -> bool:
    head = cluster.state_head()
    return (
        git(clone, "rev-parse", "dagain/state").strip() == head
        and git(clone, "rev-parse", "refs/remotes/origin/dagain/state").strip() == head
        and git(clone, "rev-parse", "refs/gitdag/remotes/origin/state").strip() == head
    )


@pytest.mark.parametrize("serve", ["http", "daemon"])
def test_each_steering_command_lands_one_commit(tmp_path: Path, daemons: list[Daemon],
                                                serve: str) -> None:  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b", deps=["a"])], serve=serve)
    lap = laptop(cluster)
    steps = [
        (["add", "c", "--title", "C"], "add c"),
        (["pause"], "pause"),
        (["resume"], "resume"),
        (["cancel", "b"], "cancel b: open -> cancelled"),
        (["retry", "b"], "retry b: cancelled -> open"),
        (["revert", "dagain/state"], "revert"),
        (["reset", "--to", "dagain/state~3"], "reset"),
    ]
    for args, title in steps:
        before = cluster.state_head()
        res = cluster.gitdag(lap, *args, "--remote", "origin")
        assert res.code == 0, (args, res.err)
        titles = remote_commits(cluster, before)
        assert len(titles) == 1 and titles[0].startswith(title), (args, titles)
        assert local_equals_remote(cluster, lap), args
    nodes = cluster.nodes()
    assert nodes["c"].status is Status.OPEN and nodes["b"].status is Status.OPEN
    assert not git(cluster.bare, "show", "dagain/state:graph.yaml").count("paused: true")
    # A proposal: its branch is pushed (one push, no state commit), applied from another clone.
    before = cluster.state_head()
    res = cluster.gitdag(lap, "propose", "p1", "--add", "d", "--title", "D", "--remote", "origin")
    assert res.code == 0, res.err
    assert "pushed to origin" in res.out
    assert cluster.state_head() == before
    assert cluster.remote_git("rev-parse", "dagain/proposals/p1").strip()
    other = cluster.clone("reviewer")
    res = cluster.gitdag(other, "apply-proposal", "p1", "--remote", "origin")
    assert res.code == 0, res.err
    assert [t.split(":")[0] for t in remote_commits(cluster, before)] == ["edit d"]
    assert "d" in cluster.nodes()
    # The reviewer's clone had no local dagain/state: it now has the remote's.
    assert local_equals_remote(cluster, other)
    validate = cluster.gitdag(other, "validate", "..dagain/state")
    assert validate.code == 0, validate.out + validate.err


def test_bad_input_and_unreachable_remote_push_nothing(tmp_path: Path,
                                                       daemons: list[Daemon]) -> None:  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    lap = laptop(cluster)
    head = cluster.state_head()
    for args, said in (
        (["cancel", "nope"], "unknown node 'nope'"),
        (["add", "a", "--title", "again"], "a"),
        (["answer", "a", "yes"], "a"),
        (["retry", "a"], "a"),
        (["add", "x", "--title", "X", "--deps", "ghost"], "ghost"),
    ):
        res = cluster.gitdag(lap, *args, "--remote", "origin")
        assert res.code == 2, (args, res.out, res.err)
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gitdag: error:") and said in lines[0]
        assert cluster.state_head() == head
    res = cluster.gitdag(lap, "cancel", "a", "--remote", "origin", "--local")
    assert res.code == 2 and "not both" in res.err
    res = cluster.gitdag(lap, "cancel", "a", "--remote", "nosuch")
    assert res.code == 2 and "no git remote named 'nosuch'" in res.err
    # The server is gone: one line, exit 2, nothing changed here.
    daemons[0].stop()
    local = git(lap, "rev-parse", "dagain/state").strip()
    started = time.monotonic()
    res = cluster.gitdag(lap, "cancel", "a", "--remote", "origin")
    assert res.code == 2, res.err
    assert len(res.err.strip().splitlines()) == 1 and "origin" in res.err
    assert time.monotonic() - started < 40  # remote.retry_for_s is 3 in the test config
    assert git(lap, "rev-parse", "dagain/state").strip() == local


def test_a_lost_race_with_a_worker_push_is_recomputed(tmp_path: Path,
                                                      daemons: list[Daemon]) -> None:  # fmt: skip
    """The first push of a steering command loses to a concurrent push: recomputed, one commit."""
    cluster = build_cluster(tmp_path, daemons, [task("a"), task("b")], serve="http")
    lap, ci = laptop(cluster), cluster.clone("ci")
    calls: list[str | None] = []
    before = cluster.state_head()

    def compute(snap: Snapshot, now: dt.datetime) -> Transition | Rejected:
        calls.append(snap.head)
        if len(calls) == 1:  # a worker runs a node between our fetch and our push
            proc = finish(cluster.work(ci, "--max-nodes", "1"))
            assert proc[0] == 0, proc[1]
        return edits.add_transition(snap.nodes, {"id": "c", "title": "C"}, now)

    with steering(lap, "origin") as store:
        outcome = store.transact(compute, actor="person <p@example.com>")
    assert isinstance(outcome, Committed) and outcome.tries == 2
    assert len(calls) == 2 and calls[0] == before and calls[1] != before
    titles = remote_commits(cluster, before)
    assert titles[-1].startswith("add c") and sum(t.startswith("add c") for t in titles) == 1
    assert any(t.startswith("claim ") for t in titles[:-1])  # the worker's pushes were kept
    assert local_equals_remote(cluster, lap)


def test_steering_while_a_worker_runs_lands_every_command_once(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command(f"n{i}", log) for i in range(8)],
                            serve="http")  # fmt: skip
    lap, ci = laptop(cluster), cluster.clone("ci")
    worker = cluster.work(ci, "--workers", "2", "--idle-exit", "5")
    try:
        for i in range(5):
            res = cluster.gitdag(lap, "add", f"late{i}", "--title", "late", "--kind", "command",
                                 "--run", "true", "--remote", "origin")  # fmt: skip
            assert res.code == 0, res.err
        code, err = finish(worker, timeout=120)
        assert code == 0, err
        code, err = finish(cluster.work(ci))  # what was added after it stopped, if anything
        assert code == 0, err
    finally:
        cluster.stop_all()
    titles = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    for i in range(5):
        assert sum(t.startswith(f"add late{i}:") for t in titles) == 1
    assert {n.status for n in cluster.nodes().values()} == {Status.DONE}


def test_cancel_remote_stops_a_remote_workers_runner_within_one_renewal(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    lease = 30
    cluster = build_cluster(tmp_path, daemons, [task("slow")], lease=lease, serve="http")
    lap, ci = laptop(cluster), cluster.clone("ci")
    worker = cluster.work(ci, "--idle-exit", "3", SLOW_NODE="slow", SLOW_SECONDS="120")
    try:
        wait_for(lambda: [r[0] for r in cluster.rows()] == ["slow"], 60, "the slow runner")
        pid = cluster.rows()[0][2]
        started = time.monotonic()
        res = cluster.gitdag(lap, "cancel", "slow", "--remote", "origin")
        assert res.code == 0, res.err

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, lease / 2, "the runner to be stopped")
        stopped_after = time.monotonic() - started
        code, err = finish(worker, timeout=60)
    finally:
        cluster.stop_all()
    assert stopped_after < lease / 2  # before the worker's first renewal would be due
    assert code in (0, 1), err  # 1: nothing more can run (the only node is cancelled)
    assert "stopping slow" in err
    node = cluster.nodes()["slow"]
    assert node.status is Status.CANCELLED and node.attempts == 1
    titles = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    assert not any(t.startswith("lease slow") for t in titles)  # no renewal was needed


def test_answer_remote_finishes_a_checkpoint_a_worker_reached(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    q = {"id": "q", "title": "Ship it?", "kind": "checkpoint", "description": "Ship it?"}
    cluster = build_cluster(tmp_path, daemons, [q, task("after", deps=["q"])], serve="daemon")
    lap, ci = laptop(cluster), cluster.clone("ci")
    code, err = finish(cluster.work(ci))
    assert code == 1, err  # waits for a human
    assert cluster.nodes()["q"].status is Status.NEEDS_HUMAN
    before = cluster.state_head()
    res = cluster.gitdag(lap, "answer", "q", "yes", "--remote", "origin", "--json")
    assert res.code == 0, res.err
    titles = remote_commits(cluster, before)
    assert len(titles) == 1 and titles[0].startswith("answer q")
    assert cluster.nodes()["q"].status is Status.DONE
    assert local_equals_remote(cluster, lap)
    code, err = finish(cluster.work(ci))
    assert code == 0, err
    assert cluster.nodes()["after"].status is Status.DONE
