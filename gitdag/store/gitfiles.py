"""A repository's place, config and refs read from its files, without dulwich (a quick start).

A warm `gitdag status` or `ready` needs one ref's value and a cache file; opening the repository
with dulwich (its import, discovery, config, the refs container) costs more than the rest of the
command (issue 18 part 5). These functions read the plain cases as dulwich does
(`Repo.discover`, `Repo.__init__`, `DiskRefsContainer`) and answer None for anything else: a
bare repository, a `.git` file that is not a linked worktree, a config with includes,
extensions, `core.worktree` or a `dagain` section, a symbolic or malformed ref, a packed-refs
line they do not parse, git's location variables. The caller then opens the repository with
dulwich, which reads it (or says what is wrong with it) as always.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs a quick start a few ms; mypy reads the block
if TYPE_CHECKING:
    from dulwich.object_store import DiskObjectStore

# Variables that move where git looks. dulwich's discovery ignores them and git's does not: a
# quick answer would have to pick one.
_GIT_ENV = (
    "GIT_DIR",
    "GIT_COMMON_DIR",
    "GIT_WORK_TREE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)
# Config that changes where the repository is, which refs back end it has, which remote holds
# the graph (`branch.dagain/state.remote`, graph_remote.py) or what the file says (includes,
# escapes): any of these words anywhere, in any case, and dulwich reads the config.
_NOT_PLAIN_CONFIG = (b"dagain", b"include", b"extensions", b"worktree", b"\\")
_BAD_REF_CHARS = frozenset(b"\177 ~^:?*[")
_HEX = frozenset(b"0123456789abcdef")


def locate(start: str = ".") -> tuple[str, str] | None:
    """Return (main working tree, common git dir), resolved, as `store.repo.open_repo` would.

    None for a bare repository, a `.git` file that is not a linked worktree of a main working
    tree, a config that is not plain (`plain_config`), or git's location variables set.
    """
    if any(os.environ.get(name) for name in _GIT_ENV):
        return None
    path = os.path.realpath(start)
    while True:
        hidden = os.path.join(path, ".git")
        if os.path.isfile(hidden):
            found = _linked(path, hidden)
            break
        if os.path.isdir(os.path.join(hidden, "objects")):
            # A main working tree; a `commondir` file here would make it something else.
            found = None if os.path.exists(os.path.join(hidden, "commondir")) else (
                path, os.path.realpath(hidden))  # fmt: skip
            break
        if os.path.isdir(os.path.join(path, "objects")) and os.path.isdir(
            os.path.join(path, "refs")
        ):
            return None  # dulwich takes this for a bare repository
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    if found is None or not plain_config(found[1]):
        return None
    return found


def state_head(start: str = ".") -> tuple[str, str, str, str] | None:
    """(work tree root, git dir, `.dagain/local`, head of dagain/state) read from the files.

    None where the quick start does not read the repository (`locate`) or the branch is absent.
    """
    from gitdag.store.where import STATE_REF, local_dir

    found = locate(start)
    if found is None:
        return None
    root, git_dir = found
    head = read_ref(git_dir, STATE_REF.decode())
    if head is None:
        return None
    return root, git_dir, local_dir(root, git_dir, bare=False), head


def _linked(path: str, hidden: str) -> tuple[str, str] | None:
    # A linked worktree: `.git` says `gitdir: <main>/.git/worktrees/<name>`, whose `commondir`
    # names the main `.git`; gitdag's state belongs to the main working tree (open_repo).
    try:
        with open(hidden, "rb") as fh:
            text = fh.read()
        if not text.startswith(b"gitdir: "):
            return None
        control = os.path.join(path, text[len(b"gitdir: ") :].rstrip(b"\r\n").decode("utf-8"))
        with open(os.path.join(control, "commondir"), "rb") as fh:
            common_rel = fh.read().rstrip(b"\r\n").decode("utf-8")
    except (OSError, UnicodeError):
        return None  # no commondir: a submodule or a separate git dir, not a linked worktree
    common = os.path.realpath(os.path.join(control, common_rel))
    if os.path.realpath(control) == common:
        return None
    root = os.path.dirname(common)
    main = os.path.join(root, ".git")
    if os.path.realpath(main) != common or not os.path.isdir(os.path.join(main, "objects")):
        return None  # open_repo reopens `<common>/..`: only a `.git` there is plain
    if os.path.isfile(os.path.join(main, "commondir")):
        return None
    return root, common


def plain_config(git_dir: str) -> bool:
    """Tell whether `<git_dir>/config` says nothing a quick reader would have to act on.

    Plain: no include, extension, `core.worktree`, `dagain` section or backslash escape, a
    repository format version of 0 or 1, and every line a comment, a section header or a key.
    """
    try:
        with open(os.path.join(git_dir, "config"), "rb") as fh:
            text = fh.read().lower()
    except FileNotFoundError:
        return True  # dulwich reads a missing config as an empty one
    except OSError:
        return False
    if any(word in text for word in _NOT_PLAIN_CONFIG):
        return False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[:1] in (b"#", b";"):
            continue
        if line[:1] == b"[":
            if b"]" not in line:
                return False
            continue
        if not line[:1].isalpha():
            return False
        if line.startswith(b"repositoryformatversion"):
            _, equals, value = line.partition(b"=")
            if not equals or value.strip() not in (b"0", b"1"):
                return False
    return True


def read_ref(git_dir: str, name: str) -> str | None:
    """Return the commit (hex) a branch ref names: its loose file, else packed-refs.

    None when the ref is missing, symbolic, not a lowercase 40-hex sha, or packed-refs is not
    plain (`packed_refs`): dulwich then reads it.
    """
    try:
        with open(os.path.join(git_dir, *name.split("/")), "rb") as fh:
            if fh.read(5) == b"ref: ":
                return None
            fh.seek(0)
            line = fh.readline().rstrip(b"\r\n")
    except (OSError, UnicodeError):
        line = b""  # dulwich reads what it cannot open as absent: packed-refs decides
    if line:
        return _sha(line)
    packed = packed_refs(git_dir)
    return None if packed is None else packed.get(name)


def packed_refs(git_dir: str) -> dict[str, str] | None:
    """Return packed-refs as {name: sha}, {} when there is none; None when not plain.

    Plain: the `# pack-refs with: peeled ...` header (or none), then lines `<sha> <name>` each
    optionally followed by a peeled `^<sha>` line, every sha lowercase hex and every name a
    valid ref name: what dulwich reads without raising.
    """
    try:
        with open(os.path.join(git_dir, "packed-refs"), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    lines = data.split(b"\n")
    if not data or lines[-1] != b"":
        return None  # dulwich cannot read an empty file; a last line without `\n`: not plain
    lines.pop()
    peeled = lines[0].rstrip().startswith(b"# pack-refs") and b" peeled" in lines[0]
    refs: dict[str, str] = {}
    after_ref = False
    for line in lines[1:] if peeled else lines:
        if line.startswith(b"#"):
            continue
        if line.startswith(b"^"):
            if not (peeled and after_ref and _sha(line[1:]) is not None):
                return None
            after_ref = False
            continue
        sha, space, ref = line.partition(b" ")
        value = _sha(sha)
        if not space or value is None or not check_ref_format(ref):
            return None
        refs[ref.decode()] = value
        after_ref = True
    return refs


def has_refs_under(git_dir: str, prefix: str) -> bool | None:
    """Tell whether any ref's name starts with `prefix` (ending in `/`); None when unsure."""
    directory = os.path.join(git_dir, *prefix.strip("/").split("/"))
    try:
        with os.scandir(directory) as entries:
            if any(True for _ in entries):
                return True
    except NotADirectoryError:
        return True  # a file where the directory would be: let dulwich tell
    except FileNotFoundError:
        pass
    except OSError:
        return None
    packed = packed_refs(git_dir)
    if packed is None:
        return None
    return any(name.startswith(prefix) for name in packed)


