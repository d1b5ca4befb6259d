"""Crash harness: kill `gitdag run` again and again until a 30-node graph finishes, then check it.

Each round builds a fresh repository whose plan node adds 29 nodes: 13 tasks that each append a
line to their own file, 3 pairs of tasks that append to the same file (so the merge queue meets
conflicts and the retry integrates), command nodes (two of them change code in a worktree),
verify nodes that check the integrated files, and a final join. Then it starts
`gitdag run --workers 3` and kills it, either at a random crash point (`GITDAG_CRASH_RANDOM`,
gitdag/crash.py) or with SIGKILL at a random moment (runners are usually in flight), restarts it,
and repeats until a run exits 0. After a kill, with `--interventions` probability, a person
cancels a running node and retries it before the restart (its old runner may still be alive).
Invariants checked after each round:

  validate   `gitdag validate ..dagain/state` passes: every commit of the branch is legal
  all_done   every node is `done`
  once       every code change is on the target exactly once: each task's line appears once,
             each code node has exactly one `gitdag: integrate <id>` merge on the target's
             first-parent line, and its `work.merged` is an ancestor of the target
  no_overlap no two runner processes of one node were alive at once (each runner holds an
             flock on its node while it lives; a failed lock is logged), and no attempt started
             twice
  no_orphans no runner process of the round is still alive, `find_orphans` finds none
  worktrees  no node worktree is left (only the scratch checkouts), `trash/` empties
  doctor     `gitdag doctor` finds nothing to repair
  checkout   (with --user-checkout: the target is checked out, clean, in the main working tree
             all along, so every merge moves its files) the checkout is clean at the target's tip

The floor is the same graph run once without kills, in the same process: the figures are printed
with their ratio to it. Runs with `--runner` as the agent (the config points at this file).

Usage: python bench/crash.py [--kills 100] [--max-kills-per-round 12] [--seed 1] [--json PATH]
       [--user-checkout]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
Proc = subprocess.CompletedProcess[str]
TARGET = "dagain/integration"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Crash",
    "GIT_AUTHOR_EMAIL": "crash@example.com",
    "GIT_COMMITTER_NAME": "Crash",
    "GIT_COMMITTER_EMAIL": "crash@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# --- the graph ---------------------------------------------------------------------------------

TASKS = [f"t{i:02d}" for i in range(13)]
PAIRS = {f"p{i}{s}": f"shared/p{i}.txt" for i in range(3) for s in "ab"}
COMMANDS = {f"c{i}": f"files/t{i:02d}.txt" for i in range(4)}  # run in the target checkout
CODE_COMMANDS = ["w0", "w1"]  # command nodes with `worktree: true`
VERIFIES = {"v0": TASKS[:6], "v1": TASKS[6:], "v2": list(PAIRS)}


def file_of(node: str) -> str:
    """The file a code-changing node appends its line to."""
    return PAIRS.get(node) or f"files/{node}.txt"


def code_nodes() -> list[str]:
    return [*TASKS, *PAIRS, *CODE_COMMANDS]


def planned_nodes(agent: str) -> list[dict[str, object]]:
    nodes: list[dict[str, object]] = []
    for i, t in enumerate(TASKS):
        nodes.append({"id": t, "title": f"task {t}", "deps": [TASKS[i - 6]] if i >= 6 else []})
    for p in PAIRS:
        nodes.append({"id": p, "title": f"pair {p}", "priority": 5})
    for c, path in COMMANDS.items():
        dep = "t" + path[-6:-4]
        nodes.append({"id": c, "title": f"check {path}", "kind": "command", "deps": [dep],
                      "run": f"{agent} --command 'test -f {path}'"})  # fmt: skip
    for w in CODE_COMMANDS:
        nodes.append({"id": w, "title": f"code command {w}", "kind": "command",
                      "worktree": True, "run": f"{agent}"})  # fmt: skip
    for v, deps in VERIFIES.items():
        nodes.append({"id": v, "title": f"verify {v}", "kind": "verify", "deps": deps})
    join = [*VERIFIES, *COMMANDS, *CODE_COMMANDS]
    nodes.append({"id": "join", "title": "join", "kind": "command", "deps": join,
                  "run": f"{agent} --command true"})  # fmt: skip
    return nodes


# --- the agent (runs as a runner process) ------------------------------------------------------


def _log(kind: str) -> None:
    line = (f"{kind} {os.environ['GITDAG_NODE_ID']} {os.environ['GITDAG_ATTEMPT']} "
            f"{os.getpid()} {time.time():.6f}\n")  # fmt: skip
    with open(Path(os.environ["CRASH_HARNESS_DIR"]) / "runs.log", "a") as fh:
        fh.write(line)


def agent(command: str | None) -> int:
    node, attempt = os.environ["GITDAG_NODE_ID"], os.environ["GITDAG_ATTEMPT"]
    locks = Path(os.environ["CRASH_HARNESS_DIR"]) / "locks"
    locks.mkdir(exist_ok=True)
    held = open(locks / f"{node}.lock", "w")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        _log("overlap")
    _log("start")

    def on_term(signum: int, frame: object) -> None:
        _log("killed")
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    rng = random.Random(f"{node}:{attempt}:{os.environ.get('CRASH_SEED', '')}")
    time.sleep(rng.uniform(0.02, float(os.environ.get("CRASH_MAX_SLEEP", "0.5"))))
    code = 0
    result: dict[str, object] = {"status": "success", "summary": f"{node} attempt {attempt}"}
    if command is not None:
        code = subprocess.run(command, shell=True).returncode
    elif node == "plan":
        result["next"] = {"addNodes": planned_nodes(os.environ["CRASH_AGENT"])}
    elif node in VERIFIES:
        missing = [t for t in VERIFIES[node] if f"{t}\n" not in _read(Path(file_of(t)))]
        if missing:
            result = {"status": "fail", "summary": f"not integrated: {missing}"}
            _log("verify_failed")
    else:  # a task or a code command: append our line in the worktree
        path = Path(file_of(node))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(f"{node}\n")
    if command is None and "GITDAG_RESULT" in os.environ and node not in CODE_COMMANDS:
        Path(os.environ["GITDAG_RESULT"]).write_text(json.dumps(result))
    _log("end")
    return code


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# --- one round -----------------------------------------------------------------------------------


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Cycle:
    mode: str  # point | sigkill | none
    code: int
    seconds: float
    killed: bool
    point: str | None = None
    stderr_tail: str = ""


@dataclass
class Round:
    index: int
    seed: int
    cycles: list[Cycle] = field(default_factory=list)
    invariants: dict[str, tuple[bool, str]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    anomalies: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(c.killed for c in self.cycles)

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(ok for ok, _ in self.invariants.values())


def gitdag(root: Path, *args: str, env: dict[str, str] | None = None) -> Proc:
    return subprocess.run([sys.executable, "-m", "gitdag", *args], cwd=root, capture_output=True,
                          text=True, env=env or os.environ.copy(), timeout=300)  # fmt: skip


def setup(work: Path, seed: int, max_sleep: float, checkout: bool = False
          ) -> tuple[Path, dict[str, str]]:  # fmt: skip
    root = work / "repo"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# crash harness\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    agent_cmd = f"{sys.executable} {HERE} --runner"
    env = {**os.environ, "CRASH_HARNESS_DIR": str(work), "CRASH_AGENT": agent_cmd,
           "CRASH_SEED": str(seed), "CRASH_MAX_SLEEP": str(max_sleep)}  # fmt: skip
    for args in (("init", "--backoff", "0", "--max-attempts", "6"),):
        res = gitdag(root, *args, env=env)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
    (root / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\n"
        f"runners:\n  agent:\n    cmd: {agent_cmd}\n    timeout_s: 60\n"
        "roles:\n  planner: agent\n  executor: agent\n  verifier: agent\n"
        "defaults:\n  kill_grace_s: 1\n"
    )
    res = gitdag(root, "add", "plan", "--title", "plan the work", "--kind", "plan", env=env)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    if checkout:
        git(root, "checkout", "-q", TARGET)
    return root, env


def run_cycle(root: Path, env: dict[str, str], mode: str, rng: random.Random, work: Path) -> Cycle:
    env = dict(env)
    crash_log = work / "crash-points.log"
    before = _read(crash_log).count("\n")
    if mode == "point":
        env["GITDAG_CRASH_RANDOM"] = f"{rng.randrange(1 << 30)}:{rng.uniform(0.01, 0.05):.4f}"
        env["GITDAG_CRASH_LOG"] = str(crash_log)
    err_path = work / "supervisor.err"
    start = time.monotonic()
    with err_path.open("w") as err:
        cmd = [sys.executable, "-m", "gitdag", "run", "--workers", "3", "-q"]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)
        killed = False
        try:
            limit = rng.uniform(0.2, 2.5) if mode == "sigkill" else 300
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            killed = True
    seconds = time.monotonic() - start
    point = None
    lines = _read(crash_log).splitlines()
    if mode == "point" and code == 137 and len(lines) > before:
        point, killed = lines[-1].split()[0], True
    tail = "" if code in (0, 137) or killed else _read(err_path)[-2000:]
    return Cycle(mode, code, seconds, killed, point if mode == "point" else "sigkill", tail)


def intervene(root: Path, env: dict[str, str], rng: random.Random) -> str | None:
    """While no supervisor runs, a person cancels a running node and retries it at once."""
    status = json.loads(gitdag(root, "status", "--json", env=env).stdout or "{}")
    running = [r["id"] for r in status.get("running", [])]
    if not running:
        return None
    node = str(rng.choice(sorted(running)))
    for verb in ("cancel", "retry"):
        res = gitdag(root, verb, node, env=env)
        if res.returncode != 0:
            return f"{verb} {node} failed: {res.stderr.strip()}"
    return node


def play(work: Path, index: int, seed: int, max_kills: int, max_sleep: float,
         interventions: float = 0.0, log: bool = True, checkout: bool = False
         ) -> Round:  # fmt: skip
    rnd = Round(index, seed)
    rng = random.Random(seed)
    root, env = setup(work, seed, max_sleep, checkout)
    start = time.monotonic()
    deadline = start + 900
    while time.monotonic() < deadline:
        mode = "none" if rnd.kills >= max_kills else rng.choice(["point", "sigkill"])
        cycle = run_cycle(root, env, mode, rng, work)
        rnd.cycles.append(cycle)
        if cycle.code == 0 and not cycle.killed:
            break
        if not cycle.killed:
            rnd.anomalies.append(f"run exited {cycle.code}: {cycle.stderr_tail.strip()[-500:]}")
            if len(rnd.anomalies) > 3:
                break
        elif rng.random() < interventions:
            done = intervene(root, env, rng)
            if done is not None and " failed: " in done:
                rnd.anomalies.append(done)
            elif done is not None:
                rnd.stats["interventions"] = rnd.stats.get("interventions", 0) + 1
    else:
        rnd.anomalies.append("round did not finish within 900 s")
    rnd.wall = time.monotonic() - start
    rnd.invariants = check(root, work, checkout)
    rnd.stats = {**round_stats(root, work), "interventions": rnd.stats.get("interventions", 0)}
    if log:
        bad = {k: v[1] for k, v in rnd.invariants.items() if not v[0]}
        extra = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rnd.stats.items())
        print(f"round {index}: seed {seed}, {rnd.kills} kills, {len(rnd.cycles)} starts, "
              f"{rnd.wall:.1f} s, {extra}, invariants {'ok' if rnd.ok else bad}"
              + (f", anomalies: {rnd.anomalies}" if rnd.anomalies else ""), flush=True)  # fmt: skip
    return rnd


# --- the invariants ------------------------------------------------------------------------------


def check(root: Path, work: Path, checkout: bool = False) -> dict[str, tuple[bool, str]]:
    found: dict[str, tuple[bool, str]] = {}
    res = gitdag(root, "validate", "..dagain/state")
    found["validate"] = (res.returncode == 0, (res.stderr or res.stdout).strip()[-600:])
    status = json.loads(gitdag(root, "status", "--json").stdout or "{}")
    counts = status.get("counts", {})
    found["all_done"] = (status.get("total") == 30 and counts.get("done") == 30, str(counts))
    found["once"] = _check_once(root)
    found["no_overlap"] = _check_overlap(work)
    found["no_orphans"] = _check_orphans(root, work)
    found["worktrees"] = _check_worktrees(root)
    res = gitdag(root, "doctor", "--json")
    findings = json.loads(res.stdout or "{}").get("findings", [])
    told = "; ".join(str(f["problem"]) for f in findings)[:600] or res.stderr[-300:]
    found["doctor"] = (res.returncode == 0 and not findings, told)
    if checkout:
        found["checkout"] = _check_checkout(root)
    return found


def _check_checkout(root: Path) -> tuple[bool, str]:
    changed = git(root, "status", "--porcelain", "--untracked-files=no")
    head, tip = git(root, "rev-parse", "HEAD").strip(), git(root, "rev-parse", TARGET).strip()
    branch = git(root, "symbolic-ref", "-q", "HEAD", check=False).strip()
    ok = not changed and head == tip and branch == "refs/heads/" + TARGET
    return ok, f"HEAD {head[:12]} ({branch}), target {tip[:12]}, changes: {changed[:300]!r}"


def round_stats(root: Path, work: Path) -> dict[str, int]:
    """What happened besides the kills: attempts, orphans stopped, conflicts, recoveries."""
    rows = _runs(work)
    entries = json.loads(gitdag(root, "log", "--json").stdout or "[]")
    return {
        "runner_starts": sum(1 for r in rows if r[0] == "start"),
        "orphans_stopped": sum(1 for r in rows if r[0] == "killed"),
        "merge_conflicts": sum(1 for e in entries if "merge conflict" in e["summary"]),
        "recovered_attempts": sum(1 for e in entries if e["verb"] == "lease"),
        "state_commits": len(entries),
    }


def _merged_commits(root: Path) -> dict[str, str | None]:
    """Each code node's `work.merged`, read from `dagain/state` in one go (a `gitdag show`
    process per node cost a second each at load)."""
    from gitdag.store.state import StateStore

    with StateStore.open(root, use_disk_cache=False) as store:
        snap = store.snapshot()
        nodes = store.nodes(snap, [n for n in code_nodes() if n in snap.nodes])
    return {nid: n.work.merged if n.work else None for nid, n in nodes.items()}


def _check_once(root: Path) -> tuple[bool, str]:
    problems = []
    subjects = git(root, "log", "--first-parent", "--format=%s", TARGET).splitlines()
    merges = Counter(s.split()[2] for s in subjects if s.startswith("gitdag: integrate "))
    tip = git(root, "rev-parse", TARGET).strip()
    merged_of = _merged_commits(root)
    for node in code_nodes():
        text = git(root, "show", f"{TARGET}:{file_of(node)}", check=False)
        if text.splitlines().count(node) != 1:
            problems.append(f"{node}: its line appears {text.splitlines().count(node)} times")
        if merges[node] != 1:
            problems.append(f"{node}: integrated {merges[node]} times")
        merged = merged_of.get(node)
        if not merged or subprocess.run(["git", "merge-base", "--is-ancestor", merged, tip],
                                        cwd=root).returncode != 0:  # fmt: skip
            problems.append(f"{node}: work.merged {merged} is not on the target")
    return not problems, "; ".join(problems[:5])


def _runs(work: Path) -> list[tuple[str, str, int, int, float]]:
    rows = []
    for line in _read(work / "runs.log").splitlines():
        kind, node, attempt, pid, t = line.split()
        rows.append((kind, node, int(attempt), int(pid), float(t)))
    return rows


def _check_overlap(work: Path) -> tuple[bool, str]:
    rows = _runs(work)
    overlaps = [f"{n}#{a}" for k, n, a, _p, _t in rows if k == "overlap"]
    starts = Counter((n, a) for k, n, a, _p, _t in rows if k == "start")
    twice = [f"{n}#{a}" for (n, a), c in starts.items() if c > 1]
    ok = not overlaps and not twice
    return ok, f"{len(starts)} attempts started; overlaps {overlaps[:5]}; started twice {twice[:5]}"


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return str(HERE).encode() in cmdline and state not in ("Z", "X")


def _check_orphans(root: Path, work: Path) -> tuple[bool, str]:
    from gitdag.runner.orphans import find_orphans
    from gitdag.store.repo import open_repo

    repo, paths = open_repo(root)
    repo.close()
    orphans = find_orphans(paths.local / "runs")
    alive = sorted({p for _k, _n, _a, p, _t in _runs(work) if _alive(p)})
    return not orphans and not alive, f"find_orphans {len(orphans)}, live runner pids {alive[:5]}"


def _check_worktrees(root: Path) -> tuple[bool, str]:
    listed = git(root, "worktree", "list", "--porcelain").split("\n\n")
    paths = [b.splitlines()[0][9:] for b in listed if b.startswith("worktree ")]
    left = [p for p in paths[1:] if "/_scratch-" not in p]
    trash = root / ".dagain" / "local" / "trash"
    deadline = time.monotonic() + 15  # removed checkouts are deleted by a background rm -rf
    while trash.is_dir() and any(trash.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    waiting = sorted(p.name for p in trash.iterdir()) if trash.is_dir() else []
    ok = not left and not waiting
    told = f"{len(paths) - 1} linked worktrees; node worktrees left: {left[:5]}; trash: {waiting}"
    return ok, told


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--command", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kills", type=int, default=100, help="total kills to reach (>= 1)")
    parser.add_argument("--max-kills-per-round", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-sleep", type=float, default=0.5, help="longest runner sleep (s)")
    parser.add_argument("--interventions", type=float, default=0.25,
                        help="chance, after a kill, that a person cancels and retries a running "
                             "node before the restart")  # fmt: skip
    parser.add_argument("--no-floor", action="store_true", help="skip the uninterrupted round")
    parser.add_argument("--user-checkout", action="store_true",
                        help="the target is checked out (clean) in the main working tree, so "
                             "every merge moves a user's checkout")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the round directories")
    args = parser.parse_args(argv)
    if args.runner:
        return agent(args.command)
    for key, value in GIT_ENV.items():
        os.environ.setdefault(key, value)
    base = Path(tempfile.mkdtemp(prefix="gitdag-crash-"))
    os.environ.setdefault("HOME", str(base))
    started = time.monotonic()
    floor = None
    if not args.no_floor:
        floor = play(base / "floor", 0, args.seed, 0, args.max_sleep,
                     checkout=args.user_checkout)  # fmt: skip
    rounds: list[Round] = []
    while sum(r.kills for r in rounds) < args.kills:
        i = len(rounds) + 1
        rounds.append(play(base / f"round{i}", i, args.seed * 1000 + i, args.max_kills_per_round,
                           args.max_sleep, args.interventions,
                           checkout=args.user_checkout))  # fmt: skip
    total = time.monotonic() - started
    summary = summarize(rounds, floor, total)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    else:
        print(f"rounds kept in {base}")
    return 0 if summary["rounds_ok"] == len(rounds) and (floor is None or floor.ok) else 1


def summarize(rounds: list[Round], floor: Round | None, total: float) -> dict[str, object]:
    cycles = [c for r in rounds for c in r.cycles]
    points = Counter(c.point for c in cycles if c.killed)
    invariant_failures = Counter(k for r in rounds for k, (ok, _) in r.invariants.items() if not ok)
    mean_round = sum(r.wall for r in rounds) / max(1, len(rounds))
    return {
        "rounds": len(rounds),
        "rounds_ok": sum(r.ok for r in rounds),
        "kills": sum(r.kills for r in rounds),
        "kills_by_point": dict(points.most_common()),
        "starts": len(cycles),
        **{k: sum(r.stats.get(k, 0) for r in rounds) for k in (rounds[0].stats if rounds else {})},
        "anomalies": [a for r in rounds for a in r.anomalies],
        "invariant_failures": dict(invariant_failures),
        "failures": {
            f"round{r.index}": {k: v[1] for k, v in r.invariants.items() if not v[0]}
            for r in rounds
            if not r.ok
        },
        "wall_s": round(total, 1),
        "mean_round_s": round(mean_round, 1),
        "floor_round_s": round(floor.wall, 1) if floor else None,
        "floor_ok": floor.ok if floor else None,
        "round_vs_floor": round(mean_round / floor.wall, 2) if floor and floor.wall else None,
    }


if __name__ == "__main__":
    sys.exit(main())
