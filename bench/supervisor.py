"""Supervisor overhead per node (issue 3): `gitdag run` on graphs of `command` nodes running `true`.

Overhead = (wall time of the supervisor's run - the time the runners themselves took) / nodes.
The runners' own time is the cost of `sh -c true` (spawn, exec, exit, reap) measured in this run,
times the number of nodes, divided by the parallelism the shape allows (outcome.json timestamps are
not used: they are taken when the supervisor notices the exit, so they include its latency).
The floor, measured
in the same run, is what any design must pay per node: two bare dulwich compare-and-swap commits
(claim, result) on the same repository and one `sh -c true` spawn-and-wait.

Shapes: "chains" (4 chains of n/4 — the fan-out a plan makes) and "wide" (n independent nodes);
sizes 200 and 2,000; --workers 1 and 4. Targets: <= 20 ms per node, and 2,000 nodes cost at most
1.2x per node what 200 do.

    python bench/supervisor.py [--sizes 200,2000] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import EPOCH, build_state_repo, machine, seal_env
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from gitdag.core.model import Kind, Node

DRIVER = r"""
import sys, time
from gitdag.config import load_settings
from gitdag.store.state import StateStore
from gitdag.supervisor.loop import RunOptions, Supervisor
from gitdag.attempts.progress import Progress
store = StateStore.open(sys.argv[1])
settings = load_settings(store.paths.dagain)
sup = Supervisor(store, settings, RunOptions(workers=int(sys.argv[2])), Progress(quiet=True))
t0, c0 = time.perf_counter(), time.process_time()
code = sup.run()
print(time.perf_counter() - t0, code, time.process_time() - c0)
"""


def nodes_for(shape: str, n: int) -> list[Node]:
    out = []
    for i in range(n):
        deps: tuple[str, ...] = ()
        if shape == "chains":
            chain, pos = divmod(i, n // 4)
            deps = (f"c{chain}-{pos - 1:05d}",) if pos else ()
            nid = f"c{chain}-{pos:05d}"
        else:
            nid = f"w-{i:05d}"
        out.append(
            Node(
                id=nid,
                title=nid,
                kind=Kind.COMMAND,
                run="true",
                deps=deps,
                created_at=EPOCH + dt.timedelta(seconds=i),
                updated_at=EPOCH,
            )
        )
    return out


def true_cost(samples: int = 100) -> float:
    """Median wall time of spawning and reaping `sh -c true` in a new session, as runners are."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], check=True, start_new_session=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_once(
    work: Path, shape: str, n: int, workers: int, t_true: float
) -> tuple[float, float, int, float]:
    repo = work / f"{shape}-{n}-{workers}"
    built = build_state_repo(repo, nodes_for(shape, n))
    (repo / ".dagain").mkdir(exist_ok=True)
    # The synthetic graph is one commit, not a history of legal transitions: mark it verified so
    # the run measures the loop, not a validation of a history that never happened.
    (repo / ".dagain/local").mkdir(parents=True, exist_ok=True)
    (repo / ".dagain/local/verified-head").write_text(built.head + "\n")
    (repo / ".dagain/config.yaml").write_text("schema_version: 1\n")
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(repo), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall_s, code, cpu_s = out.stdout.split()
    assert code == "0", out.stderr
    parallel = min(workers, 4) if shape == "chains" else workers
    return float(wall_s), n * t_true / parallel, n, float(cpu_s)


