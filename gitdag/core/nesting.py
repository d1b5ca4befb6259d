"""How deeply a text nests, measured before any parser sees it.

ruamel's C loader composes nested nodes by recursion: thirty thousand `[` in a 60 KB file overflow
the C stack and the process dies with SIGSEGV, whatever Python's recursion limit. So every YAML
and JSON text is scanned here first, in one linear, non-recursive pass over its characters, and
refused when it nests deeper than the limit.

The YAML scan is conservative: it may over-count (a legitimate file that nests near the limit can
be refused) but must never under-count. It knows flow collections (`[ {`), quoted scalars (only
where a node can start, so the `'` of `don't` opens nothing), comments, block scalars (`|`, `>`)
and block nesting by indentation, counting two levels for each indentation step (a mapping's value
may be a sequence at the same column) and one more for each compact `- `/`? ` on a line.
The JSON scan is exact: JSON strings and brackets have no ambiguity.
"""

from __future__ import annotations

import re
from typing import Any

# A line (its comment cut off) that ends in a block scalar indicator: `key: |`, `- >-`, `|2`.
_BLOCK_SCALAR = re.compile(r"(?:^|\s)[|>][-+0-9]*\Z")


def json_depth(text: str, limit: int) -> int:
    """Return the bracket depth of JSON `text`, stopping as soon as it passes `limit`.

    Args:
      text: JSON text (need not be valid: the parser judges validity afterwards).
      limit: the deepest nesting allowed; the scan stops at `limit + 1`.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}" and depth:
            depth -= 1
    return deepest


class _Yaml:
    """The state of one YAML scan (a class only to keep each step small)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.flow = 0  # open [ and { outside quotes and comments
        self.quote = ""  # the quote character of an open quoted scalar, or ""
        self.blocks: list[int] = []  # columns of open block collections
        self.scalar_indent = -1  # while >= 0: lines deeper than this belong to a block scalar
        self.plain_indent = -1  # while >= 0: a block plain scalar may continue on deeper lines
        self.deepest = 0

    def depth(self) -> int:
        return 2 * len(self.blocks) + self.flow + 1

    def note(self) -> bool:
        self.deepest = max(self.deepest, self.depth())
        return self.deepest > self.limit

    def line(self, line: str) -> bool:
        """Scan one line; True once the limit is passed."""
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        content = stripped.strip()
        if not self.quote and self.flow == 0:
            if not content or content.startswith("#"):
                return False
            if self.scalar_indent >= 0:
                if indent > self.scalar_indent:
                    return False
                self.scalar_indent = -1
            if self.plain_indent >= 0:
                if indent > self.plain_indent:
                    return False  # a continuation line of a multi-line plain scalar
                self.plain_indent = -1
            while self.blocks and self.blocks[-1] >= indent:
                self.blocks.pop()
            self.blocks.append(indent)
            if self.note():
                return True
        return self.chars(line, indent)

    def chars(self, line: str, indent: int) -> bool:
        block = self.flow == 0 and not self.quote
        node_start = True  # a quoted scalar or collection may start here
        plain = False  # inside a plain scalar (block context) that runs to the end of the line
        i, n = indent if block else 0, len(line)
        end = n
        while i < n:
            char = line[i]
            if self.quote:
                if char == "\\" and self.quote == '"':
                    i += 2
                    continue
                if char == self.quote:
                    if self.quote == "'" and i + 1 < n and line[i + 1] == "'":
                        i += 2
                        continue
                    self.quote = ""
                    node_start = False
                i += 1
                continue
            after_space = i == 0 or line[i - 1] in " \t"
            if char == "#" and after_space:
                end = i
                break  # a comment runs to the end of the line
            if char in " \t":
                i += 1
                continue
            nxt = line[i + 1] if i + 1 < n else " "
            if char in "-?:" and nxt in " \t" and (block or char != "-"):
                if block and char in "-?" and node_start and i > indent:
                    self.blocks.append(i)  # a compact `- - x` or `? - x` nests once more
                    if self.note():
                        return True
                node_start, plain = True, False
                i += 1
                continue
            if char in "!&" and node_start:
                while i < n and line[i] not in " \t,[]{}":
                    i += 1  # a tag or an anchor: the node itself comes after it
                continue
            if char in "'\"" and (node_start or (self.flow and line[i - 1 : i] in ("", ":"))):
                self.quote = char
                i += 1
                continue
            if char in "[{" and (node_start or self.flow):
                self.flow += 1
                if self.note():
                    return True
                node_start, plain = True, False
            elif char in "]}" and self.flow:
                self.flow -= 1
                node_start = False
            elif char == "," and self.flow:
                node_start = True
            else:
                node_start = False
                plain = plain or (self.flow == 0)
            i += 1
        if self.flow == 0 and not self.quote:
            if _BLOCK_SCALAR.search(line[:end].rstrip()):
                self.scalar_indent = indent
            elif plain:
                self.plain_indent = indent
        return False


def yaml_depth(text: str, limit: int) -> int:
    """Return an upper bound of how deeply YAML `text` nests, stopping once past `limit`.

    Args:
      text: YAML text (need not be valid: the parser judges validity afterwards).
      limit: the deepest nesting allowed; the scan stops as soon as the bound passes it.
    """
    scan = _Yaml(limit)
    for line in text.splitlines():
        if scan.line(line.replace("\t", " ")):
            break
    return scan.deepest


def nesting_depth(value: Any, limit: int) -> int:
    """Return how deeply parsed YAML or JSON `value` nests dicts and lists, up to past `limit`.

    Iterative, and stops descending once past `limit`, so a hostile value costs no more than the
    limit allows.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
        else:
            deepest = max(deepest, level)
    return deepest
