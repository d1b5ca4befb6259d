"""Packets: the one message a runner gets (spec §4), as Markdown for agents and JSON for programs.

The Markdown has exactly these sections, in this order, after the role's instructions: Goal, Node,
Dependencies, Inputs, Decisions, Resume (only when there is something to resume from), How to
answer. Nothing else of the graph goes in. The packet is bounded: when it would exceed
`max_bytes`, the largest sections are cut first (water-filling), each with a visible note
`[… cut N bytes …]`; "How to answer" is never cut, because without it no result comes back.

This module holds the packet's data, loads role templates, writes both files and renders the JSON;
the Markdown is rendered in `packet_markdown`, and both are bounded by `packet_fit`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gitdag.core.model import Node
from gitdag.errors import ConfigError
from gitdag.runner.packet_fit import cut, water_level
from gitdag.runner.packet_markdown import iso, render_markdown
from gitdag.template import template_dir

PACKET_MD = "packet.md"
PACKET_JSON = "packet.json"
PACKET_FORMAT = "gitdag-packet/1"
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class DepInfo:
    """A dependency as its dependents see it: what it was, and what it reported."""

    id: str
    title: str
    status: str
    summary: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InputValue:
    """An output of another node that this node asked for; `value` is None when it is absent."""

    node: str
    key: str
    value: str | None


@dataclass(frozen=True)
class Decision:
    """A human decision that concerns this node (its own checkpoint, or a dep's)."""

    node_id: str
    question: str
    answer: str | None
    answered_by: str | None = None
    answered_at: dt.datetime | None = None


@dataclass(frozen=True)
class Resume:
    """What a retry needs to know about the attempt before it."""

    error_kind: str | None = None
    summary: str = ""
    paths: tuple[str, ...] = ()
    check_output: str = ""
    answer: str | None = None
    question: str | None = None
    attempt: int | None = None
    collided: tuple[str, ...] = ()  # after a merge conflict: the target changes it collided with
    new_tip: str | None = None  # ... the target commit this attempt's worktree starts from
    conflicts: str = ""  # ... and the conflicting hunks (bounded)


@dataclass(frozen=True)
class LoopInfo:
    """Agent loops and deferrals (docs/runner-protocol.md): where this run stands."""

    iteration: int = 1
    max_iterations: int = 1
    state: Mapping[str, Any] = field(default_factory=dict)
    waited: tuple[str, ...] = ()  # the nodes the last `needs` waited for (their outputs: deps)


@dataclass(frozen=True, kw_only=True)
class PacketData:
    """Everything a packet says; the supervisor gathers it, this module only renders it."""

    goal: str
    node: Node
    role: str
    attempt: int
    run_id: str
    template: str
    result_path: Path
    worktree: Path
    deps: Sequence[DepInfo] = ()
    inputs: Sequence[InputValue] = ()
    decisions: Sequence[Decision] = ()
    resume: Resume | None = None
    loop: LoopInfo | None = None
    max_bytes: int = 64 * 1024


@dataclass(frozen=True)
class PacketFiles:
    """Where a packet was written."""

    md: Path
    json: Path


def load_prompt(dagain_dir: Path, role: str) -> str:
    """Return the packet template of a role: `.dagain/prompts/<role>.md`, else the packaged one."""
    if not _ROLE_NAME.match(role):
        raise ConfigError(f"role {role!r}: not a valid role name")
    candidates: tuple[Traversable, ...] = (
        dagain_dir / "prompts" / f"{role}.md",
        template_dir() / "prompts" / f"{role}.md",
    )
    for path in candidates:
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read: {exc}") from None
    raise ConfigError(f"{candidates[0]}: no packet template for role {role!r}")


def write_packet(run_dir: Path, data: PacketData) -> PacketFiles:
    """Write `packet.md` and `packet.json` into `run_dir` (created if needed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = PacketFiles(md=run_dir / PACKET_MD, json=run_dir / PACKET_JSON)
    files.md.write_text(render_markdown(data), encoding="utf-8")
    files.json.write_text(render_json(data), encoding="utf-8")
    return files


# --- JSON ---------------------------------------------------------------------------------------


def packet_dict(data: PacketData) -> dict[str, Any]:
    """Return the JSON packet's content (before bounding)."""
    node = data.node
    resume = data.resume
    return {
        "format": PACKET_FORMAT,
        "goal": data.goal,
        "role": data.role,
        "attempt": data.attempt,
        "run_id": data.run_id,
        "worktree": str(data.worktree),
        "result_path": str(data.result_path),
        "node": {
            "id": node.id,
            "title": node.title,
            "kind": node.kind.value,
            "description": node.description,
            "acceptance": list(node.acceptance),
            "verify": list(node.verify),
            "ownership": list(node.ownership),
            "labels": list(node.labels),
            "parent": node.parent,
            "run": node.run,
        },
        "deps": [
            {
                "id": d.id,
                "title": d.title,
                "status": d.status,
                "summary": d.summary,
                "outputs": dict(d.outputs),
            }
            for d in data.deps
        ],
        "inputs": [{"node": i.node, "key": i.key, "value": i.value} for i in data.inputs],
        "decisions": [
            {
                "node": d.node_id,
                "question": d.question,
                "answer": d.answer,
                "answered_by": d.answered_by,
                "answered_at": iso(d.answered_at) if d.answered_at else None,
            }
            for d in data.decisions
        ],
        "resume": None
        if resume is None
        else {
            "attempt": resume.attempt if resume.attempt is not None else data.attempt - 1,
            "error_kind": resume.error_kind,
            "summary": resume.summary,
            "paths": list(resume.paths),
            "check_output": resume.check_output,
            "question": resume.question,
            "answer": resume.answer,
            "collided_with": list(resume.collided),
            "new_tip": resume.new_tip,
            "conflicts": resume.conflicts,
        },
        "loop": None
        if data.loop is None
        else {
            "iteration": data.loop.iteration,
            "max_iterations": data.loop.max_iterations,
            "state": dict(data.loop.state),
            "waited_for": list(data.loop.waited),
        },
        "instructions": data.template,
    }


def render_json(data: PacketData) -> str:
    """Return the JSON packet, at most `data.max_bytes` bytes: long strings are cut first."""
    obj = packet_dict(data)
    text = _dumps(obj)
    for _ in range(4):  # escaping makes sizes approximate; a few rounds converge
        over = len(text.encode("utf-8")) - data.max_bytes
        if over <= 0:
            return text
        leaves = _string_leaves(obj, ())
        sizes = [len(value.encode("utf-8")) for _, value in leaves]
        cap = water_level(sizes, max(0, sum(sizes) - over - 64))
        for (path, value), size in zip(leaves, sizes, strict=True):
            if size > cap:
                _set(obj, path, cut(value, cap))
        text = _dumps(obj)
    return text


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def _string_leaves(value: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _string_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _string_leaves(v, (*path, i))]
    return []


def _set(obj: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