def check_ref_format(name: bytes) -> bool:
    """git-check-ref-format's rules, as dulwich's `check_ref_format` applies them."""
    if name == b"@" or b"/" not in name or b".." in name or b"@{" in name or b"\\" in name:
        return False
    if any(c < 0o40 or c in _BAD_REF_CHARS for c in name) or name[-1:] in (b"/", b"."):
        return False
    return all(_component_ok(part) for part in name.split(b"/"))


def _component_ok(part: bytes) -> bool:
    return bool(part) and not part.startswith(b".") and not part.endswith(b".lock")


def _sha(raw: bytes) -> str | None:
    return raw.decode() if len(raw) == 40 and _HEX.issuperset(raw) else None


def loose_object(git_dir: str, sha: str) -> tuple[bytes, bytes] | None:
    """Return (type, content) of a loose object; None when it is not loose (a pack holds it).

    A loose object is `objects/xx/yyyy…`, zlib-compressed `<type> <size>NUL<content>`; one whose
    header does not match its content is corrupt, and returns None for dulwich to report.
    """
    import zlib

    try:
        with open(os.path.join(git_dir, "objects", sha[:2], sha[2:]), "rb") as fh:
            raw = zlib.decompress(fh.read())
    except (OSError, zlib.error):
        return None
    header, nul, content = raw.partition(b"\0")
    kind, space, size = header.partition(b" ")
    if not nul or not space or not size.isdigit() or int(size) != len(content):
        return None
    return kind, content


