"""End to end per node (issue 18 part 7): `gitdag run` on a planned graph with fake agents.

The graph: `plan-000` (a planner) adds P sub-planners; each adds up to 99 task nodes and one
verify node that waits for them (planner fan-out, at most 100 nodes per result). A task's agent
writes one file in its worktree and reports success: gitdag commits the leftovers, the merge
queue merges the branch into the target, and the worktree is removed. A verify agent reports
success. Agents are a small `sh` script (each planner's result is written beforehand), so what
is measured is gitdag: claims, packets, launches, worktrees, commits, merges, state commits.

What the tasks change (`--files`): "edit" (the default) gives each task one line of its own in
one of the 50 files of `src/` (lines two apart, so merges are clean), so the repository has the
same 50 files at every size and what grows is the graph alone; "add" writes a new file per task
(`out/<id>.txt`), so the tree every new worktree checks out grows with the graph too (git's
`worktree add` of a 2,050-file tree costs ~4.5x that of a 250-file one), and the floor is taken
on a tree of the size the run ends with.

Per node = wall time of `gitdag run` / every node it finished (planners, tasks, verifies). Run at
two sizes in the same process; the ratio is the growth (target <= 1.3x). The floor, measured in
the same run, is what git itself needs per task node: `git worktree add -b`, write a file,
`git commit -qam`, `git merge-tree --write-tree` + `commit-tree` + `update-ref` onto the target,
`git worktree remove` and one `sh` agent spawn. The workspace code (checkouts, merge queue) is
whatever this tree has: the script uses only the CLI. The environment passes through, so
`GITDAG_COMMIT_GRAPH_EVERY=0 python bench/e2e.py` measures the queue without its commit-graph
upkeep.

    python bench/e2e.py [--sizes 200,2000] [--workers 4] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import git, machine, seal_env

PER_PLAN = 99  # tasks per sub-planner (+ its verify node = 100, the most a result may add)

AGENT = r"""#!/bin/sh
# A fake agent: planners copy their prepared result; tasks write one file; verifies succeed.
set -e
prepared="$E2E_RESULTS/$GITDAG_NODE_ID.json"
if [ -f "$prepared" ]; then cp "$prepared" "$GITDAG_RESULT"; exit 0; fi
edit="$E2E_RESULTS/$GITDAG_NODE_ID.edit"
if [ -f "$edit" ]; then
  read -r file line < "$edit"
  sed -i "${line}s/.*/x = '$GITDAG_NODE_ID $GITDAG_ATTEMPT'/" "src/m$file.py"
else
  case "$GITDAG_NODE_ID" in
    t-*) mkdir -p out && echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT" > "out/$GITDAG_NODE_ID.txt" ;;
  esac
fi
printf '{"status": "success", "summary": "%s ok"}' "$GITDAG_NODE_ID" > "$GITDAG_RESULT"
"""


FILES = 50  # files in src/
LINES = 3 * 100 + 1  # lines per file: room for 100 tasks per file (5,000 tasks), two apart


def slot(g: int) -> tuple[int, int]:
    """The file and line (1-based) the g-th task edits with `--files edit`."""
    return g % FILES, 3 * (g // FILES) + 2


def prepare(repo: Path, tasks: int, files: str = "edit", extra: int = 0) -> int:
    """Make the repository, its config and the planners' results; return the node count.

    `extra` files are added to `out/` first (the floor of `--files add` on a grown tree).
    """
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# e2e\n")
    (repo / "src").mkdir()
    for i in range(FILES):
        (repo / "src" / f"m{i}.py").write_text("".join(f"x = {i}\n" for _ in range(LINES)))
    if extra:
        (repo / "out").mkdir()
        for i in range(extra):
            (repo / "out" / f"pre-{i}.txt").write_text(f"{i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    results = repo.parent / f"{repo.name}-results"
    results.mkdir()
    agent = repo.parent / f"{repo.name}-agent.sh"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    planners = (tasks + PER_PLAN - 1) // PER_PLAN
    subs = [f"p-{j:03d}" for j in range(planners)]
    (results / "plan-000.json").write_text(json.dumps({
        "status": "success", "summary": "fan out",
        "next": {"addNodes": [{"id": s, "title": s, "kind": "plan"} for s in subs]},
    }))  # fmt: skip
    made = 0
    for j, sub in enumerate(subs):
        count = min(PER_PLAN, tasks - made)
        ids = [f"t-{j:03d}-{k:02d}" for k in range(count)]
        made += count
        if files == "edit":
            for k, t in enumerate(ids):
                (results / f"{t}.edit").write_text("{} {}\n".format(*slot(made - count + k)))
        adds = [{"id": t, "title": t, "kind": "task"} for t in ids]
        adds.append({"id": f"v-{j:03d}", "title": f"verify {sub}", "kind": "verify", "deps": ids})
        (results / f"{sub}.json").write_text(json.dumps({
            "status": "success", "summary": f"{sub} planned", "next": {"addNodes": adds},
        }))  # fmt: skip
    (repo / ".dagain").mkdir(exist_ok=True)
    env = _env(repo)
    subprocess.run(
        [sys.executable, "-m", "gitdag", "init", "--goal", "e2e benchmark", "--backoff", "0"],
        cwd=repo, env=env, check=True, capture_output=True,
    )  # fmt: skip
    (repo / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\n"
        f"runners:\n  fake:\n    cmd: {agent}\n    timeout_s: 120\n"
        "roles:\n  planner: fake\n  executor: fake\n  verifier: fake\n"
    )
    return 1 + planners + tasks + planners  # plan-000, sub-planners, tasks, verifies


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["E2E_RESULTS"] = str(repo.parent / f"{repo.name}-results")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
    return env


def run(repo: Path, workers: int, profile: Path | None = None) -> tuple[float, float]:
    """Run `gitdag run --quiet` on `repo`; return its wall time and the CPU time it used.

    The CPU time is the user + system time of the supervisor and every process it waited for
    (git, agents, shells): on a loaded machine it moves far less than the wall time. With
    `profile`, the supervisor runs under cProfile, writing that file.
    """
    prof = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *prof, "-m", "gitdag", "run", "--workers", str(workers), "--quiet"],
        cwd=repo, env=_env(repo), capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"gitdag run exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def check(repo: Path, tasks: int, files: str) -> None:
    """Every task's change reached the target: the merges happened."""
    if files == "edit":
        found = git(repo, "grep", "-h", "x = 't-", "dagain/integration", "--", "src/")
        landed = len(found.splitlines())
    else:
        landed = len(
            git(repo, "ls-tree", "-r", "--name-only", "dagain/integration", "out/").split()
        )
    if landed != tasks:
        raise SystemExit(f"{landed} of {tasks} task changes reached dagain/integration")


