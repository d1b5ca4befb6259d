"""Shared helpers for runner tests: nodes, packets and launch specs in a tmp dir."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from gitdag.core.model import Kind, Node
from gitdag.runner.launch import LaunchSpec
from gitdag.runner.packet import PacketData, PacketFiles, write_packet

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PY = sys.executable


def make_node(node_id: str = "task-a", **fields: Any) -> Node:
    fields.setdefault("title", f"Title of {node_id}")
    fields.setdefault("kind", Kind.TASK)
    return Node(id=node_id, created_at=NOW, updated_at=NOW, **fields)


def packet_data(tmp: Path, node: Node | None = None, **fields: Any) -> PacketData:
    node = node or make_node()
    fields.setdefault("goal", "Build the thing")
    fields.setdefault("role", "executor")
    fields.setdefault("attempt", 1)
    fields.setdefault("run_id", f"{node.id}.1")
    fields.setdefault("template", "Do the work.")
    fields.setdefault("result_path", tmp / "result.json")
    fields.setdefault("worktree", tmp / "wt")
    return PacketData(node=node, **fields)


def spec(tmp: Path, cmd: str, *, node_id: str = "task-a", attempt: int = 1,
         timeout_s: float = 30, kill_grace_s: float = 1.0, cwd: Path | None = None,
         packet_fields: dict[str, Any] | None = None, **fields: Any) -> LaunchSpec:  # fmt: skip
    run_dir = tmp / "runs" / node_id / str(attempt)
    data = packet_data(tmp, make_node(node_id), attempt=attempt, **(packet_fields or {}))
    packet: PacketFiles = write_packet(run_dir, data)
    work = cwd or tmp / "wt"
    work.mkdir(parents=True, exist_ok=True)
    fields.setdefault("gitdag_env", {
        "GITDAG_WORKTREE": str(work), "GITDAG_REPO": str(tmp / "repo"),
        "GITDAG_STATE_REF": "refs/heads/dagain/state", "GITDAG_TARGET": "dagain/integration",
    })  # fmt: skip
    return LaunchSpec(
        node_id=node_id, attempt=attempt, run_id=f"{node_id}.{attempt}", runner="test",
        cmd=cmd, cwd=work, run_dir=run_dir, packet=packet, result_path=run_dir / "result.json",
        timeout_s=timeout_s, kill_grace_s=kill_grace_s, **fields,
    )  # fmt: skip


def write_script(path: Path, text: str) -> Path:
    """Write an executable shell script and return its path."""
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path
