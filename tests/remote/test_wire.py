"""The transports (gitdag/transport/), against real git: dulwich's client and the git CLI.

Every other remote test goes through them too (git://, http and local paths are spoken
in-process); these pin down what those cannot see: which transport a URL gets, each way a push
can end, big fetches kept as packs, and a raised hand.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from gitdag.remote import claims
from gitdag.store.remote import QUEUE_REFS, RemoteState
from gitdag.store.state import Committed
from gitdag.transport import ClientTransport, CliTransport
from gitdag.transport.endpoints import QuickTcpClient, client_for
from gitdag.transport.outcomes import RefPush
from tests.conftest import git
from tests.remote.conftest import Daemon, build_cluster, command
from tests.remote.relay import Relay, relayed

STATE = "refs/heads/dagain/state"


def test_endpoints(tmp_path: Path) -> None:
    (tmp_path / "bare.git").mkdir()
    tcp = client_for("git://127.0.0.1:9999/project.git", tmp_path, 5)
    assert tcp is not None and isinstance(tcp[0], QuickTcpClient) and tcp[1] == "/project.git"
    assert tcp[0]._port == 9999
    local = str(tmp_path / "bare.git")
    for url in (local, "bare.git", f"file://{tmp_path}/bare.git"):  # relative to the repository
        found = client_for(url, tmp_path, 5)
        assert found is not None and found[1] == local, url
    http = client_for("https://user:secret@example.org/o/r.git", tmp_path, 5)
    assert http is not None and http[1] == "/o/r.git"
    for ssh in ("git@github.com:o/r.git", "ssh://git@h:2222/o/r.git"):
        found = client_for(ssh, tmp_path, 5)
        assert found is not None and found[1] == ("o/r.git" if "://" not in ssh else "/o/r.git")
    for other in ("missing.git", "ftp://h/r.git"):
        assert client_for(other, tmp_path, 5) is None, other  # left to the git CLI


def test_which_transport(tmp_path: Path, daemons: list[Daemon],
                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    clone = cluster.clone("w0")
    with RemoteState.open(clone, "origin") as remote:
        assert isinstance(remote.transport, ClientTransport)
    git(clone, "config", "remote.origin.pushurl", cluster.url)
    with RemoteState.open(clone, "origin") as remote:
        assert isinstance(remote.transport, CliTransport)  # pushes may go elsewhere: git decides
    git(clone, "config", "--unset", "remote.origin.pushurl")
    git(clone, "config", "url.git://127.0.0.1/.insteadOf", "mirror:")
    with RemoteState.open(clone, "origin") as remote:
        assert isinstance(remote.transport, CliTransport)  # URL rewriting: git decides
    git(clone, "config", "--remove-section", "url.git://127.0.0.1/")
    monkeypatch.setenv("GITDAG_WIRE", "cli")
    with RemoteState.open(clone, "origin") as remote:
        assert isinstance(remote.transport, CliTransport)
        head = remote.fetch()  # and it works the same way
        assert head == cluster.state_head()


@pytest.mark.parametrize("serve", ["http", "daemon", False], ids=["http", "daemon", "path"])
def test_every_way_a_push_ends(tmp_path: Path, daemons: list[Daemon], serve: str | bool) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")], serve=serve)
    clone = cluster.clone("w0")
    with RemoteState.open(clone, "origin") as remote:
        assert isinstance(remote.transport, ClientTransport)
        head = remote.fetch()
        tree = git(clone, "rev-parse", f"{head}^{{tree}}").strip()
        mine = git(clone, "commit-tree", tree, "-p", head, "-m", "mine").strip()
        # A lease that fails against the advertisement: nothing is sent, nothing moves.
        stale = remote.push([RefPush(mine, STATE, mine)])
        assert stale.stale_refs() == (STATE,) and cluster.state_head() == head
        # Atomic: one stale lease refuses the other ref too (collateral, not a race).
        both = remote.push([RefPush(mine, "refs/heads/side", ""), RefPush(mine, STATE, mine)])
        assert not both.ok and both.stale_refs() == (STATE,) and not both.refusals()
        assert cluster.remote_git("branch", "--list", "side") == ""
        # Landed: git's report proves our commit replaced the expected head.
        landed = remote.push([RefPush(mine, STATE, head), RefPush(mine, "refs/heads/side", "")])
        assert landed.ok and landed.statuses[0].moved(head, mine)
        assert landed.statuses[1].flag == "*" and cluster.state_head() == mine
        # Already there: "up to date", not proof of anything.
        again = remote.push([RefPush(mine, STATE, mine)])
        assert again.ok and not again.statuses[0].moved(mine, mine)
        # Deleting a ref.
        gone = remote.push([RefPush("", "refs/heads/side", mine)])
        assert gone.ok and cluster.remote_git("branch", "--list", "side") == ""
        # A hook's refusal is a refusal, with what the hook said.
        hook = cluster.bare / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'closed for the night' >&2\nexit 1\n")
        hook.chmod(0o755)
        newer = git(clone, "commit-tree", tree, "-p", mine, "-m", "newer").strip()
        refused = remote.push([RefPush(newer, STATE, mine)])
        assert [s.summary for s in refused.refusals()] == [
            "[remote rejected] (pre-receive hook declined)"
        ]
        assert "closed for the night" in refused.remote_says
        assert cluster.state_head() == mine
    assert git(cluster.bare, "fsck", "--strict").strip() == ""


def test_a_delete_only_push_sends_no_pack(tmp_path: Path, daemons: list[Daemon]) -> None:
    """git's receive-pack reads no pack after delete commands alone: one sent anyway can make it
    reset the connection before its report reaches us (dulwich 1.2.0 sent one whenever an
    unchanged ref was in the map we hand it), and the push looked dropped (seen in CI)."""
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")],
                            serve="daemon")  # fmt: skip
    relay = Relay(daemons[-1].port, record=True)
    clone = cluster.clone("w0")
    relayed(clone, daemons[-1], relay)
    head = cluster.state_head()
    with RemoteState.open(clone, "origin") as remote:
        for n in range(5):
            cluster.remote_git("update-ref", f"refs/heads/side{n}", head)
            relay.sent.clear()
            gone = remote.push([RefPush("", f"refs/heads/side{n}", head)])
            assert gone.ok and not gone.uncertain, gone
            assert b"PACK" not in relay.sent
            assert cluster.remote_git("branch", "--list", f"side{n}") == ""
    relay.close()


def test_a_big_fetch_is_kept_as_a_pack(tmp_path: Path, daemons: list[Daemon]) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command(f"n{i:03d}", log) for i in range(150)])
    clone = tmp_path / "fresh"  # has none of the remote's objects
    git(tmp_path, "init", "-q", str(clone))
    git(clone, "remote", "add", "origin", cluster.url)
    packs = set((clone / ".git" / "objects" / "pack").glob("*.pack"))
    with RemoteState.open(clone, "origin") as remote:
        head = remote.fetch()
        assert len(remote.snapshot().nodes) == 150
    assert len(set((clone / ".git" / "objects" / "pack").glob("*.pack")) - packs) == 1
    assert git(clone, "rev-parse", "refs/gitdag/remotes/origin/state").strip() == head
    assert git(clone, "fsck", "--strict", "--no-dangling").strip() == ""


def test_each_fetch_sees_the_newest_head(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A long-lived upload-pack would keep the refs it read first (git caches them): not us."""
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command(f"n{i}", log) for i in range(4)])
    with (
        RemoteState.open(cluster.clone("a"), "origin") as a,
        RemoteState.open(cluster.clone("b"), "origin") as b,
    ):
        b.fetch()
        for _ in range(3):
            won = claims.claim(a, worker="a", labels=(), lease_s=60)
            assert isinstance(won, Committed)
            assert b.fetch() == won.head == cluster.state_head()
            assert b.remote_ref(STATE) == won.head


