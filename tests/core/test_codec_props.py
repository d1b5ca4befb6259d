"""Property tests of the canonical YAML codec: the round trip is the identity, output is canonical,
and the fast reader agrees with ruamel on everything it accepts."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gitdag.core import codec, fastload
from gitdag.core.model import GraphFile, Node
from tests.strategies import NASTY, graph_files, nodes, texts

_ruamel = YAML(typ="safe", pure=False)


def _ruamel_load(text: str) -> object:
    return _ruamel.load(text)


def _norm(value: object) -> object:
    """ruamel gives timestamps a 'Z' tzinfo, the fast reader dt.UTC: same instant, same value."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dt.datetime):
        return ("ts", value.astimezone(dt.UTC))
    return (type(value).__name__, value)


@given(nodes())
def test_node_round_trip_is_identity(node: Node) -> None:
    text = codec.dump(node)
    assert codec.load_node(text) == node
    assert codec.dump(codec.load_node(text)) == text  # canonical: a second dump is byte-identical


@given(nodes())
def test_full_yaml_parser_reads_the_same_node(node: Node) -> None:
    # The emitted text is real YAML: ruamel alone (no fast path) reads back the same record.
    text = codec.dump(node)
    data = _ruamel_load(text)
    assert isinstance(data, dict)
    assert Node.model_validate(data) == node


@given(nodes())
def test_fast_reader_accepts_what_dump_writes_and_agrees_with_ruamel(node: Node) -> None:
    text = codec.dump(node)
    fast = fastload.load(text)
    long_key = any(len(codec._scalar(k)) > 1000 for k in node.outputs)
    if long_key or "\\U" in text:
        # The explicit `? key` form and 8-digit escapes (non-printable astral characters, which
        # JSON cannot spell) are left to ruamel; the round-trip tests cover them.
        return
    assert fast is not None, text
    assert _norm(fast) == _norm(_ruamel_load(text))


@given(graph_files)
def test_graph_file_round_trip(graph_file: GraphFile) -> None:
    text = codec.dump(graph_file)
    assert codec.load_graph(text) == graph_file
    assert text.startswith("schema_version: 1\n")


@given(nodes(), st.data())
def test_fast_reader_never_disagrees_on_edited_text(node: Node, data: st.DataObject) -> None:
    """Hand edits (a line replaced, duplicated, indented, dropped): the fast reader either declines
    or returns exactly what ruamel returns; it never invents a different value."""
    lines = codec.dump(node).split("\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    edit = data.draw(st.sampled_from(["replace", "dup", "indent", "dedent", "drop", "append"]))
    if edit == "replace":
        lines[i] = data.draw(st.one_of(st.sampled_from(NASTY), texts)).replace("\n", " ")
    elif edit == "dup":
        lines.insert(i, lines[i])
    elif edit == "indent":
        lines[i] = "  " + lines[i]
    elif edit == "dedent":
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
    elif edit == "drop":
        del lines[i]
    else:
        key = lines[i].split(":", 1)[0].strip() or "x"
        lines[i] = f"{key}: {data.draw(st.sampled_from(NASTY))!s}".replace("\n", " ")
    text = "\n".join(lines)
    fast = fastload.load(text)
    if fast is None:
        return
    try:
        slow = _ruamel_load(text)
    except Exception as exc:  # pragma: no cover - a failure message worth reading
        pytest.fail(f"fast reader accepted text ruamel rejects ({exc!r}):\n{text}")
    assert _norm(fast) == _norm(slow), text


@pytest.mark.parametrize("value", NASTY)
def test_each_nasty_string_survives_every_string_field(value: str) -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    node = Node(
        id="n1", title=value, description=value, run=value, acceptance=(value, value),
        outputs={value[:500]: value, "summary": value}, created_at=now, updated_at=now,
    )  # fmt: skip
    text = codec.dump(node)
    assert codec.load_node(text) == node
    assert Node.model_validate(_ruamel_load(text)) == node


def test_dump_is_canonical_text() -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    node = Node(id="a", title="Fix the parser", description="line one\nline two\n", deps=("b",),
                created_at=now, updated_at=now)  # fmt: skip
    text = codec.dump(node)
    assert text.startswith("schema_version: 1\nid: a\ntitle: Fix the parser\n")
    assert "description: |\n  line one\n  line two\n" in text
    assert "deps:\n  - b\n" in text
    assert "after: []\n" in text and "claim: null\n" in text and "outputs: {}\n" in text
    assert "created_at: 2025-01-02T03:04:05Z\n" in text
    assert "\r" not in text and text.endswith("\n")


def test_timestamps_are_utc() -> None:
    eastern = dt.timezone(dt.timedelta(hours=-5))
    t = dt.datetime(1970, 3, 1, 10, 0, 0, 250000, tzinfo=eastern)
    node = Node(id="a", title="t", created_at=t, updated_at=t)
    text = codec.dump(node)
    assert "created_at: 1970-03-01T15:00:00.250000Z\n" in text
    assert codec.load_node(text).created_at == t


@pytest.mark.parametrize(
    "stamp",
    ["0005-03-01T10:00:00Z", "1969-12-31T23:59:59Z", "9000-01-01T00:00:00Z",
     "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "2020-01-01T23:59:60Z",
     "10000-01-01T00:00:00Z", "2020-02-30T00:00:00Z", "2020-01-01", "1700000000"],
)  # fmt: skip
def test_timestamps_outside_the_calendar_gitdag_uses_are_refused(stamp: str) -> None:
    text = f"schema_version: 1\nid: a\ntitle: t\ncreated_at: {stamp}\nupdated_at: {stamp}\n"
    with pytest.raises(codec.DecodeError, match=r"created_at|malformed YAML"):
        codec.load_node(text)


def test_very_long_output_key_uses_explicit_key_form() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    key = "\x01" * 500  # 3000 characters once escaped: over YAML's 1024 limit for simple keys
    node = Node(id="a", title="t", outputs={key: "v"}, created_at=now, updated_at=now)
    text = codec.dump(node)
    assert "? " in text
    assert codec.load_node(text) == node


def test_deep_nesting_is_refused_by_both_readers() -> None:
    def nested(levels: int) -> str:
        opening = "".join("  " * i + "a:\n" for i in range(levels))
        return "schema_version: 1\n" + opening + "  " * levels + "b: 1\n"

    deep = nested(40)
    assert fastload.load(deep) is None  # past fastload.MAX_INDENT: left to the full parser
    with pytest.raises(codec.DecodeError, match="nesting is deeper than 32 levels"):
        codec.load_mapping(deep)
    shallow = nested(10)
    assert fastload.load(shallow) == codec.load_mapping(shallow) != {}


_SOUP = ["a", "b", "key", "- ", "  ", ":", ": ", '"x"', '"a: b"', "|", "|-", "|+", "null", "1",
         "1.5", "-", "#", "{}", "[]", "2025-01-01T00:00:00Z", "yes", "x y", "'q'", "&a", "*a",
         "? ", '"\\u00e9"', '"\\ud800"', "\t", "  - ", "k: |", "    "]  # fmt: skip


@given(st.lists(st.lists(st.sampled_from(_SOUP), max_size=6).map("".join), min_size=1, max_size=8))
def test_fast_reader_never_disagrees_on_line_soup(lines: list[str]) -> None:
    """YAML-ish lines from fragments: whatever the fast reader accepts, ruamel reads the same."""
    text = "\n".join(lines) + "\n"
    fast = fastload.load(text)
    if fast is not None:
        assert _norm(fast) == _norm(_ruamel_load(text)), text
