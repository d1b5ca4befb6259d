"""Workflow rules as pure decisions: references checked at add time, and which nodes a commit skips.

- `check_node`: a node's `${x.outputs.K}` references and its `when:` name only upstream nodes
  (in `deps` or `after`) and keys those nodes declare in `exports`; handlers exist.
- `follow`: given a transition about to be committed, the open nodes it settles: a node whose
  upstreams are all finished and whose `when:` is false, or that says `skipped_deps: skip` and has
  a skipped upstream, becomes `skipped` in the same commit (so no scheduler ever sees it ready).
  Skips cascade. Every writer (run, work, the CLI) gets this from the store's transact.
- `skip_problem`: the legality rule for `open -> skipped`, whatever verb carries it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping

from gitdag.core import expr
from gitdag.core.model import SATISFIED, TERMINAL, Node, NodeSummary, Status
from gitdag.core.outputs import refs_in
from gitdag.core.states import RESTORING_VERBS
from gitdag.core.transitions import Rejected, Transition

Get = Callable[[str], Node | None]
_TEXT_FIELDS = ("title", "description", "run")


def _texts(node: Node) -> Iterable[tuple[str, str]]:
    for name in _TEXT_FIELDS:
        value = getattr(node, name)
        if value:
            yield name, value
    for i, text in enumerate(node.acceptance):
        yield f"acceptance[{i}]", text
    for i, text in enumerate(node.verify):
        yield f"verify[{i}]", text


def check_node(node: Node, get: Get) -> Rejected | None:
    """Check a node's workflow fields against the graph it joins (`get` reads other nodes).

    Refused: a `when:` that does not parse; a reference (in `when:` or as `${x.outputs.K}` in
    title, description, run, acceptance, verify) to a node that is unknown, is not in `deps` or
    `after`, or does not declare K in `exports`; a handler (`on_failure`, `on_success`) that is
    unknown or is the node itself.
    """
    upstream = set(node.deps) | set(node.after)
    refs: list[tuple[str, str | None, str]] = []
    if node.when is not None:
        try:
            tree = expr.parse(node.when)
        except expr.ExprError as exc:
            return Rejected(f"when: {exc}", field=f"{node.id}.when", nodes=(node.id,))
        refs += [(r.node, r.key, "when") for r in expr.refs(tree)]
    for where, text in _texts(node):
        refs += [(ref, key, where) for ref, key in refs_in(text)]
    for ref, key, where in refs:
        other = get(ref) if ref != node.id else node
        field = f"{node.id}.{where}"
        if other is None:
            return Rejected(f"refers to unknown node {ref!r}", field=field, nodes=(node.id,))
        if ref not in upstream and not _reaches(node, ref, get):
            return Rejected(
                f"refers to {ref}, which it does not wait for (add it to deps or after)",
                field=field,
                nodes=(node.id,),
            )
        if key is not None and key not in (other.exports or ()):
            declared = ", ".join(other.exports or ()) or "none"
            return Rejected(
                f"refers to {ref}.outputs.{key}, but {ref} exports no {key!r} "
                f"(it declares: {declared})",
                field=field,
                nodes=(node.id,),
            )
    for name in ("on_failure", "on_success"):
        for handler in getattr(node, name) or ():
            if handler == node.id:
                return Rejected("a node cannot handle itself", field=f"{node.id}.{name}")
            if get(handler) is None:
                return Rejected(f"unknown handler node {handler!r}", field=f"{node.id}.{name}")
    return None


def normalize(node: Node, get: Get) -> Node:
    """Move each dep on a `continue_on: failure` node to `after` (it runs after a failure too)."""

    def continues(nid: str) -> bool:
        other = get(nid)
        return other is not None and "failure" in (other.continue_on or ())

    moved = [d for d in node.deps if continues(d)]
    if not moved:
        return node
    return node.model_copy(
        update={
            "deps": tuple(d for d in node.deps if d not in moved),
            "after": tuple(dict.fromkeys([*node.after, *moved])),
        }
    )


TRIGGERS = {"on_failure": "failed", "on_success": "done"}


def trigger(node_id: str, which: str) -> str:
    """Return the condition under which a handler named in `which` of `node_id` runs."""
    return f"{node_id}.status == '{TRIGGERS[which]}'"


def handler_when(own: str | None, triggers: Iterable[str]) -> str:
    """Combine a handler's own condition with its triggers (any trigger, and its own condition)."""
    any_of = " or ".join(dict.fromkeys(triggers))
    if own is None:
        return any_of
    return f"({own}) and ({any_of})"


