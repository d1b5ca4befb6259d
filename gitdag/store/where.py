"""The state branch's name and gitdag's local directory, as plain strings (no imports).

The quick start of `gitdag status` and `ready` (gitdag/readonly.py) needs these before it knows
whether it needs anything else; `layout.py` re-exports the names and builds `RepoPaths` on them.
"""

from __future__ import annotations

import os

STATE_BRANCH = "dagain/state"
STATE_REF = b"refs/heads/" + STATE_BRANCH.encode()
PROPOSAL_BRANCH_PREFIX = "dagain/proposals/"


def local_dir(root: str, git_dir: str, bare: bool) -> str:
    """Return the local directory (`GITDAG_LOCAL_DIR` overrides it).

    `.dagain/local/` of the working tree, or `dagain-local` in a bare repository's git dir.
    """
    override = os.environ.get("GITDAG_LOCAL_DIR")
    if override:
        return override
    if bare:
        return os.path.join(git_dir, "dagain-local")
    return os.path.join(root, ".dagain", "local")
