"""The `tidings` command: `dev`, the production roles `api`, `worker`, `scheduler`, and operator tools."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from tidings.app.logs import configure_logging
from tidings.app.settings import Settings, SettingsError, env_name, load_settings
from tidings.core.errors import TidingsError


def _configure_logging(settings: Settings, role: str) -> None:
    log_format = settings.log_format
    if role == "dev" and "log_format" not in settings.model_fields_set:
        # A person reads `tidings dev`'s terminal: readable lines, for the children it starts too.
        log_format = "console"
        os.environ[env_name("log_format")] = log_format
    configure_logging(settings.log_level, log_format, role=role)


def _api(settings: Settings) -> int:
    from tidings.app.api_server import serve_api  # noqa: PLC0415 (only the api role needs uvicorn)
    from tidings.app.asgi import create_app  # noqa: PLC0415

    settings.require_mongodb_url()
    settings.require_redis_url()
    settings.require_secret_key()
    serve_api(settings, create_app)
    return 0


def _worker(settings: Settings) -> int:
    from tidings.app.worker import run_worker  # noqa: PLC0415

    settings.require_mongodb_url()
    settings.require_redis_url()
    settings.require_secret_key()
    asyncio.run(run_worker(settings))
    return 0


def _scheduler(settings: Settings) -> int:
    from tidings.app.scheduler import run_scheduler_role  # noqa: PLC0415

    settings.require_mongodb_url()
    settings.require_redis_url()
    asyncio.run(run_scheduler_role(settings))
    return 0


def _dev(settings: Settings) -> int:
    from tidings.app.devserver import run_dev  # noqa: PLC0415

    return run_dev(settings)


def _healthcheck(settings: Settings, role: str) -> int:
    from tidings.app.heartbeat import api_is_alive, heartbeat_path, is_alive  # noqa: PLC0415

    if role == "api":
        alive = api_is_alive(settings.host, settings.port)
    else:
        alive = is_alive(heartbeat_path(settings.heartbeat_dir, role), settings.heartbeat_interval_seconds)
    print(f"{role}: {'alive' if alive else 'no recent heartbeat'}")
    return 0 if alive else 1


def _env_create(settings: Settings, name: str) -> int:
    from tidings.app.operations import create_environment_with_key  # noqa: PLC0415

    issued = asyncio.run(create_environment_with_key(settings, name))
    print(f"environment   {issued.environment.name}")
    print(f"app id        {issued.environment.application_identifier}")
    print(f"API key       {issued.api_key}")
    print("The API key is shown only this once; Tidings keeps just its hash.")
    return 0


def _export_schema(output: Path | None, check: bool) -> int:
    from tidings.graphql.schema import build_schema  # noqa: PLC0415

    sdl = build_schema().as_str() + "\n"
    if check:
        target = output or Path("schema.graphql")
        if not target.exists() or target.read_text() != sdl:
            print(f"{target} is out of date: run `uv run tidings export-schema -o {target}`", file=sys.stderr)
            return 1
        print(f"{target} matches the schema")
        return 0
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidings", description="Tidings notification infrastructure.")
    roles = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    roles.add_parser("dev", help="run everything locally on embedded MongoDB-wire and Redis servers")
    roles.add_parser("api", help="serve GraphQL, health and metrics over HTTP (production role)")
    roles.add_parser("worker", help="run queued tasks (production role)")
    roles.add_parser("scheduler", help="elect a leader and queue due jobs (production role)")
    export = roles.add_parser("export-schema", help="print the GraphQL SDL, or write or check a file")
    export.add_argument("-o", "--output", type=Path, help="write the SDL to this file")
    export.add_argument("--check", action="store_true", help="fail when the file differs from the schema")
    env = roles.add_parser("env", help="manage environments").add_subparsers(dest="env_command", required=True)
    env.add_parser("create", help="create an environment and print its secret API key once").add_argument("name")
    health = roles.add_parser("healthcheck", help="exit 0 when that role on this host is alive (container check)")
    health.add_argument("role", choices=["api", "worker", "scheduler"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        return _export_schema(args.output, args.check)
    roles: dict[str, Callable[[Settings], int]] = {
        "dev": _dev,
        "api": _api,
        "worker": _worker,
        "scheduler": _scheduler,
        "healthcheck": lambda settings: _healthcheck(settings, args.role),
        "env": lambda settings: _env_create(settings, args.name),
    }
    try:
        settings = load_settings()
        _configure_logging(settings, args.command)
        return roles[args.command](settings)
    except SettingsError as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 2
    except TidingsError as exc:
        print(f"tidings: {exc.message}", file=sys.stderr)
        return 1
    except (PyMongoError, RedisError, OSError) as exc:
        # Unreachable MongoDB or Redis at start-up: one line to act on, not a traceback.
        reason = (str(exc).splitlines() or [""])[0][:300]
        print(f"tidings: cannot reach a dependency ({type(exc).__name__}): {reason}", file=sys.stderr)
        return 1
