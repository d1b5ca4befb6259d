"""Calls a person waits on (`status`, `gitdag ui`, steering) give up on a silent remote after one
bounded try; a remote that answers with a failure is still retried; a worker's loop stays
responsive while its remote is silent.

Real parts: the silent listener and relay of relay.py, git daemon and `git http-backend`
(tests/remote/conftest.py), the real `gitdag` CLI and a real `gitdag work`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gitdag.transport.deadline import try_bound
from gitdag.transport.outcomes import Failure
from gitdag.transport.retry import Retry, Unreachable
from tests.conftest import git
from tests.remote.conftest import Daemon, build_cluster, task, wait_for
from tests.remote.relay import Relay, relayed
from tests.timing import within


def _config(clone: Path, retry_for_s: int, timeout_s: int | None = None) -> None:
    """Replace the cluster's `remote.retry_for_s: 3` (and set `remote.timeout_s`)."""
    config = clone / ".dagain" / "config.yaml"
    answer = f"\n  timeout_s: {timeout_s}" if timeout_s is not None else ""
    config.write_text(config.read_text().replace(
        "retry_for_s: 3", f"retry_for_s: {retry_for_s}{answer}"))  # fmt: skip


def _silent() -> Relay:
    return Relay(0, hang=True)


def test_a_silent_try_ends_a_waited_on_call_and_an_answered_failure_is_retried() -> None:
    """`waited_on`: each try waits the floor (not what the call has left), a silent try ends
    the call at once, a refused connection is still retried within the call's bound."""
    now = [0.0]
    retry = Retry(retry_for_s=60, clock=lambda: now[0], floor_s=7,
                  sleep=lambda s: now.__setitem__(0, now[0] + s))  # fmt: skip
    retry.waited_on()
    seen: list[float] = []
    tries = [0]

    def silent() -> None:
        tries[0] += 1
        seen.append(try_bound(retry, 120.0))
        now[0] += seen[-1]
        raise Unreachable("no answer within 7 s", Failure.TRANSIENT, silent=True)

    with pytest.raises(Unreachable) as raised:
        retry.run(silent)
    assert tries == [1] and seen == [7.0]  # one try, of the floor (60 s were left)
    assert retry.gave_up(raised.value) == ""  # its own words say how long it waited

    def refused_twice() -> str:
        tries[0] += 1
        if tries[0] < 4:
            raise Unreachable("Connection refused", Failure.TRANSIENT)
        return "ok"

    tries[0] = 1
    assert retry.run(refused_twice) == "ok" and tries == [4]
    with retry.patient():  # a worker's result push: what the call has left, at least the floor
        retry.run(lambda: seen.append(try_bound(retry, 120.0)))
    assert seen[-1] == pytest.approx(60.0) and retry.try_s == 7


def test_a_steering_command_waits_for_a_server_down_for_a_moment(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Connection refused, then the server is back: `add --remote` (a write) still waits for it
    within `remote.retry_for_s` (a refused connection answers: it is not a silent remote)."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="daemon")
    server = daemons[-1]
    clone = cluster.clone("laptop")
    _config(clone, 120, timeout_s=2)
    server.stop()
    proc = subprocess.Popen([sys.executable, "-m", "gitdag", "add", "late", "--title", "Late",
                             "--remote", "origin"], cwd=clone, env=cluster.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    time.sleep(3)  # longer than remote.timeout_s: a refused connection is not silence
    assert proc.poll() is None, proc.communicate()
    server.restart()
    out, err = proc.communicate(timeout=within(60))
    assert proc.returncode == 0, err
    assert "added late" in out and "late" in cluster.nodes()


def test_a_silent_remote_costs_the_ui_one_bounded_try(
    tmp_path: Path, daemons: list[Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gitdag ui`'s first fetch (and its steering) against a silent remote: one try of
    `remote.timeout_s`, then the page's warning; never `remote.retry_for_s` (120 s here)."""
    from gitdag.errors import RemoteError
    from gitdag.ui.remote_source import RemoteSource

    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    clone = cluster.clone("laptop")
    _config(clone, 120, timeout_s=2)
    silent = _silent()
    try:
        git(clone, "remote", "set-url", "origin",
            cluster.url.replace(f":{daemons[-1].port}/", f":{silent.port}/"))  # fmt: skip
        source = RemoteSource(clone, "origin")
        began = time.monotonic()
        said = source.start()
        took = time.monotonic() - began
        assert "remote origin not reached" in said and "no answer within 2 s" in said, said
        assert took < min(within(5), 60), took
        began = time.monotonic()
        with pytest.raises(RemoteError, match="no answer within 2 s"):
            source._steer(lambda store: None)
        assert time.monotonic() - began < min(within(5), 60)
        source.close()
    finally:
        silent.close()


def test_a_worker_collects_a_finished_runner_within_its_slice_while_the_remote_is_silent(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """`remote.timeout_s: 60`: the worker loop's tries wait its 5 s slice, not the floor, so a
    runner that finishes while the relay swallows everything is journaled long before a first
    60 s try would have ended (measured from the relay going silent)."""
    cluster = build_cluster(tmp_path, daemons, [task("quick")], serve="http")
    server = daemons[-1]
    relay = Relay(server.port)
    clone = cluster.clone("w0")
    relayed(clone, server, relay)
    _config(clone, 600, timeout_s=60)
    worker = cluster.work(clone, EVERY_SECONDS="6")
    said: list[tuple[float, str]] = []
    assert worker.stderr is not None
    stream = worker.stderr

    def read() -> None:
        for line in stream:
            said.append((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    kept = "quick: result of attempt 1 kept in .dagain/local/pending/"
    try:
        wait_for(lambda: len(cluster.rows()) >= 1, within(30), "the node to start")
        relay.hang.set()
        silent_at = time.monotonic()
        wait_for(lambda: any(kept in line for _, line in said), 50,
                 "the worker to journal the result while the remote is silent")  # fmt: skip
        at = next(t for t, line in said if kept in line)
        assert at - silent_at < 45, (at - silent_at, said)  # a 60 s try would still be waiting
        assert worker.poll() is None
        relay.hang.clear()
        code = worker.wait(timeout=within(60))
        reader.join(within(5))
    finally:
        relay.close()
        cluster.stop_all()
    err = "".join(line for _, line in said)
    assert code == 0, err
    assert "no answer within 5 s" in err, err
    assert {n.status.value for n in cluster.nodes().values()} == {"done"}
    assert [(r[0], r[1]) for r in cluster.rows()] == [("quick", 1)]
