"""What a runner returns (spec §4): the result model, and turning raw text into it.

Pure: text in, a `RunnerResult` or a `ResultProblem` out. Graph-level checks of a proposal (ids
that exist, cycles, scope, the 100-node bound) belong to `gitdag.core.judging`; here only the
shape is judged. Problems are values with a one-line reason naming the field, because a rejected
result is an expected outcome that ends up in a commit message and in the next packet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    model_validator,
)

from gitdag.core.loaders import finite_float
from gitdag.core.model import (
    ErrorKind,
    InputRef,
    Kind,
    NodeId,
    Number,
    Priority,
    RetryPolicy,
    ShortText,
    State,
    Status,
    Text,
)
from gitdag.core.nesting import json_depth, nesting_depth

MAX_RESULT_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
OPEN_TAG = "<result>"
CLOSE_TAG = "</result>"

# dagain's result fields that carry nothing gitdag uses: accepted (any JSON value) and dropped.
IGNORED_RESULT_FIELDS = frozenset(
    {"version", "runId", "nodeId", "role", "filesChanged", "commandsRun", "commits", "confidence"}
)
# dagain's checkpoint extras: `context` is folded into the question, the rest is dropped.
IGNORED_CHECKPOINT_FIELDS = frozenset({"type", "resumeSignal"})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _rename(data: Any, aliases: dict[str, str]) -> Any:
    # An alias and its field given together would be ambiguous: keep both so the model reports
    # the alias as an unknown key instead of silently picking one.
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for alias, name in aliases.items():
        if alias in out and name not in out:
            out[name] = out.pop(alias)
    return out


class ProposedNode(_Strict):
    """A node a runner proposes to add: the fields of `Node` a runner may set.

    `dependsOn` and `type` are accepted as aliases of `deps` and `kind` (dagain's names), and
    `status: open` is accepted and ignored (dagain planners write it; a new node always starts
    open).
    """

    id: NodeId
    title: ShortText
    description: Text = ""
    kind: Kind = Kind.TASK
    deps: tuple[NodeId, ...] = ()
    after: tuple[NodeId, ...] = ()
    parent: NodeId | None = None
    role: ShortText | None = None
    runner: ShortText | None = None
    run: Text | None = None
    worktree: StrictBool = False
    ownership: tuple[ShortText, ...] = ()
    labels: tuple[ShortText, ...] = ()
    acceptance: tuple[Text, ...] = ()
    verify: tuple[Text, ...] = ()
    inputs: tuple[InputRef, ...] = ()
    retry: RetryPolicy | None = None
    priority: Priority = 0
    group: ShortText | None = None
    max_iterations: Annotated[int, Field(strict=True, ge=1, le=10000)] | None = None
    max_duration_s: Annotated[Number, Field(gt=0, le=30 * 86400)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        data = _rename(data, {"dependsOn": "deps", "type": "kind"})
        if isinstance(data, dict) and "status" in data:
            if data["status"] != "open":
                raise ValueError(f"status: a new node starts open, not {data['status']!r}")
            data = {k: v for k, v in data.items() if k != "status"}
        return data

    def to_fields(self) -> dict[str, Any]:
        """Return the fields for `gitdag.core.edits.new_node` (unset optional fields left out)."""
        return self.model_dump(exclude_none=True)


class StatusChange(_Strict):
    """One entry of `next.setStatus`: which node, and the stored status asked for."""

    id: NodeId
    status: Status

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _rename(data, {"nodeId": "id"})


class CheckpointRequest(_Strict):
    """The question a runner asks a human (result status `checkpoint`)."""

    question: Text
    options: tuple[ShortText, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _dagain(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if k not in IGNORED_CHECKPOINT_FIELDS}
        context = data.pop("context", None)
        if isinstance(context, str) and context.strip() and isinstance(data.get("question"), str):
            data["question"] = f"{data['question']}\n\n{context.strip()}"
        return data


class NextProposal(_Strict):
    """Graph changes a runner proposes; the supervisor validates them as a whole."""

    addNodes: tuple[ProposedNode, ...] = ()  # the protocol's names (camelCase)
    setStatus: tuple[StatusChange, ...] = ()


class RunnerResult(_Strict):
    """A well-formed runner result (spec §4). Nothing in it has been applied or judged yet."""

    status: Literal["success", "fail", "checkpoint", "continue", "needs"]
    summary: Text = ""
    outputs: dict[ShortText, Text] = Field(default_factory=dict)
    checkpoint: CheckpointRequest | None = None
    next: NextProposal = NextProposal()
    errors: tuple[Annotated[StrictStr, Field(max_length=65536)], ...] = ()
    # `continue`: what the next iteration starts from. `needs`: nodes to wait for (ids, or new
    # nodes written like `next.addNodes` entries). See docs/runner-protocol.md.
    state: State = Field(default_factory=dict)
    needs: tuple[NodeId | ProposedNode, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in IGNORED_RESULT_FIELDS}
            if data.get("next") is None and "next" in data:
                data.pop("next")  # dagain runners write `"next": null` for "nothing"
        return data

    @model_validator(mode="after")
    def _checkpoint_has_question(self) -> RunnerResult:
        if self.status == "checkpoint" and self.checkpoint is None:
            raise ValueError("checkpoint: required when status is checkpoint")
        if self.status == "needs" and not self.needs:
            raise ValueError("needs: required (at least one node) when status is needs")
        if self.needs and self.status != "needs":
            raise ValueError(f"needs: only with status needs, not {self.status}")
        if self.state and self.status != "continue":
            raise ValueError(f"state: only with status continue, not {self.status}")
        return self


@dataclass(frozen=True)
class ResultProblem:
    """Why a runner's answer cannot be used: `kind` is the node's error kind, `reason` one line."""

    kind: ErrorKind
    reason: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.reason}"


def extract_result(stdout: str) -> str | None:
    """Return the text inside the first `<result>…</result>` of a runner's stdout, or None.

    A Markdown code fence around the JSON (```json … ```) is removed, because agents add one.

    Args:
      stdout: everything the runner printed.
    """
    start = stdout.find(OPEN_TAG)
    if start < 0:
        return None
    end = stdout.find(CLOSE_TAG, start + len(OPEN_TAG))
    if end < 0:
        return None
    return strip_fence(stdout[start + len(OPEN_TAG) : end])


def strip_fence(text: str) -> str:
    """Remove one Markdown code fence around `text`, if there is one."""
    inner = text.strip()
    if inner.startswith("```") and inner.endswith("```") and len(inner) >= 6:
        first_newline = inner.find("\n")
        if first_newline > 0:
            return inner[first_newline + 1 : -3].strip()
    return inner


def parse_result(text: str | bytes) -> RunnerResult | ResultProblem:
    """Parse a runner's result JSON into a `RunnerResult`, or say in one line what is wrong.

    Args:
      text: the content of `$GITDAG_RESULT`, or the inside of the first `<result>` tag.

    Returns:
      The result, or a problem of kind `missing_result` (empty text) or `invalid_result`.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_RESULT_BYTES:
        return _invalid(f"result is {len(raw)} bytes, over 1 MiB")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _invalid(f"result is not UTF-8 text (byte {exc.start})")
    if not decoded.strip():
        return ResultProblem(ErrorKind.MISSING_RESULT, "result is empty")
    if json_depth(decoded, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return _invalid(f"result nesting is deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(
            decoded,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except json.JSONDecodeError as exc:
        return _invalid(f"malformed JSON at line {exc.lineno} col {exc.colno}: {exc.msg}")
    except _DuplicateKey as exc:
        return _invalid(f"malformed JSON: key {exc.args[0]!r} given twice")
    except _BadConstant as exc:
        return _invalid(f"malformed JSON: {exc.args[0]} is not a JSON number")
    except RecursionError:
        return _invalid("malformed JSON: nesting is too deep")
    if not isinstance(data, dict):
        return _invalid(f"result must be a JSON object, not {_json_type(data)}")
    if nesting_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return _invalid(f"result nesting is deeper than {MAX_JSON_DEPTH} levels")
    try:
        return RunnerResult.model_validate(data)
    except ValidationError as exc:
        return _invalid(describe_error(exc))


class _DuplicateKey(ValueError):
    pass


class _BadConstant(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice would let two readers of the same file disagree; refuse it.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _BadConstant(name)


def _finite(text: str) -> float:
    # 1e999 is valid JSON that Python reads as inf: no result field can use that.
    try:
        return finite_float(text)
    except ValueError:
        raise _BadConstant(text[:40]) from None


def _invalid(reason: str) -> ResultProblem:
    return ResultProblem(ErrorKind.INVALID_RESULT, reason)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "model-")):
            continue  # validator frames pydantic puts in the path; not a field the user wrote
        else:
            out += f".{part}" if out else part
    return out


_EXPECTED = {
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
}


def describe_error(exc: ValidationError) -> str:
    """Turn a validation error of a result into one line naming the first bad field."""
    errors = exc.errors()
    first = errors[0]
    loc = _loc(tuple(first["loc"]))
    kind = first["type"]
    given = first.get("input")
    msg = " ".join(str(first["msg"]).split())
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind in ("literal_error", "enum"):
        expected = first.get("ctx", {}).get("expected", "")
        msg = f"unknown value {given!r}" + (f" (expected {expected})" if expected else "")
    elif kind == "value_error":
        # Our own validators phrase the message as "<field>: <reason>"; lift the field out.
        text = msg.removeprefix("Value error, ")
        head, sep, rest = text.partition(": ")
        if sep and " " not in head:
            loc = f"{loc}.{head}" if loc else head
            msg = rest
        else:
            msg = text
    elif kind in _EXPECTED:
        msg = f"expected {_EXPECTED[kind]}, got {_json_type(given)}"
    more = ""
    if len(errors) > 1:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    where = f"field {loc}: " if loc else ""
    return f"{where}{msg}{more}"
