"""The Markdown packet: its sections, in the order spec §4 gives, rendered and bounded."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gitdag.core.results import MAX_RESULT_BYTES
from gitdag.runner.packet_fit import Section, cut, fit

if TYPE_CHECKING:
    from gitdag.runner.packet import Decision, DepInfo, InputValue, LoopInfo, PacketData, Resume


def render_markdown(data: PacketData) -> str:
    """Return the Markdown packet, at most `data.max_bytes` bytes long."""
    node = data.node
    title = f"# gitdag packet: {data.role} for node `{node.id}`, attempt {data.attempt}\n\n"
    sections = [
        Section(title, _strip_block(data.template)),
        Section("## Goal\n\n", _strip_block(data.goal) or "(no goal was recorded)\n"),
        Section("## Node\n\n", _node_md(data)),
        Section("## Dependencies\n\n", _deps_md(data.deps)),
        Section("## Inputs\n\n", _inputs_md(data.inputs)),
        Section("## Decisions\n\n", _decisions_md(data.decisions)),
    ]
    if data.resume is not None:
        sections.append(Section("## Resume\n\n", _resume_md(data.resume, data.attempt)))
    if data.loop is not None:
        sections.append(Section("## Iteration\n\n", _loop_md(data.loop), cuttable=False))
    sections.append(Section("## How to answer\n\n", _answer_md(data), cuttable=False))
    fit(sections, data.max_bytes)
    text = "\n".join(s.head + s.body for s in sections)
    raw = text.encode("utf-8")
    if len(raw) > data.max_bytes:  # only when even the uncut parts do not fit: a last resort
        text = cut(text, data.max_bytes)
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
            when = f" at {iso(d.answered_at)}" if d.answered_at else ""
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


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
