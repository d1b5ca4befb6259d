"""The result model: parsing runner output into a RunnerResult or a one-line problem."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitdag.core.edits import new_node
from gitdag.core.model import ErrorKind, Kind, Node, Status
from gitdag.core.results import (
    MAX_RESULT_BYTES,
    ProposedNode,
    ResultProblem,
    RunnerResult,
    extract_result,
    parse_result,
)

ADD = '{"status": "success", "next": {"addNodes": [{"id": "a", "title": "t", %s}]}}'
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def problem(text: str | bytes) -> ResultProblem:
    out = parse_result(text)
    assert isinstance(out, ResultProblem), out
    return out


def ok(text: str | bytes) -> RunnerResult:
    out = parse_result(text)
    assert isinstance(out, RunnerResult), out
    return out


def test_minimal_success() -> None:
    result = ok('{"status": "success"}')
    assert result.status == "success"
    assert result.summary == "" and result.outputs == {} and result.errors == ()
    assert result.next.addNodes == () and result.next.setStatus == ()


def test_full_result_with_dagain_fields_ignored() -> None:
    text = json.dumps(
        {
            "version": 1,
            "runId": "r",
            "nodeId": "n",
            "role": "planner",
            "filesChanged": ["a"],
            "commandsRun": ["ls"],
            "commits": [],
            "confidence": 0.7,
            "status": "success",
            "summary": "planned",
            "outputs": {"k": "v"},
            "next": {
                "addNodes": [
                    {
                        "id": "task-1",
                        "title": "T",
                        "type": "task",
                        "dependsOn": ["x"],
                        "status": "open",
                        "ownership": ["src/**"],
                    }
                ],
                "setStatus": [{"nodeId": "old", "status": "open"}],
            },
            "checkpoint": None,
            "errors": ["none really"],
        }
    )
    result = ok(text)
    added = result.next.addNodes[0]
    assert added.kind is Kind.TASK and added.deps == ("x",) and added.ownership == ("src/**",)
    assert result.next.setStatus[0].id == "old"
    assert result.next.setStatus[0].status is Status.OPEN
    assert result.outputs == {"k": "v"} and result.errors == ("none really",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"status": "maybe"}', "field status: unknown value 'maybe'"),
        ('{\n  "status": "success",\n  "x" 1\n}', "malformed JSON at line 3 col 7"),
        ('{"status": "success", "bogus": 1}', "field bogus: unknown key"),
        ('{"summary": "no status"}', "field status: required field is missing"),
        ("[1, 2]", "result must be a JSON object, not an array"),
        (
            '{"status": "success", "outputs": {"a": 1}}',
            "field outputs.a: expected a string, got a number",
        ),
        (
            '{"status": "success", "next": {"addNodes": {"id": "a"}}}',
            "field next.addNodes: expected a list, got an object",
        ),
        (
            '{"status": "success", "next": {"addNodes": [{"id": "Bad Id", "title": "t"}]}}',
            "field next.addNodes[0].id: invalid id",
        ),
        (
            ADD % '"color": "red"',
            "field next.addNodes[0].color: unknown key",
        ),
        (
            ADD % '"status": "done"',
            "field next.addNodes[0].status: a new node starts open",
        ),
        (
            ADD % '"deps": [], "dependsOn": []',
            "field next.addNodes[0].dependsOn: unknown key",
        ),
        (
            '{"status": "success", "next": {"setStatus": [{"id": "a", "status": "finished"}]}}',
            "field next.setStatus[0].status: unknown value 'finished'",
        ),
        (
            '{"status": "success", "next": {"setStatus": "a"}}',
            "field next.setStatus: expected a list, got a string",
        ),
        ('{"status": "checkpoint"}', "field checkpoint: required when status is checkpoint"),
        ('{"status": "success", "status": "fail"}', "key 'status' given twice"),
        ('{"status": NaN}', "NaN is not a JSON number"),
        ('{"status": "success", "errors": "oops"}', "field errors: expected a list, got a string"),
    ],
)
def test_invalid_results_name_the_field(text: str, expected: str) -> None:
    found = problem(text)
    assert found.kind is ErrorKind.INVALID_RESULT
    assert expected in found.reason
    assert "\n" not in found.reason


def test_empty_result_is_missing() -> None:
    assert problem("").kind is ErrorKind.MISSING_RESULT
    assert problem("  \n").kind is ErrorKind.MISSING_RESULT


def test_oversized_result_is_rejected_before_parsing() -> None:
    text = '{"status": "success", "summary": "' + "x" * MAX_RESULT_BYTES + '"}'
    found = problem(text)
    assert found.kind is ErrorKind.INVALID_RESULT
    assert found.reason == f"result is {len(text)} bytes, over 1 MiB"


def test_not_utf8_and_deep_nesting() -> None:
    assert "not UTF-8" in problem(b'{"status": "success", "summary": "\xff"}').reason
    deep = '{"status": "success", "outputs": ' + "[" * 40 + "]" * 40 + "}"
    assert "nesting" in problem(deep).reason


def test_checkpoint_accepts_dagain_extras() -> None:
    result = ok(
        json.dumps(
            {
                "status": "checkpoint",
                "checkpoint": {
                    "type": "approval",
                    "question": "Proceed?",
                    "context": "It deletes data.",
                    "options": ["yes", "no"],
                    "resumeSignal": "plain text",
                },
            }
        )
    )
    assert result.checkpoint is not None
    assert result.checkpoint.question == "Proceed?\n\nIt deletes data."
    assert result.checkpoint.options == ("yes", "no")


def test_next_null_means_nothing() -> None:
    assert ok('{"status": "fail", "next": null}').next.addNodes == ()


def test_over_100_nodes_is_not_judged_here() -> None:
    nodes = [{"id": f"t-{i}", "title": "t"} for i in range(101)]
    result = ok(json.dumps({"status": "success", "next": {"addNodes": nodes}}))
    assert len(result.next.addNodes) == 101


def test_to_fields_builds_a_node() -> None:
    proposed = ProposedNode.model_validate(
        {
            "id": "task-a",
            "title": "A",
            "type": "verify",
            "dependsOn": ["b"],
            "inputs": [{"node": "b", "key": "k"}],
            "retry": {"max_attempts": 2},
            "priority": 3,
        }
    )
    fields = proposed.to_fields()
    assert "parent" not in fields and "runner" not in fields  # unset optionals are left out
    node = new_node(fields, NOW)
    assert isinstance(node, Node)
    assert node.kind is Kind.VERIFY and node.deps == ("b",) and node.priority == 3
    assert node.retry is not None and node.retry.max_attempts == 2
    assert node.inputs[0].key == "k" and node.status is Status.OPEN


def test_extract_result_first_block_and_fences() -> None:
    out = (
        'thinking...\n<result>\n```json\n{"status": "success"}\n```\n</result>\n'
        '<result>{"status": "fail"}</result>'
    )
    assert extract_result(out) == '{"status": "success"}'
    assert extract_result("no tags here") is None
    assert extract_result("<result>{unterminated") is None
    assert extract_result("</result><result>x</result>") == "x"


# --- round trips --------------------------------------------------------------------------------

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
nodes = st.fixed_dictionaries(
    {"id": ids, "title": text.filter(lambda t: len(t) <= 500)},
    optional={
        "kind": st.sampled_from([k.value for k in Kind]),
        "deps": st.lists(ids, max_size=3),
        "ownership": st.lists(text, max_size=2),
        "priority": st.integers(-5, 5),
    },
)
results = st.fixed_dictionaries(
    {"status": st.sampled_from(["success", "fail"])},
    optional={
        "summary": text,
        "outputs": st.dictionaries(st.text(max_size=10), text, max_size=3),
        "errors": st.lists(text, max_size=3),
        "next": st.fixed_dictionaries(
            {},
            optional={
                "addNodes": st.lists(nodes, max_size=3),
                "setStatus": st.lists(
                    st.fixed_dictionaries(
                        {"id": ids, "status": st.sampled_from([s.value for s in Status])}
                    ),
                    max_size=2,
                ),
            },
        ),
    },
)


@given(results)
def test_round_trip_through_json(data: dict[str, object]) -> None:
    result = ok(json.dumps(data))
    again = ok(result.model_dump_json())
    assert again == result
    assert result.status == data["status"]
    assert result.summary == data.get("summary", "")
    assert dict(result.outputs) == data.get("outputs", {})


@given(results, st.text(max_size=30).filter(lambda s: "<result>" not in s))
def test_round_trip_through_stdout(data: dict[str, object], noise: str) -> None:
    payload = json.dumps(data)
    extracted = extract_result(f"{noise}<result>{payload}</result>{noise}")
    assert extracted is not None
    assert ok(extracted) == ok(payload)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    out = parse_result(raw)
    assert isinstance(out, RunnerResult | ResultProblem)
