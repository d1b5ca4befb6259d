"""What may stand in the state branch's tree: the one function every reader of a tree asks.

`validate`, `status`, `run` (full and incremental snapshot loads) and the legality check of a
range (tree deltas) all call `entry_problem` for each entry they meet, so they accept and refuse
exactly the same trees (docs/input-rules.md):

- at the top: `graph.yaml` and `README.md` (regular files), `nodes/` (a directory), and `.github/`
  (anything below it: forge configuration is not gitdag's to judge);
- under `nodes/`: only shard directories named by two lower-case hex digits;
- in a shard: only `<id>.yaml` files, mode 100644 (what gitdag writes: no executable bit, no
  symlink, no submodule), whose id is valid and whose shard is the id's.

The content of a node file (its `id` equal to the file name, its fields) is judged by the parser.
"""

from __future__ import annotations

import re
import stat

from gitdag.core.ids import id_problem, shard
from gitdag.store.layout import GRAPH_FILE, NODES_DIR, README_FILE

FORGE_DIR = ".github"
FILE_MODE = 0o100644
_SHARD = re.compile(r"[0-9a-f]{2}\Z")


def _kind(mode: int) -> str:
    if mode == FILE_MODE:
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if mode & 0o170000 == 0o160000:
        return "submodule entry"
    if stat.S_ISREG(mode):
        return f"file of mode {mode:o}"
    return f"entry of mode {mode:o}"


def entry_problem(path: str, mode: int) -> str | None:
    """Return why the tree entry at `path` may not be in the state tree, or None when it may.

    Args:
      path: the entry's path from the root of the state tree, `/`-separated.
      mode: its git mode (0o100644 file, 0o40000 directory, 0o120000 symlink, 0o160000 gitlink).
    """
    parts = path.split("/")
    kind = _kind(mode)
    if parts[0] == FORGE_DIR:
        return None
    if len(parts) == 1:
        if path in (GRAPH_FILE, README_FILE):
            return None if kind == "file" else f"is a {kind}, expected a regular file (100644)"
        if path == NODES_DIR:
            return None if kind == "directory" else f"is a {kind}, expected a directory"
        return "unexpected entry (the state tree holds graph.yaml, README.md and nodes/)"
    if parts[0] != NODES_DIR:
        return "unexpected entry (the state tree holds graph.yaml, README.md and nodes/)"
    if len(parts) == 2:
        if not _SHARD.match(parts[1]):
            return "unexpected entry (nodes/ holds shard directories nodes/<xx>/)"
        return None if kind == "directory" else f"is a {kind}, expected a shard directory"
    if len(parts) > 3 or not _SHARD.match(parts[1]):
        return "not a node file (expected nodes/<xx>/<id>.yaml)"
    name = parts[2]
    if not name.endswith(".yaml"):
        return "not a node file (expected nodes/<xx>/<id>.yaml)"
    nid = name[: -len(".yaml")]
    problem = id_problem(nid)
    if problem is not None:
        return f"invalid id: {problem}"
    if kind != "file":
        return f"not a regular file (a {kind}; node files are mode 100644)"
    if parts[1] != shard(nid):
        return f"node {nid!r} belongs at {NODES_DIR}/{shard(nid)}/{name}"
    return None
