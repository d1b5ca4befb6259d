"""Claims that combine (core/combining.py, remote/combined.py) against real servers on loopback.

Eight claimers at once never claim a node twice and every node is claimed once, with combined
claims among them; eight `gitdag work` workers finish every node exactly once; a node claimed
for the hand of a worker killed after raising it goes back to ready within the hand's short
lease, not the graph's 600 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gitdag.core.model import Status
from gitdag.core.transitions import parse_trailers
from tests.conftest import git
from tests.remote.conftest import Cluster, Daemon, build_cluster, command, finish, wait_for

CLAIMER = Path(__file__).with_name("claimer.py")


def claim_commits(cluster: Cluster) -> list[dict[str, list[str]]]:
    log = cluster.remote_git("log", "--format=%B%x00", "refs/heads/dagain/state")
    found = [parse_trailers(body) for body in log.split("\0")]
    return [t for t in found if t.get("Gitdag-Transition") == ["claim"]]


def validate(cluster: Cluster) -> None:
    checker = cluster.clone("checker")
    git(checker, "fetch", "-q", "origin")
    res = cluster.gitdag(checker, "validate", "..origin/dagain/state")
    assert res.code == 0, res.out + res.err


def claimer(cluster: Cluster, clone: Path, name: str, go: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CLAIMER), str(clone), name, str(go), str(out)],
                            env=cluster.env(), text=True, stderr=subprocess.PIPE)  # fmt: skip


@pytest.mark.parametrize("server", ["http", "daemon"])
def test_eight_claimers_combine_and_claim_every_node_once(
    tmp_path: Path, daemons: list[Daemon], server: str
) -> None:
    nodes = [command(f"c{i:02d}", tmp_path / "runs.log") for i in range(32)]
    cluster = build_cluster(tmp_path, daemons, nodes, serve=server)
    go = tmp_path / "go"
    outs = [tmp_path / f"out{i}" for i in range(8)]
    procs = [claimer(cluster, cluster.clone(f"w{i}"), f"w{i}", go, o) for i, o in enumerate(outs)]
    time.sleep(1.0)
    go.write_text("go")
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    won = [n for o in outs for n in o.read_text().split()]
    assert sorted(won) == sorted(n["id"] for n in nodes)  # each node once, to one claimer
    commits = claim_commits(cluster)
    on_remote = Counter(n for t in commits for n in t.get("Gitdag-Node", []))
    assert set(on_remote.values()) == {1}
    combined = [t for t in commits if t.get("Gitdag-Claim-For")]
    assert combined, "no claim was combined"
    assert len(commits) < len(nodes)  # fewer claim commits than claims
    hands = cluster.remote_git("for-each-ref", "refs/heads/dagain/hands/")
    assert hands == ""  # every hand went down
    validate(cluster)


def test_eight_gitdag_workers_finish_every_node_once(tmp_path: Path, daemons: list[Daemon]) -> None:
    nodes = [command(f"n{i:02d}", tmp_path / "runs.log") for i in range(24)]
    cluster = build_cluster(tmp_path, daemons, nodes, serve="http")
    clones = [cluster.clone(f"w{i}") for i in range(8)]
    procs = [cluster.work(c, "--idle-exit", "20", "--workers", "2") for c in clones]
    try:
        for proc in procs:
            code, err = finish(proc, timeout=240)
            assert code == 0, err
    finally:
        cluster.stop_all()
    final = cluster.nodes()
    assert {n.status for n in final.values()} == {Status.DONE}
    started = Counter((node, attempt) for node, attempt, _, _ in cluster.rows())
    assert all(count == 1 for count in started.values()), started.most_common(3)
    assert set(started) == {(nid, n.attempts) for nid, n in final.items()}
    assert all(n.attempts == 1 for n in final.values())  # nothing lapsed or was reclaimed
    validate(cluster)


def test_a_hand_whose_worker_was_killed_lapses_within_its_short_lease(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    nodes = [command(f"n{i}", tmp_path / "runs.log") for i in range(2)]
    cluster = build_cluster(tmp_path, daemons, nodes, serve="http")  # lease: the default 600 s
    dead = claimer(cluster, cluster.clone("dead"), "hand", tmp_path / "go", tmp_path / "hand")
    dead.communicate(timeout=60)
    assert dead.returncode == -9 and (tmp_path / "hand").read_text() == "raised\n"
    began = time.monotonic()
    worker = cluster.work(cluster.clone("live"), "--idle-exit", "60")
    try:
        code, err = finish(worker, timeout=120)
        assert code == 0, err
    finally:
        cluster.stop_all()
    took = time.monotonic() - began
    final = cluster.nodes()
    assert {n.status for n in final.values()} == {Status.DONE}
    # One node was claimed for the dead worker's hand, lapsed after its 3 s first lease (plus
    # the grace) and was run by the live worker as attempt 2; nothing waited the 600 s lease.
    commits = claim_commits(cluster)
    served = [v for t in commits for v in t.get("Gitdag-Claim-For", [])]
    assert len(served) == 1 and served[0].split()[1:] == ["worker@dead:1.dead", "deadbeef"]
    victim = served[0].split()[0]
    assert final[victim].attempts == 2
    assert sorted((n, a) for n, a, _, _ in cluster.rows()) == sorted(
        [(victim, 2), *((nid, 1) for nid in final if nid != victim)]
    )
    assert took < 120
    log = cluster.remote_git("log", "--format=%s", "refs/heads/dagain/state")
    assert f"lease {victim}: running -> open" in log
    wait_for(lambda: cluster.remote_git("for-each-ref", "refs/heads/dagain/hands/") == "", 5,
             "every hand down")  # fmt: skip
    validate(cluster)
