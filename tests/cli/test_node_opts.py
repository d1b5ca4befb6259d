"""`gitdag add` and `gitdag propose --add`: one list of node options, the same node built."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gitdag.cli.graph_cmds import add
from gitdag.cli.review_cmds import propose
from tests.conftest import make_repo, run_gitdag

NODE_ARGS = [
    "--title", "Build it", "--kind", "command", "--run", "make", "--deps", "base",
    "--after", "base", "--description", "d\n", "--parent", "base", "--priority", "3",
    "--ownership", "src/**, docs/*", "--labels", "gpu, big", "--acceptance", "c1",
    "--acceptance", "c2", "--verify", "make test", "--worktree", "--role", "r", "--runner", "rr",
]  # fmt: skip


def _node_options(command: click.Command) -> list[tuple[object, ...]]:
    """What the help and the parser see of each node option (--title … --runner)."""
    names = [p.name for p in command.params]
    params = command.params[names.index("title") : names.index("runner") + 1]
    return [
        (p.name, tuple(p.opts), tuple(p.secondary_opts), str(p.type), p.default, p.multiple,
         getattr(p, "help", None), getattr(p, "show_default", None))
        for p in params
    ]  # fmt: skip


def test_both_commands_offer_the_same_node_options_in_the_same_order() -> None:
    assert _node_options(add) == _node_options(propose)
    assert [row[0] for row in _node_options(add)][-2:] == ["role", "runner"]
    # Only `add` insists on --title; `propose` needs it with --add alone (it also takes a file).
    required = {p.name: p.required for p in add.params}
    assert required["title"] and not {p.name: p.required for p in propose.params}["title"]


def _show(repo: Path, node_id: str) -> dict[str, object]:
    res = run_gitdag(repo, "show", node_id, "--json")
    assert res.code == 0, res.err
    data: dict[str, object] = json.loads(res.out)
    return {k: v for k, v in data.items() if not k.endswith("_at")}


def test_add_and_an_applied_proposal_build_the_same_node(tmp_path: Path) -> None:
    direct, proposed = make_repo(tmp_path / "direct"), make_repo(tmp_path / "proposed")
    for repo in (direct, proposed):
        assert run_gitdag(repo, "init").code == 0
        assert run_gitdag(repo, "add", "base", "--title", "Base").code == 0
    assert run_gitdag(direct, "add", "n", *NODE_ARGS).code == 0
    res = run_gitdag(proposed, "propose", "p", "--add", "n", *NODE_ARGS)
    assert res.code == 0, res.err
    assert run_gitdag(proposed, "apply-proposal", "p").code == 0
    node = _show(direct, "n")
    assert node == _show(proposed, "n")
    assert node["labels"] == ["gpu", "big"] and node["acceptance"] == ["c1", "c2"]
    assert node["worktree"] is True and node["run"] == "make" and node["priority"] == 3


def test_missing_title_is_a_usage_error_for_both(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    res = run_gitdag(repo, "add", "n")
    assert res.code == 2 and "Missing option '--title'" in res.err
    res = run_gitdag(repo, "propose", "p", "--add", "n")
    assert res.code == 2 and "--add needs --title" in res.err
