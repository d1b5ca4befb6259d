"""Reading a dagain `.dagain/config.json` into gitdag's config: what maps, and what does not.

dagain (github.com/knot0-com/dagain) keeps a camelCase JSON config: `runners` ({cmd, env,
timeoutMs}), `roles` (main, planner, executor, verifier, integrator, finalVerifier, researcher;
a name, a comma-separated string or a list; `main` is the fallback of a missing role),
`supervisor` (workers, runnerPool {mode, promoteOn, promoteAfterAttempts}, runnerTimeoutMs, ...)
and `defaults.retryPolicy.maxAttempts`. `gitdag init` maps what has a gitdag counterpart and lists
the rest; the dagain file itself is never changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitdag.config import ROLES
from gitdag.core.model import ErrorKind
from gitdag.errors import ConfigError

CONFIG_JSON = "config.json"
# Commands that call dagain's own helper scripts (shipped inside its npm package).
_DAGAIN_SCRIPTS = ("DAGAIN_SHELL_", "CHOREO_SHELL_", "TASKGRAPH_SHELL_")
_NO_ROLE = {
    "integrator": "the merge queue integrates in gitdag",
    "finalVerifier": "verify nodes use the verifier role",
    "researcher": "no such role in gitdag",
}
_ERROR_KINDS = {kind.value for kind in ErrorKind}


@dataclass
class DagainMapping:
    """What a dagain config becomes: config.yaml sections, graph defaults, and what was left out."""

    runners: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    role_sources: dict[str, str] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    max_attempts: int | None = None
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def report(self, path: str) -> list[str]:
        """Return the few lines `gitdag init` prints about the mapping."""
        lines = [f"found dagain's {path}; mapped it into .dagain/config.yaml (left it unchanged):"]
        if self.runners:
            lines.append(f"  runners: {', '.join(self.runners)}")
        if self.roles:
            parts = []
            for role, pool in self.roles.items():
                src = self.role_sources.get(role, role)
                via = "" if src == role else f" (from {src})"
                parts.append(f"{role} = {', '.join(pool)}{via}")
            lines.append(f"  roles: {'; '.join(parts)}")
        extra = [f"pool.{k}" for k in self.pool] + [f"defaults.{k}" for k in self.defaults]
        if self.max_attempts is not None:
            extra.append("retry max_attempts (graph.yaml)")
        if extra:
            lines.append(f"  also: {', '.join(extra)}")
        if self.skipped:
            lines.append(f"  not mapped: {'; '.join(self.skipped)}")
        lines += [f"  note: {w}" for w in self.warnings]
        return lines


def read_dagain_config(dagain_dir: Path) -> dict[str, Any] | None:
    """Return dagain's config as parsed JSON, or None when the repository has none.

    Raises:
      ConfigError: the file exists but is not a JSON object.
    """
    path = dagain_dir / CONFIG_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _runner_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def _positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _seconds(ms: float) -> int | float:
    s = ms / 1000
    return int(s) if s.is_integer() else round(s, 3)


def _map_runner(name: str, spec: object, out: DagainMapping) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("cmd"), str) or not spec["cmd"]:
        out.skipped.append(f"runners.{name} (no cmd)")
        return
    cmd: str = spec["cmd"]
    if any(marker in cmd for marker in _DAGAIN_SCRIPTS):
        out.skipped.append(f"runners.{name} (runs dagain's own helper script)")
        return
    runner: dict[str, Any] = {"cmd": cmd}
    env = spec.get("env")
    if isinstance(env, dict) and env:
        runner["env"] = {str(k): str(v) for k, v in env.items()}
    timeout = _positive(spec.get("timeoutMs"))
    if timeout is not None:
        runner["timeout_s"] = _seconds(timeout)
    out.runners[name] = runner
    if "--dangerously-skip-permissions" in cmd:
        out.warnings.append(
            f"runners.{name} uses --dangerously-skip-permissions, which claude refuses as root "
            "(dagain dropped it for root; gitdag runs the command as written: set "
            "env IS_SANDBOX=1 in a disposable container, or use the claude preset)"
        )


def _map_roles(data: dict[str, Any], out: DagainMapping) -> None:
    roles = data.get("roles")
    if not isinstance(roles, dict):
        return
    main = _runner_list(roles.get("main"))
    for role in ROLES:
        source = role if role in roles else "main"
        wanted = _runner_list(roles.get(role)) if role in roles else main
        kept = [name for name in wanted if name in out.runners]
        dropped = [name for name in wanted if name not in out.runners]
        if dropped:
            out.skipped.append(f"roles.{source}: {', '.join(dropped)} (runner not mapped)")
        if kept:
            out.roles[role] = kept
            out.role_sources[role] = source
    for name in roles:
        if name in _NO_ROLE:
            out.skipped.append(f"roles.{name} ({_NO_ROLE[name]})")
        elif name not in (*ROLES, "main"):
            out.skipped.append(f"roles.{name} (unknown role)")


def _map_supervisor(data: dict[str, Any], out: DagainMapping) -> None:
    sup = data.get("supervisor")
    if not isinstance(sup, dict):
        return
    workers = sup.get("workers")
    if isinstance(workers, int) and not isinstance(workers, bool) and 1 <= workers <= 64:
        out.defaults["workers"] = workers
    timeout = _positive(sup.get("runnerTimeoutMs"))
    if timeout is not None:
        out.defaults["timeout_s"] = _seconds(timeout)
    pool = sup.get("runnerPool")
    if isinstance(pool, dict):
        if pool.get("mode", "off") != "promotion":
            out.warnings.append(
                f"supervisor.runnerPool.mode is {pool.get('mode', 'off')!r}: dagain spread a "
                "role's runners by hash; gitdag starts with the first and promotes on failure"
            )
        kinds = [k for k in _runner_list(pool.get("promoteOn")) if k in _ERROR_KINDS]
        if kinds:
            out.pool["promote_on"] = kinds
        after = pool.get("promoteAfterAttempts")
        if isinstance(after, int) and not isinstance(after, bool) and 1 <= after <= 100:
            out.pool["promote_after_attempts"] = after
    known = {"workers", "runnerTimeoutMs", "runnerPool"}
    rest = sorted(k for k in sup if k not in known)
    if rest:
        out.skipped.append("supervisor." + ", supervisor.".join(rest))


def map_dagain_config(data: dict[str, Any]) -> DagainMapping:
    """Map a parsed dagain config; never raises on content, it lists what it could not map."""
    out = DagainMapping()
    runners = data.get("runners")
    if isinstance(runners, dict):
        for name, spec in runners.items():
            _map_runner(str(name), spec, out)
    _map_roles(data, out)
    _map_supervisor(data, out)
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        policy = defaults.get("retryPolicy")
        attempts = policy.get("maxAttempts") if isinstance(policy, dict) else None
        if isinstance(attempts, int) and not isinstance(attempts, bool) and 1 <= attempts <= 100:
            out.max_attempts = attempts
        rest = sorted(k for k in defaults if k != "retryPolicy")
        if rest:
            out.skipped.append("defaults." + ", defaults.".join(rest))
    top = sorted(k for k in data if k not in {"version", "runners", "roles", "supervisor",
                                               "defaults"})  # fmt: skip
    if top:
        out.skipped.append(", ".join(top))
    return out
