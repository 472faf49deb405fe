"""`tidings dev`: embedded servers when no URLs are set, then the API, a worker and the scheduler as children."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from tidings.app.embedded import (
    EmbeddedServer,
    EmbeddedServerError,
    free_port,
    port_is_free,
    secantus,
    spawn,
    stop_processes,
    valkey,
)
from tidings.app.operations import seed_environment
from tidings.app.settings import Settings, SettingsError, env_name
from tidings.core.ids import new_api_key

DEV_ENVIRONMENT = "development"
ROLES = ("api", "worker", "scheduler")


class _TerminatedError(Exception):
    """Raised from the SIGTERM handler to unwind into the cleanup code."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedError


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """A dev-only secret kept in the data dir, so a second run reuses it; only its owner may read it."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def role_argv(role: str) -> list[str]:
    """How `tidings dev` starts a role: `-P` keeps the working directory off `sys.path`, so a `graphql/` folder
    where the developer runs it cannot shadow graphql-core (Strawberry issue #626)."""
    return [sys.executable, "-P", "-m", "tidings", role]


def _choose_port(settings: Settings) -> int:
    if port_is_free(settings.host, settings.port):
        return settings.port
    if "port" in settings.model_fields_set:
        raise SettingsError(f"{env_name('port')}: port {settings.port} on {settings.host} is already in use")
    port = free_port(settings.host)
    print(f"tidings dev: port {settings.port} is in use, using {port} instead", flush=True)
    return port


def _wait_for_api(url: str, api: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise EmbeddedServerError(f"the API exited with {api.returncode} during start-up (see its output above)")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):  # noqa: S310 (our own http:// URL)
                return
        except OSError:
            time.sleep(0.1)
    raise EmbeddedServerError(f"the API did not answer on {url} within {timeout:g}s")


def _banner(base: str, api_key: str, application_identifier: str, data_dir: Path, embedded: list[str]) -> str:
    lines = [
        "",
        "Tidings is running.",
        f"  GraphQL IDE   {base}/graphql",
        f"  Metrics       {base}/metrics",
        f"  Health        {base}/readyz",
        f"  API key       {api_key}",
        f"  App id        {application_identifier}",
        f"  Inbox demo    {base}/demo/inbox?applicationIdentifier={application_identifier}&subscriberId=demo-user",
        f"  Data          {data_dir.resolve()}" + (f" ({', '.join(embedded)} embedded)" if embedded else ""),
        "",
        "Try it:",
        f"  curl -s {base}/graphql -H 'Authorization: ApiKey {api_key}' -H 'Content-Type: application/json' \\",
        '    -d \'{"query": "{ currentEnvironment { name applicationIdentifier } }"}\'',
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def run_dev(settings: Settings) -> int:
    data_dir = settings.data_dir
    servers: list[EmbeddedServer] = []
    children: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C stops everything even when started from a shell that ignores SIGINT (a background job, nohup):
    # Python leaves an inherited "ignore" in place, and the dev server would then never stop on it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        port = _choose_port(settings)
        mongodb_url, redis_url = settings.mongodb_url, settings.redis_url
        if mongodb_url is None:
            servers.append(secantus(data_dir=data_dir / "mongo", log_path=data_dir / "logs" / "secantusdb.log"))
        if redis_url is None:
            servers.append(valkey(data_dir=data_dir / "redis", log_path=data_dir / "logs" / "valkey.log"))
        for server in servers:
            server.start()
            print(f"tidings dev: embedded {server.name} on {server.url}", flush=True)
            if server.scheme == "mongodb":
                mongodb_url = server.url
            else:
                redis_url = server.url
        secret_key = (
            settings.secret_key.get_secret_value()
            if settings.secret_key
            else _read_or_create(data_dir / "secret-key", lambda: secrets.token_urlsafe(32))
        )
        api_key = _read_or_create(data_dir / "dev-api-key", new_api_key)
        resolved = settings.model_copy(
            update={"mongodb_url": mongodb_url, "redis_url": redis_url, "secret_key": SecretStr(secret_key)}
        )
        application_identifier = asyncio.run(
            seed_environment(resolved, DEV_ENVIRONMENT, api_key)
        ).application_identifier

        env = dict(os.environ)
        env.update(
            {
                env_name("mongodb_url"): str(mongodb_url),
                env_name("redis_url"): str(redis_url),
                env_name("secret_key"): secret_key,
                env_name("port"): str(port),
                env_name("graphql_ide"): "true",
                env_name("demo_page"): "true",
                env_name("heartbeat_dir"): str((data_dir / "run").resolve()),
            }
        )
        children.extend(spawn(role_argv(role), env=env) for role in ROLES)
        base = f"http://{settings.host}:{port}"
        _wait_for_api(base, children[0])
        embedded = [server.name for server in servers]
        print(_banner(base, api_key, application_identifier, data_dir, embedded), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        print(f"tidings dev: {ROLES[children.index(failed)]} exited with {failed.returncode}; stopping", flush=True)
        return 1
    except (KeyboardInterrupt, _TerminatedError):
        print("\ntidings dev: stopping", flush=True)
        return 0
    except EmbeddedServerError as exc:
        print(f"tidings dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not interrupt the cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_processes(children)  # together: the roles' shutdowns overlap instead of adding up
        for server in reversed(servers):
            server.stop()
