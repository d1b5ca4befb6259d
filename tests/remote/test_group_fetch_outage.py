"""A group whose member's branch fetch meets an unreachable remote waits for it, said once.

The members' worker went away after they became `merging`; another worker integrates the group
and first fetches every member's branch (remote/group_merges.py `_submit`). The relay of
test_merge_fetch_outage drops exactly those fetches for a while: the group stays merging, no
attempt is spent, no agent runs, the reason is said once (not at every retry), and once the
fetches go through the whole group lands in one target commit.
"""

from __future__ import annotations

import time
from pathlib import Path

from gitdag.core.model import Status
from tests.remote.conftest import TARGET, Daemon, build_cluster, finish, task
from tests.remote.relay import relayed
from tests.remote.test_merge_fetch_outage import BranchFetchCut, _merging_without_its_worker
from tests.timing import within

MEMBERS = ("g1", "g2", "g3")
FILES = {f"{nid}.txt" for nid in MEMBERS}


def test_a_group_waits_when_a_members_branch_fetch_meets_an_outage(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    nodes = [task(nid, group="api") for nid in MEMBERS]
    cluster = build_cluster(tmp_path, daemons, nodes, lease=5, serve="daemon")
    server = daemons[-1]
    gone = cluster.clone("gone")
    heads = {nid: _merging_without_its_worker(gone, nid) for nid in MEMBERS}
    assert {cluster.nodes()[nid].status for nid in MEMBERS} == {Status.MERGING}
    relay = BranchFetchCut(server.port)
    clone = cluster.clone("w1")
    relayed(clone, server, relay)
    worker = cluster.work(clone)
    try:
        # Drops further apart than one call may retry (remote.retry_for_s, 3 s): the group's
        # fetch gave up and was tried again at least once meanwhile.
        deadline = time.monotonic() + within(90)
        while not (relay.dropped and relay.dropped[-1] - relay.dropped[0] >= 8):
            assert time.monotonic() < deadline, "the branch fetch was never tried long enough"
            assert worker.poll() is None, worker.communicate()[1]
            found = cluster.nodes()
            for nid in MEMBERS:
                assert found[nid].status is Status.MERGING and found[nid].error is None
            time.sleep(0.5)
        found = cluster.nodes()
        for nid in MEMBERS:
            node = found[nid]
            assert node.status is Status.MERGING and node.error is None, node
            assert node.attempts - node.attempt_base == 1, node
        assert worker.poll() is None
        relay.cut.clear()  # the remote gives the branches again
        code, err = finish(worker, timeout=within(90))
    finally:
        relay.close()
        cluster.stop_all()
    assert code == 0, err
    found = cluster.nodes()
    for nid in MEMBERS:
        node = found[nid]
        assert node.status is Status.DONE and node.error is None, node
        assert node.attempts - node.attempt_base == 1, node
    assert cluster.rows() == []  # no agent ran: the work was there, only the network was not
    # One target commit integrated the whole group; none before it held part of it.
    line = cluster.remote_git("rev-list", "--first-parent", TARGET).split()
    for commit in line:
        files = set(cluster.remote_git("ls-tree", "-r", "--name-only", commit).split())
        assert files & FILES in (set(), FILES), (commit, files & FILES)
    subjects = cluster.remote_git("log", "--first-parent", "--format=%s", TARGET).splitlines()
    assert [s for s in subjects if s.startswith("gitdag: integrate")] == [
        "gitdag: integrate group api (3 nodes)"
    ]
    assert {found[nid].work.merged for nid in MEMBERS} == {line[0]}
    for head in heads.values():
        assert head in cluster.remote_git("rev-list", TARGET)
    waits = [ln for ln in err.splitlines() if "group api: merge waits for the remote" in ln]
    assert len(waits) == 1 and "dagain/work/g" in waits[0], err  # said once, naming a branch
    assert "cannot be fetched" not in err, err
