"""Shared helpers for the benchmarks: big graphs built fast, timing, and floors.

A 100k-node graph is not built by 100k commits (that would take minutes and measure the wrong
thing): the node files are rendered with the real codec, written as one pack with dulwich, and
assembled into the sharded tree of one commit that `dagain/state` then points at. The result is
exactly what `gitdag init` plus many transitions would leave, minus the history.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from gitdag.core import codec
from gitdag.core.ids import shard
from gitdag.core.model import Claim, GraphFile, Kind, Node, Status
from gitdag.core.transitions import Transition, message
from gitdag.store.layout import STATE_REF

EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
_FILE = 0o100644
_DIR = 0o040000
_DESCRIPTION = (
    "Implement the change described in the plan, keep the public interface stable, and add "
    "tests that fail without it.\nMention anything left undone in the summary.\n"
)


def seal_env(home: Path) -> None:
    """Keep the benchmark away from the machine's git config and identity."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(GIT_ENV)
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_GLOBAL"] = str(home / ".gitconfig")


def git(cwd: Path, *args: str) -> str:
    """Run the real git CLI."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def node_id(i: int) -> str:
    """The id of the i-th generated node."""
    return f"n{i:06d}"


def make_nodes(n: int, seed: int = 0, *, running: int = 16, failed: float = 0.003) -> list[Node]:
    """Return `n` realistic nodes forming a DAG (deps only point backwards).

    The first 60% done, `running` nodes running with a claim (a supervisor runs a few workers,
    whatever the size of the graph), a `failed` fraction of the rest failed, the rest open; each
    node depends on up to three of the 50 nodes before it.
    """
    rng = random.Random(seed)
    nodes: list[Node] = []
    open_region = range(int(0.6 * n), n)
    running_ids = set(rng.sample(open_region, min(running, len(open_region))))
    for i in range(n):
        nid = node_id(i)
        picks = rng.randint(0, 3) if i else 0
        deps = sorted({node_id(rng.randrange(max(0, i - 50), i)) for _ in range(picks)})
        if i < open_region.start:
            status = Status.DONE
        elif i in running_ids:
            status = Status.RUNNING
        elif rng.random() < failed:
            status = Status.FAILED
        else:
            status = Status.OPEN
        created = EPOCH + dt.timedelta(seconds=i)
        claim = None
        attempts = 1 if status is not Status.OPEN else 0
        if status is Status.RUNNING:
            claim = Claim(worker=f"supervisor@bench:{1000 + i % 7}", attempt=1, since=created,
                          lease_until=created + dt.timedelta(minutes=10))  # fmt: skip
        nodes.append(
            Node(
                id=nid,
                title=f"Step {i}: change module {i % 97} to handle case {i % 13}",
                description=_DESCRIPTION,
                kind=Kind.PLAN if i == 0 else (Kind.VERIFY if i % 17 == 0 else Kind.TASK),
                status=status,
                deps=tuple(deps),
                parent=node_id(0) if i else None,
                ownership=(f"src/mod{i % 97}/**",),
                acceptance=("the tests pass", f"case {i % 13} is handled"),
                attempts=attempts,
                claim=claim,
                outputs={"summary": f"did step {i}"} if status is Status.DONE else {},
                created_at=created,
                updated_at=created,
            )
        )
    return nodes


@dataclass
class Built:
    """A repository with a big graph on dagain/state."""

    path: Path
    head: str
    nodes: int
    build_s: float


def build_state_repo(path: Path, nodes: list[Node], goal: str = "benchmark goal") -> Built:
    """Create a repository at `path` whose dagain/state holds `nodes` in one commit."""
    t0 = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# bench\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    repo = Repo(str(path))
    objects: list[Blob | Tree | Commit] = []
    shards: dict[str, Tree] = {}
    for node in nodes:
        blob = Blob.from_string(codec.dump(node).encode())
        objects.append(blob)
        shards.setdefault(shard(node.id), Tree()).add(f"{node.id}.yaml".encode(), _FILE, blob.id)
    nodes_tree = Tree()
    for name, tree in shards.items():
        objects.append(tree)
        nodes_tree.add(name.encode(), _DIR, tree.id)
    graph = Blob.from_string(codec.dump(GraphFile(goal=goal, created_at=EPOCH)).encode())
    root = Tree()
    root.add(b"graph.yaml", _FILE, graph.id)
    root.add(b"nodes", _DIR, nodes_tree.id)
    objects += [nodes_tree, graph, root]
    commit = Commit()
    commit.tree = root.id
    commit.parents = []
    commit.author = commit.committer = b"Bench <bench@example.com>"
    commit.author_time = commit.commit_time = int(EPOCH.timestamp())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message(
        Transition(verb="init", subject="graph", summary=goal), "Bench <bench@example.com>"
    ).encode()
    objects.append(commit)
    # One pack instead of 100k loose objects: seconds instead of minutes.
    repo.object_store.add_objects([(obj, None) for obj in objects])
    repo.refs[STATE_REF] = commit.id
    repo.close()
    git(path, "branch", "dagain/integration", "main")
    return Built(path, commit.id.decode(), len(nodes), time.perf_counter() - t0)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Return `repeat` wall times (s) of `fn()`."""
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def med(values: Iterable[float]) -> float:
    """The median."""
    return statistics.median(list(values))


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:8.2f} ms"


def run_cli(cwd: Path, *args: str) -> float:
    """Run the real `gitdag` CLI once; return its wall time (s). Fails loudly on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gitdag", *args], cwd=cwd, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"gitdag {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return elapsed


def python_floor(repeat: int = 5) -> float:
    """Median wall time of a bare `python -c pass` process: the start-up nobody can avoid."""
    return med(timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat))


def import_cost(module: str, repeat: int = 5) -> float:
    """Median wall time of a process that only imports `module`."""
    return med(
        timed(
            lambda: subprocess.run([sys.executable, "-c", f"import {module}"], check=True),
            repeat,
        )
    )


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
