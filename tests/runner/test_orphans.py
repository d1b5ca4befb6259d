"""Recovery: runner process groups left behind by a dead supervisor are found and stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gitdag.runner import procs
from gitdag.runner.launch import launch
from gitdag.runner.orphans import (
    PidInfo,
    find_orphans,
    is_alive,
    read_pid_info,
    stop_orphan,
    wait_orphan,
)
from tests.timing import within

from .helpers import spec

# A supervisor that launches one runner and is then killed with SIGKILL: nothing of it remains to
# collect the runner, which keeps running in its own process group.
DOOMED_SUPERVISOR = """
import os, sys
from pathlib import Path
from gitdag.runner.launch import LaunchSpec, launch
from gitdag.runner.packet import PacketFiles
run_dir, cmd = Path(sys.argv[1]), sys.argv[2]
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "packet.md").write_text("packet")
(run_dir / "packet.json").write_text("{}")
handle = launch(LaunchSpec(
    node_id="task-a", attempt=1, run_id="task-a.1", runner="test", cmd=cmd, cwd=run_dir,
    run_dir=run_dir, packet=PacketFiles(run_dir / "packet.md", run_dir / "packet.json"),
    result_path=run_dir / "result.json", timeout_s=60,
))
print(handle.pid, flush=True)
os.kill(os.getpid(), 9)
"""


def orphan(runs: Path, cmd: str, ready: str | None = None) -> int:
    run_dir = runs / "task-a" / "1"
    proc = subprocess.run([sys.executable, "-c", DOOMED_SUPERVISOR, str(run_dir), cmd],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    if ready is not None:  # wait until the runner has got going
        end = time.monotonic() + 10
        while not (run_dir / ready).exists() or not (run_dir / ready).read_text().strip():
            assert time.monotonic() < end, f"{ready} never appeared"
            time.sleep(0.02)
    return int(proc.stdout.strip())


def gone(pid: int) -> bool:
    stat = procs.proc_stat(pid)
    return stat is None or stat.state in ("Z", "X")


def test_find_and_stop_an_orphan_group(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    leader = orphan(runs, "sleep 30 & echo $! > child.pid; wait", ready="child.pid")
    child = int((runs / "task-a/1/child.pid").read_text())
    found = find_orphans(runs)
    assert [(o.node_id, o.attempt, o.pid) for o in found] == [("task-a", 1, leader)]
    assert is_alive(found[0]) and not gone(child)
    assert stop_orphan(found[0], grace_s=1.0)
    assert gone(leader) and gone(child)
    assert json.loads((runs / "task-a/1/outcome.json").read_text())["orphan"] == "stopped"
    assert find_orphans(runs) == []


def test_an_orphan_that_ignores_term_is_killed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    leader = orphan(runs, "trap '' TERM; echo up > up.txt; sleep 30", ready="up.txt")
    [info] = find_orphans(runs)
    start = time.monotonic()
    assert stop_orphan(info, grace_s=0.3)
    assert time.monotonic() - start < within(3)
    assert gone(leader)


def test_members_left_after_the_leader_exited_are_found(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    leader = orphan(runs, "sleep 30 & echo $! > child.pid; exit 0", ready="child.pid")
    child = int((runs / "task-a/1/child.pid").read_text())
    end = time.monotonic() + 5
    while not gone(leader) and time.monotonic() < end:
        time.sleep(0.02)
    assert gone(leader) and not gone(child)
    [info] = find_orphans(runs)
    assert is_alive(info)
    assert stop_orphan(info, grace_s=0.5)
    assert gone(child)


def test_wait_for_an_orphan_to_finish(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    orphan(runs, "echo up > up.txt; sleep 0.5", ready="up.txt")
    [info] = find_orphans(runs)
    assert wait_orphan(info, timeout_s=5)
    assert not is_alive(info)
    assert find_orphans(runs) == []


def test_a_reused_pid_is_not_mistaken_for_the_runner(tmp_path: Path) -> None:
    me = os.getpid()
    ticks = procs.start_ticks(me)
    assert ticks is not None
    base = dict(run_dir=tmp_path, pid=me, pgid=os.getpgid(0), started_at="", node_id="x",
                attempt=1, run_id="x.1", supervisor_pid=1, supervisor_start_ticks=None)  # fmt: skip
    assert is_alive(PidInfo(start_ticks=ticks, **base))  # type: ignore[arg-type]
    assert not is_alive(PidInfo(start_ticks=ticks + 12345, **base))  # type: ignore[arg-type]


def test_pid_json_brackets_the_runners_start_time(tmp_path: Path) -> None:
    handle = launch(spec(tmp_path, "sleep 30"))
    try:
        assert handle.pid is not None
        actual = procs.start_ticks(handle.pid)
        info = read_pid_info(handle.spec.run_dir)
        assert info is not None and actual is not None
        assert info.start_ticks is not None and info.start_ticks_max is not None
        assert info.start_ticks <= actual <= info.start_ticks_max
        assert info.start_ticks_max - info.start_ticks <= within(25)  # 10 ms ticks: 1 s, x slack
        assert is_alive(info)
    finally:
        handle.cancel()
        assert handle.wait(timeout=5) is not None
    # A member killed with the group may take a moment to become a zombie on a loaded machine.
    end = time.monotonic() + within(1)
    while is_alive(info) and time.monotonic() < end:
        time.sleep(0.02)
    assert not is_alive(info)


def test_own_and_collected_runs_are_not_orphans(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    handle = launch(spec(tmp_path, "sleep 30"))
    try:
        assert read_pid_info(handle.spec.run_dir) is not None
        assert find_orphans(tmp_path / "runs") == []  # launched by this very process
    finally:
        handle.cancel()
        assert handle.wait(timeout=5) is not None
    (runs / "junk" / "1").mkdir(parents=True)
    (runs / "junk" / "1" / "pid.json").write_text("{not json")
    assert find_orphans(runs) == []
    assert find_orphans(tmp_path / "nowhere") == []
