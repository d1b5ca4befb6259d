"""Claims through a shared remote: throughput and latency with 1, 4 and 8 workers on loopback.

What is timed:
  claim: one worker process per clone, all started together (a barrier, so process start-up is
    not counted), each claiming nodes until none is ready, exactly as `gitdag work` claims
    (`gitdag.remote.claims`: choose at random among the first 4 ready nodes of the head it knows,
    push the claim transition with a lease and a unique nonce, confirmed by the push's own
    `<expected>..<ours>` report; taking turns as `gitdag.core.contention` says; the remote spoken
    to in-process through `dulwich.client`, gitdag/transport/). Latency = from choosing to the
    confirmation, lost races and waiting for a turn included. Throughput = all claims / (last
    confirmation - first start).
    "give-ups": claims that hit their bound of lost races and started over.
  A worker that never wins records no latency: "longest fruitless wait" is the longest time a
  worker's last attempt waited before finding nothing left (starvation the p95 cannot show).
  floor: a bare `git push --porcelain --force-with-lease=<ref>:<old>` of one new commit (made
    beforehand with `git commit-tree`) to the same server, measured right before each run.
The remote is a bare repository on 127.0.0.1, fresh for each run, with independent `command`
nodes, served by each transport of `--transports` in turn (interleaved with the worker counts):
  http: smart HTTP, `git http-backend` behind a threaded WSGI server with basic auth
    (tests/remote/httpd.py);
  daemon: `git daemon`;
  http-delay (or delay): the same HTTP server behind a relay that holds every chunk 50 ms each
    way (100 ms added round trip);
  ssh: `sshd` from the distribution on a port of its own, key authentication, serving git as a
    git host does (no shell start-up files, protocol v2 accepted: tests/remote/sshd.py);
    dulwich's ssh client over ssh's ControlMaster (one connection per worker); only where
    /usr/sbin/sshd exists. BENCH_SSH_LOGIN_RC=1 lets the account's ~/.bashrc run for every
    command, BENCH_SSH_V0=1 refuses GIT_PROTOCOL (protocol v0).
After each run every node's claim commits are counted on the remote: a node claimed twice
fails the benchmark.

Targets: no double claim ever; p95 claim latency <= 2 s with 8 workers; aggregate claims/s at
8 workers >= 50% of the single-worker rate. With `--repeat N` every worker count runs N times,
interleaved (1, 4, 8, 1, 4, 8, ...), and the ratio is the median of the N ratios, each between
runs at most a minute apart: this machine's speed drifts by 2x over minutes.

`--hold S` models `gitdag work --workers 1`: each worker "runs" every node it claimed for S seconds
before claiming the next (default 0: back-to-back claims, the saturated case the targets are
about).

Usage: python bench/claims.py [--transports http,daemon,http-delay,ssh] [--workers 1,4,8]
       [--claims 96] [--repeat 3] [--hold 0]
Each result line ends with the load average (1 min) when the run ended; the floor is measured
in the same run, so `median/floor` and `p95/floor` compare like with like on a loaded machine.
(--claims 48 weighs the start of a run, when all workers race once, twice as much.)
Tuning (environment): BENCH_IDLE, BENCH_NEXT_NAP, BENCH_EXPECT override contention.IDLE,
NEXT_NAP and EXPECT in the workers; BENCH_VERBOSE=1 prints per-claim latencies, transport calls
and the machine's CPU use;
BENCH_PROFILE=DIR writes a cProfile of each worker there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import _util as u
import servers

from gitdag import actions
from gitdag.core.transitions import parse_trailers
from gitdag.errors import StaleSnapshotError
from gitdag.store.state import Committed, StateStore

STATE = "refs/heads/dagain/state"


def seed(root: Path, name: str, count: int) -> Path:
    """A bare repository with `count` independent command nodes, under `root`."""
    work = root / f"{name}-seed"
    work.mkdir()
    u.git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# bench\n")
    u.git(work, "add", "README.md")
    u.git(work, "commit", "-q", "-m", "initial")
    with StateStore.open(work, use_disk_cache=False, readme=False) as store:
        actions.init(store, "", "dagain/integration")
        for i in range(count):
            actions.add(store, {"id": f"c{i:03d}", "title": f"claim me {i}", "kind": "command",
                                "run": "true"})  # fmt: skip
    bare = root / "served" / f"{name}.git"
    u.git(root, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def floor(clone: Path, rounds: int) -> list[float]:
    """Wall times of a bare `git push --force-with-lease` of one new commit to the daemon."""
    ref = "refs/heads/bench-floor"
    tree = u.git(clone, "rev-parse", "HEAD^{tree}").strip()
    old = ""
    times = []
    for i in range(rounds):
        parents = ["-p", old] if old else []
        new = u.git(clone, "commit-tree", tree, *parents, "-m", f"floor {i}").strip()
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["git", "push", "--porcelain", f"--force-with-lease={ref}:{old}", "origin",
             f"{new}:{ref}"], cwd=clone, capture_output=True, text=True,
        )  # fmt: skip
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"floor push failed: {proc.stderr}")
        old = new
    return times


def worker(clone: Path, go: Path, out: Path, hold: float) -> None:
    """One claiming process: wait for `go`, claim until nothing is ready, write what it did.

    With `hold`, each claimed node "runs" that long before the next claim, as under
    `gitdag work --workers 1` (0: claim back to back, the saturated case).
    """
    from gitdag.remote import claims
    from gitdag.store.remote import RemoteState

    wid = f"worker@bench:{os.getpid()}"
    if os.environ.get("BENCH_IDLE"):  # tuning contention.IDLE / NEXT_NAP in the workers
        import gitdag.core.contention as c

        c.IDLE = float(os.environ["BENCH_IDLE"])
        c.NEXT_NAP = float(os.environ.get("BENCH_NEXT_NAP", c.NEXT_NAP))
        c.EXPECT = float(os.environ.get("BENCH_EXPECT", c.EXPECT))
    results = []
    starved = 0.0  # how long the last attempt waited before finding nothing left to claim
    timings: list[tuple[str, float, int]] = []
    if os.environ.get("BENCH_VERBOSE"):
        import gitdag.transport as tr

        def spying(cls: type, name: str) -> None:
            real = getattr(cls, name)

            def spy(self: object, *args: object, **kwargs: object) -> object:
                t = time.perf_counter()
                ok = 0
                try:
                    out = real(self, *args, **kwargs)
                    ok = int(getattr(out, "ok", 1))
                    return out
                finally:
                    timings.append((f"{cls.__name__}.{name}", time.perf_counter() - t, ok))

            setattr(cls, name, spy)

        for cls in (tr.ClientTransport, tr.CliTransport):
            for name in ("fetch", "push", "refs"):
                spying(cls, name)
    with RemoteState.open(clone, "origin") as remote:
        remote.fetch()
        while not go.exists():
            time.sleep(0.002)
        begin = time.time()
        while True:
            t0 = time.perf_counter()
            lost = 0
            won = None
            while won is None:
                # Like `gitdag work`: decide on the head we know; a lost race fetches the new one.
                try:
                    outcome = claims.claim(remote, worker=wid, labels=(), lease_s=600)
                except StaleSnapshotError:
                    lost += 1  # gave up for now: try again
                    continue
                if not isinstance(outcome, Committed):
                    break  # nothing left to claim
                won = outcome.transition.subject
            if won is None:
                starved = time.perf_counter() - t0
                break
            results.append({"node": won, "latency": time.perf_counter() - t0, "lost": lost,
                            "at": time.time()})  # fmt: skip
            time.sleep(hold)
    out.write_text(json.dumps({"begin": begin, "claims": results, "git": timings,
                               "starved": starved}))  # fmt: skip


def claims_on_remote(bare: Path) -> Counter[str]:
    """How many claim commits each node has on the remote's state branch."""
    log = u.git(bare, "log", "--format=%B%x00", STATE)
    found: Counter[str] = Counter()
    for body in log.split("\0"):
        trailers = parse_trailers(body)
        if trailers.get("Gitdag-Transition") == ["claim"]:
            found.update(trailers.get("Gitdag-Node", []))
    return found


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (Linux /proc/stat; zeros elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def run(root: Path, base_url: str, workers: int, count: int, floor_rounds: int,
        hold: float, tag: str = "") -> dict[str, float]:  # fmt: skip
    name = f"w{workers}{tag}"
    bare = seed(root, name, count)
    url = f"{base_url}/{name}.git"
    clones = []
    for i in range(workers):
        clone = root / f"{name}-clone{i}"
        u.git(root, "clone", "-q", url, str(clone))
        clones.append(clone)
    base = statistics.median(floor(clones[0], floor_rounds))
    go = root / f"{name}.go"
    outs = [root / f"{name}-out{i}.json" for i in range(workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--hold", str(hold), "--worker", str(c), str(go), str(o)]
        )
        for c, o in zip(clones, outs, strict=True)
    ]
    time.sleep(1.0 + 0.4 * workers)  # let every process start and fetch before the barrier
    busy0 = cpu_busy()
    go.write_text("go")
    for proc in procs:
        if proc.wait(600) != 0:
            raise SystemExit("a worker failed")
    busy = cpu_busy()
    use = (busy[0] - busy0[0]) / max(busy[1] - busy0[1], 1)
    data = [json.loads(o.read_text()) for o in outs]
    latencies = [c["latency"] for d in data for c in d["claims"]]
    won = [c["node"] for d in data for c in d["claims"]]
    lost = sum(c["lost"] for d in data for c in d["claims"])
    begin = min(d["begin"] for d in data)
    end = max(c["at"] for d in data for c in d["claims"])
    per_worker = sorted(len(d["claims"]) for d in data)
    # A worker starved of claims records no latency at all: its last, fruitless wait is shown.
    starved = max(d["starved"] for d in data)
    on_remote = claims_on_remote(bare)
    doubles = [n for n, k in on_remote.items() if k > 1]
    if doubles or len(won) != len(set(won)) or set(won) != set(on_remote) or len(won) != count:
        missing = sorted(set(on_remote) - set(won))
        log = u.git(
            bare,
            "log",
            "--format=%h %s | %(trailers:key=Gitdag-Claim-For,valueonly,separator=%x2C)",
            STATE,
        )
        print("\n".join(ln for ln in log.splitlines() if any(m in ln for m in missing))[:3000])
        raise SystemExit(
            f"DOUBLE OR MISSING CLAIM: doubles={doubles} won={len(won)}/{count} missing={missing}"
        )
    rate = len(won) / (end - begin)
    if os.environ.get("BENCH_VERBOSE"):
        for d in data:
            print("  ", [(round(c["latency"], 2), c["lost"]) for c in d["claims"]])
        calls: dict[str, list[float]] = {}
        for d in data:
            for cmd, secs, code in d["git"]:
                calls.setdefault(f"{cmd} ok={code}", []).append(secs)
        for key, vals in sorted(calls.items()):
            print(
                f"   {key}: n={len(vals)} median {u.ms(statistics.median(vals))} "
                f"max {u.ms(max(vals))}"
            )
    med, p95 = statistics.median(latencies), pct(latencies, 0.95)
    if os.environ.get("BENCH_VERBOSE"):
        print(f"   CPU busy while claiming: {use:.0%} of the machine")
    print(f"{tag.rsplit('-r', 1)[0]:>10} {workers} worker(s): {len(won)} claims "
          f"(per worker {per_worker[0]}-{per_worker[-1]}), "
          f"{lost} give-ups, longest fruitless wait {u.ms(starved)}, {rate:6.2f} claims/s, "
          f"latency median {u.ms(med)} p95 {u.ms(p95)} | floor push {u.ms(base)} | "
          f"median/floor {med / base:5.2f}  p95/floor {p95 / base:5.2f} | "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    return {"rate": rate, "median": med, "p95": p95, "floor": base, "starved": starved,
            "load": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--transports", default="http,daemon",
                        help="of http, daemon, http-delay (or delay), ssh")  # fmt: skip
    # 96 claims: 12 per worker at 8 workers, so that the start of a run (every worker races
    # once, before any turn order exists) does not dominate a rate meant for steady claiming.
    parser.add_argument("--claims", type=int, default=96)
    parser.add_argument("--floor-rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the whole set")
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="seconds each claimed node 'runs' before the worker claims again",
    )
    parser.add_argument("--worker", nargs=3, metavar=("CLONE", "GO", "OUT"))
    args = parser.parse_args()
    if args.worker:
        if os.environ.get("BENCH_PROFILE"):  # a cProfile of each worker, next to its output
            import cProfile

            out = Path(args.worker[2]).with_suffix(".prof")
            cProfile.runctx("worker(Path(args.worker[0]), Path(args.worker[1]), "
                            "Path(args.worker[2]), args.hold)", globals(), locals(),
                            str(out))  # fmt: skip
            os.makedirs(os.environ["BENCH_PROFILE"], exist_ok=True)
            os.replace(out, Path(os.environ["BENCH_PROFILE"]) / out.name)
            return
        worker(Path(args.worker[0]), Path(args.worker[1]), Path(args.worker[2]), args.hold)
        return
    print(u.machine())
    counts = [int(x) for x in args.workers.split(",")]
    kinds = args.transports.split(",")
    rounds: dict[str, list[dict[int, dict[str, float]]]] = {k: [] for k in kinds}
    with (
        tempfile.TemporaryDirectory(prefix="gitdag-bench-claims-") as tmp,
        servers.Servers(Path(tmp)) as serve,
    ):
        root = Path(tmp)
        u.seal_env(root / "home")
        urls = {kind: serve.start(kind) for kind in kinds}
        for rep in range(args.repeat):
            # Every transport and worker count once per repetition, back to back: the ratio of
            # each repetition compares runs minutes apart at most (the machine's speed drifts).
            if args.repeat > 1:
                print(f"-- repetition {rep + 1} of {args.repeat}  (load average "
                      f"{os.getloadavg()[0]:.1f})")  # fmt: skip
            for kind in kinds:
                rounds[kind].append({
                    w: run(root, urls[kind], w, args.claims, args.floor_rounds, args.hold,
                           tag=f"{kind}-r{rep}") for w in counts
                })  # fmt: skip
    print("no double claim in any run")
    for kind in kinds:
        for w in counts:
            p95s = sorted(r[w]["p95"] for r in rounds[kind])
            over = sorted(r[w]["p95"] / r[w]["floor"] for r in rounds[kind])
            loads = [r[w]["load"] for r in rounds[kind]]
            line = f"{kind:>10} {w} worker(s): p95 {statistics.median(p95s):.3f} s (median of "
            line += f"{len(p95s)}; worst {p95s[-1]:.3f} s; p95/floor {statistics.median(over):.1f}"
            line += f"; load {min(loads):.1f}-{max(loads):.1f})"
            if w != 1 and 1 in counts:
                shares = sorted(r[w]["rate"] / r[1]["rate"] for r in rounds[kind])
                worst = max(r[w]["starved"] for r in rounds[kind])
                line += (f"; aggregate rate {statistics.median(shares):.0%} of one worker's "
                         f"(each: {', '.join(f'{x:.0%}' for x in shares)}); longest fruitless "
                         f"wait {worst:.3f} s")  # fmt: skip
            print(line)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
