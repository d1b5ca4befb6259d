"""Transitions as data: what one commit on the state branch changes, and its message (spec §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: reading trailers (`gitdag log`, `show`) needs no models
    from gitdag.core.model import GraphFile, Node

VERBS = frozenset(
    {
        "init", "add", "claim", "complete", "fail", "retry", "escalate", "checkpoint", "answer",
        "merge", "cancel", "pause", "resume", "revert", "reset", "lease", "edit", "incident",
        "hold", "iterate", "defer",
    }
)  # fmt: skip

TRAILER_KEYS = ("Gitdag-Transition", "Gitdag-Node", "Gitdag-Attempt", "Gitdag-Actor")


@dataclass(frozen=True)
class Transition:
    """One supervisor-applied change of the graph, committed as exactly one commit.

    Attributes:
      verb: one of VERBS; the `Gitdag-Transition` trailer.
      subject: the node the title names (or `graph` for graph-wide changes).
      from_status: status before, for the title (None when not a status change).
      to_status: status after, for the title.
      summary: the commit body: the runner's summary or the reason.
      put: nodes written (added or changed), whole.
      remove: ids of nodes deleted.
      graph: the new `graph.yaml`, when it changes.
      nodes: the ids named in `Gitdag-Node` trailers (defaults to the subject).
      attempt: the `Gitdag-Attempt` trailer.
      trailers: extra trailers, e.g. `("Gitdag-Nonce", "...")`.
    """

    verb: str
    subject: str
    summary: str = ""
    from_status: str | None = None
    to_status: str | None = None
    put: tuple[Node, ...] = ()
    remove: tuple[str, ...] = ()
    graph: GraphFile | None = None
    nodes: tuple[str, ...] = ()
    attempt: int | None = None
    trailers: tuple[tuple[str, str], ...] = field(default=())

    def node_ids(self) -> tuple[str, ...]:
        """Return the ids named in the trailers."""
        return self.nodes or ((self.subject,) if self.subject != "graph" else ())

    def is_empty(self) -> bool:
        """Tell whether this transition changes nothing at all."""
        return not self.put and not self.remove and self.graph is None


@dataclass(frozen=True)
class Rejected:
    """A change refused before anything was written: the reason, and the field it concerns."""

    reason: str
    field: str | None = None
    nodes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def title(transition: Transition) -> str:
    """Return the first line of a transition's commit message."""
    head = f"{transition.verb} {transition.subject}"
    if transition.from_status is not None or transition.to_status is not None:
        return f"{head}: {transition.from_status or '-'} -> {transition.to_status or '-'}"
    return head


def message(transition: Transition, actor: str) -> str:
    """Return the full commit message: title, summary paragraph, trailers.

    Args:
      transition: what is committed.
      actor: who commits it (`supervisor@host:pid`, or the git user for human commands).
    """
    lines = [title(transition), ""]
    summary = " ".join(transition.summary.split())
    if summary:
        lines += [summary[:2000], ""]
    lines.append(f"Gitdag-Transition: {transition.verb}")
    lines += [f"Gitdag-Node: {nid}" for nid in transition.node_ids()]
    if transition.attempt is not None:
        lines.append(f"Gitdag-Attempt: {transition.attempt}")
    lines.append(f"Gitdag-Actor: {' '.join(actor.split())}")
    lines += [f"{key}: {' '.join(value.split())}" for key, value in transition.trailers]
    return "\n".join(lines) + "\n"


def parse_trailers(text: str) -> dict[str, list[str]]:
    """Return the `Gitdag-*` trailers of a commit message as key -> values (in order)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("Gitdag-") and ": " in line:
            key, _, value = line.partition(": ")
            found.setdefault(key, []).append(value.strip())
    return found
