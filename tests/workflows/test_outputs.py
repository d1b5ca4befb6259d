"""Outputs between nodes through the real CLI (issue 16 part 1)."""

from __future__ import annotations

import json

from tests.supervisor.conftest import Project


def add(project: Project, *args: str) -> None:
    res = project.gitdag("add", *args)
    assert res.code == 0, res.err


def test_command_output_reaches_a_command_and_an_agent_dependent(
    project: Project, tmp_path
) -> None:
    printed = tmp_path / "printed.txt"
    packet = tmp_path / "packet.md"
    project.plan({
        "plan-000": {"result": {"status": "success", "summary": "nothing to plan"}},
        "ship": {"copy_packet": str(packet),
                 "result": {"status": "success", "summary": "shipped"}},
    })  # fmt: skip
    add(project, "build", "--title", "build", "--kind", "command", "--exports", "VERSION",
        "--run", 'echo "VERSION=1.2.3" >> "$GITDAG_OUTPUT"')  # fmt: skip
    add(project, "print", "--title", "print", "--kind", "command", "--deps", "build",
        "--run", f"echo ${{build.outputs.VERSION}} > {printed}")  # fmt: skip
    add(project, "ship", "--title", "ship ${build.outputs.VERSION}", "--kind", "verify",
        "--deps", "build", "--description", "Release ${build.outputs.VERSION}.")  # fmt: skip
    res = project.gitdag("run", "--workers", "2")
    assert res.code == 0, res.err
    assert printed.read_text() == "1.2.3\n"
    text = packet.read_text()
    assert "Release 1.2.3." in text and "build.VERSION" in text
    shown = project.show("build")
    assert shown["outputs"]["VERSION"] == "1.2.3"  # type: ignore[index]


def test_unknown_node_or_key_is_refused_at_add(project: Project) -> None:
    add(project, "build", "--title", "b", "--kind", "command", "--run", "true",
        "--exports", "VERSION")  # fmt: skip
    before = project.gitdag("log", "--json").out
    for args, words in (
        (("--deps", "build", "--run", "echo ${build.outputs.NOPE}"), "exports no 'NOPE'"),
        (("--deps", "build", "--run", "echo ${ghost.outputs.X}"), "unknown node 'ghost'"),
        (("--run", "echo ${build.outputs.VERSION}"), "which it does not wait for"),
        (
            ("--deps", "build", "--run", "true", "--when", "build.outputs.NOPE == '1'"),
            "exports no 'NOPE'",
        ),
        (("--deps", "build", "--run", "true", "--when", "build.status =="), "when:"),
    ):
        res = project.gitdag("add", "use", "--title", "u", "--kind", "command", *args)
        assert res.code == 2, (args, res.out)
        assert words in res.err, res.err
        assert "\n" not in res.err.strip()
    assert project.gitdag("log", "--json").out == before


def test_a_declared_output_left_unset_fails_the_node(project: Project) -> None:
    project.plan({"plan-000": {"result": {"status": "success", "summary": "none"}}})
    add(project, "build", "--title", "b", "--kind", "command", "--run", "true",
        "--exports", "VERSION", "--retry-max", "1")  # fmt: skip
    res = project.gitdag("run")
    assert res.code == 1
    node = project.show("build")
    assert node["status"] == "failed"
    assert "declared output not set: VERSION" in node["error"]["summary"]  # type: ignore[index]


def test_bad_output_file_is_an_invalid_result(project: Project) -> None:
    project.plan({"plan-000": {"result": {"status": "success", "summary": "none"}}})
    add(project, "build", "--title", "b", "--kind", "command", "--retry-max", "1",
        "--run", 'echo "not a pair" >> "$GITDAG_OUTPUT"')  # fmt: skip
    assert project.gitdag("run").code == 1
    node = project.show("build")
    assert node["error"]["kind"] == "invalid_result"  # type: ignore[index]
    assert "not KEY=VALUE" in json.dumps(node["error"])
