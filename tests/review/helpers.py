"""Test helpers: transitions committed through the real store, mirroring the supervisor's.

Until the lifecycle module lands these build claim/complete/fail by hand; they produce exactly the
shape the spec gives (attempts + 1 with a claim on claim, outputs.summary on complete).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from gitdag import actions
from gitdag.core.model import ErrorKind, Node, Status
from gitdag.core.transitions import Transition
from gitdag.store.state import Committed, StateStore

ACTOR = "supervisor@test:1"


def open_store(path: Path) -> StateStore:
    return StateStore.open(path)


def init(path: Path, goal: str = "", **nodes: dict[str, Any]) -> str:
    with open_store(path) as store:
        result = actions.init(store, goal, "dagain/integration")
        head = result.head
        for nid, fields in nodes.items():
            head = actions.add(store, {"id": nid, "title": f"do {nid}", **fields}).head
    return head


def add(path: Path, nid: str, **fields: Any) -> str:
    with open_store(path) as store:
        return actions.add(store, {"id": nid, "title": f"do {nid}", **fields}).head


def _commit(store: StateStore, build: Any) -> str:
    outcome = store.transact(build, actor=ACTOR)
    assert isinstance(outcome, Committed), outcome
    return outcome.head


def claim(path: Path, nid: str) -> str:
    """Claim through the real lifecycle decision (open -> running, attempts + 1, a claim)."""
    from gitdag.core import lifecycle

    def build(snap: Any, now: dt.datetime) -> Transition:
        result = lifecycle.claim(store.node(snap, nid), worker=ACTOR, now=now, lease_s=600)
        assert isinstance(result, Transition), result
        return result

    with open_store(path) as store:
        return _commit(store, build)


def complete(path: Path, nid: str, summary: str = "did it", **outputs: str) -> str:
    def build(snap: Any, now: dt.datetime) -> Transition:
        node = store.node(snap, nid)
        new = node.model_copy(update={
            "status": Status.DONE, "claim": None, "updated_at": now,
            "outputs": {**node.outputs, "summary": summary, **outputs},
        })  # fmt: skip
        return Transition(verb="complete", subject=nid, from_status="running", to_status="done",
                          summary=summary, put=(new,), attempt=node.attempts)  # fmt: skip

    with open_store(path) as store:
        return _commit(store, build)


def fail(path: Path, nid: str, reason: str = "broke") -> str:
    """Fail the running attempt through the real lifecycle (retry, or failed and escalated)."""
    from gitdag.core import lifecycle

    def build(snap: Any, now: dt.datetime) -> Transition:
        node = store.node(snap, nid)
        result = lifecycle.fail(node, snap.nodes, snap.graph, kind=ErrorKind.TASK_FAILURE,
                                summary=reason, now=now, attempt=node.attempts)  # fmt: skip
        assert isinstance(result, Transition), result
        return result

    with open_store(path) as store:
        return _commit(store, build)


def run_node(path: Path, nid: str, summary: str = "did it") -> str:
    claim(path, nid)
    return complete(path, nid, summary)


def node(path: Path, nid: str, rev: str | None = None) -> Node:
    with open_store(path) as store:
        commit = store.resolve(rev) if rev else store.head()
        assert commit is not None
        snap = store.snapshot_of(commit)
        return store.node(snap, nid)


def head(path: Path) -> str:
    with open_store(path) as store:
        value = store.head()
        assert value is not None
        return value


def git(path: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
    import os
    import subprocess

    proc = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, input=input,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def hand_commit(path: Path, files: dict[str, str | None], message: str,
                branch: str = "dagain/state") -> str:  # fmt: skip
    """Commit file changes on `branch` with git plumbing only (None deletes a file)."""
    index = path / ".git" / "gitdag-test-index"
    env = {"GIT_INDEX_FILE": str(index)}
    parent = git(path, "rev-parse", f"refs/heads/{branch}")
    git(path, "read-tree", parent, env=env)
    for name, text in files.items():
        if text is None:
            git(path, "update-index", "--force-remove", name, env=env)
        else:
            blob = git(path, "hash-object", "-w", "--stdin", input=text)
            git(path, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
    tree = git(path, "write-tree", env=env)
    index.unlink()
    commit = git(path, "commit-tree", tree, "-p", parent, "-m", message)
    git(path, "update-ref", f"refs/heads/{branch}", commit, parent)
    return commit


def node_file(path: Path, nid: str, rev: str = "dagain/state") -> tuple[str, str]:
    """Return (path in the state tree, text) of a node's file at `rev`."""
    from gitdag.core.ids import node_path

    name = node_path(nid)
    return name, git(path, "show", f"{rev}:{name}") + "\n"
