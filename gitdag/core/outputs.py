"""Outputs between nodes: `$GITDAG_OUTPUT` lines, and `${node-id.outputs.KEY}` references.

Pure: text in, values out. Bounds (docs/workflows.md): an output file of at most 64 KiB, at most
64 keys per node, keys `[A-Za-z_][A-Za-z0-9_]{0,63}`, a value of at most 16 KiB.

In a command node's `run` a reference becomes a shell variable (`${GITDAG_IN_1}` with the value in
the environment), so an upstream value reaches the shell as data, never as code. In an agent's
packet it is replaced by the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_OUTPUT_FILE = 64 * 1024
MAX_KEYS = 64
MAX_VALUE = 16 * 1024
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
REF = re.compile(r"\$\{\s*([a-z0-9][a-z0-9._-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")


@dataclass(frozen=True)
class OutputProblem:
    """Why an output file cannot be used (one line)."""

    reason: str


def refs_in(text: str) -> list[tuple[str, str]]:
    """Return the `(node, key)` of every `${node.outputs.KEY}` in a text, in order, once each."""
    return list(dict.fromkeys((m.group(1), m.group(2)) for m in REF.finditer(text)))


Value = Callable[[str, str], str]


def substitute(text: str, value: Value) -> str:
    """Replace every reference by `value(node, key)` (packets, titles, descriptions)."""
    return REF.sub(lambda m: value(m.group(1), m.group(2)), text)


def bind_shell(command: str, value: Value) -> tuple[str, dict[str, str]]:
    """Return the command with references turned into `${GITDAG_IN_n}` and those variables."""
    env: dict[str, str] = {}
    names: dict[tuple[str, str], str] = {}

    def swap(match: re.Match[str]) -> str:
        ref = (match.group(1), match.group(2))
        if ref not in names:
            names[ref] = f"GITDAG_IN_{len(names) + 1}"
            env[names[ref]] = value(*ref)
        return "${" + names[ref] + "}"

    return REF.sub(swap, command), env


def parse_output_file(data: bytes) -> dict[str, str] | OutputProblem:
    """Read `$GITDAG_OUTPUT`: `KEY=VALUE` lines, or `KEY<<DELIM` ... `DELIM` for several lines.

    A later line for the same key wins (GitHub Actions does the same). Blank lines are ignored.
    """
    if len(data) > MAX_OUTPUT_FILE:
        return OutputProblem(f"$GITDAG_OUTPUT is {len(data)} bytes, over {MAX_OUTPUT_FILE}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return OutputProblem(f"$GITDAG_OUTPUT is not UTF-8 text (byte {exc.start})")
    found: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, _, delim = line.partition("<<")
            body: list[str] = []
            while i < len(lines) and lines[i].rstrip("\r") != delim:
                body.append(lines[i].rstrip("\r"))
                i += 1
            if i >= len(lines):
                return OutputProblem(f"$GITDAG_OUTPUT line {key}<<{delim}: no closing {delim}")
            i += 1
            value = "\n".join(body)
        elif "=" in line:
            key, _, value = line.partition("=")
        else:
            return OutputProblem(f"$GITDAG_OUTPUT: not KEY=VALUE: {line[:60]!r}")
        key = key.strip()
        problem = check_output(key, value)
        if problem is not None:
            return problem
        found[key] = value
    if len(found) > MAX_KEYS:
        return OutputProblem(f"$GITDAG_OUTPUT sets {len(found)} keys, more than {MAX_KEYS}")
    return found


def check_output(key: str, value: str) -> OutputProblem | None:
    """Say why one output cannot be kept (a bad key, an oversized value), or None."""
    if not KEY.match(key):
        return OutputProblem(f"output key {key[:70]!r} is not [A-Za-z_][A-Za-z0-9_]* (<= 64)")
    if len(value.encode()) > MAX_VALUE:
        return OutputProblem(f"output {key} is {len(value.encode())} bytes, over {MAX_VALUE}")
    return None


def lookup(outputs: Mapping[str, Mapping[str, str]]) -> Value:
    """Return a `value(node, key)` over known outputs; what is missing reads as ""."""
    return lambda node, key: outputs.get(node, {}).get(key, "")
