"""A fast reader for exactly the YAML that `codec.dump` writes, and nothing else.

ruamel's safe loader costs about a millisecond per node file even with its C parser (the
constructor and resolver are Python), which makes a cold read of 10k nodes take ten seconds.
Files gitdag wrote itself are canonical, so a line-based reader of that small subset is 10-20x
faster. It is deliberately unforgiving: whatever it does not recognise exactly - a comment, a
flow collection, an anchor, a tab, an unusual scalar, a hand-made indentation - makes it decline
(return None), and the caller then uses ruamel, so hand-edited files are read by a full YAML
parser. For every text it accepts it returns what ruamel returns (the property tests check this).
"""

from __future__ import annotations

import datetime as dt
import re
from json import decoder as _json
from typing import Any

# The subset, mirroring codec's emitter:
#   key: scalar | key: {} | key: [] | key: |[-+] (block) | key:  (nested map or "- " list)
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*(?: [A-Za-z0-9_./@+()-]+)*\Z")
_RESERVED = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"})
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?Z\Z")
# JSON escapes YAML reads the same way; surrogate escapes are excluded (ruamel rejects them).
_BAD_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_UTC = dt.UTC
_scanstring: Any = _json.scanstring  # type: ignore[attr-defined]  # public, untyped


# Each level of nesting indents by two: a text this reader accepts nests at most this deep / 2,
# so its callers need no separate depth check.
MAX_INDENT = 2 * 30
_GOOD_KEYS: set[str] = set()


class _Decline(Exception):
    """The text is outside the canonical subset: let the full parser read it."""


def load(text: str) -> dict[str, Any] | None:
    """Return the mapping a canonical text holds, or None when the text is not canonical.

    Args:
      text: the decoded file content.
    """
    if not text.endswith("\n") or "\t" in text or "\r" in text:
        return None
    lines = text.split("\n")
    lines.pop()
    try:
        pos, value = _map(lines, 0, 0)
    except (_Decline, ValueError, IndexError, KeyError):
        return None
    if pos != len(lines):
        return None
    return value


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _map(lines: list[str], i: int, indent: int) -> tuple[int, dict[str, Any]]:
    if indent > MAX_INDENT:
        raise _Decline  # deep nesting: the full parser and the caller's depth check decide
    out: dict[str, Any] = {}
    n = len(lines)
    while i < n:
        line = lines[i]
        ind = _indent(line)
        if ind < indent and line:
            break
        if ind != indent or not line:
            raise _Decline
        key, rest = _key(line, indent)
        if key in out:
            raise _Decline  # ruamel refuses duplicate keys: let it say so
        i, out[key] = _value(lines, i, indent, rest)
    if not out:
        raise _Decline
    return i, out


def _key(line: str, indent: int) -> tuple[str, str]:
    body = line[indent:]
    if body.startswith('"'):
        key, end = _quoted(body, 0)
        if body[end : end + 1] != ":" or end > 1000:  # YAML caps implicit keys at 1024
            raise _Decline
        return key, body[end + 1 :]
    colon = body.find(":")
    if colon <= 0:
        raise _Decline
    key = body[:colon]
    if key not in _GOOD_KEYS:
        if not _PLAIN.match(key) or key.lower() in _RESERVED or len(key) > 200:
            raise _Decline
        if len(_GOOD_KEYS) < 512:  # field names repeat in every file: check each once
            _GOOD_KEYS.add(key)
    return key, body[colon + 1 :]


def _value(lines: list[str], i: int, indent: int, rest: str) -> tuple[int, Any]:
    """Parse what follows `key:` on line i (rest includes the leading space)."""
    if rest == "":
        return _nested(lines, i + 1, indent + 2)
    if rest[0] != " " or rest[1:2] in (" ", ""):
        raise _Decline
    rest = rest[1:]
    if rest == "{}":
        return i + 1, {}
    if rest == "[]":
        return i + 1, []
    if rest[0] == "|":
        return _block(lines, i, indent + 2, rest)
    return i + 1, _scalar(rest)


def _nested(lines: list[str], i: int, indent: int) -> tuple[int, Any]:
    if i >= len(lines):
        raise _Decline
    line = lines[i]
    if _indent(line) != indent:
        raise _Decline  # `key:` with nothing nested is null in YAML; the emitter never writes it
    if line.startswith("- ", indent):
        return _seq(lines, i, indent)
    return _map(lines, i, indent)


def _seq(lines: list[str], i: int, indent: int) -> tuple[int, list[Any]]:
    if indent > MAX_INDENT:
        raise _Decline
    out: list[Any] = []
    n = len(lines)
    dash = " " * indent + "- "
    while i < n:
        line = lines[i]
        ind = _indent(line)
        if ind < indent and line:
            break
        if not line.startswith(dash):
            raise _Decline
        rest = line[indent + 2 :]
        if not rest or rest[0] == " ":
            raise _Decline
        if rest == "{}":
            out.append({})
            i += 1
        elif rest[0] == "|":
            i, text = _block(lines, i, indent + 2, rest)
            out.append(text)
        elif _is_map_item(rest):
            # `- key: value` opens a mapping whose keys sit two columns right of the dash.
            lines[i] = " " * (indent + 2) + rest
            i, mapping = _map(lines, i, indent + 2)
            out.append(mapping)
        else:
            out.append(_scalar(rest))
            i += 1
    return i, out


def _is_map_item(rest: str) -> bool:
    if rest.startswith('"'):
        _, end = _quoted(rest, 0)
        return rest[end : end + 1] == ":"
    return ":" in rest


def _block(lines: list[str], i: int, indent: int, header: str) -> tuple[int, str]:
    if header not in ("|", "|-", "|+"):
        raise _Decline
    prefix = " " * indent
    body: list[str] = []
    j = i + 1
    n = len(lines)
    while j < n:
        line = lines[j]
        if line == "":
            body.append("")
        elif line.startswith(prefix):
            body.append(line[indent:])
        elif line.strip() == "":
            raise _Decline  # a whitespace-only line shorter than the indentation
        else:
            break
        j += 1
    trailing = 0
    while body and body[-1] == "":
        body.pop()
        trailing += 1
    if not body or next(x for x in body if x).startswith(" "):
        # YAML takes the indentation from the first content line, which would not be ours.
        raise _Decline
    text = "\n".join(body)
    if header == "|":
        return j, text + "\n"
    if header == "|-":
        return j, text
    return j, text + "\n" * (1 + trailing)


def _quoted(text: str, start: int) -> tuple[str, int]:
    value, end = _scanstring(text, start + 1)  # strict: raw control characters are refused
    raw = text[start:end]
    if _BAD_ESCAPE.search(raw) or not raw.isprintable():
        raise _Decline  # non-printable raw characters: YAML's reader treats some as breaks
    return value, end


def _scalar(text: str) -> Any:
    first = text[0]
    if first == '"':
        value, end = _quoted(text, 0)
        if end != len(text):
            raise _Decline
        return value
    if text == "null":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    if first == "-" or first.isdigit():
        if _INT.match(text):
            return int(text)
        stamp = _STAMP.match(text)
        if stamp:
            y, mo, d, h, mi, s, frac = stamp.groups()
            return dt.datetime(
                int(y), int(mo), int(d), int(h), int(mi), int(s), int(frac or 0), tzinfo=_UTC
            )
        if _FLOAT.match(text) and ("." in text or "e" in text or "E" in text):
            return float(text)
        raise _Decline
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    raise _Decline
