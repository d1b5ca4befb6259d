"""What a merge conflict collided with: the target's commits, the nodes behind them, the hunks.

After a conflict the node is retried from the target's new tip; its packet says which change it
collided with and shows the conflicting hunks, so an agent need not rediscover them. Both come
from git alone: the colliding commits are the target's first-parent commits since the merge base
that touch a conflicting path (a gitdag merge names its node in its subject, `gitdag: integrate
<id> (attempt <n>)`), and the hunks are the marked regions of the conflicted files in the tree
`git merge-tree --write-tree` writes, with a little context, bounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitdag.workspace.gitcli import run_git

_INTEGRATE = re.compile(r"^gitdag: integrate (\S+) \(attempt \d+\)")
CONTEXT_LINES = 3
HUNKS_MAX_BYTES = 16 * 1024
MAX_COLLISIONS = 10


@dataclass(frozen=True)
class Collision:
    """A target commit that changed a path the node's change conflicted on."""

    commit: str
    subject: str
    node: str | None  # the node a gitdag merge integrated, None for anyone else's commit
    paths: tuple[str, ...]

    def describe(self) -> str:
        """`node <id> (merge abc123456789)` or `commit abc123456789 "subject"`."""
        if self.node is not None:
            return f"node {self.node} (merge {self.commit[:12]})"
        return f'commit {self.commit[:12]} "{self.subject[:80]}"'


def collisions(root: Path, tip: str, head: str, paths: Sequence[str]) -> list[Collision]:
    """The target commits since the merge base of `tip` and `head` that touch `paths`, newest first.

    Only the target's first-parent line is walked, each commit compared with its first parent,
    so a gitdag merge stands for the whole change of the node it integrated.
    """
    if not paths:
        return []
    base = run_git(["merge-base", tip, head], root, check=False).stdout.strip()
    if not base:
        return []
    log = run_git(
        ["log", "--first-parent", "--format=%H%x00%s", f"{base}..{tip}", "--", *paths],
        root,
        check=False,
    ).stdout
    found = []
    for line in log.splitlines()[:MAX_COLLISIONS]:
        commit, _, subject = line.partition("\0")
        touched = run_git(
            [
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                f"{commit}^1",
                commit,
                "--",
                *paths,
            ],
            root,
            check=False,
        ).stdout.split()
        match = _INTEGRATE.match(subject)
        found.append(Collision(commit, subject, match.group(1) if match else None, tuple(touched)))
    return found


def hunks(root: Path, tip: str, head: str, max_bytes: int = HUNKS_MAX_BYTES) -> str:
    """The conflicting hunks of merging `head` into `tip`, as text, at most `max_bytes`.

    Each hunk is the marked region of a conflicted file with `CONTEXT_LINES` around it, the
    target's side first (`<<<<<<< target`), the previous attempt's second (`>>>>>>> previous
    attempt`). Conflicts without markers (a file deleted on one side, a binary file) are given
    by git's own message. "" when the merge does not conflict.
    """
    proc = run_git(["merge-tree", "--write-tree", "--name-only", tip, head], root, check=False)
    if proc.returncode != 1:
        return ""
    listing, _, messages = proc.stdout.partition("\n\n")
    lines = listing.splitlines()
    if not lines:
        return ""  # git could not merge at all (the previous head is not in this clone)
    tree, conflicted = lines[0].strip(), list(dict.fromkeys(p for p in lines[1:] if p))
    out: list[str] = []
    for path in conflicted:
        shown = run_git(["cat-file", "-p", f"{tree}:{path}"], root, check=False)
        regions = _marked(shown.stdout, tip, head) if shown.returncode == 0 else []
        if regions:
            for first_line, text in regions:
                out.append(f"--- {path}, line {first_line}\n{text}")
        else:
            said = [m for m in messages.splitlines() if path in m and "CONFLICT" in m]
            out.append(f"--- {path}\n" + ("\n".join(said) or "(no text to show)") + "\n")
    return _bounded("\n".join(out), max_bytes)


def _marked(text: str, tip: str, head: str) -> list[tuple[int, str]]:
    """The marked regions of a conflicted file, with context: (first line number, text)."""
    lines = text.splitlines()
    regions = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("<<<<<<< "):
            i += 1
            continue
        end = i
        while end < len(lines) and not lines[end].startswith(">>>>>>> "):
            end += 1
        start, stop = max(0, i - CONTEXT_LINES), min(len(lines), end + 1 + CONTEXT_LINES)
        chunk = [_label(line, tip, head) for line in lines[start:stop]]
        regions.append((start + 1, "\n".join(chunk) + "\n"))
        i = end + 1
    return regions


def _label(line: str, tip: str, head: str) -> str:
    if line.startswith("<<<<<<< ") and line[8:].strip() == tip:
        return f"<<<<<<< target ({tip[:12]})"
    if line.startswith(">>>>>>> ") and line[8:].strip() == head:
        return f">>>>>>> previous attempt ({head[:12]})"
    return line


def _bounded(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    keep = raw[: max(0, max_bytes - 80)].decode("utf-8", "ignore")
    keep = keep[: keep.rfind("\n") + 1] if "\n" in keep else keep
    cut = len(raw) - len(keep.encode("utf-8"))
    return keep + f"[… {cut} more bytes of conflicting hunks cut …]\n"
