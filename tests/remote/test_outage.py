"""A worker whose remote does not answer keeps its loop turning, and stops at once when told.

Against the real smart-HTTP server (tests/remote/httpd.py), stopped for a while, or behind a
relay that stops answering (connections accepted, nothing sent back: a remote call hangs).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitdag.transport.outcomes import Failure
from gitdag.transport.retry import Retry, Unreachable
from tests.remote.conftest import Daemon, build_cluster, finish, task, wait_for
from tests.remote.relay import Relay, relayed
from tests.timing import within


def test_a_cap_bounds_one_call_tighter_than_retry_for_s() -> None:
    """A worker's cap (remote/link.py): 2 s of retries instead of 60; 0 tries once."""
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    def down() -> None:
        raise Unreachable("Connection refused", Failure.TRANSIENT)

    retry = Retry(retry_for_s=60, sleep=sleep, clock=lambda: now[0], cap=lambda: 2.0)
    with pytest.raises(Unreachable):
        retry.run(down)
    assert 0.0 < now[0] <= 2.0 and retry.limit == 2.0 and retry.calls == 0
    tries = 0

    def counted() -> None:
        nonlocal tries
        tries += 1
        down()

    retry.cap = lambda: 0.0
    with pytest.raises(Unreachable):
        retry.run(counted)
    assert tries == 1


def _retry_for(clone: Path, seconds: int) -> None:
    config = clone / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace("retry_for_s: 3", f"retry_for_s: {seconds}"))


