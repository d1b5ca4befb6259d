"""Reading a finished runner's result: `$GITDAG_RESULT`, else the first `<result>` on stdout.

Also merges the `KEY=VALUE` lines of `$GITDAG_OUTPUT` into a result's outputs. Nothing here starts
or stops processes (that is `gitdag.runner.launch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitdag.core.model import ErrorKind
from gitdag.core.outputs import OutputProblem, parse_output_file
from gitdag.core.results import (
    CLOSE_TAG,
    MAX_RESULT_BYTES,
    OPEN_TAG,
    ResultProblem,
    RunnerResult,
    parse_result,
    strip_fence,
)
from gitdag.runner.run_files import STDOUT_FILE, Stream

if TYPE_CHECKING:
    from gitdag.runner.launch import LaunchSpec

ResultSource = Literal["file", "stdout", "none", "exit_code"]


def collect_result(
    spec: LaunchSpec, stdout: Stream | None = None
) -> tuple[RunnerResult | ResultProblem, ResultSource]:
    """Read the result: `$GITDAG_RESULT` if it has content, else the first `<result>` on stdout."""
    path = spec.result_path
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size > MAX_RESULT_BYTES:
        return _oversized(size), "file"
    if size > 0:
        try:
            return parse_result(path.read_bytes()), "file"
        except OSError as exc:
            return ResultProblem(ErrorKind.INVALID_RESULT, f"cannot read the result: {exc}"), "file"
    if stdout is not None and stdout.whole:
        found = _find_block(stdout.data)
    else:
        found = scan_stdout(spec.run_dir / STDOUT_FILE)
    if found is None:
        return ResultProblem(
            ErrorKind.MISSING_RESULT,
            "no result: nothing written to $GITDAG_RESULT and no <result>…</result> on stdout",
        ), "none"
    if isinstance(found, int):
        return _oversized(found), "stdout"
    try:
        text = strip_fence(found.decode("utf-8"))
    except UnicodeDecodeError:
        return parse_result(found), "stdout"
    return parse_result(text), "stdout"


def with_output_file(
    result: RunnerResult | ResultProblem, path: Path
) -> RunnerResult | ResultProblem:
    """Add the `KEY=VALUE` lines of `$GITDAG_OUTPUT` to a result's outputs (the result's own win).

    An unusable output file makes the result invalid: the node declared values it cannot pass on.
    """
    if not isinstance(result, RunnerResult):
        return result
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return result
    except OSError as exc:
        return ResultProblem(ErrorKind.INVALID_RESULT, f"cannot read $GITDAG_OUTPUT: {exc}")
    found = parse_output_file(data)
    if isinstance(found, OutputProblem):
        return ResultProblem(ErrorKind.INVALID_RESULT, found.reason)
    if not found:
        return result
    return result.model_copy(update={"outputs": {**found, **result.outputs}})


def _oversized(size: int) -> ResultProblem:
    return ResultProblem(ErrorKind.INVALID_RESULT, f"result is {size} bytes, over 1 MiB")


def _find_block(data: bytes) -> bytes | int | None:
    start = data.find(OPEN_TAG.encode())
    if start < 0:
        return None
    start += len(OPEN_TAG)
    end = data.find(CLOSE_TAG.encode(), start)
    if end < 0:
        return None
    return data[start:end] if end - start <= MAX_RESULT_BYTES else end - start


def scan_stdout(path: Path, chunk: int = 1 << 20) -> bytes | int | None:
    """Find the first `<result>…</result>` in a file without loading all of it.

    Returns the bytes inside the tags, their size when over 1 MiB (the content is not kept), or
    None when there is no complete block.
    """
    opening, closing = OPEN_TAG.encode(), CLOSE_TAG.encode()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError:
        return None
    with handle:
        buf = b""
        inside = False
        size = 0  # bytes inside the tags that are no longer in buf (the oversized case)
        while True:
            data = handle.read(chunk)
            if not data:
                return None
            buf += data
            if not inside:
                start = buf.find(opening)
                if start < 0:
                    buf = buf[-(len(opening) - 1) :]
                    continue
                inside = True
                buf = buf[start + len(opening) :]
            end = buf.find(closing)
            if end >= 0:
                return buf[:end] if size == 0 else size + end
            if size or len(buf) > MAX_RESULT_BYTES + len(closing):
                keep = len(closing) - 1
                size += len(buf) - keep
                buf = buf[-keep:]
