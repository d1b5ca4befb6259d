"""Dagu DAG files to gitdag workflow files (`gitdag apply --from dagu`), with what did not map.

Pure: a parsed Dagu mapping in, a flow-file mapping (core/flowfile.py) and one line per unmapped
feature out. Mapped (docs/workflows.md has the table):

- `steps` (a list, or the older mapping of name -> step), `name`/`id`, `description`, `depends`
  (string or list), `command` (string or list; the older spelling) / `run` (the newer one),
  `script`, `output` (the step's stdout becomes the output `VAR`; `${VAR}` in later commands
  becomes `${step.outputs.VAR}`), `preconditions`/`precondition` over an output
  (`condition: "${VAR}"`, `expected: value`), `retryPolicy` (`limit`, `intervalSec`),
  `timeoutSec`, `continueOn` (`failure`, `skipped`), `type: chain` (each step depends on the one
  before), `schedule`, and `handlerOn` (`success`, `failure`, `exit`).
- Dagu's run semantics: a step whose dependency failed or was skipped is skipped (unless
  `continueOn` says otherwise), so every step ends and the DAG's handlers can run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_STEP_ID = re.compile(r"[^a-z0-9_-]+")
_KNOWN_STEP = {
    "name", "id", "description", "depends", "command", "run", "script", "output",
    "preconditions", "precondition", "retryPolicy", "timeoutSec", "continueOn", "shell",
}  # fmt: skip
_KNOWN_DAG = {"name", "description", "steps", "schedule", "handlerOn", "type", "tags"}
_HANDLERS = {"success": "on_success", "failure": "on_failure", "exit": None}


class DaguError(ValueError):
    """A Dagu file gitdag cannot read at all (not a DAG: no steps, a step that is not a map)."""


def _step_id(raw: str, seen: set[str]) -> str:
    base = _STEP_ID.sub("-", raw.lower()).strip("-_")[:60] or "step"
    nid, n = base, 2
    while nid in seen:
        nid, n = f"{base}-{n}", n + 1
    seen.add(nid)
    return nid


def _command(step: Mapping[str, Any], where: str, unmapped: list[str]) -> str | None:
    parts = []
    for key in ("command", "run"):
        value = step.get(key)
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        if value is not None:
            parts.append(str(value))
    if step.get("script") is not None:
        shell = str(step.get("shell") or "sh")
        parts.append(f"{shell} <<'__GITDAG_SCRIPT__'\n{step['script']}\n__GITDAG_SCRIPT__")
    if len(parts) > 1 and step.get("script") is None:
        unmapped.append(f"{where}: both command and run given; using command")
        parts = parts[:1]
    return "\n".join(parts) if parts else None


def convert(data: Any, default_name: str) -> tuple[dict[str, Any], list[str]]:
    """Return the flow-file mapping of a Dagu DAG and one line per feature not mapped."""
    if not isinstance(data, Mapping):
        raise DaguError("a Dagu DAG is a mapping with `steps:`")
    unmapped = [f"{key}: not supported by gitdag" for key in data if key not in _KNOWN_DAG]
    raw_steps = data.get("steps")
    if isinstance(raw_steps, Mapping):  # the older spelling: name -> step
        raw_steps = [{"name": k, **(v or {})} for k, v in raw_steps.items()]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise DaguError("steps: a Dagu DAG needs a non-empty list of steps")
    seen: set[str] = set()
    names: dict[str, str] = {}
    steps: list[dict[str, Any]] = []
    chain = data.get("type") == "chain"
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, str):
            raw = {"command": raw}
        if not isinstance(raw, Mapping):
            raise DaguError(f"steps[{i}]: a step is a mapping")
        label = str(raw.get("id") or raw.get("name") or f"step{i + 1}")
        nid = _step_id(label, seen)
        names[label] = nid
        steps.append({"_raw": raw, "id": nid, "title": str(raw.get("name") or label)})
    producers: dict[str, str] = {}
    for step in steps:
        output = step["_raw"].get("output")
        if isinstance(output, Mapping):
            output = output.get("name")
        if isinstance(output, str):
            producers[output.lstrip("$")] = step["id"]
    out_steps = [_step(step, i, steps, names, producers, chain, unmapped)
                 for i, step in enumerate(steps)]  # fmt: skip
    _dagu_semantics(out_steps, steps)
    flow: dict[str, Any] = {"name": _step_id(str(data.get("name") or default_name), set()),
                            "steps": out_steps}  # fmt: skip
    if data.get("description"):
        flow["description"] = str(data["description"])
    schedule = data.get("schedule")
    if isinstance(schedule, str | list):
        flow["schedule"] = schedule
    elif schedule is not None:
        unmapped.append("schedule: only a cron string or a list of them (start/stop/restart)")
    _handlers(data.get("handlerOn"), flow, out_steps, unmapped)
    return flow, unmapped


def _step(
    step: dict[str, Any],
    i: int,
    steps: list[dict[str, Any]],
    names: dict[str, str],
    producers: dict[str, str],
    chain: bool,
    unmapped: list[str],
) -> dict[str, Any]:
    raw: Mapping[str, Any] = step["_raw"]
    where = f"steps[{i}] ({step['id']})"
    unmapped += [f"{where}.{key}: not supported by gitdag" for key in raw
                 if key not in _KNOWN_STEP]  # fmt: skip
    depends = raw.get("depends")
    depends = [depends] if isinstance(depends, str) else list(depends or [])
    deps = []
    for ref in depends:
        if str(ref) in names:
            deps.append(names[str(ref)])
        else:
            unmapped.append(f"{where}.depends: unknown step {ref!r} (dropped)")
    if chain and i > 0 and not depends:
        deps.append(steps[i - 1]["id"])
    out: dict[str, Any] = {"id": step["id"], "title": step["title"]}
    if raw.get("description"):
        out["description"] = str(raw["description"])
    command = _command(raw, where, unmapped)
    if command is None:
        unmapped.append(f"{where}: no command, run or script (an executor step?); runs `true`")
        command = "true"

    def swap(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        producer = producers.get(var)
        if producer is None or producer == step["id"]:
            return match.group(0)  # an environment variable: the shell expands it
        if producer not in deps:
            deps.append(producer)  # it reads the value, so it waits for it
        return "${" + f"{producer}.outputs.{var}" + "}"

    command = _VAR.sub(swap, command)
    output = raw.get("output")
    if isinstance(output, Mapping):
        output = output.get("name")
    if isinstance(output, str):
        var = output.lstrip("$")
        out["outputs"] = [var]
        command = (
            f"__gitdag_out=$(\n{command}\n)\n__gitdag_rc=$?\nprintf '%s\\n' \"$__gitdag_out\"\n"
            f"{{ echo '{var}<<__GITDAG_EOF__'; printf '%s\\n' \"$__gitdag_out\"; "
            "echo '__GITDAG_EOF__'; } >> \"$GITDAG_OUTPUT\"\nexit $__gitdag_rc"
        )
    out["run"] = command
    out["depends"] = list(dict.fromkeys(deps))
    conditions = _preconditions(raw, where, producers, out["depends"], unmapped)
    if conditions:
        out["when"] = " and ".join(conditions)
    retry = raw.get("retryPolicy")
    out["retry"] = {"max_attempts": 1}  # Dagu does not retry a step without a retryPolicy
    if isinstance(retry, Mapping):
        policy: dict[str, Any] = {"max_attempts": 1}
        if isinstance(retry.get("limit"), int):
            policy["max_attempts"] = min(100, retry["limit"] + 1)
        if isinstance(retry.get("intervalSec"), int | float):
            policy["backoff_s"] = retry["intervalSec"]
            policy["backoff_max_s"] = retry["intervalSec"]  # Dagu waits the same each time
        if policy:
            out["retry"] = policy
        unmapped += [f"{where}.retryPolicy.{k}: not supported by gitdag" for k in retry
                     if k not in ("limit", "intervalSec")]  # fmt: skip
    if isinstance(raw.get("timeoutSec"), int | float) and raw["timeoutSec"] > 0:
        out["timeout_s"] = raw["timeoutSec"]
    step["_continue"] = _continue_on(raw.get("continueOn"), where, out, unmapped)
    return out


def _preconditions(raw: Mapping[str, Any], where: str, producers: dict[str, str],
                   deps: list[str], unmapped: list[str]) -> list[str]:  # fmt: skip
    items = raw.get("preconditions", raw.get("precondition"))
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    found = []
    for j, item in enumerate(items):
        here = f"{where}.preconditions[{j}]"
        if isinstance(item, str):
            unmapped.append(f"{here}: a shell command as condition is not supported")
            continue
        if not isinstance(item, Mapping):
            unmapped.append(f"{here}: not a condition")
            continue
        condition = str(item.get("condition", "")).strip()
        expected = str(item.get("expected", ""))
        match = _VAR.fullmatch(condition)
        var = (match.group(1) or match.group(2)) if match else None
        producer = producers.get(var) if var else None
        if producer is None:
            unmapped.append(f"{here}: condition {condition!r} is not an output of a step "
                            "(commands and environment variables are not evaluated)")  # fmt: skip
            continue
        if expected.startswith("re:"):
            unmapped.append(f"{here}: regular expressions (re:) are not supported")
            continue
        if producer not in deps:
            deps.append(producer)
        literal = expected.replace("\\", "\\\\").replace("'", "\\'")
        found.append(f"{producer}.outputs.{var} == '{literal}'")
    return found


def _continue_on(value: Any, where: str, out: dict[str, Any], unmapped: list[str]) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        value = {value: True}
    if not isinstance(value, Mapping):
        unmapped.append(f"{where}.continueOn: not a mapping")
        return set()
    kept = set()
    for key, flag in value.items():
        if key in ("failure", "skipped") and flag is True:
            kept.add(key)
        elif flag not in (False, None, []):
            unmapped.append(f"{where}.continueOn.{key}: not supported by gitdag")
    if "failure" in kept:
        out["continue_on"] = "failure"
    return kept


def _dagu_semantics(out_steps: list[dict[str, Any]], steps: list[dict[str, Any]]) -> None:
    """Give each step Dagu's rule: it runs only when each dependency succeeded, else it is skipped.

    A dependency that says `continueOn: failure` (or `skipped`) also lets it run after that.
    """
    keeps = {s["id"]: s.get("_continue", set()) for s in steps}
    for out in out_steps:
        clauses = []
        for dep in out["depends"]:
            ok = ["done"] + (["failed"] if "failure" in keeps[dep] else [])
            ok += ["skipped"] if "skipped" in keeps[dep] else []
            clauses.append("(" + " or ".join(f"{dep}.status == '{s}'" for s in ok) + ")")
        if clauses:
            out["after"] = out.pop("depends")
            own = out.get("when")
            out["when"] = " and ".join(clauses + ([f"({own})"] if own else []))
        else:
            out.pop("depends")


def _handlers(value: Any, flow: dict[str, Any], out_steps: list[dict[str, Any]],
              unmapped: list[str]) -> None:  # fmt: skip
    if value is None:
        return
    if not isinstance(value, Mapping):
        unmapped.append("handlerOn: not a mapping")
        return
    ids = [s["id"] for s in out_steps]
    for event, handler in value.items():
        if event not in _HANDLERS:
            unmapped.append(f"handlerOn.{event}: not supported by gitdag")
            continue
        if not isinstance(handler, Mapping):
            unmapped.append(f"handlerOn.{event}: not a step")
            continue
        command = _command(handler, f"handlerOn.{event}", unmapped) or "true"
        nid = f"on-{event}"
        step: dict[str, Any] = {"id": nid, "title": f"handlerOn {event}", "run": command,
                                "after": list(ids)}  # fmt: skip
        if event == "failure":
            step["when"] = " or ".join(f"{s}.status == 'failed'" for s in ids)
        elif event == "success":
            step["when"] = " and ".join(f"{s}.status != 'failed'" for s in ids)
        flow["steps"].append(step)
