"""`when:` conditions and the `skipped` status through the real CLI (issue 16 part 2)."""

from __future__ import annotations

import json

from tests.conftest import git
from tests.supervisor.conftest import Project


def add(project: Project, *args: str) -> None:
    res = project.gitdag("add", *args)
    assert res.code == 0, res.err


def build_graph(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project.plan({"plan-000": {"result": {"status": "success", "summary": "nothing to plan"}}})
    add(project, "build", "--title", "build", "--kind", "command", "--exports", "MODE",
        "--run", 'echo "MODE=fast" >> "$GITDAG_OUTPUT"')  # fmt: skip
    add(project, "slow", "--title", "slow path", "--kind", "command", "--deps", "build",
        "--when", "build.outputs.MODE == 'slow' and build.status == 'done'",
        "--run", f"touch {tmp_path / 'slow-ran'}")  # fmt: skip
    add(project, "after-slow", "--title", "after", "--kind", "command", "--deps", "slow",
        "--run", f"touch {tmp_path / 'after-ran'}")  # fmt: skip
    add(project, "strict", "--title", "strict", "--kind", "command", "--deps", "slow",
        "--skipped-deps", "skip", "--run", f"touch {tmp_path / 'strict-ran'}")  # fmt: skip


def test_false_condition_skips_and_dependents_run(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    build_graph(project, tmp_path)
    res = project.gitdag("run")
    assert res.code == 0, res.err
    assert not (tmp_path / "slow-ran").exists()
    assert (tmp_path / "after-ran").exists()  # a skipped dep satisfies its dependents
    assert not (tmp_path / "strict-ran").exists()  # unless they say otherwise
    status = json.loads(project.gitdag("status", "--json").out)
    assert status["counts"]["skipped"] == 2 and status["counts"]["done"] == 3
    slow = project.show("slow")
    assert slow["status"] == "skipped" and "is false" in slow["outputs"]["summary"]  # type: ignore[index]
    # The skip rides in build's completing commit: no commit in between where slow was ready.
    log = json.loads(project.gitdag("log", "--json").out)
    carrier = next(e for e in log if "slow" in e["nodes"] and e["verb"] == "complete")
    assert "build" in carrier["nodes"] and "strict" in carrier["nodes"]


def test_skipped_is_legal_on_every_commit_and_shows_everywhere(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    build_graph(project, tmp_path)
    assert project.gitdag("run").code == 0
    root = git(project.root, "rev-list", "--max-parents=0", "dagain/state").strip()
    res = project.gitdag("validate", f"{root}..dagain/state")
    assert res.code == 0, res.out + res.err
    for fmt, word in (("mermaid", ":::skipped"), ("mermaid", "classDef skipped"),
                      ("dot", "whitesmoke"), ("json", '"skipped"')):  # fmt: skip
        out = project.gitdag("graph", "--format", fmt).out
        assert word in out, fmt
    assert "skipped" in project.gitdag("status").out
    diff = project.gitdag("diff", f"{root}", "dagain/state")
    assert diff.code == 0 and "skipped" in diff.out, diff.out
    readme = git(project.root, "show", "dagain/state:README.md")
    assert "skipped" in readme


def test_hand_made_skip_is_named_illegal(project: Project) -> None:
    add(project, "a", "--title", "a", "--kind", "command", "--run", "true")
    res = project.gitdag("validate", "dagain/state~1..dagain/state")
    assert res.code == 0
    # A hand-made commit that flips `a` (no `when:`) to skipped.
    work = project.root.parent / "hand"
    git(project.root, "worktree", "add", "-q", str(work), "dagain/state")
    path = next(work.glob("nodes/*/a.yaml"))
    path.write_text(path.read_text().replace("status: open", "status: skipped"))
    trailers = "Gitdag-Transition: edit\nGitdag-Node: a\nGitdag-Actor: me"
    git(work, "commit", "-qam", f"edit a: open -> skipped\n\n{trailers}")
    sha = git(work, "rev-parse", "HEAD").strip()
    res = project.gitdag("validate", f"{sha}~1..{sha}")
    assert res.code == 2
    assert "node a" in res.out + res.err and "skipped without a `when:`" in res.out + res.err