def test_a_result_finished_during_an_outage_is_journaled_then_lands(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """2 slots, the server stopped while both run: the quick one's result is kept in the journal
    while the server is down (the file appears, and the line says so before it answers again),
    the slow one goes on running, and both land once afterwards, at their first attempt."""
    cluster = build_cluster(tmp_path, daemons, [task("quick"), task("slow")], serve="http")
    server = daemons[-1]
    clone = cluster.clone("w0")
    _retry_for(clone, 120)
    worker = cluster.work(clone, "--workers", "2", EVERY_SECONDS="2", SLOW_NODE="slow",
                          SLOW_SECONDS="14")  # fmt: skip
    try:
        wait_for(lambda: len(cluster.rows()) >= 2, within(30), "both nodes to start")
        server.stop()
        down = time.monotonic()
        kept = clone / ".dagain" / "local" / "pending" / "quick.json"
        wait_for(kept.exists, within(10), "the quick result to be journaled during the outage")
        assert worker.poll() is None
        while time.monotonic() - down < 10:  # a ten-second outage
            assert worker.poll() is None
            time.sleep(0.2)
        server.restart()
        code, err = finish(worker, timeout=within(60))
    finally:
        cluster.stop_all()
    assert code == 0, err
    kept_line = err.index("quick: result of attempt 1 kept in .dagain/local/pending/")
    assert kept_line < err.index("remote origin answers again"), err
    assert "the runners go on" in err and "gave up" not in err
    nodes = cluster.nodes()
    assert {n.status.value for n in nodes.values()} == {"done"}, nodes
    assert all(n.attempts == 1 for n in nodes.values())
    assert sorted((r[0], r[1]) for r in cluster.rows()) == [("quick", 1), ("slow", 1)]
    assert not list((clone / ".dagain" / "local" / "pending").glob("*.json"))
    history = cluster.remote_git("log", "--format=%B", "dagain/state")
    assert "lease expired" not in history and "given back" not in history


def test_a_worker_gives_up_once_nothing_of_its_own_runs(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Down past `remote.retry_for_s` with no runner left: exit 2, the result kept for later."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    server = daemons[-1]
    clone = cluster.clone("w0")
    _retry_for(clone, 2)
    worker = cluster.work(clone, EVERY_SECONDS="3")
    try:
        wait_for(lambda: len(cluster.rows()) >= 1, within(30), "the node to start")
        server.stop()
        code, err = finish(worker, timeout=within(30))
    finally:
        cluster.stop_all()
    assert code == 2, err
    assert "gave up after 2 s (remote.retry_for_s)" in err, err
    assert (clone / ".dagain" / "local" / "pending" / "a.json").exists()
    # The next worker in this clone pushes it, without running the agent again.
    server.restart()
    again = cluster.work(clone)
    code, err = finish(again, timeout=within(60))
    assert code == 0, err
    assert "a: pushing the kept result of attempt 1 again" in err
    assert cluster.nodes()["a"].status.value == "done"
    assert [r[0] for r in cluster.rows()] == ["a"]


def test_ctrl_c_inside_a_hanging_remote_call(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The remote accepts and never answers: SIGINT stops the worker, exit 130, within seconds."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    server = daemons[-1]
    relay = Relay(server.port)
    clone = cluster.clone("w0")
    relayed(clone, server, relay)
    _retry_for(clone, 600)
    worker = cluster.work(clone, SLOW_NODE="a", SLOW_SECONDS="120")
    try:
        wait_for(lambda: len(cluster.rows()) >= 1, within(30), "the node to start")
        relay.hang.set()
        time.sleep(1.5)  # the worker's next look at the remote hangs
        assert worker.poll() is None
        began = time.monotonic()
        worker.send_signal(signal.SIGINT)
        code, err = finish(worker, timeout=within(10) + 5)
        took = time.monotonic() - began
    finally:
        relay.close()
        cluster.stop_all()
    assert code == 130, err
    assert took < within(10), (took, err)
    assert "SIGINT: stopping runners" in err, err
    # The runner was stopped; its node could not be given back (the remote hangs): it says so.
    assert "not given back" in err, err


def test_run_watch_stops_on_sigterm_while_the_remote_is_down(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """`gitdag run --watch` with a remote, the server stopped: SIGTERM -> 130 within seconds."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    server = daemons[-1]
    clone = cluster.clone("w0")
    _retry_for(clone, 600)
    subprocess.run(["git", "fetch", "-q", "origin", "dagain/state:dagain/state"], cwd=clone,
                   check=True)  # fmt: skip
    subprocess.run(["git", "branch", "-q", "--set-upstream-to=origin/dagain/state",
                    "dagain/state"], cwd=clone, check=True)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "gitdag", "run", "--watch"], cwd=clone,
                            env=cluster.env(SLOW_NODE="a", SLOW_SECONDS="120"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    cluster.procs.append(proc)
    try:
        wait_for(lambda: len(cluster.rows()) >= 1, within(30), "the node to start")
        server.stop()
        time.sleep(3)  # the worker finds the remote down
        assert proc.poll() is None
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc, timeout=within(10) + 5)
        took = time.monotonic() - began
    finally:
        cluster.stop_all()
    assert code == 130, err
    assert took < within(10), (took, err)
    assert "not synced" in err, err


def test_a_failure_during_an_outage_is_journaled_then_lands(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A runner that fails while the server is down: its failure waits in the journal too."""
    log = tmp_path / "runs.log"
    run = f'echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT $$ $GITDAG_REPO" >> {log}; sleep 2; exit 3'
    bad = {"id": "bad", "title": "bad", "kind": "command", "run": run}
    cluster = build_cluster(tmp_path, daemons, [bad], serve="http", backoff=600)
    server = daemons[-1]
    clone = cluster.clone("w0")
    _retry_for(clone, 120)
    worker = cluster.work(clone, "--idle-exit", "3")
    try:
        wait_for(lambda: len(cluster.rows()) >= 1, within(30), "the node to start")
        server.stop()
        kept = clone / ".dagain" / "local" / "pending" / "bad.json"
        wait_for(kept.exists, within(10), "the failure to be journaled during the outage")
        assert '"failure"' in kept.read_text()
        server.restart()
        code, err = finish(worker, timeout=within(60))
    finally:
        cluster.stop_all()
    assert code == 0, err
    assert "bad: failure of attempt 1 kept in .dagain/local/pending/" in err, err
    node = cluster.nodes()["bad"]
    assert node.status.value != "running" and node.attempts == 1, node
    assert node.error is not None and node.error.attempt == 1, node
    assert not kept.exists()
