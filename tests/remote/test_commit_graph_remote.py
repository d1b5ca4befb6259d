"""`gitdag work --remote` keeps its clone's commit-graph up to date as its merges land."""

from __future__ import annotations

from pathlib import Path

from gitdag.workspace import commit_graph
from tests.conftest import git
from tests.remote.conftest import TARGET, Daemon, build_cluster, finish, task

CHAIN = Path(".git/objects/info/commit-graphs/commit-graph-chain")


def test_a_remote_worker_writes_a_valid_commit_graph(tmp_path: Path, daemons: list[Daemon]) -> None:
    cluster = build_cluster(tmp_path, daemons, [task(f"n{i}") for i in range(4)])
    clone = cluster.clone("w0")
    proc = cluster.work(clone, "--idle-exit", "5", **{commit_graph.ENV: "2"})
    try:
        code, err = finish(proc, timeout=120)
    finally:
        cluster.stop_all()
    assert code == 0, err
    merges = cluster.remote_git("log", "--first-parent", "--format=%s", TARGET).splitlines()
    assert sum(s.startswith("gitdag: integrate ") for s in merges) == 4
    assert (clone / CHAIN).is_file()
    git(clone, "commit-graph", "verify")
