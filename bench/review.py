"""Review and recovery on a 10k-node graph: validate a range, diff it, and the README's cost.

What is timed:
  validate: `gitdag validate A..B` (the real CLI, one process) over 1,000 transitions (500 claims,
    500 completes) of a 10k-node graph: per commit a tree diff, the changed files parsed (through
    the parse cache), the legality rules, then the graph checks at B. Warm = the cache filled by
    an earlier run; cold = `.dagain/local/cache` deleted first (a fresh CI clone). Target <= 10 s.
  diff: `gitdag diff A B` over the same range (one tree diff, ~1,000 changed nodes). Target <= 2 s.
  floors: a bare `python -c pass`, and a bare dulwich walk of the same 1,000 commits with a tree
    diff each and nothing parsed (what the validation cannot avoid).
  readme: one claim through `StateStore.transact` with README.md (incremental counts) vs without,
    vs a bare dulwich CAS commit of the same change; the three alternate on three refs.
    Target (issue 2): transition <= 1.5x the bare commit, README included.

Usage: python bench/review.py [--nodes 10000] [--transitions 1000] [--rounds 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _util as u
from dulwich.diff_tree import tree_changes
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from gitdag.core import codec, graph, lifecycle
from gitdag.core.ids import shard
from gitdag.core.model import Node, Status
from gitdag.core.transitions import Transition, message
from gitdag.store.layout import STATE_REF
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import Committed, StateStore

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def complete(node: Node, now: dt.datetime) -> Transition:
    """A runner's success, as the supervisor commits it (outputs.summary recorded)."""
    done = node.model_copy(update={
        "status": Status.DONE, "claim": None, "error": None, "updated_at": now,
        "outputs": {**node.outputs, "summary": f"did {node.id}"},
    })  # fmt: skip
    return Transition(verb="complete", subject=node.id, from_status="running", to_status="done",
                      summary=f"did {node.id}", put=(done,), attempt=node.attempts)  # fmt: skip


def make_history(store: StateStore, count: int) -> list[float]:
    """Commit `count` transitions (claim, complete, claim, ...) on ready nodes; return times."""
    times: list[float] = []
    pending: list[str] = []  # the node claimed by the previous transition, completed next

    def compute(snap: Snapshot, now: dt.datetime) -> Transition:
        if pending:
            return complete(store.node(snap, pending[0]), now)
        nid = graph.ready(snap.nodes, NOW + dt.timedelta(days=1))[0]
        claim = lifecycle.claim(store.node(snap, nid), worker="supervisor@bench:1", now=now,
                                lease_s=600)  # fmt: skip
        assert isinstance(claim, Transition)
        return claim

    for _ in range(count):
        t0 = time.perf_counter()
        done = store.transact(compute, actor="supervisor@bench:1")
        times.append(time.perf_counter() - t0)
        assert isinstance(done, Committed)
        if pending:
            pending.clear()
        else:
            pending.append(done.transition.subject)
    return times


def bare_walk(path: Path, base: str, head: str) -> float:
    """Time a dulwich walk from head to base with one tree diff per commit, nothing parsed."""
    repo = Repo(str(path))
    t0 = time.perf_counter()
    current = head.encode()
    changed = 0
    while current != base.encode():
        commit = repo.object_store[current]
        assert isinstance(commit, Commit)
        parent = repo.object_store[commit.parents[0]]
        assert isinstance(parent, Commit)
        changed += sum(1 for _ in tree_changes(repo.object_store, parent.tree, commit.tree))
        current = commit.parents[0]
    elapsed = time.perf_counter() - t0
    repo.close()
    assert changed > 0
    return elapsed


def floor_commit(repo: Repo, ref: bytes, nid: str, payload: bytes) -> None:
    """A bare dulwich commit of one changed node file in the sharded tree, with CAS."""
    objects = repo.object_store
    old = repo.refs[ref]
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
    commit.message = message(Transition(verb="claim", subject=nid), "bench").encode()
    for obj in (blob, new_shard, new_nodes, new_root, commit):
        objects.add_object(obj)
    if not repo.refs.set_if_equals(ref, old, commit.id):
        raise SystemExit("floor CAS lost")


