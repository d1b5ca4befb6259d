"""Workers over ssh, against a real sshd on 127.0.0.1: one ssh connection per worker, reused.

Each git call of a worker would otherwise log in again (key exchange, authentication); with
ssh's ControlMaster (transport/cli.py) a worker logs in about once, however many calls it makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdag.core.model import Status
from tests.remote import sshd
from tests.remote.conftest import Daemon, build_cluster, finish, task

pytestmark = pytest.mark.skipif(not sshd.available(), reason="sshd cannot run here (not root?)")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sshd.Sshd]:
    found = sshd.start_sshd(tmp_path / "sshd")
    monkeypatch.setenv("GIT_SSH_COMMAND", found.command)
    yield found
    found.stop()


def test_workers_over_ssh_reuse_one_connection(tmp_path: Path, daemons: list[Daemon],
                                               server: sshd.Sshd) -> None:  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, [task(f"t{i}") for i in range(4)], serve=False)
    url = server.url(cluster.bare)
    clones = [cluster.clone(f"w{i}", url) for i in range(2)]
    before = server.logins()
    assert before == 2  # the two clones
    workers = [cluster.work(clone) for clone in clones]
    for proc in workers:
        code, err = finish(proc, timeout=180)
        assert code == 0, err
    nodes = cluster.nodes()
    assert {n.status for n in nodes.values()} == {Status.DONE}
    assert sorted(r[0] for r in cluster.rows()) == [f"t{i}" for i in range(4)]  # once each
    # Dozens of fetches, looks and pushes; a login or two per worker.
    assert server.logins() - before <= 4, server.log.read_text()
    # The git CLI over the same kind of shared connection (GITDAG_WIRE=cli) reads it alike.
    res = cluster.gitdag(clones[0], "status", "--remote", "origin", GITDAG_WIRE="cli")
    assert res.code == 0 and "4 nodes" in res.out, res.err
