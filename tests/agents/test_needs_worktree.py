"""A node waiting for what it `needs` keeps its worktree in the clone that ran it (issue 17).

Its next attempt there finds the files git ignores (`build/cache.bin`) where it left them;
whatever removes leftover worktrees leaves it alone while it waits, and removes it once the node
no longer waits (attempts/waiting.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from gitdag.core.model import Status
from tests.agents.conftest import LoopProject
from tests.agents.test_remote_loops import remote_loops
from tests.conftest import git
from tests.remote.conftest import Daemon, wait_for

GEN = {"id": "gen-schema", "title": "generate the schema"}
TWO = {"max_attempts": 2, "backoff_s": 0}


def api_behaviour(packets: Path) -> dict[str, Any]:
    """Attempt 1 commits `api-a1.txt`, caches `build/cache.bin`, and needs gen-schema."""
    return {
        "write_attempt": True,
        "cache_attempts": True,
        "copy_packet": str(packets),
        "probe": ["schema.txt"],
        "results": [
            {"status": "needs", "summary": "the schema first", "needs": [GEN]},
            {"status": "success", "summary": "api built on the schema"},
        ],
    }


def kinds(loops: LoopProject, node: str) -> list[str]:
    return [r.kind for r in loops.rows(node)]


def kept(loops: LoopProject, node: str = "api") -> Path:
    return loops.root / ".dagain" / "local" / "worktrees" / node


def start_run(loops: LoopProject) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run"],
        cwd=loops.root,
        env={**os.environ, **loops.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def assert_resumed(loops: LoopProject, packets: Path) -> None:
    """Attempt 2 of api found its cache, nothing was spent, and its packet names the wait."""
    assert kinds(loops, "api").count("cache-miss") == 1
    second = [r.kind for r in loops.rows("api") if r.attempt == 2]
    assert "cache-hit" in second, second
    api = loops.show("api")
    assert api["status"] == "done"
    assert api["attempts"] - api["attempt_base"] == 1  # type: ignore[operator]
    packet = json.loads(Path(str(packets).replace("{attempt}", "2")).read_text())
    assert packet["loop"]["waited_for"] == ["gen-schema"]
    dep = next(d for d in packet["deps"] if d["id"] == "gen-schema")
    assert dep["outputs"]["schema"] == "v1"
    assert git(loops.root, "show", "dagain/integration:api-a1.txt") == "attempt 1\n"
    assert git(loops.root, "show", "dagain/integration:api-a2.txt") == "attempt 2\n"
    everything = git(loops.root, "log", "--all", "--format=", "--name-only")
    assert "build/cache.bin" not in everything
    assert not kept(loops).exists()  # done: its worktree went with the merge
    assert loops.gitdag("validate").code == 0


def gen_schema(**extra: Any) -> dict[str, Any]:
    result = {"status": "success", "summary": "schema v1", "outputs": {"schema": "v1"}}
    return {"files": [{"schema.txt": "v1\n"}], "results": [result], **extra}


def test_the_next_attempt_after_a_wait_finds_its_ignored_files(loops: LoopProject) -> None:
    packets = loops.tmp / "api-{attempt}.json"
    cache = kept(loops) / "build" / "cache.bin"
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api_behaviour(packets), "gen-schema": gen_schema(probe=[str(cache)])},
    )
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    assert f"has:{cache}" in kinds(loops, "gen-schema")  # kept while api waited
    order = [(r.node, r.attempt) for r in loops.rows() if r.kind == "start"]
    assert order.index(("gen-schema", 1)) < order.index(("api", 2))
    assert_resumed(loops, packets)


def test_a_wait_without_committed_work_moves_the_kept_worktree_to_the_tip(
    loops: LoopProject,
) -> None:
    packets = loops.tmp / "api-{attempt}.json"
    api = api_behaviour(packets)
    del api["write_attempt"]  # attempt 1 commits nothing: only its cache is worth keeping
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": {**api, "files": [{}, {"api-a2.txt": "attempt 2\n"}]}, "gen-schema": gen_schema()},
    )
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    second = [r.kind for r in loops.rows("api") if r.attempt == 2]
    # The kept checkout was moved to the target's tip, which holds gen-schema's file.
    assert "cache-hit" in second and "has:schema.txt" in second, second
    assert git(loops.root, "show", "dagain/integration:api-a2.txt") == "attempt 2\n"
    assert loops.gitdag("validate").code == 0


def test_kill_9_of_run_while_the_node_waits_keeps_its_worktree(loops: LoopProject) -> None:
    packets = loops.tmp / "api-{attempt}.json"
    flag = loops.tmp / "hung"
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api_behaviour(packets),
         "gen-schema": gen_schema(hang_at=0, hang_flag=str(flag))},
    )  # fmt: skip
    proc = start_run(loops)
    try:
        wait_for(flag.exists, 120, "gen-schema to start")
        assert (kept(loops) / "build" / "cache.bin").is_file()  # kept while it waits
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    res = loops.gitdag("run")  # crash recovery reopens gen-schema, keeps api's worktree
    assert res.code == 0, res.err
    assert kinds(loops, "gen-schema").count("start") == 2
    assert_resumed(loops, packets)


def test_a_waiting_node_cancelled_under_a_running_run_loses_its_worktree(
    loops: LoopProject,
) -> None:
    flag = loops.tmp / "hung"
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api_behaviour(loops.tmp / "api-{attempt}.json"),
         "gen-schema": gen_schema(hang_at=0, hang_flag=str(flag))},
    )  # fmt: skip
    proc = start_run(loops)
    try:
        wait_for(flag.exists, 120, "gen-schema to start")
        assert kept(loops).is_dir()
        assert loops.gitdag("cancel", "api").code == 0
        wait_for(lambda: not kept(loops).exists(), 60, "api's worktree to be removed")
        assert loops.gitdag("cancel", "gen-schema").code == 0
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    # Its committed work stays on its branch, as a cancelled node's does.
    assert git(loops.root, "show", "dagain/work/api:api-a1.txt") == "attempt 1\n"
    assert loops.show("api")["status"] == "cancelled"


def test_gc_and_doctor_keep_a_waiting_nodes_worktree_until_it_no_longer_waits(
    loops: LoopProject,
) -> None:
    fail = {"results": [{"status": "fail", "summary": "no schema today"}]}
    gen = {**GEN, "retry": {"max_attempts": 1, "backoff_s": 0}}
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": {**api_behaviour(loops.tmp / "api-{attempt}.json"),
                 "results": [{"status": "needs", "needs": [gen]}]},
         "gen-schema": fail},
    )  # fmt: skip
    res = loops.gitdag("run")
    assert res.code != 0  # gen-schema failed: api waits for it, blocked
    assert loops.show("api")["status"] == "open"
    assert (kept(loops) / "build" / "cache.bin").is_file()
    doctor = loops.gitdag("doctor")
    assert "leftover worktree" not in doctor.out + doctor.err
    assert loops.gitdag("gc").code == 0
    assert (kept(loops) / "build" / "cache.bin").is_file()
    assert loops.gitdag("cancel", "api").code == 0
    assert loops.gitdag("gc").code == 0
    assert not kept(loops).exists()
    assert git(loops.root, "show", "dagain/work/api:api-a1.txt") == "attempt 1\n"


def test_on_a_worker_the_next_attempt_after_a_wait_finds_its_ignored_files(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    packets = tmp_path / "api-{attempt}.json"
    cache = tmp_path / "w0" / ".dagain" / "local" / "worktrees" / "api" / "build" / "cache.bin"
    remote = remote_loops(
        tmp_path, daemons, [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api_behaviour(packets), "gen-schema": gen_schema(probe=[str(cache)])},
    )  # fmt: skip
    assert remote.clone == tmp_path / "w0"
    code, err = remote.work()
    assert code == 0, err
    assert f"has:{cache}" in kinds(remote.log, "gen-schema")  # kept while api waited
    assert kinds(remote.log, "api").count("cache-miss") == 1
    second = [r.kind for r in remote.log.rows("api") if r.attempt == 2]
    assert "cache-hit" in second, second
    api = remote.node("api")
    assert api.status is Status.DONE and api.attempts - api.attempt_base == 1
    packet = json.loads((tmp_path / "api-2.json").read_text())
    assert packet["loop"]["waited_for"] == ["gen-schema"]
    dep = next(d for d in packet["deps"] if d["id"] == "gen-schema")
    assert dep["outputs"]["schema"] == "v1"
    assert {"api-a1.txt", "api-a2.txt", "schema.txt"} <= remote.landed()
    assert remote.integrations("api") == 1
    assert not cache.parent.parent.exists()  # done: its worktree went
    remote.validate()


def test_kill_9_of_a_worker_while_the_node_waits_keeps_its_worktree(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    packets = tmp_path / "api-{attempt}.json"
    flag = tmp_path / "hung"
    cache = tmp_path / "w0" / ".dagain" / "local" / "worktrees" / "api" / "build" / "cache.bin"
    remote = remote_loops(
        tmp_path, daemons, [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api_behaviour(packets),
         "gen-schema": gen_schema(hang_at=0, hang_flag=str(flag))},
    )  # fmt: skip
    proc = remote.start()
    try:
        wait_for(flag.exists, 120, "gen-schema to start")
        assert cache.is_file()  # kept while api waits
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    code, err = remote.work()  # this clone's next worker gives gen-schema back, runs it again
    assert code == 0, err
    assert kinds(remote.log, "gen-schema").count("start") == 2
    second = [r.kind for r in remote.log.rows("api") if r.attempt == 2]
    assert "cache-hit" in second, second
    api = remote.node("api")
    assert api.status is Status.DONE and api.attempts - api.attempt_base == 1
    assert {"api-a1.txt", "api-a2.txt", "schema.txt"} <= remote.landed()
    remote.validate()


def test_a_kept_worktree_moved_off_its_branch_gives_way_to_a_fresh_checkout(
    loops: LoopProject,
) -> None:
    gen = {**GEN, "retry": {"max_attempts": 1, "backoff_s": 0}}
    api = api_behaviour(loops.tmp / "api-{attempt}.json")
    api["results"] = [
        {"status": "needs", "needs": [gen]},
        {"status": "success", "summary": "api built on the schema"},
    ]
    later = {"status": "success", "outputs": {"schema": "v1"}}
    loops.plan(
        [{"id": "api", "title": "the api", "retry": TWO}],
        {"api": api, "gen-schema": {"results": [{"status": "fail"}, later]}},
    )
    assert loops.gitdag("run").code != 0  # gen-schema failed once: api waits for it
    assert (kept(loops) / "build" / "cache.bin").is_file()
    git(kept(loops), "checkout", "-q", "--detach")  # someone moved the kept checkout
    assert loops.gitdag("retry", "gen-schema").code == 0
    res = loops.gitdag("run")
    assert res.code == 0, res.err
    second = [r.kind for r in loops.rows("api") if r.attempt == 2]
    assert "cache-miss" in second, second  # not reused: a fresh checkout of the carried head
    assert git(loops.root, "show", "dagain/integration:api-a1.txt") == "attempt 1\n"
    assert git(loops.root, "show", "dagain/integration:api-a2.txt") == "attempt 2\n"
    assert loops.show("api")["status"] == "done"
