"""Checks of the configuration and the state branch (its legality, open incidents)."""

from __future__ import annotations

from gitdag.attempts.holds import runner_problem
from gitdag.attempts.preflight import config_line
from gitdag.config import load_settings
from gitdag.core.model import Status
from gitdag.doctor.findings import Finding
from gitdag.errors import GitdagError
from gitdag.store import ranges
from gitdag.store.incidents import VERIFIED_HEAD as VERIFIED_HEAD
from gitdag.store.incidents import load_verified, still_open
from gitdag.store.snapshot import Snapshot
from gitdag.store.state import StateStore


def check_config(store: StateStore) -> list[Finding]:
    """`.dagain/config.yaml` loads."""
    try:
        settings = load_settings(store.paths.dagain)
    except GitdagError as exc:
        return [Finding("config", str(exc), f"edit {store.paths.dagain / 'config.yaml'}")]
    found = []
    # The same check as `gitdag run`'s preflight, for every runner a role may use.
    for role in sorted(settings.roles):
        for name in settings.pool_for(role):
            config = settings.runners.get(name)
            problem = runner_problem(config, store.paths.root) if config else None
            if problem is not None:
                where = config_line(store.paths.dagain, name)
                found.append(Finding(
                    "config", f"{where}: runner {name!r} (role {role}): {problem}",
                    f"install it, or change {where}",
                ))  # fmt: skip
    return found


def check_holds(store: StateStore, snap: Snapshot) -> list[Finding]:
    """Merging nodes whose integration waits for an environment repair (`hold`)."""
    merging = [nid for nid, n in snap.nodes.items() if n.status is Status.MERGING]
    found = []
    for nid, node in sorted(store.nodes(snap, merging).items()):
        if node.hold is not None:
            found.append(Finding(
                "hold", f"{nid} waits to be merged ({node.hold.kind.value}): {node.hold.reason}",
                f"{node.hold.repair} (then gitdag run: the agent does not run again)",
            ))  # fmt: skip
    return found


def check_state(store: StateStore) -> list[Finding]:
    """The state branch exists, every commit since the last verified head is legal, no incident."""
    head = store.head()
    if head is None:
        return [Finding("state", "no dagain/state branch", "gitdag init")]
    found: list[Finding] = []
    base = _verified_base(store, head)
    invalid = ranges.first_invalid(store, base, head)
    if invalid is not None:
        first = invalid.problems[0] if invalid.problems else "invalid"
        found.append(Finding("state", f"dagain/state: {first}", invalid.hint.removeprefix(
            "repair with ")))  # fmt: skip
    incident = still_open(store, store.paths.local, head)
    if incident is not None:
        found.append(Finding(
            "incident",
            f"open incident: commit {incident.commit[:12]} was written by something that bypassed "
            f"the supervisor ({incident.problems[0]})",
            incident.hint.removeprefix("repair with "),
        ))  # fmt: skip
    return found


def _verified_base(store: StateStore, head: str) -> str | None:
    """The last head a supervisor verified, when it is in head's history; else None (all of it)."""
    verified = load_verified(store.paths.local)
    if verified is None or verified == head:
        return verified
    try:
        commits = ranges.commits_between(store, verified, head)
    except GitdagError:
        return None
    first = commits[0] if commits else None
    if first is None or ranges.first_parent(store, first) != verified:
        return None  # not an ancestor (a reset): check everything
    return verified
