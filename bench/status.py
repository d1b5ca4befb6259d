"""`gitdag status` and `gitdag ready` on big graphs: cold and warm, CLI process and in-process.

What is timed (median of --repeat runs, wall clock; CPU time of the CLI processes beside it,
because other work on a shared machine inflates wall time but not CPU time):
  status cold: no `.dagain/local/cache` - every node file is parsed (and the caches written).
  status warm: the index of the last snapshot is on disk and the head has not moved.
  ready after one transition: the head moved by one claim commit since the index was saved, so
    the reader loads the index and diffs one node - what a person typing `gitdag ready` next to a
    running supervisor gets.
Floors measured in the same run: a bare `python -c pass` process (start-up nobody can avoid) and
`python -c "import gitdag.readonly, ..."` (the imports the fast start of these commands needs:
gitdag's read path and dulwich; no click, no pydantic - issue 18 part 5); the CLI figures are
shown above both floors.
Targets: status warm <= 0.3 s at 10k and <= 3 s at 100k, and <= 0.1 s above `python -c pass`
at 10k (issue 18); cold <= 5 s at 10k; ready after one transition <= 0.3 s at 10k.

Usage: python bench/status.py [--sizes 10000,100000] [--repeat 7] [--cold-repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _util as u

from gitdag import actions
from gitdag.core import graph
from gitdag.core.model import Claim, Status
from gitdag.core.transitions import Transition
from gitdag.store.state import StateStore

# What `gitdag status`/`ready` import through the fast start (gitdag/readonly.py).
FAST_IMPORTS = "import gitdag.readonly, gitdag.actions, gitdag.store.state"
ABOVE_PYTHON_TARGETS = {10000: 0.1}  # s above `python -c pass`, status warm (issue 18)

# Child processes may cache bytecode (outside the work tree): an installed gitdag has its .pyc
# files, but this environment sets PYTHONDONTWRITEBYTECODE, which would make every CLI run
# recompile gitdag's own modules (~20-30 ms) and measure something no user sees.
CHILD_ENV: dict[str, str] = {}


def cli(cwd: Path, *args: str) -> tuple[float, float]:
    """Run the real CLI once: (wall s, CPU s of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gitdag", *args], cwd=cwd,
                          capture_output=True, text=True, env=CHILD_ENV)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"gitdag {' '.join(args)} failed: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def process(code: str) -> tuple[float, float]:
    """Run `python -c code` once: (wall s, CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=CHILD_ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and median CPU of runs."""
    return u.med(r[0] for r in runs), u.med(r[1] for r in runs)


def drop_cache(repo: Path) -> None:
    """Remove `.dagain/local/cache`: the next read is cold."""
    shutil.rmtree(repo / ".dagain" / "local" / "cache", ignore_errors=True)


def in_process(repo: Path, fn: Callable[[StateStore], object]) -> float:
    """Open a fresh store (new object, disk caches as they are), run fn, close; wall seconds."""
    t0 = time.perf_counter()
    store = StateStore.open(repo)
    fn(store)
    store.close()
    return time.perf_counter() - t0


def one_claim(repo: Path, taken: set[str]) -> None:
    """Commit one claim (open ready node -> running) the way a supervisor would, in-process.

    Its store hands the claimed node to the parse cache's file, as a supervisor's does within
    `FLUSH_EVERY_S` (store/state.py); the index cache stays one commit behind (a change of one
    node is below `INDEX_SLACK`, so closing the store does not rewrite it).
    """
    store = StateStore.open(repo)
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

    def compute(snap, when):  # type: ignore[no-untyped-def]
        nid = next(n for n in graph.ready(snap.nodes, now) if n not in taken)
        taken.add(nid)
        node = store.node(snap, nid)
        claim = Claim(worker="supervisor@bench:1", attempt=node.attempts + 1, since=when)
        changes = {"status": Status.RUNNING, "claim": claim, "attempts": node.attempts + 1,
                   "updated_at": when}  # fmt: skip
        new = node.model_copy(update=changes)
        return Transition(verb="claim", subject=nid, from_status="open", to_status="running",
                          put=(new,), attempt=node.attempts + 1)  # fmt: skip

    store.transact(compute, actor="supervisor@bench:1")
    store.close()


