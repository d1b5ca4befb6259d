"""Every command that prints takes --json: one document on stdout, with the keys docs/cli.md lists.

The documented keys are read from the `<!-- json: CMD... -->` markers of docs/cli.md and the
field table under each, so the docs and the output cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from tests.conftest import REPO_ROOT, Result, git, run_gitdag

DOCS = REPO_ROOT / "docs" / "cli.md"
NO_JSON = {"init", "demo", "hook"}  # init/demo: owned elsewhere; hook: the hidden hook shim


def documented() -> dict[tuple[str, str], list[str]]:
    """(kind, command) -> the keys of its table; kind is json, json-list or json-extra."""
    found: dict[tuple[str, str], list[str]] = {}
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = re.search(r"<!-- (json|json-list|json-extra): ([a-z -]+) -->", line)
        if not match:
            continue
        keys: list[str] = []
        for row in lines[i + 1 :]:
            if not row.startswith("|"):
                break
            cell = row.split("|")[1].strip()
            if cell.startswith("`") and cell.endswith("`"):
                keys.append(cell.strip("`"))
        kind, commands = match.group(1), match.group(2)
        names = ["hooks install"] if commands == "hooks install" else commands.split()
        for name in names:
            found[(kind, name)] = keys
    return found


DOC = documented()


def _json(repo: Path, *args: str, code: int = 0) -> Any:
    r: Result = run_gitdag(repo, *args, "--json")
    assert r.code == code, (args, r.err)
    assert "error" not in r.err, (args, r.err)
    return json.loads(r.out)


def _check(command: str, data: Any) -> None:
    if ("json", command) in DOC:
        assert isinstance(data, dict), command
        assert list(data) == DOC[("json", command)], command
    elif ("json-extra", command) in DOC:
        assert set(DOC[("json-extra", command)]) <= set(data), command
    elif ("json-list", command) in DOC:
        assert isinstance(data, list), command
        for item in data:
            keys = DOC[("json-list", command)]
            assert (list(item) == keys) if keys else isinstance(item, str), command
    else:
        raise AssertionError(f"{command}: no JSON schema in docs/cli.md")


def test_every_printing_command_has_a_json_flag() -> None:
    from gitdag.cli import cli

    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    missing = []
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None
        subs = (
            [(f"{name} {s}", command.commands[s]) for s in command.commands]
            if isinstance(command, click.Group) else [(name, command)]
        )  # fmt: skip
        for full, sub in subs:
            if full in NO_JSON:
                continue
            if not any(p.name == "as_json" for p in sub.params):
                missing.append(full)
            kinds = [k for k in ("json", "json-list", "json-extra") if (k, full) in DOC]
            if not kinds and full != "work":  # work's document is run's (same row)
                missing.append(f"{full} (docs)")
    assert missing == []


def test_every_command_prints_its_documented_json(repo: Path, tmp_path: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    (repo / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\nrunners:\n  ok:\n"
        '    cmd: echo working; printf \'{"status":"success","summary":"ok"}\' '
        '> "$GITDAG_RESULT"\n'
        "roles:\n  planner: ok\n  executor: ok\n  verifier: ok\n"
    )
    git(repo, "add", ".dagain")
    git(repo, "commit", "-q", "-m", "gitdag config")

    added = _json(repo, "add", "a", "--title", "A")
    _check("add", added)
    assert added["transition"]["verb"] == "add" and added["transition"]["nodes"] == ["a"]
    _check("add", _json(repo, "add", "q", "--title", "Q?", "--kind", "checkpoint"))
    _check("add", _json(repo, "add", "b", "--title", "B", "--deps", "a,q"))
    _check("validate", _json(repo, "validate"))
    _check("ready", _json(repo, "ready"))
    _check("graph", _json(repo, "graph"))
    _check("status", _json(repo, "status"))

    ran = _json(repo, "run", code=1)  # q waits for an answer
    _check("run", ran)
    assert ran["exit_code"] == 1 and ran["status"]["needs_human"] == ["q"]
    assert ran["status"]["waiting"] == [{"id": "b", "for": ["dep q: needs_human"]}]
    answered = _json(repo, "answer", "q", "yes")
    _check("answer", answered)
    _check("run", _json(repo, "run"))

    _check("show", _json(repo, "show", "a"))
    _check("logs", _json(repo, "logs", "a"))
    _check("log", _json(repo, "log"))
    _check("log", _json(repo, "log", "a"))

    proposed = _json(repo, "propose", "p", "--add", "c", "--title", "C")
    _check("propose", proposed)
    _check("status", _json(repo, "status"))
    applied = _json(repo, "apply-proposal", "p")
    _check("apply-proposal", applied)
    assert applied["changed"] is True
    again = _json(repo, "apply-proposal", "p")
    assert again["changed"] is False and again["message"] and again["head"] is None

    for command in ("pause", "resume"):
        _check(command, _json(repo, command))
    _check("cancel", _json(repo, "cancel", "c"))
    retried = _json(repo, "retry", "c")
    _check("retry", retried)
    reverted = _json(repo, "revert", retried["head"])
    _check("revert", reverted)
    assert reverted["reverted"] == [retried["head"]]
    _check("reset", _json(repo, "reset", "--to", "dagain/state~2"))
    _check("diff", _json(repo, "diff", "dagain/state~3", "dagain/state"))
    r = run_gitdag(repo, "doctor", "--json")
    assert r.code in (0, 1), r.err
    _check("doctor", json.loads(r.out))
    _check("gc", _json(repo, "gc"))
    _check("hooks install", _json(repo, "hooks", "install"))

    bare = tmp_path / "shared.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    worked = _json(repo, "work", "--remote", "origin", "--idle-exit", "0")
    _check("run", worked)
    assert isinstance(worked["exit_code"], int)


def test_json_errors_stay_one_line_on_stderr(repo: Path) -> None:
    assert run_gitdag(repo, "init").code == 0
    for args in (["show", "nope"], ["cancel", "nope"], ["add", "a b", "--title", "x"]):
        r = run_gitdag(repo, *args, "--json")
        assert r.code == 2 and r.out == "" and r.err.count("\n") == 1, (args, r)


def test_validate_json_reports_problems_with_exit_2(repo: Path) -> None:
    from tests.store.helpers import node_file, state_checkout

    assert run_gitdag(repo, "init").code == 0
    assert run_gitdag(repo, "add", "a", "--title", "A").code == 0
    with state_checkout(repo, "break a by hand") as wt:
        path = node_file(wt, "a")
        path.write_text(path.read_text().replace("deps: []", "deps: [ghost]"))
    r = run_gitdag(repo, "validate", "--json")
    assert r.code == 2, r.err
    data = json.loads(r.out)
    _check("validate", data)
    assert data["ok"] is False and any("ghost" in p for p in data["problems"])
    r = run_gitdag(repo, "validate", "nope-rev", "--json")
    assert r.code == 2 and r.out == "" and "nope-rev" in r.err  # an input error: no document
