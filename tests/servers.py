"""Real servers and Tidings role processes for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pymongo import AsyncMongoClient

from tidings.app.devserver import role_argv
from tidings.app.embedded import free_port
from tidings.app.resources import open_database
from tidings.app.settings import Settings, env_name

SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


def isolated_settings(mongodb_url: str, redis_url: str, tmp_path: Path) -> Settings:
    """Settings with their own database and queue, so tests never see each other's data or tasks."""
    unique = uuid.uuid4().hex[:12]
    return Settings(
        mongodb_url=mongodb_url,
        redis_url=redis_url,
        mongodb_database=f"tidings_test_{unique}",
        queue_name=f"tidings:test:{unique}",
        secret_key=SECRET_KEY,  # type: ignore[arg-type]
        heartbeat_dir=tmp_path / "run",
        heartbeat_interval_seconds=0.5,
        _env_file=None,
    )


@asynccontextmanager
async def beanie_database(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """Beanie initialised on the settings' database, which is dropped afterwards."""
    async with open_database(settings) as client:
        try:
            yield client
        finally:
            await client.drop_database(settings.mongodb_database)


def role_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a role process reads its settings from, built from a test's Settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIDINGS_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if name == "secret_key":
            env[env_name(name)] = settings.require_secret_key()
        else:
            env[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


@dataclass
class RoleProcess:
    """`python -m tidings ROLE` as a child process, its output kept in a log file for failure messages."""

    role: str
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> RoleProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            role_argv(self.role),
            env=dict(self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.role} exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.role} did not print {text!r} within {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a machine loses a process."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.role} ignored SIGTERM for {timeout}s:\n{self.output()}") from None
        if self._log is not None:
            self._log.close()
        return self.process.returncode


def api_process(settings: Settings, log_path: Path, timeout: float = 30.0) -> tuple[RoleProcess, str]:
    """Start `tidings api` on a free port and wait until it answers `/healthz`; returns it and its base URL."""
    port = free_port()
    process = RoleProcess("api", role_env(settings, **{env_name("port"): str(port)}), log_path).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                return process, base
        except OSError:
            assert process.process is not None
            if process.process.poll() is not None:
                raise AssertionError(f"api exited:\n{process.output()}") from None
            time.sleep(0.05)
    process.stop()
    raise AssertionError(f"api did not answer within {timeout}s:\n{process.output()}")
