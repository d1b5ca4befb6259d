"""What a node's run receives from upstream: output values, and the failure a handler handles.

`${node.outputs.KEY}` in a command's `run` becomes a shell variable (core/outputs.bind_shell); in
an agent's packet the text fields carry the value and the packet's Inputs list it.
"""

from __future__ import annotations

from collections.abc import Callable

from gitdag.core import outputs
from gitdag.core.model import Node, Status
from gitdag.runner.packet import InputValue

Read = Callable[[str], Node | None]
EXIT_FILE = "exit_code"  # a command records its exit code here (supervisor/adopt.py reads it)


def upstream_outputs(node: Node, read: Read) -> dict[str, dict[str, str]]:
    """Return the outputs of the upstream nodes (deps and after) that a node's texts refer to."""
    texts = [node.title, node.description, node.run or "", *node.acceptance, *node.verify]
    wanted = {ref for text in texts for ref, _key in outputs.refs_in(text)}
    found: dict[str, dict[str, str]] = {}
    for nid in wanted:
        other = read(nid)
        found[nid] = dict(other.outputs) if other is not None else {}
    return found


def command(node: Node, read: Read) -> tuple[str, dict[str, str]]:
    """Return a command node's shell command with references bound, and its extra environment.

    `GITDAG_FAILURE` lists the failed upstream nodes (`id: kind: summary`, one a line), so a
    command handler (`on_failure`) knows what it handles.
    """
    values = upstream_outputs(node, read)
    cmd, env = outputs.bind_shell(node.run or "", outputs.lookup(values))
    # In a subshell, so `exit N` in the command still reaches the line that records it.
    record = f'echo "$__gitdag_rc" > "$GITDAG_RUN_DIR/{EXIT_FILE}"'
    cmd = f'(\n{cmd}\n)\n__gitdag_rc=$?; {record}; exit "$__gitdag_rc"'
    failures = failure_lines(node, read)
    if failures:
        env["GITDAG_FAILURE"] = "\n".join(failures)
    return cmd, env


def unwrap(cmd: str) -> str:
    """Return a command node's own command from the wrapped one (for summaries and logs)."""
    if cmd.startswith("(\n") and "\n)\n__gitdag_rc=$?;" in cmd:
        return cmd[2 : cmd.rindex("\n)\n__gitdag_rc=$?;")]
    return cmd


def failure_lines(node: Node, read: Read) -> list[str]:
    """Return `id: kind: summary` for each failed upstream node."""
    lines = []
    for nid in node.deps + node.after:
        other = read(nid)
        if other is not None and other.status is Status.FAILED and other.error is not None:
            summary = " ".join(other.error.summary.split())[:500]
            lines.append(f"{nid}: {other.error.kind.value}: {summary}")
    return lines


def packet_node(node: Node, read: Read) -> tuple[Node, list[InputValue]]:
    """Return the node as its packet shows it (references replaced by values) and the inputs."""
    values = upstream_outputs(node, read)
    if not values:
        return node, []
    value = outputs.lookup(values)
    shown = node.model_copy(
        update={
            "title": outputs.substitute(node.title, value),
            "description": outputs.substitute(node.description, value),
            "acceptance": tuple(outputs.substitute(t, value) for t in node.acceptance),
            "verify": tuple(outputs.substitute(t, value) for t in node.verify),
        }
    )
    texts = [node.title, node.description, *node.acceptance, *node.verify]
    refs = dict.fromkeys(ref for text in texts for ref in outputs.refs_in(text))
    return shown, [InputValue(n, k, values.get(n, {}).get(k)) for n, k in refs]


def dep_summary(dep: Node) -> str:
    """A dependency's summary in a packet; a failed one's carries its error."""
    if dep.status is Status.FAILED and dep.error is not None:
        return f"failed ({dep.error.kind.value}): {dep.error.summary}"
    return dep.outputs.get("summary", "")
