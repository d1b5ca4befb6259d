"""What the doctor reports: findings, the report, and making the safe repairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gitdag.errors import GitdagError, LockedError


@dataclass
class Finding:
    """One problem: what is wrong, the command that repairs it, and the safe repair if any.

    Attributes:
      check: which check found it (config, state, incident, lock, orphan, worktree, checkout,
        target, hold, pending, objects).
      problem: one line.
      repair: the command a person runs to repair it.
      fix: makes the repair (`--fix`); returns what it did. None when it needs judgement.
      fixed: what `--fix` did, once it ran.
    """

    check: str
    problem: str
    repair: str
    fix: Callable[[], str] | None = field(default=None, repr=False)
    fixed: str | None = None

    def as_data(self) -> dict[str, object]:
        """The finding as JSON-ready data."""
        return {"check": self.check, "problem": self.problem, "repair": self.repair,
                "fixable": self.fix is not None, "fixed": self.fixed}  # fmt: skip


@dataclass
class Report:
    """Every finding, and whether a supervisor was running while the doctor looked."""

    findings: list[Finding]
    supervisor: str | None  # "pid N on HOST" when one holds the lock
    context: str | None = None  # what this clone is, when that changes the advice (clone_checks)

    @property
    def remaining(self) -> list[Finding]:
        """The findings no repair took care of."""
        return [f for f in self.findings if f.fixed is None]


def repair(report: Report) -> Report:
    """Make every safe repair of a report; each records what it did (or why it could not)."""
    for finding in report.findings:
        if finding.fix is None:
            continue
        try:
            finding.fixed = finding.fix()
        except LockedError:
            finding.fix = None  # a supervisor started meanwhile: its recovery takes over
        except (GitdagError, OSError) as exc:
            finding.problem += f" (repair failed: {exc})"
            finding.fix = None
    return report