def bench_size(n: int, repeat: int, cold_repeat: int, work: Path) -> dict[str, object]:
    """All the status/ready figures for one graph size."""
    built = u.build_state_repo(work / f"s{n}", u.make_nodes(n))
    repo = built.path
    row: dict[str, object] = {"n": n, "build_s": built.build_s}

    cold_cli = []
    for _ in range(cold_repeat):
        drop_cache(repo)
        cold_cli.append(cli(repo, "status"))
    row["cli_cold"] = medians(cold_cli)
    warm_cli = [cli(repo, "status") for _ in range(repeat)]
    row["cli_warm"] = medians(warm_cli)

    cold_in = []
    for _ in range(cold_repeat):
        drop_cache(repo)
        cold_in.append(in_process(repo, actions.status))
    row["in_cold"] = u.med(cold_in)
    row["in_warm"] = u.med(in_process(repo, actions.status) for _ in range(repeat))

    # ready after one transition: index on disk is one commit behind the head each time.
    taken: set[str] = set()
    ready_cli, ready_in = [], []
    for _ in range(repeat):
        cli(repo, "status")  # the index now matches the head
        one_claim(repo, taken)
        ready_cli.append(cli(repo, "ready"))
        cli(repo, "status")
        one_claim(repo, taken)
        ready_in.append(in_process(repo, lambda s: graph.ready(s.snapshot().nodes, s.clock())))
    row["ready_cli"] = medians(ready_cli)
    row["ready_in"] = u.med(ready_in)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cold-repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {u.machine()}")
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-") as tmp:
        work = Path(tmp)
        u.seal_env(work / "home")
        # After seal_env: the children get the sealed HOME and git identity too.
        CHILD_ENV.update({k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        process(FAST_IMPORTS)  # compile once
        python = medians([process("pass") for _ in range(args.repeat)])
        imports = medians([process(FAST_IMPORTS) for _ in range(args.repeat)])
        rows = [bench_size(int(s), args.repeat, args.cold_repeat, work)
                for s in args.sizes.split(",")]  # fmt: skip
    print(
        f"floor: python start-up {python[0]:.3f} s wall ({python[1]:.3f} s CPU); "
        f"python + the fast start's imports {imports[0]:.3f} s wall ({imports[1]:.3f} s CPU)"
    )
    print()
    head = (f"{'nodes':>7} | {'what':<28} | {'wall':>8} | {'CPU':>7} | {'above python':>12} | "
            f"{'above import':>12} | target")  # fmt: skip
    print(head)
    print("-" * len(head))
    targets = {
        ("cli_warm", 10000): 0.3, ("cli_warm", 100000): 3.0, ("cli_cold", 10000): 5.0,
        ("ready_cli", 10000): 0.3,
    }  # fmt: skip
    labels = {"cli_cold": "gitdag status, cold (CLI)", "cli_warm": "gitdag status, warm (CLI)",
              "ready_cli": "gitdag ready, 1 tx (CLI)"}  # fmt: skip
    for r in rows:
        n = int(r["n"])  # type: ignore[call-overload]
        for key, label in labels.items():
            wall, cpu = r[key]  # type: ignore[misc]
            target = targets.get((key, n))
            verdict = ""
            if target is not None:
                verdict = f"<= {target} s: {'ok' if wall <= target else 'MISS'}"
            print(
                f"{n:>7} | {label:<28} | {wall:7.3f}s | {cpu:6.3f}s | "
                f"{wall - python[0]:11.3f}s | {wall - imports[0]:11.3f}s | {verdict}"
            )
        for key, label in (("in_cold", "actions.status, cold (in-process)"),
                           ("in_warm", "actions.status, warm (in-process)"),
                           ("ready_in", "ready, 1 tx (in-process)")):  # fmt: skip
            print(f"{n:>7} | {label:<28} | {r[key]:7.3f}s | {'':>7} | {'':>12} | {'':>12} |")
    print()
    for r in rows:
        n = int(r["n"])  # type: ignore[call-overload]
        wall, cpu = r["cli_warm"]  # type: ignore[misc]
        above, above_cpu = wall - python[0], cpu - python[1]
        target = ABOVE_PYTHON_TARGETS.get(n)
        verdict = f"target <= {target} s: {'ok' if above <= target else 'MISS'}" if target else ""
        print(f"gitdag status warm at {n} nodes, above `python -c pass`: {above:.3f} s wall "
              f"({above_cpu:.3f} s CPU), median of {args.repeat}; {verdict}")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("in-process figures exclude interpreter start-up and imports; 'above python' is the CLI")
    print("wall time minus a bare `python -c pass`, 'above import' minus python + the fast")
    print("start's imports (the work gitdag does for the command).")


if __name__ == "__main__":
    main()
