"""Steering from the page: the same commits the CLI makes, with the actor `ui@<host>`.

Pause, resume, cancel, retry and answer call `gitdag.supervisor.control` exactly as `gitdag pause`
and friends do; free text becomes a plan node on a proposal branch through `gitdag propose`'s
machinery, for a person to review and apply. Nothing here runs a command.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from typing import Any

from gitdag.core.transitions import Rejected
from gitdag.errors import GraphError, InputError
from gitdag.remote.steer import SteeringStore, propose_remote
from gitdag.store import proposal_branches
from gitdag.store.state import StateStore
from gitdag.supervisor import control

MAX_TEXT = 8000


def ui_actor() -> str:
    """Return the actor of commits made from the page: `ui@<host>`."""
    return f"ui@{socket.gethostname() or 'localhost'}"


def _done(what: str, head: str) -> dict[str, Any]:
    return {"ok": True, "did": what, "head": head}


def pause(store: StateStore, paused: bool) -> dict[str, Any]:
    """`gitdag pause` / `gitdag resume`."""
    committed = control.set_paused(store, paused, actor=ui_actor())
    return _done("paused" if paused else "resumed", committed.head)


def cancel(store: StateStore, node_id: str) -> dict[str, Any]:
    """`gitdag cancel NODE_ID`."""
    return _done(f"cancelled {node_id}", control.cancel(store, node_id, actor=ui_actor()).head)


def retry(store: StateStore, node_id: str, force: bool) -> dict[str, Any]:
    """`gitdag retry NODE_ID [--force]`."""
    committed = control.retry(store, node_id, force, actor=ui_actor())
    return _done(f"reopened {node_id}", committed.head)


def answer(store: StateStore, node_id: str, text: str, option: int | None) -> dict[str, Any]:
    """`gitdag answer NODE_ID TEXT` or `--option N`."""
    if not text and option is None:
        raise InputError("give the answer text or an option")
    committed = control.answer(store, node_id, text, option, actor=ui_actor())
    return _done(f"answered {node_id}", committed.head)


def _slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:32].strip("-") or "request"


def propose_text(store: StateStore, text: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Turn free text into a plan node on `dagain/proposals/ui-...`, for review (not applied).

    The node is a `plan` whose description is the text, so that once the proposal is applied the
    planner role reads the request and adds the nodes it needs.
    """
    body = text.strip()
    if not body:
        raise InputError("text: empty; say what the planner should do")
    if len(body) > MAX_TEXT:
        raise InputError(f"text: {len(body)} characters (at most {MAX_TEXT})")
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    node_id = f"ui-{stamp}-{_slug(body)}"[:64].rstrip("-.")
    first = body.splitlines()[0].strip()
    title = first if len(first) <= 120 else first[:119] + "…"
    node = {"id": node_id, "title": title, "kind": "plan", "description": body}
    summary = f"Requested from gitdag ui: {title}"
    if isinstance(store, SteeringStore):  # the graph's remote: the branch is pushed there
        outcome = propose_remote(store, node_id, [node], summary, actor=ui_actor())
    else:
        outcome = proposal_branches.propose_nodes(
            store, node_id, [node], actor=ui_actor(), summary=summary
        )
    if isinstance(outcome, Rejected):
        raise GraphError(f"proposal refused, nothing written: {outcome}")
    return {
        "ok": True,
        "did": f"proposed {node_id}",
        "node": node_id,
        "branch": outcome.branch,
        "head": outcome.head,
        "review": f"gitdag diff dagain/state {outcome.branch}",
        "apply": f"gitdag apply-proposal {node_id}",
    }
