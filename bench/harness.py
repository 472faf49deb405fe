"""The system under test: servers (embedded, or the URLs in TIDINGS_MONGODB_URL / TIDINGS_REDIS_URL), a fresh
environment with an API key, and real `tidings api|worker|scheduler` processes started as the tests start them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from bench.inbox_load import ClientPool, raise_file_limit
from bench.machine import describe
from tests.servers import RoleProcess, api_process, isolated_settings, role_env
from tidings.app.embedded import EmbeddedServer, secantus, valkey
from tidings.app.operations import create_environment_with_key
from tidings.app.settings import Settings, env_name

RESULTS = Path(__file__).parent / "results"

# Limits a benchmark would otherwise measure instead of the system: the default rate limits (a trigger bucket of
# 1,000/s) and the private-address guard, which refuses the local sinks standing in for providers.
BENCH_SETTINGS: dict[str, Any] = {
    "rate_trigger_per_second": 1_000_000.0,
    "rate_trigger_burst": 10_000_000,
    "rate_config_per_second": 1_000_000.0,
    "rate_config_burst": 10_000_000,
    "rate_inbox_session_per_second": 1_000_000.0,
    "rate_inbox_session_burst": 10_000_000,
    "allow_private_network_urls": True,
    "scheduler_tick_seconds": 0.1,
    # Setting up thousands of subscribers on a busy two-core machine can exceed the default 10 s per operation.
    "mongodb_timeout_ms": 60_000,
}

# The operations the benchmarks drive, as a client would send them.
CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
BULK_UPSERT = "mutation($input: BulkUpsertSubscribersInput!) { bulkUpsertSubscribers(input: $input) { created } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
BULK_TRIGGER = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId } }"

# What each role logs (at the default INFO level) once it can take work.
READY = {"worker": "worker consuming", "scheduler": "scheduler took leadership"}


@dataclass
class Servers:
    mongodb_url: str
    redis_url: str
    embedded: list[str]


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """MongoDB and Redis from the environment's URLs, or embedded in-memory servers started for this run."""
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[EmbeddedServer] = []
    mongodb_url = os.environ.get(env_name("mongodb_url"))
    redis_url = os.environ.get(env_name("redis_url"))
    if mongodb_url is None:
        started.append(secantus(data_dir=None, log_path=workdir / "secantusdb.log"))
    if redis_url is None:
        started.append(valkey(data_dir=None, log_path=workdir / "valkey.log"))
    try:
        for server in started:
            server.start()
            if server.scheme == "mongodb":
                mongodb_url = server.url
            else:
                redis_url = server.url
        assert mongodb_url is not None
        assert redis_url is not None
        yield Servers(mongodb_url, redis_url, [server.name for server in started])
    finally:
        for server in reversed(started):
            server.stop()


@dataclass
class Stack:
    """A running Tidings: its settings, the API's base URL, and an environment's credentials."""

    settings: Settings
    base: str
    api_key: str
    application_identifier: str
    processes: list[RoleProcess] = field(default_factory=list)

    def pid(self, role: str) -> int:
        return next(process.pid for process in self.processes if process.role == role)

    def logs(self) -> str:
        return "\n".join(f"--- {p.role}\n{p.output()[-3000:]}" for p in self.processes)

    async def graphql(self, client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
        """The data of an operation that must succeed."""
        response = await client.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"ApiKey {self.api_key}"},
        )
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{response.status_code}: {body}")
        data: dict[str, Any] = body["data"]
        return data

    async def upsert_subscribers(self, client: httpx.AsyncClient, subscribers: list[dict[str, Any]]) -> None:
        """`bulkUpsertSubscribers` in calls as large as the api's limit allows."""
        size = self.settings.limit_bulk_upsert_max
        for start in range(0, len(subscribers), size):
            await self.graphql(client, BULK_UPSERT, input={"subscribers": subscribers[start : start + size]})


@asynccontextmanager
async def stack(
    found: Servers,
    workdir: Path,
    *,
    workers: int = 1,
    scheduler: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """An api, `workers` workers and (optionally) the scheduler on a database and queue of their own."""
    # isolated_settings names a database and a queue of their own, as it does for a test.
    isolated = isolated_settings(found.mongodb_url, found.redis_url, workdir)
    settings = isolated.model_copy(update={**BENCH_SETTINGS, **(overrides or {})})
    issued = await create_environment_with_key(settings, "bench")
    async with AsyncExitStack() as exits:
        api, base = await asyncio.to_thread(api_process, settings, workdir / "api.log", 120.0)
        exits.callback(api.stop, 30.0)
        result = Stack(settings, base, issued.api_key, issued.environment.application_identifier, [api])
        roles = ["worker"] * workers + (["scheduler"] if scheduler else [])
        for index, role in enumerate(roles):
            process = RoleProcess(role, role_env(settings), workdir / f"{role}-{index}.log").start()
            exits.callback(process.stop, 30.0)
            result.processes.append(process)
        for process in result.processes[1:]:
            # Measuring from a trigger would otherwise count a worker's seconds of start-up.
            await asyncio.to_thread(process.wait_for_output, READY[process.role], 120.0)
        try:
            yield result
        finally:
            await _drop(settings)


async def _drop(settings: Settings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        await client.drop_database(settings.mongodb_database)
    finally:
        await client.close()


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes; scripts add their sizes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run: proves the script still works")
    parser.add_argument("--workdir", type=Path, default=Path(".tidings/bench"), help="logs of the started servers")
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON results")
    return parser


def record(name: str, machine: dict[str, Any], figures: dict[str, Any], output: Path | None, smoke: bool) -> Path:
    """Writes `{machine, figures}` as JSON (bench/results/NAME.json unless told) and prints it."""
    path = output or RESULTS / f"{name}{'-smoke' if smoke else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine}
    document["figures"] = figures
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2), flush=True)
    return path


async def machine(found: Servers) -> dict[str, Any]:
    return await describe(found.mongodb_url, found.redis_url, found.embedded)


type Measure = Callable[[Any, ClientPool], Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


async def measure_with_clients(name: str, options: Any, measure: Measure) -> None:
    """Starts `--client-processes` client processes first (they import while the stack starts), runs `measure`
    with them, stops them, and records what it returned as bench/results/NAME.json."""
    raise_file_limit()
    options.workdir.mkdir(parents=True, exist_ok=True)
    pool = ClientPool(options.client_processes)
    try:
        described, figures = await measure(options, pool)
    finally:
        await pool.aclose()
    record(name, described, figures, options.output, options.smoke)
