"""The one guarded loader per format: every YAML and JSON text gitdag reads comes through here.

Before a C parser sees a text it is bounded: size, UTF-8, no NUL byte, no merge-conflict marker,
and nesting measured by `core.nesting`'s linear scan (ruamel's C composer recurses and a deep text
would kill the process with SIGSEGV). Whatever goes wrong is a `DecodeError` with one line; no
other exception leaves these functions for any input (tests/fuzz checks this). The rules are
written down in docs/input-rules.md.

This module imports no pydantic, so the scripted runner (one process per attempt) can use it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gitdag.core import nesting
from gitdag.core.nesting import nesting_depth

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32


class DecodeError(ValueError):
    """A file that cannot become a record; `str()` is one line naming the field when known."""


_yaml: Any = None


def _ruamel() -> Any:
    # Imported on first use: files gitdag wrote never need it (fastload reads them), and the
    # import is ~15 ms of every command's start-up.
    global _yaml
    if _yaml is None:
        from ruamel.yaml import YAML

        _yaml = YAML(typ="safe", pure=False)
    return _yaml


_CONFLICT = re.compile(r"^(<<<<<<<|>>>>>>>|=======$|\|\|\|\|\|\|\|)", re.MULTILINE)


def load_yaml(text: str | bytes, *, max_bytes: int = MAX_FILE_BYTES, limit: int = MAX_DEPTH) -> Any:
    """Parse any YAML text, refusing hostile or broken input before ruamel's C parser sees it.

    The one YAML entry point of gitdag: node files, graph.yaml, config.yaml, proposals and
    scripted-runner scripts all come through here (docs/input-rules.md).

    Args:
      text: the file's content.
      max_bytes: the size limit; larger input is refused before parsing.
      limit: the deepest nesting of collections allowed.

    Raises:
      DecodeError: one line saying what is wrong.
    """
    return parse_text(read_text(text, max_bytes), limit)


def parse_text(decoded: str, limit: int) -> Any:
    """Parse text that passed `read_text`'s checks: depth first, then ruamel (see `load_yaml`)."""
    if nesting.yaml_depth(decoded, limit) > limit:
        raise DecodeError(f"nesting is deeper than {limit} levels")
    _check_events(decoded, limit)
    from ruamel.yaml.error import YAMLError

    try:
        data = _ruamel().load(decoded)
    except YAMLError as exc:
        raise DecodeError(f"malformed YAML: {one_line(str(exc))}") from None
    except RecursionError:
        raise DecodeError("nesting is too deep") from None
    except (ValueError, OverflowError, TypeError) as exc:
        # ruamel's constructors let some errors out bare: a timestamp like 2020-02-30 or one
        # past year 9999, a huge number in a float's exponent, an unhashable mapping key.
        raise DecodeError(f"malformed YAML: {one_line(str(exc))}") from None
    if nesting_depth(data, limit) > limit:
        raise DecodeError(f"nesting is deeper than {limit} levels")
    return data


def read_text(text: str | bytes, max_bytes: int) -> str:
    """Decode `text`, refusing oversized, non-UTF-8, NUL-bearing or conflict-marked input."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise DecodeError(f"file is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in decoded:
        raise DecodeError("contains a NUL byte")
    marker = _CONFLICT.search(decoded)
    if marker:
        line = decoded.count("\n", 0, marker.start()) + 1
        raise DecodeError(f"contains a merge-conflict marker at line {line}")
    return decoded


def one_line(text: str) -> str:
    """Squeeze a parser's message onto one line, without ruamel's noise."""
    # ruamel names its input `"<unicode string>"`: noise in a message that already names the
    # file. Its duplicate-key error ends with how to switch the check off: no advice for users.
    text = _UNICODE_STRING.sub(" at", text)
    return " ".join(text.split()).split(" To suppress this check")[0]


_UNICODE_STRING = re.compile(r'\s+in "<unicode string>",')


def load_json(text: str | bytes, *, max_bytes: int = MAX_FILE_BYTES, limit: int = MAX_DEPTH) -> Any:
    """Parse JSON text, its nesting bounded before the parser sees it.

    The one JSON entry point for files gitdag reads back (supervisor.json, pid.json, incident
    records, scripted-runner scripts); runner results add their own rules in `core.results`.
    NaN and Infinity are refused: they are not JSON.

    Raises:
      DecodeError: one line saying what is wrong.
    """
    decoded = read_text(text, max_bytes)
    if nesting.json_depth(decoded, limit) > limit:
        raise DecodeError(f"nesting is deeper than {limit} levels")
    try:
        return json.loads(decoded, parse_constant=_no_constant, parse_float=finite_float)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"malformed JSON at line {exc.lineno} col {exc.colno}: {exc.msg}"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise DecodeError(f"malformed JSON: {one_line(str(exc))}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """Read a JSON number as a float, refusing one too large to be finite (`1e999`)."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _check_events(text: str, limit: int) -> None:
    # The parser's events (libyaml's, a loop with its own stacks, not recursion) give the exact
    # depth; the composer that would recurse never runs on a text that fails here. Anchors and
    # aliases are refused here too: a billion-laughs file is small text and a huge value.
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    depth = 0
    try:
        for event in _ruamel().parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > limit:
                    raise DecodeError(f"nesting is deeper than {limit} levels")
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                raise DecodeError("YAML anchors and aliases are not allowed")
    except YAMLError as exc:
        raise DecodeError(f"malformed YAML: {one_line(str(exc))}") from None
