"""Hypothesis strategies for gitdag's records and graphs (shared by the property tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from hypothesis import strategies as st

from gitdag.core.model import (
    Checkpoint,
    Claim,
    ErrorKind,
    GraphFile,
    InputRef,
    Kind,
    Node,
    NodeError,
    NodeSummary,
    PoolState,
    RetryPolicy,
    Status,
    Work,
)

# Strings that a careless YAML writer gets wrong: they look like other types, carry YAML syntax,
# or have whitespace that block scalars and plain scalars cannot keep.
NASTY = [
    "", " ", "  leading", "trailing ", "\n", "\n\n", "a\n", "a\n\n", "\na", "\n  indented after",
    "a\nb", "a\n b", "line one\nline two\n", "ends with two\n\n", "tab\there", "cr\r\nlf",
    "null", "Null", "NULL", "~", "true", "False", "yes", "no", "on", "off", "y", "n",
    "0", "-1", "007", "1.5", "1e5", ".inf", "-.inf", ".nan", "0x1f", "0o17", "1_000", "+5",
    "2024-01-01", "2024-01-01T10:00:00Z", "12:30:45", "1:2",
    "key: value", "a: b: c", "- item", "-", "--- ", "---", "...", "? q", ": x", "# comment",
    "a # not a comment", "#", "&anchor", "*alias", "!tag", "!!str x", "%YAML 1.2", "@at",
    "`tick`", "{flow: map}", "[flow, seq]", "'single'", '"double"', 'say "hi"', "back\\slash",
    "pipe |", "|", ">", "| literal", "> folded", "a,b", "a, b",
    "unicode: café ✓ 日本語 🎉", "zero\u200bwidth", "nbsp\u00a0here", "line\u2028sep",
    "para\u2029sep", "nel\x85here", "del\x7fchar", "bell\x07", "esc\x1b[0m", "\ufeffbom",
    "rtl \u202e override", "x" * 300, "word " * 60,
    "=======", "<<<<<<< HEAD", ">>>>>>> branch", "a\n=======\nb",
]  # fmt: skip

# Text pydantic accepts and UTF-8 can carry (no lone surrogates).
_chars = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(
    st.sampled_from(NASTY),
    st.text(_chars, max_size=40),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(_chars, max_size=12)), max_size=5).map(
        "".join
    ),
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=4).map("\n".join),
)
short_texts = texts.filter(lambda s: len(s) <= 500)

node_ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}(\.[a-z0-9_-]{1,8})?\Z").filter(
    lambda nid: not nid.endswith(".lock")  # git refuses the ref name (core.ids)
)

timestamps = st.datetimes(
    # The range gitdag accepts (core.model.EARLIEST..LATEST).
    min_value=dt.datetime(1970, 1, 1),
    max_value=dt.datetime(8999, 12, 31),
    timezones=st.just(dt.UTC),
)
whole_second_timestamps = timestamps.map(lambda t: t.replace(microsecond=0))

retry_policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 100),
    backoff_s=st.one_of(st.integers(0, 86400), st.floats(0, 86400, allow_nan=False)),
    backoff_max_s=st.one_of(st.integers(0, 604800), st.floats(0, 604800, allow_nan=False)),
)
claims = st.builds(
    Claim,
    worker=short_texts,
    attempt=st.integers(1, 10**6),
    since=timestamps,
    lease_until=st.none() | timestamps,
)
errors = st.builds(
    NodeError,
    kind=st.sampled_from(list(ErrorKind)),
    summary=texts,
    attempt=st.integers(0, 1000),
    paths=st.lists(texts, max_size=3).map(tuple),
)
checkpoints = st.builds(
    Checkpoint,
    question=texts,
    options=st.lists(short_texts, max_size=3).map(tuple),
    answer=st.none() | texts,
    answered_by=st.none() | short_texts,
    answered_at=st.none() | timestamps,
)
works = st.builds(
    Work,
    branch=texts,
    base=st.none() | texts,
    head=st.none() | texts,
    merged=st.none() | texts,
)
input_refs = st.builds(InputRef, node=node_ids, key=short_texts)


@st.composite
def nodes(draw: st.DrawFn, node_id: st.SearchStrategy[str] = node_ids) -> Node:
    """An arbitrary valid node: every field, nasty strings everywhere a string may go."""
    opt = st.none()
    return Node(
        id=draw(node_id),
        title=draw(short_texts),
        description=draw(texts),
        kind=draw(st.sampled_from(list(Kind))),
        status=draw(st.sampled_from(list(Status))),
        priority=draw(st.integers(-(10**9), 10**9)),
        deps=tuple(draw(st.lists(node_ids, max_size=4))),
        after=tuple(draw(st.lists(node_ids, max_size=2))),
        parent=draw(opt | node_ids),
        role=draw(opt | short_texts),
        runner=draw(opt | short_texts),
        run=draw(opt | texts),
        worktree=draw(st.booleans()),
        ownership=tuple(draw(st.lists(short_texts, max_size=3))),
        labels=tuple(draw(st.lists(short_texts, max_size=2))),
        acceptance=tuple(draw(st.lists(texts, max_size=3))),
        verify=tuple(draw(st.lists(texts, max_size=2))),
        inputs=tuple(draw(st.lists(input_refs, max_size=2))),
        retry=draw(opt | retry_policies),
        attempts=draw(st.integers(0, 1000)),
        claim=draw(opt | claims),
        not_before=draw(opt | timestamps),
        outputs=draw(st.dictionaries(short_texts, texts, max_size=3)),
        error=draw(opt | errors),
        checkpoint=draw(opt | checkpoints),
        work=draw(opt | works),
        pool=draw(opt | st.builds(PoolState, index=st.integers(0, 50), failures=st.integers(0, 9))),
        created_at=draw(timestamps),
        updated_at=draw(timestamps),
    )


graph_files = st.builds(
    GraphFile,
    goal=texts,
    target=st.from_regex(r"\A[a-z][a-z0-9/_-]{0,30}[a-z0-9]\Z").filter(
        lambda b: "//" not in b and not b.endswith(".lock")
    ),
    created_at=timestamps,
)

EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@dataclass
class Dag:
    """A random graph of summaries that is acyclic by construction (deps point to lower index)."""

    nodes: dict[str, NodeSummary]
    now: dt.datetime
    order: list[str] = field(default_factory=list)


def summary(
    nid: str,
    *,
    status: Status = Status.OPEN,
    kind: Kind = Kind.TASK,
    deps: tuple[str, ...] = (),
    after: tuple[str, ...] = (),
    parent: str | None = None,
    not_before: dt.datetime | None = None,
    priority: int = 0,
    created_at: dt.datetime = EPOCH,
) -> NodeSummary:
    """A NodeSummary with defaults for what a test does not care about."""
    return NodeSummary(
        id=nid, kind=kind, status=status, priority=priority, deps=deps, after=after,
        parent=parent, not_before=not_before, created_at=created_at, ownership=(), labels=(),
        lease_until=None, attempts=0,
    )  # fmt: skip


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 30) -> Dag:
    """A random DAG of summaries with random statuses, deps, afters, backoffs and priorities."""
    n = draw(st.integers(0, max_nodes))
    ids = [f"n{i:03d}" for i in range(n)]
    now = EPOCH + dt.timedelta(hours=1)
    out: dict[str, NodeSummary] = {}
    for i, nid in enumerate(ids):
        earlier = ids[:i]
        deps = tuple(draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True))) if i else ()
        after = tuple(draw(st.lists(st.sampled_from(earlier), max_size=1))) if i else ()
        offset = draw(st.integers(-120, 120))
        out[nid] = summary(
            nid,
            status=draw(st.sampled_from(list(Status))),
            kind=draw(st.sampled_from(list(Kind))),
            deps=deps,
            after=after,
            parent=draw(st.none() | st.sampled_from(earlier)) if i else None,
            not_before=draw(st.none() | st.just(now + dt.timedelta(minutes=offset))),
            priority=draw(st.integers(-2, 2)),
            created_at=EPOCH + dt.timedelta(seconds=draw(st.integers(0, 1000))),
        )
    # Present them in a shuffled order: algorithms must not rely on insertion order.
    shuffled = draw(st.permutations(ids))
    return Dag({nid: out[nid] for nid in shuffled}, now, ids)
