"""workspace/advance.py: a checkout advance killed at any point is settled to one tip, or named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitdag.workspace.advance import find_leftovers, settle
from tests.conftest import git, make_repo

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gitdag.workspace.advance import Intent, Landing, advance_checkout
    from gitdag.workspace.checkouts import checkouts_of

    root, old, new, outcome = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ref = "refs/heads/main"

    def land(r, o, n, cwd):
        if outcome == "landed":
            import subprocess
            subprocess.run(["git", "update-ref", r, n, o], cwd=cwd, check=True)
        return Landing(outcome, "test")

    checkout = checkouts_of(root, root / ".git", ref)[0]
    intent = Intent(str(root), ref, old, new, "merging t")
    print(advance_checkout(checkout, intent, root / ".dagain" / "local", "test", land).outcome)
    """
)


def _repo(tmp_path: Path) -> tuple[Path, str, str]:
    root = make_repo(tmp_path / "r", {"a.txt": "a\n", "keep.txt": "k\n"})
    old = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "side")
    (root / "a.txt").write_text("changed\n")
    (root / "new.txt").write_text("added\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "side")
    new = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "main")
    return root, old, new


def _advance(root: Path, old: str, new: str, outcome: str, crash: str | None) -> int:
    env = {**os.environ}
    if crash:
        env["GITDAG_CRASH_AT"] = crash
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), old, new, outcome],
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.returncode


def _clean_at(root: Path) -> str:
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    return git(root, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize(
    ("outcome", "point", "verdict"),
    [
        ("landed", "checkout.after_intent", "untouched"),
        ("landed", "checkout.after_files", "undo"),
        ("landed", "checkout.after_ref", "done"),
        ("abandoned", "checkout.after_files", "undo"),
        ("abandoned", "checkout.after_restore", "untouched"),
        ("moved", "checkout.after_restore", "untouched"),
    ],
)
def test_killed_at_each_point_settles_to_the_tip_its_ref_names(
    tmp_path: Path, outcome: str, point: str, verdict: str
) -> None:
    root, old, new = _repo(tmp_path)
    assert _advance(root, old, new, outcome, point) == 137
    [left] = find_leftovers(root / ".dagain" / "local")
    assert left.verdict == verdict
    settle(left)
    assert find_leftovers(root / ".dagain" / "local") == []
    head = _clean_at(root)
    assert head == (new if verdict == "done" else old)
    assert (root / "new.txt").exists() == (head == new)


@pytest.mark.parametrize("outcome", ["landed", "abandoned", "moved"])
def test_without_a_kill_nothing_is_left_and_the_checkout_matches_its_ref(
    tmp_path: Path, outcome: str
) -> None:
    root, old, new = _repo(tmp_path)
    assert _advance(root, old, new, outcome, None) == 0
    assert find_leftovers(root / ".dagain" / "local") == []
    assert _clean_at(root) == (new if outcome == "landed" else old)


def test_an_edited_half_moved_checkout_is_stuck_and_settle_touches_nothing(
    tmp_path: Path,
) -> None:
    root, old, new = _repo(tmp_path)
    assert _advance(root, old, new, "landed", "checkout.after_files") == 137
    (root / "keep.txt").write_text("my edit\n")
    [left] = find_leftovers(root / ".dagain" / "local")
    assert left.verdict == "stuck" and "half-moved by merging t" in left.describe()
    assert "left as it is" in settle(left)
    assert (root / "keep.txt").read_text() == "my edit\n" and left.path.exists()
