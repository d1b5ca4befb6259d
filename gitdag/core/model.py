"""Frozen records for the files on the state branch (spec §3).

Strict where it matters: unknown keys, wrong scalar types and bad ids are errors. Containers accept
lists (YAML and JSON have no tuples) and are stored as tuples so records stay immutable.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from gitdag.core.ids import id_problem
from gitdag.core.refnames import target_problem

# The light names live in core/summary.py (no pydantic: the read-only commands import them
# alone); re-exported so every `from gitdag.core.model import Status` keeps working.
from gitdag.core.summary import DETAILED as DETAILED
from gitdag.core.summary import SATISFIED as SATISFIED
from gitdag.core.summary import TERMINAL as TERMINAL
from gitdag.core.summary import ErrorKind as ErrorKind
from gitdag.core.summary import GraphSummary as GraphSummary
from gitdag.core.summary import HoldKind as HoldKind
from gitdag.core.summary import HoldSummary as HoldSummary
from gitdag.core.summary import Kind as Kind
from gitdag.core.summary import NodeDetail as NodeDetail
from gitdag.core.summary import NodeSummary as NodeSummary
from gitdag.core.summary import Status as Status

SCHEMA_VERSION = 1


def _check_id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"invalid id: {problem}")
    return value


# Timestamps gitdag accepts: from the epoch to the year 9000, so that adding a lease, a backoff or
# a timeout to any of them never leaves the range datetime can hold (year 9999).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
MAX_PRIORITY = 10**9


def _utc(value: Any) -> Any:
    # YAML gives datetimes, JSON gives strings; anything else (an int, a bool) is a wrong type.
    # A naive time is read as UTC (what gitdag writes always carries its `Z`).
    if isinstance(value, dt.datetime):
        try:
            stamp = (
                value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
            )
        except (OverflowError, ValueError):
            raise ValueError(f"timestamp {value.isoformat()} is out of range") from None
        if not EARLIEST <= stamp < LATEST:
            raise ValueError(f"timestamp {stamp.isoformat()} is outside 1970-01-01..9000-01-01")
        return stamp
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise ValueError(f"not an ISO-8601 timestamp: {value[:40]!r}…")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except (ValueError, OverflowError):
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None
        return _utc(parsed)
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")


NodeId = Annotated[StrictStr, AfterValidator(_check_id)]
# An output key: what `$GITDAG_OUTPUT` lines and `${node.outputs.KEY}` references use.
OutputKey = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Priority = Annotated[StrictInt, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
# A number of seconds: an int or a finite float; never a bool, a string, nan or inf.
Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
Timestamp = Annotated[dt.datetime, BeforeValidator(_utc)]
Text = Annotated[StrictStr, Field(max_length=65536)]
ShortText = Annotated[StrictStr, Field(max_length=500)]


def _check_branch(value: str) -> str:
    problem = target_problem(value)
    if problem is not None:
        raise ValueError(f"invalid target branch {value[:80]!r}: {problem}")
    return value


BranchName = Annotated[StrictStr, AfterValidator(_check_branch)]


class Record(BaseModel):
    """Base of every persisted record: frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)


class RetryPolicy(Record):
    """How often, and how patiently, a node is retried."""

    max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    backoff_s: Annotated[Number, Field(ge=0, le=86400)] = 5
    backoff_max_s: Annotated[Number, Field(ge=0, le=604800)] = 300
    # Which failure kinds are retried (None: every kind); any other kind fails the node at once.
    kinds: tuple[ErrorKind, ...] | None = None


class Claim(Record):
    """Who runs a node's current attempt, and until when the claim holds without renewal."""

    worker: ShortText
    attempt: Annotated[StrictInt, Field(ge=1)]
    since: Timestamp
    lease_until: Timestamp | None = None


class NodeError(Record):
    """The last failure of a node."""

    kind: ErrorKind
    summary: Text
    attempt: Annotated[StrictInt, Field(ge=0)]
    paths: tuple[StrictStr, ...] = ()


