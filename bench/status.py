"""`gitdag status`, `ready` and `show` on big graphs: cold and warm, CLI process and in-process.

What is timed (median of --repeat runs, wall clock; CPU time of the CLI processes beside it,
because other work on a shared machine inflates wall time but not CPU time):
  status cold: no `.dagain/local/cache` - every node file is parsed (and the caches written).
  status warm / ready warm: the head has not moved since the last status: the quick start
    prints the report kept for it (store/reportcache.py) - no dulwich, no index, no models.
  show NODE: a node file gitdag wrote (`gitdag add`), its head read by a status before.
  ready / status after one transition: the head moved by one claim commit (written through a
    store with the disk cache, as a supervisor's) since the last command, so the reader loads
    the index and diffs what changed since it - what a person typing `gitdag ready` next to a
    running supervisor gets.
Floors measured in the same run: a bare `python -c pass` process (start-up nobody can avoid),
`python -c "import <the quick start's modules>"` and `python -c "import <the store path's>"`;
the CLI figures are shown above the bare interpreter. With --baseline DIR (another gitdag tree,
e.g. `git archive` of main), the same CLI rows run with that tree too, in the same run.
Targets: status warm <= 0.3 s at 10k and <= 3 s at 100k, and <= 0.1 s above `python -c pass`
at 10k (issue 18); status/ready warm and show <= 0.05 s above python at 10k (session 7); cold
<= 5 s at 10k; ready after one transition <= 0.3 s at 10k.

Usage: python bench/status.py [--sizes 10000,100000] [--repeat 7] [--cold-repeat 2]
                              [--baseline DIR]
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

ROOT = Path(__file__).resolve().parent.parent
# What a warm `gitdag status`/`ready` imports (the quick start: gitdag/readonly.py), and what a
# status through the store imports (one transition behind, or no report kept).
QUICK_IMPORTS = ("import gitdag.readonly, gitdag.store.gitfiles, gitdag.store.reportcache, "
                 "gitdag.store.localholds")  # fmt: skip
STORE_IMPORTS = "import gitdag.readonly, gitdag.actions, gitdag.store.state, gitdag.store.read"
ABOVE_PYTHON_TARGETS = {  # s above `python -c pass` at 10k nodes
    "cli_warm": 0.05, "ready_warm": 0.05, "show": 0.05,
}  # fmt: skip
SHOWN = "bench-show"  # the node `show` prints: added through the CLI, so gitdag wrote it

# Child processes may cache bytecode (outside the work tree): an installed gitdag has its .pyc
# files, but this environment sets PYTHONDONTWRITEBYTECODE, which would make every CLI run
# recompile gitdag's own modules (~20-30 ms) and measure something no user sees.
CHILD_ENV: dict[str, str] = {}


def cli(cwd: Path, *args: str, tree: Path = ROOT) -> tuple[float, float]:
    """Run the real CLI of `tree` once: (wall s, CPU s of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = {**CHILD_ENV, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-m", "gitdag", *args], cwd=cwd,
                          capture_output=True, text=True, env=env)  # fmt: skip
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
    `FLUSH_EVERY_S` (store/state.py); the index cache is not rewritten (it is rewritten once
    `INDEX_SLACK` nodes changed since it), so readers diff the claims made since it.
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


def bench_size(n: int, repeat: int, cold_repeat: int, work: Path,
               trees: dict[str, Path]) -> dict[str, object]:  # fmt: skip
    """All the status/ready/show figures for one graph size, for each gitdag tree."""
    built = u.build_state_repo(work / f"s{n}", u.make_nodes(n))
    repo = built.path
    row: dict[str, object] = {"n": n, "build_s": built.build_s}

    for name, tree in trees.items():
        cold_cli = []
        for _ in range(cold_repeat):
            drop_cache(repo)
            cold_cli.append(cli(repo, "status", tree=tree))
        row[f"{name}:cli_cold"] = medians(cold_cli)
        # After the cold runs: the parse cache that says gitdag wrote the file is still there.
        cli(repo, "add", f"{SHOWN}-{name}", "--title", "a node gitdag wrote", tree=tree)
        cli(repo, "status", tree=tree)
        row[f"{name}:cli_warm"] = medians([cli(repo, "status", tree=tree) for _ in range(repeat)])
        row[f"{name}:ready_warm"] = medians([cli(repo, "ready", tree=tree) for _ in range(repeat)])
        row[f"{name}:show"] = medians(
            [cli(repo, "show", f"{SHOWN}-{name}", tree=tree) for _ in range(repeat)]
        )

    cold_in = []
    for _ in range(cold_repeat):
        drop_cache(repo)
        cold_in.append(in_process(repo, actions.status))
    row["in_cold"] = u.med(cold_in)
    row["in_warm"] = u.med(in_process(repo, actions.status) for _ in range(repeat))

    # One transition behind: each command follows a claim it has not seen.
    taken: set[str] = set()
    for name, tree in trees.items():
        ready_cli, status_cli = [], []
        for _ in range(repeat):
            one_claim(repo, taken)
            ready_cli.append(cli(repo, "ready", tree=tree))
            one_claim(repo, taken)
            status_cli.append(cli(repo, "status", tree=tree))
        row[f"{name}:ready_cli"] = medians(ready_cli)
        row[f"{name}:status_1tx"] = medians(status_cli)
    ready_in = []
    for _ in range(repeat):
        one_claim(repo, taken)
        ready_in.append(in_process(repo, lambda s: graph.ready(s.snapshot().nodes, s.clock())))
    row["ready_in"] = u.med(ready_in)
    return row


LABELS = {"cli_cold": "status, cold", "cli_warm": "status, warm", "ready_warm": "ready, warm",
          "show": "show (a file gitdag wrote)", "ready_cli": "ready, 1 tx behind",
          "status_1tx": "status, 1 tx behind"}  # fmt: skip
TARGETS = {("cli_warm", 10000): 0.3, ("cli_warm", 100000): 3.0, ("cli_cold", 10000): 5.0,
           ("ready_cli", 10000): 0.3}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cold-repeat", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another gitdag tree to time beside this")
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.baseline is not None:
        trees["base"] = args.baseline.resolve()
    print(f"machine: {u.machine()}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-") as tmp:
        work = Path(tmp)
        u.seal_env(work / "home")
        # After seal_env: the children get the sealed HOME and git identity too.
        CHILD_ENV.update({k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        process(STORE_IMPORTS)  # compile once
        python = medians([process("pass") for _ in range(args.repeat)])
        quick = medians([process(QUICK_IMPORTS) for _ in range(args.repeat)])
        store = medians([process(STORE_IMPORTS) for _ in range(args.repeat)])
        rows = [bench_size(int(s), args.repeat, args.cold_repeat, work, trees)
                for s in args.sizes.split(",")]  # fmt: skip
    print(f"floor: python start-up {python[0]:.3f} s wall ({python[1]:.3f} s CPU); + the quick "
          f"start's imports {quick[0]:.3f} s ({quick[1]:.3f} s CPU); + the store path's imports "
          f"{store[0]:.3f} s ({store[1]:.3f} s CPU)")  # fmt: skip
    print()
    head = (f"{'nodes':>7} | {'tree':<5} | {'what':<22} | {'wall':>8} | {'CPU':>7} | "
            f"{'above python':>12} | {'CPU above':>9} | target")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        n = int(r["n"])  # type: ignore[call-overload]
        for key, label in LABELS.items():
            for name in trees:
                wall, cpu = r[f"{name}:{key}"]  # type: ignore[misc]
                verdicts = []
                target = TARGETS.get((key, n))
                if target is not None:
                    verdicts.append(f"<= {target} s: {'ok' if wall <= target else 'MISS'}")
                above = ABOVE_PYTHON_TARGETS.get(key) if n == 10000 else None
                if above is not None:
                    ok = wall - python[0] <= above
                    verdicts.append(f"<= {above} s above python: {'ok' if ok else 'MISS'}")
                print(f"{n:>7} | {name:<5} | {label:<22} | {wall:7.3f}s | {cpu:6.3f}s | "
                      f"{wall - python[0]:11.3f}s | {cpu - python[1]:8.3f}s | "
                      f"{'; '.join(verdicts)}")  # fmt: skip
        for key, label in (("in_cold", "actions.status, cold"),
                           ("in_warm", "actions.status, warm"),
                           ("ready_in", "ready, 1 tx (in-proc)")):  # fmt: skip
            print(f"{n:>7} | {'this':<5} | {label:<22} | {r[key]:7.3f}s | {'':>7} | {'':>12} | "
                  f"{'':>9} |")  # fmt: skip
    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("in-process figures exclude interpreter start-up and imports; 'above python' is the CLI")
    print("wall time minus a bare `python -c pass` measured in the same run (CPU likewise).")


if __name__ == "__main__":
    main()