def readme_cost(path: Path, rounds: int) -> dict[str, float]:
    """Alternate transitions with and without README.md and bare commits, on three refs."""
    repo = Repo(str(path))
    head = repo.refs[STATE_REF]
    refs = {"with": b"refs/heads/bench/with", "without": b"refs/heads/bench/without",
            "floor": b"refs/heads/bench/floor"}  # fmt: skip
    for ref in refs.values():
        repo.refs[ref] = head
    repo.close()
    with_store = StateStore.open(path, ref=refs["with"], readme=True)
    without_store = StateStore.open(path, ref=refs["without"], readme=False)
    snap = with_store.snapshot()
    without_store.snapshot()
    opened = sorted(nid for nid, s in snap.nodes.items() if s.status is Status.OPEN)
    if len(opened) < 3 * rounds + 1:
        raise SystemExit("not enough open nodes for the README rounds")
    # The first README of a branch that has none is built from the whole graph, once.
    warm = opened.pop()
    first = with_store.transact(lambda s, now: claim_of(with_store, s, warm, now), actor="bench")
    assert isinstance(first, Committed)
    floor_repo = with_store.repo
    times: dict[str, list[float]] = {"with": [], "without": [], "floor": []}
    for i in range(rounds):
        a, b, c = opened[3 * i : 3 * i + 3]
        t0 = time.perf_counter()
        assert isinstance(
            with_store.transact(lambda s, now, a=a: claim_of(with_store, s, a, now), actor="bench"),
            Committed,
        )
        times["with"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert isinstance(
            without_store.transact(
                lambda s, now, b=b: claim_of(without_store, s, b, now), actor="bench"
            ),
            Committed,
        )
        times["without"].append(time.perf_counter() - t0)
        payload = codec.dump(
            lifecycle_claimed(without_store.node(without_store.snapshot(), c))
        ).encode()
        t0 = time.perf_counter()
        floor_commit(floor_repo, refs["floor"], c, payload)
        times["floor"].append(time.perf_counter() - t0)
    readme_text = with_store.repo.object_store[
        with_store.repo.object_store[with_store.repo.refs[refs["with"]]].tree  # type: ignore[union-attr]
    ]
    assert b"README.md" in readme_text  # type: ignore[operator]
    with_store.close()
    without_store.close()
    return {k: u.med(v) for k, v in times.items()}


def lifecycle_claimed(node: Node) -> Node:
    """The node after a claim (for the floor's payload)."""
    claim = lifecycle.claim(node, worker="supervisor@bench:1", now=NOW, lease_s=600)
    assert isinstance(claim, Transition)
    return claim.put[0]


def claim_of(store: StateStore, snap: Snapshot, nid: str, now: dt.datetime) -> Transition:
    """A claim of `nid` (any open node: the README cost does not depend on readiness)."""
    claim = lifecycle.claim(store.node(snap, nid), worker="supervisor@bench:1", now=now,
                            lease_s=600)  # fmt: skip
    assert isinstance(claim, Transition)
    return claim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--transitions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {u.machine()}")
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-review-") as tmp:
        work = Path(tmp)
        u.seal_env(work / "home")
        built = u.build_state_repo(work / "g", u.make_nodes(args.nodes))
        store = StateStore.open(built.path)
        store.snapshot()
        tx = make_history(store, args.transitions)
        head = store.head()
        assert head is not None
        store.close()
        base = built.head
        print(f"graph: {args.nodes} nodes, {args.transitions} transitions committed "
              f"(median {u.ms(u.med(tx))} each, README included)")  # fmt: skip
        rng = f"{base}..{head}"
        python = u.python_floor()
        walk = u.med([bare_walk(built.path, base, head) for _ in range(3)])
        cache = built.path / ".dagain" / "local" / "cache"
        cold = []
        for _ in range(2):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(u.run_cli(built.path, "validate", rng))
        warm = u.med([u.run_cli(built.path, "validate", rng) for _ in range(3)])
        diff = u.med([u.run_cli(built.path, "diff", base, head) for _ in range(3)])
        diff_json = u.med([u.run_cli(built.path, "diff", base, head, "--json") for _ in range(3)])
        costs = readme_cost(built.path, args.rounds)
    print()
    print(f"floor: python start-up {u.ms(python)}; bare walk of {args.transitions} commits with a "
          f"tree diff each {u.ms(walk)}")  # fmt: skip
    print(f"validate A..B, warm cache : {warm:6.2f} s  (target <= 10 s; "
          f"{warm / walk:5.1f}x the bare walk)")  # fmt: skip
    print(f"validate A..B, cold cache : {u.med(cold):6.2f} s  (fresh clone: every changed file "
          "and the 10k-node base parsed once)")  # fmt: skip
    print(f"diff A B (text)           : {diff:6.2f} s  (target <= 2 s; {diff / python:5.1f}x "
          "python start-up)")  # fmt: skip
    print(f"diff A B --json           : {diff_json:6.2f} s")
    print()
    print(f"transition with README    : {u.ms(costs['with'])}  "
          f"({costs['with'] / costs['floor']:.2f}x the bare commit; target <= 1.5)")  # fmt: skip
    print(f"transition without README : {u.ms(costs['without'])}  "
          f"({costs['without'] / costs['floor']:.2f}x)")  # fmt: skip
    print(f"bare dulwich CAS commit   : {u.ms(costs['floor'])}")
    print(f"README overhead           : {u.ms(costs['with'] - costs['without'])} per transition "
          f"({costs['with'] / costs['without']:.2f}x)")  # fmt: skip
    sys.exit(0)


if __name__ == "__main__":
    main()
