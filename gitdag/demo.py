"""`gitdag demo`: the whole product on a throwaway repository, in seconds, with no agent needed.

A small real project (a package and its unittest tests), a goal, and the built-in scripted runner
playing planner, executors and verifier: the plan adds four tasks that write code in parallel
worktrees — two of them rewrite the same file, so the merge queue meets a conflict and the retry
resolves it — each merge is checked by running the project's tests on exactly the merged tree,
and a verify node runs the tests on the integrated result.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from gitdag import actions
from gitdag.attempts.progress import Progress
from gitdag.config import load_settings
from gitdag.errors import InputError
from gitdag.store.state import StateStore
from gitdag.supervisor.loop import RunOptions, Supervisor

GOAL = "Add statistics and formatting helpers to textkit, each with tests"

PROJECT = {
    "README.md": "# textkit\n\nSmall text helpers.\n",
    "textkit/__init__.py": '"""textkit: small text helpers."""\n',
    "textkit/words.py": (
        '"""Counting words."""\n\n\n'
        "def count_words(text: str) -> int:\n"
        "    return len(text.split())\n"
    ),
    "textkit/stats.py": '"""Statistics over word lengths."""\n',
    "tests/__init__.py": "",
    "tests/test_words.py": (
        "import unittest\n\nfrom textkit.words import count_words\n\n\n"
        "class WordsTest(unittest.TestCase):\n"
        "    def test_count(self) -> None:\n"
        '        self.assertEqual(count_words("a b  c"), 3)\n'
    ),
}

MEAN = (
    '"""Statistics over word lengths."""\n\n\n'
    "def mean(values: list[float]) -> float:\n"
    "    return sum(values) / len(values)\n"
)
MEDIAN_ALONE = (
    '"""Statistics over word lengths."""\n\n\n'
    "def median(values: list[float]) -> float:\n"
    "    ordered = sorted(values)\n"
    "    mid = len(ordered) // 2\n"
    "    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2\n"
)
MEDIAN_APPENDED = (
    "\n\ndef median(values: list[float]) -> float:\n"
    "    ordered = sorted(values)\n"
    "    mid = len(ordered) // 2\n"
    "    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2\n"
)


def _test(module: str, name: str, call: str, expected: str) -> str:
    return (
        f"import unittest\n\nfrom textkit.{module} import {name}\n\n\n"
        f"class {name.title().replace('_', '')}Test(unittest.TestCase):\n"
        f"    def test_{name}(self) -> None:\n"
        f"        self.assertEqual({call}, {expected})\n"
    )


def script(tests_cmd: str) -> dict[str, object]:
    """The scripted runner's script: what each node does, attempt by attempt."""
    return {
        "plan-000": {
            "summary": "split the goal into four code tasks and a verification",
            "addNodes": [
                {
                    "id": "stats-mean",
                    "title": "Add stats.mean with a test",
                    "acceptance": ["mean([1, 2, 3]) == 2"],
                },
                {
                    "id": "stats-median",
                    "title": "Add stats.median with a test",
                    "acceptance": ["median([3, 1, 2]) == 2"],
                },
                {"id": "fmt-title", "title": "Add fmt.title_case with a test"},
                {"id": "words-unique", "title": "Add words.unique_words with a test"},
                {
                    "id": "verify",
                    "title": "Run the whole test suite on the integrated code",
                    "kind": "verify",
                    "verify": [tests_cmd],
                    "deps": ["stats-mean", "stats-median", "fmt-title", "words-unique"],
                },
            ],
        },
        "stats-mean": {
            "write": {
                "textkit/stats.py": MEAN,
                "tests/test_stats_mean.py": _test("stats", "mean", "mean([1, 2, 3])", "2"),
            },
            "summary": "mean() in textkit/stats.py, with a test",
        },
        # Rewrites the same lines as stats-mean; it finishes later, so its merge conflicts. The
        # retry starts from the new target tip (which has mean) and appends instead.
        "stats-median": [
            {
                "sleep_s": 0.6,
                "write": {
                    "textkit/stats.py": MEDIAN_ALONE,
                    "tests/test_stats_median.py": _test(
                        "stats", "median", "median([3, 1, 2])", "2"
                    ),
                },
                "summary": "median() in textkit/stats.py, with a test",
            },
            {
                "append": {"textkit/stats.py": MEDIAN_APPENDED},
                "write": {
                    "tests/test_stats_median.py": _test("stats", "median", "median([3, 1, 2])", "2")
                },
                "summary": "median() appended after mean(), resolving the conflict",
            },
        ],
        "fmt-title": {
            "write": {
                "textkit/fmt.py": '"""Formatting."""\n\n\ndef title_case(text: str) -> str:\n'
                '    return " ".join(w.capitalize() for w in text.split())\n',
                "tests/test_fmt.py": _test(
                    "fmt", "title_case", 'title_case("hello world")', '"Hello World"'
                ),
            },
            "commit": "fmt: title_case (committed by the agent itself)",
            "summary": "title_case() in textkit/fmt.py; the agent committed it itself",
        },
        "words-unique": {
            "append": {
                "textkit/words.py": "\n\ndef unique_words(text: str) -> set[str]:\n"
                "    return set(text.lower().split())\n"
            },
            "write": {
                "tests/test_unique.py": _test(
                    "words", "unique_words", 'unique_words("A a b")', '{"a", "b"}'
                )
            },
            "summary": "unique_words() in textkit/words.py, left uncommitted for gitdag to commit",
        },
        "verify": {"run": tests_cmd, "summary": "the whole suite passes on the integrated code"},
    }


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=gitdag demo",
            "-c",
            "user.email=demo@gitdag.invalid",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )


