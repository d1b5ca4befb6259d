"""Fixtures for `gitdag ui`: the real CLI serving a real repository, one real browser per module.

The browser is the distribution's Chromium driven by Playwright (never a browser Playwright
downloads). Without it the tests skip on a developer's machine, and fail under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GIT_ENV, REPO_ROOT

CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if path is None or sync_playwright is None:
        what = "chromium" if path is None else "playwright"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing: .ci/run installs it; the ui tests must run in CI")
        pytest.skip(f"{what} is not installed (apt-get install chromium; pip install playwright)")
    with sync_playwright() as play:
        launched = play.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $GITDAG_TEST_ARTIFACTS, or a temporary directory (printed)."""
    where = os.environ.get("GITDAG_TEST_ARTIFACTS")
    folder = Path(where) if where else Path(tempfile.mkdtemp(prefix="gitdag-ui-artifacts-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ngitdag ui test artifacts: {folder}")
    return folder


def sealed_env(home: Path) -> dict[str, str]:
    """The environment of a subprocess that reads nothing of the machine's git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITDAG_"))}
    env.update(GIT_ENV)
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"))
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@dataclass
class Served:
    """A running `gitdag ui`: its base URL, token and process."""

    url: str
    token: str
    proc: subprocess.Popen[str]

    @property
    def page_url(self) -> str:
        return f"{self.url}#token={self.token}"


def serve(root: Path, env: dict[str, str] | None = None, host: str | None = None,
          args: tuple[str, ...] = ()) -> Served:  # fmt: skip
    """Start the real `gitdag ui --port 0 [ARGS]` in `root` and wait for the URL it prints."""
    where = ["--host", host] if host else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "ui", "--port", "0", *where, *args],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"(http://[^#\s]+)#token=(\S+)", line)
    if found is None:
        proc.kill()
        raise AssertionError(
            f"gitdag ui printed {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
        )
    return Served(found.group(1), found.group(2), proc)


def stop(served: Served) -> None:
    served.proc.terminate()
    try:
        served.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo repository after `gitdag demo` (built once per module)."""
    base = tmp_path_factory.mktemp("uidemo")
    root = base / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "gitdag", "demo", "--dir", str(root), "-q"],
        env=sealed_env(base / "home"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return root


def wait_graph(page: Any) -> None:
    page.wait_for_function(
        "window.gitdag && window.gitdag.firstPaint && window.gitdag.log.length", timeout=15000
    )


def listed(page: Any) -> dict[str, str]:
    """The node list as the page shows it: id -> status."""
    items = page.evaluate(
        "[...document.querySelectorAll('#nodes li[data-id]')]"
        ".map(l => [l.dataset.id, l.dataset.status])"
    )
    return dict(items)
