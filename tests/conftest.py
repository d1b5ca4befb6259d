"""Shared fixtures: a sealed environment, real git repositories, and ways to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "slow",
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO_ROOT = Path(__file__).resolve().parent.parent

# The files holding the suite's longest tests (20-60 s each: crash rounds, many workers, lost
# races, outages waited out) run first, so that with `-n 2` neither worker ends the run alone
# with one of them while the other is idle (xdist hands out tests in collection order).
LONG_FIRST = (
    "reliability/test_crash_harness.py",
    "remote/test_workers.py",
    "remote/test_lost_races.py",
    "agents/test_loop_duration.py",
    "remote/test_transient.py",
    "remote/test_combined.py",
    "remote/test_race.py",
    "ui/test_ui_remote.py",
    "properties/test_store_machine.py",
    "remote/test_outage.py",
    "remote/test_merge_fetch_outage.py",
    "remote/test_silent.py",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile gitdag's modules once, before any test starts `python -m gitdag`.

    The suite starts gitdag hundreds of times. With PYTHONDONTWRITEBYTECODE set (as on some CI
    machines) and an editable install, no process writes bytecode, so every start compiled
    every module it imported from source again: measured here, 10 min 36 s against 7 min 27 s
    for the whole suite. An installed wheel has its bytecode (pip compiles it); so does this.
    py_compile writes whatever PYTHONDONTWRITEBYTECODE says; xdist workers leave it to the
    controller.
    """
    if hasattr(session.config, "workerinput"):
        return
    import compileall

    package = Path(__file__).resolve().parent.parent / "gitdag"
    compileall.compile_dir(str(package), quiet=1, workers=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files of LONG_FIRST first, in that order; every other test keeps its place."""

    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next((i for i, f in enumerate(LONG_FIRST) if path.endswith("tests/" + f)),
                    len(LONG_FIRST))  # fmt: skip

    items.sort(key=rank)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@pytest.fixture(autouse=True)
def sealed_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real home directory or the machine's git config."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("GIT_", "GITDAG_", "DAGAIN_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run the real git CLI and return its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """Create a real repository with one commit on `main`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "# project\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with one commit, its checkout clean."""
    return make_repo(tmp_path / "repo")


@dataclass
class Result:
    code: int
    out: str
    err: str


# Commands that supervise processes, install signal handlers or stamp their pid on claims run
# in a fresh process, like any test that injects a crash (crash points end the process).
_OWN_PROCESS = {"run", "work", "demo", "ui"}
_ALWAYS_FRESH = os.environ.get("GITDAG_TEST_FRESH_PROCESS") == "1"


def run_gitdag(cwd: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120, input: str | None = None,
               fresh_process: bool = False) -> Result:  # fmt: skip
    """Run the real `gitdag` CLI: in-process through click, or in a fresh process.

    Most commands run in-process (about a quarter of the suite's time was interpreter starts);
    `fresh_process=True`, GITDAG_TEST_FRESH_PROCESS=1, the supervising commands and crash
    injection take a real `python -m gitdag` process.
    """
    crash = env is not None and any(k.startswith("GITDAG_CRASH") for k in env)
    command = next((a for a in args if not a.startswith("-")), "")
    if fresh_process or _ALWAYS_FRESH or crash or command in _OWN_PROCESS or "-C" in args:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        proc = subprocess.run(
            [sys.executable, "-m", "gitdag", *args],
            cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout, input=input,
        )  # fmt: skip
        return Result(proc.returncode, proc.stdout, proc.stderr)
    return _in_process(cwd, args, env, input)


def _in_process(cwd: Path, args: tuple[str, ...], env: dict[str, str] | None,
                input: str | None) -> Result:  # fmt: skip
    import signal

    from click.testing import CliRunner

    from gitdag.cli import cli

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    before = os.getcwd()
    os.chdir(cwd)
    try:
        res = CliRunner().invoke(cli, list(args), input=input, env=env, prog_name="gitdag")
    finally:
        os.chdir(before)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Result(res.exit_code, res.stdout, res.stderr)


@pytest.fixture
def gitdag(repo: Path) -> Iterator[object]:
    """Call the CLI in `repo`: `gitdag("add", "x", "--title", "t")` -> Result."""

    def call(*args: str, **kwargs: object) -> Result:
        return run_gitdag(repo, *args, **kwargs)  # type: ignore[arg-type]

    yield call
