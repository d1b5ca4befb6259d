"""Shell completion through click's real protocol: `_GITDAG_COMPLETE` and the COMP_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_gitdag


@pytest.fixture
def graph(repo: Path) -> Path:
    assert run_gitdag(repo, "init").code == 0
    for nid in ("parser", "parser-tests", "lexer"):
        assert run_gitdag(repo, "add", nid, "--title", nid).code == 0
    return repo


def _complete(cwd: Path, shell: str, words: str, cword: str) -> str:
    r = run_gitdag(cwd, env={"_GITDAG_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
                             "COMP_CWORD": cword})  # fmt: skip
    assert r.code == 0, r.err
    return r.out


def test_bash_completes_node_ids_of_show_logs_cancel_retry_answer_log(graph: Path) -> None:
    for command in ("show", "logs", "cancel", "retry", "answer", "log"):
        out = _complete(graph, "bash", f"gitdag {command} par", "2")
        assert out.splitlines() == ["plain,parser", "plain,parser-tests"], command
    everything = _complete(graph, "bash", "gitdag show ", "2").splitlines()
    assert everything == ["plain,lexer", "plain,parser", "plain,parser-tests"]


def test_zsh_and_fish_complete_node_ids(graph: Path) -> None:
    zsh = _complete(graph, "zsh", "gitdag logs le", "2").splitlines()
    assert zsh[:2] == ["plain", "lexer"]
    fish = _complete(graph, "fish", "gitdag logs le", "le").splitlines()
    assert fish == ["plain,lexer"]


def test_completion_follows_dash_c_and_is_silent_outside_a_repository(
    graph: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _complete(elsewhere, "bash", f"gitdag -C {graph} show lex", "4")
    assert out.splitlines() == ["plain,lexer"]
    assert _complete(elsewhere, "bash", "gitdag show lex", "2").strip() == ""
    # Commands and options complete too (click's own).
    assert "plain,logs" in _complete(graph, "bash", "gitdag lo", "1").splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_documented_source_scripts_are_produced(repo: Path, shell: str) -> None:
    r = run_gitdag(repo, env={"_GITDAG_COMPLETE": f"{shell}_source"})
    assert r.code == 0 and "_GITDAG_COMPLETE" in r.out
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert f"_GITDAG_COMPLETE={shell}_source gitdag" in docs
