"""`.dagain/config.yaml` -> Settings; the one home of defaults.

A bad config is a one-line error naming the key (exit 2). A missing file means the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from gitdag.core.codec import DecodeError, load_mapping
from gitdag.core.model import ErrorKind, Number
from gitdag.errors import ConfigError

ROLES = ("planner", "executor", "verifier")


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunnerConfig(_Cfg):
    """One runner: a shell command (packet path as `{packet}`, else on stdin), or a builtin."""

    cmd: StrictStr | None = None
    builtin: Literal["scripted"] | None = None
    script: StrictStr | None = None
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    timeout_s: Annotated[Number, Field(gt=0, le=7 * 86400)] | None = None


class PoolConfig(_Cfg):
    """How a role's list of runners is used: promotion through it on failure (dagain's)."""

    mode: Literal["promotion"] = "promotion"
    promote_on: tuple[ErrorKind, ...] = (
        ErrorKind.TIMEOUT,
        ErrorKind.MISSING_RESULT,
        ErrorKind.SPAWN_ERROR,
    )
    promote_after_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 2


class DefaultsConfig(_Cfg):
    """Supervisor defaults; the command line overrides them.

    Graph-wide policy that every machine must share (retry, lease, escalation depth) lives in
    `graph.yaml` on the state branch, not here.
    """

    workers: Annotated[StrictInt, Field(ge=1, le=64)] = 2
    timeout_s: Annotated[Number, Field(gt=0, le=7 * 86400)] = 1800
    kill_grace_s: Annotated[Number, Field(ge=0, le=600)] = 5


class MergeConfig(_Cfg):
    """The merge queue: the check command run on each merged tree, and what to do with branches."""

    check: StrictStr | None = None
    check_timeout_s: Annotated[Number, Field(gt=0, le=7 * 86400)] = 1800
    archive_branches: StrictBool = False
    # Up to this many ready branches merged, checked and landed together (1: one at a time).
    batch: Annotated[StrictInt, Field(ge=1, le=64)] = 1
    # How many checks a failing batch may run at once while it looks for the culprit. 4: a
    # failing batch of 8 is decided in 2 rounds instead of 5 (docs/config.md); it only matters
    # once `batch` > 1 and a batch fails.
    batch_checks: Annotated[StrictInt, Field(ge=1, le=16)] = 4


class PacketConfig(_Cfg):
    """Bounds on the packet handed to a runner."""

    max_bytes: Annotated[StrictInt, Field(ge=4096, le=4 * 1024 * 1024)] = 64 * 1024


class RemoteConfig(_Cfg):
    """Talking to a shared remote (`gitdag work --remote`, `status --remote`)."""

    # How long a call that failed for a moment (connection refused or reset, a timeout, HTTP
    # 500/502/503/504, DNS) is retried, with capped, jittered backoff, before the remote counts as
    # unreachable.
    retry_for_s: Annotated[StrictInt | float, Field(ge=0, le=3600)] = 60
    # The least time one try waits for a remote that accepted the connection and says nothing
    # (an idle timeout over git:// and http(s), a kill deadline for ssh and the git CLI) before
    # the try counts as failed for a moment (transport/deadline.py); a try gets more when its
    # call has more time left.
    timeout_s: Annotated[StrictInt | float, Field(ge=1, le=600)] = 10
    # The remote whose `dagain/state` is the graph (remote/steer.py): steering commands push
    # there, `gitdag run` syncs with it and claims through it. None: the upstream of
    # `dagain/state` if it has one, else this clone's graph alone.
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")] | None = None


Role = Literal["planner", "executor", "verifier"]


def _default_roles() -> dict[Role, str | tuple[str, ...]]:
    return {"planner": "scripted", "executor": "scripted", "verifier": "scripted"}


class Settings(_Cfg):
    """The whole config file."""

    schema_version: Literal[1] = 1
    runners: dict[StrictStr, RunnerConfig] = Field(
        default_factory=lambda: {"scripted": RunnerConfig(builtin="scripted")}
    )
    roles: dict[Role, StrictStr | tuple[StrictStr, ...]] = Field(default_factory=_default_roles)
    pool: PoolConfig = PoolConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    merge: MergeConfig = MergeConfig()
    packet: PacketConfig = PacketConfig()
    remote: RemoteConfig = RemoteConfig()
    review: Literal["none", "required"] = "none"

    def pool_for(self, role: str) -> tuple[str, ...]:
        """Return the runner names of a role's pool, in promotion order."""
        value = self.roles.get(role)  # type: ignore[call-overload]
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)


def _check_refs(settings: Settings, where: str) -> None:
    for role in ROLES:
        for name in settings.pool_for(role):
            if name not in settings.runners:
                raise ConfigError(f"{where}: roles.{role}: unknown runner {name!r}")
    for name, runner in settings.runners.items():
        if (runner.cmd is None) == (runner.builtin is None):
            raise ConfigError(f"{where}: runners.{name}: give exactly one of cmd or builtin")


def parse_settings(text: str, where: str = ".dagain/config.yaml") -> Settings:
    """Parse config text; raise ConfigError naming the file and key."""
    try:
        data = load_mapping(text)
    except DecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{where}: {key}: {' '.join(str(msg).split())}") from None
    _check_refs(settings, where)
    return settings


def load_settings(dagain_dir: Path) -> Settings:
    """Load `<dagain_dir>/config.yaml`, or the defaults when it does not exist."""
    path = dagain_dir / "config.yaml"
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_settings(text, str(path))
