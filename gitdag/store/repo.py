"""Finding and opening the user's repository with dulwich."""

from __future__ import annotations

import os
from pathlib import Path

from dulwich.config import ConfigFile
from dulwich.errors import NotGitRepository
from dulwich.refs import Ref
from dulwich.repo import Repo

from gitdag.core.refnames import clash
from gitdag.errors import InputError
from gitdag.store.layout import RepoPaths, local_dir_for


class StoreRepo(Repo):
    """A dulwich `Repo` that parses `.git/config` again only when the file changed.

    dulwich asks `get_config()` for `core.sharedRepository` on every ref and reflog write
    (`_get_shared_repository_permissions`), and `get_config()` parses the file afresh each
    time: ~0.27 ms, 5% of a state transition, for a file that does not change during a run.
    Overriding the public `get_config` is the supported seam (dulwich's own in-memory repo
    does the same); one `stat` tells whether the file changed, so an edit made meanwhile (a
    `git config` by the user) is still seen. Files the config includes are not watched.
    """

    _config_seen: tuple[int, int, int] | None = None
    _config_cached: ConfigFile | None = None

    def get_config(self) -> ConfigFile:
        """Return `.git/config`, parsed once per change of the file."""
        try:
            st = os.stat(os.path.join(self.commondir(), "config"))
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            seen = None
        if seen is None or seen != self._config_seen or self._config_cached is None:
            self._config_cached = super().get_config()
            self._config_seen = seen
        return self._config_cached


def open_repo(start: str | os.PathLike[str] = ".") -> tuple[Repo, RepoPaths]:
    """Open the repository containing `start` (a linked worktree opens its main repository).

    Raises:
      InputError: when `start` is not inside a git repository.
    """
    try:
        repo: Repo = StoreRepo.discover(str(start))
    except NotGitRepository:
        raise InputError(f"{Path(start).resolve()}: not inside a git repository") from None
    common = Path(repo.commondir()).resolve()
    _refuse_object_format(repo, common)
    bare = repo.bare
    if bare:
        root = common
    elif Path(repo.controldir()).resolve() != common:
        # A linked worktree: gitdag's local state belongs to the main working tree.
        root = common.parent
        repo = StoreRepo(str(root))
    else:
        root = Path(repo.path).resolve()
    paths = RepoPaths(root=root, git_dir=common, local=local_dir_for(root, common, bare))
    return repo, paths


def _refuse_object_format(repo: Repo, common: Path) -> None:
    # gitdag writes its objects and refs with SHA-1 names; in a sha256 repository that would
    # leave objects git cannot read (fsck errors, a failing gc). Refused before anything is
    # written, by every command alike (docs/input-rules.md).
    try:
        value = repo.get_config().get((b"extensions",), b"objectformat")
    except KeyError:
        return
    fmt = value.decode(errors="replace").lower() if isinstance(value, bytes) else str(value)
    if fmt not in ("", "sha1"):
        raise InputError(
            f"{common}: this repository names objects with {fmt}; gitdag supports SHA-1 "
            "repositories only (nothing was written)"
        )


def branch_clash(repo: Repo, branch: str) -> str | None:
    """Return the existing branch that `branch` cannot live beside (file vs directory), or None."""
    heads = repo.refs.keys(base=Ref(b"refs/heads/"))
    names = [ref.decode(errors="replace") for ref in heads]
    return clash(branch, names)


def identity(repo: Repo) -> tuple[str, str]:
    """Return (name, email) from git config, or a stand-in naming this host."""
    name = email = None
    try:
        config = repo.get_config_stack()
        name = config.get((b"user",), b"name").decode()
        email = config.get((b"user",), b"email").decode()
    except KeyError:
        pass
    name = os.environ.get("GIT_AUTHOR_NAME") or name
    email = os.environ.get("GIT_AUTHOR_EMAIL") or email
    import socket  # a command that reads (`gitdag status`) never asks: not imported for it

    host = socket.gethostname() or "localhost"
    return name or "gitdag", email or f"gitdag@{host}"


def human_actor(repo: Repo) -> str:
    """Return the actor string for a person's command: `Name <email>`."""
    name, email = identity(repo)
    return f"{name} <{email}>"


def supervisor_actor() -> str:
    """Return the actor string of this process as a supervisor: `supervisor@host:pid`."""
    import socket

    return f"supervisor@{socket.gethostname() or 'localhost'}:{os.getpid()}"
