"""A real `sshd` on 127.0.0.1 for tests and benchmarks: a port of its own, a key made for the run.

sshd must run as root (privilege separation); `available()` says whether it can run here. The
returned `GIT_SSH_COMMAND` uses the run's key and host key, and never prompts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def available() -> bool:
    """Whether a test sshd can run here (the binary, and root for its privilege separation)."""
    return Path(SSHD).exists() and os.geteuid() == 0


@dataclass
class Sshd:
    proc: subprocess.Popen[bytes]
    port: int
    command: str  # GIT_SSH_COMMAND
    log: Path

    def url(self, path: Path) -> str:
        return f"ssh://{os.environ.get('USER') or 'root'}@127.0.0.1:{self.port}{path}"

    def logins(self) -> int:
        """How many times a client logged in (each a new ssh connection)."""
        text = self.log.read_text() if self.log.exists() else ""
        return text.count("Accepted publickey")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def start_sshd(folder: Path, *, login_rc: bool = False, protocol_v2: bool = True) -> Sshd:
    """Start sshd with its own config, host key and one authorized client key under `folder`.

    It serves git the way git hosts do (git-shell, gitolite, GitLab's forced command): a
    command runs without the account's shell start-up files. The account here is whoever runs
    the tests (root), and Debian's bash reads ~/.bashrc for every command sshd runs; on this
    machine that file runs `pyenv init` (about 100 processes, ~85 ms per git call), which no
    git host pays. `SHLVL=1` makes bash a nested shell, which skips it; `login_rc=True` keeps
    it (bench/claims.py --ssh-login-rc). `protocol_v2`: accept GIT_PROTOCOL from the client,
    as git's documentation asks of an ssh server and as the forges do (else protocol v0).
    """
    folder.mkdir(parents=True)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                       check=True)  # fmt: skip
    (folder / "authorized_keys").write_text((folder / "client.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\n"
        "MaxStartups 200\nMaxSessions 200\nPermitRootLogin yes\nLogLevel INFO\n"
        f"SetEnv {'' if login_rc else 'SHLVL=1 '}PATH={os.environ.get('PATH', '/usr/bin:/bin')}\n"
        + ("AcceptEnv GIT_PROTOCOL\n" if protocol_v2 else "")
    )  # fmt: skip
    Path("/run/sshd").mkdir(exist_ok=True)
    log = folder / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-E", str(log), "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 20
    while proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sshd did not start") from None
            time.sleep(0.05)
    if proc.poll() is not None:
        raise RuntimeError(f"sshd exited: {log.read_text() if log.exists() else ''}")
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(folder / 'host.pub').read_text()}")
    command = (f"ssh -i {folder / 'client'} -o UserKnownHostsFile={known} -o IdentitiesOnly=yes "
               "-o BatchMode=yes")  # fmt: skip
    return Sshd(proc, port, command, log)
