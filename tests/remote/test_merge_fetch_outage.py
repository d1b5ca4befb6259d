"""A merge whose branch fetch meets an unreachable remote waits for it; it does not fail the node.

A worker that integrates a merging node it did not produce (its worker went away) first fetches
the node's branch `dagain/work/<id>` (remote/merging.py `_start`). The network going away right
then is not the node's fault: the merge waits and is tried again when the remote answers, no
check_failed, no attempt spent, no agent run.

The outage is made exactly there: a relay in front of git daemon cuts every fetch that asks for a
`dagain/work/` branch (while `cut` is set), and lets everything else through: the worker's other
fetches and pushes go on, so only the branch fetch meets the outage.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from gitdag.core.model import Status, Work
from gitdag.remote import claims
from gitdag.store.remote import RemoteState
from gitdag.store.state import Committed
from gitdag.transport.outcomes import RefPush
from tests.conftest import git
from tests.remote.conftest import TARGET, Daemon, build_cluster, finish, task
from tests.remote.helpers import replay_result
from tests.remote.relay import Relay, relayed
from tests.timing import within

WORK_REF = b"refs/heads/dagain/work/"


class BranchFetchCut(Relay):
    """test_outage's relay to `port`; while `cut` is set, it drops a fetch naming a work branch."""

    def __init__(self, port: int) -> None:
        self.cut = threading.Event()
        self.cut.set()
        self.dropped: list[float] = []  # when each such fetch was dropped (monotonic)
        super().__init__(port)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        if src.getpeername()[1] == self.target:
            super()._pipe(src, dst)  # the server's answers: as they are
            return
        first = b""  # the request line: which service
        window = b""  # the last bytes sent (a ref name split across two reads is still seen)
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                first = first or data
                window = (window + data)[-4096:]
                if self.cut.is_set() and b"git-upload-pack" in first and WORK_REF in window:
                    self.dropped.append(time.monotonic())
                    for sock in (src, dst):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
                    return
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _merging_without_its_worker(clone: Path, node_id: str) -> str:
    """Claim the node, push its branch with its result, as a worker that then went away would.

    Returns the branch head now recorded on the remote (the node is `merging`).
    """
    branch = f"dagain/work/{node_id}"
    git(clone, "checkout", "-q", "-b", branch, f"origin/{TARGET}")
    (clone / f"{node_id}.txt").write_text(f"{node_id}\n")
    git(clone, "add", f"{node_id}.txt")
    git(clone, "commit", "-q", "-m", f"{node_id}: its work")
    head = git(clone, "rev-parse", "HEAD").strip()
    base = git(clone, "rev-parse", f"origin/{TARGET}").strip()
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()
        claimed = claims.claim(remote, worker="worker@gone:1", labels=(), lease_s=600,
                               node_id=node_id)  # fmt: skip
        assert isinstance(claimed, Committed), claimed
        attempt = claimed.transition.attempt or 1
    work = Work(branch=branch, base=base, head=head)
    landed = replay_result(clone, node_id, attempt, work=work,
                           refs=[RefPush(head, "refs/heads/" + branch)])  # fmt: skip
    assert isinstance(landed, Committed), landed
    return head


def test_a_merge_waits_when_its_branch_fetch_meets_an_outage(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The worker adopting the merging node cannot fetch its branch for a while (each try of it
    gives up after `remote.retry_for_s`): the node stays merging, with no error and its attempt
    count unchanged; once the branch can be fetched, it lands, and no agent ever ran."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], lease=5, serve="daemon")
    server = daemons[-1]
    head = _merging_without_its_worker(cluster.clone("gone"), "a")
    assert cluster.nodes()["a"].status is Status.MERGING
    relay = BranchFetchCut(server.port)
    clone = cluster.clone("w1")
    relayed(clone, server, relay)
    worker = cluster.work(clone)
    try:
        # Two drops further apart than one call may retry (3 s: remote.retry_for_s, and a
        # worker's call is never bounded looser): at least one branch fetch gave up meanwhile.
        deadline = time.monotonic() + within(60)
        while not (relay.dropped and relay.dropped[-1] - relay.dropped[0] >= 8):
            assert time.monotonic() < deadline, "the branch fetch was never tried long enough"
            assert worker.poll() is None, worker.communicate()[1]
            node = cluster.nodes()["a"]
            assert node.status is Status.MERGING and node.error is None, node
            time.sleep(0.5)
        node = cluster.nodes()["a"]
        assert node.status is Status.MERGING and node.error is None and node.attempts == 1, node
        assert worker.poll() is None
        relay.cut.clear()  # the remote answers again
        code, err = finish(worker, timeout=within(60))
    finally:
        relay.close()
        cluster.stop_all()
    assert code == 0, err
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts == 1 and node.error is None, node
    assert cluster.rows() == []  # no agent ran: the work was there, only the network was not
    subjects = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    assert [s for s in subjects if " a: merging -> " in f" {s}"] == ["merge a: merging -> done"]
    assert head in cluster.remote_git("rev-list", TARGET)  # the branch landed on the target
    waits = [ln for ln in err.splitlines() if "a: merge waits for the remote" in ln]
    assert len(waits) == 1 and "dagain/work/a" in waits[0], err  # said once, naming the branch