class Checkpoint(Record):
    """A human decision: the question, the options, and the answer once given (kept forever)."""

    question: Text
    options: tuple[ShortText, ...] = ()
    answer: Text | None = None
    answered_by: ShortText | None = None
    answered_at: Timestamp | None = None


class Work(Record):
    """A code-changing node's branch: where it started, its last commit, what integrated it."""

    branch: StrictStr
    base: StrictStr | None = None
    head: StrictStr | None = None
    merged: StrictStr | None = None


class Hold(Record):
    """Why a `merging` node's integration waits, and what a person does about it."""

    kind: HoldKind
    reason: Text
    repair: Text
    since: Timestamp


class InputRef(Record):
    """An output of another node that this node's packet should carry."""

    node: NodeId
    key: ShortText


class PoolState(Record):
    """Where a node stands in its role's runner pool (promotion on failure)."""

    index: Annotated[StrictInt, Field(ge=0)] = 0
    failures: Annotated[StrictInt, Field(ge=0)] = 0


MAX_STATE_BYTES = 16 * 1024


def _bounded_state(value: dict[str, Any]) -> dict[str, Any]:
    # The carried state rides in the node file, the packet and an environment variable: small.
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        raise ValueError("not JSON (objects, lists, strings, finite numbers)") from None
    if size > MAX_STATE_BYTES:
        raise ValueError(f"{size} bytes as JSON, over {MAX_STATE_BYTES}")
    return value


State = Annotated[dict[ShortText, Any], AfterValidator(_bounded_state)]


class Carry(Record):
    """What a node carries from one run of its work to the next (agent loops, `needs`).

    `iteration` is the iteration running now (or next to run, after a crash or a deferral),
    `state` what the last `continue` handed on, `since` when the first iteration started (for
    `max_duration_s`). `branch`/`base`/`head` keep a task's worktree across iterations and
    deferrals: the next run checks out `head` instead of a fresh target tip. `deferrals` counts
    `needs`, and `waited` names what the last one waited for (the next packet says so).
    """

    iteration: Annotated[StrictInt, Field(ge=1)] = 1
    state: State = Field(default_factory=dict)
    since: Timestamp | None = None
    branch: StrictStr | None = None
    base: StrictStr | None = None
    head: StrictStr | None = None
    deferrals: Annotated[StrictInt, Field(ge=0)] = 0
    waited: tuple[NodeId, ...] = ()


class Node(Record):
    """One node file, `nodes/<xx>/<id>.yaml`."""

    schema_version: Literal[1] = 1
    id: NodeId
    title: ShortText
    description: Text = ""
    kind: Kind = Kind.TASK
    status: Status = Status.OPEN
    priority: Priority = 0
    deps: tuple[NodeId, ...] = ()
    after: tuple[NodeId, ...] = ()
    parent: NodeId | None = None
    role: ShortText | None = None
    runner: ShortText | None = None
    run: Text | None = None
    worktree: StrictBool = False
    ownership: tuple[ShortText, ...] = ()
    labels: tuple[ShortText, ...] = ()
    acceptance: tuple[Text, ...] = ()
    verify: tuple[Text, ...] = ()
    inputs: tuple[InputRef, ...] = ()
    retry: RetryPolicy | None = None
    attempts: Annotated[StrictInt, Field(ge=0)] = 0
    # Attempts that do not count against `retry.max_attempts`: those before a `gitdag retry`, and
    # those lost to a crashed supervisor. `attempts` itself only ever grows (history stays legal).
    attempt_base: Annotated[StrictInt, Field(ge=0)] = 0
    claim: Claim | None = None
    not_before: Timestamp | None = None
    outputs: dict[ShortText, Text] = Field(default_factory=dict)
    error: NodeError | None = None
    checkpoint: Checkpoint | None = None
    work: Work | None = None
    # Set while a `merging` node's integration waits for an environment repair (HoldKind).
    hold: Hold | None = None
    pool: PoolState | None = None
    # Agent loops and transaction groups (docs/state-branch.md): bounds that override the graph's
    # defaults, the group whose members integrate all-or-nothing, and what runs carry forward.
    max_iterations: Annotated[StrictInt, Field(ge=1, le=10000)] | None = None
    max_duration_s: Annotated[Number, Field(gt=0, le=30 * 86400)] | None = None
    group: ShortText | None = None
    carry: Carry | None = None
    # Workflow fields (docs/workflows.md); left out of the file while unset.
    when: Annotated[StrictStr, Field(max_length=4000)] | None = None  # core/expr.py; false: skip
    exports: tuple[OutputKey, ...] | None = None  # output keys a success must set
    on_failure: tuple[NodeId, ...] | None = None  # handler nodes run when this fails for good
    on_success: tuple[NodeId, ...] | None = None  # handler nodes run when this is done
    timeout_s: Annotated[Number, Field(gt=0, le=604800)] | None = None  # overrides the runner's
    continue_on: tuple[Literal["failure"], ...] | None = None  # dependents run after a failure
    skipped_deps: Literal["satisfy", "skip"] | None = None  # a skipped dep: run (default) or skip
    flow: ShortText | None = None  # the workflow file (`gitdag apply`) that made this node
    created_at: Timestamp
    updated_at: Timestamp

    def attempts_left(self, policy: RetryPolicy) -> int:
        """Return how many more attempts the retry policy allows."""
        return max(0, policy.max_attempts - (self.attempts - self.attempt_base))

    def changes_code(self) -> bool:
        """Tell whether this node works in its own worktree and goes through the merge queue."""
        return self.kind is Kind.TASK or (self.kind is Kind.COMMAND and self.worktree)


