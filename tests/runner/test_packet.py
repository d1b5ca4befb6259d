"""Packets: the spec §4 sections, in order, bounded, and the JSON twin carrying the same data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gitdag.core.model import Kind
from gitdag.errors import ConfigError
from gitdag.runner.packet import (
    Decision,
    DepInfo,
    InputValue,
    Resume,
    load_prompt,
    render_json,
    write_packet,
)
from gitdag.runner.packet_markdown import render_markdown
from gitdag.template import template_dir

from .helpers import NOW, make_node, packet_data

SECTIONS = ["Goal", "Node", "Dependencies", "Inputs", "Decisions", "Resume", "How to answer"]


def headings(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.MULTILINE)


def test_sections_in_order_and_content(tmp_path: Path) -> None:
    node = make_node("task-a", description="Change the parser.", acceptance=("parses x",),
                     verify=("pytest -q tests/parser",), ownership=("src/parser/**",))  # fmt: skip
    data = packet_data(
        tmp_path, node, attempt=2,
        deps=[DepInfo("plan-1", "Plan", "done", "planned it",
                      {"api": "parse()", "summary": "planned it"})],
        inputs=[InputValue("plan-1", "api", "parse()"), InputValue("other", "missing", None)],
        decisions=[Decision("task-a", "Which format?", "YAML", "alice", NOW)],
        resume=Resume(error_kind="merge_conflict", summary="conflict in parser.py",
                      paths=("src/parser/core.py",), check_output="", answer="YAML"),
    )  # fmt: skip
    text = render_markdown(data)
    assert headings(text) == SECTIONS
    assert text.startswith("# gitdag packet: executor for node `task-a`, attempt 2\n\nDo the work.")
    node_part = text.split("## Node")[1].split("## Dependencies")[0]
    for needle in ("`task-a`", "Title of task-a", "kind: task", "Change the parser.", "parses x",
                   "`pytest -q tests/parser`", "`src/parser/**`"):  # fmt: skip
        assert needle in node_part
    deps_part = text.split("## Dependencies")[1].split("## Inputs")[0]
    assert "planned it" in deps_part and "`api`: parse()" in deps_part
    assert deps_part.count("planned it") == 1  # the summary is not repeated as an output
    inputs_part = text.split("## Inputs")[1].split("## Decisions")[0]
    assert (
        "`plan-1.api`: parse()" in inputs_part and "`other.missing`: (not available" in inputs_part
    )
    decisions_part = text.split("## Decisions")[1].split("## Resume")[0]
    assert (
        "Which format?" in decisions_part and "YAML" in decisions_part and "alice" in decisions_part
    )
    resume_part = text.split("## Resume")[1].split("## How to answer")[0]
    assert "merge_conflict" in resume_part and "`src/parser/core.py`" in resume_part
    assert "YAML" in resume_part
    answer_part = text.split("## How to answer")[1]
    assert str(tmp_path / "result.json") in answer_part and "<result>" in answer_part


def test_no_resume_on_a_first_attempt_and_empty_sections_say_so(tmp_path: Path) -> None:
    text = render_markdown(packet_data(tmp_path))
    assert headings(text) == [s for s in SECTIONS if s != "Resume"]
    assert "None: this node depends on nothing." in text
    assert "None requested." in text


def test_planner_packet_shows_how_to_add_nodes(tmp_path: Path) -> None:
    plan = make_node("plan-000", kind=Kind.PLAN)
    text = render_markdown(packet_data(tmp_path, plan, role="planner"))
    assert '"addNodes"' in text.split("## How to answer")[1]
    executor = render_markdown(packet_data(tmp_path))
    assert '"addNodes": [' not in executor


def test_check_output_is_fenced(tmp_path: Path) -> None:
    data = packet_data(
        tmp_path,
        attempt=3,
        resume=Resume(
            error_kind="check_failed",
            summary="tests failed",
            check_output="FAILED test_x\n```\nboom",
        ),
    )
    text = render_markdown(data)
    assert "````text\nFAILED test_x\n```\nboom\n````" in text  # a longer fence than the content's


@pytest.mark.parametrize("max_bytes", [4096, 10_000, 30_000])
def test_bounded_and_largest_cut_first(tmp_path: Path, max_bytes: int) -> None:
    node = make_node("task-a", description="D" * 50_000)
    data = packet_data(
        tmp_path, node, max_bytes=max_bytes, goal="G" * 3000,
        deps=[DepInfo("d", "dep", "done", "S" * 20_000)],
    )  # fmt: skip
    text = render_markdown(data)
    assert len(text.encode()) <= max_bytes
    assert headings(text) == [s for s in SECTIONS if s != "Resume"]
    assert "## How to answer" in text and "$GITDAG_RESULT" in text  # never cut
    notes = re.findall(r"\[… cut (\d+) bytes …\]", text)
    assert notes
    # The small sections survive whole; the largest lost the most.
    node_cut = int(re.search(r"## Node.*?\[… cut (\d+) bytes …\]", text, re.S).group(1))  # type: ignore[union-attr]
    assert node_cut > 25_000
    assert "Do the work." in text
    if max_bytes >= 30_000:
        assert "G" * 3000 in text  # the goal was small enough to keep whole
    else:
        assert "G" * 3000 not in text and "GGG" in text


def test_small_packet_is_not_cut(tmp_path: Path) -> None:
    text = render_markdown(packet_data(tmp_path, max_bytes=65536))
    assert "[… cut" not in text


def test_multibyte_text_is_cut_on_a_character_boundary(tmp_path: Path) -> None:
    node = make_node("task-a", description="é😀" * 20_000)
    text = render_markdown(packet_data(tmp_path, node, max_bytes=5000))
    assert len(text.encode("utf-8")) <= 5000
    text.encode("utf-8").decode("utf-8")  # valid UTF-8


def test_json_carries_the_same_data(tmp_path: Path) -> None:
    node = make_node("task-a", description="desc", acceptance=("a1",), verify=("v1",),
                     ownership=("o/**",))  # fmt: skip
    data = packet_data(
        tmp_path, node, attempt=2,
        deps=[DepInfo("d", "dep", "done", "sum", {"k": "v"})],
        inputs=[InputValue("d", "k", "v")],
        decisions=[Decision("task-a", "Q?", "A", "bob", NOW)],
        resume=Resume(error_kind="timeout", summary="too slow", answer="A"),
    )  # fmt: skip
    files = write_packet(tmp_path / "run", data)
    assert files.md.read_text() == render_markdown(data)
    packet = json.loads(files.json.read_text())
    assert packet["goal"] == "Build the thing" and packet["attempt"] == 2
    assert packet["node"]["id"] == "task-a" and packet["node"]["acceptance"] == ["a1"]
    assert packet["node"]["verify"] == ["v1"] and packet["node"]["ownership"] == ["o/**"]
    assert packet["deps"] == [
        {"id": "d", "title": "dep", "status": "done", "summary": "sum", "outputs": {"k": "v"}}
    ]
    assert packet["inputs"] == [{"node": "d", "key": "k", "value": "v"}]
    assert (
        packet["decisions"][0]["answer"] == "A"
        and packet["decisions"][0]["answered_at"] == "2026-01-02T03:04:05Z"
    )
    assert packet["resume"]["error_kind"] == "timeout" and packet["resume"]["answer"] == "A"
    assert packet["resume"]["attempt"] == 1
    assert packet["result_path"] == str(tmp_path / "result.json")


def test_json_is_bounded_too(tmp_path: Path) -> None:
    node = make_node("task-a", description="D" * 60_000)
    data = packet_data(
        tmp_path, node, max_bytes=8192, deps=[DepInfo("d", "dep", "done", "x\n" * 5000)]
    )
    text = render_json(data)
    assert len(text.encode()) <= 8192
    packet = json.loads(text)
    assert packet["node"]["id"] == "task-a"  # short fields are kept whole
    assert "cut" in packet["node"]["description"]


def test_load_prompt_prefers_the_repository_copy(tmp_path: Path) -> None:
    dagain = tmp_path / ".dagain"
    shipped = load_prompt(dagain, "planner")
    assert shipped == (template_dir() / "prompts" / "planner.md").read_text()
    assert "addNodes" in shipped
    (dagain / "prompts").mkdir(parents=True)
    (dagain / "prompts" / "planner.md").write_text("my own planner\n")
    assert load_prompt(dagain, "planner") == "my own planner\n"
    for role in ("executor", "verifier"):
        assert load_prompt(dagain, role).strip()


def test_load_prompt_refuses_unknown_and_unsafe_roles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no packet template"):
        load_prompt(tmp_path, "astrologer")
    with pytest.raises(ConfigError, match="not a valid role name"):
        load_prompt(tmp_path, "../../etc/passwd")


def test_shipped_templates_keep_the_packet_sections_exact(tmp_path: Path) -> None:
    for role in ("planner", "executor", "verifier"):
        text = render_markdown(
            packet_data(tmp_path, template=load_prompt(tmp_path, role), role=role)
        )
        assert headings(text) == [s for s in SECTIONS if s != "Resume"]
