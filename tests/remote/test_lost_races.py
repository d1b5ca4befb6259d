"""A result whose push loses every race stays in the journal and lands later, exactly once.

Many writers at once can move `dagain/state` between a worker's fetch and each of its pushes, 40
times in a row. The worker must not stop for that (remote/results.py, remote/link.py: the result
waits in `.dagain/local/pending/` and is pushed again on the next turn of the loop).

Made deterministic with a real server-side hook: `git daemon --access-hook` runs before every
service, and before each `receive-pack` (a push) ours asks a writer in this test process to land
a transition of its own on the served repository first (`Mover`). The push then sees a head it did
not fetch: its lease fails, a lost race, every time, for as long as the writer is on.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from gitdag import actions
from gitdag.core.model import Status
from gitdag.store.state import StateStore
from tests.remote.conftest import Cluster, Daemon, build_cluster, start_daemon, task, wait_for
from tests.timing import within

HOOK = """#!/bin/sh
# git daemon's access hook: $1 is the service. Before a push, let the rival writer land first
# (always exit 0: a hook that fails would make the daemon refuse the service).
[ "$1" = receive-pack ] || exit 0
{python} -I -S -c '
import socket
with socket.create_connection(("127.0.0.1", {port}), timeout=60) as s:
    s.sendall(b"push")
    s.recv(8)
'
exit 0
"""


class Mover:
    """A rival writer: while `on`, lands one transition on the served repository before each push.

    It moves only once node `busy` runs (its claim landed), so the worker's claim goes through and
    every push after it (the result, a renewal) loses its race. Each move adds a node with a
    label no worker here has (nothing the worker would run).
    """

    def __init__(self, bare: Path, busy: str) -> None:
        self.bare, self.busy = bare, busy
        self.on = threading.Event()
        self.moves = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(8)
                    if self.on.is_set():
                        self._move()
                    conn.sendall(b"ok")
                except OSError:
                    continue

    def _move(self) -> None:
        with StateStore.open(self.bare, use_disk_cache=False) as store:
            summary = store.snapshot().nodes.get(self.busy)
            if summary is None or summary.status is not Status.RUNNING:
                return  # not yet: the claim must land
            self.moves += 1
            actions.add(store, task(f"rival{self.moves:03d}", labels=["elsewhere"]))

    def hook(self, path: Path) -> Path:
        path.write_text(HOOK.format(python=sys.executable, port=self.port))
        path.chmod(0o755)
        return path

    def close(self) -> None:
        self.listener.close()


class Lines:
    """A process's stderr, read as it comes (so a test can wait for a line)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stderr is not None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def text(self) -> str:
        return "\n".join(self.lines)

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker did not stop in {timeout} s:\n{self.text()}") from None
        self.thread.join(10)
        return code


def _served_with_hook(tmp_path: Path, daemons: list[Daemon], node: dict[str, Any],
                      backoff: float | None = None) -> tuple[Cluster, Mover]:  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, [node], serve=False, backoff=backoff)
    mover = Mover(cluster.bare, node["id"])
    hook = mover.hook(tmp_path / "access-hook")
    daemon = start_daemon(cluster.bare.parent, access_hook=hook)
    daemons.append(daemon)
    cluster.url = daemon.url(cluster.bare.name)
    return cluster, mover


def _lose_then_land(cluster: Cluster, mover: Mover, clone: Path, node_id: str, what: str,
                    *args: str, **env: str) -> str:  # fmt: skip
    """Work in `clone`, losing every race (the rival on) until the kept `what` was pushed again
    twice, then stop the rival.

    Meanwhile the worker lives, the journal keeps the entry and the node stays running; at the
    end the worker exits 0 (its stderr is returned).
    """
    kept = clone / ".dagain" / "local" / "pending" / f"{node_id}.json"
    busy = f"{node_id}: {what} of attempt 1 kept in .dagain/local/pending/ (the remote's"
    again = f"{node_id}: pushing the kept {what} of attempt 1 again"
    mover.on.set()
    worker = cluster.work(clone, *args, **env)
    err = Lines(worker)
    try:
        wait_for(lambda: err.count(busy) or worker.poll() is not None, within(60),
                 f"the {what} to be kept after losing every race")  # fmt: skip
        assert worker.poll() is None, err.text()
        assert kept.exists() and f'"{what}"' in kept.read_text()
        # The next turn pushes it again and loses again (else no second time): still kept.
        wait_for(lambda: err.count(again) >= 2 or worker.poll() is not None, within(60),
                 f"the kept {what} to be pushed again, twice")  # fmt: skip
        assert worker.poll() is None, err.text()
        assert kept.exists()
        assert cluster.nodes()[node_id].status is Status.RUNNING
        mover.on.clear()  # the rush is over
        code = err.finish(within(60))
    finally:
        mover.close()
        cluster.stop_all()
    assert code == 0, err.text()
    assert mover.moves >= 80, mover.moves  # two full rounds of 40 lost races at least
    assert [(r[0], r[1]) for r in cluster.rows()] == [(node_id, 1)]  # the agent ran once
    assert not kept.exists()
    subjects = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    results = [s for s in subjects if f" {node_id}: running -> " in f" {s}"]
    assert len(results) == 1, subjects  # the result (or failure) landed once
    return err.text()


def test_a_result_that_loses_every_race_is_kept_then_lands_once(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The rival lands before each of the worker's pushes: the result's push loses 40 races, the
    worker goes on with the result in its journal, loses again on the next turns, and once the
    rival stops the result lands: the node is done, one result commit, the agent ran once."""
    cluster, mover = _served_with_hook(tmp_path, daemons, task("a"))
    clone = cluster.clone("w0")
    _lose_then_land(cluster, mover, clone, "a", "result", EVERY_SECONDS="1")
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts == 1, node
    history = cluster.remote_git("log", "--format=%s", "dagain/state")
    assert "complete a: running -> merging" in history


def test_a_failure_that_loses_every_race_is_kept_then_lands_once(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The same for a runner that fails: its failure waits in the journal, lands once."""
    log = tmp_path / "runs.log"
    run = f'echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT $$ $GITDAG_REPO" >> {log}; sleep 1; exit 3'
    bad = {"id": "bad", "title": "bad", "kind": "command", "run": run}
    cluster, mover = _served_with_hook(tmp_path, daemons, bad, backoff=600)
    clone = cluster.clone("w0")
    said = _lose_then_land(cluster, mover, clone, "bad", "failure", "--idle-exit", "3")
    assert "kept results not all pushed yet" in said  # a next turn lost every race too
    node = cluster.nodes()["bad"]
    assert node.status is not Status.RUNNING and node.attempts == 1, node
    assert node.error is not None and node.error.attempt == 1, node
