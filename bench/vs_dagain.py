"""gitdag beside dagain on the same planned graphs, in the same run (issue 18).

dagain (knot0-com/dagain, Node.js + SQLite) is the tool gitdag re-implements on git. Both run the
same workload with the same kind of fake agent (a small `sh` script; planners print a result
written beforehand, tasks write one file, verifies succeed): `plan-000` adds P sub-planners, each
adds up to 99 task nodes and one verify node waiting for them (bench/e2e.py builds gitdag's side;
this script translates those results into dagain's result format).

What each tool does per task node differs, and the figures say so:
  gitdag: a claim commit, a packet, the agent in its own git worktree, the leftovers committed on
    the node's branch, the merge queue's merge onto the target, the state commits;
  dagain: a SQLite claim, a packet, the agent in the user's checkout (no worktree, no merge), and
    a verifier node it adds itself for every task (so its graph has about twice the nodes).
Per node = wall time of `run` / nodes the tool finished (each tool's own count). The ratio
dagain/gitdag is per node and per task node (a task node's whole cost: the nodes each tool needs
for it).

    python bench/vs_dagain.py [--dagain DIR] [--tasks 48,196] [--workers 3]

DIR is a dagain checkout with `npm install` done (its one dependency, blessed, is needed at
import); default $DAGAIN_DIR or /work/dagain. Needs `node` and `sqlite3`; prints why and exits 0
when one is missing (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e
from _util import git, machine, seal_env

DAGAIN_AGENT = r"""#!/bin/sh
# dagain's side of the same fake agent: results go to stdout between <result> tags.
set -e
role="$1"
id="$DAGAIN_NODE_ID"
prepared="$E2E_RESULTS/dagain-$id.json"
if [ -f "$prepared" ]; then printf '<result>%s</result>\n' "$(cat "$prepared")"; exit 0; fi
case "$id" in t-*) mkdir -p out && echo "$id" > "out/$id.txt" ;; esac
r='{"version":1,"role":"%s","nodeId":"%s","status":"success","summary":"%s ok"'
r="$r"',"next":{"addNodes":[],"setStatus":[]},"checkpoint":null,"errors":[],"confidence":1}'
printf "<result>$r</result>\n" "$role" "$id" "$id"
"""
_ROLES = ("planner", "executor", "verifier", "integrator", "finalVerifier")
_TYPES = {"plan": "plan", "task": "task", "verify": "verify"}


def _dagain_result(result: dict[str, object]) -> dict[str, object]:
    """Translate one prepared gitdag planner result into dagain's format."""
    adds = result["next"]["addNodes"]  # type: ignore[index]
    return {
        "version": 1, "role": "planner", "status": "success", "summary": result["summary"],
        "next": {"setStatus": [], "addNodes": [
            {"id": a["id"], "title": a["title"], "type": _TYPES[a["kind"]], "status": "open",
             "dependsOn": a.get("deps", []), "retryPolicy": {"maxAttempts": 1}}
            for a in adds  # type: ignore[union-attr]
        ]},
        "checkpoint": None, "errors": [], "confidence": 1,
    }  # fmt: skip


def prepare_dagain(repo: Path, tasks: int, dagain: Path) -> None:
    """The same repository and planner results as gitdag's, laid out for dagain."""
    e2e.prepare(repo, tasks)  # also writes gitdag's results; dagain's sit beside them
    shutil.rmtree(repo / ".dagain")
    git(repo, "checkout", "-q", "main")
    results = repo.parent / f"{repo.name}-results"
    for path in list(results.glob("*.json")):
        translated = _dagain_result(json.loads(path.read_text()))
        (results / f"dagain-{path.name}").write_text(json.dumps(translated))
    agent = repo.parent / f"{repo.name}-dagain-agent.sh"
    agent.write_text(DAGAIN_AGENT)
    agent.chmod(0o755)
    _node(dagain, repo, "init", "--goal", "e2e benchmark", "--no-refine", "--force", "--no-color")
    config = {
        "version": 1,
        "runners": {r: {"cmd": f"{agent} {r}"} for r in _ROLES},
        "roles": {"main": "planner", "researcher": "planner", **{r: r for r in _ROLES}},
        "supervisor": {"idleSleepMs": 0, "staleLockSeconds": 3600},
    }
    (repo / ".dagain" / "config.json").write_text(json.dumps(config))


def _node(dagain: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "E2E_RESULTS": str(repo.parent / f"{repo.name}-results")}
    return subprocess.run(
        ["node", str(dagain / "bin" / "dagain.js"), *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def run_dagain(repo: Path, dagain: Path, workers: int) -> tuple[float, int]:
    """Wall time of `dagain run` and the nodes it finished."""
    t0 = time.perf_counter()
    proc = _node(dagain, repo, "run", "--workers", str(workers), "--interval-ms", "0",
                 "--no-live", "--no-color", "--no-post-chat")  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "All nodes done." not in proc.stdout + proc.stderr:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise SystemExit(f"dagain run exited {proc.returncode}: {tail}")
    done = subprocess.run(
        ["sqlite3", str(repo / ".dagain" / "state.sqlite"),
         "SELECT count(*) FROM nodes WHERE status = 'done';"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return wall, int(done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dagain", default=os.environ.get("DAGAIN_DIR", "/work/dagain"))
    parser.add_argument("--tasks", default="48,196", help="task nodes per run (51 and 201 nodes)")
    parser.add_argument("--workers", type=int, default=3, help="dagain's default is 3")
    args = parser.parse_args()
    dagain = Path(args.dagain)
    missing = [t for t in ("node", "sqlite3") if shutil.which(t) is None]
    if missing or not (dagain / "node_modules" / "blessed").is_dir():
        why = f"missing {', '.join(missing)}" if missing else f"no installed dagain at {dagain}"
        print(f"skipped: {why}")
        return
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-vs-") as tmp:
        work = Path(tmp)
        seal_env(work / "home")
        print(machine(), f"load {e2e.load()}")
        for tasks in (int(x) for x in args.tasks.split(",")):
            g_repo, d_repo = work / f"g{tasks}", work / f"d{tasks}"
            g_nodes = e2e.prepare(g_repo, tasks)
            prepare_dagain(d_repo, tasks, dagain)
            # interleaved: dagain, gitdag, so drift hits both alike
            d_wall, d_nodes = run_dagain(d_repo, dagain, args.workers)
            g_wall = e2e.run(g_repo, args.workers)
            e2e.check(g_repo, tasks)
            d_files = len(list((d_repo / "out").glob("t-*.txt")))
            if d_files != tasks:
                raise SystemExit(f"dagain wrote {d_files} of {tasks} task files")
            print(
                f"{tasks:>4} tasks | gitdag {g_nodes} nodes {g_wall:6.1f} s "
                f"{g_wall / g_nodes * 1000:6.1f} ms/node | dagain {d_nodes} nodes {d_wall:6.1f} s "
                f"{d_wall / d_nodes * 1000:6.1f} ms/node | dagain/gitdag per node "
                f"{(d_wall / d_nodes) / (g_wall / g_nodes):.2f}x, per task {d_wall / g_wall:.2f}x "
                f"(workers {args.workers}, load {e2e.load()})",
                flush=True,
            )


if __name__ == "__main__":
    main()
