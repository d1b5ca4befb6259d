"""Coming from dagain: its `.dagain/config.json` is mapped by `gitdag init` and left untouched,
and runners get dagain's DAGAIN_ARTIFACTS_DIR and DAGAIN_PARENT_NODE_ID."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

from gitdag.dagain_config import map_dagain_config
from tests.conftest import git, make_repo, run_gitdag
from tests.runner.test_agent_presets import standin_bin

# Shaped like dagain's defaultConfig() (src/lib/config.js) with a user's changes: a pool for the
# executor, a runner timeout, promotion on.
DAGAIN = {
    "version": 1,
    "defaults": {
        "retryPolicy": {"maxAttempts": 2},
        "verifyRunner": "shellVerify",
        "mergeRunner": "shellMerge",
    },
    "runners": {
        "shellVerify": {"cmd": 'node "${DAGAIN_SHELL_VERIFIER:-$TASKGRAPH_SHELL_VERIFIER}"'},
        "codex": {"cmd": "codex exec --yolo --skip-git-repo-check -", "timeoutMs": 900000},
        "claude": {
            "cmd": 'claude --dangerously-skip-permissions -p "$(cat {packet})"',
            "env": {"TMPDIR": ".dagain/tmp"},
        },
        "gemini": {"cmd": 'gemini -y -p "$(cat {packet})"'},
    },
    "roles": {
        "main": "codex",
        "planner": "claude",
        "executor": "codex, claude",
        "integrator": "codex",
        "finalVerifier": "codex",
        "researcher": "gemini",
    },
    "supervisor": {
        "workers": 3,
        "idleSleepMs": 2000,
        "runnerPool": {
            "mode": "promotion",
            "promoteOn": ["timeout", "spawn_error"],
            "promoteAfterAttempts": 3,
        },
        "worktrees": {"mode": "off"},
    },
}


def dagain_repo(tmp_path: Path, config: dict[str, object] = DAGAIN) -> Path:
    text = json.dumps(config, indent=2) + "\n"
    repo = make_repo(tmp_path / "repo", {"README.md": "# p\n", ".dagain/config.json": text})
    (repo / ".dagain" / "state.sqlite").write_bytes(b"SQLite format 3\x00")  # dagain's, untracked
    return repo


def test_init_maps_a_dagain_config_and_prints_the_mapping(tmp_path: Path) -> None:
    repo = dagain_repo(tmp_path)
    before = (repo / ".dagain" / "config.json").read_bytes()
    res = run_gitdag(repo, "init", "--goal", "g", env={"PATH": "/usr/bin:/bin"})
    assert res.code == 0, res.err
    assert (repo / ".dagain" / "config.json").read_bytes() == before
    assert (repo / ".dagain" / "state.sqlite").read_bytes() == b"SQLite format 3\x00"
    assert git(repo, "status", "--porcelain", ".dagain/config.json") == ""
    cfg = YAML(typ="safe").load((repo / ".dagain" / "config.yaml").read_text())
    assert cfg["roles"] == {
        "planner": "claude",
        "executor": ["codex", "claude"],
        "verifier": "codex",
    }
    assert cfg["runners"]["codex"] == {
        "cmd": "codex exec --yolo --skip-git-repo-check -",
        "timeout_s": 900,
    }
    assert cfg["runners"]["claude"]["env"] == {"TMPDIR": ".dagain/tmp"}
    assert "shellVerify" not in cfg["runners"]
    assert cfg["pool"]["promote_on"] == ["timeout", "spawn_error"]
    assert cfg["pool"]["promote_after_attempts"] == 3 and cfg["defaults"]["workers"] == 3
    out = res.out
    assert "found dagain's .dagain/config.json" in out
    assert "runners: codex, claude, gemini" in out
    assert "verifier = codex (from main)" in out
    for missing in (
        "roles.integrator",
        "roles.finalVerifier",
        "roles.researcher",
        "runners.shellVerify",
        "supervisor.idleSleepMs",
        "defaults.verifyRunner",
    ):
        assert missing in out, missing
    assert "--dangerously-skip-permissions" in out  # the root warning
    assert len(out.splitlines()) <= 12
    graph = git(repo, "show", "dagain/state:graph.yaml")
    assert "max_attempts: 2" in graph  # retryPolicy.maxAttempts went to the graph's defaults


def test_a_mapped_dagain_runner_runs(tmp_path: Path) -> None:
    repo = dagain_repo(tmp_path)
    bin_dir = standin_bin(tmp_path / "bin", ["codex"])
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert run_gitdag(repo, "init", "--runner", "codex", env=env).code == 0
    assert run_gitdag(repo, "add", "t1", "--title", "Write it", env=env).code == 0
    res = run_gitdag(repo, "run", "--quiet", env=env)
    assert res.code == 0, res.out + res.err
    assert git(repo, "show", "dagain/integration:t1.codex.txt") == "made by codex\n"


def test_mapping_is_total_on_odd_input() -> None:
    odd = {
        "runners": {"a": "not a mapping", "b": {"cmd": ""}},
        "roles": {"executor": ["a"]},
        "supervisor": {"workers": "many", "runnerPool": {"mode": "off"}},
        "extra": 1,
    }
    mapping = map_dagain_config(odd)
    assert mapping.runners == {} and mapping.roles == {}
    assert any("runners.a" in s for s in mapping.skipped)
    assert any("roles.executor: a" in s for s in mapping.skipped)
    assert "extra" in mapping.skipped and mapping.warnings  # mode off is explained


def test_runners_get_dagain_artifacts_dir_and_parent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init", "--runner", "scripted", "--backoff", "0").code == 0
    script = tmp_path / "runner.sh"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$DAGAIN_PARENT_NODE_ID|$GITDAG_ATTEMPT|$DAGAIN_ARTIFACTS_DIR" >> '
        '"$DAGAIN_ARTIFACTS_DIR/seen"\n'
        'if [ "$GITDAG_ATTEMPT" = 1 ]; then echo \'{"status": "fail"}\' > "$GITDAG_RESULT"; '
        "exit 0; fi\n"
        'cp "$DAGAIN_ARTIFACTS_DIR/seen" seen.txt\n'
        'echo \'{"status": "success"}\' > "$GITDAG_RESULT"\n'
    )
    cfg = repo / ".dagain" / "config.yaml"
    cfg.write_text(
        f"schema_version: 1\nrunners:\n  sh:\n    cmd: sh {script}\n"
        "roles: {planner: sh, executor: sh, verifier: sh}\n"
    )
    assert (
        run_gitdag(repo, "add", "p", "--title", "Parent", "--kind", "command", "--run", "true").code
        == 0
    )
    assert run_gitdag(repo, "add", "c", "--title", "Child", "--parent", "p").code == 0
    res = run_gitdag(repo, "run", "--quiet")
    assert res.code == 0, res.out + res.err
    seen = git(repo, "show", "dagain/integration:seen.txt").splitlines()
    artifacts = repo / ".dagain" / "local" / "artifacts" / "c"
    assert seen == [f"p|1|{artifacts}", f"p|2|{artifacts}"]  # kept across the two attempts


def test_a_broken_dagain_config_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "# p\n", ".dagain/config.json": "{oops"})
    res = run_gitdag(repo, "init")
    assert res.code == 2 and ".dagain/config.json: not readable as JSON" in res.err, res.err
    assert sorted(p.name for p in (repo / ".dagain").iterdir()) == ["config.json"]
    assert not git(repo, "for-each-ref", "refs/heads/dagain/")