def attach_handlers(node: Node, get: Get) -> list[Node] | Rejected:
    """Return a new node's handlers, changed to wait for it and run only when it triggers them.

    `on_failure` handlers run when it fails for good, `on_success` ones when it is done.

    A handler waits for the node (`after`) and gets the trigger in its `when:`; a handler that
    already handles other nodes runs when any of them triggers it. A handler must be open.
    """
    changed: dict[str, Node] = {}
    for which in ("on_failure", "on_success"):
        for hid in getattr(node, which) or ():
            handler = changed.get(hid) or get(hid)
            if handler is None:
                return Rejected(f"unknown handler node {hid!r}", field=f"{node.id}.{which}")
            if handler.status is not Status.OPEN:
                return Rejected(
                    f"handler {hid} is {handler.status.value}, not open", field=f"{node.id}.{which}"
                )
            new_trigger = trigger(node.id, which)
            when = handler.when
            if when is None:
                when = new_trigger
            elif _handles_already(handler, get):
                # `(own) and (t1 or t2)` or `t1 or t2`: the new trigger joins the alternatives.
                own_part = when.endswith(")") and ") and (" in when
                when = f"{when[:-1]} or {new_trigger})" if own_part else f"{when} or {new_trigger}"
            else:
                when = handler_when(when, [new_trigger])
            if len(when) > expr.MAX_EXPR:
                return Rejected(f"handler {hid}: its condition grows over {expr.MAX_EXPR} chars")
            changed[hid] = handler.model_copy(
                update={"after": tuple(dict.fromkeys([*handler.after, node.id])), "when": when}
            )
    return list(changed.values())


def _handles_already(handler: Node, get: Get) -> bool:
    for up in handler.after:
        other = get(up)
        if other is not None and handler.id in (other.on_failure or ()) + (other.on_success or ()):
            return True
    return False


def _reaches(node: Node, target: str, get: Get, limit: int = 100_000) -> bool:
    """Tell whether `target` is upstream of `node` through deps and after (so finished first)."""
    seen: set[str] = set()
    stack = list(node.deps + node.after)
    while stack and len(seen) < limit:
        nid = stack.pop()
        if nid == target:
            return True
        if nid in seen:
            continue
        seen.add(nid)
        other = get(nid)
        if other is not None:
            stack.extend(other.deps + other.after)
    return False


def missing_exports(node: Node, outputs: Mapping[str, str]) -> str | None:
    """Say which declared `exports` a success did not set (None when all are set)."""
    missing = [key for key in node.exports or () if key not in outputs]
    if not missing:
        return None
    return f"declared output{'s' if len(missing) > 1 else ''} not set: {', '.join(missing)}"


class _Statuses:
    """The statuses after a transition, without copying the graph's (it may be 100k nodes)."""

    def __init__(
        self, nodes: Mapping[str, NodeSummary], put: Mapping[str, Node], removed: set[str]
    ) -> None:
        self.nodes, self.put, self.removed = nodes, put, removed

    def get(self, nid: str) -> Status | None:
        if nid in self.put:
            return self.put[nid].status
        summary = self.nodes.get(nid)
        return None if summary is None or nid in self.removed else summary.status

    def __getitem__(self, nid: str) -> Status:
        found = self.get(nid)
        if found is None:
            raise KeyError(nid)
        return found

    def __contains__(self, nid: object) -> bool:
        return isinstance(nid, str) and self.get(nid) is not None


Waiting = Callable[[set[str]], Iterable[str]]


def _waiting_on(
    nodes: Mapping[str, NodeSummary],
    put: Mapping[str, Node],
    ids: set[str],
    waiting: Waiting | None,
) -> list[str]:
    """Return the open nodes (after `put`) with a dep or after in `ids`.

    The graph's nodes come sorted by id, whichever way they were found: from `waiting` (the
    ids of `nodes` with an edge to one of `ids`, e.g. `GraphIndex.waiting_on`: costs the edges)
    or, without it, by one pass over every summary (costs the graph). Then the nodes of `put`.
    """
    open_ = Status.OPEN
    if waiting is not None:
        found = sorted(
            nid for nid in waiting(ids)
            if nid not in put and (s := nodes.get(nid)) is not None and s.status is open_
        )  # fmt: skip
    else:
        found = sorted(
            nid for nid, s in nodes.items()
            if s.status is open_ and nid not in put
            and (not ids.isdisjoint(s.deps) or (s.after and not ids.isdisjoint(s.after)))
        )  # fmt: skip
    found += [
        nid for nid, n in put.items()
        if n.status is open_ and (not ids.isdisjoint(n.deps) or not ids.isdisjoint(n.after))
    ]  # fmt: skip
    return found


