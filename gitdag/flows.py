"""Reading workflow files from disk: gitdag's own format, or a Dagu DAG (`--from dagu`).

The decisions are pure (core/flowfile.py, core/dagu.py, core/apply.py); this module only reads
the file and turns problems into one-line input errors naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

from gitdag.core import dagu, flowfile
from gitdag.core.loaders import DecodeError, load_yaml
from gitdag.errors import InputError

MAX_FLOW_BYTES = 1024 * 1024


def read(path: Path, source: str = "gitdag") -> tuple[flowfile.Compiled, list[str]]:
    """Read and compile a flow file; return it and what a Dagu file had that was not mapped.

    The unmapped features come one line each (none for gitdag's own format).

    Raises:
      InputError: the file is unreadable, not YAML, or not a valid flow (the message names it).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = load_yaml(raw, max_bytes=MAX_FLOW_BYTES)
    except DecodeError as exc:
        raise InputError(f"{path}: {exc}") from None
    default = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_") or "flow"
    unmapped: list[str] = []
    try:
        if source == "dagu":
            data, unmapped = dagu.convert(data, default)
        doc = flowfile.load(data, default)
        return flowfile.compile_flow(doc, default), unmapped
    except (flowfile.FlowError, dagu.DaguError) as exc:
        raise InputError(f"{path}: {exc}") from None
