"""Packets: the one message a runner gets (spec §4), as Markdown for agents and JSON for programs.

The Markdown has exactly these sections, in this order, after the role's instructions: Goal, Node,
Dependencies, Inputs, Decisions, Resume (only when there is something to resume from), How to
answer. Nothing else of the graph goes in. The packet is bounded: when it would exceed
`max_bytes`, the largest sections are cut first (water-filling), each with a visible note
`[… cut N bytes …]`; "How to answer" is never cut, because without it no result comes back.
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
from gitdag.core.results import MAX_RESULT_BYTES
from gitdag.errors import ConfigError
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


# --- Markdown -----------------------------------------------------------------------------------


@dataclass
class _Section:
    head: str  # never cut
    body: str  # cut when the packet is too big
    cuttable: bool = True

    def __post_init__(self) -> None:
        # One newline at the end of every body, so sections are separated by one blank line.
        self.body = self.body.rstrip("\n") + "\n"


def render_markdown(data: PacketData) -> str:
    """Return the Markdown packet, at most `data.max_bytes` bytes long."""
    node = data.node
    title = f"# gitdag packet: {data.role} for node `{node.id}`, attempt {data.attempt}\n\n"
    sections = [
        _Section(title, _strip_block(data.template)),
        _Section("## Goal\n\n", _strip_block(data.goal) or "(no goal was recorded)\n"),
        _Section("## Node\n\n", _node_md(data)),
        _Section("## Dependencies\n\n", _deps_md(data.deps)),
        _Section("## Inputs\n\n", _inputs_md(data.inputs)),
        _Section("## Decisions\n\n", _decisions_md(data.decisions)),
    ]
    if data.resume is not None:
        sections.append(_Section("## Resume\n\n", _resume_md(data.resume, data.attempt)))
    if data.loop is not None:
        sections.append(_Section("## Iteration\n\n", _loop_md(data.loop), cuttable=False))
    sections.append(_Section("## How to answer\n\n", _answer_md(data), cuttable=False))
    _fit(sections, data.max_bytes)
    text = "\n".join(s.head + s.body for s in sections)
    raw = text.encode("utf-8")
    if len(raw) > data.max_bytes:  # only when even the uncut parts do not fit: a last resort
        text = _cut(text, data.max_bytes)
    return text


def _strip_block(text: str) -> str:
    text = text.strip("\n")
    return text + "\n" if text.strip() else ""


def _node_md(data: PacketData) -> str:
    node = data.node
    lines = [
        f"- id: `{node.id}`",
        f"- title: {_one_line(node.title)}",
        f"- kind: {node.kind.value}",
        f"- role: {data.role}",
        f"- attempt: {data.attempt}",
        f"- working directory: `{data.worktree}`",
    ]
    if node.ownership:
        globs = ", ".join(f"`{g}`" for g in node.ownership)
        lines.append(f"- ownership (change only these paths): {globs}")
    else:
        lines.append("- ownership: not restricted (stay within what the node asks for)")
    if node.run:
        lines.append(f"- command: `{_one_line(node.run)}`")
    out = "\n".join(lines) + "\n"
    if node.acceptance:
        out += "\n### Acceptance\n\n" + "".join(f"- {_indent_item(a)}\n" for a in node.acceptance)
    if node.verify:
        out += "\n### Verify\n\nThese commands check the work:\n\n"
        out += "".join(f"- `{_one_line(v)}`\n" for v in node.verify)
    description = node.description.strip("\n")
    out += "\n### Description\n\n" + (description + "\n" if description.strip() else "(none)\n")
    return out


def _deps_md(deps: Sequence[DepInfo]) -> str:
    if not deps:
        return "None: this node depends on nothing.\n"
    parts = []
    for dep in deps:
        text = f"### `{dep.id}`: {_one_line(dep.title)} ({dep.status})\n\n"
        text += (dep.summary.strip() or "(no summary)") + "\n"
        outputs = {k: v for k, v in dep.outputs.items() if k != "summary"}
        if outputs:
            text += "\nOutputs:\n\n" + "".join(_value_md(k, v) for k, v in outputs.items())
        parts.append(text)
    return "\n".join(parts)


def _inputs_md(inputs: Sequence[InputValue]) -> str:
    if not inputs:
        return "None requested.\n"
    return "".join(
        _value_md(f"{i.node}.{i.key}", i.value if i.value is not None else None) for i in inputs
    )


def _value_md(key: str, value: str | None) -> str:
    if value is None:
        return f"- `{key}`: (not available: that node has not reported it)\n"
    if "\n" not in value.strip():
        return f"- `{key}`: {value.strip()}\n"
    return f"- `{key}`:\n\n{_fence(value)}\n"


def _decisions_md(decisions: Sequence[Decision]) -> str:
    if not decisions:
        return "None.\n"
    parts = []
    for d in decisions:
        text = f"- `{d.node_id}` asked: {_indent_item(d.question)}\n"
        if d.answer is None:
            text += "  - not answered yet\n"
        else:
            who = f" (by {d.answered_by}" if d.answered_by else ""
            when = f" at {_iso(d.answered_at)}" if d.answered_at else ""
            suffix = f"{who}{when})" if who else (f" ({when.strip()})" if when else "")
            text += f"  - answer{suffix}: {_indent_item(d.answer, 4)}\n"
        parts.append(text)
    return "".join(parts)


def _resume_md(resume: Resume, attempt: int) -> str:
    previous = resume.attempt if resume.attempt is not None else attempt - 1
    out = f"This is attempt {attempt}. What happened before (attempt {previous}):\n\n"
    if resume.error_kind:
        out += f"- last error: {resume.error_kind}"
        out += f": {_indent_item(resume.summary)}\n" if resume.summary.strip() else "\n"
    elif resume.summary.strip():
        out += f"- last outcome: {_indent_item(resume.summary)}\n"
    if resume.paths:
        out += "- conflicting paths: " + ", ".join(f"`{p}`" for p in resume.paths) + "\n"
    if resume.question:
        out += f"- your checkpoint question: {_indent_item(resume.question)}\n"
    if resume.answer is not None:
        answer = _indent_item(resume.answer)
        out += f"- the human's answer (authoritative; do not ask again): {answer}\n"
    if resume.collided:
        out += "- it collided with: " + "; ".join(resume.collided) + "\n"
    if resume.new_tip:
        out += (
            f"- your worktree now starts from the target's new tip `{resume.new_tip[:12]}`, "
            "which already contains that change: make yours on top of it\n"
        )
    if resume.conflicts.strip():
        out += (
            "\nThe conflicting hunks (the target's side first, then your previous attempt's):"
            "\n\n" + _fence(resume.conflicts, "diff") + "\n"
        )
    if resume.check_output.strip():
        out += "\nOutput of the failed check (last lines):\n\n" + _fence(resume.check_output) + "\n"
    return out


def _loop_md(loop: LoopInfo) -> str:
    out = f"- iteration {loop.iteration} of at most {loop.max_iterations}\n"
    if loop.waited:
        out += (
            "- you waited for: " + ", ".join(f"`{w}`" for w in loop.waited)
            + " (their outputs are under Dependencies)\n"
        )  # fmt: skip
    state = json.dumps(dict(loop.state), ensure_ascii=False, indent=1, sort_keys=True)
    out += "- the state your last `continue` handed on (also in `$GITDAG_STATE`):\n\n"
    return out + _fence(state, "json") + "\n"


def _answer_md(data: PacketData) -> str:
    planner = data.node.kind.value == "plan"
    example: dict[str, Any] = {
        "status": "success",
        "summary": "One paragraph: what you did and what you found.",
        "outputs": {"key": "a string value later nodes can ask for"},
    }
    if planner:
        example["next"] = {
            "addNodes": [
                {"id": "task-example", "title": "Do one small thing", "kind": "task",
                 "deps": [], "ownership": ["src/example/**"], "acceptance": ["..."],
                 "verify": ["python -m pytest -q tests/example"]},
            ],
            "setStatus": [],
        }  # fmt: skip
    return (
        "Write exactly one JSON object to the file named by `$GITDAG_RESULT`:\n\n"
        f"    {data.result_path}\n\n"
        "or print it on stdout between `<result>` and `</result>` (only the first such block is\n"
        "read). The same packet as JSON is in `$GITDAG_PACKET_JSON`.\n\n"
        + _fence(json.dumps(example, indent=2), "json")
        + "\n"
        "- `status`: `success` (the node's work is done), `fail` (it cannot be done: say why in\n"
        "  `summary` and `errors`), or `checkpoint` (only a human can decide: add\n"
        '  `"checkpoint": {"question": "...", "options": ["...", "..."]}` and stop).\n'
        '- `continue`: this piece is done and you want another iteration; add `"state": {...}`\n'
        "  (JSON, at most 16 KiB): the next iteration gets it in `$GITDAG_STATE` and here.\n"
        '- `needs`: you must wait for other nodes first; add `"needs": ["<id>", {<new node>}]`\n'
        "  (your work so far is kept; this does not count as an attempt).\n"
        "- `outputs`: string values only. `errors`: a list of strings.\n"
        "- `next.addNodes`: new nodes (`id`, `title`, `kind`, `description`, `deps`, `after`,\n"
        "  `ownership`, `acceptance`, `verify`, `inputs`, `run`, `priority`, `labels`);\n"
        '  `next.setStatus`: `[{"id": ..., "status": "open" | "cancelled"}]` for nodes in\n'
        "  this node's own subtree.\n"
        "- Never edit gitdag's state (the `dagain/state` branch, `.dagain/`) yourself: propose.\n"
        "- The whole result is rejected, and nothing of it applied, if the JSON is malformed\n"
        f"  or over {MAX_RESULT_BYTES // (1024 * 1024)} MiB, `status` or a key is unknown, a new\n"
        "  id exists or is invalid, a dep is unknown, the new nodes form a cycle, more than 100\n"
        "  nodes are added, or a status is set outside this node's scope.\n"
        "- Exit 0 when you have written the result. A non-zero exit fails the attempt, even after\n"
        "  a `success` result.\n"
    )


def _fence(text: str, lang: str = "text") -> str:
    body = text.strip("\n")
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{lang}\n{body}\n{ticks}\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _indent_item(text: str, spaces: int = 2) -> str:
    lines = text.strip().split("\n")
    pad = " " * spaces
    return "\n".join([lines[0], *[pad + line if line.strip() else "" for line in lines[1:]]])


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- bounding -----------------------------------------------------------------------------------


def _note(removed: int) -> str:
    return f"\n[… cut {removed} bytes …]\n"


def _fit(sections: list[_Section], max_bytes: int) -> None:
    """Cut the largest cuttable bodies first until the packet fits (water-filling)."""
    sizes = [len(s.body.encode("utf-8")) for s in sections]
    joins = max(0, len(sections) - 1)
    fixed = joins + sum(len(s.head.encode("utf-8")) for s in sections)
    fixed += sum(size for s, size in zip(sections, sizes, strict=True) if not s.cuttable)
    cuttable = [i for i, s in enumerate(sections) if s.cuttable]
    budget = max_bytes - fixed
    if sum(sizes[i] for i in cuttable) <= budget:
        return
    cap = _water_level([sizes[i] for i in cuttable], max(0, budget))
    for i in cuttable:
        if sizes[i] > cap:
            sections[i].body = _cut(sections[i].body, cap)


def _water_level(sizes: list[int], budget: int) -> int:
    """Return the largest cap such that sum(min(size, cap)) <= budget."""
    ordered = sorted(sizes)
    remaining = budget
    for index, size in enumerate(ordered):
        left = len(ordered) - index
        if size * left > remaining:
            return remaining // left
        remaining -= size
    return ordered[-1] if ordered else 0


def _cut(text: str, limit: int) -> str:
    """Keep the start of `text` so that it plus the cut note is at most `limit` bytes."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    keep = max(0, limit - len(_note(len(raw)).encode("utf-8")))
    head = raw[:keep].decode("utf-8", "ignore")
    newline = head.rfind("\n")
    if newline >= len(head) * 3 // 4:  # end on a whole line when that loses little
        head = head[: newline + 1]
    removed = len(raw) - len(head.encode("utf-8"))
    return head.rstrip("\n") + _note(removed)


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
                "answered_at": _iso(d.answered_at) if d.answered_at else None,
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
        cap = _water_level(sizes, max(0, sum(sizes) - over - 64))
        for (path, value), size in zip(leaves, sizes, strict=True):
            if size > cap:
                _set(obj, path, _cut(value, cap))
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