def test_a_writer_that_keeps_losing_raises_its_hand(tmp_path: Path, daemons: list[Daemon]) -> None:
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command(f"n{i}", log) for i in range(4)])
    with (
        RemoteState.open(cluster.clone("a"), "origin") as a,
        RemoteState.open(cluster.clone("b"), "origin") as b,
    ):
        assert isinstance(claims.claim(a, worker="a", labels=(), lease_s=60), Committed)
        head = b.fetch()
        b.contention.lost()
        b.contention.lost()  # two lost races, and b never landed: nobody can see it waiting
        b._enqueue("b", head)
        hands = [r for r in cluster.remote_git("for-each-ref", "--format=%(refname)").split()
                 if r.startswith(QUEUE_REFS)]  # fmt: skip
        assert len(hands) == 1
        a._poll_refs()
        assert a.contention.queued == 1 and a.contention.ahead() >= 1  # a lets b go first
        won = claims.claim(b, worker="b", labels=(), lease_s=60)
        assert isinstance(won, Committed)
        # Lowered in the same atomic push as b's claim.
        assert QUEUE_REFS not in cluster.remote_git("for-each-ref", "--format=%(refname)")
        a._poll_refs()
        assert a.contention.queued == 0


def test_a_hand_left_by_a_killed_worker_is_swept(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    clone = cluster.clone("w0")
    with RemoteState.open(clone, "origin") as remote:
        head = remote.fetch()
        tree = git(clone, "rev-parse", f"{head}^{{tree}}").strip()
        old = subprocess.run(
            ["git", "commit-tree", tree, "-p", head, "-m", "long ago"], cwd=clone, check=True,
            capture_output=True, text=True,
            env={**os.environ, "GIT_COMMITTER_DATE": "2001-01-01T00:00:00Z"},
        ).stdout.strip()  # fmt: skip
        left = QUEUE_REFS + "0123456789abcdef"
        assert remote.push([RefPush(old, left)], atomic=False).ok
        remote._poll_refs()
        assert remote.contention.queued == 0  # too old to wait for
    assert left not in cluster.remote_git("for-each-ref", "--format=%(refname)")


class DropReport(Relay):
    """A TCP relay to git daemon that loses the first push's report: it lands, unheard of."""

    def __init__(self, port: int) -> None:
        self.dropped = 0
        super().__init__(port)

    def relay(self, client: socket.socket, server: socket.socket) -> None:
        threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        first = client.recv(65536)
        server.sendall(first)
        cut = b"git-receive-pack" in first and self.dropped == 0
        if cut:
            self.dropped += 1
        sent_commands = threading.Event()

        def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    sent_commands.set()
                    server.sendall(data)

        threading.Thread(target=upstream, daemon=True).start()
        while data := server.recv(65536):
            if not (cut and sent_commands.is_set()):
                client.sendall(data)  # the advertisement; after the push, nothing more
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)  # a FIN now, even with upstream() still reading
        client.close()
        server.close()


def test_a_push_whose_report_was_lost_is_found_landed(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [command("a", tmp_path / "runs.log")])
    relay = DropReport(daemons[-1].port)
    try:
        clone = cluster.clone("w0", f"git://127.0.0.1:{relay.port}/project.git")
        with RemoteState.open(clone, "origin") as remote:
            won = claims.claim(remote, worker="w", labels=(), lease_s=60)
            assert relay.dropped == 1
            assert isinstance(won, Committed) and won.head == cluster.state_head()
    finally:
        relay.close()
    log = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    assert sum(s.startswith("claim a") for s in log) == 1  # landed once, not pushed twice
