"""Runner layer cost per attempt (issue 3): packet + launch + collect, against a bare spawn.

What one attempt costs the runner layer beyond the process itself: render and write the packet
(Markdown and JSON), start `sh -c true` in its own process group with the protocol environment,
record pid.json, poll until it exits, read its output and result, write log and outcome.json.
The floor, measured in the same run and interleaved with it (this machine's speed drifts 2x over
minutes), is `subprocess.run(["/bin/sh", "-c", "true"], start_new_session=True)`: a spawn and a
wait that any design pays. Also: rendering a packet that must be cut to 64 KiB, and parsing a
1 MiB-ish result.

    python bench/runner_launch.py [--n 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from gitdag.core.model import Kind, Node
from gitdag.core.results import parse_result
from gitdag.runner.launch import LaunchSpec, launch
from gitdag.runner.packet import DepInfo, PacketData, write_packet
from gitdag.runner.packet_markdown import render_markdown

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def floor(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["/bin/sh", "-c", "true"], start_new_session=True, check=True)
    return (time.perf_counter() - start) / n


FILES = ("packet.md", "packet.json", "stdout", "stderr", "pid.json", "log", "outcome.json")


def floor_with_files(n: int, tmp: Path, round_no: int) -> float:
    """The spawn, plus creating the run directory and the seven small files any attempt keeps."""
    start = time.perf_counter()
    for i in range(n):
        run_dir = tmp / "floor" / f"n{round_no}-{i}" / "1"
        run_dir.mkdir(parents=True)
        for name in FILES:
            with open(run_dir / name, "wb") as handle:
                handle.write(b"x" * 200)
        subprocess.run(["/bin/sh", "-c", "true"], start_new_session=True, check=True)
    return (time.perf_counter() - start) / n


def ours(n: int, tmp: Path, round_no: int) -> float:
    node = Node(id="c", title="t", kind=Kind.COMMAND, run="true", created_at=NOW, updated_at=NOW)
    start = time.perf_counter()
    for i in range(n):
        run_dir = tmp / "runs" / f"n{round_no}-{i}" / "1"
        data = PacketData(goal="goal", node=node, role="command", attempt=1, run_id="c.1",
                          template="", result_path=run_dir / "result.json",
                          worktree=tmp)  # fmt: skip
        packet = write_packet(run_dir, data)
        handle = launch(LaunchSpec(
            node_id="c", attempt=1, run_id="c.1", runner="command", cmd="true", cwd=tmp,
            run_dir=run_dir, packet=packet, result_path=run_dir / "result.json", timeout_s=60,
            expect_result=False, stdin_packet=False,
        ))  # fmt: skip
        while handle.poll() is None:
            time.sleep(0.0002)
    return (time.perf_counter() - start) / n


def packet_cut(tmp: Path) -> float:
    node = Node(id="task-a", title="t", description="D" * 65_000, created_at=NOW, updated_at=NOW)
    deps = [DepInfo(f"d{i}", "dep", "done", "S" * 5000, {"k": "v" * 2000}) for i in range(50)]
    data = PacketData(goal="G" * 10_000, node=node, role="executor", attempt=2, run_id="x",
                      template="T" * 3000, result_path=tmp / "r.json", worktree=tmp,
                      deps=deps)  # fmt: skip
    start = time.perf_counter()
    for _ in range(20):
        text = render_markdown(data)
    assert len(text.encode()) <= data.max_bytes
    return (time.perf_counter() - start) / 20


def parse_big() -> float:
    text = json.dumps({"status": "success", "summary": "x" * 1_000_000, "outputs": {"a": "b"}})
    start = time.perf_counter()
    for _ in range(20):
        parse_result(text)
    return (time.perf_counter() - start) / 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        floors, files, mine = [], [], []
        for r in range(args.rounds):  # interleaved, so drift hits all alike
            floors.append(floor(args.n))
            files.append(floor_with_files(args.n, tmp, r))
            mine.append(ours(args.n, tmp, r))
        f, ff, o = statistics.median(floors), statistics.median(files), statistics.median(mine)
        print(f"spawn floor (sh -c true, new session):  {f * 1000:6.2f} ms per attempt")
        print(f"spawn + run dir with 7 files (floor 2): {ff * 1000:6.2f} ms per attempt")
        print(f"runner layer (packet+launch+collect):   {o * 1000:6.2f} ms per attempt "
              f"= {o / f:.2f}x the spawn floor, {o / ff:.2f}x floor 2")  # fmt: skip
        print(f"runner layer overhead beyond the spawn: {(o - f) * 1000:6.2f} ms per attempt")
        cut = packet_cut(tmp)
        big = parse_big()
        print(f"packet cut from ~430 KB to 64 KiB:      {cut * 1000:6.2f} ms "
              f"= {cut / f:.2f}x the spawn floor")  # fmt: skip
        print(f"parse a 1 MB result:                    {big * 1000:6.2f} ms "
              f"= {big / f:.2f}x the spawn floor")  # fmt: skip


if __name__ == "__main__":
    main()
