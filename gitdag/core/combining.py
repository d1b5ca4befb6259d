"""Claims that combine: one claim commit takes a node for its writer and for every raised hand.

Only one push per state head can land, so when eight workers claim at once, seven of every
eight pushes lose. Instead a worker that sees others claiming raises a hand (a ref of its own
under `refs/heads/dagain/hands/`, whose *name* carries its request, so reading a hand costs no
fetch) and waits; whoever lands the next claim claims, in the same commit, one ready node for
each fresh hand (distinct nodes, the hand's worker as claimer) and lowers those hands in the
same atomic push. The waiter sees the head move, fetches, and finds its nonce in a
`Gitdag-Claim-For` trailer: it has claimed without a push of its own.

This module is the pure half: the request a hand carries (`HandRequest`, its ref-name encoding),
the combined transition (`combine`), reading `Gitdag-Claim-For` trailers, and the legality rule
for a claim commit that claims for others (`claim_for_problems`).

A claim made on behalf of another gets the short lease its hand asked for (its worker may have
died after raising it): the owner extends it to the full lease with its first renewal.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gitdag.core import lifecycle, scheduling
from gitdag.core.model import Node, NodeSummary, Status
from gitdag.core.transitions import Rejected, Transition

CLAIM_FOR = "Gitdag-Claim-For"  # `<node> <worker> <nonce>`: a claim made for a raised hand
MAX_NAME = 200  # a ref name component longer than this may not fit a file system's name limit


@dataclass(frozen=True)
class HandRequest:
    """What a raised hand asks for: one ready node, claimed for `worker`.

    Attributes:
      worker: the claimer to write in the node's claim (`worker@host:pid.token`).
      nonce: unique per request: the waiter finds it in the `Gitdag-Claim-For` trailer.
      lease_s: the first lease of a claim made for it (short: its worker may be gone).
      labels: the waiter's labels (a labelled node only goes to a worker that has them all).
    """

    worker: str
    nonce: str
    lease_s: int
    labels: tuple[str, ...] = ()

    def encode(self) -> str | None:
        """Return the request as one ref-name component (base32), or None when too long."""
        text = "\n".join([self.worker, self.nonce, str(self.lease_s), ",".join(self.labels)])
        name = base64.b32encode(text.encode()).decode().rstrip("=").lower()
        return name if len(name) <= MAX_NAME else None

    @staticmethod
    def decode(name: str) -> HandRequest | None:
        """Read a request from its ref-name component (None: not one, e.g. an older hand)."""
        padded = name.upper() + "=" * (-len(name) % 8)
        try:
            text = base64.b32decode(padded.encode()).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        parts = text.split("\n")
        if len(parts) != 4 or not parts[0] or not parts[1] or not parts[2].isdigit():
            return None
        labels = tuple(x for x in parts[3].split(",") if x)
        return HandRequest(parts[0], parts[1], int(parts[2]), labels)


@dataclass(frozen=True)
class Served:
    """A node claimed for a raised hand: which, and for whom."""

    node_id: str
    worker: str
    nonce: str


def claim_for_trailer(served: Served) -> tuple[str, str]:
    """Return the `Gitdag-Claim-For` trailer of one claim made for a hand."""
    return CLAIM_FOR, f"{served.node_id} {served.worker} {served.nonce}"


def parse_claim_for(values: Sequence[str]) -> list[Served]:
    """Read `Gitdag-Claim-For` trailer values (malformed ones are left out)."""
    found = []
    for value in values:
        parts = value.split()
        if len(parts) == 3:
            found.append(Served(parts[0], parts[1], parts[2]))
    return found


def combine(
    own: Transition,
    hands: Sequence[HandRequest],
    nodes: Mapping[str, NodeSummary],
    get: Callable[[str], Node],
    *,
    now: dt.datetime,
    paused: bool,
    max_lease_s: int,
) -> tuple[Transition, list[Served]]:
    """Add to our claim `own` a claim of one ready node for each hand, while nodes are left.

    Each hand (in the order given) gets the first node `scheduling.plan` offers for its labels,
    once the nodes claimed before it in this commit are counted as running (so every node is
    claimed once, and ownership globs held in this commit are respected). Its claim's lease is
    the hand's short lease, at most `max_lease_s`.

    Returns:
      The combined transition (one commit; `own` unchanged when no hand could be served) and
      the hands served.
    """
    if own.verb != "claim" or not hands:
        return own, []
    current = dict(nodes)
    taken = {node.id for node in own.put}
    for node in own.put:
        current[node.id] = current[node.id]._replace(status=Status.RUNNING)
    puts, served = list(own.put), []
    for hand in hands:
        ready = scheduling.plan(current, capacity=1, now=now, paused=paused,
                                labels=hand.labels)  # fmt: skip
        runs = [d.node_id for d in ready if d.action == "run" and d.node_id not in taken]
        if not runs:
            continue
        lease = max(1, min(hand.lease_s, max_lease_s))
        made = lifecycle.claim(get(runs[0]), worker=hand.worker, now=now, lease_s=lease)
        if isinstance(made, Rejected):
            continue
        taken.add(runs[0])
        current[runs[0]] = current[runs[0]]._replace(status=Status.RUNNING)
        puts += made.put
        served.append(Served(runs[0], hand.worker, hand.nonce))
    if not served:
        return own, []
    others = ", ".join(f"{s.node_id} for {s.worker}" for s in served)
    combined = Transition(
        verb="claim", subject=own.subject, from_status=own.from_status, to_status=own.to_status,
        summary=f"{own.summary}; for raised hands: {others}", put=tuple(puts),
        nodes=(own.subject, *(s.node_id for s in served)), attempt=own.attempt,
        trailers=(*own.trailers, *(claim_for_trailer(s) for s in served)),
    )  # fmt: skip
    return combined, served


def claim_for_problems(
    before: Mapping[str, Node],
    after: Mapping[str, Node],
    subject: str | None,
    trailers: Mapping[str, list[str]],
) -> list[tuple[str, str | None, str | None]]:
    """The rules of a claim commit that claims for others: (message, node, field) each.

    Every node the commit claims other than its subject is named by exactly one
    `Gitdag-Claim-For` trailer whose worker is the claim's; a trailer names a node claimed
    here; no node is claimed twice.
    """
    problems: list[tuple[str, str | None, str | None]] = []
    served = parse_claim_for(trailers.get(CLAIM_FOR, []))
    if len(served) != len(trailers.get(CLAIM_FOR, [])):
        problems.append((f"a malformed {CLAIM_FOR} trailer (node worker nonce)", None, None))
    claimed = {
        nid for nid, new in after.items()
        if nid in before and new.attempts > before[nid].attempts
    }  # fmt: skip
    counts: dict[str, int] = {}
    for s in served:
        counts[s.node_id] = counts.get(s.node_id, 0) + 1
    for s in served:
        if counts[s.node_id] > 1:
            problems.append((f"claimed {counts[s.node_id]} times in one commit", s.node_id,
                             "claim"))  # fmt: skip
            counts[s.node_id] = 0  # said once
        elif s.node_id == subject:
            problems.append((f"{CLAIM_FOR} names the commit's own claim", s.node_id, "claim"))
        elif s.node_id not in claimed:
            problems.append((f"{CLAIM_FOR} names a node this commit does not claim", s.node_id,
                             "claim"))  # fmt: skip
        else:
            claim = after[s.node_id].claim
            if claim is None or claim.worker != s.worker:
                problems.append((f"claimed for {s.worker} but the claim names "
                                 f"{claim.worker if claim else 'nobody'}", s.node_id,
                                 "claim.worker"))  # fmt: skip
    named = {s.node_id for s in served}
    for nid in sorted(claimed - named - {subject} if subject else claimed - named):
        problems.append((f"claimed in a claim of {subject} without a {CLAIM_FOR} trailer", nid,
                         "claim"))  # fmt: skip
    return problems


def mine(trailers: Mapping[str, list[str]], nonce: str) -> Served | None:
    """Return the claim made for the hand with `nonce` in a commit's trailers, if any."""
    return next((s for s in parse_claim_for(trailers.get(CLAIM_FOR, [])) if s.nonce == nonce),
                None)  # fmt: skip
