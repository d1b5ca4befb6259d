"""A fake agent for agent-loop tests: iterates on a counter kept in `$GITDAG_STATE`.

Env: LOOP_PLAN (path to {node_id: behaviour}), LOOP_LOG (each run appends
`start|end|killed node attempt iteration n pid time`). A behaviour may have:
until (continue while the counter is below it, then succeed), write (true: write
`<node>-<n>.txt` in the worktree each iteration), hang_at / hang_flag (at that counter, the
first time only - the flag file records it - sleep for a minute), write_attempt (true: write
`<node>-a<attempt>.txt`), sleep_at (at that counter, every time, sleep for two minutes), cache
(true: iteration 1 writes the git-ignored `build/cache.bin`; later iterations log `cache-hit` or
`cache-miss`), cache_attempts (true: every run logs `cache-hit` if the git-ignored
`build/cache.bin` is in the worktree, else `cache-miss` and writes it), probe (paths: each run
logs `has:<path>` or `lacks:<path>`), files (a list of {path: text}, one per attempt), results
(a list of result objects, one per attempt, the last repeated), copy_packet (path: copy the
JSON packet there, `{attempt}` replaced).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sys
import time


def main() -> int:
    node = os.environ["GITDAG_NODE_ID"]
    attempt = os.environ["GITDAG_ATTEMPT"]
    iteration = os.environ.get("GITDAG_ITERATION", "?")
    state = json.loads(os.environ.get("GITDAG_STATE") or "{}")
    n = int(state.get("n", 0))
    plan = json.loads(pathlib.Path(os.environ["LOOP_PLAN"]).read_text())
    entry = plan.get(node, {})

    def log(kind: str) -> None:
        with open(os.environ["LOOP_LOG"], "a") as fh:
            fh.write(f"{kind} {node} {attempt} {iteration} {n} {os.getpid()} {time.time():.6f}\n")

    def on_term(signum: int, frame: object) -> None:
        log("killed")
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    log("start")
    if "copy_packet" in entry:
        target = pathlib.Path(entry["copy_packet"].replace("{attempt}", attempt))
        target.write_text(pathlib.Path(os.environ["GITDAG_PACKET_JSON"]).read_text())
    if "files" in entry:  # one {path: text} per attempt, the last repeated
        files = entry["files"][min(int(attempt), len(entry["files"])) - 1]
        for rel, text in files.items():
            pathlib.Path(rel).write_text(text)
    if entry.get("write_attempt"):
        pathlib.Path(f"{node}-a{attempt}.txt").write_text(f"attempt {attempt}\n")
    if entry.get("write"):
        pathlib.Path(f"{node}-{n}.txt").write_text(f"iteration {iteration}\n")
    if entry.get("cache"):
        cache = pathlib.Path("build/cache.bin")
        if iteration == "1":
            cache.parent.mkdir(exist_ok=True)
            cache.write_bytes(b"made in iteration 1\n")
        else:
            log("cache-hit" if cache.is_file() else "cache-miss")
    if entry.get("cache_attempts"):
        cache = pathlib.Path("build/cache.bin")
        log("cache-hit" if cache.is_file() else "cache-miss")
        if not cache.is_file():
            cache.parent.mkdir(exist_ok=True)
            cache.write_bytes(f"made in attempt {attempt}\n".encode())
    for path in entry.get("probe", ()):
        log(("has:" if pathlib.Path(path).exists() else "lacks:") + path)
    if n == entry.get("sleep_at"):
        time.sleep(120)
    flag = entry.get("hang_flag")
    if flag and n == entry.get("hang_at") and not pathlib.Path(flag).exists():
        pathlib.Path(flag).write_text("hung once\n")
        time.sleep(60)
    if "results" in entry:
        results = entry["results"]
        result = results[min(int(attempt), len(results)) - 1]
    elif n < int(entry.get("until", 0)):
        result = {"status": "continue", "summary": f"step {n}", "state": {"n": n + 1}}
    else:
        result = {"status": "success", "summary": f"{node} done at {n}"}
    pathlib.Path(os.environ["GITDAG_RESULT"]).write_text(json.dumps(result))
    log("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
