"""The `.dagain/config.yaml` that `gitdag init` writes: roles that fit the machine it runs on.

The template's config lists a preset for each agent CLI gitdag knows (claude, codex, gemini,
aider) and the built-in scripted runner. `init` keeps all of them and chooses the roles:

- `--runner NAME`: every role uses NAME;
- a dagain `.dagain/config.json`: its runners are added and its roles kept (see dagain_config);
- otherwise the agent CLIs found on PATH: the planner and verifier use the first found of
  claude, codex, gemini, aider; the executor pool is every one found, codex first;
- none found: every role uses the scripted runner, and init says how to switch.

The text is edited with ruamel.yaml's round trip, so the template's comments survive, and the
result is validated with the same parser `gitdag run` uses before anything is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gitdag.config import ROLES, parse_settings
from gitdag.dagain_config import DagainMapping
from gitdag.errors import ConfigError, InputError

AGENT_CLIS = ("claude", "codex", "gemini", "aider")
_LEAD_ORDER = ("claude", "codex", "gemini", "aider")  # planner and verifier
_EXECUTOR_ORDER = ("codex", "claude", "gemini", "aider")
SCRIPTED = "scripted"
SCRIPT_FILE = "script.yaml"
STARTER_SCRIPT = """\
# The scripted runner's answers, by node id or pattern (docs/runner-protocol.md, "The scripted
# runner"). A node with no entry succeeds with a summary saying so, and changes nothing.
# Example:
#   plan-000:
#     summary: planned the work
#     addNodes:
#       - {id: task-a, title: Write a.txt}
#   task-a:
#     write: {a.txt: "hello\\n"}
"""


@dataclass
class ConfigChoice:
    """The config text to write, the roles chosen, and the lines init prints about them."""

    text: str
    roles: dict[str, list[str]]
    found: list[str]
    source: str  # "option", "dagain", "path" or "none"
    lines: list[str] = field(default_factory=list)
    needs_script: bool = False


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments and key order survive
    yaml.width = 4096  # a runner command stays on one line
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _pool_value(pool: list[str]) -> str | CommentedSeq:
    if len(pool) == 1:
        return pool[0]
    seq = CommentedSeq(pool)
    seq.fa.set_flow_style()
    return seq


def detected_roles(found: list[str]) -> dict[str, list[str]]:
    """Return the roles for the agent CLIs found on PATH (scripted everywhere when none)."""
    if not found:
        return {role: [SCRIPTED] for role in ROLES}
    lead = next(name for name in _LEAD_ORDER if name in found)
    executors = [name for name in _EXECUTOR_ORDER if name in found]
    return {"planner": [lead], "executor": executors, "verifier": [lead]}


def choose_config(
    template_text: str,
    *,
    runner: str | None,
    which: Callable[[str], str | None],
    dagain: DagainMapping | None = None,
) -> ConfigChoice:
    """Return the config to write for this machine (see the module doc).

    Raises:
      InputError: `runner` names no runner of the config.
      ConfigError: the template's config.yaml does not parse or the result fails validation.
    """
    yaml = _yaml()
    try:
        data: Any = yaml.load(template_text)
    except Exception as exc:  # ruamel raises many types; all mean a broken template
        raise ConfigError(f"template config.yaml: {' '.join(str(exc).split())}") from None
    if not isinstance(data, CommentedMap) or not isinstance(data.get("runners"), dict):
        raise ConfigError("template config.yaml: expected a mapping with runners:")
    runners: CommentedMap = data["runners"]
    if dagain is not None:
        for name, spec in dagain.runners.items():
            runners[name] = CommentedMap(spec)
        for section, values in (("pool", dagain.pool), ("defaults", dagain.defaults)):
            if values:
                target = data.setdefault(section, CommentedMap())
                for key, value in values.items():
                    target[key] = _pool_value(value) if isinstance(value, list) else value
    found = [name for name in AGENT_CLIS if which(name)]
    lines: list[str] = []
    if runner is not None:
        if runner not in runners:
            raise InputError(
                f"--runner {runner}: no such runner (choose from {', '.join(runners)})"
            )
        roles = {role: [runner] for role in ROLES}
        source = "option"
        if runner in AGENT_CLIS and runner not in found:
            lines.append(f"note: {runner} is not on PATH yet; install it before `gitdag run`")
    else:
        roles = detected_roles(found)
        source = "path" if found else "none"
        if dagain is not None and dagain.roles:
            roles.update(dagain.roles)
            source = "dagain"
    current = data.get("roles")
    if not isinstance(current, CommentedMap):
        current = data["roles"] = CommentedMap()
    for role, pool in roles.items():  # in place: the comments attached to the keys survive
        current[role] = _pool_value(pool)
    out = io.StringIO()
    yaml.dump(data, out)
    text = out.getvalue()
    parse_settings(text, "template config.yaml (as init would write it)")
    summary = ", ".join(f"{role}: {' -> '.join(pool)}" for role, pool in roles.items())
    if source == "none":
        lines.append(
            "no agent CLI on PATH (claude, codex, gemini, aider): every role uses the scripted "
            "runner; to switch, set roles: in .dagain/config.yaml to one of its runners"
        )
    elif source == "path":
        lines.append(f"found on PATH: {', '.join(found)}; roles {summary}")
    else:
        lines.append(f"roles {summary}")
    needs_script = any(SCRIPTED in pool for pool in roles.values())
    return ConfigChoice(text, roles, found, source, lines, needs_script)
