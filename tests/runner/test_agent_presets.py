"""Each shipped preset runs a stand-in of its CLI (tests/runner/standins.py) and its result is
applied by a real `gitdag run`; the flags the presets replaced are shown to fail the same way."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Result, git, make_repo, run_gitdag

STANDINS = Path(__file__).with_name("standins.py")


def standin_bin(where: Path, names: list[str]) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for name in names:
        wrapper = where / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDINS}" {name} "$@"\n')
        wrapper.chmod(0o755)
    return where


class Setup:
    def __init__(self, tmp_path: Path, cli: str) -> None:
        self.cli = cli
        self.log = tmp_path / "standin.log"
        bin_dir = standin_bin(tmp_path / "bin", [cli])
        # STANDIN_UID=0: the stand-ins judge as root, as in a CI container, whoever runs this.
        self.env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STANDIN_LOG": str(self.log),
                    "STANDIN_UID": "0"}  # fmt: skip
        self.repo = make_repo(tmp_path / "repo", {"README.md": "# p\n", ".gitignore": "*.pyc\n"})
        res = self.gitdag("init", "--runner", cli, "--backoff", "0", "--max-attempts", "1")
        assert res.code == 0, res.err
        res = self.gitdag("add", "t1", "--title", "Write the file")
        assert res.code == 0, res.err

    def gitdag(self, *args: str) -> Result:
        return run_gitdag(self.repo, *args, env=self.env)

    def failed_run(self) -> dict[str, object]:
        """Run with one attempt allowed; return the error the node failed with."""
        res = self.gitdag("run", "--quiet")
        assert res.code == 1, res.out + res.err
        error = self.node()["error"]
        assert isinstance(error, dict), error
        return error

    def edit_cmd(self, old: str, new: str) -> None:
        path = self.repo / ".dagain" / "config.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def node(self) -> dict[str, object]:
        res = run_gitdag(self.repo, "show", "t1", "--json", env=self.env)
        assert res.code == 0, res.err
        data: dict[str, object] = json.loads(res.out)
        return data

    def how(self) -> list[str]:
        rows = [line.split() for line in self.log.read_text().splitlines()]
        return [how for _, node, how in rows if node == "t1"]  # (a failure escalates)


@pytest.mark.parametrize(
    ("cli", "via"), [("claude", "file"), ("codex", "file"), ("gemini", "file"), ("aider", "stdout")]
)
def test_preset_runs_its_cli_and_the_result_is_applied(tmp_path: Path, cli: str, via: str) -> None:
    s = Setup(tmp_path, cli)
    res = s.gitdag("run", "--quiet")
    assert res.code == 0, res.out + res.err
    node = s.node()
    assert node["status"] == "done", node
    assert f"{cli} wrote t1.{cli}.txt" in json.dumps(node)
    assert git(s.repo, "show", f"dagain/integration:t1.{cli}.txt") == f"made by {cli}\n"
    assert s.how() == [via]
    tree = git(s.repo, "ls-tree", "-r", "--name-only", "dagain/integration").split()
    assert not [p for p in tree if p.startswith(".aider")], tree  # aider's history stays out
    assert git(s.repo, "show", "dagain/integration:.gitignore") == "*.pyc\n"


def test_claude_refuses_the_old_preset_as_root(tmp_path: Path) -> None:
    s = Setup(tmp_path, "claude")
    s.edit_cmd("--permission-mode acceptEdits", "--dangerously-skip-permissions")
    assert "root/sudo" in str(s.failed_run()["summary"])


def test_codex_sandbox_without_the_run_dir_still_reaches_gitdag_through_stdout(
    tmp_path: Path,
) -> None:
    s = Setup(tmp_path, "codex")
    s.edit_cmd(' --add-dir "$GITDAG_RUN_DIR"', "")
    res = s.gitdag("run", "--quiet")
    assert res.code == 0, res.out + res.err
    assert s.node()["status"] == "done"
    assert s.how() == ["stdout"]  # the sandbox refused $GITDAG_RESULT; the final message did it


def test_gemini_in_an_untrusted_folder_cannot_work(tmp_path: Path) -> None:
    s = Setup(tmp_path, "gemini")
    s.edit_cmd('GEMINI_CLI_TRUST_WORKSPACE: "true"', 'OTHER: "x"')
    assert s.failed_run()["kind"] == "missing_result"
    assert s.how() == ["none"]


def test_aider_pretty_streamed_output_breaks_the_result_block(tmp_path: Path) -> None:
    s = Setup(tmp_path, "aider")
    s.edit_cmd("--no-pretty --no-stream ", "")
    assert s.failed_run()["kind"] in ("missing_result", "invalid_result")


def test_unknown_flags_are_refused_like_the_real_cli(tmp_path: Path) -> None:
    s = Setup(tmp_path, "codex")
    s.edit_cmd("--sandbox workspace-write", "--sandbox workspace-write --made-up-flag")
    assert "made-up-flag" in str(s.failed_run()["summary"])
