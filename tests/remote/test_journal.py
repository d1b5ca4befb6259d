"""Finished results kept in the clone's journal when the remote cannot take them (issue 13 part 3).

A worker whose server goes away for longer than `remote.retry_for_s` exits 2 with its finished
result kept in `.dagain/local/pending/`; started again in the same clone it pushes that result
before claiming anything (its agent does not run again), or discards it with one line when the
node's lease was lost meanwhile.
"""

from __future__ import annotations

import json
from pathlib import Path

from gitdag.core.model import Status
from gitdag.core.results import RunnerResult
from gitdag.remote.journal import Journal, lost_lease
from tests.remote.conftest import Cluster, Daemon, build_cluster, finish, task, wait_for
from tests.remote.helpers import reopen


def _finished_while_down(tmp_path: Path, daemons: list[Daemon]) -> tuple[Cluster, Path]:
    """One worker runs `a`; the server stops while it runs: the worker exits 2, result kept."""
    cluster = build_cluster(tmp_path, daemons, [task("a")], serve="http")
    clone = cluster.clone("w0")
    config = clone / ".dagain" / "config.yaml"
    config.write_text(config.read_text().replace("retry_for_s: 3", "retry_for_s: 1"))
    proc = cluster.work(clone, SLOW_NODE="a", SLOW_SECONDS="2")
    wait_for(lambda: any(r[0] == "a" for r in cluster.rows()), 60, "a to start")
    daemons[-1].stop()
    code, err = finish(proc, timeout=120)
    assert code == 2, err
    assert "gave up after 1 s" in err, err
    kept = json.loads((clone / ".dagain" / "local" / "pending" / "a.json").read_text())
    assert kept["attempt"] == 1 and kept["result"]["status"] == "success"
    assert kept["work"]["branch"] == "dagain/work/a" and kept["work"]["head"]
    return cluster, clone


def test_a_restarted_worker_finishes_its_journal_first(tmp_path: Path,
                                                       daemons: list[Daemon]) -> None:  # fmt: skip
    cluster, clone = _finished_while_down(tmp_path, daemons)
    daemons[-1].restart()
    code, err = finish(cluster.work(clone, "--idle-exit", "10"), timeout=120)
    assert code == 0, err
    assert "a: pushing the kept result of attempt 1 again" in err, err
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts == 1
    assert [r[0] for r in cluster.rows()] == ["a"]  # its agent ran once
    assert not (clone / ".dagain" / "local" / "pending" / "a.json").exists()
    assert "out/a.txt" in cluster.remote_git("ls-tree", "-r", "--name-only", "dagain/integration")


def test_a_lost_lease_discards_the_kept_result(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster, clone = _finished_while_down(tmp_path, daemons)
    daemons[-1].restart()
    other = cluster.clone("other")
    reopen(other, "a")  # its lease ran out and another worker gave it back
    code, err = finish(cluster.work(clone, "--idle-exit", "10"), timeout=120)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "kept result" in ln]
    assert len(lines) == 1, err
    assert "a: kept result of attempt 1 discarded: its lease was lost" in lines[0]
    node = cluster.nodes()["a"]
    assert node.status is Status.DONE and node.attempts == 2  # claimed and run again
    assert [(r[0], r[1]) for r in cluster.rows()] == [("a", 1), ("a", 2)]
    assert not (clone / ".dagain" / "local" / "pending" / "a.json").exists()


def test_entries_and_what_counts_as_lost(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert journal.entries() == []
    result = RunnerResult(status="success", summary="ok")
    journal.save("b", 2, result, None)
    journal.save("a", 1, result, None)
    (tmp_path / "pending" / "c.json").write_text("{not json")
    assert [(e.node_id, e.attempt) for e in journal.entries()] == [("a", 1), ("b", 2)]
    assert journal.load("b", 1) is None and journal.load("b", 2) is not None
    journal.drop("b")
    assert [e.node_id for e in journal.entries()] == ["a"]
    assert lost_lease(None, 1, "tok") == "the node no longer exists"
