"""The light vocabulary of the state branch: statuses, kinds and the summaries read paths use.

Nothing here imports pydantic: `gitdag status`, `ready` and the snapshot index load these without
building the node models (issue 18 part 5). `core/model.py` re-exports every name, so
`from gitdag.core.model import Status` keeps working; the records themselves live there.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import NamedTuple


class Status(StrEnum):
    """Stored statuses of a node."""

    OPEN = "open"
    RUNNING = "running"
    MERGING = "merging"
    DONE = "done"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    CANCELLED = "cancelled"
    # Its `when:` was false (or a dep it needs was skipped): finished without running. Satisfies
    # dependents like `done` unless they say `skipped_deps: skip` (docs/workflows.md).
    SKIPPED = "skipped"


TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, Status.SKIPPED})
# What satisfies a `deps` entry: done, or skipped (a skipped node's dependents still run).
SATISFIED = frozenset({Status.DONE, Status.SKIPPED})


class Kind(StrEnum):
    """What a node does, and so which role runs it."""

    PLAN = "plan"
    TASK = "task"
    VERIFY = "verify"
    COMMAND = "command"
    CHECKPOINT = "checkpoint"


class ErrorKind(StrEnum):
    """Why the last attempt of a node failed."""

    TIMEOUT = "timeout"
    SPAWN_ERROR = "spawn_error"
    MISSING_RESULT = "missing_result"
    INVALID_RESULT = "invalid_result"
    TASK_FAILURE = "task_failure"
    MERGE_CONFLICT = "merge_conflict"
    CHECK_FAILED = "check_failed"
    LEASE_EXPIRED = "lease_expired"
    CANCELLED = "cancelled"
    PUSH_REFUSED = "push_refused"  # the remote refused the node's branch: not the agent's to fix


class HoldKind(StrEnum):
    """Why a node's finished work waits: an environment failure a person repairs (never the agent).

    Environment failures never spend an attempt and never escalate (docs/state-branch.md).
    """

    TARGET_DIRTY = "target_dirty"  # the user's checkout of the target has edits, or is busy
    TARGET_MISSING = "target_missing"  # the target branch is gone
    DISK_FULL = "disk_full"  # ENOSPC, EDQUOT or EROFS while writing objects or refs
    REF_REFUSED = "ref_refused"  # a push or ref update was refused (a hook, permissions)
    GIT_ERROR = "git_error"  # git failed for a reason that is not the node's
    RUNNER_MISSING = "runner_missing"  # a runner's executable is missing or cannot start


class NodeSummary(NamedTuple):
    """The few fields of a node that scheduling and status need; cheap to cache and load."""

    id: str
    kind: Kind
    status: Status
    priority: int
    deps: tuple[str, ...]
    after: tuple[str, ...]
    parent: str | None
    not_before: dt.datetime | None
    created_at: dt.datetime
    ownership: tuple[str, ...]
    labels: tuple[str, ...]
    lease_until: dt.datetime | None
    attempts: int
    group: str | None = None  # a transaction group (core/groups.py); last, with a default


class HoldSummary(NamedTuple):
    """A `merging` node's hold as `gitdag status` shows it (the record is `model.Hold`)."""

    kind: HoldKind
    reason: str
    repair: str
    since: dt.datetime


class NodeDetail(NamedTuple):
    """What `gitdag status` shows of a running or merging node beyond its summary.

    Kept beside the parse cache for the nodes in those statuses, so that status reads it
    without loading the full node (`model.detail` computes it from one).
    """

    attempt: int  # the claim's attempt, else the node's attempts
    worker: str | None  # the claim's worker
    since: dt.datetime | None  # when the claim started
    iteration: int  # the agent loop's iteration (1 outside loops)
    updated_at: dt.datetime  # the merge queue's order
    hold: HoldSummary | None


# The statuses whose nodes `gitdag status` details (NodeDetail).
DETAILED = frozenset({Status.RUNNING, Status.MERGING})


class GraphSummary(NamedTuple):
    """What the read-only commands show of `graph.yaml` (the record is `model.GraphFile`)."""

    goal: str
    target: str
    paused: bool
