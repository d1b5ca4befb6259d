"""Issue 17's rules for agent loops and `needs` on `gitdag work --remote` (a real git daemon).

The same fake agent as the `gitdag run` tests (loop_runner.py), run by workers in clones of a
bare repository served on loopback (tests/remote/conftest.py).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitdag.core.model import ErrorKind, Status
from tests.agents.conftest import LOOP, LoopProject
from tests.conftest import git
from tests.remote.conftest import TARGET, Cluster, Daemon, build_cluster, finish, wait_for
from tests.review.helpers import hand_commit, node_file

ONE_ATTEMPT = {"max_attempts": 1, "backoff_s": 0}


@dataclass
class Remote:
    cluster: Cluster
    clone: Path
    log: LoopProject  # its rows() reads the runner's log

    def env(self) -> dict[str, str]:
        return {"LOOP_PLAN": str(self.log.plan_path), "LOOP_LOG": str(self.log.log_path)}

    def work(self, *args: str) -> tuple[int, str]:
        return finish(self.start(*args), timeout=240)

    def start(self, *args: str) -> Any:
        return self.cluster.work(self.clone, "--idle-exit", "5", *args, **self.env())

    def node(self, node_id: str) -> Any:
        return self.cluster.nodes()[node_id]

    def landed(self) -> set[str]:
        return set(self.cluster.remote_git("ls-tree", "-r", "--name-only", TARGET).split())

    def integrations(self, node_id: str) -> int:
        subjects = self.cluster.remote_git("log", "--format=%s", TARGET).splitlines()
        return sum(s.startswith(f"gitdag: integrate {node_id} ") for s in subjects)

    def validate(self) -> None:
        checker = self.cluster.clone("checker")
        git(checker, "fetch", "-q", "origin")
        res = self.cluster.gitdag(checker, "validate", "..origin/dagain/state")
        assert res.code == 0, res.out + res.err


def remote_loops(tmp_path: Path, daemons: list[Daemon], nodes: list[dict[str, Any]],
                 behaviours: dict[str, Any]) -> Remote:  # fmt: skip
    """A served remote holding `nodes`, and one clone whose runner is loop_runner.py."""
    cluster = build_cluster(tmp_path, daemons, nodes)
    clone = cluster.clone("w0")
    (clone / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\nrunners:\n"
        f"  loop:\n    cmd: {sys.executable} {LOOP}\n    timeout_s: 60\n"
        "roles:\n  planner: loop\n  executor: loop\n  verifier: loop\n"
        "defaults:\n  kill_grace_s: 1\nremote:\n  retry_for_s: 3\n"
    )
    # Ignored in every worktree of the clone (the common git dir's exclude file).
    (clone / ".git" / "info" / "exclude").write_text("build/\n")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(behaviours))
    log = LoopProject(clone, plan, tmp_path / "loop.log", tmp_path)
    return Remote(cluster, clone, log)


def starts(remote: Remote, node_id: str) -> list[tuple[str, int]]:
    return [(r.iteration, r.n) for r in remote.log.rows(node_id) if r.kind == "start"]


def test_a_worker_runs_a_loop_0_1_2_3_and_fails_the_one_over_max_iterations(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    nodes = [{"id": "count", "title": "count", "kind": "verify"},
             {"id": "over", "title": "over", "kind": "verify", "max_iterations": 3,
              "retry": ONE_ATTEMPT}]  # fmt: skip
    remote = remote_loops(tmp_path, daemons, nodes, {"count": {"until": 3},
                                                     "over": {"until": 100}})  # fmt: skip
    code, err = remote.work()
    assert code == 1, err  # `over` failed: nothing left to do
    assert starts(remote, "count") == [("1", 0), ("2", 1), ("3", 2), ("4", 3)]
    count = remote.node("count")
    assert count.status is Status.DONE and count.attempts == 1
    assert [n for _, n in starts(remote, "over")] == [0, 1, 2]
    over = remote.node("over")
    assert over.status is Status.FAILED
    assert "max_iterations is 3" in over.error.summary
    remote.validate()
    # A hand-made iterate on the shared history is named by `validate A..B` in any clone.
    checker = remote.cluster.clone("forger")
    git(checker, "branch", "-q", "forged", "origin/dagain/state")
    before = git(checker, "rev-parse", "forged").strip()
    path, text = node_file(checker, "count", "forged")
    assert "  iteration: 4\n" in text
    hand_commit(checker, {path: text.replace("  iteration: 4\n", "  iteration: 9\n")},
                "iterate count\n\nGitdag-Transition: iterate\nGitdag-Node: count\n"
                "Gitdag-Actor: someone\nGitdag-Iteration: 9\n", branch="forged")  # fmt: skip
    res = remote.cluster.gitdag(checker, "validate", f"{before}..forged")
    assert res.code != 0
    assert "iterate on a node that is not running" in res.out + res.err


def test_kill_9_of_a_worker_in_iteration_2_resumes_at_2_without_overlap(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    flag = tmp_path / "hung"
    remote = remote_loops(
        tmp_path, daemons, [{"id": "grow", "title": "grow"}],
        {"grow": {"until": 3, "write": True, "hang_at": 1, "hang_flag": str(flag)}},
    )  # fmt: skip
    proc = remote.start()
    wait_for(flag.exists, 120, "iteration 2 to start")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The same clone's next worker stops the orphaned runner and takes the claim back.
    code, err = remote.work()
    assert code == 0, err
    rows = remote.log.rows("grow")
    assert starts(remote, "grow") == [("1", 0), ("2", 1), ("2", 1), ("3", 2), ("4", 3)]
    assert [r.kind for r in rows].count("killed") == 1
    spans: list[tuple[float, float]] = []
    for r in rows:
        if r.kind == "start":
            spans.append((r.t, r.t))
        else:
            spans[-1] = (spans[-1][0], r.t)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start  # no overlap: the orphan was stopped before the next run began
    assert {f"grow-{n}.txt" for n in range(4)} <= remote.landed()
    assert remote.integrations("grow") == 1
    remote.validate()


def test_on_a_worker_a_node_that_needs_a_new_node_waits_then_sees_its_outputs(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    packets = tmp_path / "api-packet-{attempt}.json"
    gen = {"id": "gen-schema", "title": "generate the schema", "kind": "verify"}
    remote = remote_loops(
        tmp_path, daemons,
        [{"id": "api", "title": "the api", "retry": {"max_attempts": 2, "backoff_s": 0}}],
        {
            "api": {"write_attempt": True, "copy_packet": str(packets), "results": [
                {"status": "needs", "summary": "the schema first", "needs": [gen]},
                {"status": "success", "summary": "api built on the schema"},
            ]},
            "gen-schema": {"results": [{"status": "success", "outputs": {"schema": "v1"}}]},
        },
    )  # fmt: skip
    code, err = remote.work()
    assert code == 0, err
    order = [(r.node, r.attempt) for r in remote.log.rows() if r.kind == "start"]
    assert order.index(("gen-schema", 1)) < order.index(("api", 2))
    api = remote.node("api")
    assert api.status is Status.DONE and api.deps == ("gen-schema",)
    assert api.attempts - api.attempt_base == 1  # waiting spent nothing
    second = json.loads((tmp_path / "api-packet-2.json").read_text())
    assert second["loop"]["waited_for"] == ["gen-schema"]
    dep = next(d for d in second["deps"] if d["id"] == "gen-schema")
    assert dep["outputs"]["schema"] == "v1"
    assert {"api-a1.txt", "api-a2.txt"} <= remote.landed()
    assert remote.integrations("api") == 1
    remote.validate()


def test_on_a_worker_a_needs_that_would_make_a_cycle_is_refused_and_named(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    nodes = [{"id": "a", "title": "a", "kind": "verify", "retry": ONE_ATTEMPT},
             {"id": "b", "title": "b", "kind": "verify", "deps": ["a"]}]  # fmt: skip
    remote = remote_loops(tmp_path, daemons, nodes,
                          {"a": {"results": [{"status": "needs", "needs": ["b"]}]}})  # fmt: skip
    code, err = remote.work()
    assert code == 1, err
    a = remote.node("a")
    assert a.status is Status.FAILED and a.deps == ()
    assert a.error.kind is ErrorKind.INVALID_RESULT
    assert "needs would make a cycle: a -> b -> a" in a.error.summary
    remote.validate()


def test_on_a_worker_max_duration_s_stops_the_running_iteration(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    node = {"id": "slow", "title": "slow", "kind": "verify", "max_duration_s": 8,
            "retry": ONE_ATTEMPT}  # fmt: skip
    remote = remote_loops(tmp_path, daemons, [node], {"slow": {"until": 100, "sleep_at": 1}})
    began = time.time()
    code, err = remote.work()
    assert code == 1, err
    assert time.time() - began < 100  # not the sleep's two minutes
    rows = [(r.kind, r.iteration) for r in remote.log.rows("slow")]
    # TERM, then KILL a second later: a loaded machine may not let its handler log "killed".
    assert rows in ([("start", "1"), ("end", "1"), ("start", "2")],
                    [("start", "1"), ("end", "1"), ("start", "2"), ("killed", "2")])  # fmt: skip
    slow = remote.node("slow")
    assert slow.status is Status.FAILED and slow.error.kind is ErrorKind.TASK_FAILURE
    assert "ran past max_duration_s 8" in slow.error.summary
    remote.validate()


def test_on_a_worker_ignored_files_survive_between_iterations_and_never_land(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    remote = remote_loops(tmp_path, daemons, [{"id": "grow", "title": "grow"}],
                          {"grow": {"until": 2, "write": True, "cache": True}})  # fmt: skip
    code, err = remote.work()
    assert code == 0, err
    caches = [(r.kind, r.iteration) for r in remote.log.rows("grow") if r.kind.startswith("cache")]
    assert caches == [("cache-hit", "2"), ("cache-hit", "3")]
    assert {f"grow-{n}.txt" for n in range(3)} <= remote.landed()
    everything = remote.cluster.remote_git("log", "--all", "--format=", "--name-only")
    assert "grow-0.txt" in everything and "build/cache.bin" not in everything
    remote.validate()
