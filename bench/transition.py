"""One transition on graphs of 1k, 10k and 100k nodes, against the floor of a bare CAS commit.

What is timed:
  transition: `StateStore.transact` with a warm in-memory snapshot whose graph index is kept (as
    the supervisor's is), alternating a claim (one open node goes to running with a claim,
    attempts + 1) and a completion of the node claimed just before (running -> done, outputs
    set: it settles the node, so the workflow pass, `core/flow.follow`, looks for the nodes
    waiting on it): read the head, compute on the snapshot, follow, render the node, write
    blob + shard tree + nodes tree + root tree + README + commit, CAS the ref.
  floor: the same commit done bare with dulwich - one changed blob (rendered beforehand) in the
    same sharded tree, the three trees and the commit written, `refs.set_if_equals` on a second
    ref of the same repository (so the two never invalidate each other's snapshot).
The two alternate, one of each per round, so drift in disk speed hits both alike. The ratio is
median(transition) / median(floor), for claims and completions apart; the CPU ratio (process
time, both kinds together) is the steadier figure on a loaded machine. Targets: <= 1.3 at every
size, flat from 1k to 100k (issue 18).

Usage: python bench/transition.py [--sizes 1000,10000,100000] [--rounds 150]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import _util as u
from dulwich.objects import Blob, Commit, Tree

from gitdag.core import codec
from gitdag.core.ids import shard
from gitdag.core.model import Claim, Node, Status
from gitdag.core.transitions import Transition, message
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore

FLOOR_REF = b"refs/heads/bench/floor"


def claimed(node: Node, now: dt.datetime) -> Node:
    """The node as a claim leaves it."""
    attempt = node.attempts + 1
    return node.model_copy(
        update={
            "status": Status.RUNNING,
            "attempts": attempt,
            "claim": Claim(
                worker="supervisor@bench:1",
                attempt=attempt,
                since=now,
                lease_until=now + dt.timedelta(minutes=10),
            ),
            "updated_at": now,
        }
    )


def completed(node: Node, now: dt.datetime) -> Node:
    """The node as a successful result leaves it (done, its lease dropped, a summary)."""
    return node.model_copy(
        update={"status": Status.DONE, "claim": None, "outputs": {"summary": "bench: done"},
                "updated_at": now}
    )  # fmt: skip


def floor_commit(store: StateStore, nid: str, payload: bytes) -> None:
    """A bare dulwich commit of one changed blob in the sharded tree, with CAS."""
    repo = store.repo
    objects = repo.object_store
    old = repo.refs[FLOOR_REF]
    commit_obj = objects[old]
    assert isinstance(commit_obj, Commit)
    root = objects[commit_obj.tree]
    assert isinstance(root, Tree)
    nodes = objects[root[b"nodes"][1]]
    assert isinstance(nodes, Tree)
    key = shard(nid).encode()
    shard_tree = objects[nodes[key][1]]
    assert isinstance(shard_tree, Tree)
    blob = Blob.from_string(payload)
    new_shard, new_nodes, new_root = Tree(), Tree(), Tree()
    for tree, copy in ((shard_tree, new_shard), (nodes, new_nodes), (root, new_root)):
        for entry in tree.iteritems():
            copy.add(entry.path, entry.mode, entry.sha)
    new_shard.add(f"{nid}.yaml".encode(), 0o100644, blob.id)
    new_nodes.add(key, 0o040000, new_shard.id)
    new_root.add(b"nodes", 0o040000, new_nodes.id)
    commit = Commit()
    commit.tree = new_root.id
    commit.parents = [old]
    commit.author = commit.committer = b"Bench <bench@example.com>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message(
        Transition(verb="claim", subject=nid, from_status="open", to_status="running"),
        "supervisor@bench:1",
    ).encode()
    for obj in (blob, new_shard, new_nodes, new_root, commit):
        objects.add_object(obj)
    if not repo.refs.set_if_equals(FLOOR_REF, old, commit.id):
        raise SystemExit("floor CAS lost: nothing else should write this ref")


def bench_size(n: int, rounds: int, workdir: Path, busy: bool) -> dict[str, float]:
    """Build a graph of n nodes and time `rounds` transitions and floor commits."""
    # busy: many running and failed nodes (what README.md lists grows with the graph).
    nodes = u.make_nodes(n, running=n // 50, failed=0.03) if busy else u.make_nodes(n)
    built = u.build_state_repo(workdir / f"g{n}", nodes)
    store = StateStore.open(built.path)
    t0 = time.perf_counter()
    snap = store.snapshot()
    snap.index  # noqa: B018 - the supervisor asks for it once; later snapshots update it
    load_s = time.perf_counter() - t0
    store.repo.refs[FLOOR_REF] = built.head.encode()
    ready = [nid for nid, s in snap.nodes.items() if s.status is Status.OPEN]
    if len(ready) < 2 * rounds:
        raise SystemExit(f"graph of {n} has only {len(ready)} open nodes for {rounds} rounds")
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    payloads = {nid: codec.dump(claimed(store.node(snap, nid), now)).encode()
                for nid in ready[rounds : 2 * rounds]}  # fmt: skip
    tx_times: dict[str, list[float]] = {"claim": [], "complete": []}
    floor_times: list[float] = []
    tx_cpu: list[float] = []  # CPU time: on a loaded machine it moves far less than wall time
    floor_cpu: list[float] = []
    tries = 0

    def claim(s: Snapshot, when: dt.datetime, nid: str) -> Transition:
        node = store.node(s, nid)
        return Transition(verb="claim", subject=nid, from_status="open", to_status="running",
                          put=(claimed(node, when),), attempt=node.attempts + 1)  # fmt: skip

    def complete(s: Snapshot, when: dt.datetime, nid: str) -> Transition:
        node = store.node(s, nid)
        return Transition(verb="complete", subject=nid, from_status="running", to_status="done",
                          put=(completed(node, when),), attempt=node.attempts)  # fmt: skip

    for i in range(rounds):
        # Even rounds claim ready[i // 2 * 2]; odd rounds complete the node claimed just before.
        verb, nid = ("claim", ready[i]) if i % 2 == 0 else ("complete", ready[i - 1])
        compute = claim if verb == "claim" else complete
        t0, c0 = time.perf_counter(), time.process_time()
        result = store.transact(lambda s, when, c=compute, nid=nid: c(s, when, nid), actor="bench")
        tx_times[verb].append(time.perf_counter() - t0)
        tx_cpu.append(time.process_time() - c0)
        assert isinstance(result, Committed)
        tries += result.tries
        fid = ready[rounds + i]
        t0, c0 = time.perf_counter(), time.process_time()
        floor_commit(store, fid, payloads[fid])
        floor_times.append(time.perf_counter() - t0)
        floor_cpu.append(time.process_time() - c0)
    final = store.snapshot()
    finished = {Status.DONE: (rounds + 1) // 2, Status.RUNNING: rounds % 2}
    for status, count in finished.items():
        assert sum(1 for nid in ready[:rounds] if final.nodes[nid].status is status) == count
    store.close()
    fl = u.med(floor_times)
    claim_s, done_s = u.med(tx_times["claim"]), u.med(tx_times["complete"])
    both = sorted(tx_times["claim"] + tx_times["complete"])
    return {"n": n, "build_s": built.build_s, "load_s": load_s, "tx": u.med(both),
            "claim": claim_s, "done": done_s, "floor": fl, "ratio": u.med(both) / fl,
            "claim_ratio": claim_s / fl, "done_ratio": done_s / fl,
            "tx_p90": both[int(0.9 * len(both))], "tries": tries / rounds,
            "cpu_ratio": u.med(tx_cpu) / u.med(floor_cpu)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument(
        "--busy",
        action="store_true",
        help="2%% of nodes running and 3%% failed instead of 16 running, 0.3%% failed",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"machine: {u.machine()}")
    print(
        f"rounds per size: {args.rounds} (transition and floor alternate); graph shape: "
        f"{'busy (2% running, 3% failed)' if args.busy else '16 running, 0.3% failed'}"
    )
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-") as tmp:
        work = Path(tmp)
        u.seal_env(work / "home")
        rows = [bench_size(n, args.rounds, work, args.busy) for n in sizes]
    print()
    print(f"{'nodes':>8} {'build':>8} {'1st load':>9} {'transition':>12} {'p90':>11} "
          f"{'floor':>11} {'ratio':>6} {'claim':>11} {'ratio':>6} {'complete':>11} "
          f"{'ratio':>6} {'CPU ratio':>9}")  # fmt: skip
    for r in rows:
        print(f"{int(r['n']):>8} {r['build_s']:7.1f}s {r['load_s']:8.2f}s {u.ms(r['tx'])} "
              f"{u.ms(r['tx_p90'])} {u.ms(r['floor'])} {r['ratio']:6.2f} {u.ms(r['claim'])} "
              f"{r['claim_ratio']:6.2f} {u.ms(r['done'])} {r['done_ratio']:6.2f} "
              f"{r['cpu_ratio']:9.2f}")  # fmt: skip
    worst = max(max(r["claim_ratio"], r["done_ratio"]) for r in rows)
    spread = max(r["ratio"] for r in rows) / min(r["ratio"] for r in rows)
    print(
        f"worst ratio {worst:.2f} (target <= 1.3); ratio max/min across sizes "
        f"{spread:.2f} (flat = close to 1)"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
