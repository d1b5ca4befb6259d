"""The workflow file (`gitdag apply FLOW.yaml`): its model, and the nodes it describes.

Pure: a parsed mapping in, node fields out (docs/workflows.md has the format; the JSON Schema
shipped as `gitdag/schemas/flow.schema.json` is generated from `FlowFile`). A step with `steps:`
is a sub-flow: its steps' ids are namespaced `group.step`, names resolve to the nearest enclosing
scope, the group's `depends` apply to each of its steps, and depending on a group means depending
on every step in it. Handlers (`on_failure`, `on_success`) become `after` + a `when:` trigger on
the handler; a dep on a `continue_on: failure` step becomes an `after`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError
from pydantic import field_validator as _field_validator

from gitdag.core import flow
from gitdag.core.codec import validation_message
from gitdag.core.model import Kind, Number, OutputKey, Priority, RetryPolicy

StepName = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Name = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
# Five cron fields (minute hour day month weekday), as GitHub Actions and GitLab read them.
Cron = Annotated[StrictStr, Field(pattern=r"^\s*[0-9*/,LW#?-]+(\s+[0-9A-Za-z*/,LW#?-]+){4}\s*$")]
MAX_STEPS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Step(_Strict):
    """One step: a node (`run` for a command, else an agent's kind/role), or a sub-flow."""

    id: StepName
    title: StrictStr | None = None
    description: StrictStr = ""
    kind: Kind | None = None
    role: StrictStr | None = None
    runner: StrictStr | None = None
    run: StrictStr | None = None
    depends: tuple[Name, ...] = ()
    after: tuple[Name, ...] = ()
    outputs: tuple[OutputKey, ...] = ()
    when: StrictStr | None = None
    on_failure: tuple[Name, ...] = ()
    on_success: tuple[Name, ...] = ()
    timeout_s: Annotated[Number, Field(gt=0, le=604800)] | None = None
    retry: RetryPolicy | None = None
    continue_on: Literal["failure"] | None = None
    skipped_deps: Literal["satisfy", "skip"] | None = None
    worktree: StrictBool = False
    ownership: tuple[StrictStr, ...] = ()
    labels: tuple[StrictStr, ...] = ()
    acceptance: tuple[StrictStr, ...] = ()
    verify: tuple[StrictStr, ...] = ()
    priority: Priority = 0
    steps: tuple[Step, ...] | None = None

    _lists = _field_validator(
        "depends", "after", "outputs", "on_failure", "on_success", "ownership", "labels",
        "acceptance", "verify", mode="before",
    )(_listify)  # fmt: skip


class FlowFile(_Strict):
    """A workflow file: named steps, optionally scheduled (cron, run through CI)."""

    schema_version: Literal[1] = 1
    name: StepName | None = None
    description: StrictStr = ""
    schedule: tuple[Cron, ...] = ()
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]

    _lists = _field_validator("schedule", mode="before")(_listify)


@dataclass
class Compiled:
    """What a flow file describes: node fields by id (in file order), and its schedules."""

    name: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedule: tuple[str, ...] = ()


class FlowError(ValueError):
    """A flow file that cannot be applied; the message names the step and field."""


def load(data: Any, default_name: str) -> FlowFile:
    """Validate a parsed flow file, or raise FlowError naming the first bad field."""
    if not isinstance(data, Mapping):
        raise FlowError("a flow file is a mapping with `steps:`")
    try:
        return FlowFile.model_validate(data)
    except ValidationError as exc:
        raise FlowError(validation_message(exc)) from None


_REF = re.compile(
    r"(?<![A-Za-z0-9_.-])([a-z0-9][a-z0-9_.-]*?)\.(status\b|outputs\.[A-Za-z_][A-Za-z0-9_]*)"
)