class Defaults(Record):
    """Graph-wide defaults, overridable per node."""

    retry: RetryPolicy = RetryPolicy()
    lease_s: Annotated[StrictInt, Field(ge=5, le=86400)] = 600
    escalation_depth: Annotated[StrictInt, Field(ge=0, le=10)] = 2
    max_iterations: Annotated[StrictInt, Field(ge=1, le=10000)] = 20
    max_duration_s: Annotated[Number, Field(gt=0, le=30 * 86400)] = 86400
    max_deferrals: Annotated[StrictInt, Field(ge=0, le=100)] = 3


class Control(Record):
    """Graph-wide switches set by control commands."""

    paused: StrictBool = False


class GraphFile(Record):
    """The `graph.yaml` file at the root of the state tree."""

    schema_version: Literal[1] = 1
    goal: Text = ""
    target: BranchName = "dagain/integration"
    created_at: Timestamp
    defaults: Defaults = Defaults()
    control: Control = Control()
    # Cron schedules of applied workflow files (flow name -> crons), written into the CI
    # workers' triggers by `gitdag hooks install --ci`; left out of the file while unset.
    schedules: dict[ShortText, tuple[ShortText, ...]] | None = None


def summarize(node: Node) -> NodeSummary:
    """Return the summary of a node, as kept in the snapshot index."""
    return NodeSummary(
        id=node.id,
        kind=node.kind,
        status=node.status,
        priority=node.priority,
        deps=node.deps,
        after=node.after,
        parent=node.parent,
        not_before=node.not_before,
        created_at=node.created_at,
        ownership=node.ownership,
        labels=node.labels,
        lease_until=node.claim.lease_until if node.claim else None,
        attempts=node.attempts,
        group=node.group,
    )


def detail(node: Node) -> NodeDetail:
    """Return what `gitdag status` shows of a running or merging node beyond its summary."""
    claim, hold = node.claim, node.hold
    return NodeDetail(
        attempt=claim.attempt if claim else node.attempts,
        worker=claim.worker if claim else None,
        since=claim.since if claim else None,
        iteration=node.carry.iteration if node.carry else 1,
        updated_at=node.updated_at,
        hold=HoldSummary(hold.kind, hold.reason, hold.repair, hold.since) if hold else None,
    )


def summarize_graph(graph: GraphFile) -> GraphSummary:
    """Return what the read-only commands show of `graph.yaml`."""
    return GraphSummary(goal=graph.goal, target=graph.target, paused=graph.control.paused)