def floor_per_node(work: Path, samples: int = 60) -> float:
    """Two bare dulwich CAS commits and one `sh -c true`, per node, in the same kind of repo."""
    repo_path = work / "floor"
    build_state_repo(repo_path, nodes_for("wide", 200))
    repo = Repo(str(repo_path))
    ref = b"refs/heads/floor"
    repo.refs[ref] = repo.refs[b"refs/heads/dagain/state"]
    times = []
    for i in range(samples):
        t0 = time.perf_counter()
        for j in range(2):
            head = repo.refs[ref]
            commit_obj = repo[head]
            blob = Blob.from_string(f"{i}-{j}\n".encode())
            tree = Tree()
            for entry in repo[commit_obj.tree].iteritems():
                tree.add(entry.path, entry.mode, entry.sha)
            tree.add(b"floor.txt", 0o100644, blob.id)
            commit = Commit()
            commit.tree = tree.id
            commit.parents = [head]
            commit.author = commit.committer = b"f <f@x>"
            commit.author_time = commit.commit_time = int(time.time())
            commit.author_timezone = commit.commit_timezone = 0
            commit.message = b"floor\n"
            for obj in (blob, tree, commit):
                repo.object_store.add_object(obj)
            assert repo.refs.set_if_equals(ref, head, commit.id)
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        times.append(time.perf_counter() - t0)
    repo.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--shapes", default="chains,wide")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="interleaved repetitions of every cell; the figures are the medians",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-sup-") as tmp:
        work = Path(tmp)
        seal_env(work / "home")
        print(machine())
        floor = floor_per_node(work)
        t_true = true_cost()
        print(
            f"floor per node (2 CAS commits + sh -c true): {floor * 1000:.1f} ms; "
            f"sh -c true alone: {t_true * 1000:.1f} ms"
        )
        results: dict[tuple[str, int, int], float] = {}
        cpu: dict[tuple[str, int, int], float] = {}
        print(
            f"{'shape':7} {'nodes':>6} {'workers':>7} {'wall s':>8} {'runners s':>9} "
            f"{'overhead/node':>13} {'x floor':>7} {'CPU/node':>9} {'load':>5}"
        )
        samples: dict[tuple[str, int, int], list[tuple[float, float]]] = {}
        # Repetitions are interleaved (every cell once, then again) so a load that drifts over
        # minutes spreads over both sizes instead of landing on one of them.
        for rep in range(args.repeat):
            for shape in args.shapes.split(","):
                for n in (int(x) for x in args.sizes.split(",")):
                    for workers in (int(x) for x in args.workers.split(",")):
                        wall, runners, count, used = run_once(
                            work / f"r{rep}", shape, n, workers, t_true
                        )
                        per = (wall - runners) / count
                        samples.setdefault((shape, n, workers), []).append((per, used / count))
                        print(
                            f"{shape:7} {n:>6} {workers:>7} {wall:>8.2f} {runners:>9.2f} "
                            f"{per * 1000:>10.1f} ms {per / floor:>7.2f} "
                            f"{used / count * 1000:>6.1f} ms {os.getloadavg()[0]:>5.1f}",
                            flush=True,
                        )
        for key, got in samples.items():
            results[key] = statistics.median(p for p, _ in got)
            cpu[key] = statistics.median(c for _, c in got)
        if args.repeat > 1:
            print(f"medians of {args.repeat} interleaved repetitions:")
            for key, per in results.items():
                shape, n, workers = key
                print(
                    f"{shape:7} {n:>6} {workers:>7} {per * 1000:>10.1f} ms wall/node "
                    f"{per / floor:>6.2f}x floor {cpu[key] * 1000:>6.1f} ms CPU/node"
                )
        sizes = sorted({k[1] for k in results})
        if len(sizes) > 1:
            for shape in args.shapes.split(","):
                for workers in (int(x) for x in args.workers.split(",")):
                    small, big = (
                        results[(shape, sizes[0], workers)],
                        results[(shape, sizes[-1], workers)],
                    )
                    key_small, key_big = (shape, sizes[0], workers), (shape, sizes[-1], workers)
                    print(
                        f"growth {shape} workers={workers}: {sizes[0]} -> {sizes[-1]} nodes: "
                        f"{big / small:.2f}x per node wall, "
                        f"{cpu[key_big] / cpu[key_small]:.2f}x supervisor CPU per node "
                        "(target <= 1.15; CPU is the steadier figure on a loaded machine)"
                    )


if __name__ == "__main__":
    main()
