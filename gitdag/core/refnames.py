"""Which branch names gitdag accepts: git's ref-name rules, and what a target may not be.

`ref_problem` is `git check-ref-format`'s rules for one full ref name, written out so that a
name is refused before anything is written (git would refuse it only at the first update-ref,
dulwich not at all). `target_problem` adds what a merge target may not be: gitdag's own
`dagain/*` branches (the first merge would put code into the state branch), `HEAD`, or a name
that already starts with `refs/` (it would become `refs/heads/refs/...`). `clash` finds a branch
that would stand in the way as a file or a directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Bytes git never allows in a ref name: controls, DEL, space and ~ ^ : ? * [ \ (check-ref-format
# rules 3, 4, 5 and 9).
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
MAX_BRANCH_LENGTH = 200
RESERVED_PREFIX = "dagain"
# gitdag's own branches under dagain/: the state branch, and the namespaces of work, archive,
# proposal and hand branches. `dagain/integration`, the default target, is none of them.
RESERVED = ("state", "work", "archive", "proposals", "hands")


def ref_problem(name: str) -> str | None:
    """Return why `name` is not a valid ref name (git check-ref-format's rules), or None.

    Args:
      name: a branch name (the part after `refs/heads/`).
    """
    if not name:
        return "is empty"
    if len(name) > MAX_BRANCH_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_BRANCH_LENGTH})"
    bad = _FORBIDDEN.search(name)
    if bad:
        return f"contains {bad.group()!r}, which git does not allow in a ref name"
    if name == "@":
        return "is '@', which git reads as HEAD"
    if "@{" in name:
        return "contains '@{', which git reads as a reflog expression"
    if ".." in name:
        return "contains '..'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "has an empty path component"
    if name.endswith("."):
        return "ends with '.'"
    if name.startswith("-"):
        return "starts with '-' (git would read it as an option)"
    for part in name.split("/"):
        if part.startswith("."):
            return f"has a component starting with '.' ({part!r})"
        if part.endswith(".lock"):
            return f"has a component ending with '.lock' ({part!r})"
    return None


def target_problem(name: str) -> str | None:
    """Return why `name` cannot be gitdag's merge target, or None when it can.

    Args:
      name: the target branch as given to `init --target` or written in graph.yaml.
    """
    problem = ref_problem(name)
    if problem is not None:
        return problem
    if name in ("HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD"):
        return f"is {name}, not a branch"
    if name.startswith("refs/"):
        return "starts with 'refs/': give the branch name (it is stored under refs/heads/)"
    parts = name.split("/")
    if parts[0] == RESERVED_PREFIX and (len(parts) == 1 or parts[1] in RESERVED):
        return (
            f"is or nests with gitdag's own branches ({RESERVED_PREFIX}/state, "
            f"{RESERVED_PREFIX}/work/*, ...); choose another name"
        )
    return None


def clash(name: str, existing: Iterable[str]) -> str | None:
    """Return an existing branch that `name` cannot live beside (file vs directory), or None.

    git stores `refs/heads/foo` as a file, so `foo/bar` cannot exist while `foo` does, nor `foo`
    while `foo/bar` does. The branch `name` itself is not a clash (an existing target is used).

    Args:
      name: the branch to create.
      existing: the names of the branches that exist (without `refs/heads/`).
    """
    for other in existing:
        if other == name:
            continue
        if other.startswith(name + "/") or name.startswith(other + "/"):
            return other
    return None
