"""Fuzz every parsed input: any bytes end in a clean result or a gitdag error, nothing else.

Inputs: node files, graph.yaml, config.yaml, runner result JSON, proposal (`--from-file`) files,
scripted-runner scripts, and the JSON records gitdag reads back from `.dagain/local`
(supervisor.json, pid.json, incident records). The parsers run in-process; a signal (the C
parser's stack overflow) would kill the test run, and tests/reliability/test_deep_nesting.py
checks that case per format in a subprocess.

The budget is fixed (derandomized, a bounded number of examples per target) so CI time is stable.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitdag.config import parse_settings
from gitdag.core import codec, loaders
from gitdag.core.model import GraphFile, Node
from gitdag.core.results import ResultProblem, RunnerResult, parse_result
from gitdag.errors import ConfigError
from gitdag.runner.scripted import ScriptError, load_script

FUZZ = settings(
    # A fixed budget in CI; GITDAG_FUZZ_EXAMPLES=5000 (and GITDAG_FUZZ_RANDOM=1) for a long hunt.
    max_examples=int(os.environ.get("GITDAG_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=not os.environ.get("GITDAG_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
NODE = codec.dump(
    Node(id="a", title="t", description="one\ntwo\n", deps=("b",), created_at=NOW, updated_at=NOW)
)
GRAPH = codec.dump(GraphFile(goal="g", created_at=NOW))
CONFIG = "schema_version: 1\ndefaults:\n  workers: 2\n  timeout_s: 30\nmerge:\n  check: make\n"
RESULT = '{"status": "success", "summary": "ok", "outputs": {"k": "v"}, "addNodes": []}'
PROPOSAL = "- {id: x, title: X, deps: [a]}\n- id: y\n  title: Y\n"

# Pieces that steer the fuzzer into the grammar's corners: flow and block nesting, quotes,
# comments, anchors, tags, block scalars, timestamps at calendar edges, numbers past float range.
SPECIAL = [
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    "- ",
    "? ",
    "'",
    '"',
    "\\",
    "#",
    " #",
    "\n",
    "  ",
    "\t",
    "&a ",
    "*a",
    "!!str ",
    "!!python/object ",
    "|",
    ">-",
    "---",
    "...",
    "%YAML 1.1\n",
    "<<: ",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:60-05:00",
    "2020-02-30",
    "10000-01-01",
    ".nan",
    ".inf",
    "-.inf",
    "1e999",
    "1e-999",
    "0x_",
    "0o9",
    "true",
    "~",
    "null",
    "99999999999999999999999",
    "\x00",
    "\ufeff",
    "\ud800",
    "\u2028",
    "\x85",
    "<<<<<<< x\n",
]


def mutated(seed: str) -> st.SearchStrategy[bytes]:
    """Bytes near `seed`: pieces cut, repeated or spliced in, or plain random bytes."""
    piece = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=8))

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        text = seed
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 12))
            insert = draw(piece) * draw(st.integers(1, 40))
            text = text[:at] + insert + text[at + cut :]
        return text.encode("utf-8", "surrogatepass")

    return st.one_of(build(), st.binary(max_size=300))


@FUZZ
@given(mutated(NODE))
def test_node_files(raw: bytes) -> None:
    try:
        assert isinstance(codec.load_node(raw), Node)
    except codec.DecodeError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(mutated(GRAPH))
def test_graph_yaml(raw: bytes) -> None:
    try:
        assert isinstance(codec.load_graph(raw), GraphFile)
    except codec.DecodeError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(mutated(CONFIG))
def test_config_yaml(raw: bytes) -> None:
    try:
        parse_settings(raw.decode("utf-8", "surrogateescape"))
    except ConfigError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.one_of(mutated(RESULT), mutated(NODE)))
def test_runner_results(raw: bytes) -> None:
    outcome = parse_result(raw)
    assert isinstance(outcome, RunnerResult | ResultProblem)


@FUZZ
@given(mutated(PROPOSAL))
def test_proposal_files(raw: bytes) -> None:
    # What `propose --from-file` and `apply` read: YAML that is a list of node mappings.
    try:
        loaders.load_yaml(raw)
    except loaders.DecodeError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.one_of(mutated(RESULT), mutated('{"pid": 12, "host": "h", "pgid": 12}')))
def test_local_json_records(raw: bytes) -> None:
    try:
        loaders.load_json(raw)
    except loaders.DecodeError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.one_of(mutated(PROPOSAL), mutated(RESULT)), st.sampled_from([".yaml", ".json"]))
def test_scripted_runner_scripts(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"script{suffix}"
    path.write_bytes(raw)
    try:
        assert isinstance(load_script(path), dict)
    except ScriptError as exc:
        assert str(exc)
