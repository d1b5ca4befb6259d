"""Checks that the target branch agrees with the `done` and `merging` records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from gitdag.attempts.lock import SupervisorLock
from gitdag.core import lifecycle
from gitdag.core.model import Status
from gitdag.core.transitions import Rejected, Transition
from gitdag.doctor.findings import Finding
from gitdag.errors import GitdagError
from gitdag.store import repo as repos
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore
from gitdag.workspace import merge_queue
from gitdag.workspace.gitcli import run_git


def check_target(store: StateStore, snap: Snapshot) -> list[Finding]:
    """Done nodes' `work.merged` is on the target; no merging node is integrated already."""
    target = snap.graph.target
    root = store.paths.root
    tip = run_git(["rev-parse", "-q", "--verify", f"refs/heads/{target}"], root, check=False)
    if tip.returncode != 0:
        repair_cmd = f"git branch {target} <commit>   (the code the graph builds on)"
        return [Finding("target", f"the target branch {target} does not exist", repair_cmd)]
    found: list[Finding] = []
    wanted = [nid for nid, n in snap.nodes.items() if n.status in (Status.DONE, Status.MERGING)]
    for nid, node in sorted(store.nodes(snap, wanted).items()):
        work = node.work
        if work is None:
            continue
        if node.status is Status.DONE and work.merged:
            if not _on_target(root, target, work.merged):
                found.append(Finding(
                    "target",
                    f"{nid} is done, but its integration {work.merged[:12]} is not on {target} "
                    "(was the target reset?)",
                    f"gitdag retry --force {nid}   (or move {target} back to a commit that "
                    f"contains {work.merged[:12]})",
                ))  # fmt: skip
        elif node.status is Status.MERGING and work.head and _on_target(root, target, work.head):
            found.append(Finding(
                "target",
                f"{nid} is merging, but its work {work.head[:12]} is on {target} already (a "
                "crash between the merge and its record)",
                "gitdag run   (the merge queue records it without merging again)",
                _fix_merged(store, nid),
            ))  # fmt: skip
    return found


def _on_target(root: Path, target: str, commit: str) -> bool:
    try:
        return merge_queue.contains(root, target, commit)
    except GitdagError:
        return False


def _fix_merged(store: StateStore, node_id: str) -> Callable[[], str]:
    def fix() -> str:
        paths = store.paths
        with SupervisorLock(paths.ensure_local(), paths.git_dir):
            snap = store.snapshot()
            node = store.node(snap, node_id)
            if node.status is not Status.MERGING or node.work is None:
                return f"{node_id} is {node.status.value} now: nothing to do"
            # The merge queue's own path: it finds the commit that integrated the branch.
            result = merge_queue.integrate(
                paths.root, paths.git_dir, paths.local, branch=node.work.branch,
                target=snap.graph.target, check_cmd=None, check_timeout_s=60.0, node_id=node_id,
                message=f"gitdag: integrate {node_id}\n",
            )  # fmt: skip
            if result.status != "already_merged" or result.merged is None:
                raise OSError(f"{node_id}: the merge queue says {result.status}; run `gitdag run`")
            merged = result.merged

            def compute(s: Snapshot, now: dt.datetime) -> Transition | Rejected:
                return lifecycle.merged(store.node(s, node_id), merged_commit=merged, now=now)

            store.transact(compute, actor=repos.human_actor(store.repo))
        return f"recorded {node_id} as done (integrated by {merged[:12]})"

    return fix
