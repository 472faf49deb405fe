"""`tidings dev`, the README's first command: embedded servers, seeded environment, clean stop, reuse on restart."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tidings.app.devserver import _choose_port
from tidings.app.embedded import free_port
from tidings.app.settings import Settings

READY_LINE = "Ctrl-C stops everything."


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc (no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class DevRun:
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_ready(self, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while READY_LINE not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tidings dev did not start (exit {self.process.returncode}):\n{self.output()}")
            time.sleep(0.1)

    def banner(self, label: str) -> str:
        match = re.search(rf"^  {label}\s+(\S+)", self.output(), re.MULTILINE)
        assert match, self.output()
        return match.group(1)


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIDINGS_")}
    env.update(TIDINGS_DATA_DIR=str(data_dir), TIDINGS_PORT=str(port), **extra)
    return env


type StartDev = Callable[..., DevRun]


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[StartDev]:
    """Starts `python -m tidings dev` (output to a log file); kills what a failed test left running."""
    runs: list[DevRun] = []

    def start(env: dict[str, str], name: str = "dev") -> DevRun:
        log = tmp_path / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tidings", "dev"],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        runs.append(DevRun(process, log))
        return runs[-1]

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def _current_environment(base: str, api_key: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": "{ currentEnvironment { id name applicationIdentifier } }"},
        headers={"Authorization": f"ApiKey {api_key}"},
        timeout=10,
    )
    environment: dict[str, str] = response.json()["data"]["currentEnvironment"]
    return environment


def _stop(run: DevRun, sig: signal.Signals) -> set[int]:
    children = _descendants(run.process.pid)
    run.process.send_signal(sig)
    assert run.process.wait(60) == 0, run.output()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: _cmdline(pid) for pid in children if _alive(pid)}
    assert not left, f"processes left behind: {left}"
    return children


def test_dev_runs_on_embedded_servers_and_reuses_them(start_dev: StartDev, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    first = start_dev(_env(data_dir, port), "first")
    first.wait_until_ready()
    base = f"http://127.0.0.1:{port}"
    assert first.banner("GraphQL IDE") == f"{base}/graphql"
    assert first.banner("Metrics") == f"{base}/metrics"
    api_key = first.banner("API key")
    assert api_key.startswith("tid_sk_")
    assert "secantusdb, valkey embedded" in first.output()

    environment = _current_environment(base, api_key)
    assert environment["name"] == "development"
    assert environment["applicationIdentifier"] == first.banner("App id")
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    ide = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()

    roles = {_cmdline(pid) for pid in _descendants(first.process.pid)}
    for expected in ("secantusd-py", "valkey-server", "tidings api", "tidings worker", "tidings scheduler"):
        assert any(expected in line for line in roles), (expected, roles)
    stopped = _stop(first, signal.SIGTERM)
    assert len(stopped) >= 5
    assert (data_dir / "dev-api-key").stat().st_mode & 0o077 == 0

    second = start_dev(_env(data_dir, port), "second")
    second.wait_until_ready()
    assert second.banner("API key") == api_key
    assert _current_environment(base, api_key) == environment  # same data, same environment
    _stop(second, signal.SIGINT)  # Ctrl-C


def test_dev_with_urls_starts_no_embedded_server(
    start_dev: StartDev, tmp_path: Path, mongodb_url: str, redis_url: str
) -> None:
    port = free_port()
    run = start_dev(_env(tmp_path / "data", port, TIDINGS_MONGODB_URL=mongodb_url, TIDINGS_REDIS_URL=redis_url))
    run.wait_until_ready()
    assert "embedded" not in run.output()
    roles = {_cmdline(pid) for pid in _descendants(run.process.pid)}
    assert not any("secantusd-py" in line or "valkey-server" in line for line in roles), roles
    api_key = run.banner("API key")
    assert _current_environment(f"http://127.0.0.1:{port}", api_key)["name"] == "development"
    _stop(run, signal.SIGTERM)
    assert not (tmp_path / "data" / "mongo").exists()


def test_dev_refuses_an_explicit_port_that_is_taken(start_dev: StartDev, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = start_dev(_env(tmp_path / "data", port))
        assert run.process.wait(60) == 2
    assert f"tidings: TIDINGS_PORT: port {port} on 127.0.0.1 is already in use" in run.output()
    assert not (tmp_path / "data" / "mongo").exists()  # refused before starting anything


def test_dev_moves_off_the_default_port_when_it_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    defaults = Settings(_env_file=None)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind((defaults.host, defaults.port))
            holder.listen()
        except OSError:
            pass  # something else holds it already: just as taken
        port = _choose_port(defaults)
    assert port != defaults.port
    assert f"port {defaults.port} is in use, using {port} instead" in capsys.readouterr().out
