"""Reading a state-branch commit message: its title and `Gitdag-*` trailers, as a StepInfo.

Parsing only; whether what the message says is legal is `core/legality.py`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitdag.core.transitions import VERBS, parse_trailers


@dataclass(frozen=True)
class StepInfo:
    """What a commit message says about its transition.

    Attributes:
      title: the first line.
      verbs: every `Gitdag-Transition` value (exactly one is legal).
      subject: the node the title names (None for `graph` or an unreadable title).
      nodes: the `Gitdag-Node` values.
      actor: the `Gitdag-Actor` value.
      attempt: the `Gitdag-Attempt` value, when present and a number.
      attempt_text: the raw `Gitdag-Attempt` value (to report a malformed one).
      trailers: all `Gitdag-*` trailers.
    """

    title: str
    verbs: tuple[str, ...]
    subject: str | None
    nodes: tuple[str, ...]
    actor: str | None
    attempt: int | None
    attempt_text: str | None
    trailers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def verb(self) -> str | None:
        """The verb, when exactly one known verb is given."""
        return self.verbs[0] if len(self.verbs) == 1 and self.verbs[0] in VERBS else None


def _first(trailers: Mapping[str, list[str]], key: str) -> str | None:
    values = trailers.get(key)
    return values[0] if values else None


def step_info(message: str) -> StepInfo:
    """Parse the title and `Gitdag-*` trailers of a commit message."""
    lines = message.splitlines()
    title = lines[0].strip() if lines else ""
    trailers = parse_trailers(message)
    words = title.split()
    subject = words[1].rstrip(":") if len(words) >= 2 else None
    if subject == "graph":
        subject = None
    attempt_text = _first(trailers, "Gitdag-Attempt")
    attempt = int(attempt_text) if attempt_text is not None and attempt_text.isdigit() else None
    actor = _first(trailers, "Gitdag-Actor")
    return StepInfo(
        title=title,
        verbs=tuple(trailers.get("Gitdag-Transition", [])),
        subject=subject,
        nodes=tuple(trailers.get("Gitdag-Node", [])),
        actor=actor,
        attempt=attempt,
        attempt_text=attempt_text,
        trailers=trailers,
    )
