"""Clones without a local state branch: a worker's clone, or a plain clone of a gitdag repository.

A clone used by `gitdag work --remote NAME` keeps the remote's graph in a tracking ref
(`refs/gitdag/remotes/NAME/state`, store/remote.py) and never has a local `dagain/state`: there
`gitdag init` is wrong advice, since it would start a second, unrelated graph. A plain `git clone`
of a repository whose graph lives on the remote has `refs/remotes/NAME/dagain/state` instead.
Either way the repair names the remote: use its graph, or fetch it to run it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dulwich.refs import Ref

from gitdag.doctor.findings import Finding
from gitdag.store.remote import TRACKING_PREFIX
from gitdag.store.state import StateStore


@dataclass(frozen=True)
class CloneKind:
    """Where the graph of a clone without a local state branch lives.

    Attributes:
      workers: remotes whose graph a `gitdag work --remote` in this clone mirrors.
      remotes: remotes that have `dagain/state` (in `refs/remotes/`) this clone never fetched
        into a local branch.
    """

    workers: tuple[str, ...]
    remotes: tuple[str, ...]


def clone_kind(store: StateStore) -> CloneKind:
    """The remotes holding the graph of a clone that has no local `dagain/state`."""
    refs = store.repo.refs
    workers = sorted(
        name.decode().removesuffix("/state")
        for name in refs.as_dict(Ref(TRACKING_PREFIX.encode().rstrip(b"/")))
        if name.endswith(b"/state")
    )
    branch = store.ref.decode().removeprefix("refs/heads/")
    remotes = sorted(
        name.decode().removesuffix("/" + branch)
        for name in refs.as_dict(Ref(b"refs/remotes"))
        if name.decode().endswith("/" + branch)
    )
    return CloneKind(tuple(workers), tuple(r for r in remotes if r not in workers))


def describe(kind: CloneKind) -> str | None:
    """One line saying what this clone is, when it is a worker's clone (not a problem)."""
    if not kind.workers:
        return None
    names = ", ".join(kind.workers)
    first = kind.workers[0]
    return (f"a worker's clone of {names}: no local dagain/state, the graph lives on the remote "
            f"(see it with `gitdag status --remote {first}`, work on it with "
            f"`gitdag work --remote {first}`)")  # fmt: skip


def check_no_state(store: StateStore, kind: CloneKind) -> list[Finding]:
    """The missing local state branch, with the advice that fits where the graph is."""
    if kind.workers:
        return []  # a worker's clone: the tracking ref is its graph
    if kind.remotes:
        name = kind.remotes[0]
        return [Finding(
            "state",
            f"no local dagain/state branch, but remote {name} has one "
            f"(refs/remotes/{name}/dagain/state)",
            f"gitdag status --remote {name} / gitdag work --remote {name} (use {name}'s graph), "
            f"or git fetch {name} dagain/state:dagain/state (run it here)",
        )]  # fmt: skip
    return [Finding("state", "no dagain/state branch", "gitdag init")]


def check_pending(store: StateStore, kind: CloneKind, supervisor: str | None) -> list[Finding]:
    """Finished results a worker kept in `.dagain/local/pending/` that never landed."""
    if supervisor is not None:
        return []  # a live worker pushes (and drops) them itself
    pending = store.paths.local / "pending"
    remote = kind.workers[0] if len(kind.workers) == 1 else "REMOTE"
    found = []
    for path in sorted(pending.glob("*.json")):
        attempt = _attempt(path)
        found.append(Finding(
            "pending",
            f"the result of {path.stem} attempt {attempt} has not landed on the remote "
            f"(kept in {path})",
            f"gitdag work --remote {remote} (pushes it again before it claims anything, while "
            "the node is still this clone's claim; the agent does not run again)",
        ))  # fmt: skip
    return found


def _attempt(path: Path) -> str:
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("attempt", "?"))
    except (OSError, ValueError, AttributeError):
        return "?"
