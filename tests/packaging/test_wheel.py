"""A non-editable install works: sdist -> wheel -> a fresh venv runs init, add, run and demo.

The sdist is built from a copy of the project's files, the wheel from the *unpacked sdist* (so a
file missing from the sdist shows up as a broken install), both through setuptools' PEP 517 hooks
without build isolation (no network). The wheel goes into a fresh venv without pip; the test
interpreter's site-packages are appended for the dependencies only (a plain `.pth` line, so an
editable gitdag there is not seen), and `gitdag` runs from the venv's own console script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, make_repo

SOURCES = ("gitdag", ".dagain-template", "setup.py", "pyproject.toml", "README.md")
TEMPLATE_FILES = sorted(
    p.relative_to(REPO_ROOT / ".dagain-template").as_posix()
    for p in (REPO_ROOT / ".dagain-template").rglob("*")
    if p.is_file()
)


def _hook(cwd: Path, hook: str, out: Path) -> Path:
    code = f"import setuptools.build_meta as b; print(b.{hook}({str(out)!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


def _copy_sources(dest: Path) -> None:
    for name in SOURCES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel built from the unpacked sdist)."""
    root = tmp_path_factory.mktemp("build")
    src, out = root / "src", root / "dist"
    src.mkdir()
    out.mkdir()
    _copy_sources(src)
    sdist = _hook(src, "build_sdist", out)
    with tarfile.open(sdist) as tar:
        tar.extractall(root / "unpacked", filter="data")
    (unpacked,) = (root / "unpacked").iterdir()
    wheel = _hook(unpacked, "build_wheel", out)
    return sdist, wheel


@pytest.fixture(scope="session")
def venv_bin(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib) / "_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
         "--no-index", str(built[1])],
        cwd=venv, env=_env(venv / "bin"), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(Path(purelib).glob("gitdag-*.dist-info")), proc.stdout  # not "already satisfied"
    return venv / "bin"


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"  # no agent CLI on PATH
    return env


def _gitdag(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "gitdag"), *args], cwd=cwd, env=_env(bin_dir),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_sdist_and_wheel_hold_the_template(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f".dagain-template/{f}" for f in TEMPLATE_FILES} <= names
    assert "setup.py" in names
    with zipfile.ZipFile(wheel) as zf:
        wnames = set(zf.namelist())
    assert {f"gitdag/_template/{f}" for f in TEMPLATE_FILES} <= wnames
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "gitdag").rglob("*.py")}
    assert modules <= wnames, sorted(modules - wnames)


def test_installed_wheel_runs_init_add_run_and_demo(venv_bin: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(venv_bin / "python"), "-c", "import gitdag, sys; print(gitdag.__file__)"],
        env=_env(venv_bin), cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(venv_bin.parent) in where, where  # the installed copy, not the source tree
    repo = make_repo(tmp_path / "repo")
    res = _gitdag(venv_bin, repo, "init", "--goal", "Say hello", "--backoff", "0")
    assert res.returncode == 0, res.stderr
    assert "planner: scripted" in (repo / ".dagain" / "config.yaml").read_text()  # no agent CLI
    assert (repo / ".dagain" / "prompts" / "executor.md").is_file()
    assert (repo / ".dagain" / "ci" / "github-actions.yml").is_file()
    (repo / ".dagain" / "script.yaml").write_text(
        'plan-000: {summary: planned}\nhello:\n  write: {hello.txt: "hi\\n"}\n'
    )
    res = _gitdag(
        venv_bin, repo, "add", "hello", "--title", "Write hello.txt", "--deps", "plan-000"
    )
    assert res.returncode == 0, res.stderr
    res = _gitdag(venv_bin, repo, "run", "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    shown = subprocess.run(
        ["git", "show", "dagain/integration:hello.txt"], cwd=repo, capture_output=True, text=True
    )
    assert shown.stdout == "hi\n"
    res = _gitdag(venv_bin, tmp_path, "demo", "--dir", str(tmp_path / "demo"), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