class _Scope:
    def __init__(self, prefix: str, names: dict[str, str], outer: _Scope | None) -> None:
        self.prefix, self.names, self.outer = prefix, names, outer

    def resolve(self, name: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.outer
        return None


def compile_flow(doc: FlowFile, default_name: str) -> Compiled:
    """Turn a flow file into node fields (id -> fields), or raise FlowError."""
    out = Compiled(name=doc.name or default_name, schedule=doc.schedule)
    members: dict[str, list[str]] = {}  # group id -> every node id inside it
    owners: dict[str, str] = {}

    def declare(steps: tuple[Step, ...], prefix: str, outer: _Scope | None, where: str) -> _Scope:
        names: dict[str, str] = {}
        for i, step in enumerate(steps):
            if step.id in names:
                raise FlowError(f"{where}[{i}].id: step {step.id!r} is given twice")
            names[step.id] = prefix + step.id
        return _Scope(prefix, names, outer)

    def full_ids(ref: str, scope: _Scope, where: str) -> list[str]:
        target = scope.resolve(ref) or (ref if ref in owners or ref in members else None)
        if target is None:
            raise FlowError(f"{where}: unknown step {ref!r}")
        return members.get(target, [target])

    def collect(steps: tuple[Step, ...], scope: _Scope, where: str) -> None:
        for i, step in enumerate(steps):
            nid = scope.names[step.id]
            if step.steps is not None:
                inner = declare(step.steps, nid + ".", scope, f"{where}[{i}].steps")
                collect(step.steps, inner, f"{where}[{i}].steps")
                members[nid] = [m for s in step.steps for m in members.get(
                    inner.names[s.id], [inner.names[s.id]])]  # fmt: skip
            else:
                owners[nid] = where
            if len(owners) > MAX_STEPS:
                raise FlowError(f"more than {MAX_STEPS} steps")

    def build(steps: tuple[Step, ...], scope: _Scope, where: str, inherited: list[str]) -> None:
        for i, step in enumerate(steps):
            here = f"{where}[{i}]"
            nid = scope.names[step.id]
            own = [d for ref in step.depends for d in full_ids(ref, scope, f"{here}.depends")]
            deps = inherited + own
            after = [a for ref in step.after for a in full_ids(ref, scope, f"{here}.after")]
            if step.steps is not None:
                if step.run is not None or step.kind is not None or step.outputs:
                    raise FlowError(f"{here}: a sub-flow (steps:) has no run, kind or outputs")
                inner = _Scope(nid + ".", {s.id: nid + "." + s.id for s in step.steps}, scope)
                build(step.steps, inner, f"{here}.steps", deps + after)
                continue
            out.nodes[nid] = _fields(step, nid, scope, deps, after, here, full_ids)

    top = declare(doc.steps, "", None, "steps")
    collect(doc.steps, top, "steps")
    build(doc.steps, top, "steps", [])
    _desugar(out.nodes)
    for fields in out.nodes.values():
        fields["flow"] = out.name
    return out


def _fields(step: Step, nid: str, scope: _Scope, deps: list[str], after: list[str], here: str,
            full_ids: Any) -> dict[str, Any]:  # fmt: skip
    def rewrite(text: str) -> str:
        def swap(m: re.Match[str]) -> str:
            target = scope.resolve(m.group(1))
            return f"{target or m.group(1)}.{m.group(2)}"

        return _REF.sub(swap, text)

    kind = step.kind or (Kind.COMMAND if step.run is not None else Kind.TASK)
    handlers = {
        name: [h for ref in getattr(step, name) for h in full_ids(ref, scope, f"{here}.{name}")]
        for name in ("on_failure", "on_success")
    }
    fields: dict[str, Any] = {
        "id": nid, "title": step.title or nid, "description": rewrite(step.description),
        "kind": kind.value, "role": step.role, "runner": step.runner,
        "run": rewrite(step.run) if step.run is not None else None,
        "deps": list(dict.fromkeys(deps)), "after": list(dict.fromkeys(after)),
        "exports": list(step.outputs) or None, "when": rewrite(step.when) if step.when else None,
        "on_failure": handlers["on_failure"] or None, "on_success": handlers["on_success"] or None,
        "timeout_s": step.timeout_s, "retry": step.retry.model_dump(exclude_none=True)
        if step.retry else None, "continue_on": [step.continue_on] if step.continue_on else None,
        "skipped_deps": step.skipped_deps, "worktree": step.worktree,
        "ownership": list(step.ownership), "labels": list(step.labels),
        "acceptance": [rewrite(t) for t in step.acceptance], "verify": list(step.verify),
        "priority": step.priority,
    }  # fmt: skip
    return fields


def _desugar(nodes: dict[str, dict[str, Any]]) -> None:
    """Handlers wait for what they handle and run on its trigger; continue_on deps are afters."""
    triggers: dict[str, list[str]] = {}
    for nid, fields in nodes.items():
        for which in ("on_failure", "on_success"):
            for handler in fields.get(which) or ():
                if handler not in nodes:
                    raise FlowError(f"{nid}.{which}: {handler!r} is a sub-flow, not a step")
                triggers.setdefault(handler, []).append(flow.trigger(nid, which))
                after = nodes[handler]["after"]
                if nid not in after:
                    after.append(nid)
    for handler, conditions in triggers.items():
        nodes[handler]["when"] = flow.handler_when(nodes[handler]["when"], conditions)
    continuing = {nid for nid, f in nodes.items() if f.get("continue_on")}
    for fields in nodes.values():
        moved = [d for d in fields["deps"] if d in continuing]
        if moved:
            fields["deps"] = [d for d in fields["deps"] if d not in moved]
            fields["after"] = list(dict.fromkeys([*fields["after"], *moved]))


def schema() -> dict[str, Any]:
    """Return the JSON Schema of a flow file (the one shipped in the package)."""
    data = FlowFile.model_json_schema()
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "gitdag workflow file"
    return data
