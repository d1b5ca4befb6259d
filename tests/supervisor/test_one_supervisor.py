"""One supervisor per repository, whatever its local directory; no worker on its own repository."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import git, make_repo, run_gitdag


def test_second_supervisor_with_another_local_dir_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    first = subprocess.Popen(
        [sys.executable, "-m", "gitdag", "run", "--watch", "-q"], cwd=repo,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        lock = repo / ".git" / "dagain-supervisor.lock"
        deadline = time.monotonic() + 60
        second = None
        while time.monotonic() < deadline:
            if lock.exists():
                elsewhere = {"GITDAG_LOCAL_DIR": str(tmp_path / "elsewhere")}
                second = run_gitdag(repo, "run", "--once", env=elsewhere)
                if second.code == 4:
                    break
            time.sleep(0.2)
        assert second is not None and second.code == 4, second
        assert "another supervisor" in second.err
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)


def test_work_remote_pointing_at_its_own_repository_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_gitdag(repo, "init").code == 0
    remotes = {"self": ".", "abs": str(repo), "gitdir": str(repo / ".git"),
               "file": f"file://{repo}"}  # fmt: skip
    for name, url in remotes.items():
        git(repo, "remote", "add", name, url)
    # Four `gitdag work` processes at once (each is refused before it takes any lock).
    with ThreadPoolExecutor(len(remotes)) as pool:
        results = pool.map(
            lambda name: (name, run_gitdag(repo, "work", "--remote", name, "--idle-exit", "0")),
            remotes,
        )
        for name, r in results:
            assert r.code == 2, (name, r.code, r.err)
            assert "this repository itself" in r.err
