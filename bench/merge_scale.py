"""Issue 18's workspace figures: processes per task node, live checkouts, the batching queue.

(a) Processes per task node, end to end: `gitdag run` with a fake runner on a graph whose
    planner adds 1, then 3 task nodes (each writes one file, committed and merged); a `git` and
    an `rm` shim first on PATH count every invocation; per node = (3-task run - 1-task run) / 2.
    Target ≤ 7 (it was 9 git + 1 rm before the commits moved in-process).
(b) `checkouts_of` (read on every merge) at 5, 50 and 426 worktree registrations: what the
    queue paid with every finished task's checkout kept until its merge, against what it pays
    now that a finished task's checkout goes at once (registrations = running nodes + scratch).
(c) The batching queue: 8 ready changes, a check that takes `--check-s` (2 s) and fails on one
    culprit, merged by the serial queue (`integrate` per branch) and by `integrate_batch`
    (`merge.batch: 8`, with `merge.batch_checks` 1 and 4, the default). Throughput = changes
    decided per second; the two targets' trees must be identical. Target ≥ 2.5x.

Usage: python bench/merge_scale.py [--check-s 2] [--culprit 5] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _util as u

from gitdag.config import MergeConfig
from gitdag.workspace.batch import Entry, integrate_batch
from gitdag.workspace.checkouts import checkouts_of
from gitdag.workspace.merge_queue import integrate
from gitdag.workspace.worktrees import Worktrees

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "supervisor" / "fake_runner.py"
TARGET = "dagain/integration"


def processes(base: Path, n: int) -> int:
    root = base / f"run{n}"
    root.mkdir(parents=True)
    u.git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# p\n")
    u.git(root, "add", "-A")
    u.git(root, "commit", "-qm", "initial")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable

    def gitdag(*args: str, extra: dict[str, str] | None = None) -> None:
        subprocess.run([py, "-m", "gitdag", *args], cwd=root, env={**env, **(extra or {})},
                       check=True, capture_output=True)  # fmt: skip

    gitdag("init", "--goal", "bench", "--backoff", "0")
    tasks = [{"id": f"t{i}", "title": f"f{i}"} for i in range(n)]
    plan: dict[str, object] = {
        "plan-000": {"result": {"status": "success", "next": {"addNodes": tasks}}}
    }
    plan.update({f"t{i}": {"write": {f"f{i}.txt": f"c{i}\n"}} for i in range(n)})
    (base / f"plan{n}.json").write_text(json.dumps(plan))
    (root / ".dagain" / "config.yaml").write_text(
        f"schema_version: 1\nrunners:\n  fake:\n    cmd: {py} {FAKE}\n    timeout_s: 60\n"
        "roles:\n  planner: fake\n  executor: fake\n  verifier: fake\n"
    )
    bin_dir, log = base / f"bin{n}", base / f"processes{n}.log"
    bin_dir.mkdir()
    for name in ("git", "rm"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexec {shutil.which(name)} "$@"\n')
        shim.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    gitdag("run", "--workers", "1", extra={"FAKE_PLAN": str(base / f"plan{n}.json"), "PATH": path})
    return len(log.read_text().splitlines())


def registrations(base: Path) -> dict[int, float]:
    root = base / "regs"
    u.git(base, "init", "-q", "-b", "main", str(root))
    u.git(root, "commit", "-q", "--allow-empty", "-m", "initial")
    admins = root / ".git" / "worktrees"
    admins.mkdir()
    out = {}
    for count in (5, 50, 426):
        for i in range(count):
            admin = admins / f"n{i}"
            if admin.exists():
                continue
            admin.mkdir()
            (admin / "HEAD").write_text(f"ref: refs/heads/dagain/work/n{i}\n")
            checkout = base / "regs-wt" / f"n{i}"
            checkout.mkdir(parents=True)
            (admin / "gitdir").write_text(f"{checkout}/.git\n")
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            checkouts_of(root, root / ".git", "refs/heads/" + TARGET)
            times.append(time.perf_counter() - t0)
        out[count] = statistics.median(times)
    return out


def queue_repo(base: Path, n: int, culprit: int) -> tuple[Path, list[str]]:
    root = base / "queue"
    root.mkdir()
    u.git(root, "init", "-q", "-b", "main")
    for i in range(n):
        (root / f"m{i}.txt").write_text(f"line {i}\n")
    u.git(root, "add", "-A")
    u.git(root, "commit", "-qm", "initial")
    for name in ("serial", "batch1", "batch4"):
        u.git(root, "branch", name)
    wt = Worktrees(root, root / ".git", root / ".dagain" / "local")
    ids = []
    for i in range(n):
        info = wt.create(f"c{i}", "serial")
        (info.path / f"m{i}.txt").write_text(
            f"changed {i}\n" + ("BROKEN\n" if i == culprit else "")
        )
        wt.commit_leftovers(f"c{i}", 1)
        ids.append(f"c{i}")
    return root, ids


def serial_queue(root: Path, ids: list[str], check: str) -> tuple[float, dict[str, str]]:
    t0 = time.perf_counter()
    statuses = {}
    for nid in ids:
        result = integrate(
            root, root / ".git", root / ".dagain" / "local", branch=f"dagain/work/{nid}",
            target="serial", check_cmd=check, check_timeout_s=120, node_id=nid,
            message=f"gitdag: integrate {nid}",
        )  # fmt: skip
        statuses[nid] = result.status
    return time.perf_counter() - t0, statuses


def batch_queue(
    root: Path, ids: list[str], check: str, target: str, parallel: int
) -> tuple[float, dict[str, str], int]:
    """Batches until every change is decided (the ones after a culprit may need a second)."""
    t0 = time.perf_counter()
    statuses: dict[str, str] = {}
    left, checks = list(ids), 0
    while left:
        entries = [Entry(i, f"dagain/work/{i}", f"gitdag: integrate {i}") for i in left]
        result = integrate_batch(
            root, root / ".git", root / ".dagain" / "local", entries=entries, target=target,
            check_cmd=check, check_timeout_s=120, parallel=parallel,
        )  # fmt: skip
        statuses.update({k: v.status for k, v in result.results.items()})
        checks += result.checks
        left = list(result.pending)
    return time.perf_counter() - t0, statuses, checks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-s", type=float, default=2.0)
    ap.add_argument("--changes", type=int, default=8)
    ap.add_argument("--culprit", type=int, default=5, help="which change breaks the check")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-scale-", dir=args.dir) as tmp:
        base = Path(tmp)
        u.seal_env(base / "home")
        print(f"machine: {u.machine()}; load average {os.getloadavg()[0]:.1f}")
        one, three = processes(base, 1), processes(base, 3)
        print(f"\n(a) git + rm processes per task node, gitdag run end to end: "
              f"{(three - one) / 2:.1f}  (1 task: {one} in all, 3 tasks: {three})")  # fmt: skip
        regs = registrations(base)
        print("\n(b) checkouts_of, median per call: " + "   ".join(
            f"{k} registrations {v * 1000:.2f} ms" for k, v in regs.items()))  # fmt: skip
        check = f"sleep {args.check_s}; ! git grep -q BROKEN HEAD --"
        root, ids = queue_repo(base, args.changes, args.culprit)
        t_serial, s_serial = serial_queue(root, ids, check)
        print(f"\n(c) {args.changes} ready changes, a {args.check_s:g} s check, culprit "
              f"c{args.culprit}: serial {t_serial:.1f} s ({args.changes} checks)")  # fmt: skip
        default = MergeConfig().batch_checks
        for parallel in sorted({1, 4, default}):
            target = f"batch{parallel}"
            t_batch, s_batch, checks = batch_queue(root, ids, check, target, parallel)
            same = u.git(root, "rev-parse", f"{target}^{{tree}}") == u.git(
                root, "rev-parse", "serial^{tree}"
            )
            assert s_batch == s_serial, (s_batch, s_serial)
            note = " (the default)" if parallel == default else ""
            print(f"    merge.batch {args.changes}, batch_checks {parallel}{note}: {t_batch:.1f} s "
                  f"({checks} checks)  throughput {t_serial / t_batch:.2f}x the serial queue; "
                  f"identical target tree: {same}")  # fmt: skip
            assert same
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
