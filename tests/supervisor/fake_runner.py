"""A fake agent for tests: does what a JSON plan says for each node and attempt.

Env: FAKE_PLAN (path to {node_id: behaviour or [behaviour per attempt]}), FAKE_LOG (a shared log
where each run appends `start|end node attempt pid time`). A behaviour may have: result (dict,
written to $GITDAG_RESULT), stdout (printed), raw (written as the result file verbatim), big (n:
write a result of n bytes), sleep (seconds), exit (exit code), write ({path: text}), commit
(git commit message), delete (a path to remove), shell (a command run first), no_result (true),
ignore_term (true: survive SIGTERM), copy_packet (path).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time


def log(kind: str, node: str, attempt: str) -> None:
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{kind} {node} {attempt} {os.getpid()} {time.time():.6f}\n")


def main() -> int:
    node = os.environ["GITDAG_NODE_ID"]
    attempt = os.environ["GITDAG_ATTEMPT"]
    plan = json.loads(pathlib.Path(os.environ["FAKE_PLAN"]).read_text())
    entry = plan.get(
        node, plan.get("*", {"result": {"status": "success", "summary": f"{node} ok"}})
    )
    if isinstance(entry, list):
        entry = entry[min(int(attempt), len(entry)) - 1]
    # The handler first: a test that sees `start` may stop us at once, and must see `killed`.
    if entry.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:

        def on_term(signum: int, frame: object) -> None:
            log("killed", node, attempt)
            os._exit(143)

        signal.signal(signal.SIGTERM, on_term)
    log("start", node, attempt)
    if "copy_packet" in entry:
        target = pathlib.Path(entry["copy_packet"].replace("{attempt}", attempt))
        target.write_text(pathlib.Path(os.environ["GITDAG_PACKET"]).read_text())
    for rel, text in entry.get("write", {}).items():
        p = pathlib.Path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    if "shell" in entry:  # e.g. a runner that moves refs it should not touch
        subprocess.run(["sh", "-c", entry["shell"]], check=False)
    if "delete" in entry:  # e.g. the runner's own executable, to test a disappearing one
        pathlib.Path(entry["delete"]).unlink(missing_ok=True)
    if "commit" in entry:
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(["git", "commit", "-q", "-m", entry["commit"]], check=True)
    if "sleep" in entry:
        time.sleep(float(entry["sleep"]))
    if "stdout" in entry:
        print(entry["stdout"])
    result_path = pathlib.Path(os.environ["GITDAG_RESULT"])
    if "raw" in entry:
        result_path.write_text(entry["raw"])
    elif "big" in entry:
        result_path.write_text(
            '{"status": "success", "summary": "' + "x" * int(entry["big"]) + '"}'
        )
    elif not entry.get("no_result"):
        result = entry.get("result", {"status": "success", "summary": f"{node} ok"})
        result_path.write_text(json.dumps(result))
    log("end", node, attempt)
    return int(entry.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