def floor_per_task(work: Path, samples: int = 15, files: str = "edit", extra: int = 0) -> float:
    """git's own minimum per task node (see the module docstring), median of `samples`."""
    repo = work / f"floor-{files}-{extra}"
    prepare(repo, 1, files, extra)
    agent = repo.parent / f"{repo.name}-agent.sh"
    git(repo, "branch", "floor-target", "main")
    times = []
    for i in range(samples):
        wt = work / f"{repo.name}-wt-{i}"
        t0 = time.perf_counter()
        git(repo, "worktree", "add", "-q", "-b", f"fw-{i}", str(wt), "floor-target")
        env = {**_env(repo), "GITDAG_NODE_ID": f"t-f-{i}", "GITDAG_ATTEMPT": "1",
               "GITDAG_RESULT": str(work / "floor-result.json")}  # fmt: skip
        subprocess.run([str(agent)], cwd=wt, env=env, check=True)
        git(wt, "add", "-A")
        git(wt, "commit", "-q", "-m", f"task {i}")
        tip = git(repo, "rev-parse", "floor-target").strip()
        tree = git(repo, "merge-tree", "--write-tree", tip, f"fw-{i}").split()[0]
        merged = git(repo, "commit-tree", tree, "-p", tip, "-p", f"fw-{i}", "-m", "merge").strip()
        git(repo, "update-ref", "refs/heads/floor-target", merged, tip)
        git(repo, "worktree", "remove", "--force", str(wt))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def graphed(repo: Path) -> str:
    """What the merge queue left of git's commit-graph (`workspace/commit_graph.py`)."""
    chain = repo / ".git" / "objects" / "info" / "commit-graphs" / "commit-graph-chain"
    if not chain.is_file():
        return "no commit-graph"
    commits = git(repo, "rev-list", "--count", "--all").strip()
    return f"commit-graph: {len(chain.read_text().split())} layers, {commits} commits in the repo"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,2000", help="task nodes per run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--profile", type=Path, help="write e2e-<tasks>.prof (cProfile) here")
    parser.add_argument(
        "--files", choices=("edit", "add"), default="edit",
        help="tasks edit a line of a fixed set of files, or add a file each",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-e2e-") as tmp:
        work = Path(tmp)
        seal_env(work / "home")
        print(machine(), f"load {load()}")
        floor = floor_per_task(work, files=args.files)
        print(f"tasks: --files {args.files}")
        print(f"floor per task node (git worktree + commit + merge + agent): {floor * 1000:.1f} ms")
        if args.files == "add":
            grown = floor_per_task(work, files="add", extra=max(sizes))
            print(f"the same on a tree with {max(sizes)} more files (as a run ends): "
                  f"{grown * 1000:.1f} ms = {grown / floor:.2f}x (git's own growth)")  # fmt: skip
        per: dict[int, float] = {}
        cpu: dict[int, float] = {}
        for tasks in sizes:
            repo = work / f"g{tasks}"
            nodes = prepare(repo, tasks, args.files)
            profile = args.profile / f"e2e-{tasks}.prof" if args.profile else None
            wall, used = run(repo, args.workers, profile)
            check(repo, tasks, args.files)
            per[tasks] = wall / nodes
            cpu[tasks] = used / nodes
            print(
                f"{tasks:>5} tasks, {nodes:>5} nodes, workers {args.workers}: {wall:8.1f} s, "
                f"{per[tasks] * 1000:7.1f} ms/node = {per[tasks] / floor:5.2f}x floor; "
                f"CPU {cpu[tasks] * 1000:6.1f} ms/node (load {load()}); {graphed(repo)}",
                flush=True,
            )
        if len(sizes) > 1:
            small, big = per[sizes[0]], per[sizes[-1]]
            print(f"growth {sizes[0]} -> {sizes[-1]} tasks: {big / small:.2f}x per node wall, "
                  f"{cpu[sizes[-1]] / cpu[sizes[0]]:.2f}x CPU per node (target <= 1.3; CPU is "
                  "the steadier figure on a loaded machine)")  # fmt: skip


if __name__ == "__main__":
    main()
