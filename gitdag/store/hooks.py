"""Git hooks that keep `dagain/state` valid: the logic behind the shims in `hooks/`.

- `pre-push` (client): validates the range of `dagain/state` (and of proposal branches) being
  pushed, `remote..local`, and blocks the push when a commit breaks a rule.
- `pre-receive` / `update` (server, bare repositories): validate `old..new` of every pushed
  `dagain/state` or proposal update. They run while git keeps the pushed objects in quarantine,
  so the repository is opened with `GIT_OBJECT_DIRECTORY` and `GIT_ALTERNATE_OBJECT_DIRECTORIES`.

A hook file is a three-line shell shim that execs `gitdag hook <name>`; `install` writes them
into the repository's hooks directory without clobbering hooks that are not gitdag's.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import Repo

from gitdag.core.transitions import Transition, message
from gitdag.errors import InputError, NotInitialisedError, StaleSnapshotError
from gitdag.store import ranges
from gitdag.store import repo as repos
from gitdag.store.delta import commit_of, oid
from gitdag.store.layout import PROPOSAL_BRANCH_PREFIX, STATE_BRANCH, STATE_REF, RepoPaths
from gitdag.store.repo import open_repo
from gitdag.store.state import StateStore
from gitdag.store.write import compare_and_swap

CLIENT_HOOKS = ("pre-push",)
SERVER_HOOKS = ("pre-receive", "update")
MARKER = "# gitdag-hook-shim"
ZERO = "0" * 40
_PROPOSAL_PREFIX = "refs/heads/" + PROPOSAL_BRANCH_PREFIX


def shim(name: str, python: str | None = None) -> str:
    """Return the text of the hook file `name` (with `python`: prefer that interpreter)."""
    lines = [
        "#!/bin/sh",
        f"{MARKER}: validates {STATE_BRANCH} before it moves (see `gitdag hooks install`).",
    ]
    if python:
        quoted = python.replace("'", "'\\''")
        lines += [
            f"GITDAG_PYTHON='{quoted}'",
            'if [ -x "$GITDAG_PYTHON" ]; then',
            f'  exec "$GITDAG_PYTHON" -m gitdag hook {name} "$@"',
            "fi",
        ]
    lines.append(f'exec gitdag hook {name} "$@"')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Installed:
    """What `install` did with one hook: `installed`, `updated`, or `alongside` a foreign one."""

    name: str
    path: Path
    action: str


def hooks_dir(repo: Repo, paths: RepoPaths) -> Path:
    """Return the directory git runs hooks from (`core.hooksPath`, else `<git dir>/hooks`)."""
    try:
        configured = repo.get_config_stack().get((b"core",), b"hooksPath").decode()
    except KeyError:
        configured = ""
    if configured:
        path = Path(os.path.expanduser(configured))
        return path if path.is_absolute() else paths.root / path
    return paths.git_dir / "hooks"


def install(repo: Repo, paths: RepoPaths, names: Iterable[str]) -> list[Installed]:
    """Write the shims for `names`; a foreign hook is kept and ours goes to `<name>.gitdag`."""
    target = hooks_dir(repo, paths)
    target.mkdir(parents=True, exist_ok=True)
    done: list[Installed] = []
    for name in names:
        text = shim(name, sys.executable)
        path = target / name
        action = "installed"
        if path.exists():
            try:
                existing = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                existing = ""
            if MARKER in existing:
                action = "updated"
            else:
                path = target / f"{name}.gitdag"
                action = "alongside"
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(Installed(name, path, action))
    return done


def chain_hint(item: Installed) -> str:
    """Return how to call our hook from an existing one of the same name."""
    if item.name == "pre-push" or item.name == "pre-receive":
        return (
            f'  input=$(cat)\n  printf "%s\\n" "$input" | "$(dirname "$0")/{item.name}.gitdag" '
            f'"$@" || exit 1\n  # ... then your own checks, reading "$input" instead of stdin'
        )
    return f'  "$(dirname "$0")/{item.name}.gitdag" "$@" || exit 1'


CI_PATH = (b".github", b"workflows", b"validate-state.yml")


def install_ci(store: StateStore, text: str, actor: str) -> str | None:
    """Put the CI workflow on the state branch at `.github/workflows/` (one `edit` commit).

    A forge reads a pull request's workflows from the branch it merges into, so the workflow that
    validates pull requests into `dagain/state` has to live on that branch; gitdag ignores
    `.github/` there. Returns the new head, or None when the file is there already.
    """
    repo = store.repo
    for _ in range(32):
        head = store.head()
        if head is None:
            raise NotInitialisedError(f"no {STATE_BRANCH} branch here: run `gitdag init` first")
        parent = commit_of(repo, head)
        blob = Blob.from_string(text.encode())
        trees: list[Tree] = [_tree_copy(repo, parent.tree)]
        for name in CI_PATH[:-1]:
            below = trees[-1]
            trees.append(_tree_copy(repo, below[name][1]) if name in below else Tree())
        if CI_PATH[-1] in trees[-1] and trees[-1][CI_PATH[-1]][1] == blob.id:
            return None
        trees[-1].add(CI_PATH[-1], 0o100644, blob.id)
        objects: list[Blob | Tree | Commit] = [blob, trees[-1]]
        for depth in range(len(trees) - 2, -1, -1):
            trees[depth].add(CI_PATH[depth], 0o040000, trees[depth + 1].id)
            objects.append(trees[depth])
        commit = Commit()
        commit.tree = trees[0].id
        commit.parents = [parent.id]
        name_email = "{} <{}>".format(*repos.identity(repo)).encode()
        commit.author = commit.committer = name_email
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        summary = "CI: validate pull requests into dagain/state (.github/workflows/)"
        commit.message = message(Transition(verb="edit", subject="graph", summary=summary),
                                 actor).encode()  # fmt: skip
        objects.append(commit)
        for obj in objects:
            repo.object_store.add_object(obj)
        if compare_and_swap(repo, store.ref, head, commit.id.decode(), "gitdag: install CI"):
            return str(commit.id.decode())
    raise StaleSnapshotError(f"{STATE_BRANCH} kept moving; nothing was written")


def _tree_copy(repo: Repo, sha: bytes) -> Tree:
    obj = repo.object_store[ObjectID(sha)]
    if not isinstance(obj, Tree):
        raise InputError(f"{sha.decode()[:12]} is not a tree")
    copy = Tree()
    for entry in obj.iteritems():
        copy.add(entry.path, entry.mode, entry.sha)
    return copy


# --- running --------------------------------------------------------------------------------


def _quarantine_repo() -> tuple[Repo, RepoPaths]:
    """Open the repository a server-side hook runs in, seeing the pushed (quarantined) objects."""
    git_dir = Path(os.environ.get("GIT_DIR") or ".").resolve()
    objects = os.environ.get("GIT_OBJECT_DIRECTORY")
    alternates = [
        str(Path(p).resolve())
        for p in os.environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES", "").split(os.pathsep)
        if p
    ]
    try:
        repo = Repo(
            str(git_dir),
            object_directory=str(Path(objects).resolve()) if objects else None,
            alternates=alternates or None,
        )
    except Exception as exc:
        raise InputError(f"{git_dir}: cannot open the repository: {exc}") from None
    root = Path(repo.path).resolve()
    common = Path(repo.commondir()).resolve()
    local = os.environ.get("GITDAG_LOCAL_DIR")
    return repo, RepoPaths(root=root, git_dir=common, local=Path(local or tempfile.gettempdir()))


def _server_store() -> StateStore:
    repo, paths = _quarantine_repo()
    # Without GITDAG_LOCAL_DIR a server keeps no cache files: nothing is written into the repo.
    return StateStore(repo, paths, use_disk_cache=bool(os.environ.get("GITDAG_LOCAL_DIR")))


def _known(store: StateStore, sha: str) -> bool:
    try:
        return oid(sha) in store.repo.object_store
    except Exception:
        return False


def check_update(store: StateStore, ref: str, old: str, new: str) -> tuple[list[str], str | None]:
    """Return the problems of moving `ref` from `old` to `new` (empty: allow it), and a hint.

    Only `dagain/state` and proposal branches are checked; deleting a ref is never blocked here.
    """
    if new == ZERO:
        return [], None
    if ref == STATE_REF.decode():
        base = old if old != ZERO and _known(store, old) else None
    elif ref.startswith(_PROPOSAL_PREFIX):
        # A new proposal: check its own commits, from where it left the state branch.
        base = old if old != ZERO and _known(store, old) else store.head()
    else:
        return [], None
    report = ranges.validate_range(store, base, new)
    lines = [f"{ref[len('refs/heads/') :]}: {p}" for p in report.problems]
    bad = report.first_bad_commit()
    hint = ranges.repair_hint(bad, ranges.first_parent(store, bad)) if bad is not None else None
    return lines, hint


def run_hook(name: str, args: list[str], stdin: Iterable[str]) -> tuple[int, list[str]]:
    """Run the hook `name` with git's arguments and stdin; return (exit code, lines to print)."""
    if name == "pre-push":
        repo, paths = open_repo(".")
        store = StateStore(repo, paths)
        updates = []
        for line in stdin:
            parts = line.split()
            if len(parts) == 4:
                _local_ref, local_sha, remote_ref, remote_sha = parts
                updates.append((remote_ref, remote_sha, local_sha))
    elif name == "pre-receive":
        store = _server_store()
        updates = []
        for line in stdin:
            parts = line.split()
            if len(parts) == 3:
                old, new, ref = parts
                updates.append((ref, old, new))
    elif name == "update":
        if len(args) != 3:
            return 2, ["gitdag hook update: expected <ref> <old> <new>"]
        store = _server_store()
        updates = [(args[0], args[1], args[2])]
    else:
        return 2, [f"gitdag hook: unknown hook {name!r} (known: pre-push, pre-receive, update)"]
    try:
        problems: list[str] = []
        hints: list[str] = []
        for ref, old, new in updates:
            found, hint = check_update(store, ref, old, new)
            problems += found
            hints += [hint] if hint else []
    finally:
        store.close()
    if problems:
        head = f"gitdag {name}: refusing the push; {len(problems)} problem(s):"
        return 1, [head, *problems, *hints]
    return 0, []
