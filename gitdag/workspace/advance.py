"""Moving a user's checkout of the target with a merge, so that no crash leaves it half-moved.

A checked-out target moves in two steps: its files and index (`git read-tree -m -u old new`),
then its ref (`HEAD`, with the merge's state record in the same ref transaction when the caller
lands through `land`). A kill -9 between the two would leave the merge's change staged in the
user's checkout with HEAD at the old tip, which looks exactly like an edit of theirs. So before
any file moves, an *intent* is written (`.dagain/local/checkout-advance/<target>.json`: the
checkout, the ref, old, new, what moves it), and it is removed only once the checkout is consistent
again. Whoever finds an intent (the supervisor at start-up, the merge queue before its next
merge, `gitdag doctor --fix`) settles it with `settle`:

- HEAD at `new`: the advance finished (the ref and the state record moved together); the
  intent is just removed;
- HEAD at `old`, index and files exactly `old`: nothing had moved, or the files were already
  put back; the intent is removed;
- HEAD at `old`, index and files exactly `new`: the files moved but the ref did not, so the
  merge did not land (nor its record). The files are put back (`git read-tree -m -u new old`);
  the node is still `merging` and is integrated again, once;
- anything else (the user edited the half-moved checkout, or HEAD moved elsewhere with changes
  in it): nothing is touched; the intent stays and doctor names the checkout and what to do.

Crash points (tests): checkout.after_intent, checkout.after_files, checkout.after_ref,
checkout.after_restore.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from gitdag.crash import crash_point
from gitdag.workspace.checkouts import Checkout
from gitdag.workspace.gitcli import NO_HOOKS, run_git

INTENT_DIR = "checkout-advance"

LandOutcome = Literal["landed", "moved", "abandoned", "refused"]


@dataclass(frozen=True)
class Landing:
    """What came of publishing a merge.

    Attributes:
      outcome: landed (the ref moved, with its record if any) | moved (the ref was no longer at
        the old tip: merge again) | abandoned (the caller declined: the node is no longer
        merging this attempt) | refused (the checkout's files could not be moved).
      reason: why, for every outcome but landed.
    """

    outcome: LandOutcome
    reason: str = ""


# (ref as git names it from cwd, old, new, cwd) -> Landing. The supervisor's lands the merge and
# the node's `merge` transition in one ref transaction.
Land = Callable[[str, str, str, Path], Landing]


@dataclass(frozen=True)
class Intent:
    """A checkout advance under way: written before the first file moves."""

    checkout: str
    ref: str
    old: str
    new: str
    by: str  # what moved it: "merging <node id>", "mirroring <remote>/<target>"


def intent_path(local: Path, target_ref: str) -> Path:
    """Where the intent of advancing `target_ref`'s checkout is kept."""
    name = target_ref.removeprefix("refs/heads/").replace("/", "%")
    return Path(local) / INTENT_DIR / f"{name}.json"


def advance_checkout(
    checkout: Checkout,
    intent: Intent,
    local: Path,
    reflog: str,
    land: Land | None,
) -> Landing:
    """Move a clean checkout of the target from `intent.old` to `intent.new`: files, then ref.

    The ref moves through the checkout's `HEAD` (so its HEAD reflog is right too), by `land`
    when given (the caller's joint transaction), else by compare-and-swap alone. If the files
    cannot be updated (an untracked file in the way) nothing changed; if the ref does not move,
    the files are put back. On every path the intent is removed only once the checkout is
    consistent again (see the module docstring for what a crash leaves and who settles it).
    """
    path = intent_path(local, intent.ref)
    _write_intent(path, intent)
    crash_point("checkout.after_intent")
    cwd = checkout.path
    switch = run_git([*NO_HOOKS, "read-tree", "-m", "-u", intent.old, intent.new], cwd, check=False)
    if switch.returncode != 0:
        path.unlink(missing_ok=True)
        return Landing("refused", f"{cwd}: {switch.stderr.strip()}")
    crash_point("checkout.after_files")
    try:
        if land is not None:
            landing = land("HEAD", intent.old, intent.new, cwd)
        else:
            update = ["update-ref", "-m", reflog, "HEAD", intent.new, intent.old]
            moved = run_git(update, cwd, check=False)
            landing = Landing("landed") if moved.returncode == 0 else Landing("moved", "")
    except BaseException:
        _put_back(cwd, intent, path)
        raise
    if landing.outcome == "landed":
        crash_point("checkout.after_ref")
        path.unlink(missing_ok=True)
        return landing
    _put_back(cwd, intent, path)
    return landing


def _put_back(cwd: Path, intent: Intent, path: Path) -> None:
    back = run_git([*NO_HOOKS, "read-tree", "-m", "-u", intent.new, intent.old], cwd, check=False)
    crash_point("checkout.after_restore")
    if back.returncode == 0:
        path.unlink(missing_ok=True)
    # Otherwise the intent stays: `settle` (or doctor) names the checkout.


def _write_intent(path: Path, intent: Intent) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(intent), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --- after a crash ----------------------------------------------------------------------------

Verdict = Literal["done", "untouched", "undo", "stuck"]


@dataclass(frozen=True)
class Leftover:
    """An intent found on disk, what the checkout shows, and what settling it does."""

    path: Path
    intent: Intent | None  # None: the file is unreadable (it is simply removed)
    verdict: Verdict
    detail: str

    def repair(self) -> str:
        """The command (or steps) that repairs it."""
        i = self.intent
        if self.verdict != "stuck" or i is None:
            return "gitdag doctor --fix"
        return (f"git -C {i.checkout} status: the change {i.old[:12]}..{i.new[:12]} ({i.by}) may "
                f"be staged there; keep what is yours, then rm {self.path}")  # fmt: skip

    def describe(self) -> str:
        """One line for doctor and the supervisor's log."""
        i = self.intent
        if i is None:
            return f"{self.path}: an unreadable checkout-advance record"
        where = f"{i.checkout} ({i.ref.removeprefix('refs/heads/')})"
        if self.verdict == "undo":
            return (f"{where} was left half-moved by {i.by}: its files are at "
                    f"{i.new[:12]} but HEAD is still {i.old[:12]}")  # fmt: skip
        if self.verdict == "stuck":
            return f"{where} was left half-moved by {i.by}, then changed: {self.detail}"
        return f"{where}: the record of a finished advance ({i.by}) was left behind"


def find_leftovers(local: Path) -> list[Leftover]:
    """Every checkout-advance intent on disk, with the verdict (read-only)."""
    folder = Path(local) / INTENT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            intent = Intent(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            found.append(Leftover(path, None, "done", "unreadable"))
            continue
        verdict, detail = _judge(intent)
        found.append(Leftover(path, intent, verdict, detail))
    return found


def settle(leftover: Leftover) -> str:
    """Make a leftover consistent (what its verdict says) and say what was done."""
    i = leftover.intent
    if leftover.verdict == "stuck" or i is None:
        if i is None:
            leftover.path.unlink(missing_ok=True)
            return "removed an unreadable checkout-advance record"
        return "left as it is: " + leftover.describe()
    if leftover.verdict == "undo":
        cwd = Path(i.checkout)
        back = run_git([*NO_HOOKS, "read-tree", "-m", "-u", i.new, i.old], cwd, check=False)
        if back.returncode != 0:
            return f"could not put {i.checkout} back at {i.old[:12]}: {back.stderr.strip()}"
        leftover.path.unlink(missing_ok=True)
        return f"put {i.checkout} back at {i.old[:12]} ({i.by} had not landed)"
    leftover.path.unlink(missing_ok=True)
    return f"removed the finished checkout-advance record of {i.checkout}"


def settle_all(local: Path) -> list[str]:
    """Settle every leftover intent that can be settled safely; return what was done."""
    return [settle(left) for left in find_leftovers(local) if left.verdict != "stuck"]


def settle_target(local: Path, target_ref: str) -> str | None:
    """Settle what a crash left of advancing this target's checkout (before moving it again).

    Returns why the checkout needs a person (it changed since it was half-moved), or None.
    """
    path = intent_path(local, target_ref)
    if not path.exists():
        return None  # the common case: one stat per merge
    for left in find_leftovers(local):
        if left.path == path:
            if left.verdict == "stuck":
                return left.describe()
            settle(left)
    return None


def _judge(i: Intent) -> tuple[Verdict, str]:
    cwd = Path(i.checkout)
    if not cwd.is_dir():
        return "done", "the checkout is gone"
    head = _rev(cwd, "HEAD")
    if head == i.new:
        return "done", "HEAD is at the new tip"
    files_clean = _files_match_index(cwd)
    if head == i.old and files_clean and _index_is(cwd, i.old):
        return "untouched", "the checkout is at the old tip"
    if head == i.old and files_clean and _index_is(cwd, i.new):
        return "undo", "files at the new tip, HEAD at the old one"
    if head not in (i.old, i.new) and files_clean and head is not None and _index_is(cwd, head):
        return "untouched", "HEAD moved elsewhere and the checkout is clean"
    return "stuck", f"HEAD is {head[:12] if head else 'unreadable'} and the files differ from it"


def _rev(cwd: Path, rev: str) -> str | None:
    proc = run_git(["rev-parse", "--verify", "-q", rev + "^{commit}"], cwd, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _files_match_index(cwd: Path) -> bool:
    run_git(["update-index", "-q", "--refresh"], cwd, check=False)
    return run_git(["diff-files", "--quiet"], cwd, check=False).returncode == 0


def _index_is(cwd: Path, commit: str) -> bool:
    proc = run_git(["diff-index", "--cached", "--quiet", commit, "--"], cwd, check=False)
    return proc.returncode == 0
