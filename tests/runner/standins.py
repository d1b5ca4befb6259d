"""Stand-ins for the agent CLIs: strict about argv and input the way each real CLI documents them.

Run as `python standins.py NAME ARGS...` through a wrapper named NAME on PATH. Each stand-in
parses its CLI's documented flags (and refuses any other, like the real one), takes the prompt
from where that CLI takes it, applies the CLI's write rules, then does a node's "work": it writes
`<node>.<name>.txt` in its working directory and reports the result, into `$GITDAG_RESULT` when
its rules let it write there, else as a `<result>` block in its final message on stdout.

- claude: `-p` required (no TTY); refuses `--dangerously-skip-permissions` and
  `--permission-mode bypassPermissions` as root (uid 0, or `STANDIN_UID=0`) unless
  `IS_SANDBOX=1`; the Write tool may write in the working directory and `--add-dir`s, only with
  acceptEdits or bypass.
- codex: `exec` then its flags, prompt `-` (or none) read from stdin; `--sandbox workspace-write`
  (or `--full-auto`) writes only in the cwd and `--add-dir`s; read-only writes nothing.
- gemini: headless with `-p` (appended to stdin); `--yolo` together with `--approval-mode` is an
  error; an untrusted folder (no `GEMINI_CLI_TRUST_WORKSPACE=true`, no `--skip-trust`) falls
  back to the default approval mode, where no tool may write; file tools write only in the cwd
  and `--include-directories`.
- aider: argparse-strict; the message from `--message-file`/`--message`; without `--no-pretty`
  and `--no-stream` its output is decorated (ANSI codes, wrapped lines) and a `<result>` block
  does not survive; without `--chat-history-file` it leaves `.aider.chat.history.md` in the
  repository, and without `--no-gitignore` it appends `.aider*` to `.gitignore`.

`STANDIN_LOG=<file>` gets one line per run: `<name> <node> <file|stdout|none>`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


class Refused(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _take(args: list[str], i: int, flag: str) -> tuple[str, int]:
    if "=" in args[i] and args[i].startswith("--"):
        return args[i].split("=", 1)[1], i + 1
    if i + 1 >= len(args):
        raise Refused(f"error: option '{flag}' argument missing")
    return args[i + 1], i + 2


def _variadic(args: list[str], i: int) -> tuple[list[str], int]:
    values = []
    i += 1
    while i < len(args) and not args[i].startswith("-"):
        values.append(args[i])
        i += 1
    return values, i


def _inside(path: Path, roots: list[Path]) -> bool:
    real = path.resolve()
    return any(real == r.resolve() or r.resolve() in real.parents for r in roots)


def _stdin() -> str:
    return "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()


def _uid() -> int:
    return int(os.environ.get("STANDIN_UID", str(os.getuid())))


# --- claude --------------------------------------------------------------------------------------

CLAUDE_MODES = ("acceptEdits", "bypassPermissions", "default", "dontAsk", "plan")


def claude(args: list[str]) -> tuple[str, list[Path], bool]:
    opts: dict[str, object] = {"add_dir": [], "mode": "default"}
    prompt: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-p", "--print"):
            opts["print"] = True
            i += 1
        elif a == "--dangerously-skip-permissions":
            opts["skip"] = True
            i += 1
        elif a == "--verbose":
            i += 1
        elif a.split("=")[0] == "--output-format":
            value, i = _take(args, i, a)
            if value not in ("text", "json", "stream-json"):
                raise Refused(f"error: option '--output-format' argument '{value}' is invalid")
        elif a.split("=")[0] == "--permission-mode":
            value, i = _take(args, i, a)
            if value not in CLAUDE_MODES:
                raise Refused(f"error: option '--permission-mode' argument '{value}' is invalid")
            opts["mode"] = value
        elif a in ("--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools"):
            _, i = _variadic(args, i)
        elif a == "--add-dir":
            dirs, i = _variadic(args, i)
            if not dirs:
                raise Refused("error: option '--add-dir <directories...>' argument missing")
            opts["add_dir"] = [*opts["add_dir"], *dirs]  # type: ignore[misc]
        elif a.split("=")[0] in ("--model", "--max-turns", "--append-system-prompt"):
            _, i = _take(args, i, a)
        elif a.startswith("-"):
            raise Refused(f"error: unknown option '{a}'")
        else:
            prompt.append(a)
            i += 1
    bypass = bool(opts.get("skip")) or opts["mode"] == "bypassPermissions"
    if bypass and _uid() == 0 and os.environ.get("IS_SANDBOX") != "1":
        raise Refused(
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
            "security reasons"
        )
    if not opts.get("print"):
        raise Refused("Error: Raw mode is not supported on the current process.stdin")
    text = " ".join(prompt) or _stdin()
    if not text.strip():
        raise Refused(
            "Error: Input must be provided either through stdin or as a prompt argument when "
            "using --print"
        )
    can_edit = bypass or opts["mode"] == "acceptEdits"
    roots = [Path.cwd(), *(Path(d) for d in opts["add_dir"])]  # type: ignore[attr-defined]
    return text, roots if can_edit else [], bypass


# --- codex ---------------------------------------------------------------------------------------


CODEX_VALUED = ("-m", "--model", "-C", "--cd", "-c", "--config", "-o", "--output-last-message",
                "--color", "-p", "--profile")  # fmt: skip


def codex(args: list[str]) -> tuple[str, list[Path], bool]:
    if not args or args[0] not in ("exec", "e"):
        raise Refused("Error: stdin is not a terminal")  # the interactive TUI needs one
    sandbox = "read-only"
    add_dirs: list[str] = []
    prompt: str | None = None
    i = 1
    while i < len(args):
        a = args[i]
        if a.split("=")[0] in ("-s", "--sandbox"):
            sandbox, i = _take(args, i, a)
            if sandbox not in ("read-only", "workspace-write", "danger-full-access"):
                raise Refused(f"error: invalid value '{sandbox}' for '--sandbox <SANDBOX_MODE>'", 2)
        elif a == "--full-auto":
            sandbox = "workspace-write"
            i += 1
        elif a in ("--dangerously-bypass-approvals-and-sandbox", "--yolo"):
            sandbox = "danger-full-access"
            i += 1
        elif a in ("--skip-git-repo-check", "--json", "--ephemeral"):
            i += 1
        elif a.split("=")[0] == "--add-dir":
            value, i = _take(args, i, a)
            add_dirs.append(value)
        elif a.split("=")[0] in CODEX_VALUED:
            _, i = _take(args, i, a)
        elif a == "-":
            prompt = "-"
            i += 1
        elif a.startswith("-"):
            raise Refused(f"error: unexpected argument '{a}' found", 2)
        else:
            if prompt is not None:
                raise Refused(f"error: unexpected argument '{a}' found", 2)
            prompt = a
            i += 1
    text = _stdin() if prompt in (None, "-") else prompt
    if not text.strip():
        raise Refused("No prompt provided. Either specify one as an argument or pipe it in.")
    if sandbox == "danger-full-access":
        return text, [Path("/")], True
    if sandbox == "read-only":
        return text, [], False
    # The real sandbox also allows /tmp and $TMPDIR; left out here because the tests'
    # repositories (and so their run directories) live under /tmp.
    roots = [Path.cwd(), *(Path(d) for d in add_dirs)]
    return text, roots, False


# --- gemini --------------------------------------------------------------------------------------


def gemini(args: list[str]) -> tuple[str, list[Path], bool]:
    mode: str | None = None
    yolo = False
    include: list[str] = []
    prompt: str | None = None
    skip_trust = False
    i = 0
    while i < len(args):
        a = args[i]
        if a.split("=")[0] == "--approval-mode":
            mode, i = _take(args, i, a)
            if mode not in ("default", "auto_edit", "yolo", "plan"):
                raise Refused(f'Invalid values:\n  Argument: approval-mode, Given: "{mode}"', 42)
        elif a in ("-y", "--yolo"):
            yolo = True
            i += 1
        elif a.split("=")[0] == "--include-directories":
            value, i = _take(args, i, a)
            include += [d for d in value.split(",") if d]
        elif a.split("=")[0] in ("-p", "--prompt"):
            prompt, i = _take(args, i, a)
        elif a.split("=")[0] in ("-m", "--model", "--output-format"):
            _, i = _take(args, i, a)
        elif a == "--skip-trust":
            skip_trust = True
            i += 1
        elif a in ("-d", "--debug", "-s", "--sandbox"):
            i += 1
        else:
            raise Refused(f"Unknown argument: {a.lstrip('-')}", 42)
    if yolo and mode is not None:
        raise Refused("Cannot use both --yolo (-y) and --approval-mode together.", 42)
    mode = "yolo" if yolo else (mode or "default")
    trusted = skip_trust or os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") == "true"
    if not trusted and mode != "default":
        sys.stderr.write('Approval mode overridden to "default": the folder is not trusted.\n')
        mode = "default"
    text = _stdin() + ("\n\n" + prompt if prompt else "")
    if prompt is None and sys.stdin is not None and sys.stdin.isatty():
        raise Refused("interactive mode needs a terminal")
    if not text.strip():
        raise Refused("No input provided via stdin.", 42)
    if mode in ("default", "plan"):
        return text, [], False  # every write needs an approval nobody can give headless
    return text, [Path.cwd(), *(Path(d) for d in include)], False


# --- aider ---------------------------------------------------------------------------------------

AIDER_FLAGS = {"--yes-always", "--no-pretty", "--pretty", "--no-stream", "--stream",
               "--no-check-update", "--check-update", "--no-show-model-warnings",
               "--no-gitignore", "--gitignore", "--no-auto-commits", "--auto-commits"}  # fmt: skip
AIDER_VALUED = {"--message", "--msg", "-m", "--message-file", "-f", "--chat-history-file",
                "--input-history-file", "--model"}  # fmt: skip


def aider(args: list[str]) -> tuple[str, dict[str, object]]:
    seen: dict[str, object] = {}
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=")[0]
        if a in AIDER_FLAGS:
            seen[a] = True
            i += 1
        elif name in AIDER_VALUED:
            seen[name], i = _take(args, i, name)
        elif a.startswith("-"):
            raise Refused(f"aider: error: unrecognized arguments: {a}", 2)
        else:
            i += 1  # a file to add to the chat
    if "--message-file" in seen or "-f" in seen:
        text = Path(str(seen.get("--message-file", seen.get("-f")))).read_text()
    elif any(k in seen for k in ("--message", "--msg", "-m")):
        text = str(seen.get("--message", seen.get("--msg", seen.get("-m"))))
    else:
        raise Refused("aider: no message; an interactive chat needs a terminal", 1)
    return text, seen


# --- the work ------------------------------------------------------------------------------------


def _work(name: str, text: str) -> tuple[str, dict[str, object]]:
    node = os.environ["GITDAG_NODE_ID"]
    if f"`{node}`" not in text and node not in text:
        raise Refused(f"{name}: the prompt does not mention node {node}")
    out = f"{node}.{name}.txt"
    return out, {"status": "success", "summary": f"{name} wrote {out}", "outputs": {"file": out}}


def _log(name: str, node: str, how: str) -> None:
    log = os.environ.get("STANDIN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{name} {node} {how}\n")


def main(name: str, args: list[str]) -> int:
    try:
        if name == "aider":
            text, seen = aider(args)
            out, result = _work(name, text)
            Path(out).write_text(f"made by {name}\n")
            history = seen.get("--chat-history-file") or ".aider.chat.history.md"
            Path(str(history)).write_text(text)
            if "--no-gitignore" not in seen:
                with open(".gitignore", "a", encoding="utf-8") as fh:
                    fh.write(".aider*\n")
            block = f"<result>{json.dumps(result)}</result>"
            if "--no-pretty" not in seen or "--no-stream" not in seen:
                block = "\x1b[34m" + "\n".join(block[j : j + 30] for j in range(0, len(block), 30))
            print(f"Applied edit to {out}\n{block}")
            _log(name, os.environ["GITDAG_NODE_ID"], "stdout")
            return 0
        text, roots, _ = {"claude": claude, "codex": codex, "gemini": gemini}[name](args)
        out, result = _work(name, text)
        if not _inside(Path(out), roots):
            print(f"I could not write {out}: not permitted here.")
            _log(name, os.environ["GITDAG_NODE_ID"], "none")
            return 0
        Path(out).write_text(f"made by {name}\n")
        target = Path(os.environ["GITDAG_RESULT"])
        if _inside(target, roots):
            target.write_text(json.dumps(result))
            print(f"Done: wrote {out} and the result file.")
            _log(name, os.environ["GITDAG_NODE_ID"], "file")
        else:
            print(f"Done: wrote {out}.\n<result>{json.dumps(result)}</result>")
            _log(name, os.environ["GITDAG_NODE_ID"], "stdout")
        return 0
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
