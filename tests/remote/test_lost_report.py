"""A result whose push landed but whose report was lost: the clone that kept it merges it.

The remote goes away (or a try is cut) right after a worker's result push went through, so the
worker keeps the result in `.dagain/local/pending/` although the node is already `merging` on
the remote with its branch. When the worker (or the next one of its clone) replays the journal
it must see that its result is the one that landed and take the merge back. Before, it read the
node's `merging` as a lost lease, discarded the entry, and the merge waited for another worker to
adopt it a whole lease later: every `--idle-exit` worker stopped with the node still `merging`
(seen in tests/remote/test_transient.py under load).
"""

from __future__ import annotations

from pathlib import Path

from gitdag.core.model import Status, Work
from gitdag.core.results import RunnerResult
from gitdag.remote import claims
from gitdag.remote.journal import Journal
from gitdag.remote.worker import clone_token
from gitdag.store.remote import RemoteState
from gitdag.store.state import Committed
from gitdag.transport.outcomes import RefPush
from tests.conftest import git
from tests.remote.conftest import TARGET, Daemon, build_cluster, finish, task, wait_for
from tests.remote.helpers import replay_result
from tests.remote.relay import Relay, relayed
from tests.timing import within


def test_a_kept_result_that_had_landed_is_merged_by_its_clone(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("a")], lease=600, serve="daemon")
    clone = cluster.clone("w1")
    local = clone / ".dagain" / "local"
    local.mkdir(parents=True, exist_ok=True)
    worker_id = f"worker@vm:1.{clone_token(local)}"  # a worker of this clone, since gone
    branch = "dagain/work/a"
    start = git(clone, "rev-parse", "--abbrev-ref", "HEAD").strip()
    git(clone, "checkout", "-q", "-b", branch, f"origin/{TARGET}")
    (clone / "a.txt").write_text("a\n")
    git(clone, "add", "a.txt")
    git(clone, "commit", "-q", "-m", "a: its work")
    head = git(clone, "rev-parse", "HEAD").strip()
    base = git(clone, "rev-parse", f"origin/{TARGET}").strip()
    git(clone, "checkout", "-q", start)
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()
        claimed = claims.claim(remote, worker=worker_id, labels=(), lease_s=600, node_id="a")
        assert isinstance(claimed, Committed), claimed
        attempt = claimed.transition.attempt or 1
    work = Work(branch=branch, base=base, head=head)
    # The push went through ...
    landed = replay_result(
        clone, "a", attempt, work=work, refs=[RefPush(head, "refs/heads/" + branch)]
    )
    assert isinstance(landed, Committed), landed
    assert cluster.nodes()["a"].status is Status.MERGING
    # ... and its report never came back: the result is still in the journal.
    Journal(local).save("a", attempt, RunnerResult(status="success", summary="done"), work)

    worker = cluster.work(clone, "--idle-exit", "5")
    try:
        code, err = finish(worker, timeout=within(60))
    finally:
        cluster.stop_all()
    assert code == 0, err
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts == 1 and node.error is None, (node, err)
    assert head in cluster.remote_git("rev-list", TARGET)  # merged by this clone's worker
    assert "a: the kept result of attempt 1 had landed; its merge goes on here" in err, err
    assert "discarded" not in err, err
    assert not (local / "pending" / "a.json").exists()
    assert cluster.rows() == []  # no agent ran


def test_a_claim_that_landed_while_the_remote_was_silent_is_run_not_given_back(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A claim of ours lands while our link to the remote is silent (a combined claim another
    worker made for our raised hand, or our own push whose report was lost). When the remote
    answers again the worker runs it in a free slot: no give-back, no second attempt."""
    import socket

    cluster = build_cluster(tmp_path, daemons, [task("b")], lease=600, serve="daemon")
    server = daemons[-1]
    clone = cluster.clone("w1")
    relay = Relay(server.port)
    relayed(clone, server, relay)
    worker = cluster.work(clone, "--workers", "2", "--idle-exit", "10",
                          SLOW_NODE="b", SLOW_SECONDS="15")  # fmt: skip
    try:
        wait_for(lambda: [r[0] for r in cluster.rows()] == ["b"], within(60), "b to start")
        held = len(relay.held)
        relay.hang.set()  # the worker's link goes silent
        wait_for(lambda: len(relay.held) > held, within(30), "a call into the silence")
        other = cluster.clone("laptop")  # straight to the server
        res = cluster.gitdag(other, "add", "a", "--title", "a", "--kind", "task",
                            "--remote", "origin")  # fmt: skip
        assert res.code == 0, res.err
        token = (clone / ".dagain" / "local" / "worker-token").read_text().strip()
        worker_id = f"worker@{socket.gethostname() or 'localhost'}:{worker.pid}.{token}"
        with RemoteState.open(other, "origin") as remote:
            remote.fetch()
            got = claims.claim(remote, worker=worker_id, labels=(), lease_s=600, node_id="a")
            assert isinstance(got, Committed), got
        relay.hang.clear()  # it answers again
        code, err = finish(worker, timeout=within(120))
    finally:
        relay.close()
        cluster.stop_all()
    assert code == 0, err
    nodes = cluster.nodes()
    assert nodes["a"].status is Status.DONE and nodes["a"].attempts == 1, (nodes["a"], err)
    assert sorted((r[0], r[1]) for r in cluster.rows()) == [("a", 1), ("b", 1)], err
    assert "a: its claim landed while origin did not answer; running it" in err, err
    subjects = cluster.remote_git("log", "--format=%s", "dagain/state").splitlines()
    assert not [s for s in subjects if s.startswith("lease a:")], subjects  # never given back