def create(where: Path | None) -> Path:
    """Create the demo repository (a fresh directory) and return its path."""
    if where is None:
        root = Path(tempfile.mkdtemp(prefix="gitdag-demo-"))
    else:
        root = where.resolve()
        if root.exists() and any(root.iterdir()):
            raise InputError(f"{root}: exists and is not empty; give a new directory")
        root.mkdir(parents=True, exist_ok=True)
    _git(root, "init", "-q")
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "textkit: words")
    return root


def configure(root: Path) -> None:
    """Write the demo's config (scripted runner everywhere, a merge check) and script."""
    import json

    tests_cmd = f"{shlex.quote(sys.executable)} -m unittest discover -s tests -q"
    (root / ".dagain" / "config.yaml").write_text(
        "schema_version: 1\n"
        "runners:\n  scripted:\n    builtin: scripted\n    script: .dagain/script.json\n"
        "roles:\n  planner: scripted\n  executor: scripted\n  verifier: scripted\n"
        "defaults:\n  workers: 3\n  kill_grace_s: 1\n"
        f"merge:\n  check: {json.dumps(tests_cmd)}\n"
    )
    (root / ".dagain" / "script.json").write_text(json.dumps(script(tests_cmd), indent=2))


def run_demo(where: Path | None, *, quiet: bool = False) -> int:
    """Create, configure and run the demo; print where to look. Returns the run's exit code."""
    root = create(where)
    out = Progress(quiet=quiet, stream=sys.stdout, live=False)
    out.event(f"demo repository: {root}")
    with StateStore.open(root) as store:
        actions.init(
            store,
            GOAL,
            "dagain/integration",
            {"retry": {"max_attempts": 3, "backoff_s": 0, "backoff_max_s": 0}},
        )
        configure(root)
        out.event(f"goal: {GOAL}")
        settings = load_settings(store.paths.dagain)
        code = Supervisor(store, settings, RunOptions(workers=3), out).run()
    if not quiet:
        q = shlex.quote(str(root))
        print(
            f"\nWhat happened is all in git (exit {code}):\n"
            f"  git -C {q} log --oneline dagain/state        # every transition, one commit each\n"
            f"  git -C {q} log --oneline --graph dagain/integration   # the integrated code\n"
            f"  gitdag -C {q} status\n"
            f"  gitdag -C {q} log stats-median               # the conflict, and its retry\n"
            f"  gitdag -C {q} graph --format mermaid\n"
            f"Your own checkout of {root} was never touched: main is where it was.\n"
        )
    return code
