"""The workspace layer's cost per task node and the merge queue's throughput, against raw git.

(a) Per-node overhead of a task node that changes one file, on repositories of 1k and 10k files.
  ours:  Worktrees.create + write one file + commit_leftovers + integrate + remove
         (+ one dulwich CAS commit on a dummy ref, standing in for the state commits).
  floor: the same outcome done with bare commands: `git worktree add -b`, write the file,
         `git commit -qam`, `git merge-tree --write-tree`, `git commit-tree`, `git update-ref`
         with the old value (+ the same dulwich CAS commit). The floor's worktree is deleted
         outside the timed section; ours is removed inside it.
  `remove` renames the checkout into `local/trash/` and deletes it in a background `rm -rf`, so
  two figures are printed: the latency (what the supervisor waits for) and the machine time
  (the wall time of the whole block including waiting for those deletions to finish).
  One node of each alternates per round, so drift in disk speed hits both alike.
  `--agent-s` pauses between the checkout and the commit, untimed, for both: the agent's own
  time. It matters because of git's racy-index rule: files written in the same second as the
  index are re-hashed by every later git process that writes the index, until one writes it in
  a later second. With 0 s the floor's single `commit -am` pays that once and our
  `add -A` + `write-tree` twice; any real agent takes longer than a second.

(b) Queue throughput: 100 non-conflicting branches integrated into a 1k-file repository, one
  at a time: `integrate` (+ the dulwich commit) against merge-tree + commit-tree + update-ref
  (+ the dulwich commit), alternating one merge of each on two target branches.

Usage: python bench/merge_queue.py [--sizes 1000,10000] [--nodes 24] [--merges 100]
                                   [--agent-s 0,1.1] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _util as u
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from gitdag.workspace.gitcli import read_ref
from gitdag.workspace.merge_queue import integrate
from gitdag.workspace.worktrees import Worktrees

TARGET = "dagain/integration"
FLOOR_TARGET = "bench/floor-target"
DUMMY_REF = b"refs/bench/state"
STEPS: dict[str, list[float]] = {}
FLOOR_STEPS: dict[str, list[float]] = {}


def make_repo(path: Path, files: int) -> Path:
    """A repository with `files` files of ~1 KB in 100 directories, one commit, two targets."""
    path.mkdir(parents=True)
    u.git(path, "init", "-q", "-b", "main")
    # No automatic gc in the middle of a measurement (10k new files would start one at once).
    u.git(path, "config", "gc.auto", "0")
    for i in range(files):
        d = path / f"src/d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n" + "some content line\n" * 60)
    u.git(path, "add", "-A")
    u.git(path, "commit", "-q", "-m", "initial")
    u.git(path, "branch", TARGET)
    u.git(path, "branch", FLOOR_TARGET)
    u.git(path, "gc", "-q")  # a packed repository, like any real one
    return path


class StateStandIn:
    """One dulwich CAS commit per node on a dummy ref: what a state transition costs."""

    def __init__(self, root: Path) -> None:
        self.repo = Repo(str(root))
        blob = Blob.from_string(b"seed\n")
        tree = Tree()
        tree.add(b"x", 0o100644, blob.id)
        self.repo.object_store.add_objects([(blob, None), (tree, None)])
        self.head = self._commit(tree.id, [], b"seed")
        self.repo.refs[DUMMY_REF] = self.head
        self.n = 0

    def _commit(self, tree: bytes, parents: list[bytes], msg: bytes) -> bytes:
        c = Commit()
        c.tree, c.parents = tree, parents
        c.author = c.committer = b"Bench <bench@example.com>"
        c.author_time = c.commit_time = int(time.time())
        c.author_timezone = c.commit_timezone = 0
        c.message = msg
        self.repo.object_store.add_object(c)
        return c.id

    def commit(self) -> None:
        self.n += 1
        blob = Blob.from_string(f"transition {self.n}\n".encode())
        tree = Tree()
        tree.add(b"x", 0o100644, blob.id)
        self.repo.object_store.add_object(blob)
        self.repo.object_store.add_object(tree)
        new = self._commit(tree.id, [self.head], b"transition")
        if not self.repo.refs.set_if_equals(DUMMY_REF, self.head, new):
            raise SystemExit("dummy CAS lost")
        self.head = new


def changed_file(i: int) -> str:
    return f"src/d{i % 100:02d}/f{i:05d}.txt"


def floor_node(root: Path, git_dir: Path, state: StateStandIn, i: int, agent_s: float) -> float:
    """Bare git for one node; returns the timed seconds (the worktree's deletion is not timed)."""
    nid = f"fl{i}"
    path = root.parent / "floor-wt" / nid
    t0 = time.perf_counter()
    tip = read_ref(git_dir, "refs/heads/" + FLOOR_TARGET)
    assert tip
    u.git(root, "worktree", "add", "-q", "-b", f"bench/fl/{nid}", str(path), tip)
    t1 = time.perf_counter()
    time.sleep(agent_s)  # the agent at work: not timed
    t0 += agent_s
    t1 += agent_s
    (path / changed_file(i)).write_text(f"changed by {nid}\n")
    u.git(path, "commit", "-qam", f"work of {nid}")
    t2 = time.perf_counter()
    tree = u.git(root, "merge-tree", "--write-tree", tip, f"bench/fl/{nid}").split()[0]
    new = u.git(root, "commit-tree", tree, "-p", tip, "-p", f"bench/fl/{nid}", "-m", "m").strip()
    u.git(root, "update-ref", "refs/heads/" + FLOOR_TARGET, new, tip)
    t3 = time.perf_counter()
    state.commit()
    elapsed = time.perf_counter() - t0
    for name, a, b in (
        ("worktree add", t0, t1),
        ("write+commit -am", t1, t2),
        ("merge-tree+commit-tree+update-ref", t2, t3),
    ):
        FLOOR_STEPS.setdefault(name, []).append(b - a)
    u.git(root, "worktree", "remove", "--force", str(path))
    u.git(root, "branch", "-D", "-q", f"bench/fl/{nid}")
    return elapsed


def our_node(wt: Worktrees, state: StateStandIn, i: int, agent_s: float) -> float:
    nid = f"n{i}"
    t0 = time.perf_counter()
    info = wt.create(nid, TARGET)
    t1 = time.perf_counter()
    time.sleep(agent_s)  # the agent at work: not timed
    t0 += agent_s
    t1 += agent_s
    (info.path / changed_file(i)).write_text(f"changed by {nid}\n")
    if not wt.commit_leftovers(nid, 1).changed:
        raise SystemExit("no change recorded")
    t2 = time.perf_counter()
    result = integrate(
        wt.root, wt.git_dir, wt.local, branch=info.branch, target=TARGET, check_cmd=None,
        check_timeout_s=60, node_id=nid, message=f"gitdag: integrate {nid}",
    )  # fmt: skip
    if result.status != "merged":
        raise SystemExit(f"{nid}: {result}")
    t3 = time.perf_counter()
    wt.remove(nid, delete_branch=True)
    t4 = time.perf_counter()
    state.commit()
    t5 = time.perf_counter()
    for name, a, b in (
        ("create", t0, t1),
        ("write+commit_leftovers", t1, t2),
        ("integrate", t2, t3),
        ("remove", t3, t4),
        ("state commit", t4, t5),
    ):
        STEPS.setdefault(name, []).append(b - a)
    return t5 - t0


def per_node(base: Path, files: int, nodes: int, agent_s: float) -> dict[str, float]:
    root = make_repo(base / f"repo{files}-{agent_s}", files)
    git_dir = root / ".git"
    wt = Worktrees(root, git_dir, root / ".dagain/local")
    state = StateStandIn(root)
    # Warm-up: one of each, not counted (first worktree dirs, page cache).
    floor_node(root, git_dir, state, files - 1, 0)
    our_node(wt, state, files - 2, 0)
    wt.wait_deleted()
    floor_t: list[float] = []
    ours_t: list[float] = []
    machine_t: list[float] = []
    for k in range(nodes):
        # One of each per round, so drift hits both alike; ours' background deletion is waited
        # for before the floor's next node (counted in ours' machine time, not the floor's).
        floor_t.append(floor_node(root, git_dir, state, 2 * k, agent_s))
        ours_t.append(our_node(wt, state, 2 * k + 1, agent_s))
        t0 = time.perf_counter()
        wt.wait_deleted()
        machine_t.append(ours_t[-1] + time.perf_counter() - t0)
    state.repo.close()
    return {
        "floor": statistics.median(floor_t),
        "ours": statistics.median(ours_t),
        "floor_mean": statistics.fmean(floor_t),
        "ours_machine_mean": statistics.fmean(machine_t),
    }


def prepare_branches(root: Path, prefix: str, start: str, count: int, offset: int) -> list[str]:
    """`count` branches off `start`, each changing a different file (made with plumbing)."""
    names = []
    index = root / ".git" / "bench-index"
    env_index = {"GIT_INDEX_FILE": str(index)}
    for k in range(count):
        i = offset + k
        blob = _git_env(root, env_index, "hash-object", "-w", "--stdin", input=f"change {i}\n")
        _git_env(root, env_index, "read-tree", start)
        _git_env(root, env_index, "update-index", "--cacheinfo", f"100644,{blob},{changed_file(i)}")
        tree = _git_env(root, env_index, "write-tree")
        commit = _git_env(root, {}, "commit-tree", tree, "-p", start, "-m", f"change {i}")
        name = f"{prefix}{k}"
        u.git(root, "branch", name, commit)
        names.append(name)
    index.unlink(missing_ok=True)
    return names


def _git_env(root: Path, env: dict[str, str], *args: str, input: str | None = None) -> str:
    import os
    import subprocess

    full = dict(os.environ)
    full.update(env)
    return subprocess.run(["git", *args], cwd=root, env=full, input=input, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def throughput(base: Path, files: int, merges: int) -> dict[str, float]:
    root = make_repo(base / "queue", files)
    git_dir = root / ".git"
    local = root / ".dagain/local"
    start = read_ref(git_dir, "refs/heads/" + TARGET)
    assert start
    ours = prepare_branches(root, "dagain/work/q", start, merges, 0)
    floor = prepare_branches(root, "bench/fq/", start, merges, 0)
    state = StateStandIn(root)
    t_floor = t_ours = 0.0
    for k in range(merges):
        t0 = time.perf_counter()
        tip = read_ref(git_dir, "refs/heads/" + FLOOR_TARGET)
        assert tip
        tree = u.git(root, "merge-tree", "--write-tree", tip, floor[k]).split()[0]
        new = u.git(root, "commit-tree", tree, "-p", tip, "-p", floor[k], "-m", "m").strip()
        u.git(root, "update-ref", "refs/heads/" + FLOOR_TARGET, new, tip)
        state.commit()
        t1 = time.perf_counter()
        result = integrate(
            root, git_dir, local, branch=ours[k], target=TARGET, check_cmd=None,
            check_timeout_s=60, node_id=f"q{k}", message=f"gitdag: integrate q{k}",
        )  # fmt: skip
        if result.status != "merged":
            raise SystemExit(f"q{k}: {result}")
        state.commit()
        t2 = time.perf_counter()
        t_floor += t1 - t0
        t_ours += t2 - t1
    # Both targets now hold all 100 changes.
    for k in (0, merges - 1):
        path = changed_file(k)
        assert u.git(root, "show", f"{TARGET}:{path}") == f"change {k}\n"
        assert u.git(root, "show", f"{FLOOR_TARGET}:{path}") == f"change {k}\n"
    state.repo.close()
    return {"floor_rate": merges / t_floor, "ours_rate": merges / t_ours}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--nodes", type=int, default=24, help="nodes of each kind per size")
    ap.add_argument("--merges", type=int, default=100)
    ap.add_argument("--dir", default=None, help="where the repositories go (e.g. /dev/shm)")
    ap.add_argument("--agent-s", default="0,1.1", help="untimed pauses between checkout and "
                    "commit: the agent's own time (0 = it writes at once)")  # fmt: skip
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitdag-bench-mq-", dir=args.dir) as tmp:
        base = Path(tmp)
        u.seal_env(base / "home")
        print(f"machine: {u.machine()}; {u.git(base, 'version').strip()}; repositories in {base}")
        print("\n(a) per task node that changes one file (medians; ratio = ours / floor)")
        cases = [(int(f), float(a)) for f in args.sizes.split(",") for a in args.agent_s.split(",")]
        for files, agent_s in cases:
            STEPS.clear()
            FLOOR_STEPS.clear()
            r = per_node(base, files, args.nodes, agent_s)
            print(
                f"  {files:>6} files, agent {agent_s:3.1f} s: floor {u.ms(r['floor'])}   "
                f"ours {u.ms(r['ours'])}   "
                f"ratio {r['ours'] / r['floor']:.2f}x   | with the worktree's deletion, means: "
                f"floor {u.ms(r['floor_mean'])}  ours {u.ms(r['ours_machine_mean'])}  "
                f"ratio {r['ours_machine_mean'] / r['floor_mean']:.2f}x"
            )
            steps = "  ".join(f"{k} {u.ms(statistics.median(v)).strip()}" for k, v in STEPS.items())
            print(f"          ours, medians by step: {steps}")
            steps = "  ".join(
                f"{k} {u.ms(statistics.median(v)).strip()}" for k, v in FLOOR_STEPS.items()
            )
            print(f"          floor, medians by step: {steps}")
        print(f"\n(b) queue throughput: {args.merges} non-conflicting merges, 1k-file repository")
        t = throughput(base, 1000, args.merges)
        print(
            f"  floor {t['floor_rate']:6.1f} merges/s   ours {t['ours_rate']:6.1f} merges/s   "
            f"ratio (time per merge, ours / floor) {t['floor_rate'] / t['ours_rate']:.2f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
