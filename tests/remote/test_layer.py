"""gitdag/transport/ is a layer of its own: it moves refs and objects and knows no gitdag state.

What it may import is a row of the layer table (docs/architecture.md), which
tests/packaging/test_layers.py checks with every other row.
"""

from __future__ import annotations

from pathlib import Path

import gitdag

ROOT = Path(gitdag.__file__).parent


def test_the_hand_written_protocol_is_gone() -> None:
    for name in ("wire", "upload", "receive", "packs", "transport", "gitpush", "contention"):
        assert not (ROOT / "store" / f"{name}.py").exists(), name