def tree_entry(content: bytes, name: bytes) -> tuple[int, str] | None:
    """Return (mode, sha) of the entry `name` of a tree object's content, or None."""
    pos, end = 0, len(content)
    while pos < end:
        space = content.find(b" ", pos)
        nul = content.find(b"\0", space)
        if space < 0 or nul < 0 or nul + 21 > end:
            return None  # not a tree dulwich would read either: let it say so
        if content[space + 1 : nul] == name:
            return int(content[pos:space], 8), content[nul + 1 : nul + 21].hex()
        pos = nul + 21
    return None


class ObjectReader:
    """A repository's objects by sha.

    Loose ones are read from their files; packed ones through dulwich's object store, opened
    (and imported) on the first object that is not loose.
    """

    def __init__(self, git_dir: str) -> None:
        self._git_dir = git_dir
        self._store: DiskObjectStore | None = None

    @property
    def object_store(self) -> DiskObjectStore:
        """Dulwich's store of the same objects (what `store/history.py` walks)."""
        if self._store is None:
            from dulwich.object_store import DiskObjectStore

            self._store = DiskObjectStore(os.path.join(self._git_dir, "objects"))
        return self._store

    def get(self, sha: str) -> tuple[bytes, bytes] | None:
        """Return (type, content) of an object, or None when there is no such object."""
        found = loose_object(self._git_dir, sha)
        if found is not None:
            return found
        from dulwich.objects import ObjectID

        try:
            number, content = self.object_store.get_raw(ObjectID(sha.encode()))
        except KeyError:
            return None
        kind = _KINDS.get(number)
        return None if kind is None else (kind, content)

    def close(self) -> None:
        """Close dulwich's store if it was opened."""
        if self._store is not None:
            self._store.close()


_KINDS = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


def path_blob(objects: ObjectReader, commit: str, path: str) -> str | None:
    """Return the blob (hex) at `path` in a commit's tree: None when it is not there.

    A commit or tree that is not what the path needs also returns None (a full reader then
    says what is wrong); only a regular file (mode 100644) is a blob here.
    """
    found = objects.get(commit)
    if found is None or found[0] != b"commit" or not found[1].startswith(b"tree "):
        return None
    sha = found[1][5:45].decode()
    *dirs, leaf = path.split("/")
    for part in dirs:
        tree = objects.get(sha)
        entry = tree_entry(tree[1], part.encode()) if tree and tree[0] == b"tree" else None
        if entry is None or entry[0] != 0o40000:
            return None
        sha = entry[1]
    tree = objects.get(sha)
    entry = tree_entry(tree[1], leaf.encode()) if tree and tree[0] == b"tree" else None
    if entry is None or entry[0] != 0o100644:
        return None
    return entry[1]