def _skip_reason(
    node: Node, statuses: _Statuses, outputs: Callable[[str], Mapping[str, str]]
) -> str | None:
    upstream = node.deps + node.after
    if node.skipped_deps == "skip":
        skipped = [u for u in upstream if statuses.get(u) is Status.SKIPPED]
        if skipped:
            return f"skipped: {skipped[0]} was skipped (skipped_deps: skip)"
    if node.when is None:
        return None
    if any(statuses.get(d) not in SATISFIED for d in node.deps):
        return None
    if any(statuses.get(a) not in TERMINAL for a in node.after):
        return None
    try:
        tree = expr.parse(node.when)
    except expr.ExprError:
        return None  # refused at add; a hand-made one simply never skips
    names = {r.node for r in expr.refs(tree)}
    values = {n: outputs(n) for n in names if any(r.key for r in expr.refs(tree) if r.node == n)}
    status_text = {n: statuses[n].value for n in names if n in statuses}
    if expr.evaluate(tree, status_text, values):
        return None
    return f"skipped: when {node.when!r} is false"


def follow(
    transition: Transition,
    nodes: Mapping[str, NodeSummary],
    get: Callable[[str], Node],
    now: dt.datetime,
    waiting: Waiting | None = None,
) -> Transition:
    """Return the transition with the open nodes it settles moved to `skipped` (see module doc).

    Args:
      transition: what is about to be committed.
      nodes: the graph's summaries before it.
      get: reads a full node of the graph before it.
      now: the commit's time.
      waiting: given ids, the ids of `nodes` with a dep or after on one of them (any status),
        e.g. `GraphIndex.waiting_on`; without it every summary is scanned (the graph's size
        per settling transition: 9 ms at 100k nodes). Either way the result is the same.
    """
    put = {n.id: n for n in transition.put}
    removed = set(transition.remove)
    settled = {
        nid for nid, n in put.items()
        if n.status in TERMINAL and (nid not in nodes or nodes[nid].status is not n.status)
    }  # fmt: skip
    fresh = [nid for nid, n in put.items() if nid not in nodes and n.status is Status.OPEN]
    if (not settled and not fresh) or transition.verb in RESTORING_VERBS:
        return transition
    statuses = _Statuses(nodes, put, removed)

    def full(nid: str) -> Node:
        return put[nid] if nid in put else get(nid)

    def outputs_of(nid: str) -> Mapping[str, str]:
        return full(nid).outputs if statuses.get(nid) is not None else {}

    skipped: list[str] = []
    queue = _waiting_on(nodes, put, settled, waiting) + fresh
    while queue:
        seen: set[str] = set()
        found: set[str] = set()
        for nid in queue:
            if nid in seen or statuses.get(nid) is not Status.OPEN:
                continue
            seen.add(nid)
            node = full(nid)
            if node.when is None and node.skipped_deps != "skip":
                continue
            reason = _skip_reason(node, statuses, outputs_of)
            if reason is None:
                continue
            put[nid] = node.model_copy(
                update={"status": Status.SKIPPED, "outputs": {"summary": reason}, "updated_at": now}
            )
            skipped.append(nid)
            found.add(nid)
        # Skips cascade: what waited on a node just skipped may be settled now (rare: a rescan).
        queue = _waiting_on(nodes, put, found, waiting) if found else []
    if not skipped:
        return transition
    order = list(dict.fromkeys([*(n.id for n in transition.put), *skipped]))
    return dataclasses.replace(
        transition,
        summary=f"{transition.summary} (skipped {', '.join(skipped)})",
        put=tuple(put[nid] for nid in order),
        nodes=tuple(dict.fromkeys([*transition.node_ids(), *skipped])),
    )


def skip_problem(
    old: Node | None, new: Node, statuses: Callable[[str], Status | None]
) -> str | None:
    """Say why a move to `skipped` is illegal (None when legal).

    Legal: the node was open (or is added), has a `when:` or `skipped_deps: skip`, nothing but
    status, outputs and `updated_at` changed, and every upstream is finished (deps done or
    skipped, after terminal) — or, for `skipped_deps: skip`, some upstream is skipped.
    """
    if old is not None and old.status is not Status.OPEN:
        return f"{old.status.value} -> skipped (only an open node is skipped)"
    if new.when is None and new.skipped_deps != "skip":
        return "skipped without a `when:` or `skipped_deps: skip`"
    if old is not None:
        same = new.model_copy(
            update={"status": old.status, "outputs": old.outputs, "updated_at": old.updated_at}
        )
        if same != old:
            return "a skip changed more than status and outputs"
    upstream = new.deps + new.after
    if new.skipped_deps == "skip" and any(statuses(u) is Status.SKIPPED for u in upstream):
        return None
    for dep in new.deps:
        if statuses(dep) not in SATISFIED:
            return f"skipped while dep {dep} is {_shown(statuses(dep))}"
    for ref in new.after:
        if statuses(ref) not in TERMINAL:
            return f"skipped while {ref} is {_shown(statuses(ref))}"
    return None


def _shown(status: Status | None) -> str:
    return status.value if status is not None else "missing"
