r"""The built-in scripted runner: `python -m gitdag.runner.scripted --script FILE`.

A real runner process like any other (it reads the protocol's environment and writes
`$GITDAG_RESULT`), whose answers come from a small YAML or JSON script instead of an agent: for
demos, and for tests of graphs and of gitdag itself. The format is in `docs/runner-protocol.md`.

```yaml
plan-000:                      # a node id, or an fnmatch pattern ("task-*", "*")
  summary: planned two tasks
  addNodes:
    - {id: task-a, title: Write a}
    - {id: task-b, title: Write b, deps: [task-a]}
task-*:                        # a list: one response per attempt, the last one repeats
  - {status: fail, summary: flaky first try}
  - write: {"{node}.txt": "hello\n"}
    commit: add {node}.txt
```
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gitdag.core import loaders

MAX_SCRIPT_BYTES = 16 * 1024 * 1024
RESULT_KEYS = ("status", "summary", "outputs", "checkpoint", "errors")
ACTION_KEYS = (
    "addNodes", "setStatus", "write", "append", "commit", "sleep_s", "exit_code", "stdout",
    "stderr", "no_result", "raw_result", "run", "result_via", "answered",
)  # fmt: skip
ALLOWED = frozenset(RESULT_KEYS + ACTION_KEYS)
_TOKEN = re.compile(r"\{(answer|node|attempt|run_id)\}")


class ScriptError(Exception):
    """A script that cannot be followed; reported on stderr, exit 2."""


def load_script(path: Path) -> dict[str, Any]:
    """Read a script file (JSON when it ends in .json, else YAML) into its mapping."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the script: {exc.strerror or exc}") from None
    # The guarded loaders, not gitdag's codec: this process starts once per attempt, and the
    # codec would pull in pydantic (a third of a second) for nothing.
    try:
        if path.suffix == ".json":
            data = loaders.load_json(raw, max_bytes=MAX_SCRIPT_BYTES)
        else:
            data = loaders.load_yaml(raw, max_bytes=MAX_SCRIPT_BYTES)
    except loaders.DecodeError as exc:
        raise ScriptError(f"{path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScriptError(f"{path}: expected a mapping of node ids to responses")
    return data


def pick_response(script: dict[str, Any], node_id: str, attempt: int) -> dict[str, Any] | None:
    """Return the response for a node's attempt: exact id first, then patterns in file order."""
    entry = script.get(node_id)
    if entry is None:
        for pattern, value in script.items():
            if fnmatch.fnmatchcase(node_id, str(pattern)):
                entry = value
                break
    if entry is None:
        return None
    if isinstance(entry, list):
        if not entry:
            raise ScriptError(f"{node_id}: the list of responses is empty")
        entry = entry[min(max(attempt, 1), len(entry)) - 1]
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise ScriptError(f"{node_id}: a response must be a mapping, not {type(entry).__name__}")
    unknown = sorted(set(entry) - ALLOWED)
    if unknown:
        raise ScriptError(f"{node_id}: unknown key {unknown[0]!r} in the response")
    return entry


def packet_answer(packet_json: str | None, node_id: str) -> str:
    """Return the checkpoint answer the packet carries for this node ('' when there is none)."""
    if not packet_json:
        return ""
    try:
        packet = loaders.load_json(Path(packet_json).read_bytes(), max_bytes=16 * 1024 * 1024)
    except (OSError, loaders.DecodeError):
        return ""
    resume = (packet.get("resume") if isinstance(packet, dict) else None) or {}
    if isinstance(resume, dict) and isinstance(resume.get("answer"), str):
        return str(resume["answer"])
    for decision in reversed(packet.get("decisions") or []):
        if isinstance(decision, dict) and decision.get("node") == node_id:
            answer = decision.get("answer")
            if isinstance(answer, str):
                return answer
    return ""


def substitute(value: Any, tokens: dict[str, str]) -> Any:
    """Replace `{answer}`, `{node}`, `{attempt}`, `{run_id}` in every string (keys included)."""
    if isinstance(value, str):
        return _TOKEN.sub(lambda m: tokens[m.group(1)], value)
    if isinstance(value, list):
        return [substitute(v, tokens) for v in value]
    if isinstance(value, dict):
        return {substitute(k, tokens): substitute(v, tokens) for k, v in value.items()}
    return value


def _inside(cwd: Path, rel: str) -> Path:
    target = (cwd / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(cwd.resolve()):
        raise ScriptError(f"write/append: path {rel!r} is outside the working directory")
    return target


def _files(response: dict[str, Any], cwd: Path) -> None:
    for key, mode in (("write", "w"), ("append", "a")):
        entries = response.get(key) or {}
        if not isinstance(entries, dict):
            raise ScriptError(f"{key}: expected a mapping of paths to text")
        for rel, text in entries.items():
            target = _inside(cwd, str(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, mode, encoding="utf-8", newline="") as handle:
                handle.write(str(text))


def _commit(message: str, cwd: Path) -> str | None:
    """Commit everything in the worktree; return an error text, or None."""
    subprocess.run(["git", "add", "-A"], cwd=cwd, check=False, capture_output=True)
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=cwd, check=False)
    if staged.returncode == 0:
        return None  # nothing to commit
    cmd = ["git", "commit", "-q", "-m", message]
    proc = subprocess.run(cmd, cwd=cwd, check=False, capture_output=True, text=True)
    if proc.returncode != 0 and "identity" in proc.stderr + proc.stdout:
        ident = ["-c", "user.name=gitdag scripted runner", "-c", "user.email=gitdag@localhost"]
        proc = subprocess.run(["git", *ident, *cmd[1:]], cwd=cwd, check=False,
                              capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        return f"git commit failed: {' '.join((proc.stderr or proc.stdout).split())}"
    return None


def build_result(response: dict[str, Any]) -> dict[str, Any]:
    """Return the result JSON object a response describes."""
    result: dict[str, Any] = {"status": response.get("status", "success")}
    for key in ("summary", "outputs", "checkpoint", "errors"):
        if key in response:
            result[key] = response[key]
    nxt = {k: response[k] for k in ("addNodes", "setStatus") if k in response}
    if nxt:
        result["next"] = nxt
    return result


def run_response(response: dict[str, Any], cwd: Path) -> int:
    """Carry out a response's actions and emit its result; return the exit code."""
    sleep_s = response.get("sleep_s")
    if sleep_s:
        time.sleep(float(sleep_s))
    _files(response, cwd)
    response = dict(response)
    if response.get("run"):
        sys.stdout.flush()
        done = subprocess.run(str(response["run"]), shell=True, cwd=cwd, check=False)
        if done.returncode != 0 and "status" not in response:
            response["status"] = "fail"
            response.setdefault("summary", f"run: `{response['run']}` exited {done.returncode}")
    if response.get("commit"):
        problem = _commit(str(response["commit"]), cwd)
        if problem is not None:
            print(problem, file=sys.stderr)
            response.update(status="fail", summary=problem)
    if response.get("stdout"):
        sys.stdout.write(str(response["stdout"]))
    if response.get("stderr"):
        sys.stderr.write(str(response["stderr"]))
    if not response.get("no_result"):
        text = response.get("raw_result")
        if text is None:
            text = json.dumps(build_result(response), ensure_ascii=False)
        result_path = os.environ.get("GITDAG_RESULT")
        if response.get("result_via", "file") == "stdout" or not result_path:
            sys.stdout.write(f"\n<result>{text}</result>\n")
        else:
            Path(result_path).write_text(str(text), encoding="utf-8")
    sys.stdout.flush()
    return int(response.get("exit_code", 0))


def main(argv: list[str] | None = None) -> int:
    """Entry point: answer for `$GITDAG_NODE_ID` as the script says."""
    parser = argparse.ArgumentParser(prog="python -m gitdag.runner.scripted")
    parser.add_argument("--script", required=True, type=Path)
    args = parser.parse_args(argv)
    node_id = os.environ.get("GITDAG_NODE_ID", "")
    try:
        if not node_id:
            raise ScriptError("GITDAG_NODE_ID is not set: run me as a gitdag runner")
        attempt = int(os.environ.get("GITDAG_ATTEMPT", "1") or 1)
        script = load_script(args.script)
        response = pick_response(script, node_id, attempt)
        if response is None:
            response = {"summary": f"scripted: no entry for {node_id} in {args.script}; success"}
        answer = packet_answer(os.environ.get("GITDAG_PACKET_JSON"), node_id)
        if answer and isinstance(response.get("answered"), dict):
            response = response["answered"]
            unknown = sorted(set(response) - ALLOWED)
            if unknown:
                raise ScriptError(f"{node_id}: unknown key {unknown[0]!r} in 'answered'")
        tokens = {"answer": answer, "node": node_id, "attempt": str(attempt),
                  "run_id": os.environ.get("GITDAG_RUN_ID", "")}  # fmt: skip
        return run_response(substitute(response, tokens), Path.cwd())
    except ScriptError as exc:
        print(f"gitdag scripted runner: {exc}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as exc:  # a value of the wrong type in the script
        print(f"gitdag scripted runner: {node_id}: bad value in the script: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
