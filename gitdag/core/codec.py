"""The canonical YAML codec: text in, text out, never a file.

Canonical means a diff shows only real changes: a fixed key order (the model's field order), LF,
block scalars for multi-line text, UTC ISO-8601 timestamps, explicit `null` and `[]`/`{}`, and
`schema_version: 1` first. The emitter is hand-written because it is both faster and more
predictable than a general dumper; the reader is ruamel's C safe loader, guarded against the
inputs that can hurt it (aliases, deep nesting, oversized text, conflict markers).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gitdag.core import fastload
from gitdag.core.loaders import MAX_DEPTH as MAX_DEPTH
from gitdag.core.loaders import MAX_FILE_BYTES as MAX_FILE_BYTES
from gitdag.core.loaders import DecodeError as DecodeError
from gitdag.core.loaders import load_json as load_json
from gitdag.core.loaders import load_yaml as load_yaml
from gitdag.core.loaders import one_line, parse_text, read_text
from gitdag.core.model import GraphFile, Node

M = TypeVar("M", bound=BaseModel)


# --- emitting -----------------------------------------------------------------------------------

# \Z, not $: "$" also matches before a final newline, which would let "a\n" go out plain.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*(?: [A-Za-z0-9_./@+()-]+)*\Z")
_RESERVED = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"})


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return _timestamp(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and len(text) <= 200:
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    if not quoted.isprintable():
        # JSON leaves C1 controls, DEL, U+2028/9 and format characters raw, but YAML's reader
        # refuses some and reads others as line breaks: escape every non-printable character.
        quoted = _NONPRINTABLE.sub(_escape, quoted)
    return quoted


_NONPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable():
        return char
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate (records built without validation, e.g. model_copy) has no YAML or
        # UTF-8 spelling: refuse rather than write a file no reader accepts.
        raise ValueError(f"lone surrogate U+{code:04X} in {match.string[:40]!r}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _timestamp(value: dt.datetime) -> str:
    # By hand: strftime's %Y does not pad years below 1000, and YAML needs four digits.
    v = value.astimezone(dt.UTC)
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    return f"{text}.{v.microsecond:06d}Z" if v.microsecond else f"{text}Z"


def _block_ok(text: str) -> bool:
    # A literal block keeps text byte-for-byte only for printable lines without trailing blanks
    # or carriage returns; anything else is written as a double-quoted JSON-style string.
    if "\n" not in text or "\r" in text or text.strip() == "":
        return False
    if text.lstrip("\n").startswith((" ", "\t")):
        return False  # YAML would take the block's indentation from the first non-empty line
    for line in text.split("\n"):
        if line != line.rstrip(" \t") or (line and not line.isprintable()):
            return False
    return True


def _block(text: str, indent: str) -> str:
    if text.endswith("\n\n") or not text.endswith("\n"):
        chomp = "+" if text.endswith("\n") else "-"
    else:
        chomp = ""
    body = text[:-1] if text.endswith("\n") else text
    if chomp == "+":
        body = text[:-1]
    lines = [indent + line if line else "" for line in body.split("\n")]
    return "|" + chomp + "\n" + "\n".join(lines)


def _emit(value: Any, indent: str, out: list[str], key: str) -> None:
    prefix = f"{indent}{key}:"
    if len(key) > 1000:
        # YAML caps implicit keys at 1024 characters; a longer one needs the explicit form.
        out.append(f"{indent}? {key}")
        prefix = f"{indent}:"
    if isinstance(value, BaseModel):
        value = _fields(value)
    if isinstance(value, Mapping):
        if not value:
            out.append(f"{prefix} {{}}")
            return
        out.append(prefix)
        for k, v in value.items():
            _emit(v, indent + "  ", out, _scalar(k))
        return
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            out.append(f"{prefix} []")
            return
        out.append(prefix)
        for item in value:
            _emit_item(item, indent + "  ", out)
        return
    if isinstance(value, str) and _block_ok(value):
        out.append(f"{prefix} {_block(value, indent + '  ')}")
        return
    out.append(f"{prefix} {_scalar(value)}")


def _emit_item(item: Any, indent: str, out: list[str]) -> None:
    if isinstance(item, BaseModel):
        item = _fields(item)
    if isinstance(item, Mapping) and item:
        first = True
        for k, v in item.items():
            sub: list[str] = []
            _emit(v, indent + "  ", sub, _scalar(k))
            head = sub[0][len(indent) + 2 :]
            out.append(f"{indent}{'- ' if first else '  '}{head}")
            out.extend(sub[1:])
            first = False
        return
    if isinstance(item, str) and _block_ok(item):
        out.append(f"{indent}- {_block(item, indent + '  ')}")
        return
    if isinstance(item, Mapping):
        out.append(f"{indent}- {{}}")
        return
    out.append(f"{indent}- {_scalar(item)}")


# Fields added after files were first written: left out while empty, so the files of graphs that
# never use them keep their bytes (and their object ids) across versions.
_OMITTED_WHEN_NONE = frozenset(
    {"hold", "kinds", "when", "exports", "on_failure", "on_success", "timeout_s", "continue_on",
     "skipped_deps", "flow", "schedules"}
)  # fmt: skip


def _fields(model: BaseModel) -> dict[str, Any]:
    return {
        name: value
        for name in type(model).model_fields
        if (value := getattr(model, name)) is not None or name not in _OMITTED_WHEN_NONE
    }


def dump(model: BaseModel) -> str:
    """Return the canonical YAML text of a record (every field, in declaration order).

    Args:
      model: a Node, a GraphFile, or any other record of `gitdag.core.model`.
    """
    out: list[str] = []
    for name, value in _fields(model).items():
        _emit(value, "", out, name)
    return "\n".join(out) + "\n"


# --- reading ------------------------------------------------------------------------------------


def load_mapping(text: str | bytes, *, max_bytes: int = MAX_FILE_BYTES) -> dict[str, Any]:
    """Parse YAML text that must hold one mapping, refusing hostile or broken input.

    Args:
      text: the file's content.
      max_bytes: the size limit; larger input is refused before parsing.

    Raises:
      DecodeError: one line saying what is wrong.
    """
    decoded = read_text(text, max_bytes)
    data = fastload.load(decoded)  # canonical text (what gitdag writes) is read 10x faster
    if data is not None:
        return data  # nests at most fastload.MAX_INDENT / 2 + 1 < MAX_DEPTH levels
    data = parse_text(decoded, MAX_DEPTH)
    if not isinstance(data, dict):
        raise DecodeError(f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def validation_message(exc: ValidationError) -> str:
    """Turn a pydantic error into one line naming the first bad field (and how many more)."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required field is missing"
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    return f"field {loc}: {one_line(msg)}{more}"


def load_model(model: type[M], text: str | bytes) -> M:
    """Parse and validate one record of type `model`.

    Raises:
      DecodeError: one line naming the field when the text is not a valid record.
    """
    data = load_mapping(text)
    version = data.get("schema_version")
    if version != 1:
        raise DecodeError(f"field schema_version: unsupported value {version!r} (expected 1)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(validation_message(exc)) from None


def load_node(text: str | bytes) -> Node:
    """Parse a node file."""
    return load_model(Node, text)


def load_graph(text: str | bytes) -> GraphFile:
    """Parse `graph.yaml`."""
    return load_model(GraphFile, text)
