"""Two workers race for the only ready node, fifty times: exactly one wins each time.

Against a local-path remote (git's own transport: receive-pack checks the lease under the ref
lock exactly as behind `git daemon`, which the other remote tests use), three times faster.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from gitdag.core.model import Status
from gitdag.core.transitions import parse_trailers
from tests.remote.conftest import Daemon, build_cluster, command, finish

ROUNDS = 50
RACER = Path(__file__).with_name("racer.py")


def test_two_racers_fifty_rounds(tmp_path: Path, daemons: list[Daemon]) -> None:
    log = tmp_path / "runs.log"
    chain = [command(f"r{r:02d}", log, deps=[f"r{r - 1:02d}"] if r else []) for r in range(ROUNDS)]
    cluster = build_cluster(tmp_path, daemons, chain, serve=False)
    gate = tmp_path / "barrier"
    gate.mkdir()
    procs = []
    for name in ("alice", "bob"):
        clone = cluster.clone(name)
        procs.append(subprocess.Popen(
            [sys.executable, str(RACER), str(clone), name, str(gate), str(ROUNDS),
             str(tmp_path / f"{name}.out")], env=cluster.env(), stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    try:
        for proc in procs:
            proc.wait(timeout=120)
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outcomes: dict[int, list[str]] = {}
    for name in ("alice", "bob"):
        for line in (tmp_path / f"{name}.out").read_text().split("\n"):
            if line:
                r, _, what = line.split()
                outcomes.setdefault(int(r), []).append(what)
    assert sorted(outcomes) == list(range(ROUNDS))
    assert all(sorted(v) == ["lost", "won"] for v in outcomes.values()), outcomes
    # The remote agrees: each node claimed by exactly one commit, attempt 1, and done.
    nodes = cluster.nodes()
    assert all(n.status is Status.DONE and n.attempts == 1 for n in nodes.values())
    bodies = cluster.remote_git("log", "--format=%B%x00", "dagain/state").split("\0")
    claimed = Counter(
        nid
        for body in bodies
        if parse_trailers(body).get("Gitdag-Transition") == ["claim"]
        for nid in parse_trailers(body).get("Gitdag-Node", [])
    )
    assert claimed == Counter({f"r{r:02d}": 1 for r in range(ROUNDS)})
    assert Counter(n.claim is None for n in nodes.values()) == Counter({True: ROUNDS})


def test_two_gitdag_workers_one_node(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The same race through the real CLI: one node, two `gitdag work` processes at once."""
    log = tmp_path / "runs.log"
    cluster = build_cluster(tmp_path, daemons, [command("only", log)])
    clones = [cluster.clone("w0"), cluster.clone("w1")]
    procs = [cluster.work(c, "--max-nodes", "1", "--idle-exit", "10") for c in clones]
    try:
        results = [finish(p) for p in procs]
    finally:
        cluster.stop_all()
    assert [code for code, _ in results] == [0, 0], results
    assert [r[:2] for r in cluster.rows()] == [("only", 1)]
    assert cluster.nodes()["only"].status is Status.DONE
