"""Node ids: validation and the shard they live in."""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha1
else:
    # The interpreter's own SHA-1 (same digests): hashlib loads OpenSSL, ~3 ms of a quick
    # `gitdag show` (gitdag/readonly.py), which needs only the shard of one id.
    try:
        from _sha1 import sha1
    except ImportError:  # a build without it
        from hashlib import sha1

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_ID_LENGTH = 64


def id_problem(value: object) -> str | None:
    """Return why `value` is not a valid node id, or None when it is valid.

    Args:
      value: anything; only a string can be an id.
    """
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long (at most {MAX_ID_LENGTH})"
    if ".." in value:
        return "must not contain '..'"
    # Ids name branches (dagain/work/<id>): git check-ref-format refuses these components.
    if value.endswith(".lock"):
        return "must not end with '.lock' (git refuses such a ref name)"
    if value.endswith("."):
        return "must not end with '.' (git refuses such a ref name)"
    if not ID_PATTERN.match(value):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"{shown!r} must match {ID_PATTERN.pattern}"
    return None


def is_valid_id(value: object) -> bool:
    """Tell whether `value` is a valid node id."""
    return id_problem(value) is None


def shard(node_id: str) -> str:
    """Return the two-hex-digit shard of a node id: the first byte of sha1(id)."""
    return sha1(node_id.encode("utf-8"), usedforsecurity=False).hexdigest()[:2]


def node_path(node_id: str) -> str:
    """Return the path of a node's file inside the state tree."""
    return f"nodes/{shard(node_id)}/{node_id}.yaml"
