"""A remote that accepts the connection and never answers costs seconds, not the 120 s timeout.

Real parts: a TCP listener on 127.0.0.1 that accepts and says nothing (as git:// and as HTTP),
the relay of relay.py switched to swallowing under a running worker, and for ssh a
`GIT_SSH_COMMAND` that connects nowhere and sleeps (through dulwich and through the git CLI).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.remote.conftest import Cluster, Daemon, build_cluster, task, wait_for
from tests.remote.relay import Relay, relayed
from tests.remote.test_outage import _retry_for
from tests.timing import within


def silent_server() -> Relay:
    """Accepts every connection on 127.0.0.1 and never sends a byte (reads what comes)."""
    return Relay(0, hang=True)


def _configure(clone: Path, answer_s: int | None, retry_for_s: int = 3) -> None:
    """`remote.retry_for_s` (the cluster's 3 s unless given), and `remote.timeout_s` when given."""
    config = clone / ".dagain" / "config.yaml"
    answer = f"\n  timeout_s: {answer_s}" if answer_s is not None else ""
    config.write_text(config.read_text().replace(
        "retry_for_s: 3", f"retry_for_s: {retry_for_s}{answer}"))  # fmt: skip


def _refs(clone: Path) -> str:
    return git(clone, "for-each-ref", "--format=%(refname) %(objectname)")


STATUS, ADD = ["status"], ["add", "late", "--title", "Late"]


# The default floor (10 s) is waited out once, by `status`; `add` meets it at a lower
# `remote.timeout_s` on the same git daemon (the bound's code is the same for every command).
@pytest.mark.parametrize(
    ("serve", "answer_s", "args"),
    [("daemon", None, STATUS), ("daemon", 2, ADD), ("http", 2, STATUS), ("http", 2, ADD)],
    ids=["status-git-default-floor", "add-git", "status-http", "add-http"],
)
def test_a_silent_server_is_an_error_in_seconds(
    tmp_path: Path, daemons: list[Daemon], serve: str, answer_s: int | None, args: list[str]
) -> None:
    """`status --remote` and `add --remote`: a person waits on them, so one try of
    `remote.timeout_s` (the default 10 s, or 2 s) ends them: exit 2 with one line naming the
    remote, nothing moved, long before `remote.retry_for_s` (120 s here) would have."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve=serve)
    clone = cluster.clone("laptop")
    git(clone, "fetch", "-q", "origin", "dagain/state:dagain/state")
    _configure(clone, answer_s, retry_for_s=120)
    silent = silent_server()
    head = cluster.state_head()
    try:
        url = cluster.url.replace(f":{daemons[-1].port}/", f":{silent.port}/")
        git(clone, "remote", "set-url", "origin", url)
        before = _refs(clone)
        began = time.monotonic()
        res = cluster.gitdag(clone, *args, "--remote", "origin", timeout=within(120))
        took = time.monotonic() - began
    finally:
        silent.close()
    assert res.code == 2, (res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "remote origin" in lines[0], res.err
    # One try of remote.timeout_s, not all of remote.retry_for_s, and no "gave up after".
    assert f"no answer within {answer_s or 10} s (" in lines[0], res.err
    assert "gave up after" not in lines[0], res.err
    assert took < min(within(15), 100), (took, res.err)  # the floor, never the 120 s
    assert _refs(clone) == before and cluster.state_head() == head


def _silent_ssh(tmp: Path) -> tuple[Path, Path]:
    """A `GIT_SSH_COMMAND` that connects nowhere: it starts a sleeper, says nothing, waits."""
    pids = tmp / "ssh.pids"
    script = tmp / "silent-ssh"
    script.write_text(f'#!/bin/sh\nsleep 300 &\necho "$$ $!" >> {pids}\nwait\n')
    script.chmod(0o755)
    return script, pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("wire", ["client", "cli"])
def test_a_silent_ssh_is_killed_at_its_deadline(tmp_path: Path, daemons: list[Daemon],
                                                wire: str) -> None:  # fmt: skip
    """ssh (dulwich's client, or the git CLI): the ssh command and what it started are killed
    when the try's time is up; the command fails in seconds, naming the remote."""
    cluster = build_cluster(tmp_path, daemons, [task("a")])
    clone = cluster.clone("laptop")
    _configure(clone, 2)
    git(clone, "remote", "set-url", "origin", "ssh://git@nowhere.invalid/project.git")
    script, pids = _silent_ssh(tmp_path)
    env = {"GIT_SSH_COMMAND": str(script)}
    if wire == "cli":
        env["GITDAG_WIRE"] = "cli"
    began = time.monotonic()
    res = cluster.gitdag(clone, "status", "--remote", "origin", timeout=within(60), **env)
    took = time.monotonic() - began
    assert res.code == 2, (res.out, res.err)
    assert "remote origin" in res.err and "no answer within 2 s" in res.err, res.err
    assert took < within(10), (took, res.err)
    started = [int(p) for line in pids.read_text().splitlines() for p in line.split()]
    assert started  # the ssh command ran (once per try)
    wait_for(lambda: not any(_alive(p) for p in started), within(5), "no ssh left running")


def test_a_worker_whose_remote_goes_silent_keeps_turning(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The relay swallows everything while both nodes run: the worker says it keeps the quick
    result (a call gave up: it is not stuck in one call) while the relay is still silent, the slow
    one goes on; once the relay answers again both land, each done exactly once."""
    cluster: Cluster = build_cluster(tmp_path, daemons, [task("quick"), task("slow")],
                                     serve="http")  # fmt: skip
    server = daemons[-1]
    relay = Relay(server.port)
    clone = cluster.clone("w0")
    relayed(clone, server, relay)
    _retry_for(clone, 120)
    _configure(clone, 2)
    worker = cluster.work(clone, "--workers", "2", EVERY_SECONDS="2", SLOW_NODE="slow",
                          SLOW_SECONDS="10")  # fmt: skip
    said: list[str] = []
    assert worker.stderr is not None
    reader = threading.Thread(target=lambda: said.extend(worker.stderr or []), daemon=True)
    reader.start()
    kept = "quick: result of attempt 1 kept in .dagain/local/pending/"
    try:
        wait_for(lambda: len(cluster.rows()) >= 2, within(30), "both nodes to start")
        relay.hang.set()
        wait_for(lambda: any(kept in line for line in said), within(10),
                 "the worker to keep the quick result while the remote is silent")  # fmt: skip
        assert worker.poll() is None
        relay.hang.clear()
        code = worker.wait(timeout=within(60))
        reader.join(within(5))
    finally:
        relay.close()
        cluster.stop_all()
    err = "".join(said)
    assert code == 0, err
    assert "no answer within" in err and "the runners go on" in err, err
    assert err.index(kept) < err.index("remote origin answers again"), err
    nodes = cluster.nodes()
    assert {n.status.value for n in nodes.values()} == {"done"}, nodes
    assert all(n.attempts == 1 for n in nodes.values())
    assert sorted((r[0], r[1]) for r in cluster.rows()) == [("quick", 1), ("slow", 1)]
    assert not list((clone / ".dagain" / "local" / "pending").glob("*.json"))


def test_a_plain_status_shows_the_local_graph_after_one_bounded_wait(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """`gitdag status` with a default remote that is silent: one bounded wait (at most 10 s at
    the default, docs/cli.md; `remote.timeout_s: 2` here, the default's 10 s is waited out by
    test_a_silent_server_is_an_error_in_seconds), then this clone's graph with the warning."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="daemon")
    clone = cluster.clone("laptop")
    git(clone, "fetch", "-q", "origin", "dagain/state:dagain/state")
    _configure(clone, 2)
    git(clone, "branch", "-q", "--set-upstream-to=origin/dagain/state", "dagain/state")
    silent = silent_server()
    try:
        git(clone, "remote", "set-url", "origin",
            cluster.url.replace(f":{daemons[-1].port}/", f":{silent.port}/"))  # fmt: skip
        began = time.monotonic()
        res = cluster.gitdag(clone, "status", timeout=within(60))
        took = time.monotonic() - began
    finally:
        silent.close()
    assert res.code == 0, res.err
    # A call a person waits on gives its one try remote.timeout_s (transport/retry.py waited_on).
    assert "remote origin not reached" in res.err and "no answer within 2 s" in res.err, res.err
    assert took < within(15), (took, res.err)


class MuteAfterCommands(Relay):
    """A relay to a git daemon that stops answering once the client sent its push commands:
    the push lands on the server, and its report never comes back."""

    def relay(self, client: socket.socket, server: socket.socket) -> None:
        muted = threading.Event()
        threading.Thread(target=self._up, args=(client, server, muted), daemon=True).start()
        threading.Thread(target=self._down, args=(server, client, muted), daemon=True).start()

    @staticmethod
    def _up(src: socket.socket, dst: socket.socket, muted: threading.Event) -> None:
        first = True
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not first:
                    muted.set()  # the commands: from now on the server's words are swallowed
                first = False
                dst.sendall(data)

    @staticmethod
    def _down(src: socket.socket, dst: socket.socket, muted: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not muted.is_set():
                    dst.sendall(data)


def test_a_push_cut_after_its_commands_went_is_uncertain(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The server took the push and went silent: the try is cut at its bound and the outcome is
    uncertain (the caller fetches and looks), not a failure and not a success."""
    from dulwich.repo import Repo

    from gitdag.transport import choose
    from gitdag.transport.outcomes import RefPush
    from gitdag.transport.retry import Retry

    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="daemon")
    clone = cluster.clone("laptop")
    git(clone, "commit", "-q", "--allow-empty", "-m", "new")
    sha = git(clone, "rev-parse", "HEAD").strip()
    relay = MuteAfterCommands(daemons[-1].port)
    git(clone, "remote", "set-url", "origin",
        cluster.url.replace(f":{daemons[-1].port}/", f":{relay.port}/"))  # fmt: skip
    repo = Repo(str(clone))
    transport = choose(repo, clone, "origin", 120.0, lambda s: 0, Retry(retry_for_s=1, floor_s=1))
    began = time.monotonic()
    try:
        outcome = transport.push([RefPush(sha, "refs/heads/landed", "")], atomic=True)
    finally:
        relay.close()
        repo.close()
    took = time.monotonic() - began
    assert outcome.uncertain and not outcome.ok, outcome
    assert took < within(5), took
    assert cluster.remote_git("rev-parse", "refs/heads/landed").strip() == sha  # it landed


def test_a_try_waits_what_its_call_has_left_within_the_floor_and_the_ceiling() -> None:
    """`try_bound`: the time left of the call, never under `floor_s`, never over the ceiling."""
    from gitdag.transport.deadline import try_bound
    from gitdag.transport.retry import Retry

    now = [0.0]
    retry = Retry(retry_for_s=30, clock=lambda: now[0], floor_s=10)
    seen: list[float] = []
    retry.run(lambda: seen.append(try_bound(retry, 120.0)))
    assert seen == [30.0]  # a call with 30 s: its first try may wait them all
    retry.run(lambda: seen.append(try_bound(retry, 20.0)))
    assert seen[-1] == 20.0  # never past the transport's ceiling

    def late() -> None:
        now[0] += 25.0  # most of the call spent before the try
        seen.append(try_bound(retry, 120.0))

    retry.run(late)
    assert seen[-1] == 10.0  # 5 s left, but a try waits at least the floor
    retry.cap = lambda: 0.0  # a worker whose remote is down: one try, the floor
    retry.run(lambda: seen.append(try_bound(retry, 120.0)))
    assert seen[-1] == 10.0


class Trickle(Relay):
    """A relay to a git daemon that sends the server's words on slowly: ~`rate` bytes/s."""

    def __init__(self, port: int, rate: int) -> None:
        self.rate = rate
        super().__init__(port)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        if src.getpeername()[1] != self.target:
            super()._pipe(src, dst)  # what the client says: as it is
            return
        with contextlib.suppress(OSError):
            while data := src.recv(4096):
                dst.sendall(data)
                time.sleep(len(data) / self.rate)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("wire", ["client", "cli"])
def test_a_slow_transfer_that_keeps_coming_is_not_cut(
    tmp_path: Path, daemons: list[Daemon], wire: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound is on silence: a fetch that takes four times the bound, its bytes arriving all
    along, lands (dulwich's reads return; the git CLI reports progress while objects come)."""
    from gitdag.errors import RemoteUnreachable
    from gitdag.store.remote import RemoteState

    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="daemon")
    seed = tmp_path / "big"
    git(tmp_path, "init", "-q", str(seed))
    (seed / "blob.bin").write_bytes(os.urandom(600_000))  # incompressible
    git(seed, "add", "blob.bin")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "big")
    clone = cluster.clone("w0")
    git(seed, "push", "-q", str(cluster.bare), "HEAD:refs/heads/big")  # after: not in the clone
    relay = Trickle(daemons[-1].port, rate=75_000)  # 600 kB in ~8 s, a bound of 2 s
    relayed(clone, daemons[-1], relay)
    monkeypatch.setenv("GITDAG_WIRE", wire)
    try:
        with RemoteState.open(clone, "origin") as remote:
            remote.retry_for(1, answer_s=2)
            if wire == "cli":
                # Three objects: git unpacks them without a word, so the first fetch is cut
                # (what a silent remote costs); from then on fetches are indexed, with progress.
                with pytest.raises(RemoteUnreachable, match="no answer within 2 s"):
                    remote.transport.fetch([("refs/heads/big", "refs/gitdag/big")], [])
            began = time.monotonic()
            remote.transport.fetch([("refs/heads/big", "refs/gitdag/big")], [])
            took = time.monotonic() - began
    finally:
        relay.close()
    assert took > 4, took  # longer than the bound: it was not cut
    head = git(seed, "rev-parse", "HEAD").strip()
    assert git(clone, "rev-parse", "refs/gitdag/big").strip() == head


def test_progress_lines_are_left_out_of_what_git_said() -> None:
    from gitdag.transport.deadline import without_progress

    said = ("remote: Enumerating objects: 5, done.\n"
            "remote: Counting objects:  20% (1/5)\rremote: Counting objects: 100% (5/5), done.\n"
            "Receiving objects:  50% (1/2)\rReceiving objects: 100% (2/2), done.\n"
            "remote: closed for the night\nTotal 3 (delta 0), reused 0 (delta 0), pack-reused 0\n"
            "fatal: couldn't find remote ref refs/heads/x\n")  # fmt: skip
    assert without_progress(said) == (
        "remote: closed for the night\nfatal: couldn't find remote ref refs/heads/x\n"
    )


def test_a_password_for_ssh_is_refused_in_one_line() -> None:
    from gitdag.errors import RemoteError
    from gitdag.transport.deadline import WatchedSSHVendor

    with pytest.raises(RemoteError, match=r"ssh to example\.org: a password .* not used"):
        WatchedSSHVendor().run_command("example.org", b"git-upload-pack 'r.git'", password="pw")
