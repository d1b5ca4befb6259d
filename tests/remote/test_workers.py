"""Several workers in several clones share one graph through a git daemon on loopback."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from gitdag.core.model import Kind, Status
from tests.conftest import git
from tests.remote.conftest import (
    CONFIG,
    RUNNER,
    TARGET,
    Cluster,
    Daemon,
    build_cluster,
    command,
    finish,
    task,
    wait_for,
)
from tests.timing import within


def graph_of(size: int, log: Path) -> list[dict[str, Any]]:
    """Half tasks (each writes its own file), half commands; some wait for earlier nodes."""
    nodes = []
    for i in range(size):
        nid = f"n{i:02d}"
        deps = [f"n{i - 5:02d}"] if i >= 5 and i % 3 == 0 else []
        nodes.append(task(nid, deps=deps) if i % 2 == 0 else command(nid, log, deps=deps))
    return nodes


def run_workers(cluster: Cluster, count: int, *args: str) -> list[Path]:
    clones = [cluster.clone(f"w{i}") for i in range(count)]
    procs = [cluster.work(c, "--idle-exit", "20", *args) for c in clones]
    try:
        for proc in procs:
            code, err = finish(proc, timeout=within(60))  # 60 nodes; minutes at load 20
            assert code == 0, err
    finally:
        cluster.stop_all()
    return clones


def check_outcome(cluster: Cluster, size: int, workers: int) -> None:
    nodes = cluster.nodes()
    assert len(nodes) == size
    assert {n.status for n in nodes.values()} == {Status.DONE}
    # Each attempt's runner ran exactly once, and the graph records exactly those attempts.
    rows = cluster.rows()
    started = Counter((node, attempt) for node, attempt, _, _ in rows)
    assert all(count == 1 for count in started.values()), started.most_common(3)
    assert set(started) == {(nid, n.attempts) for nid, n in nodes.items()}
    assert len({repo for _, _, _, repo in rows}) >= min(2, workers)  # the work was shared
    # Every task's change is on the remote's target, integrated exactly once.
    files = set(cluster.remote_git("ls-tree", "-r", "--name-only", TARGET).split())
    tasks = [nid for nid, n in nodes.items() if n.kind is Kind.TASK]
    assert {f"out/{nid}.txt" for nid in tasks} <= files
    merges = cluster.remote_git("log", "--first-parent", "--format=%s", TARGET).splitlines()
    integrated = Counter(s.split()[2] for s in merges if s.startswith("gitdag: integrate "))
    assert integrated == Counter(tasks)
    for nid in tasks:
        merged = nodes[nid].work.merged
        assert merged and git(cluster.bare, "merge-base", "--is-ancestor", merged, TARGET) == ""


def validate_remote_range(cluster: Cluster) -> None:
    checker = cluster.clone("checker")
    git(checker, "fetch", "-q", "origin")
    res = cluster.gitdag(checker, "validate", "..origin/dagain/state")
    assert res.code == 0, res.out + res.err


def test_four_workers_sixty_nodes(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, graph_of(60, tmp_path / "runs.log"))
    run_workers(cluster, 4)
    check_outcome(cluster, 60, 4)
    validate_remote_range(cluster)


def test_two_workers_through_the_git_cli(tmp_path: Path, daemons: list[Daemon]) -> None:
    """ssh and http remotes go through `git fetch` / `git push` (transport.py): the same run."""
    cluster = build_cluster(tmp_path, daemons, graph_of(6, tmp_path / "runs.log"))
    clones = [cluster.clone(f"w{i}") for i in range(2)]
    procs = [cluster.work(c, "--idle-exit", "20", GITDAG_WIRE="cli") for c in clones]
    try:
        for proc in procs:
            code, err = finish(proc, timeout=120)
            assert code == 0, err
    finally:
        cluster.stop_all()
    check_outcome(cluster, 6, 2)
    validate_remote_range(cluster)


def test_local_path_remote_and_status(tmp_path: Path, daemons: list[Daemon]) -> None:
    log = tmp_path / "runs.log"
    nodes = [task("a"), command("b", log, deps=["a"]), task("c", deps=["b"])]
    cluster = build_cluster(tmp_path, daemons, nodes, serve=False)
    clone = cluster.clone("w0")
    before = cluster.gitdag(clone, "status", "--remote", "origin", "--json")
    assert before.code == 0, before.err
    assert json.loads(before.out)["counts"]["open"] == 3
    code, err = finish(cluster.work(clone))
    assert code == 0, err
    assert "all done" in err
    after = cluster.gitdag(clone, "status", "--remote", "origin")
    assert after.code == 0, after.err
    assert "3 nodes" in after.out and "done 3" in after.out
    # The clone's own branches were not touched: no local dagain/state, the checkout as cloned.
    assert git(clone, "branch", "--list", "dagain/state") == ""
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
    assert [r[0] for r in cluster.rows()] == ["a", "b", "c"]


def test_an_agent_loop_iterates_on_a_worker(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("loop")], serve=False)
    clone = cluster.clone("w0")
    code, err = finish(cluster.work(clone, LOOP_NODE="loop"))
    assert code == 0, err
    node = cluster.nodes()["loop"]
    assert node.status is Status.DONE and node.attempts == 1
    assert node.carry is not None and node.carry.iteration == 3
    assert [r[:2] for r in cluster.rows()] == [("loop", 1)] * 3  # three iterations, one attempt
    files = set(cluster.remote_git("ls-tree", "-r", "--name-only", TARGET).split())
    assert {"out/loop-0.txt", "out/loop-1.txt", "out/loop-2.txt"} <= files
    validate_remote_range(cluster)


def test_labels_route_nodes(tmp_path: Path, daemons: list[Daemon]) -> None:
    log = tmp_path / "runs.log"
    nodes = [command("cpu", log), command("gpu", log, labels=["gpu"]),
             command("both", log, labels=["gpu", "big"])]  # fmt: skip
    cluster = build_cluster(tmp_path, daemons, nodes, serve=False)
    plain, gpu = cluster.clone("plain"), cluster.clone("gpu")
    code, err = finish(cluster.work(plain))
    assert code == 0, err
    assert "need labels it lacks" in err
    assert [r[0] for r in cluster.rows()] == ["cpu"]
    code, err = finish(cluster.work(gpu, "--labels", "gpu,big"))
    assert code == 0, err
    assert sorted(r[0] for r in cluster.rows()) == ["both", "cpu", "gpu"]
    assert {r[3] for r in cluster.rows() if r[0] != "cpu"} == {str(gpu)}


def test_merge_conflict_across_machines(tmp_path: Path, daemons: list[Daemon]) -> None:
    """Two tasks on two machines change the same file: one lands, the other conflicts, is
    retried from the new tip, and lands too; the target has both, each merged once."""
    cluster = build_cluster(tmp_path, daemons, [task("left"), task("right")], serve=False,
                            backoff=0)  # fmt: skip
    clones = [cluster.clone("w0"), cluster.clone("w1")]
    procs = [cluster.work(c, "--idle-exit", "20", SHARED_FILE="1") for c in clones]
    try:
        for proc in procs:
            code, err = finish(proc)
            assert code == 0, err
    finally:
        cluster.stop_all()
    nodes = cluster.nodes()
    assert {n.status for n in nodes.values()} == {Status.DONE}
    retried = [n for n in nodes.values() if n.attempts == 2]
    if retried:  # the usual case: both ran at once; the loser's first merge conflicted
        assert len(retried) == 1 and retried[0].error is None
        log = cluster.remote_git("log", "--format=%s", "dagain/state")
        assert f"merge {retried[0].id}: merging -> open" in log
    shared = cluster.remote_git("show", f"{TARGET}:shared.txt").strip()
    assert shared in {"left", "right"}
    merges = cluster.remote_git("log", "--first-parent", "--format=%s", TARGET).splitlines()
    assert sorted(s.split()[2] for s in merges if s.startswith("gitdag: integrate ")) == [
        "left", "right",
    ]  # fmt: skip


def test_cancel_during_a_slow_merge_check_on_a_worker(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    cluster = build_cluster(tmp_path, daemons, [task("t")])
    clone = cluster.clone("w0")
    marker, survivor = tmp_path / "check-started", tmp_path / "check-survived"
    check = f"touch {marker}; sleep 60; touch {survivor}"
    config = CONFIG.format(runner=RUNNER) + f"merge:\n  check: {check}\n"
    (clone / ".dagain" / "config.yaml").write_text(config)
    tip = cluster.remote_git("rev-parse", TARGET).strip()
    proc = cluster.work(clone, "--idle-exit", "3")
    try:
        wait_for(marker.exists, 120, "the merge check")
        started = time.monotonic()
        res = cluster.gitdag(cluster.bare, "cancel", "t")  # a person, on the shared remote
        assert res.code == 0, res.err
        code, err = finish(proc, timeout=50)  # the check is killed, not waited for
        assert code == 0, err
        assert time.monotonic() - started < 50 and not survivor.exists()
    finally:
        cluster.stop_all()
    assert cluster.remote_git("rev-parse", TARGET).strip() == tip
    assert cluster.nodes()["t"].status is Status.CANCELLED
    assert "merge abandoned" in err
